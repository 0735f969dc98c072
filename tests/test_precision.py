"""Reduced-precision features: the per-image norm fast path, bf16 + channels_last
descriptors, the precision choice, and match parity with fp32 on the sample pairs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ucn_gui.core import precision as precision_mod
from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.features import extract_features
from ucn_gui.core.filters import FilterSettings, filter_mask
from ucn_gui.core.image import load_image, prepare_image, read_rgb
from ucn_gui.core.matching import MatchOptions, PairFeatures, match
from ucn_gui.core.model import Norm2d, build_model
from ucn_gui.core.precision import choose_precision, coarse_search_dtype, resolve_precision
from ucn_gui.core.resources import models_dir, sample_pair

BF16_RUNS = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="bf16 convolutions need oneDNN")


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_per_image_norm_of_one_image_is_instance_norm(memory_format):
    torch.manual_seed(0)
    norm = Norm2d(8)
    norm.per_image = True
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = (torch.randn(1, 8, 23, 31) * 3 + 1).contiguous(memory_format=memory_format).requires_grad_()
    ref_x = x.detach().clone().requires_grad_()
    for train in (True, False):
        norm.train(train)
        out = norm(x)
        ref = F.instance_norm(ref_x, weight=norm.weight, bias=norm.bias, use_input_stats=True, eps=norm.eps)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # Same gradient as instance norm (the trainer can run batch size 1), and no running stats touched.
    out.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(x.grad, ref_x.grad, atol=1e-4, rtol=1e-4)
    assert torch.equal(norm.running_mean, torch.zeros(8)) and torch.equal(norm.running_var, torch.ones(8))


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_per_image_norm_batch_of_two_stays_per_image(memory_format):
    torch.manual_seed(0)
    norm = Norm2d(4)
    norm.per_image = True
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    a, b = torch.randn(1, 4, 9, 9), torch.randn(1, 4, 9, 9) * 5 + 3
    x = torch.cat((a, b)).contiguous(memory_format=memory_format).requires_grad_()
    both = norm(x)
    torch.testing.assert_close(both[:1], norm(a), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[1:], norm(b), atol=1e-5, rtol=1e-5)
    # the gradient is instance norm's too (the training step runs two images per forward)
    ref_x = x.detach().clone().requires_grad_()
    ref = F.instance_norm(ref_x, weight=norm.weight, bias=norm.bias, use_input_stats=True, eps=norm.eps)
    both.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(x.grad, ref_x.grad, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def small_image(terrace_pair):
    return prepare_image(read_rgb(terrace_pair[0]), max_side=160)


@pytest.mark.parametrize("norm", ["running", "per-image"])
def test_fp32_features_are_the_plain_network(small_image, norm):
    torch.manual_seed(1)
    model = build_model("ResUNetBN2F", 16, norm=norm).eval()
    with torch.no_grad():
        ref = model(small_image.tensor())[0]
    out = extract_features(model, small_image, "cpu", precision="fp32")
    assert out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, ref)


@BF16_RUNS
@pytest.mark.parametrize("arch", ["ResUNetBN2F", "ResUNetBN2D2"])
@pytest.mark.parametrize("norm", ["running", "per-image"])
def test_bf16_channels_last_features_close_to_fp32(small_image, arch, norm):
    torch.manual_seed(2)
    model = build_model(arch, 32, norm=norm).eval()
    if norm == "running":  # random running stats, so that eval batch norm does something
        for m in model.modules():
            if isinstance(m, Norm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    ref = extract_features(model, small_image, "cpu", precision="fp32")
    out = extract_features(model, small_image, "cpu", precision="bf16")
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert out.permute(1, 2, 0).is_contiguous(), "channels-last: pixel rows are contiguous"
    torch.testing.assert_close(out.norm(dim=0), torch.ones(out.shape[1:]), atol=1e-4, rtol=0)
    cosine = (out * ref).sum(0)
    assert cosine.mean() > 0.999 and cosine.min() > 0.98
    assert not model.fp32_full_resolution, "the switch is for extract_features' call only"
    # The model was left in channels-last; fp32 puts it back and gives the plain network again.
    assert torch.equal(extract_features(model, small_image, "cpu", precision="fp32"), ref)


def test_precision_choice(monkeypatch):
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", cpu)
    with pytest.raises(ValueError, match="CUDA only"):
        resolve_precision("fp16", cpu)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda native=native: native)
        assert resolve_precision("auto", cpu) == expected
        assert choose_precision("fp16", cpu) == (expected, f"fp16 runs on CUDA only; using {expected} on the CPU.")
        assert choose_precision("fp32", cpu) == ("fp32", None)
        assert coarse_search_dtype("bf16", cpu) == (torch.bfloat16 if native else None)
        assert coarse_search_dtype("fp32", cpu) is None
    chosen, notice = choose_precision("bf16", cpu)  # still not native
    assert chosen == "bf16" and "emulated" in notice


@pytest.fixture(scope="module")
def bundled_model():
    return load_model(models_dir() / "default.safetensors").model


@BF16_RUNS
def test_bf16_keeps_the_fp32_matches_on_the_sample_pairs(bundled_model):
    """Issue 12's parity goal: of the matches fp32 keeps (reciprocity and stability <= 4 px), at least 98 %
    get the same target (within 1 px) from the bf16 network, over the bundled sample pairs."""
    kept = same = 0
    pairs = [sample_pair(), (sample_pair()[0].with_name("sacre_coeur1.jpg"), sample_pair()[0].with_name("sacre_coeur2.jpg"))]
    for path0, path1 in pairs:
        img0, img1 = load_image(path0, 640), load_image(path1, 640)
        ref = match(PairFeatures.compute(bundled_model, img0, img1, precision="fp32"), MatchOptions())
        low = match(PairFeatures.compute(bundled_model, img0, img1, precision="bf16"), MatchOptions())
        assert np.array_equal(ref.keypoints0, low.keypoints0)
        keep = filter_mask(ref, FilterSettings())
        close = np.linalg.norm(ref.keypoints1 - low.keypoints1, axis=1) <= 1.0
        print(f"{path0.name}: {close[keep].mean():.3f} of {keep.sum()} kept, {close.mean():.3f} of all {len(close)}")
        kept += int(keep.sum())
        same += int(close[keep].sum())
        assert close.mean() > 0.95  # all candidates, near-ties included
    assert kept > 200
    assert same / kept >= 0.98


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@CUDA
@pytest.mark.parametrize("precision", ["fp32", "auto", "fp16"])
def test_cuda_features_and_matches_agree_with_the_cpu(bundled_model, terrace_pair, precision):
    """The bundled model on the GPU gives the CPU's descriptors and the CPU's kept matches.

    A trained model, not a random one: a random network's descriptors are nearly flat, so
    thousands of near-ties flip between devices (TF32 convolutions, other reduction orders)
    and the comparison measures noise instead of the GPU path.
    """
    img0, img1 = (load_image(p, 640) for p in terrace_pair)
    cpu_features = PairFeatures.compute(bundled_model, img0, img1, "cpu", precision="fp32")
    gpu_features = PairFeatures.compute(bundled_model, img0, img1, "cuda", precision=precision)
    for ref, out in ((cpu_features.desc0, gpu_features.desc0), (cpu_features.desc1, gpu_features.desc1)):
        assert out.device.type == "cuda" and out.dtype == torch.float32
        cosine = (out.cpu() * ref).sum(0)
        assert cosine.mean() > (0.999 if precision == "fp32" else 0.99)
    cpu, gpu = match(cpu_features, MatchOptions()), match(gpu_features, MatchOptions())
    assert np.array_equal(cpu.keypoints0, gpu.keypoints0)
    keep = filter_mask(cpu, FilterSettings())
    close = np.linalg.norm(cpu.keypoints1 - gpu.keypoints1, axis=1) <= 1.0
    print(f"{precision}: {close[keep].mean():.3f} of {keep.sum()} kept, {close.mean():.3f} of all {len(close)}")
    assert keep.sum() > 50
    assert close[keep].mean() >= (0.98 if precision == "fp32" else 0.95)

"""Model architecture parity with open-ucn, and safe checkpoint loading."""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from ucn_gui.core.checkpoint import CheckpointError, infer_architecture, load_card, load_model, read_checkpoint, save_model
from ucn_gui.core.model import ARCHITECTURES, build_model

DATA = Path(__file__).parent / "data"
OPEN_UCN_CKPT = DATA / "open-ucn-format-ResUNetBN2D2-random.pth"


def test_parity_with_open_ucn_output():
    loaded = load_model(OPEN_UCN_CKPT)
    assert (loaded.arch, loaded.n_out) == ("ResUNetBN2D2", 64)
    ref = np.load(DATA / "parity-ResUNetBN2D2.npz")
    x = torch.from_numpy(ref["image_uint8"]).float()[None, None] / 255.0 - 0.5
    with torch.no_grad():
        out = loaded.model(x)[0].numpy()
    assert out.shape == ref["features"].shape
    assert np.abs(out - ref["features"]).max() < 1e-4


def test_state_dict_names_and_shapes_match_open_ucn():
    expected = {}
    for line in (DATA.parent.parent / "tests" / "data" / "ResUNetBN2D2-state-dict.tsv").read_text().splitlines():
        name, shape, _ = line.split("\t")
        expected[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    ours = {k: tuple(v.shape) for k, v in build_model("ResUNetBN2D2", 64).state_dict().items()}
    assert ours == expected


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("hw", [(1, 1), (7, 13), (33, 20)])
def test_any_size_stride_one_unit_norm(arch, hw):
    model = build_model(arch, 8).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 1, *hw) - 0.5)
    assert y.shape == (2, 8, *hw)
    assert torch.allclose(y.norm(dim=1), torch.ones(2, *hw), atol=1e-4)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_inferred_from_shapes(arch):
    assert infer_architecture(build_model(arch, 24).state_dict()) == (arch, 24)


def test_roundtrip_own_format_with_card(tmp_path):
    model = build_model("ResUNetBN2F", 32)
    path = save_model(tmp_path / "m.safetensors", model, {"command": "python -m trainer ...", "metrics": {"hit": 0.5}})
    loaded = load_model(path)
    assert (loaded.arch, loaded.n_out) == ("ResUNetBN2F", 32)
    assert loaded.card["metrics"] == {"hit": 0.5} and load_card(path)["architecture"] == "ResUNetBN2F"
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])
    assert not list(tmp_path.glob("*.tmp")), "no temp files left behind"


def test_bare_state_dict_and_ddp_prefix(tmp_path):
    model = build_model("ResUNetBN2C", 16)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "bare.pth")
    loaded = load_model(tmp_path / "bare.pth")
    assert (loaded.arch, loaded.n_out) == ("ResUNetBN2C", 16)


def test_mismatched_shapes_named(tmp_path):
    state = build_model("ResUNetBN2F", 16).state_dict()
    state["blocks2.0.conv1.weight"] = torch.zeros(32, 32, 5, 5)
    path = tmp_path / "broken.pth"
    torch.save({"state_dict": state, "config": {"model": "ResUNetBN2F", "model_n_out": 16}}, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    msg = str(err.value)
    assert "broken.pth" in msg and "blocks2.0.conv1.weight" in msg and "(32, 32, 3, 3)" in msg and "(32, 32, 5, 5)" in msg


class _RunsCode:
    """Unpickling this calls os.system: exactly what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [True, False])
def test_malicious_pickle_refused_and_nothing_runs(tmp_path, legacy):
    marker = tmp_path / "pwned"
    payload = {"state_dict": OrderedDict(build_model("ResUNetBN2F", 8).state_dict()), "config": _RunsCode(str(marker))}
    path = tmp_path / "evil.pth"
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    assert "evil.pth" in str(err.value) and "system" in str(err.value)
    assert not marker.exists(), "code from the checkpoint ran"


def test_plain_pickle_file_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(CheckpointError):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"not a checkpoint at all", "not a readable")])
def test_garbage_files(tmp_path, content, reason):
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_model(path)


def test_missing_file():
    with pytest.raises(CheckpointError, match="no such file"):
        load_model("/nonexistent/weights.pth")

"""Dense descriptors for one image on a device.

    desc = extract_features(model, image, "cpu")                    # precision 'auto': bf16 where native
    desc = extract_features(model, image, "cpu", precision="fp32")  # the exact fp32 network

In bf16 / fp16 the network runs under autocast with channels-last activations (the
layout oneDNN's and cuDNN's reduced-precision convolutions are fastest in); the
descriptors come back in fp32 and unit norm either way. In fp32 the network runs
exactly as before, contiguous, so it matches open-ucn to 1e-4.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .image import LoadedImage
from .nn import Cancelled
from .precision import autocast, resolve_precision


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available")
    return torch.device(requested)


@contextmanager
def _fp32_full_resolution(model: torch.nn.Module) -> Iterator[None]:
    """Run the model's full-resolution layers in fp32 under autocast (see ResUNet2), for this call only."""
    if not hasattr(model, "fp32_full_resolution"):
        yield
        return
    before = model.fp32_full_resolution
    model.fp32_full_resolution = True
    try:
        yield
    finally:
        model.fp32_full_resolution = before


@contextmanager
def _cancel_between_layers(model: torch.nn.Module, cancel: Callable[[], bool] | None) -> Iterator[None]:
    """Check ``cancel`` before every layer, so a forward pass on a large image stops
    within one layer's time rather than running to its end."""
    if cancel is None:
        yield
        return

    def check(_module: torch.nn.Module, _inputs: object) -> None:
        if cancel():
            raise Cancelled("features")

    handles = [m.register_forward_pre_hook(check) for m in model.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def memory_format_for(precision: str) -> torch.memory_format:
    """channels_last for the reduced precisions, the ordinary layout for fp32."""
    return torch.contiguous_format if precision == "fp32" else torch.channels_last


def _prepare(model: torch.nn.Module, device: torch.device, memory_format: torch.memory_format) -> torch.nn.Module:
    """Move the model to ``device`` and its 4-d weights to ``memory_format`` (in place; a no-op when already so)."""
    model = model.to(device).eval()
    # Every 4-d weight: a 1-channel one (the first conv's) is contiguous in both layouts.
    if not all(p.is_contiguous(memory_format=memory_format) for p in model.parameters() if p.ndim == 4):
        model = model.to(memory_format=memory_format)
    return model


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    image: LoadedImage,
    device: torch.device | str = "cpu",
    cancel: Callable[[], bool] | None = None,
    precision: str = "auto",
) -> torch.Tensor:
    """C x h x w unit-norm fp32 descriptors of the network-resolution image, on ``device``.

    precision: auto | fp32 | bf16 | fp16 (see :func:`ucn_gui.core.precision.resolve_precision`;
    'auto' is bf16 on CPUs with native bf16 and on CUDA, fp32 elsewhere). In channels-last
    the result is a C x h x w view of h x w x C memory, so its pixel rows are contiguous.
    """
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    memory_format = memory_format_for(precision)
    model = _prepare(model, device, memory_format)
    x = image.tensor().to(device).contiguous(memory_format=memory_format)
    with autocast(precision, device), _fp32_full_resolution(model), _cancel_between_layers(model, cancel):
        out = model(x)[0]
    return out.float()

"""Dense descriptors for one image on a device."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .image import LoadedImage
from .nn import Cancelled


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available")
    return torch.device(requested)


@contextmanager
def _cancel_between_layers(model: torch.nn.Module, cancel: Callable[[], bool]) -> Iterator[None]:
    """Check ``cancel`` before every layer, so a forward pass on a large image stops
    within one layer's time rather than running to its end."""

    def check(_module: torch.nn.Module, _inputs: object) -> None:
        if cancel():
            raise Cancelled("features")

    handles = [m.register_forward_pre_hook(check) for m in model.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    image: LoadedImage,
    device: torch.device | str = "cpu",
    cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """C x h x w unit-norm descriptors of the network-resolution image, on ``device``."""
    model = model.to(device).eval()
    x = image.tensor().to(device)
    if cancel is None:
        return model(x)[0]
    with _cancel_between_layers(model, cancel):
        return model(x)[0]

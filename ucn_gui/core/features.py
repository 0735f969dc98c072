"""Dense descriptors for one image on a device."""
from __future__ import annotations

import torch

from .image import LoadedImage


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available")
    return torch.device(requested)


@torch.no_grad()
def extract_features(model: torch.nn.Module, image: LoadedImage, device: torch.device | str = "cpu") -> torch.Tensor:
    """C x h x w unit-norm descriptors of the network-resolution image, on ``device``."""
    model = model.to(device).eval()
    return model(image.tensor().to(device))[0]

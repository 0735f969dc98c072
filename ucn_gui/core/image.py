"""Reading images for the network, keeping track of the original pixel grid.

    img = load_image("a.jpg", max_side=640)
    img.tensor()           # 1 x 1 x h x w float32 in [-0.5, 0.5] (the resized copy)
    img.to_original(xy)    # N x 2 network pixels -> original pixels

Every coordinate that leaves the core is in ORIGINAL pixels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 100_000_000  # refuse anything above 100 MP before decoding it


class ImageLoadError(Exception):
    """An image that cannot be used; the message names the file and the reason."""


@dataclass
class LoadedImage:
    """An image as the network sees it, plus what is needed to map back.

    gray:  h x w float32 in [-0.5, 0.5] (resized when max_side was given)
    rgb:   H x W x 3 uint8 at ORIGINAL resolution, for display
    scale: (sx, sy) such that original = network * scale (pixel centres aligned)
    """

    path: Path
    gray: np.ndarray
    rgb: np.ndarray
    scale: tuple[float, float]

    @property
    def original_size(self) -> tuple[int, int]:
        """(width, height) of the original image."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the network runs at."""
        return self.gray.shape[1], self.gray.shape[0]

    def tensor(self) -> torch.Tensor:
        """1 x 1 x h x w float32."""
        return torch.from_numpy(self.gray)[None, None]

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 (x, y) in network pixels -> original pixels."""
        sx, sy = self.scale
        out = np.asarray(xy, dtype=np.float32).copy()
        out[:, 0] = (out[:, 0] + 0.5) * sx - 0.5
        out[:, 1] = (out[:, 1] + 0.5) * sy - 0.5
        return out

    def to_network(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 (x, y) in original pixels -> network pixels (float)."""
        sx, sy = self.scale
        out = np.asarray(xy, dtype=np.float32).copy()
        out[:, 0] = (out[:, 0] + 0.5) / sx - 0.5
        out[:, 1] = (out[:, 1] + 0.5) / sy - 0.5
        return out


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """H x W x 3 uint8 RGB, EXIF orientation applied; ImageLoadError on anything unusable."""
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: the file is empty")
    _check_pixel_count(path)
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode copes with non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageLoadError(f"{path}: not an image OpenCV can decode (corrupt or unsupported format)")
    img = _to_uint8_rgb(img)
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageLoadError(f"{path}: the image has zero size")
    return _apply_exif_orientation(path, img)


def _check_pixel_count(path: Path) -> None:
    """Read only the header (via Pillow) so a decompression bomb is refused before decoding."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:  # far above even Pillow's own limit
        raise ImageLoadError(f"{path}: too large to open ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError):
        return  # Pillow cannot tell; OpenCV gets its chance and will say if it fails
    if w * h > MAX_PIXELS:
        raise ImageLoadError(f"{path}: {w}x{h} = {w * h / 1e6:.0f} MP is above the {MAX_PIXELS / 1e6:.0f} MP limit")
    if w == 0 or h == 0:
        raise ImageLoadError(f"{path}: the image has zero size")


def _to_uint8_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def _apply_exif_orientation(path: Path, rgb: np.ndarray) -> np.ndarray:
    # cv2.imdecode(IMREAD_UNCHANGED) ignores EXIF, so read the tag with Pillow.
    try:
        with Image.open(path) as im:
            orientation = int(im.getexif().get(0x0112, 1))
    except (UnidentifiedImageError, OSError, ValueError, TypeError):
        return rgb
    return _orient(rgb, orientation)


# EXIF orientation tag -> the array operation that makes the image upright.
_EXIF_OPS = {
    2: lambda a: a[:, ::-1],  # mirrored horizontally
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1, :],  # mirrored vertically
    5: lambda a: np.swapaxes(a, 0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # needs 90 clockwise
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],  # transversed
    8: lambda a: np.rot90(a, 1),  # needs 90 counter-clockwise
}


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    op = _EXIF_OPS.get(orientation)
    return rgb if op is None else np.ascontiguousarray(op(rgb))


def to_network_gray(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> H x W float32 in [-0.5, 0.5], the model's input contract."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return gray.astype(np.float32) / 255.0 - 0.5


def load_image(path: str | os.PathLike, max_side: int | None = None) -> LoadedImage:
    """Read an image for the network; with ``max_side`` the network sees a resized copy."""
    path = Path(path)
    rgb = read_rgb(path)
    return prepare_image(rgb, max_side=max_side, path=path)


def prepare_image(rgb: np.ndarray, max_side: int | None = None, path: str | os.PathLike = "<array>") -> LoadedImage:
    """Same as load_image for an H x W x 3 uint8 array already in memory."""
    h, w = rgb.shape[:2]
    small = rgb
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    scale = (w / small.shape[1], h / small.shape[0])
    return LoadedImage(path=Path(path), gray=to_network_gray(small), rgb=rgb, scale=scale)

"""Reading images for the network, keeping track of the original pixel grid.

    img = load_image("a.jpg", max_side=640)
    img.tensor()           # 1 x 1 x h x w float32 in [-0.5, 0.5] (the resized copy)
    img.to_original(xy)    # N x 2 network pixels -> original pixels
    big = load_image("12000x9000.jpg", max_side=640, keep_side=4096)   # decoded at 1/2: 6000 x 4500

An app that shows photos keeps a :class:`Photo` (RGB and path, ``open_photo``) and
asks it for the network's copy when a run starts (``photo.for_network(640)``).

Every coordinate that leaves the core is in ORIGINAL pixels. With ``keep_side`` a
photo far larger than needed is decoded reduced (a JPEG by its decoder, at 1/2, 1/4
or 1/8, which is several times faster than decoding it whole; other formats are
shrunk right after decoding), never below ``keep_side`` on its long side;
``original_size`` and every coordinate still refer to the photo's own pixels.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 250_000_000  # refuse anything above 250 MP (read from the header, before decoding)
# The window and ucn-match keep at least this long side of a huge photo (to show it and draw
# on it); the network copy (max_side) comes from that.
DISPLAY_SIDE = 4096
# Each side of a photo to match needs at least this many pixels: the network halves the image
# three times on the way down, and a smaller photo is matched "confidently" at a few pixels.
MIN_SIDE = 32
# Transparent pixels are laid over this grey before matching and showing: what a file stores
# under alpha 0 is arbitrary (often black), and grey stays visible next to dark and light content.
ALPHA_BACKGROUND = 128
REDUCTIONS = (8, 4, 2)  # the JPEG decoder's own scales (OpenCV's IMREAD_REDUCED_COLOR_*)
_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# Pillow reads only headers here. Its own decompression-bomb check refuses above twice
# this and warns above it; ours (MAX_PIXELS) refuses first, with the file's name.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageLoadError(Exception):
    """An image that cannot be used; the message names the file and the reason."""


@dataclass
class LoadedImage:
    """An image as the network sees it, plus what is needed to map back.

    gray:  h x w float32 in [-0.5, 0.5] (resized when max_side was given)
    rgb:   H x W x 3 uint8, the decoded image: original resolution, or reduced for huge
           photos loaded with keep_side (see rgb_scale)
    scale: (sx, sy) such that original = network * scale (pixel centres aligned)
    full_size: (width, height) of the original image when rgb is reduced; None: rgb's size
    """

    path: Path
    gray: np.ndarray
    rgb: np.ndarray
    scale: tuple[float, float]
    full_size: tuple[int, int] | None = None

    @property
    def original_size(self) -> tuple[int, int]:
        """(width, height) of the original image."""
        return self.full_size or (self.rgb.shape[1], self.rgb.shape[0])

    @property
    def rgb_scale(self) -> tuple[float, float]:
        """(sx, sy): original = rgb pixel * scale (1, 1 unless the photo was decoded reduced)."""
        w, h = self.original_size
        return w / self.rgb.shape[1], h / self.rgb.shape[0]

    def to_rgb(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 (x, y) in original pixels -> pixels of ``rgb`` (the same unless decoded reduced)."""
        sx, sy = self.rgb_scale
        out = np.asarray(xy, dtype=np.float32).copy()
        out[:, 0] = (out[:, 0] + 0.5) / sx - 0.5
        out[:, 1] = (out[:, 1] + 0.5) / sy - 0.5
        return out

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the network runs at."""
        return self.gray.shape[1], self.gray.shape[0]

    def tensor(self) -> torch.Tensor:
        """1 x 1 x h x w float32."""
        return torch.from_numpy(self.gray)[None, None]

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 (x, y) in network pixels -> original pixels."""
        return scale_pixels(xy, *self.scale)

    def to_network(self, xy: np.ndarray) -> np.ndarray:
        """N x 2 (x, y) in original pixels -> network pixels (float)."""
        sx, sy = self.scale
        out = np.asarray(xy, dtype=np.float32).copy()
        out[:, 0] = (out[:, 0] + 0.5) / sx - 0.5
        out[:, 1] = (out[:, 1] + 0.5) / sy - 0.5
        return out

    def network_map(self, values: np.ndarray) -> np.ndarray:
        """A map over this copy's pixels (h x w) as it lies over the photo: the same map here;
        a copy warped into another frame (core.alignment) warps it back."""
        return values


@dataclass(eq=False)  # compared by identity: a new Photo object is a new photo, even from the same file
class Photo:
    """A photo as an app shows it: RGB (decoded reduced when huge, see ``decode``) and its file.

    original_size: (width, height) of the photo itself; coordinates always refer to it.
    """

    path: Path
    rgb: np.ndarray  # H x W x 3 uint8
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()  # what decoding changed that the user should know (transparency flattened)

    @property
    def reduced(self) -> bool:
        """True when ``rgb`` has fewer pixels than the photo (decoded at 1/2, 1/4 or 1/8)."""
        return tuple(self.original_size) != (self.rgb.shape[1], self.rgb.shape[0])

    def for_network(self, max_side: int | None) -> LoadedImage:
        """The copy the network sees, at most ``max_side`` long. When the run wants more pixels
        than a reduced photo holds, the file is decoded again (slow: call it off the GUI thread)."""
        if self.reduced and (max_side is None or max_side > max(self.rgb.shape[:2])):
            return load_image(self.path, max_side, keep_side=max_side)
        return prepare_image(self.rgb, max_side, self.path, self.original_size)


def open_photo(path: str | os.PathLike, keep_side: int | None = None) -> Photo:
    """Decode a photo to show and match (reduced, never below ``keep_side``, when huge);
    ImageLoadError naming the file, also for a photo too small to match (see check_min_size)."""
    notes: list[str] = []
    rgb, original = decode(path, keep_side, notes)
    check_min_size(path, original)
    return Photo(Path(path), rgb, original, tuple(notes))


def check_min_size(path: str | os.PathLike, size: tuple[int, int]) -> None:
    """ImageLoadError unless both sides of a (width, height) photo have at least MIN_SIDE pixels."""
    w, h = size
    if min(w, h) < MIN_SIDE:
        raise ImageLoadError(f"{path}: {w}x{h} px is too small to match (each side needs at least {MIN_SIDE} px)")


def scale_pixels(xy: np.ndarray, sx: float, sy: float | None = None) -> np.ndarray:
    """N x 2 (x, y) pixel coordinates of an image -> those of the image resized by (sx, sy),
    pixel centres kept aligned (a centre at x maps to (x + 0.5) * s - 0.5). float32, a new array."""
    out = np.asarray(xy, dtype=np.float32).reshape(-1, 2).copy()
    out[:, 0] = (out[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (out[:, 1] + 0.5) * (sx if sy is None else sy) - 0.5
    return out


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """H x W x 3 uint8 RGB at full resolution, EXIF orientation applied; ImageLoadError on anything unusable."""
    return decode(path)[0]


def decode(path: str | os.PathLike, keep_side: int | None = None,
           notes: list[str] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """(H x W x 3 uint8 RGB, original (width, height)), EXIF orientation applied.

    keep_side: the decoded copy may be reduced by 2, 4 or 8 as long as its long side
    stays >= keep_side (a JPEG is decoded reduced; other formats are shrunk after
    decoding). None: full resolution. ImageLoadError, naming the file, on anything unusable.
    Transparent pixels are laid over grey (ALPHA_BACKGROUND); ``notes`` gets a line saying so.
    """
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: the file is empty")
    header = _read_header(path)
    factor = 1
    if keep_side is not None and header is not None:
        long_side = max(header.size)
        factor = next((r for r in REDUCTIONS if -(-long_side // r) >= keep_side), 1)
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode copes with non-ASCII paths
    if factor > 1 and header is not None and header.format == "JPEG":
        img = cv2.imdecode(data, _REDUCED_FLAGS[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
        factor = 1  # done by the decoder
    else:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    del data
    if img is None or img.size == 0:
        raise ImageLoadError(f"{path}: not an image OpenCV can decode (corrupt or unsupported format)")
    h, w = img.shape[:2]
    if factor > 1:  # not a JPEG: decoded whole, shrunk before the colour conversion
        img = cv2.resize(img, (-(-w // factor), -(-h // factor)), interpolation=cv2.INTER_AREA)
    img = _to_uint8_rgb(img, notes)
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageLoadError(f"{path}: the image has zero size")
    if header is not None:
        w, h = header.size  # the photo's own size, whatever scale it was decoded at
    orientation = header.orientation if header is not None else 1
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return _orient(img, orientation), (w, h)


@dataclass
class _Header:
    size: tuple[int, int]  # as stored, before EXIF orientation
    format: str | None
    orientation: int


def _read_header(path: Path) -> _Header | None:
    """Size, format and EXIF orientation from the header alone, so that a decompression
    bomb is refused before decoding: Pillow's reader, else the text headers of the two
    float formats OpenCV decodes and Pillow cannot (Radiance HDR, PFM); None when
    neither can tell (OpenCV then gets its chance and will say if it fails)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below says it
            im = Image.open(path)
        with im:
            w, h = im.size
            fmt = im.format
            try:
                orientation = int(im.getexif().get(0x0112, 1))
            except (OSError, ValueError, TypeError):
                orientation = 1
    except Image.DecompressionBombError as exc:  # far above even Pillow's raised limit
        raise ImageLoadError(f"{path}: too large to open ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError):
        size = _float_format_size(path)
        if size is None:
            return None
        (w, h), fmt, orientation = size, None, 1  # format None: decoded whole, shrunk afterwards
    if w * h > MAX_PIXELS:
        raise ImageLoadError(f"{path}: {w}x{h} = {w * h / 1e6:.0f} MP is too large (the limit is {MAX_PIXELS / 1e6:.0f} MP)")
    if w == 0 or h == 0:
        raise ImageLoadError(f"{path}: the image has zero size")
    return _Header((w, h), fmt, orientation)


def _float_format_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a Radiance HDR or PFM text header, None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        # Header lines, a blank line, then the resolution: "-Y 9000 +X 12000" (or +Y / -X variants).
        _, sep, rest = head.partition(b"\n\n")
        parts = rest.split(b"\n", 1)[0].split() if sep else []
        if len(parts) == 4 and parts[0][1:] in (b"Y", b"X") and parts[2][1:] in (b"Y", b"X"):
            try:
                a, b = int(parts[1]), int(parts[3])
            except ValueError:
                return None
            return (b, a) if parts[0][1:] == b"Y" else (a, b)
        return None
    if head[:3] in (b"PF\n", b"Pf\n"):
        dims = head[3:].split(b"\n", 1)[0].split()
        try:
            return (int(dims[0]), int(dims[1])) if len(dims) == 2 else None
        except ValueError:
            return None
    return None


ACCEPTED_ARRAYS = "uint8, uint16 or float in [0, 1]; H x W (grey), H x W x 1, x 3 (RGB) or x 4 (RGBA); numpy or torch"


def _file_depth_to_uint8(img: np.ndarray) -> np.ndarray:
    """A decoded file's pixels (any depth OpenCV returns) -> uint8, keeping the picture visible.

    Floats: [0, 1] is taken as is; anything brighter (a float TIFF in 0-255, a Radiance
    HDR's linear radiance) is scaled so its 99.9th percentile is white, so that a few hot
    pixels do not darken the rest."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img / 257.0).round().astype(np.uint8)
    if img.dtype in (np.float16, np.float32, np.float64):
        f = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(f.max()) if f.size else 0.0
        if top > 1.0:
            f = f / max(float(np.percentile(f, 99.9)), 1e-6)
        return (np.clip(f, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)  # int8/int16/int32: stretch


def _to_uint8_rgb(img: np.ndarray, notes: list[str] | None = None) -> np.ndarray:
    """OpenCV's decoded BGR / BGRA / grey of any depth -> H x W x 3 uint8 RGB (alpha flattened on grey)."""
    img = _file_depth_to_uint8(img)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        alpha = img[:, :, 3:4]
        if alpha.min() < 255:
            a = alpha.astype(np.float32) / 255.0
            img = (img[:, :, :3] * a + ALPHA_BACKGROUND * (1.0 - a)).round().astype(np.uint8)
            if notes is not None:
                notes.append(f"transparent pixels were laid over grey ({ALPHA_BACKGROUND}, {ALPHA_BACKGROUND}, {ALPHA_BACKGROUND})")
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def as_rgb_uint8(image: np.ndarray | torch.Tensor, what: str = "image") -> np.ndarray:
    """An image array from the Python API -> H x W x 3 uint8 RGB, or ValueError saying what was given.

    Accepted (ACCEPTED_ARRAYS): uint8; uint16 (full 16-bit range); float in [0, 1];
    grey, RGB or RGBA (alpha is dropped: the network sees intensities only); numpy
    arrays or CPU/GPU torch tensors laid out H x W (x C). Anything else - other dtypes,
    floats outside [0, 1] or not finite, C x H x W, empty - is refused rather than guessed."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what}: expected a numpy array or torch tensor, got {type(image).__name__} (accepted: {ACCEPTED_ARRAYS})")
    a = image
    shape = "x".join(map(str, a.shape))
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or a.size == 0:
        raise ValueError(f"{what}: shape {shape} is not an image (accepted: {ACCEPTED_ARRAYS})")
    if a.dtype == np.uint8:
        out = a
    elif a.dtype == np.uint16:
        out = (a / 257.0).round().astype(np.uint8)
    elif a.dtype in (np.float16, np.float32, np.float64):
        lo, hi = float(np.min(a)), float(np.max(a))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1.0 + 1e-3:
            raise ValueError(f"{what}: float values span [{lo:.4g}, {hi:.4g}]; floats must lie in [0, 1] "
                             f"(divide 0-255 data by 255) (accepted: {ACCEPTED_ARRAYS})")
        out = (np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise ValueError(f"{what}: dtype {a.dtype} is not accepted (accepted: {ACCEPTED_ARRAYS})")
    if out.ndim == 2:
        return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(out[:, :, :3])


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


def load_image(path: str | os.PathLike, max_side: int | None = None, keep_side: int | None = None) -> LoadedImage:
    """Read an image for the network; with ``max_side`` the network sees a resized copy.

    keep_side: decode a huge photo reduced, never below this long side (see :func:`decode`);
    at least ``max_side`` is kept in any case.
    """
    path = Path(path)
    if keep_side is not None and max_side is not None:
        keep_side = max(keep_side, max_side)
    rgb, original = decode(path, keep_side)
    return prepare_image(rgb, max_side=max_side, path=path, original_size=original)


def shrink_to_max_side(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """``img`` (H x W or H x W x C) resized with area averaging so its long side is at most
    ``max_side``; returned unchanged when it already fits or ``max_side`` is 0 / None.
    The one rule every network, training and display copy follows."""
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    f = max_side / max(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def prepare_image(
    rgb: np.ndarray,
    max_side: int | None = None,
    path: str | os.PathLike = "<array>",
    original_size: tuple[int, int] | None = None,
) -> LoadedImage:
    """Same as load_image for an image already in memory (any of ACCEPTED_ARRAYS, see
    :func:`as_rgb_uint8`; ValueError naming ``path`` for anything else).

    original_size: (width, height) of the photo ``rgb`` was reduced from, if it was.
    """
    rgb = as_rgb_uint8(rgb, what=str(path))
    h, w = rgb.shape[:2]
    small = shrink_to_max_side(rgb, max_side)
    full = original_size if original_size is not None and tuple(original_size) != (w, h) else None
    ow, oh = full or (w, h)
    scale = (ow / small.shape[1], oh / small.shape[0])
    return LoadedImage(path=Path(path), gray=to_network_gray(small), rgb=rgb, scale=scale, full_size=full)

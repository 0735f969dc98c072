"""Pictures of matches: the seed's jet colours by position in image 0, drawn side by side.

    rgb = draw_matches(img0.rgb, img1.rgb, kp0, kp1, lines=True)
    save_picture("matches.png", rgb)          # .png, .jpg or .jpeg, written atomically

The window's dots use the same colour rule (``position_fraction``) through ``ui/colors.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .files import OutputPathError, atomic_write

PICTURE_FORMATS = (".png", ".jpg", ".jpeg")  # what save_picture encodes, chosen by the suffix


def position_fraction(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """N floats in [0, 1]: where each point lies in image 0, (x / w + y / h) / 2.

    The seed's colouring rule; the app's dots and the exported PNG both use it.
    """
    return np.clip((xy[:, 0] / max(width, 1) + xy[:, 1] / max(height, 1)) / 2.0, 0.0, 1.0)


def jet_lut(n: int = 256) -> np.ndarray:
    """n x 3 uint8 RGB sampled evenly from OpenCV's JET colormap."""
    ramp = np.linspace(0, 255, n).round().astype(np.uint8)[:, None]
    return cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[:, 0, ::-1].copy()


def jet_colors(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """N x 3 uint8 RGB: the seed's look, colour by position in image 0."""
    return jet_lut(256)[(position_fraction(xy, width, height) * 255).astype(int)]


def draw_matches(
    rgb0: np.ndarray, rgb1: np.ndarray, kp0: np.ndarray, kp1: np.ndarray, lines: bool = False, max_lines: int = 500, radius: int = 2
) -> np.ndarray:
    """Side-by-side picture at full resolution: dots coloured by position in image 0.

    rgb0/rgb1: H x W x 3 uint8; kp0/kp1: N x 2 original pixels. Returns RGB uint8.
    """
    h = max(rgb0.shape[0], rgb1.shape[0])
    canvas = np.zeros((h, rgb0.shape[1] + rgb1.shape[1], 3), np.uint8)
    canvas[: rgb0.shape[0], : rgb0.shape[1]] = rgb0
    canvas[: rgb1.shape[0], rgb0.shape[1] :] = rgb1
    canvas = (canvas * 0.7).astype(np.uint8)  # dim the photos so the dots read
    colors = jet_colors(kp0, rgb0.shape[1], rgb0.shape[0])
    off = np.array([rgb0.shape[1], 0], np.float32)
    if lines and len(kp0):
        step = max(1, len(kp0) // max_lines)
        for p, q, c in zip(kp0[::step], kp1[::step] + off, colors[::step]):
            cv2.line(canvas, tuple(map(int, np.round(p))), tuple(map(int, np.round(q))), tuple(int(v) for v in c), 1, cv2.LINE_AA)
    for pts in (kp0, kp1 + off):
        for p, c in zip(pts, colors):
            cv2.circle(canvas, tuple(map(int, np.round(p))), radius, tuple(int(v) for v in c), -1, cv2.LINE_AA)
    return canvas


def save_picture(path: str | os.PathLike, rgb: np.ndarray, jpeg_quality: int = 95) -> Path:
    """Write an RGB picture in the format its suffix names (.png, .jpg, .jpeg), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PICTURE_FORMATS:
        raise OutputPathError(f"{path}: unsupported picture format {suffix or '(no suffix)'!r} (use {', '.join(PICTURE_FORMATS)})")
    ext, params = (".png", []) if suffix == ".png" else (".jpg", [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])

    def write(tmp: Path) -> None:
        ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise OSError(f"{path}: {ext[1:].upper()} encoding failed")
        tmp.write_bytes(buf.tobytes())

    atomic_write(path, write)
    return path

"""Writing matches (NPZ / CSV / JSON) and a picture of them (PNG or JPEG).

All three match formats carry the same columns: keypoints0 / keypoints1 (x, y in
original pixels), reciprocity_error, stability_error, descriptor_distance, ratio,
mask. NPZ and JSON also carry the settings used; CSV stays plain columns.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .checkpoint import atomic_write
from .matching import MatchSet

MATCH_FORMATS = (".npz", ".csv", ".json")
PICTURE_FORMATS = (".png", ".jpg", ".jpeg")  # what save_picture encodes, chosen by the suffix


class OutputPathError(ValueError):
    """An output path that would overwrite an input or another output, or cannot be a file."""
CSV_HEADER = ("x0", "y0", "x1", "y1", "reciprocity_error", "stability_error", "descriptor_distance", "ratio", "mask")


def match_columns(matches: MatchSet, mask: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "keypoints0": matches.keypoints0.astype(np.float32),
        "keypoints1": matches.keypoints1.astype(np.float32),
        "reciprocity_error": matches.reciprocity_error.astype(np.float32),
        "stability_error": matches.stability_error.astype(np.float32),
        "descriptor_distance": matches.descriptor_distance.astype(np.float32),
        "ratio": matches.ratio.astype(np.float32),
        "mask": np.asarray(mask, dtype=bool),
    }


def save_matches(path: str | os.PathLike, matches: MatchSet, mask: np.ndarray, settings: Mapping[str, Any] | None = None) -> Path:
    """Write matches in the format the suffix names (.npz, .csv or .json), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MATCH_FORMATS:
        raise ValueError(f"{path}: unsupported output format {suffix!r} (use {', '.join(MATCH_FORMATS)})")
    if len(mask) != len(matches):
        raise ValueError(f"mask has {len(mask)} entries for {len(matches)} matches")
    cols = match_columns(matches, mask)
    settings = dict(settings or {})

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending ".npz" to the temp name
            np.savez(f, **cols, settings=np.array(json.dumps(settings, default=str)))

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for row in zip(
                *cols["keypoints0"].T, *cols["keypoints1"].T, cols["reciprocity_error"], cols["stability_error"],
                cols["descriptor_distance"], cols["ratio"], cols["mask"].astype(int),
            ):
                w.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])

    def write_json(tmp: Path) -> None:
        doc = {"settings": settings, **{k: v.tolist() for k, v in cols.items()}}
        tmp.write_text(json.dumps(doc, default=str))

    atomic_write(path, {".npz": write_npz, ".csv": write_csv, ".json": write_json}[suffix])
    return path


def load_matches(path: str | os.PathLike) -> dict[str, Any]:
    """Read back any of the three formats into the same dict of arrays (+ 'settings')."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            out: dict[str, Any] = {k: z[k] for k in z.files if k != "settings"}
            out["settings"] = json.loads(str(z["settings"])) if "settings" in z.files else {}
        return out
    if suffix == ".json":
        doc = json.loads(path.read_text())
        out = {k: np.asarray(v, dtype=bool if k == "mask" else np.float32) for k, v in doc.items() if k != "settings"}
        out["settings"] = doc.get("settings", {})
        return out
    if suffix == ".csv":
        with open(path, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        col = lambda name, dt=np.float32: np.array([r[name] for r in rows], dtype=np.float64).astype(dt)  # noqa: E731
        return {
            "keypoints0": np.stack([col("x0"), col("y0")], 1).reshape(-1, 2),
            "keypoints1": np.stack([col("x1"), col("y1")], 1).reshape(-1, 2),
            "reciprocity_error": col("reciprocity_error"),
            "stability_error": col("stability_error"),
            "descriptor_distance": col("descriptor_distance"),
            "ratio": col("ratio"),
            "mask": col("mask", np.int64).astype(bool),
            "settings": {},  # CSV is columns only; NPZ and JSON keep the settings
        }
    raise ValueError(f"{path}: unsupported format {suffix!r}")


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


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    path = Path(path)

    def write(tmp: Path) -> None:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"{path}: PNG encoding failed")
        tmp.write_bytes(buf.tobytes())

    atomic_write(path, write)
    return path


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


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file: equal after resolving symbolic links, '..' and './',
    or (both existing) the same inode, as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_paths(outputs: Mapping[str, str | os.PathLike], inputs: Mapping[str, str | os.PathLike]) -> None:
    """OutputPathError unless each output may be written: not an input, not another output,
    not a folder or a device, not a read-only file, and in a folder (or where one can be made).

    Keys are the labels that messages use (an option name such as "--viz", or "image0").
    """
    named = [(label, Path(p)) for label, p in outputs.items() if p is not None]
    for i, (label, out) in enumerate(named):
        for in_label, inp in inputs.items():
            if inp is not None and same_file(out, inp):
                raise OutputPathError(f"{label} {out} is the same file as {in_label} ({inp}); an input is never overwritten")
        for other_label, other in named[i + 1:]:
            if same_file(out, other):
                raise OutputPathError(f"{label} {out} and {other_label} {other} are the same file; give them different names")
        real = Path(os.path.realpath(out))
        if real.is_symlink():  # realpath stops where links loop
            raise OutputPathError(f"{label} {out}: symbolic links that loop; nothing can be written there")
        if real.is_dir():
            raise OutputPathError(f"{label} {out} is a folder; name a file")
        if real.exists():
            if not real.is_file():
                raise OutputPathError(f"{label} {out} exists and is not a regular file (a device or a pipe); not overwritten")
            if not real.stat().st_mode & 0o222:
                raise OutputPathError(f"{label} {out} is read-only; not overwritten")
        parent = real.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputPathError(f"{label} {out}: {parent} is not a folder")

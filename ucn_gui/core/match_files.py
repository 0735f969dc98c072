"""Match files: NPZ, CSV and JSON with the same columns, written atomically and read back.

    save_matches("m.npz", matches, mask, {"model": "..."})   # the suffix picks the format
    cols = load_matches("m.csv")                              # the same dict of arrays (+ 'settings')

Columns: keypoints0 / keypoints1 (x, y in original pixels); the reciprocity and
stability errors twice, named by unit: ``*_error_network_px`` (pixels of image 0 at
the network's resolution, the unit of the thresholds) and ``*_error_original_px``
(pixels of the original image 0); descriptor_distance, ratio, mask. All three
formats carry the settings used (thresholds, units, model, precision): NPZ and JSON
as a ``settings`` entry, CSV as ``# key: value`` lines before the header.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write
from .matching import MatchSet

MATCH_FORMATS = (".npz", ".csv", ".json")
ERROR_COLUMNS = ("reciprocity_error_network_px", "stability_error_network_px",
                 "reciprocity_error_original_px", "stability_error_original_px")
CSV_HEADER = ("x0", "y0", "x1", "y1", *ERROR_COLUMNS, "descriptor_distance", "ratio", "mask")
# Files written before the errors carried their unit: their errors were in original pixels.
_OLD_NAMES = {"reciprocity_error": "reciprocity_error_original_px", "stability_error": "stability_error_original_px"}


def error_units(matches: MatchSet) -> dict[str, Any]:
    """What the error columns and the thresholds measure, for a file's settings."""
    side = matches.network_side or "full size"
    return {
        "error_units": {
            "network_px": f"pixels of image 0 at the network's resolution (long side {side}); the thresholds use this unit",
            "original_px": "pixels of the original image 0",
        },
        "network_side": matches.network_side,
        "original_px_per_network_px": round(matches.error_scale, 6),
        "matcher": matches.method,
    }


def match_columns(matches: MatchSet, mask: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "keypoints0": matches.keypoints0.astype(np.float32),
        "keypoints1": matches.keypoints1.astype(np.float32),
        "reciprocity_error_network_px": matches.reciprocity_error.astype(np.float32),
        "stability_error_network_px": matches.stability_error.astype(np.float32),
        "reciprocity_error_original_px": matches.reciprocity_error_original.astype(np.float32),
        "stability_error_original_px": matches.stability_error_original.astype(np.float32),
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
    settings = {**error_units(matches), **(settings or {})}

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending ".npz" to the temp name
            np.savez(f, **cols, settings=np.array(json.dumps(settings, default=str)))

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            for key, value in settings.items():  # what made the file, one "# key: JSON" line each
                f.write(f"# {key}: {json.dumps(value, default=str)}\n")
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for row in zip(
                *cols["keypoints0"].T, *cols["keypoints1"].T, *(cols[c] for c in ERROR_COLUMNS),
                cols["descriptor_distance"], cols["ratio"], cols["mask"].astype(int),
            ):
                # The shortest text that reads back to the same float32 (".6g" lost up to 0.005 px).
                w.writerow([np.format_float_positional(v, unique=True, trim="-") if isinstance(v, np.floating)
                            else v for v in row])

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
        return _renamed(out)
    if suffix == ".json":
        doc = json.loads(path.read_text())
        out = {k: np.asarray(v, dtype=bool if k == "mask" else np.float32) for k, v in doc.items() if k != "settings"}
        out["settings"] = doc.get("settings", {})
        return _renamed(out)
    if suffix == ".csv":
        settings: dict[str, Any] = {}
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        while lines and lines[0].startswith("# "):
            key, _, value = lines.pop(0)[2:].partition(": ")
            settings[key] = json.loads(value)
        rows = list(csv.DictReader(lines))
        names = lines[0].split(",") if lines else list(CSV_HEADER)
        col = lambda name, dt=np.float32: np.array([r[name] for r in rows], dtype=np.float64).astype(dt)  # noqa: E731
        out = {
            "keypoints0": np.stack([col("x0"), col("y0")], 1).reshape(-1, 2),
            "keypoints1": np.stack([col("x1"), col("y1")], 1).reshape(-1, 2),
            **{name: col(name) for name in names if name not in ("x0", "y0", "x1", "y1", "mask")},
            "mask": col("mask", np.int64).astype(bool),
            "settings": settings,
        }
        return _renamed(out)
    raise ValueError(f"{path}: unsupported format {suffix!r}")


def _renamed(columns: dict[str, Any]) -> dict[str, Any]:
    """Older files' unit-less error columns under the name of their unit (original pixels)."""
    return {_OLD_NAMES.get(k, k): v for k, v in columns.items()}

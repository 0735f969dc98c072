"""Writing merged matches in hloc's HDF5 layout, one file holding both features and matches.

    write_h5("matches.h5", merged)

Layout (hloc's, so its ``reconstruction.main(..., features=F, matches=F)`` reads it with F
this one file):

    /<image name>/keypoints          K x 2 float32, (x, y) pixels, OpenCV convention (hloc's)
    /<image name>/image_size         2 int64, (width, height)
    /<name0>/<name1>/matches0        K0 int32: index into image 1's keypoints, -1 for none
    /<name0>/<name1>/matching_scores0  K0 float32: the match's score in [0, 1], 0 for none

An image name's '/' makes nested groups (hloc does the same); in a pair's group name each
image name has its '/' replaced by '-' (hloc's ``names_to_pair``). Written under a temporary
name and renamed when complete. h5py comes with the extra ``sfm``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .files import atomic_write
from .colmap_export import MissingExtra
from .tracks import MergedMatches


def pair_key(name0: str, name1: str) -> str:
    """The group of a pair's matches, as hloc names it."""
    return f"{name0.replace('/', '-')}/{name1.replace('/', '-')}"


def import_h5py():
    try:
        import h5py
    except ImportError:
        raise MissingExtra("h5py is not installed; pip install 'ucn-viewer[sfm]' (or pip install h5py)") from None
    return h5py


def write_h5(path: str | os.PathLike, merged: MergedMatches) -> None:
    """Write ``merged`` to ``path`` (replacing any file there)."""
    h5py = import_h5py()

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for name in sorted(merged.keypoints):
                g = f.require_group(name)
                g.create_dataset("keypoints", data=merged.keypoints[name].astype(np.float32).reshape(-1, 2))
                g.create_dataset("image_size", data=np.asarray(merged.sizes[name], np.int64))
            for (a, b), (idx, scores) in merged.matches.items():
                n0 = len(merged.keypoints[a])
                matches0 = np.full(n0, -1, np.int32)
                scores0 = np.zeros(n0, np.float32)
                matches0[idx[:, 0]] = idx[:, 1]
                scores0[idx[:, 0]] = scores
                g = f.require_group(pair_key(a, b))
                g.create_dataset("matches0", data=matches0)
                g.create_dataset("matching_scores0", data=scores0)

    atomic_write(path, write)

"""Writing merged matches into a COLMAP database with pycolmap's database API, then COLMAP's
geometric verification, so that ``colmap mapper`` (or :mod:`ucn_gui.core.sfm`) reconstructs.

    summary = write_database("database.db", merged, image_dir)

One camera per image (its focal length from EXIF when present, else COLMAP's default of
1.2 x the long side; see camera_prior), with the trivial rig and frame COLMAP 3.12+ expects
for a single camera; keypoints; raw matches; then two-view geometries from
``pycolmap.geometric_verification``. pycolmap is the optional extra ``sfm``
(``pip install 'ucn-viewer[sfm]'``).

COLMAP puts pixel centres at +0.5 (the image's top-left corner is (0, 0)); the matches use
OpenCV's convention (the top-left pixel's centre is (0, 0)), so keypoints get +0.5 here.
The file is built under a temporary name and renamed when complete (verification included):
a killed run never leaves half a database.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera_prior import focal_prior
from .files import atomic_write
from .tracks import MergedMatches

CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
COLMAP_PIXEL_OFFSET = 0.5


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def import_pycolmap():
    """pycolmap, quiet (warnings and errors only), or MissingExtra saying how to install it."""
    try:
        import pycolmap
    except ImportError:
        raise MissingExtra("pycolmap is not installed; pip install 'ucn-viewer[sfm]' (or pip install pycolmap)") from None
    pycolmap.logging.minloglevel = 1  # COLMAP logs every step at INFO level on stderr
    return pycolmap


@dataclass
class DatabaseSummary:
    images: int
    keypoints: int
    matched_pairs: int
    matches: int
    verified_pairs: int
    inlier_matches: int
    exif_focals: int  # cameras whose focal length came from EXIF


def write_database(
    path: str | os.PathLike,
    merged: MergedMatches,
    image_dir: str | os.PathLike,
    camera_model: str = "SIMPLE_RADIAL",
    verify: bool = True,
    threads: int = -1,
) -> DatabaseSummary:
    """Write ``merged`` as a new COLMAP database at ``path`` (replacing any file there).

    Image ids follow the sorted image names; each pair's matches keep the pairs' order.
    """
    pycolmap = import_pycolmap()
    if camera_model not in CAMERA_MODELS:
        raise ValueError(f"unknown camera model {camera_model!r} ({', '.join(CAMERA_MODELS)})")
    image_dir = Path(image_dir)
    result: dict[str, DatabaseSummary] = {}

    def write(tmp: Path) -> None:
        db = pycolmap.Database.open(str(tmp))
        try:
            ids, exif = _write_images(pycolmap, db, merged, image_dir, camera_model)
            n_matches = 0
            for (a, b), (idx, _scores) in merged.matches.items():
                if len(idx):
                    # pycolmap stores the pair once under its pair id and swaps the columns itself
                    # when image_id1 > image_id2 (checked by tests/test_batch.py).
                    db.write_matches(ids[a], ids[b], np.ascontiguousarray(idx, dtype=np.uint32))
                    n_matches += len(idx)
            matched = db.num_matched_image_pairs()
            keypoints = db.num_keypoints()
        finally:
            db.close()
        if verify:
            opts = pycolmap.GeometricVerifierOptions()
            opts.num_threads = threads
            pycolmap.geometric_verification(str(tmp), opts)
        db = pycolmap.Database.open(str(tmp))
        try:
            _, inliers = db.read_two_view_geometry_num_inliers()
            verified = sum(1 for n in inliers if n > 0)
        finally:
            db.close()
        result["summary"] = DatabaseSummary(len(ids), keypoints, matched, n_matches, verified, int(sum(inliers)), exif)

    atomic_write(path, write)
    return result["summary"]


def _write_images(pycolmap, db, merged: MergedMatches, image_dir: Path, camera_model: str) -> tuple[dict[str, int], int]:
    """Cameras, rigs, images and frames, then each image's keypoints; returns name -> image id and the EXIF count."""
    ids, exif = write_images(db, merged.sizes, image_dir, camera_model)
    for name, image_id in ids.items():
        kp = merged.keypoints[name].astype(np.float32).reshape(-1, 2) + COLMAP_PIXEL_OFFSET
        db.write_keypoints(image_id, np.ascontiguousarray(kp))
    return ids, exif


def write_images(db, sizes: dict[str, tuple[int, int]], image_dir: str | os.PathLike,
                 camera_model: str = "SIMPLE_RADIAL") -> tuple[dict[str, int], int]:
    """One camera (focal length: see camera_prior), trivial rig, image and frame per name, in
    sorted order, into an open pycolmap Database. Returns name -> image id and how many focal
    lengths came from EXIF. (Also how benchmarks/bench_sfm.py gives SIFT the same cameras.)"""
    pycolmap = import_pycolmap()
    ids: dict[str, int] = {}
    exif = 0
    for name in sorted(sizes):
        w, h = sizes[name]
        focal, from_exif = focal_prior(Path(image_dir) / name, w, h)
        exif += from_exif
        camera = pycolmap.Camera.create_from_model_name(0, camera_model, float(focal), int(w), int(h))
        camera.has_prior_focal_length = from_exif
        camera_id = db.write_camera(camera)
        rig = pycolmap.Rig()
        rig.add_ref_sensor(db.read_camera(camera_id).sensor_id)
        rig_id = db.write_rig(rig)
        image_id = db.write_image(pycolmap.Image(name=name, camera_id=camera_id))
        frame = pycolmap.Frame()
        frame.rig_id = rig_id
        frame.add_data_id(db.read_image(image_id).data_id)
        db.write_frame(frame)
        ids[name] = image_id
    return ids, exif

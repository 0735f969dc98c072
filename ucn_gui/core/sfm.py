"""Incremental reconstruction (COLMAP's mapper through pycolmap) from a database, and its figures.

    models = reconstruct("database.db", image_dir, "sparse/")
    for m in models: print(m.line())
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .colmap_export import import_pycolmap


@dataclass
class ModelStats:
    """What one reconstructed model holds."""

    index: int
    path: Path
    registered: int
    images: int  # in the database
    points: int
    mean_track_length: float
    mean_reprojection_error: float  # px

    def line(self) -> str:
        return (f"model {self.index}: {self.registered} of {self.images} images registered, {self.points:,} points, "
                f"mean track length {self.mean_track_length:.2f}, mean reprojection error "
                f"{self.mean_reprojection_error:.2f} px -> {self.path}")


def reconstruct(database: str | os.PathLike, image_dir: str | os.PathLike, out_dir: str | os.PathLike,
                threads: int = -1, seed: int = 0):
    """Run COLMAP's incremental mapping; each model is written to ``out_dir/<index>`` (COLMAP's
    binary format). Returns (stats per model, largest first; the pycolmap Reconstructions)."""
    pycolmap = import_pycolmap()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = threads
    options.random_seed = seed  # the same matches give the same model
    with pycolmap.Database.open(str(database)) as db:
        n_images = db.num_images()
    models = pycolmap.incremental_mapping(str(database), str(image_dir), str(out_dir), options)
    stats = [
        ModelStats(int(i), out_dir / str(i), r.num_reg_images(), n_images, r.num_points3D(),
                   float(r.compute_mean_track_length()), float(r.compute_mean_reprojection_error()))
        for i, r in models.items()
    ]
    stats.sort(key=lambda s: (-s.registered, -s.points))
    return stats, models

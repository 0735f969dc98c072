"""Test data for the trainer: a tiny YFCC100M tree rendered with known cameras, and photo folders.

The YFCC scene is a textured plane (a real photo) at depth 5 seen by three cameras;
each image is rendered exactly by the plane-induced homography, so the true pixel
correspondence of every point is known, and the calibration HDF5 files use the
YFCC conventions (x_cam = R X + T, K without principal point, imsize = (w, h)).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parent.parent / "resources" / "samples"
PHOTOS = [DATA / "terrace0.jpg", DATA / "terrace1.jpg", SAMPLES / "sacre_coeur1.jpg", SAMPLES / "sacre_coeur2.jpg"]

WIDTH, HEIGHT, FOCAL = 320, 240, 300.0
PLANE_DEPTH, TEXTURE_SCALE = 5.0, 100.0  # texture pixels per world unit


def photo_folder(root: Path, names: list[Path] | None = None) -> Path:
    """A folder with copies of the repository's sample photos."""
    root.mkdir(parents=True, exist_ok=True)
    for p in names or PHOTOS:
        shutil.copy(p, root / p.name)
    return root


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


@dataclass
class Camera:
    R: np.ndarray
    T: np.ndarray  # x_cam = R X + T

    @classmethod
    def at(cls, centre: tuple[float, float, float], yaw_deg: float) -> "Camera":
        R = rot_y(yaw_deg)
        return cls(R=R, T=-R @ np.asarray(centre, dtype=np.float64))


def pixel_K() -> np.ndarray:
    return np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])


def texture_to_image(cam: Camera, texture_hw: tuple[int, int]) -> np.ndarray:
    """3 x 3 homography: texture pixel (u, v) -> image pixel, through the plane Z = PLANE_DEPTH."""
    th, tw = texture_hw
    s, cu, cv_ = TEXTURE_SCALE, tw / 2, th / 2
    A = np.array([[1 / s, 0, -cu / s], [0, 1 / s, -cv_ / s], [0, 0, PLANE_DEPTH]])  # (u, v, 1) -> (X, Y, Z)
    M = cam.R @ A
    M[:, 2] += cam.T
    return pixel_K() @ M


CAMERAS = [Camera.at((0, 0, 0), 0.0), Camera.at((0.6, 0.1, 0.0), -5.0), Camera.at((-0.5, -0.2, 0.3), 4.0)]
VISIBILITY = np.array([[0, 500, 300], [500, 0, 50], [300, 50, 0]], dtype=np.float64)


def make_yfcc_tree(raw: Path, texture: Path = DATA / "terrace0.jpg", scene: str = "plane_scene", phases: tuple[str, ...] = ("train", "val")) -> list[np.ndarray]:
    """Write RAW/<scene>/<phase>/... in the YFCC layout; returns the texture->image homographies."""
    import h5py

    tex = cv2.imread(str(texture))
    Hs = [texture_to_image(c, tex.shape[:2]) for c in CAMERAS]
    for phase in phases:
        d = raw / scene / phase
        for sub in ("images", "calibration", "visibility"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        images, calibs, vis = [], [], []
        for i, (cam, H) in enumerate(zip(CAMERAS, Hs)):
            img = cv2.warpPerspective(tex, H, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
            cv2.imwrite(str(d / "images" / f"img_{i}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            with h5py.File(d / "calibration" / f"calibration_{i}.h5", "w") as f:
                f["K"] = np.array([[FOCAL, 0, 0], [0, FOCAL, 0], [0, 0, 1]])
                f["R"] = cam.R
                f["T"] = cam.T.reshape(3, 1)
                f["imsize"] = np.array([[WIDTH, HEIGHT]], dtype=np.float64)
            np.savetxt(d / "visibility" / f"vis_{i}.txt", VISIBILITY[i][None])
            images.append(f"images/img_{i}.jpg")
            calibs.append(f"calibration/calibration_{i}.h5")
            vis.append(f"visibility/vis_{i}.txt")
        (d / "images.txt").write_text("\n".join(images) + "\n")
        (d / "calibration.txt").write_text("\n".join(calibs) + "\n")
        (d / "visibility.txt").write_text("\n".join(vis) + "\n")
    return Hs


def image_to_image(Hs: list[np.ndarray], i: int, j: int) -> np.ndarray:
    """True pixel homography from image i to image j of the rendered scene."""
    return Hs[j] @ np.linalg.inv(Hs[i])

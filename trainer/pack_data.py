"""Shrink a training data set into a small folder that travels with the repository (e.g. to a GPU machine).

    python -m trainer.pack_data --posed ../shared/data/posed --photos ../shared/data/images/yfcc ... \\
        --out .gpudata --max-side 640

Posed scenes keep their layout (images/, cameras.json with K rescaled to the
shrunk images, pairs.txt); scenes of estimated geometry (trainer.estimate_pairs,
already at the training size) are copied; photo folders become ``photos/<name>/``. JPEG quality 90.
The trainer reads the result with ``--posed_dir OUT/posed --data_dir OUT/photos``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2

from ucn_gui import read_rgb, shrink_to_max_side

from .datasets.homography import list_images
from .datasets.posed import FUNDAMENTALS_FILE, PosedDataset, PosedParams, find_scene_dirs, load_scene, read_cameras


def _shrink(src: Path, dst: Path, max_side: int, quality: int) -> float:
    """Write ``src`` shrunk to ``max_side`` as JPEG; returns the scale factor (new width / old width)."""
    full = read_rgb(src)
    rgb = shrink_to_max_side(full, max_side)
    s = rgb.shape[1] / full.shape[1]
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst.with_suffix(".jpg")), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return s


def pack_scene(scene: Path, out: Path, max_side: int, quality: int) -> None:
    if not (scene / "cameras.json").is_file():  # estimated geometry (trainer.estimate_pairs): already small
        shutil.copytree(scene / "images", out / "images", dirs_exist_ok=True)
        shutil.copyfile(scene / FUNDAMENTALS_FILE, out / FUNDAMENTALS_FILE)
        return
    meta = json.loads((scene / "cameras.json").read_text())
    cameras = read_cameras(scene)  # checked, and Camera.scaled is the one rescaling rule for K
    for name, cam in meta["images"].items():
        if Path(name).suffix.lower() not in (".jpg", ".jpeg"):
            raise SystemExit(f"{scene.name}/{name}: only JPEG scenes are packed (names are kept)")
        s = _shrink(scene / "images" / name, out / "images" / name, max_side, quality)
        small = cameras[name].scaled(s)
        cam["K"], cam["width"], cam["height"] = small.K.tolist(), small.width, small.height
    meta["note"] = f"{meta.get('note', '')} Shrunk to {max_side} px by trainer.pack_data; K rescaled.".strip()
    (out / "cameras.json").write_text(json.dumps(meta))
    if (scene / "pairs.txt").is_file():
        shutil.copyfile(scene / "pairs.txt", out / "pairs.txt")  # not the source's (read-only) mode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posed", nargs="*", default=[], help="posed scene folders (or folders of scenes)")
    p.add_argument("--photos", nargs="*", default=[], help="photo folders for homography pairs")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-side", type=int, default=640)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--no-positives", action="store_true",
                   help="skip precomputing each posed pair's positives (positives.npz; the trainer's default settings)")
    a = p.parse_args(argv)
    for scene in find_scene_dirs(a.posed) if a.posed else []:
        out = a.out / "posed" / scene.name
        pack_scene(scene, out, a.max_side, a.quality)
        n = ""
        if not a.no_positives:
            params = PosedParams(max_image_side=a.max_side)
            packed = load_scene(out, params)
            PosedDataset([packed], params).save_positive_cache(packed)
            n = f", positives of {len(packed.pairs)} pairs"
        print(f"posed {scene.name}{n}", flush=True)
    for folder in map(Path, a.photos):
        for img in list_images([folder]):
            _shrink(img, a.out / "photos" / folder.name / img.relative_to(folder), a.max_side, a.quality)
        print(f"photos {folder.name}", flush=True)
    total = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"{a.out}: {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

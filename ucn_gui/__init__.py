"""UCN Viewer: dense correspondences with the Universal Correspondence Network.

    import ucn_gui as ucn

    ucn.configure_threads()                      # first: the names below load torch on first use
    model = ucn.load_model(ucn.models_dir() / "default.safetensors").model
    img0, img1 = ucn.load_image("a.jpg", max_side=640), ucn.load_image("b.jpg", max_side=640)
    pair, matches = ucn.match_images(model, img0, img1, ucn.MatchOptions(keypoints="sift"))
    keep = ucn.apply_filters(matches, ucn.FilterSettings(reciprocity=4, stability=4))
    ucn.save_matches("matches.npz", matches, keep)

The names below are the package's public API; each is imported on first use
(PEP 562), so ``import ucn_gui`` stays light and an entry point can still set the
thread policy before torch loads. Everything else lives in ``ucn_gui.core``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

DIST_NAME = "ucn-viewer"

# public name -> the ucn_gui.core module that defines it
_PUBLIC = {
    "configure_threads": "threads",
    # models
    "load_model": "checkpoint", "save_model": "checkpoint", "LoadedModel": "checkpoint", "CheckpointError": "checkpoint",
    "models_dir": "resources", "sample_pair": "resources",
    # images
    "load_image": "image", "read_rgb": "image", "prepare_image": "image", "shrink_to_max_side": "image",
    "open_photo": "image",
    "LoadedImage": "image", "Photo": "image", "ImageLoadError": "image",
    # matching
    "match_images": "matching", "match": "matching", "similarity_map": "matching",
    "PairFeatures": "matching", "MatchSet": "matching", "Matcher": "matcher",
    "match_aligned": "alignment", "Alignment": "alignment",
    "MatchOptions": "settings", "FilterSettings": "settings", "ComputeSettings": "settings",
    # filters
    "apply_filters": "filters", "filter_mask": "filters", "ransac_mask": "filters", "default_filters": "filters",
    # files and pictures
    "save_matches": "match_files", "load_matches": "match_files", "draw_matches": "drawing", "save_picture": "drawing",
}

__all__ = ["DIST_NAME", "package_version", *_PUBLIC]

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ imports on demand
    from .core.alignment import Alignment, match_aligned  # noqa: F401
    from .core.checkpoint import CheckpointError, LoadedModel, load_model, save_model  # noqa: F401
    from .core.drawing import draw_matches, save_picture  # noqa: F401
    from .core.filters import apply_filters, default_filters, filter_mask, ransac_mask  # noqa: F401
    from .core.image import (ImageLoadError, LoadedImage, Photo, load_image, open_photo, prepare_image,  # noqa: F401
                             read_rgb, shrink_to_max_side)
    from .core.match_files import load_matches, save_matches  # noqa: F401
    from .core.matcher import Matcher  # noqa: F401
    from .core.matching import MatchSet, PairFeatures, match, match_images, similarity_map  # noqa: F401
    from .core.resources import models_dir, sample_pair  # noqa: F401
    from .core.settings import ComputeSettings, FilterSettings, MatchOptions  # noqa: F401
    from .core.threads import configure_threads  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.core.{module}"), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def package_version() -> str:
    """The installed distribution's version (importlib.metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DIST_NAME)
    except PackageNotFoundError:
        return "unknown (not installed; pip install . records the version)"

"""Where the bundled files are: the default model and its card, the sample pair.

    from ucn_gui.core import resources
    resources.models_dir() / "default.safetensors"
    img0, img1 = resources.sample_pair()

An installed copy (wheel, sdist, ``pip install .`` or ``-e .``) carries the
top-level ``resources/`` folder as the package ``ucn_gui.resources`` (see
pyproject.toml) and finds it with importlib.resources. A source tree used
without installing it (``PYTHONPATH=. python main.py``) has no such package;
then the ``resources/`` folder next to ``ucn_gui/`` is used.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

PACKAGE = "ucn_gui.resources"
SAMPLE_NAMES = ("DSC_0410.jpg", "DSC_0411.jpg")  # the pair the window opens first
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "resources"


def resources_dir() -> Path:
    """The folder holding ``models/`` and ``samples/``."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return _SOURCE_TREE
    root = importlib.resources.files(PACKAGE)
    # Model files are opened by path (safetensors, torch), so the package must be
    # plain files on disk, as pip installs it; a zip import is not supported.
    return root if isinstance(root, Path) else Path(str(root))


def models_dir() -> Path:
    return resources_dir() / "models"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def sample_pair() -> tuple[Path, Path]:
    d = samples_dir()
    return d / SAMPLE_NAMES[0], d / SAMPLE_NAMES[1]

"""The package installs anywhere: the wheel and the sdist carry the bundled model,
its card and the sample pair, and an installed copy run from a foreign folder
with an empty home uses them (ucn-match and the window).

The wheel is built from a copy of the sources (so a stale build/ in the checkout
cannot leak files into it) and installed with ``pip install --no-deps --target``;
the dependencies come from the test's own environment.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "ucn_gui", "trainer", "resources")
BUNDLED = ("models/default.safetensors", "models/default.json", "samples/DSC_0410.jpg", "samples/DSC_0411.jpg")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_packages() -> list[str]:
    """Every Python package of the checkout, as the wheel must name it."""
    pkgs = [".".join(p.parent.relative_to(ROOT).parts) for top in ("ucn_gui", "trainer") for p in (ROOT / top).rglob("__init__.py")]
    return sorted(pkgs + ["ucn_gui.resources"])


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(ROOT / name, src / name)
    return src


@pytest.fixture(scope="module")
def wheel(source_copy, tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source_copy)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = dist.glob("ucn_viewer-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("target")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return target


def foreign_env(target: Path, home: Path) -> dict[str, str]:
    """The installed copy first on the path, an empty home, no settings or caches of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "QT_", "UCN_")) and k not in ("PYTHONPATH", "HOME")}
    runtime = home / "runtime"
    for d in (home / ".config", home / ".cache", home / ".local" / "share", home / ".local" / "state", runtime):
        d.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    env.update(PYTHONPATH=str(target), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_STATE_HOME=str(home / ".local" / "state"), XDG_RUNTIME_DIR=str(runtime))
    return env


def version_of(wheel: Path) -> str:
    return wheel.name.split("-")[1]


# ---------------------------------------------------------------------- what is inside


def test_wheel_carries_model_card_samples_and_every_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for rel in BUNDLED:
            member = f"ucn_gui/resources/{rel}"
            assert member in names, f"{member} missing from {wheel.name}"
            assert sha256(z.read(member)) == sha256((ROOT / "resources" / rel).read_bytes()), member
        card = json.loads(z.read("ucn_gui/resources/models/default.json"))
        assert (card["name"], card["architecture"], card["n_out"]) == ("default", "ResUNetBN2F", 32)
        for pkg in source_packages():
            assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"package {pkg} is not in the wheel (pyproject's packages list)"
        for top in ("ucn_gui", "trainer"):
            for py in (ROOT / top).rglob("*.py"):
                assert py.relative_to(ROOT).as_posix() in names, f"{py.relative_to(ROOT)} is not in the wheel"
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    for script in ("ucn-gui = ucn_gui.app:main", "ucn-match = ucn_gui.cli:main", "ucn-train = trainer.__main__:main"):
        assert script in entry_points


def test_sdist_carries_the_resources_folder(source_copy, tmp_path):
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=source_copy, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = proc.stdout.strip().splitlines()[-1]
    with tarfile.open(tmp_path / name) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
        for rel in BUNDLED:
            assert f"resources/{rel}" in members, f"resources/{rel} missing from {name}"
        data = tar.extractfile(members["resources/models/default.safetensors"]).read()
    assert sha256(data) == sha256((ROOT / "resources/models/default.safetensors").read_bytes())


# ---------------------------------------------------------------------- an installed copy, used elsewhere


def test_installed_ucn_match_uses_the_bundled_model(installed, wheel, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = foreign_env(installed, home)
    script = installed / "bin" / "ucn-match"  # the console entry point pip wrote
    samples = installed / "ucn_gui" / "resources" / "samples"

    version = subprocess.run([str(script), "--version"], env=env, cwd=work, capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"ucn-match {version_of(wheel)}"

    proc = subprocess.run([str(script), str(samples / "DSC_0410.jpg"), str(samples / "DSC_0411.jpg"), "-o", "m.npz",
                           "--max-size", "320"], env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    with np.load(work / "m.npz") as z:
        settings = json.loads(str(z["settings"]))
        kept = int(z["mask"].sum())
    weights = Path(settings["weights"])
    assert weights.name == "default.safetensors"
    assert weights.is_relative_to(installed), f"used {weights}, not the installed copy"
    assert settings["architecture"] == "ResUNetBN2F"
    assert kept >= 10, proc.stdout  # the trained default finds real matches on its sample pair
    assert re.search(rf"^{kept} of \d+ matches kept", proc.stdout, re.M)
    assert not any((home / ".config").iterdir())  # nothing needed from (or written to) the user's config


WINDOW_SCRIPT = textwrap.dedent('''
    import json, sys, time
    from ucn_gui.core.threads import configure_threads
    configure_threads()
    import ucn_gui
    from PySide6 import QtWidgets
    from ucn_gui.ui.main_window import MainWindow

    app = QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName("ucn-viewer")
    window = MainWindow()  # the default QSettings: under the empty XDG_CONFIG_HOME
    from dataclasses import replace
    window.compute_panel.set_settings(replace(window.compute_panel.settings(), device="auto", max_side=320))  # a quick first run
    results = []
    window.result_shown.connect(lambda: results.append(len(window.state.result.matches)))
    window.show()
    window.start()  # what a plain launch does: the sample pair and the default model (loaded here)
    deadline = time.monotonic() + 240
    while not results and (window.loader.busy or window.runner.busy) and time.monotonic() < deadline:  # photos open, then the first match
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()
    print(json.dumps({
        "package": ucn_gui.__file__,
        "model_text": window.compute_panel.model_label.text(),
        "model_path": str(window.state.model.path) if window.state.model else None,
        "images": [str(img.path) if img else None for img in window.state.images],
        "candidates": results[0] if results else None,
        "shown": int(window.state.mask.sum()),
        "message": window.message_bar.text() if window.message_bar.isVisible() else "",
    }))
    window.close()
''')


def test_installed_window_starts_with_the_default_model(installed, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = foreign_env(installed, home)
    env["QT_QPA_PLATFORM"] = "offscreen"
    (work / "window.py").write_text(WINDOW_SCRIPT)
    proc = subprocess.run([sys.executable, "window.py"], env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(state["package"]).is_relative_to(installed)
    assert state["model_text"].startswith("default (ResUNetBN2F, 32-d)"), state
    assert Path(state["model_path"]).is_relative_to(installed)
    assert [Path(p).name for p in state["images"]] == ["DSC_0410.jpg", "DSC_0411.jpg"]
    assert all(Path(p).is_relative_to(installed) for p in state["images"])
    assert state["candidates"] and state["shown"] >= 10, state  # matches on screen in the first window
    assert state["message"] == "", state


def test_installed_ucn_gui_version(installed, wheel, tmp_path):
    proc = subprocess.run([str(installed / "bin" / "ucn-gui"), "--version"], env=foreign_env(installed, tmp_path / "home"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ucn-gui {version_of(wheel)}"


# ---------------------------------------------------------------------- README


def test_readme_opens_with_the_apt_line_then_make_run_and_make_test():
    from ucn_gui.ui.system_libs import APT_LINE

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == [APT_LINE, "make run", "make test"]

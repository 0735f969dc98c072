"""Start-up: thread policy before torch, device names that cannot strand the user,
--version on every entry point, and the display-library check before Qt starts."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ucn_gui import package_version
from ucn_gui.core import devices, threads

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def run_py(args: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("UCN_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, *args], env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=kw.pop("timeout", 120), cwd=kw.pop("cwd", ROOT), **kw)


# ---------------------------------------------------------------------- threads


def test_thread_count_overrides(monkeypatch):
    monkeypatch.delenv("UCN_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.thread_count() == threads.physical_cores() >= 1
    assert threads.physical_cores() <= len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "3,1")  # OpenMP's nested-list form: the first level counts
    assert threads.thread_count() == 3
    monkeypatch.setenv("UCN_THREADS", "5")
    assert threads.thread_count() == 5
    monkeypatch.setenv("UCN_THREADS", "zero")  # unusable: ignored
    assert threads.thread_count() == 3


@pytest.mark.parametrize("module", ["ucn_gui.cli", "ucn_gui.app"])
def test_entry_modules_do_not_load_torch_on_import(module):
    """Entry points must be able to set OMP_WAIT_POLICY before torch loads OpenMP."""
    proc = run_py(["-c", f"import sys, {module}; print(sorted(m for m in ('torch', 'cv2', 'PySide6.QtCore') if m in sys.modules))"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("env, expected", [({}, None), ({"UCN_THREADS": "1"}, 1), ({"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "1"}, 1)])
def test_cli_sets_wait_policy_and_both_pools(tmp_path, tiny_model_file, env, expected):
    """ucn-match in-process: the policy is set before torch loads, torch and OpenCV get the same count."""
    code = (
        "import os, sys\n"
        "seen = []\n"
        "class Spy:  # records the policy at the moment torch is first imported\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and not seen:\n"
        "            seen.append(os.environ.get('OMP_WAIT_POLICY', 'unset'))\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from ucn_gui import cli\n"
        f"rc = cli.main([{str(DATA / 'terrace0.jpg')!r}, {str(DATA / 'terrace1.jpg')!r}, '-o', {str(tmp_path / 'm.npz')!r},"
        f" '--weights', {str(tiny_model_file)!r}, '--max-size', '96', '-q'])\n"
        "import cv2, torch\n"
        "from ucn_gui.core.threads import physical_cores\n"
        "print(rc, seen[0], torch.get_num_threads(), cv2.getNumThreads(), physical_cores())\n"
    )
    proc = run_py(["-c", code], env)
    assert proc.returncode == 0, proc.stderr
    rc, policy_at_torch_import, n_torch, n_cv, cores = proc.stdout.split()
    assert rc == "0"
    assert policy_at_torch_import == env.get("OMP_WAIT_POLICY", "PASSIVE")  # set unless the user set it
    assert int(n_torch) == int(n_cv) == (expected or int(cores))


# ---------------------------------------------------------------------- devices


@pytest.mark.parametrize("name, normal", [("auto", "auto"), ("CPU", "cpu"), (" cuda ", "cuda"), ("cuda:1", "cuda:1")])
def test_device_names_accepted(name, normal):
    assert devices.check_device_name(name) == normal


@pytest.mark.parametrize("name", ["gpu", "foo", "cuda:", "cuda:x", "mps", ""])
def test_device_names_refused_with_the_accepted_list(name):
    with pytest.raises(devices.DeviceNameError, match="auto, cpu, cuda, cuda:N"):
        devices.check_device_name(name)


def test_unavailable_cuda_falls_back_to_cpu_with_a_notice(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.choose_device("auto") == (torch.device("cpu"), None)
    for name in ("cuda", "cuda:0"):
        device, notice = devices.choose_device(name)
        assert device == torch.device("cpu") and "not available" in notice and "CPU" in notice
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert devices.choose_device("cuda:0") == (torch.device("cuda:0"), None)
    device, notice = devices.choose_device("cuda:3")  # an index that is not there
    assert device == torch.device("cpu") and "cuda:3" in notice


@pytest.mark.parametrize("prog", [["-m", "ucn_gui.cli", "a.jpg", "b.jpg", "-o", "m.npz"], ["main.py"]])
@pytest.mark.parametrize("name", ["gpu", "foo"])
def test_bad_device_is_one_line_listing_the_accepted_values(prog, name):
    proc = run_py([*prog, "--device", name], {"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"'{name}'" in proc.stderr and "auto, cpu, cuda, cuda:N" in proc.stderr


def test_cli_cuda_without_cuda_runs_on_cpu(tmp_path, tiny_model_file):
    import torch

    name = "cuda:99" if torch.cuda.is_available() else "cuda"
    out = tmp_path / "m.npz"
    proc = run_py(["-m", "ucn_gui.cli", str(DATA / "terrace0.jpg"), str(DATA / "terrace1.jpg"), "-o", str(out),
                   "--weights", str(tiny_model_file), "--max-size", "96", "--device", name])
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "not available" in line]
    assert len(notices) == 1 and "using the CPU" in notices[0]
    assert "on cpu" in proc.stdout and out.is_file()


# ---------------------------------------------------------------------- versions


@pytest.mark.parametrize("prog, name", [(["-m", "ucn_gui.cli"], "ucn-match"), (["main.py"], "ucn-gui"),
                                        (["-m", "trainer"], "python -m trainer")])
def test_version(prog, name):
    proc = run_py([*prog, "--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{name} {package_version()}"
    assert package_version()[0].isdigit()


# ---------------------------------------------------------------------- display libraries


def test_xcb_check_agrees_with_ldd():
    from ucn_gui.ui import system_libs

    plugin = system_libs.xcb_plugin_path()
    if plugin is None or shutil.which("ldd") is None:
        pytest.skip("no PySide6 xcb plugin or no ldd here")
    ldd = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    missing = sorted({line.split()[0] for line in ldd.splitlines() if "not found" in line})
    error = system_libs.xcb_load_error()
    assert (error is None) == (not missing), (error, missing)
    if missing:
        assert any(name in error for name in missing)


def test_app_prints_the_apt_line_when_xcb_cannot_load(tmp_path):
    """A plugin whose libraries do not resolve (here: a copy cut off from its Qt libraries)."""
    from ucn_gui.ui import system_libs

    plugin = system_libs.xcb_plugin_path()
    if plugin is None:
        pytest.skip("no PySide6 xcb plugin here")
    platforms = tmp_path / "platforms"
    platforms.mkdir()
    shutil.copy(plugin, platforms / plugin.name)
    # In a fresh process: here the real plugin may already have loaded the Qt libraries.
    probe = run_py(["-c", f"from ucn_gui.ui.system_libs import xcb_load_error as e; print(e(__import__('pathlib').Path({str(platforms / plugin.name)!r})))"])
    reason = probe.stdout.strip()
    if probe.returncode != 0 or reason == "None":
        pytest.skip(f"the copied plugin still loads (a system-wide Qt 6?) {probe.stderr[-500:]}")
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": str(platforms), "QT_QPA_PLATFORM": "", "WAYLAND_DISPLAY": ""}
    proc = run_py(["main.py"], env, timeout=60)
    assert proc.returncode == 1
    assert system_libs.APT_LINE in proc.stderr
    assert reason in proc.stderr  # the loader's reason is named
    assert "could not load the Qt platform plugin" not in proc.stderr.lower()
    assert "Traceback" not in proc.stderr

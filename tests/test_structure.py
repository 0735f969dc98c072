"""The package's shape: no import cycles, a core without Qt, a light public API that the
README's example uses with one import."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import DATA, ROOT

PACKAGES = ("ucn_gui", "trainer")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of this repository that ``path`` imports anywhere: in functions and under
    TYPE_CHECKING too (ui/export.py and ui/pair_view.py once formed a circle that way)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # ``from pkg import submodule``
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles():
    graph = import_graph()
    assert "ucn_gui.ui.pair_view" in graph and "ucn_gui.ui.picture" in graph["ucn_gui.ui.pair_view"]
    assert _cycles(graph) == []


def test_core_imports_no_qt_and_nothing_above_it():
    for path in (ROOT / "ucn_gui" / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        bad = {m for m in names if re.match(r"(PySide6|pyqtgraph|superqt|ucn_gui\.(ui|cli|app)|trainer)\b", m)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_package_import_is_light_and_every_public_name_resolves():
    proc = _run(
        "import sys, ucn_gui\n"
        "print(sorted(m for m in ('torch', 'cv2', 'PySide6.QtCore') if m in sys.modules))\n"
        "missing = [n for n in ucn_gui.__all__ if getattr(ucn_gui, n, None) is None]\n"
        "print(missing, 'PySide6.QtCore' in sys.modules)\n"
    )
    assert proc.returncode == 0, proc.stderr
    light, resolved = proc.stdout.splitlines()
    assert light == "[]"  # entry points set the thread policy before torch loads
    assert resolved == "[] False"  # the whole API loads, and none of it needs Qt


def test_readme_python_example_needs_one_import_and_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    imports = [line for line in block.splitlines() if re.match(r"\s*(import|from)\s", line)]
    assert imports == ["import ucn_gui as ucn"]
    if not (ROOT / "resources" / "models" / "default.safetensors").is_file():
        pytest.skip("no bundled default model in this checkout")
    # The same code on the test photos, small enough to run in seconds.
    code = (block.replace('"a.jpg"', repr(str(DATA / "terrace0.jpg"))).replace('"b.jpg"', repr(str(DATA / "terrace1.jpg")))
            .replace("max_side=640", "max_side=128").replace('"matches.npz"', repr(str(tmp_path / "m.npz"))))
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import ucn_gui

    saved = ucn_gui.load_matches(tmp_path / "m.npz")
    assert len(saved["keypoints0"]) > 0 and saved["mask"].dtype == bool

"""Imports only go down: opt -> converters/passes/format/runtime -> ir. A deploy-only user needs
numpy, numba and flatbuffers: the runtime and the format never import onnx, click or rich."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "liteopt"

# package -> liteopt subpackages and third-party modules it may import
ALLOWED = {
    "ir": ({"ir"}, {"numpy"}),
    "format": ({"ir", "format"}, {"numpy", "flatbuffers"}),
    # llvmlite: numba's own code generator (installed with it), whose IR builder a numba intrinsic is written in
    "runtime": ({"ir", "format", "runtime"}, {"numpy", "numba", "llvmlite", "flatbuffers"}),
    "passes": ({"ir", "passes"}, {"numpy"}),
    "converters": ({"ir", "converters"}, {"numpy", "onnx", "google"}),
}
STDLIB = set(sys.stdlib_module_names)


def _imports(path: pathlib.Path, package: str):
    tree = ast.parse(path.read_text())
    rel_parts = path.relative_to(ROOT).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
            else:
                base = list(rel_parts[: len(rel_parts) - node.level + 1])
                yield "liteopt." + ".".join(base + ([node.module] if node.module else []))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_down(package):
    inner, third = ALLOWED[package]
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        for mod in _imports(path, package):
            top = mod.split(".")[0]
            if top == "liteopt":
                parts = mod.split(".")
                sub = parts[1] if len(parts) > 1 else ""
                if sub and sub not in inner and sub != "__init__":
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
            elif top and top not in STDLIB and top not in third:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_runtime_import_pulls_no_onnx_click_rich():
    code = ("import sys, liteopt.runtime, liteopt.format; "
            "bad = [m for m in ('onnx', 'click', 'rich', 'liteopt.converters', 'liteopt.passes', 'liteopt.opt') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

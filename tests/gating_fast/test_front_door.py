"""What the engine's front door promises beyond FlowKit's results (tested against FlowKit in the
other modules): kernels loaded on first use, and no reach into FlowKit outside the adapter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gating

GATING = Path(gating.__file__).parent
ADAPTER = GATING / "flowkit_adapter.py"


def test_importing_gating_leaves_the_numba_kernels_unloaded() -> None:
    code = "import gating, gating.engine, sys; print('numba' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "False"


def _private_flow_names(path: Path) -> list[str]:
    """`flowkit._x` / `flowio._x` modules imported, and `._x` attributes read off anything but
    the module's own objects (`self`, `cls`) and other libraries' modules (lxml's `etree`)."""
    tree = ast.parse(path.read_text())
    other_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and not _is_flow(node.module)
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _is_flow(node.module):
            parts = [*node.module.split("."), *(alias.name for alias in node.names)]
            found += [node.module] if any(part.startswith("_") for part in parts) else []
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
            and not (isinstance(node.value, ast.Name) and node.value.id in other_modules)
        ):
            found.append(node.attr)
    return found


def _is_flow(module: str | None) -> bool:
    return (module or "").split(".")[0] in {"flowkit", "flowio"}


def test_flowkit_internals_are_touched_only_in_the_adapter() -> None:
    offenders = {
        str(path.relative_to(GATING)): names
        for path in sorted(GATING.rglob("*.py"))
        if path != ADAPTER and (names := _private_flow_names(path))
    }
    assert offenders == {}
    assert "_preprocess_sample_events" in _private_flow_names(ADAPTER)

"""The contract's import rules, read from the source (no import is executed)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSAY_LIBRARIES = ("qpcr", "cba", "gating")


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, `from a.b import c` counted as `a.b` and `a.b.c`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((REPO / folder).rglob("*.py"))]


def test_assaykit_imports_no_assay_library_validation_or_pipeline() -> None:
    for path in _files("assaykit"):
        roots = {module.split(".")[0] for module in _imported_modules(path)}
        assert not roots & {*ASSAY_LIBRARIES, "validation", "pipelines"}, path


def test_no_private_qpcr_or_cba_name_is_imported_from_outside_its_library() -> None:
    for path in _files("pipelines", "validation", "gating", "benchmarks", "tests"):
        for module in _imported_modules(path):
            parts = module.split(".")
            if parts[0] in ("qpcr", "cba"):
                assert not any(p.startswith("_") for p in parts[1:]), f"{path}: {module}"


def test_the_pipelines_adapter_reaches_each_library_only_through_its_contract() -> None:
    imported = _imported_modules(REPO / "pipelines" / "assays.py")
    reached = {m for m in imported if m.split(".")[0] in ASSAY_LIBRARIES}
    assert reached == {"qpcr.assay", "cba.assay", "gating.assay"}

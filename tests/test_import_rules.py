"""The import rules of the layout (DESIGN.md, issue 17), read from the source with `ast`.

1. No module imports a name beginning with `_` from another package or another subpackage
   (`from x import _y`, `import x._y`, relative forms, and `x._y` on an imported module); a
   third-party package's internals are reached from one adapter module at most.
2. No assay library (`gating`, `qpcr`, `cba`), nor `validation` nor any other top-level package
   but `pipelines`, imports another assay library, `pipelines` or Prefect.
3. `import gating` does not load numba: the kernels are loaded on first use.
4. The pipeline's adapter (`pipelines/assays.py`) holds no assay rules: it reads no column or
   field of a library's tables by name, other than the identity it resolves itself.

Each failure lists every violation as `module:line: name (why)`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from validation.schemas import IDENTITY_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
NOT_PRODUCT_CODE = frozenset({"tests", "benchmarks"})
ASSAY_LIBRARIES = frozenset({"gating", "qpcr", "cba"})
PIPELINES = "pipelines"
ADAPTER = "pipelines.assays"
IDENTITY_FIELDS = frozenset(
    {c.name for c in IDENTITY_COLUMNS}
    | {"sample_name", "file_name", "collection_date", "dna_input_ng"}
)
"""What the adapter may read by name: the identity it resolves (from the sample and file names
the libraries give it, with the manifest's collection date and DNA input), nothing of an assay."""


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @property
    def package(self) -> str:
        """The (sub)package the module belongs to; a package's `__init__` belongs to itself."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]

    @property
    def top(self) -> str:
        return self.name.partition(".")[0]

    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), filename=str(self.path))


@dataclass(frozen=True)
class Imported:
    """A dotted name a module reaches by import or by attribute access on an imported module."""

    module: Module
    line: int
    name: str


def top_level_packages() -> list[str]:
    return sorted(
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in NOT_PRODUCT_CODE and not p.parent.name.startswith(".")
    )


def product_modules() -> list[Module]:
    modules = []
    for package in top_level_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(Module(".".join(parts), path))
    return modules


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _first_party_path(dotted: str) -> Path | None:
    """The package folder or module file of a dotted name in this repository, if it is one."""
    base = ROOT.joinpath(*dotted.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_names(module: Module) -> Iterator[Imported]:
    """Every dotted name the module imports, then every `module.attribute...` chain it reads on
    a name bound to a module by an import."""
    tree = module.tree()
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Imported(module, node.lineno, alias.name)
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.partition(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                dotted = f"{source}.{alias.name}"
                yield Imported(module, node.lineno, dotted)
                if _first_party_path(dotted) is not None:
                    bound[alias.asname or alias.name] = dotted
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            chain = _attribute_chain(node)
            if chain and chain[0] in bound and any(_is_private(p) for p in chain[1:]):
                yield Imported(module, node.lineno, ".".join([bound[chain[0]], *chain[1:]]))


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None when the chain does not start at a plain name."""
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    return [current.id, *reversed(parts)]


def _private_owner(dotted: str) -> str | None:
    """The package a dotted name's first private part belongs to (None: nothing private).

    `gating.engine.fast._gate` belongs to `gating.engine` (the package of the module defining
    it); `qpcr.readers._common` to `qpcr.readers`; `flowkit._resources` to `flowkit`."""
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        if _is_private(part):
            holder = ".".join(parts[:index])
            found = _first_party_path(holder)
            if found is not None and found.name != "__init__.py":
                return holder.rpartition(".")[0]
            return holder
    return None


def _listed(violations: list[str]) -> str:
    unique = sorted(set(violations))
    return f"{len(unique)} violation(s):\n" + "\n".join(unique)


def _where(item: Imported) -> str:
    return f"{item.module.name}:{item.line}: {item.name}"


def test_no_module_imports_a_private_name_of_another_package_or_subpackage():
    violations = []
    ours = set(top_level_packages())
    internals: dict[str, list[Imported]] = defaultdict(list)
    """Per third-party package, where its private names are reached."""
    for module in product_modules():
        for item in imported_names(module):
            owner = _private_owner(item.name)
            if owner is None:
                continue
            top = owner.partition(".")[0]
            if top in ours:
                if owner != module.package:
                    violations.append(f"{_where(item)} (private to {owner})")
            elif top not in sys.stdlib_module_names:  # os._exit, sys._getframe are documented
                internals[top].append(item)
    for top, items in internals.items():
        modules = {item.module.name for item in items}
        if len(modules) > 1:
            violations += [
                f"{_where(item)} ({top} internals are reached from {len(modules)} modules: "
                "keep them in one adapter module)"
                for item in items
            ]
    assert not violations, _listed(violations)


def test_libraries_and_validation_import_no_other_library_nor_the_pipeline():
    violations = []
    for module in product_modules():
        if module.top == PIPELINES:
            continue
        forbidden = (ASSAY_LIBRARIES | {PIPELINES}) - {module.top}
        for item in imported_names(module):
            top = item.name.partition(".")[0]
            if top in forbidden or top.startswith("prefect"):
                violations.append(f"{_where(item)} ({module.top} may not import {top})")
    assert not violations, _listed(violations)


NUMBA_PROBE = """
import sys, traceback

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "numba":
            for frame in traceback.extract_stack()[:-1]:
                if frame.filename.startswith(ROOT):
                    print(f"{frame.filename[len(ROOT) + 1:]}:{frame.lineno}: {frame.line}")
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, Watch())
import gating
"""


def test_importing_gating_does_not_load_numba():
    probe = f"ROOT = {str(ROOT)!r}\n{NUMBA_PROBE}"
    chain = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert chain == "", f"`import gating` loads numba, by way of:\n{chain}"


def test_the_adapter_reads_no_assay_column_or_field():
    [adapter] = [m for m in product_modules() if m.name == ADAPTER]
    violations = [
        f"{adapter.name}:{line}: {name!r} (an assay column or field: the library decides with it)"
        for line, name in _names_read(adapter.tree())
        if name not in IDENTITY_FIELDS
    ]
    assert not violations, _listed(violations)


def _names_read(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Column and field names read by literal: `x["name"]`, `x[["a", "b"]]`, `x.loc[rows, "name"]`
    and `x.get("name")` (writing `tables["car_copies"] = ...` names a table, and is not read)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            keys = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            for key in keys:
                yield from _literal_strings(key)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
        ):
            yield from _literal_strings(node.args[0])


def _literal_strings(node: ast.expr) -> Iterator[tuple[int, str]]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.lineno, node.value
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            yield from _literal_strings(element)


def test_a_private_name_belongs_to_the_package_of_the_module_defining_it():
    assert _private_owner("gating.analysis._chunk") == "gating"
    assert _private_owner("qpcr.readers._common.row_letter") == "qpcr.readers"
    assert _private_owner("flowkit._resources.gml_schema") == "flowkit"
    assert _private_owner("pipelines.__version__") is None
    assert _private_owner("validation.schemas.TABLES") is None


def test_the_checks_see_relative_imports_attribute_access_and_column_reads(tmp_path: Path):
    source = tmp_path / "fake.py"
    source.write_text(
        "from ._common import row_letter\n"
        "from .. import settings\n"
        "import gating.fast as fast\n"
        "labels = fast._Labels\n"
        "verdict = runs['verdict']\n"
        "first = runs.loc[0, ['patient_id', 'target']]\n"
        "tube = keywords.get('TUBE NAME')\n"
        "tables['car_copies'] = runs\n"
    )
    fake = Module("qpcr.readers.fake", source)
    assert [(i.line, i.name) for i in imported_names(fake)] == [
        (1, "qpcr.readers._common.row_letter"),
        (2, "qpcr.settings"),
        (3, "gating.fast"),
        (4, "gating.fast._Labels"),
    ]
    assert sorted(_names_read(fake.tree())) == [
        (5, "verdict"),
        (6, "patient_id"),
        (6, "target"),
        (7, "TUBE NAME"),
    ]

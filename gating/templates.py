"""Gating templates: a Gating-ML 2.0 file or a FlowJo 10 workspace, read into a FlowKit
`GatingStrategy`.

Two things FlowKit leaves out are added here:

- Gating-ML `transforms:boundMin` / `transforms:boundMax` on a transformation: the spec clamps the
  transformed value to the bounds; FlowKit ignores them, so bounded transformations are wrapped.
- display names: gate IDs must be XML names (`CD3pos`), so a gate may carry its population name
  for people (`CD3+`) as `<data-type:custom_info><population>CD3+</population></...>`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import flowkit as fk
import numpy as np
from flowkit import QuadrantDivider, RatioDimension
from flowkit.exceptions import FlowKitException, QuadrantReferenceError
from lxml import etree

from gating.errors import FlowTemplateError
from gating.flowkit_adapter import GATINGML_SCHEMA

GATING_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
TRANSFORMS_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
DATATYPE_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"


@dataclass
class Template:
    path: Path
    strategy: fk.GatingStrategy
    population_names: dict[str, str] = field(default_factory=dict)
    """Gate ID -> population name for people, where the template gives one."""
    notes: list[str] = field(default_factory=list)

    def population_name(self, gate_id: str) -> str:
        return self.population_names.get(gate_id, gate_id)


@dataclass(frozen=True)
class BoundedTransform:
    """A transformation whose result is clamped to [bound_min, bound_max] (Gating-ML 2.0)."""

    inner: object
    bound_min: float | None
    bound_max: float | None

    def apply(self, events_or_sample: object) -> np.ndarray:
        return np.clip(self.inner.apply(events_or_sample), self.bound_min, self.bound_max)

    def __repr__(self) -> str:
        return f"{self.inner!r} clamped to [{self.bound_min}, {self.bound_max}]"


@dataclass(frozen=True)
class DimensionUse:
    """A channel a gate reads: its name in the template, compensation and transformation."""

    name: str
    compensation_ref: str | None
    transformation_ref: str | None


def load_template(path: str | Path, fcs_name: str | None = None) -> Template:
    """A fresh `Template`: its own copy, since analysis edits its compensation references.

    For a FlowJo workspace the gating of the sample named `fcs_name` is used, else the first
    sample's (the workspace then serves as a template for files it has never seen).

    Parsing and schema-checking is kept per file version (path, size, modification time):
    a copy costs 4 ms, parsing the shipped T-cell template again 18 ms, per file gated.
    """
    path = Path(path)
    if not path.is_file():
        raise FlowTemplateError(f"gating template {path} does not exist; check the flow settings")
    version = path.stat()
    sample = fcs_name if path.suffix.lower() == ".wsp" else None
    parsed = _parsed_template(path.resolve(), version.st_size, version.st_mtime_ns, sample)
    return copy.deepcopy(parsed)


@lru_cache(maxsize=16)
def _parsed_template(path: Path, size: int, modified_ns: int, fcs_name: str | None) -> Template:
    """The template as parsed; never handed out (see `load_template`). A template that fails to
    parse raises, and is not kept."""
    if path.suffix.lower() == ".wsp":
        return _load_workspace(path, fcs_name)
    return _load_gatingml(path)


def _load_gatingml(path: Path) -> Template:
    document = _parse_xml(path)
    if not GATINGML_SCHEMA.validate(document):
        error = GATINGML_SCHEMA.error_log.last_error
        raise FlowTemplateError(
            f"{path.name} does not validate as Gating-ML 2.0: line {error.line}: "
            f"{error.message.rstrip('.')}. "
            "Fix the file or export it again from the gating software."
        )
    try:
        strategy = fk.parse_gating_xml(str(path))
    except (ValueError, KeyError, AttributeError, TypeError, FlowKitException) as exc:
        raise FlowTemplateError(
            f"{path.name} is not a usable Gating-ML 2.0 template: {exc}"
        ) from exc
    if not strategy.get_gate_ids():
        raise FlowTemplateError(f"{path.name} defines no gates")
    _apply_bounds(strategy, document)
    return Template(path, strategy, _population_names(document))


def _parse_xml(path: Path) -> etree._ElementTree:
    try:
        return etree.parse(str(path))
    except etree.XMLSyntaxError as exc:
        raise FlowTemplateError(
            f"{path.name} is not XML ({exc}); a template must be a Gating-ML 2.0 file or a FlowJo "
            "10 workspace (.wsp)"
        ) from exc


def _apply_bounds(strategy: fk.GatingStrategy, document: etree._ElementTree) -> None:
    for element in document.iter(f"{{{TRANSFORMS_NS}}}transformation"):
        bound_min = element.get(f"{{{TRANSFORMS_NS}}}boundMin")
        bound_max = element.get(f"{{{TRANSFORMS_NS}}}boundMax")
        xform_id = element.get(f"{{{TRANSFORMS_NS}}}id")
        if (bound_min is None and bound_max is None) or xform_id not in strategy.transformations:
            continue
        # replaced in place: add_transform refuses an existing ID and non-FlowKit classes
        strategy.transformations[xform_id] = BoundedTransform(
            strategy.transformations[xform_id],
            None if bound_min is None else float(bound_min),
            None if bound_max is None else float(bound_max),
        )


def _population_names(document: etree._ElementTree) -> dict[str, str]:
    """`<population>` elements in a gate's custom_info; a quadrant gate names its quadrants with
    `<population quadrant="ID">` (Gating-ML allows no custom_info inside a Quadrant)."""
    names = {}
    for element in document.iter():
        gate_id = element.get(f"{{{GATING_NS}}}id")
        for info in element.findall(f"{{{DATATYPE_NS}}}custom_info/population"):
            if gate_id and info.text:
                names[info.get("quadrant", gate_id)] = info.text.strip()
    return names


def _load_workspace(path: Path, fcs_name: str | None) -> Template:
    try:
        samples = fk.parse_wsp(str(path))["samples"]
    except (ValueError, KeyError, AttributeError, TypeError, etree.LxmlError) as exc:
        raise FlowTemplateError(
            f"{path.name} is not a FlowJo 10 workspace FlowKit can read: {exc}"
        ) from exc
    if not samples:
        raise FlowTemplateError(f"{path.name} holds no samples, so no gating to use")
    if fcs_name in samples:
        return Template(path, samples[fcs_name]["gating_strategy"])
    first = next(iter(samples))
    note = f"{path.name} has no sample named {fcs_name}; used the gating of {first}"
    return Template(path, samples[first]["gating_strategy"], notes=[note])


def gates_of(strategy: fk.GatingStrategy) -> list[object]:
    """Every gate of the strategy (quadrant gates once, not per quadrant)."""
    found = []
    for name, ancestors in strategy.get_gate_ids():
        try:
            found.append(strategy.get_gate(name, ancestors))
        except QuadrantReferenceError:
            continue
    return found


def dimension_uses(strategy: fk.GatingStrategy) -> list[DimensionUse]:
    """The channels the gates read, including the operands of ratio dimensions."""
    uses = []
    for gate in gates_of(strategy):
        for dim in getattr(gate, "dimensions", []):
            uses.extend(_uses_of(dim, strategy))
    return uses


def _uses_of(dim: object, strategy: fk.GatingStrategy) -> list[DimensionUse]:
    if isinstance(dim, RatioDimension):
        ratio = strategy.transformations[dim.ratio_ref]
        return [DimensionUse(name, dim.compensation_ref, None) for name in ratio.dimensions]
    name = dim.dimension_ref if isinstance(dim, QuadrantDivider) else dim.id
    return [DimensionUse(name, dim.compensation_ref, dim.transformation_ref)]


def redirect_compensation(strategy: fk.GatingStrategy, old: str, new: str) -> None:
    """Point every gate dimension that uses compensation `old` at `new`."""
    for gate in gates_of(strategy):
        for dim in getattr(gate, "dimensions", []):
            if dim.compensation_ref == old:
                dim.compensation_ref = new

"""Compiling a FlowKit gating strategy against a file's channels: the plan the chunks follow.

Each gate becomes a `Node`: what it reads (`Source`: channel, compensation, transform or ratio),
its limits, its parent and, for Boolean gates, its operands; nodes are ordered so that parents and
operands come first. Gates the engine does not know (other gate classes, spectral matrices) are
marked for FlowKit, and logged.

Gating-ML `boundMin`/`boundMax`, which FlowKit ignores, arrive as the templates' `BoundedTransform`
wrappers: the plan keeps the inner transformation and the bounds apart, and the chunks clamp.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter

import flowkit
import numpy as np
from flowkit import gates as fk_gates
from flowkit.exceptions import QuadrantReferenceError

from gating.engine._results import ChannelLabels, GateKey
from gating.flowkit_adapter import Transform
from gating.templates import BoundedTransform

logger = logging.getLogger(__name__)

Bounds = Mapping[str, tuple[float | None, float | None]]
"""Transformation id -> (boundMin, boundMax), either None when unbounded."""
UNCOMPENSATED = (None, "uncompensated")
_UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2


@dataclass(frozen=True)
class Source:
    """What one gate dimension reads: a channel (or ratio), its compensation and transform."""

    channel: int | None
    compensation: str | None = None
    transform: str | None = None
    ratio: str | None = None


@dataclass(frozen=True)
class Compensation:
    """A spillover matrix as FlowKit applies it: detectors by channel index, solved per event.

    Fast compensation multiplies by the inverse matrix instead of FlowKit's `np.linalg.solve`;
    the two differ by a few ulps. `error_scale` (4096·k·u·cond(S), times the largest term
    magnitude) bounds that difference with a margin of about 10^4 over the observed one.
    """

    spill: np.ndarray
    detectors: tuple[int, ...]
    inverse: np.ndarray
    error_scale: float

    @classmethod
    def from_matrix(cls, spill: np.ndarray, detectors: tuple[int, ...]) -> Compensation:
        spill = np.asarray(spill, dtype=np.float64)
        inverse = np.linalg.inv(spill)
        condition = float(np.linalg.cond(spill, p=np.inf))
        scale = 4096.0 * len(detectors) * _UNIT_ROUNDOFF * condition
        return cls(spill=spill, detectors=detectors, inverse=inverse, error_scale=scale)

    def exact(self, block: np.ndarray) -> np.ndarray:
        """FlowUtils' `compensate` arithmetic on detector rows (n × k): solve(Sᵀ, blockᵀ)ᵀ."""
        return np.linalg.solve(self.spill.T, block.T).T


@dataclass(frozen=True)
class Dim:
    source: Source
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Node:
    """One gate of the strategy, resolved against the sample's channels."""

    key: GateKey
    parent: GateKey | None
    gate: object
    kind: str
    """rectangle, polygon, ellipsoid, quadrant, boolean, or flowkit (evaluated by FlowKit)."""
    dims: tuple[Dim, ...] = ()
    quadrants: Mapping[str, tuple[tuple[int, float | None, float | None], ...]] = field(
        default_factory=dict
    )
    refs: tuple[tuple[GateKey, bool], ...] = ()


@dataclass(frozen=True)
class Plan:
    """A strategy compiled for one set of channels: everything the chunks need, read once."""

    strategy: flowkit.GatingStrategy
    labels: ChannelLabels
    spill: flowkit.Matrix | None
    sample_id: str | None
    nodes: list[Node]
    compensations: dict[str, Compensation]
    ratio_channels: dict[str, tuple[int, int]]
    transforms: dict[str, Transform]
    """The strategy's transformations, bounded ones unwrapped (their bounds in `bounds`)."""
    bounds: Bounds


def plan_strategy(
    strategy: flowkit.GatingStrategy,
    labels: ChannelLabels,
    spill: flowkit.Matrix | None,
    sample_id: str | None,
) -> Plan:
    """The plan of `strategy` on events whose columns are `labels`."""
    transforms, bounds = _unwrapped_transforms(strategy)
    planner = _Planner(strategy, labels, spill, transforms)
    nodes = _ordered_nodes(strategy, planner, sample_id)
    return Plan(strategy, labels, spill, sample_id, nodes, planner.compensations,
                planner.ratio_channels, transforms, bounds)  # fmt: skip


def _unwrapped_transforms(
    strategy: flowkit.GatingStrategy,
) -> tuple[dict[str, Transform], dict[str, tuple[float | None, float | None]]]:
    transforms, bounds = {}, {}
    for xform_id, xform in strategy.transformations.items():
        if isinstance(xform, BoundedTransform):
            transforms[xform_id] = xform.inner
            bounds[xform_id] = (xform.bound_min, xform.bound_max)
        else:
            transforms[xform_id] = xform
    return transforms, bounds


def mask_keys(node: Node) -> list[GateKey]:
    """The memberships a node produces: its own, or one per quadrant of a quadrant gate."""
    if node.quadrants:
        return [(quadrant, (*node.key[1], node.key[0])) for quadrant in node.quadrants]
    return [node.key]


@dataclass
class _Planner:
    strategy: flowkit.GatingStrategy
    labels: ChannelLabels
    spill: flowkit.Matrix | None
    transforms: Mapping[str, Transform]
    compensations: dict[str, Compensation] = field(default_factory=dict)
    ratio_channels: dict[str, tuple[int, int]] = field(default_factory=dict)

    def node(self, name: str, path: tuple[str, ...], sample_id: str | None) -> Node | None:
        """Plan one gate; None for a single quadrant (planned with its quadrant gate)."""
        try:
            gate = self.strategy.get_gate(name, path, sample_id=sample_id)
        except QuadrantReferenceError:
            return None
        key = (name, path)
        parent = _parent_key(path)
        if isinstance(gate, fk_gates.BooleanGate):
            refs = tuple(
                ((r["ref"], tuple(r["path"])), bool(r["complement"])) for r in gate.gate_refs
            )
            return Node(key, parent, gate, "boolean", refs=refs)
        reason = self._unsupported(gate)
        if reason:
            logger.info("gate %s: evaluated by FlowKit (%s)", "/".join((*path, name)), reason)
            quadrants = dict.fromkeys(getattr(gate, "quadrants", {}), ())
            return Node(key, parent, gate, "flowkit", quadrants=quadrants)
        compensation = self._gate_compensation(gate)
        if isinstance(gate, fk_gates.QuadrantGate):
            return self._quadrant_node(key, parent, gate, compensation)
        dims = tuple(
            Dim(
                self._source(dim, compensation),
                getattr(dim, "min", None),
                getattr(dim, "max", None),
            )
            for dim in gate.dimensions
        )
        kind = next(kind for base, kind in _SHAPES if isinstance(gate, base))
        return Node(key, parent, gate, kind, dims=dims)

    def _unsupported(self, gate: object) -> str | None:
        if not isinstance(gate, _FAST_GATES):
            return f"gate class {type(gate).__name__}"
        for dim in gate.dimensions:
            ref = dim.compensation_ref
            if ref in UNCOMPENSATED or ref == "FCS":
                continue
            if not isinstance(self.strategy.comp_matrices.get(ref), flowkit.Matrix):
                return f"compensation {ref!r} is not a conventional Matrix"
        return None

    def _gate_compensation(self, gate: object) -> str | None:
        """FlowKit applies one matrix per gate: the one its dimensions reference."""
        refs = {dim.compensation_ref for dim in gate.dimensions} - set(UNCOMPENSATED)
        if len(refs) > 1:
            raise NotImplementedError(
                f"gate {gate.gate_name!r} mixes compensation matrices {sorted(refs)}; "
                "FlowKit does not support that either"
            )
        if not refs:
            return None
        ref = refs.pop()
        if ref not in self.compensations:
            matrix = self.spill if ref == "FCS" else self.strategy.comp_matrices[ref]
            if matrix is None:
                return None
            detectors = tuple(self.labels.pnn.index(d) for d in matrix.detectors)
            self.compensations[ref] = Compensation.from_matrix(matrix.matrix, detectors)
        return ref

    def _source(self, dim: object, compensation: str | None) -> Source:
        if isinstance(dim, flowkit.RatioDimension):
            ratio = self.transforms[dim.ratio_ref]
            x_label, y_label = ratio.dimensions
            self.ratio_channels[dim.ratio_ref] = (
                self.labels.pnn.index(x_label),
                self.labels.pnn.index(y_label),
            )
            return Source(None, transform=dim.transformation_ref, ratio=dim.ratio_ref)
        label = dim.dimension_ref if isinstance(dim, flowkit.QuadrantDivider) else dim.id
        channel = self._channel(label, dim.compensation_ref)
        in_matrix = (
            compensation is not None and channel in self.compensations[compensation].detectors
        )
        return Source(channel, compensation if in_matrix else None, dim.transformation_ref)

    def _channel(self, label: str, compensation_ref: str | None) -> int:
        channel = self.labels.index(label)
        if channel is not None:
            return channel
        if compensation_ref in UNCOMPENSATED:
            raise LookupError(f"{label} is not found as a channel label or channel reference")
        matrix = self.strategy.comp_matrices[compensation_ref]
        detector = matrix.detectors[matrix.fluorochromes.index(label)]
        return self.labels.pnn.index(detector)

    def _quadrant_node(
        self, key: GateKey, parent: GateKey | None, gate: object, compensation: str | None
    ) -> Node:
        dividers = [divider.id for divider in gate.dimensions]
        dims = tuple(Dim(self._source(divider, compensation)) for divider in gate.dimensions)
        quadrants = {
            quadrant_id: tuple(
                (dividers.index(ref), *quadrant.get_divider_range(ref))
                for ref in quadrant.divider_refs
            )
            for quadrant_id, quadrant in gate.quadrants.items()
        }
        return Node(key, parent, gate, "quadrant", dims=dims, quadrants=quadrants)


_SHAPES = (
    (fk_gates.RectangleGate, "rectangle"),
    (fk_gates.PolygonGate, "polygon"),
    (fk_gates.EllipsoidGate, "ellipsoid"),
)
_FAST_GATES = (
    fk_gates.RectangleGate,
    fk_gates.PolygonGate,
    fk_gates.EllipsoidGate,
    fk_gates.QuadrantGate,
)


def _parent_key(path: tuple[str, ...]) -> GateKey | None:
    return None if path == ("root",) else (path[-1], path[:-1])


def _ordered_nodes(
    strategy: flowkit.GatingStrategy, planner: _Planner, sample_id: str | None
) -> list[Node]:
    """Gates in an order where parents and Boolean operands come first."""
    nodes: dict[GateKey, Node] = {}
    for name, path in strategy.get_gate_ids():
        node = planner.node(name, tuple(path), sample_id)
        if node is not None:
            nodes[node.key] = node
    graph: dict[GateKey, set[GateKey]] = {}
    for node in nodes.values():
        needs = {_owner(nodes, ref) for ref, _ in node.refs}
        if node.parent is not None:
            needs.add(_owner(nodes, node.parent))
        graph[node.key] = needs
    return [nodes[key] for key in TopologicalSorter(graph).static_order()]


def _owner(nodes: Mapping[GateKey, Node], key: GateKey) -> GateKey:
    """The node computing `key`: itself, or the quadrant gate owning a quadrant."""
    return key if key in nodes else _parent_key(key[1])

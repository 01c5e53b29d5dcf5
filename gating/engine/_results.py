"""What the engine hands back: channel labels in, per-gate memberships and counts out.

No numba and no kernels here: `import gating.engine` loads only this and the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

GateKey = tuple[str, tuple[str, ...]]
"""(gate name, gate path from 'root'), as FlowKit keys its gates."""


@dataclass(frozen=True)
class ChannelLabels:
    """A file's channel names, in the column order of the events: `$PnN`, and `$PnS` (or the
    marker names a lab gives its channels)."""

    pnn: tuple[str, ...]
    pns: tuple[str, ...]

    @classmethod
    def of(cls, pnn: Sequence[str], pns: Sequence[str] | None = None) -> ChannelLabels:
        """Labels from `$PnN` names and, optionally, `$PnS` names (empty when not given)."""
        return cls(tuple(pnn), tuple(pns) if pns is not None else ("",) * len(pnn))

    def index(self, label: str) -> int | None:
        """The channel a gate dimension names, in FlowKit's lookup order: `$PnN`, `$PnS`, then
        `$PnN` with '/' written as '_' (FlowJo's renaming); None when no channel has the name."""
        for labels in (self.pnn, self.pns, tuple(name.replace("/", "_") for name in self.pnn)):
            if label in labels:
                return labels.index(label)
        return None


@dataclass(frozen=True)
class GateResult:
    """One gate's (or quadrant's) outcome, in the terms of FlowKit's `GatingResults.report`."""

    gate_name: str
    gate_path: tuple[str, ...]
    gate_type: str
    parent: str
    quadrant_parent: str | None
    membership: np.ndarray
    count: int
    parent_count: int
    recomputed: int
    """Events near a boundary that were decided with FlowKit's arithmetic."""


@dataclass(frozen=True)
class GatingResult:
    """All gates of one sample, keyed like FlowKit's report: (gate name, gate path)."""

    sample_id: str | None
    event_count: int
    gates: dict[GateKey, GateResult]
    compensated: np.ndarray | None = None
    """The kept matrix's detectors compensated for every event (events × detectors, float32,
    column-major), when `apply` was asked to keep them; None otherwise."""

    def get(self, gate_name: str, gate_path: tuple[str, ...] | None = None) -> GateResult:
        """The result for a gate; the path (ancestors, from 'root') is needed only if ambiguous."""
        matches = [
            result
            for (name, path), result in self.gates.items()
            if name == gate_name and (gate_path is None or path == tuple(gate_path))
        ]
        if len(matches) != 1:
            found = "no gate" if not matches else f"{len(matches)} gates"
            raise KeyError(f"{found} named {gate_name!r} at path {gate_path!r}")
        return matches[0]

    def membership(self, gate_name: str, gate_path: tuple[str, ...] | None = None) -> np.ndarray:
        return self.get(gate_name, gate_path).membership

    def count(self, gate_name: str, gate_path: tuple[str, ...] | None = None) -> int:
        return self.get(gate_name, gate_path).count

    def report(self) -> pd.DataFrame:
        """The same table as FlowKit's `GatingResults.report` (columns, order, sorting)."""
        rows = [
            {
                "sample_id": self.sample_id,
                "gate_path": result.gate_path,
                "gate_name": result.gate_name,
                "gate_type": result.gate_type,
                "quadrant_parent": result.quadrant_parent,
                "parent": result.parent,
                "count": result.count,
                "absolute_percent": _percent(result.count, self.event_count, empty_is_zero=False),
                "relative_percent": _percent(
                    result.count,
                    result.parent_count,
                    empty_is_zero=result.quadrant_parent is None,
                ),
            }
            for result in self.gates.values()
        ]
        report = pd.DataFrame(rows, columns=list(rows[0]) if rows else None)
        report["level"] = report.gate_path.map(len)
        return report.sort_values(["sample_id", "level", "gate_name"])


def _percent(count: int, total: int, *, empty_is_zero: bool) -> float:
    """FlowKit's percentages: 0.0 of an empty parent, except for quadrants, which divide anyway."""
    if total == 0 and empty_is_zero:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(count) / np.float64(total) * 100.0)

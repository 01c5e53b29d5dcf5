"""The fast gating engine: a FlowKit gating strategy compiled once for a file's channels, then
applied to its events for memberships, counts and per-population medians, with FlowKit's results
(the same memberships, event by event, about ten times faster; see `_evaluate` for how).

The front door, everything a caller uses (the `_` modules are the engine's own):

- `compile_strategy(strategy, channels, *, spill=None, sample_id=None) -> CompiledStrategy`.
  `strategy`: a `flowkit.GatingStrategy`, as `gating.templates.load_template` or FlowKit parse
  it; transformations wrapped as `BoundedTransform` (Gating-ML boundMin/boundMax) are clamped.
  `channels`: `ChannelLabels` of the events' columns ($PnN, and $PnS or marker names; gate
  dimensions are found by $PnN, then $PnS, then $PnN with '/' as '_'). `spill`: the matrix
  compensation-ref "FCS" means (a `flowkit.Matrix` over $PnN detectors); without it "FCS" means
  uncompensated, as the spec says for files without one. `sample_id` selects a FlowJo
  workspace's sample-specific gates. Raises `LookupError` for a gate dimension no channel
  matches.
- `CompiledStrategy.apply(events, *, flowkit_sample=None, keep_compensated=None) -> GatingResult`.
  `events`: n × channels, FlowKit's "raw" values ($PnG and $PnE applied, not compensated),
  float32 in either byte order (a file's buffer or memory map, read without a copy) or float64.
  `flowkit_sample`: a callable returning FlowKit's Sample of the same events, called only when a
  gate is left to FlowKit (gate classes the engine does not know, spectral matrices; logged);
  by default one is built from `events`. `keep_compensated`: a compensation reference whose
  compensated detectors are kept in `GatingResult.compensated` for the medians.
- `GatingResult`: `gates` {(gate name, gate path): `GateResult`}, `membership(name, path)`,
  `count(name, path)`, `report()` (FlowKit's `GatingResults.report` table), `compensated`.
- `gate_sample(strategy, sample)`: compile and apply in one call for a `flowkit.Sample`, with
  the Sample's own $SPILLOVER as "FCS"; what `strategy.gate_sample(sample)` gives, faster.
- `fluorescence_matrix(...)` and `population_medians(values, masks)`: the compensated
  fluorescence of a file's events and the exact median of each population on every marker.
- `compile_kernels()`: compiles the numba kernels into their on-disk cache.

What is kept: a `CompiledStrategy` holds the plan (gates in evaluation order, channels resolved,
compensation matrices inverted, bounded transformations unwrapped) and may be applied to any
number of event matrices with those columns; the strategy must not be changed after compiling.
Per process, logicle/hyperlog interpolation tables and polygon rasters are cached by their
parameters. Nothing is kept between two `apply` calls. The numba kernels are loaded on first
use (`import gating.engine` does not import numba), from numba's cache beside the modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import flowkit
import numpy as np

from gating.engine._fluorescence import fluorescence_matrix
from gating.engine._plan import Plan, plan_strategy
from gating.engine._results import ChannelLabels, GateKey, GateResult, GatingResult
from gating.engine._threads import THREADS_VARIABLE
from gating.flowkit_adapter import sample_from_events, sample_spill

__all__ = [
    "THREADS_VARIABLE",
    "ChannelLabels",
    "CompiledStrategy",
    "GateKey",
    "GateResult",
    "GatingResult",
    "compile_kernels",
    "compile_strategy",
    "fluorescence_matrix",
    "gate_sample",
    "population_medians",
]


@dataclass(frozen=True)
class CompiledStrategy:
    """A gating strategy compiled for one set of channels; apply it to events in that order."""

    plan: Plan

    def apply(
        self,
        events: np.ndarray,
        *,
        flowkit_sample: Callable[[], flowkit.Sample] | None = None,
        keep_compensated: str | None = None,
    ) -> GatingResult:
        """Every gate's membership and count on `events` (see the module's contract)."""
        # the kernels (numba) are imported here, on first use, not with the package
        from gating.engine._evaluate import gate_events

        channels = len(self.plan.labels.pnn)
        if events.ndim != 2 or events.shape[1] != channels:
            raise ValueError(f"events of shape {events.shape} do not match {channels} channels")
        plan = self.plan
        if flowkit_sample is None:

            def flowkit_sample() -> flowkit.Sample:
                return sample_from_events(events, plan.labels.pnn, plan.sample_id, plan.spill)

        return gate_events(plan, events, flowkit_sample, keep_compensated)


def compile_strategy(
    strategy: flowkit.GatingStrategy,
    channels: ChannelLabels,
    *,
    spill: flowkit.Matrix | None = None,
    sample_id: str | None = None,
) -> CompiledStrategy:
    """`strategy` compiled for events whose columns are `channels` (see the module's contract)."""
    return CompiledStrategy(plan_strategy(strategy, channels, spill, sample_id))


def gate_sample(strategy: flowkit.GatingStrategy, sample: flowkit.Sample) -> GatingResult:
    """A FlowKit Sample gated: the memberships and counts `strategy.gate_sample(sample)` gives."""
    channels = ChannelLabels.of(sample.pnn_labels, sample.pns_labels)
    compiled = compile_strategy(strategy, channels, spill=sample_spill(sample), sample_id=sample.id)
    return compiled.apply(sample.get_events(source="raw"), flowkit_sample=lambda: sample)


def population_medians(values: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """populations × columns (float64): the median of each column of `values` (events ×
    columns, float32, as `fluorescence_matrix` returns) over each boolean mask's events; NaN
    for an empty population or one holding a NaN. Exactly `np.median`'s values."""
    from gating.engine._medians import population_medians as medians  # numba, on first use

    return medians(values, masks)


def compile_kernels() -> None:
    """Compile the numba kernels (compensation, range tests, medians) into numba's cache beside
    their modules, on tiny inputs of every type the engine passes: compiling takes 10-20 s,
    loading them afterwards a fraction of a second per process."""
    from gating.engine._compensation import compensate_rows
    from gating.engine._medians import population_medians as medians
    from gating.engine._shapes import band_decision

    for dtype in (">f4", "<f4", "<f8"):
        events = np.zeros((3, 3), dtype=dtype)
        for layout in (events, events[:, :2]):  # whole rows, or a file's buffer sliced
            compensate_rows(layout, [0, 1], np.eye(2))
    band_decision(np.zeros(3), 0.0, (0.0, 1.0), None)
    medians(np.zeros((3, 1), dtype=np.float32), [np.ones(3, dtype=bool)] * 65)

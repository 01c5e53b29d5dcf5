"""The one module that reaches into FlowKit's private parts; everything else uses its public API.

Checked against FlowKit 1.3.2 and FlowIO 1.4.0 (pyproject pins `flowkit>=1.3.2,<1.4` and
`flowio>=1.4.0,<1.5`). FlowIO is used through its public API only (`FlowData`, `FlowIOException`,
documented attributes). When FlowKit moves past 1.3, re-check each name below against its source:
the tests that compare the fast engine with FlowKit gate by gate (`tests/gating_fast/`) fail when
one of them has changed meaning.

- `GATINGML_SCHEMA`: FlowKit's copy of the Gating-ML 2.0 XSD (`flowkit._resources.gml_schema`),
  an `lxml.etree.XMLSchema`; templates are validated against it before FlowKit parses them.
- `Transform`: the base class of FlowKit's transformations
  (`flowkit._models.transforms._base_transform.Transform`), for type annotations.
- `preprocessed_events`: FlowKit's own compensation and transformation of a sample's events for
  one gate (`GatingStrategy._preprocess_sample_events`), for the gates the fast engine hands back
  to FlowKit.
- `sample_spill`: the matrix FlowKit builds for compensation-ref "FCS" from a Sample's metadata
  (as `GatingStrategy._compensate_sample` does), and `sample_from_events`, a Sample whose
  "FCS" matrix is a given one.
"""

from __future__ import annotations

from collections.abc import Sequence

import flowkit
import numpy as np
from flowkit._models.transforms._base_transform import Transform
from flowkit._resources import gml_schema

__all__ = [
    "GATINGML_SCHEMA",
    "Transform",
    "preprocessed_events",
    "sample_from_events",
    "sample_spill",
]

GATINGML_SCHEMA = gml_schema


def preprocessed_events(
    strategy: flowkit.GatingStrategy, sample: flowkit.Sample, gate: object
) -> np.ndarray:
    """The sample's events compensated and transformed as FlowKit does for `gate` alone."""
    return strategy._preprocess_sample_events(sample, gate)


def sample_spill(sample: flowkit.Sample) -> flowkit.Matrix | None:
    """The matrix FlowKit applies for compensation-ref "FCS": the sample's `$SPILLOVER` (or
    `$SPILL`) over its fluorescence channels; None when the file has neither."""
    metadata = sample.get_metadata()
    spill = metadata.get("spillover", metadata.get("spill"))
    if spill is None:
        return None
    detectors = [sample.pnn_labels[i] for i in sample.fluoro_indices]
    fluorochromes = [sample.pns_labels[i] for i in sample.fluoro_indices]
    return flowkit.Matrix(spill, detectors, fluorochromes, null_channels=sample.null_channels)


def sample_from_events(
    events: np.ndarray,
    pnn_labels: Sequence[str],
    sample_id: str | None,
    spill: flowkit.Matrix | None,
) -> flowkit.Sample:
    """A FlowKit Sample of raw events (float64 copy) whose compensation-ref "FCS" is `spill`."""
    sample = flowkit.Sample(
        np.asarray(events, dtype=np.float64), sample_id=sample_id, channel_labels=list(pnn_labels)
    )
    if spill is not None:
        sample.metadata["spill"] = _spill_keyword(spill)
    return sample


def _spill_keyword(matrix: flowkit.Matrix) -> str:
    """A matrix as an FCS $SPILLOVER value."""
    values = ",".join(repr(float(v)) for v in np.asarray(matrix.matrix).ravel())
    return f"{len(matrix.detectors)},{','.join(matrix.detectors)},{values}"

"""Analyse an FCS file: read every dataset, pick its panel and template, compensate, gate with
FlowKit, and derive the assay columns of `flow_samples`, `flow_populations` and `flow_mfi`.

Compensation: a template dimension with `compensation-ref="FCS"` uses the file's `$SPILLOVER`
(else `$SPILL` / `SPILL`), parsed here and registered as a FlowKit `Matrix`; a reference to a
`spectrumMatrix` in the template uses that one. Medians (`flow_mfi`) are taken on the same
compensated events; `median_transformed` uses the transformation the template's gates apply to the
marker, else the settings' default logicle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import flowkit as fk
import numpy as np
import pandas as pd

from gating.engine import (
    ChannelLabels,
    GatingResult,
    compile_strategy,
    fluorescence_matrix,
    population_medians,
)
from gating.errors import FlowFormatError, FlowTemplateError
from gating.fcs import Channel, FcsDataset, read_fcs
from gating.keywords import acquired_at, allowed_keywords, first_number, identity_hints, sample_name
from gating.markers import alias_lookup, is_scatter_or_time, markers_of
from gating.panels import detect_panel
from gating.settings import FlowSettings
from gating.templates import (
    DimensionUse,
    Template,
    dimension_uses,
    load_template,
    redirect_compensation,
)

FILE_MATRIX_ID = "cartflow_file_spillover"
"""The ID under which a file's own spillover matrix is registered in the strategy."""

SAMPLES_COLUMNS = (
    "dataset", "sample_name", "fcs_version", "cytometer", "cytometer_serial", "acquired_at",
    "event_count", "channel_count", "panel", "template", "compensation_source", "keywords_json",
    "read_warnings",
)  # fmt: skip
POPULATION_COLUMNS = (
    "dataset", "panel", "population", "gate_path", "parent", "count", "parent_count",
    "pct_parent", "pct_total", "cells_per_ul",
)  # fmt: skip
MFI_COLUMNS = (
    "dataset", "population", "gate_path", "marker", "channel", "median_compensated",
    "median_transformed", "transform",
)  # fmt: skip


@dataclass
class FlowResult:
    """The assay columns of the three flow tables for one FCS file (one row set per dataset)."""

    samples: pd.DataFrame
    populations: pd.DataFrame
    mfi: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    identity: dict[str, str] = field(default_factory=dict)
    """What in the file may name the sample (file name, `$FIL`, `$SRC`, `TUBE NAME`, ...)."""


@dataclass
class Gating:
    """One dataset gated with one template."""

    dataset: FcsDataset
    template: Template
    sample: fk.Sample | None
    """FlowKit's Sample when FlowKit gated; the fast engine reads `events` without one."""
    events: np.ndarray
    """Raw events (gain, $PnE and $TIMESTEP applied, not compensated), events x `columns`."""
    columns: dict[int, int]
    """Channel index -> column of `events` (channels no gate or median reads may be left out)."""
    report: pd.DataFrame
    """One row per gate, as FlowKit's `GatingResults.report` (whichever engine gated)."""
    membership: Callable[[str, tuple[str, ...]], np.ndarray]
    """(gate name, gate path) -> boolean mask over the dataset's events."""
    compensation_source: str
    matrix: fk.Matrix | None
    markers: list[str]
    notes: list[str]
    uses: list[DimensionUse]
    """The channels the template's gates read (walking FlowKit's gate tree is slow: once)."""
    compensated: np.ndarray | None = None
    """`matrix`'s detectors compensated for every event, as the fast engine computed them for
    the gates (events × detectors, float32, column-major); None with FlowKit's engine."""


def analyse_fcs(path: str | Path, settings: FlowSettings | None = None) -> FlowResult:
    """Every dataset of an FCS file gated with its panel's template.

    Raises `FlowFormatError` for a file that cannot be read and `FlowTemplateError` when no panel
    fits or the template does not (a marker it gates on is missing from the file).
    """
    settings = settings or FlowSettings()
    datasets = read_fcs(path)
    samples, populations, mfi, notes = [], [], [], []
    for dataset in datasets:
        panel = detect_panel(dataset.keywords, dataset.channels, settings, _dataset_name(dataset))
        template = load_template(settings.templates[panel], dataset.path.name)
        gating = gate_dataset(dataset, template, settings, for_medians=True)
        rows = population_rows(gating, panel, settings)
        samples.append(sample_row(gating, panel, settings))
        populations.append(rows)
        mfi.append(mfi_rows(gating, settings))
        notes.extend(dataset.warnings + gating.notes + _bead_notes(gating, rows, settings))
    return FlowResult(
        samples=_frame(samples, SAMPLES_COLUMNS),
        populations=pd.concat(populations, ignore_index=True),
        mfi=pd.concat(mfi, ignore_index=True),
        warnings=notes,
        identity=identity_hints(datasets[0].keywords, Path(path)),
    )


def gate_file(
    fcs_path: str | Path, template_path: str | Path, settings: FlowSettings | None = None
) -> pd.DataFrame:
    """Populations of the file's first dataset gated with any Gating-ML 2.0 file or FlowJo 10
    workspace (the workspace sample named like the file, else its first sample): population,
    gate_path, parent, count, pct_parent. For a scientist checking a template."""
    settings = settings or FlowSettings()
    dataset = read_fcs(fcs_path)[0]
    template = load_template(template_path, Path(fcs_path).name)
    gating = gate_dataset(dataset, template, settings)
    rows = population_rows(gating, panel="", settings=settings)
    return rows[["population", "gate_path", "parent", "count", "pct_parent"]]


def gate_dataset(
    dataset: FcsDataset, template: Template, settings: FlowSettings, for_medians: bool = False
) -> Gating:
    """Compensate and gate one dataset with FlowKit (`use_mp` does not apply to one sample).

    `for_medians`: the fast engine also keeps the compensated detectors it computes for the
    gates (`Gating.compensated`, 4 bytes per event and detector), which `mfi_rows` reads.
    """
    lookup = alias_lookup(settings.marker_aliases)
    channels = dataset.channels
    markers = markers_of(channels, lookup)
    strategy = template.strategy
    uses = dimension_uses(strategy)  # walks FlowKit's gate tree: once per dataset
    check_markers(strategy, uses, channels, markers, _dataset_name(dataset))
    check_template_matrices(strategy, uses, channels, template, _dataset_name(dataset))
    source, matrix, notes = _compensation(strategy, uses, dataset, markers)
    sample, compensated = None, None
    # what a template needs of a file is checked above; an error the gating libraries raise
    # past these checks is a fault of cartflow's, not the file's, and is left to propagate
    with np.errstate(invalid="ignore", divide="ignore"):  # % of an empty parent
        if settings.gating_engine == "flowkit":
            sample = _flowkit_sample(dataset, markers)
            results = strategy.gate_sample(sample, cache_events=True)
            report, membership = results.report, results.get_gate_membership
            events = sample.get_events(source="raw")
            columns = {i: i for i in range(len(channels))}
        else:
            events, columns = _gating_events(dataset, strategy, uses, markers)
            matrix_ref = _matrix_id(strategy, matrix) if for_medians else None
            fast_result = _gate_fast(strategy, dataset, markers, events, columns, matrix_ref)
            report, membership = fast_result.report(), fast_result.membership
            compensated = fast_result.compensated
    return Gating(dataset, template, sample, events, columns, report, membership, source, matrix,
                  markers, template.notes + notes, uses, compensated)  # fmt: skip


def _matrix_id(strategy: fk.GatingStrategy, matrix: fk.Matrix | None) -> str | None:
    """The id under which the strategy holds `matrix` (the one `_compensation` chose)."""
    return next((ref for ref, m in strategy.comp_matrices.items() if m is matrix), None)


def _flowkit_sample(dataset: FcsDataset, markers: list[str]) -> fk.Sample:
    sample = fk.Sample(dataset.flow_data, sample_id=_dataset_name(dataset))
    # FlowKit finds a gate dimension by $PnN, then by $PnS: canonical marker names as $PnS let
    # marker-named templates match any cytometer's detectors
    sample.pns_labels = markers
    return sample


def _gating_events(
    dataset: FcsDataset, strategy: fk.GatingStrategy, uses: list[DimensionUse], markers: list[str]
) -> tuple[np.ndarray, dict[int, int]]:
    """(events, channel index -> column) for the fast engine and the medians.

    FlowKit's Sample holds a float64 copy of the events with FlowIO's preprocessing applied. When
    that preprocessing leaves the channels the gates and medians read unchanged (gain 1, linear,
    not a Time channel scaled by $TIMESTEP), FlowIO's own buffer is viewed instead, without a
    copy: the fast engine and the medians convert what they read to float64, which is exact.
    Left-out channels must form the ends of the row so that the view stays a slice.
    """
    stored = dataset.stored_events()
    if stored is not None:
        changed = dataset.preprocessed_channels()
        needed = _read_channels(dataset, strategy, uses, markers)
        kept = [i for i in range(stored.shape[1]) if i not in changed]
        if not changed & needed and kept and kept == list(range(kept[0], kept[-1] + 1)):
            return stored[:, kept[0] : kept[-1] + 1], {i: k for k, i in enumerate(kept)}
    return dataset.events(), {i: i for i in range(len(dataset.channels))}


def _read_channels(
    dataset: FcsDataset, strategy: fk.GatingStrategy, uses: list[DimensionUse], markers: list[str]
) -> set[int]:
    """Channels the gates or the medians may read: fluorescence, matrix detectors, and any
    channel a gate dimension names by $PnN, marker or FlowJo's '/'-as-'_' spelling."""
    channels = dataset.channels
    names = {use.name for use in uses}
    for matrix in strategy.comp_matrices.values():
        names |= set(getattr(matrix, "detectors", ()))
    return {
        i for i, c in enumerate(channels)
        if not is_scatter_or_time(c) or {c.pnn, c.pnn.replace("/", "_"), markers[i]} & names
    }  # fmt: skip


def _gate_fast(
    strategy: fk.GatingStrategy,
    dataset: FcsDataset,
    markers: list[str],
    events: np.ndarray,
    columns: dict[int, int],
    keep_compensated: str | None,
) -> GatingResult:
    """The fast engine on the template's strategy, keeping the compensation `keep_compensated`
    names for the medians.

    No matrix is passed for compensation-ref "FCS": `_compensation` has pointed every such
    reference at the file's matrix as `file_spillover` read it, or at "uncompensated".
    Gates the engine hands to FlowKit get the same Sample `gate_sample` would, built only then
    (the engine's default would build one from a float32 rounding of the events).
    """
    kept = sorted(columns, key=columns.__getitem__)
    channels = ChannelLabels.of(
        [dataset.metadata.pnn_labels[i] for i in kept], [markers[i] for i in kept]
    )
    compiled = compile_strategy(strategy, channels, sample_id=_dataset_name(dataset))
    sample: list[fk.Sample] = []

    def flowkit_sample() -> fk.Sample:
        if not sample:
            sample.append(_flowkit_sample(dataset, markers))
        return sample[0]

    return compiled.apply(events, flowkit_sample=flowkit_sample, keep_compensated=keep_compensated)


def check_markers(
    strategy: fk.GatingStrategy,
    uses: list[DimensionUse],
    channels: list[Channel],
    markers: list[str],
    name: str,
) -> None:
    """`FlowTemplateError` "marker CD8 not found; this file has: CD3, CD4, ..." for the first
    channel the template gates on that the file lacks (by `$PnN`, marker or matrix fluorochrome)."""
    known = {c.pnn for c in channels} | {c.pnn.replace("/", "_") for c in channels} | set(markers)
    for matrix in strategy.comp_matrices.values():
        known |= {f for f, d in zip(matrix.fluorochromes, matrix.detectors, strict=False)
                  if d in known}  # fmt: skip
    for use in uses:
        if use.name not in known:
            raise FlowTemplateError(
                f"marker {use.name} not found; this file has: {', '.join(markers)} "
                f"(file {name}). Add the file's spelling of {use.name} to the flow settings' "
                "marker_aliases, or use the template for this tube's panel."
            )


def check_template_matrices(
    strategy: fk.GatingStrategy,
    uses: list[DimensionUse],
    channels: list[Channel],
    template: Template,
    name: str,
) -> None:
    """`FlowTemplateError` when a compensation matrix of the template that a gate uses names
    detectors this file does not have (FlowKit and the fast engine would fail with their own
    text: "Detectors must be a subset of the Sample's fluorochromes", "'B710-A' is not in list")."""
    detectors = {c.pnn for c in channels}
    refs = {u.compensation_ref for u in uses} - {None, "uncompensated", "FCS"}
    for ref in sorted(refs):
        matrix = strategy.comp_matrices.get(ref)
        missing = [d for d in getattr(matrix, "detectors", ()) if d not in detectors]
        if missing:
            raise FlowTemplateError(
                f"{name}: the compensation matrix {ref} of template {template.path.name} names "
                f"detector{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which this file "
                "does not have; use the template made for this cytometer, or give the template "
                "this cytometer's matrix."
            )


def _compensation(
    strategy: fk.GatingStrategy, uses: list[DimensionUse], dataset: FcsDataset, markers: list[str]
) -> tuple[str, fk.Matrix | None, list[str]]:
    """(compensation_source, matrix used, notes); points "FCS" references at the file's matrix."""
    refs = {u.compensation_ref for u in uses} - {None, "uncompensated"}
    if "FCS" in refs:
        spill = file_spillover(dataset, markers)
        if spill is None:
            redirect_compensation(strategy, "FCS", "uncompensated")
            note = (f"{_dataset_name(dataset)}: the template compensates with the file's matrix but "
                    "the file has no $SPILLOVER or $SPILL; gated uncompensated")  # fmt: skip
            return "none", None, [note]
        keyword, matrix = spill
        strategy.add_comp_matrix(FILE_MATRIX_ID, matrix)
        redirect_compensation(strategy, "FCS", FILE_MATRIX_ID)
        return keyword, matrix, []
    if refs:
        return "template", strategy.comp_matrices[sorted(refs)[0]], []
    return "none", None, []


def file_spillover(dataset: FcsDataset, markers: list[str]) -> tuple[str, fk.Matrix] | None:
    """("$SPILLOVER" or "$SPILL", matrix) from the file's keywords, or None when it has none."""
    for keyword in ("$SPILLOVER", "$SPILL", "SPILL"):
        text = dataset.keywords.get(keyword)
        if text:
            detectors, values = parse_spillover(text, keyword, _dataset_name(dataset))
            channels = _spillover_channels(detectors, dataset.channels, keyword, dataset)
            by_pnn = {c.pnn: m for c, m in zip(dataset.channels, markers, strict=True)}
            fluorochromes = [by_pnn[c] for c in channels]
            source = "$SPILLOVER" if keyword == "$SPILLOVER" else "$SPILL"
            return source, fk.Matrix(values, channels, fluorochromes)
    return None


def parse_spillover(text: str, keyword: str, name: str) -> tuple[list[str], np.ndarray]:
    """`n,name1..namen,v11..vnn` -> (detector names, n x n matrix)."""
    parts = [p.strip() for p in text.split(",")]
    advice = "re-export the file with its compensation from the acquisition software."
    n = int(parts[0]) if parts[0].isdigit() else 0
    if n < 1:
        raise FlowFormatError(
            f"{name}: {keyword} (the spillover matrix) starts with {parts[0]!r}, not its number "
            f"of channels; {advice}"
        )
    if len(parts) != 1 + n + n * n:
        raise FlowFormatError(
            f"{name}: {keyword} (the spillover matrix) is for {n} channels, which needs {n} names "
            f"and {n * n} values, but it holds {len(parts) - 1} entries; {advice}"
        )
    try:
        values = np.array([float(v) for v in parts[1 + n :]]).reshape(n, n)
    except ValueError:
        odd = next(v for v in parts[1 + n :] if not _is_number(v))
        raise FlowFormatError(
            f"{name}: {keyword} (the spillover matrix) holds {odd!r} where a number belongs; "
            f"{advice}"
        ) from None
    if not np.isfinite(values).all():
        raise FlowFormatError(
            f"{name}: {keyword} (the spillover matrix) holds NaN or infinite values; {advice}"
        )
    return parts[1 : 1 + n], values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _spillover_channels(
    detectors: list[str], channels: list[Channel], keyword: str, dataset: FcsDataset
) -> list[str]:
    """The `$PnN` of each matrix detector (some software names them by `$PnS`)."""
    by_pns = {c.pns: c.pnn for c in channels if c.pns}
    pnn = {c.pnn for c in channels}
    missing = [d for d in detectors if d not in pnn and d not in by_pns]
    if missing:
        raise FlowFormatError(
            f"{_dataset_name(dataset)}: {keyword} (the spillover matrix) names "
            f"{', '.join(missing)}, "
            f"{'which are not channels' if len(missing) > 1 else 'not a channel'} of this file"
            ", so it was made for another acquisition; re-export the file with its "
            "own compensation from the acquisition software."
        )
    return [detector if detector in pnn else by_pns[detector] for detector in detectors]


def population_rows(gating: Gating, panel: str, settings: FlowSettings) -> pd.DataFrame:
    """One row per gated population: count, % of parent, % of total, cells/uL with beads."""
    report = gating.report
    total = gating.dataset.event_count
    rows = []
    for gate in report.itertuples():
        parent_count = _parent_count(report, gate, total)
        rows.append({
            "dataset": gating.dataset.index + 1,
            "panel": panel,
            "population": gating.template.population_name(gate.gate_name),
            "gate_path": _gate_path_string(gate),
            "parent": None if gate.parent == "root" else gating.template.population_name(gate.parent),
            "count": int(gate.count),
            "parent_count": parent_count,
            "pct_parent": 100.0 * gate.count / parent_count if parent_count else np.nan,
            "pct_total": 100.0 * gate.count / total if total else np.nan,
        })  # fmt: skip
    frame = _frame(rows, POPULATION_COLUMNS[:-1])
    frame["cells_per_ul"] = cells_per_ul(frame, gating, settings)
    return frame.astype({"dataset": "int32", "count": "int64", "parent_count": "int64"})


def _parent_count(report: pd.DataFrame, gate: object, total: int) -> int:
    if gate.parent == "root":
        return int(total)
    parent_path = tuple(gate.gate_path[:-1])
    match = report[(report.gate_name == gate.parent) & (report.gate_path == parent_path)]
    return int(match["count"].iloc[0]) if len(match) else int(total)


def cells_per_ul(frame: pd.DataFrame, gating: Gating, settings: FlowSettings) -> pd.Series:
    """cells/uL = count / bead count x beads per test / sample volume (uL); NaN without beads."""
    beads_per_test, volume = bead_numbers(gating.dataset, settings)
    bead_rows = frame["gate_path"].str.split("/").str[-1] == settings.bead_population
    bead_count = frame.loc[bead_rows, "count"].sum() if bead_rows.any() else 0
    if not (bead_count and beads_per_test and volume):
        return pd.Series(np.nan, index=frame.index)
    values = frame["count"] / bead_count * beads_per_test / volume
    return values.where(~bead_rows, np.nan)


def bead_numbers(dataset: FcsDataset, settings: FlowSettings) -> tuple[float | None, float | None]:
    """(beads per test, sample volume in uL): the file's keywords first, then the settings."""
    beads = first_number(dataset.keywords, settings.beads_per_test_keywords)
    volume = first_number(dataset.keywords, settings.sample_volume_keywords)
    return (beads or settings.beads_per_test, volume or settings.sample_volume_ul)


def _bead_notes(gating: Gating, rows: pd.DataFrame, settings: FlowSettings) -> list[str]:
    beads = rows[rows["gate_path"].str.split("/").str[-1] == settings.bead_population]
    if beads.empty or not beads["count"].sum():
        return []
    if rows["cells_per_ul"].notna().any():
        return []
    return [
        f"{_dataset_name(gating.dataset)}: counting beads were gated but the beads per test and "
        f"sample volume are unknown (keywords {settings.beads_per_test_keywords[0]!r} / "
        f"{settings.sample_volume_keywords[0]!r} or settings beads_per_test / sample_volume_ul); "
        "cells_per_ul left empty"
    ]


def mfi_rows(gating: Gating, settings: FlowSettings) -> pd.DataFrame:
    """Median compensated and transformed intensity per population x fluorescence marker.

    The Gating-ML transforms are monotonic, so the median on the transformed scale is the
    transform of the compensated median (of the midpoint of the two middle events for an even
    count): one transform call per median instead of one per event.
    """
    channels = gating.dataset.channels
    indices = [i for i, c in enumerate(channels) if not is_scatter_or_time(c)]
    gates = list(gating.report.itertuples())
    masks = [gating.membership(gate.gate_name, gate.gate_path) for gate in gates]
    by_population = population_medians(compensated_fluorescence(gating, indices), masks)
    transforms = marker_transforms(gating, [gating.markers[i] for i in indices], settings)
    transformed = np.column_stack([
        np.ravel(transform.apply(by_population[:, [k]])) for k, transform in enumerate(transforms)
    ])  # fmt: skip
    rows = []
    for g, (gate, mask) in enumerate(zip(gates, masks, strict=True)):
        population = gating.template.population_name(gate.gate_name)
        path = _gate_path_string(gate)
        for k, i in enumerate(indices):
            rows.append({
                "dataset": gating.dataset.index + 1, "population": population, "gate_path": path,
                "marker": gating.markers[i], "channel": channels[i].pnn,
                "median_compensated": by_population[g, k],
                "median_transformed": transformed[g, k] if mask.any() else np.nan,
                "transform": repr(transforms[k]),
            })  # fmt: skip
    return _frame(rows, MFI_COLUMNS).astype({"dataset": "int32"})


def compensated_fluorescence(gating: Gating, indices: list[int]) -> np.ndarray:
    """Events x markers, column-major (one contiguous column per marker, gathered per
    population): raw events times the inverse of the spillover matrix the gating used."""
    if gating.matrix is None:
        return fluorescence_matrix(gating.events, [gating.columns[i] for i in indices])
    pnn = [c.pnn for c in gating.dataset.channels]
    detectors = [gating.columns[pnn.index(d)] for d in gating.matrix.detectors]
    return fluorescence_matrix(
        gating.events, [gating.columns[i] for i in indices], detectors, gating.matrix.matrix,
        compensated=gating.compensated,
    )  # fmt: skip


def _gate_path_string(gate: object) -> str:
    ancestors = [g for g in gate.gate_path if g != "root"]
    if gate.quadrant_parent:
        ancestors.append(gate.quadrant_parent)
    return "/".join([*ancestors, gate.gate_name])


def marker_transforms(gating: Gating, markers: list[str], settings: FlowSettings) -> list[object]:
    """Per marker, the transformation the template's gates first apply to it, else the default
    logicle."""
    strategy = gating.template.strategy
    applied: dict[str, str] = {}
    for use in gating.uses:
        if use.transformation_ref:
            applied.setdefault(use.name, use.transformation_ref)
    p = settings.default_transform
    default = fk.transforms.LogicleTransform(p.t, p.w, p.m, p.a)
    return [strategy.transformations[applied[m]] if m in applied else default for m in markers]


def sample_row(gating: Gating, panel: str, settings: FlowSettings) -> dict[str, object]:
    dataset = gating.dataset
    keywords = dataset.keywords
    stored = allowed_keywords(
        keywords, (*settings.beads_per_test_keywords, *settings.sample_volume_keywords)
    )
    return {
        "dataset": dataset.index + 1,
        "sample_name": sample_name(keywords, dataset.path),
        "fcs_version": dataset.version,
        "cytometer": keywords.get("$CYT"),
        "cytometer_serial": keywords.get("$CYTSN"),
        "acquired_at": acquired_at(keywords),
        "event_count": dataset.event_count,
        "channel_count": len(dataset.channels),
        "panel": panel,
        "template": gating.template.path.name,
        "compensation_source": gating.compensation_source,
        "keywords_json": json.dumps(stored, sort_keys=True),
        "read_warnings": "\n".join(dataset.warnings) or None,
    }


def _frame(rows: list[dict[str, object]], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    if "acquired_at" in frame:
        frame["acquired_at"] = pd.to_datetime(frame["acquired_at"], utc=True)
        frame = frame.astype({"dataset": "int32", "event_count": "int64",
                              "channel_count": "int32"})  # fmt: skip
    return frame


def _dataset_name(dataset: FcsDataset) -> str:
    return (
        dataset.path.name
        if dataset.index == 0
        else f"{dataset.path.name} (dataset {dataset.index + 1})"
    )

"""One page per qPCR run (`reports/qpcr/<run>.html`): the QC verdict per target, the standard
curve of each target with every standard replicate on it, the amplification curves where the
export holds them, and the plate map with the failing, not-amplified and excluded wells marked.

Read from `qpcr_runs` and `qpcr_wells` only, so a run whose QC failed still gets its page. A page
carries a fingerprint of the rows it was drawn from (source files, processing times, pipeline
version); a recompute redraws only the pages whose run is new or whose fingerprint changed.

Which wells count as failing (marked with a red ring), beside the not-amplified and excluded ones:
- an NTC that amplified before the `[qpcr] ntc_cq_cutoff` (contamination);
- a standard without a Cq (the curve lost a point);
- the run's positive control without a Cq.
A sample without a Cq in any target is marked "no Cq", not failing: no CAR template
is a result. Wells the analyst omitted in the instrument software are marked "excluded".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from pipelines import __version__
from pipelines.home import LabHome
from pipelines.reports import html
from pipelines.reports.figures import LeftOut
from pipelines.reports.plots import COLOURS, FAIL_COLOUR, data_gid, new_figure, styled, svg
from qpcr import QpcrSettings, row_letter

RUN_FOLDER = "qpcr"
NO_AMPLIFICATION_DATA = (
    "The export holds no amplification data (only each well's Cq): see the curves in the "
    "instrument software, or export the run with its amplification data."
)
ROLE_COLOURS = {
    "standard": COLOURS[0],
    "unknown": COLOURS[2],
    "NTC": COLOURS[4],
    "positive control": COLOURS[3],
    "other": COLOURS[5],
}
"""Plate-map fill per well role, in legend order."""
EXCLUDED_COLOUR, NOT_AMPLIFIED_COLOUR = "#000000", "#000000"
FINGERPRINT_ATTRIBUTE = "data-run-fingerprint"


@dataclass(frozen=True)
class RunRows:
    """One run's rows: its `qpcr_runs` rows (one per target) and `qpcr_wells` rows."""

    run_id: str
    targets: pd.DataFrame
    wells: pd.DataFrame


def run_page_name(run_id: str) -> str:
    """A file name for the run: its id made safe for every filesystem, plus a short hash of
    the id so two runs whose ids differ only in unsafe characters never share a page."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")[:80] or "run"
    return f"{readable}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}.html"


def run_page_link(run_id: str) -> str:
    """The run page's address relative to the reports folder (where qc.html is)."""
    return f"{RUN_FOLDER}/{run_page_name(run_id)}"


def fingerprint(run: RunRows) -> str:
    """What the page was drawn from: a new export of the run or a new pipeline changes it."""
    parts = [__version__]
    for frame in (run.targets, run.wells):
        stamps = zip(frame["source_sha256"], frame["processed_at"], strict=True)
        parts += sorted(f"{source}@{processed}" for source, processed in stamps)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def well_role(task: str, sample_name: object, settings: QpcrSettings) -> str:
    """The role a technician would colour the well by on the plate map."""
    if task == "STANDARD":
        return "standard"
    if task == "NTC":
        return "NTC"
    if task == "UNKNOWN":
        name = "" if pd.isna(sample_name) else str(sample_name)
        return "positive control" if settings.is_positive_control(name) else "unknown"
    return "other"


def failure_reason(row: pd.Series, role: str, settings: QpcrSettings) -> str:
    """Why one well × target row fails the run's QC, or "" when it does not."""
    if bool(row["omitted"]):
        return ""
    amplified = bool(row["amplified"])
    if role == "NTC" and amplified and row["cq"] < settings.ntc_cq_cutoff:
        return f"NTC amplified at Cq {row['cq']:.2f} (before {settings.ntc_cq_cutoff:g})"
    if role == "standard" and not amplified:
        return "standard without a Cq"
    if role == "positive control" and not amplified:
        return "positive control without a Cq"
    return ""


def well_marks(wells: pd.DataFrame, settings: QpcrSettings) -> pd.DataFrame:
    """One row per well: its role, and whether it failed, did not amplify or was excluded, with
    the reasons per target."""
    rows = []
    for well, group in wells.groupby("well", sort=False):
        first = group.iloc[0]
        role = well_role(str(first["task"]), first["sample_name"], settings)
        reasons = [
            f"{row['target']}: {why}"
            for _, row in group.iterrows()
            if (why := failure_reason(row, role, settings))
        ]
        usable = group[~group["omitted"].astype(bool)]
        rows.append({
            "well": well, "sample": first["sample_name"], "role": role,
            "failed": bool(reasons), "why": "; ".join(reasons),
            "excluded": bool(group["omitted"].astype(bool).any()),
            "not_amplified": role in ("unknown", "other") and len(usable) > 0
            and not usable["amplified"].astype(bool).any(),
        })  # fmt: skip
    columns = ["well", "sample", "role", "failed", "why", "excluded", "not_amplified"]
    return pd.DataFrame(rows, columns=columns)


def plate_position(well: str) -> tuple[int, int] | None:
    """'B7' -> (1, 6), zero-based row and column; None for a name that is not a position."""
    match = re.fullmatch(r"([A-Z]{1,2})(\d{1,2})", well)
    if not match:
        return None
    letters, column = match.groups()
    row = ord(letters[-1]) - 65 + (26 * (ord(letters[0]) - 64) if len(letters) == 2 else 0)
    return row, int(column) - 1


def plate_shape(positions: list[tuple[int, int]]) -> tuple[int, int]:
    """(rows, columns) of the smallest standard plate holding every well: 96, 384 or 1536."""
    for rows, columns in ((8, 12), (16, 24)):
        if all(r < rows and c < columns for r, c in positions):
            return rows, columns
    return 32, 48


def _scatter_wells(axes: Axes, marks: pd.DataFrame, kind: str, **style: object) -> None:
    """The wells of `marks` as one scatter artist whose gid names `kind`."""
    if marks.empty:
        return
    artist = axes.scatter(marks["column"], marks["row"], **style)
    artist.set_gid(data_gid(kind))


def plate_map(run_id: str, marks: pd.DataFrame) -> str:
    """The plate as a grid of wells coloured by role, with the failing wells ringed in red, the
    wells that did not amplify dotted black and the excluded wells crossed out."""
    marks = marks.copy()
    positions = [plate_position(str(w)) for w in marks["well"]]
    marks["row"] = [p[0] if p else np.nan for p in positions]
    marks["column"] = [p[1] if p else np.nan for p in positions]
    marks = marks.dropna(subset=["row"])
    rows, columns = plate_shape(list(zip(marks["row"], marks["column"], strict=True)))
    size, width, height = {8: (150, 7.4, 4.2), 16: (40, 10.5, 5.6), 32: (9, 10.5, 7.2)}[rows]
    figure = new_figure(width, height)
    axes = styled(figure.add_subplot())
    axes.grid(False)
    empty = [(r, c) for r in range(rows) for c in range(columns)]
    axes.scatter([c for _, c in empty], [r for r, _ in empty], s=size, facecolors="none",
                 edgecolors="#cccccc", linewidths=0.6)  # fmt: skip
    for role, colour in ROLE_COLOURS.items():
        _scatter_wells(axes, marks[marks["role"] == role], f"well {role}", s=size, color=colour)
    _scatter_wells(axes, marks[marks["not_amplified"]], "well not amplified", s=size / 6,
                   color=NOT_AMPLIFIED_COLOUR)  # fmt: skip
    _scatter_wells(axes, marks[marks["excluded"]], "well excluded", s=size * 0.8, marker="x",
                   color=EXCLUDED_COLOUR, linewidths=2.2)  # fmt: skip
    _scatter_wells(axes, marks[marks["failed"]], "well failed", s=size * 2.2, facecolors="none",
                   edgecolors=FAIL_COLOUR, linewidths=2.0)  # fmt: skip
    axes.set_xlim(-0.7, columns - 0.3)
    axes.set_ylim(rows - 0.4, -0.6)
    axes.set_xticks(range(columns), [str(c + 1) for c in range(columns)])
    axes.set_yticks(range(rows), [row_letter(r) for r in range(rows)])
    axes.xaxis.tick_top()
    axes.tick_params(length=0)
    for side in axes.spines.values():
        side.set_visible(False)
    axes.set_aspect("equal")
    present = [role for role in ROLE_COLOURS if (marks["role"] == role).any()]
    handles = [Patch(color=ROLE_COLOURS[role], label=role) for role in present] + [
        Line2D([], [], marker="o", ls="", mfc="none", mec=FAIL_COLOUR, mew=2, ms=11,
               label="failed QC"),
        Line2D([], [], marker="o", ls="", color=NOT_AMPLIFIED_COLOUR, ms=3, label="no Cq"),
        Line2D([], [], marker="x", ls="", color=EXCLUDED_COLOUR, mew=2.2, ms=7,
               label="excluded (omitted)"),
    ]  # fmt: skip
    figure.legend(handles=handles, loc="outside right center")
    label = f"Plate map of run {run_id}: wells by role, failing wells ringed"
    return svg(figure, label)


def standard_curve(target: pd.Series, wells: pd.DataFrame) -> str:
    """Cq against copies per reaction (log scale) for one target: every standard replicate as a
    point (excluded ones crossed, ones without a Cq as triangles on the top edge), the fit line
    from `qpcr_runs` with the samples on it, and slope, intercept, efficiency and R²."""
    name = str(target["target"])
    standards = wells[(wells["target"] == name) & (wells["task"] == "STANDARD")]
    standards = standards[standards["standard_quantity"] > 0]
    used = standards[~standards["omitted"].astype(bool) & standards["amplified"].astype(bool)]
    excluded = standards[standards["omitted"].astype(bool) & standards["amplified"].astype(bool)]
    no_cq = standards[~standards["amplified"].astype(bool)]
    figure = new_figure(5.0, 4.0)
    axes = styled(figure.add_subplot())
    axes.set_xscale("log")
    # copies written out (1,000 not 10³): what a technician reads off the tube, and no mathtext
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    points = axes.scatter(used["standard_quantity"], used["cq"], s=22, color=COLOURS[0],
                          label=f"standard ({len(used)})", zorder=3)  # fmt: skip
    points.set_gid(data_gid("standard"))
    if len(excluded):
        crossed = axes.scatter(excluded["standard_quantity"], excluded["cq"], marker="x", s=30,
                               color=EXCLUDED_COLOUR, label=f"excluded ({len(excluded)})")  # fmt: skip
        crossed.set_gid(data_gid("standard"))
    if len(no_cq):
        edge = axes.get_xaxis_transform()  # x in data, y in axes fraction: the top edge
        lost = axes.scatter(no_cq["standard_quantity"], np.full(len(no_cq), 0.97), marker="v",
                            s=36, color=FAIL_COLOUR, transform=edge, clip_on=False,
                            label=f"no Cq ({len(no_cq)})")  # fmt: skip
        lost.set_gid(data_gid("standard"))
    title = f"{name} standard curve, QC {target['qc_verdict']}"
    if pd.notna(target["slope"]):
        low, high = standards["standard_quantity"].min(), standards["standard_quantity"].max()
        x = np.geomspace(low / 2, high * 2, 50)
        (line,) = axes.plot(x, target["slope"] * np.log10(x) + target["intercept"],
                            color=COLOURS[1], lw=1.2, label="fit")  # fmt: skip
        line.set_gid(data_gid("fit"))
        _samples_on_curve(axes, target, wells)
        title += (
            f"\nefficiency {target['efficiency_pct']:.1f} %, R² {target['r_squared']:.4f}"
            f"\nslope {target['slope']:.3f}, intercept {target['intercept']:.2f}"
        )
    else:
        title += "\nno curve fitted"
    axes.set_title(title)
    axes.set_xlabel("copies per reaction (log scale)")
    axes.set_ylabel("Cq (cycle)")
    axes.legend(loc="upper right")  # a falling curve leaves the upper right empty
    return svg(figure, f"Standard curve of {name}, run {target['run_id']}")


def amplification_plot(run_id: str, target: str, wells: pd.DataFrame, roles: pd.Series) -> str:
    """Fluorescence against cycle for every well of `target` that has a curve, one colour per
    well role; excluded wells dashed black."""
    curves = wells[(wells["target"] == target) & wells["amplification_cycles"].notna()]
    measure = str(curves["amplification_measure"].iloc[0] or "fluorescence")
    figure = new_figure(5.0, 3.4)
    axes = styled(figure.add_subplot())
    role = curves["well"].map(roles)
    excluded = curves["omitted"].astype(bool)
    groups = [(r, ROLE_COLOURS[r], "-", role.eq(r) & ~excluded) for r in ROLE_COLOURS]
    groups.append(("excluded", EXCLUDED_COLOUR, "--", excluded))
    for label, colour, style, chosen in groups:
        if not chosen.any():
            continue
        lines = [
            np.column_stack([np.asarray(c, float), np.asarray(f, float)])
            for c, f in zip(curves.loc[chosen, "amplification_cycles"],
                            curves.loc[chosen, "amplification_fluorescence"], strict=True)
        ]  # fmt: skip
        collection = LineCollection(lines, colors=colour, linestyles=style, linewidths=0.9,
                                    label=f"{label} ({len(lines)})")  # fmt: skip
        collection.set_gid(data_gid(f"amplification {label}"))
        axes.add_collection(collection)
    axes.autoscale_view()
    axes.set_title(f"{target} amplification")
    axes.set_xlabel("cycle")
    axes.set_ylabel(measure)
    axes.legend(loc="upper left")
    return svg(figure, f"Amplification curves of {target}, run {run_id}")


def _amplification_section(run: RunRows, marks: pd.DataFrame) -> str:
    with_curves = run.wells[run.wells["amplification_cycles"].notna()]
    if with_curves.empty:
        return html.section("Amplification curves", html.absent(NO_AMPLIFICATION_DATA))
    roles = marks.set_index("well")["role"]
    plots = [
        amplification_plot(run.run_id, str(target), run.wells, roles)
        for target in dict.fromkeys(with_curves["target"])
    ]  # fmt: skip
    return html.section("Amplification curves", f'<div style="{FLEX}">{"".join(plots)}</div>')


def _samples_on_curve(axes: Axes, target: pd.Series, wells: pd.DataFrame) -> None:
    """The amplified sample and control wells as open diamonds on the fit, at the copies their
    Cq reads off it, so a sample beyond the standards' range shows as such."""
    samples = wells[(wells["target"] == target["target"]) & (wells["task"] == "UNKNOWN")
                    & wells["amplified"].astype(bool) & ~wells["omitted"].astype(bool)]  # fmt: skip
    if samples.empty:
        return
    copies = 10.0 ** ((samples["cq"] - target["intercept"]) / target["slope"])
    marks = axes.scatter(copies, samples["cq"], marker="D", s=16, facecolors="none",
                         edgecolors=COLOURS[2], linewidths=0.8, zorder=2,
                         label=f"sample or control ({len(samples)})")  # fmt: skip
    marks.set_gid(data_gid("sample on curve"))


def _curves_section(run: RunRows, left_out: LeftOut) -> str:
    figures = []
    for _, target in run.targets.iterrows():
        name = str(target["target"])
        has_standards = (
            (run.wells["target"] == name) & (run.wells["task"] == "STANDARD")
            & (run.wells["standard_quantity"] > 0)
        ).any()  # fmt: skip
        figures.append(left_out.figure(
            f"Run {run.run_id}, {name} standard curve", bool(has_standards),
            lambda t=target: standard_curve(t, run.wells), "the plate holds no standard for it",
        ))  # fmt: skip
    return html.section("Standard curves", f'<div style="{FLEX}">{"".join(figures)}</div>')


FLEX = "display:flex;flex-wrap:wrap;gap:4px 12px;align-items:flex-start"


def _qc_table(run: RunRows) -> str:
    columns = ["target", "role", "qc_verdict", "slope", "intercept", "efficiency_pct",
               "r_squared", "n_standard_wells", "n_standard_levels", "loq_copies_per_reaction",
               "ntc_amplified", "ntc_wells", "qc_rules"]  # fmt: skip
    return html.table(
        ["target", "role", "QC", "slope", "intercept", "efficiency %", "R²", "standard wells",
         "levels", "LOQ (copies/reaction)", "NTC amplified", "NTC wells", "rules"],
        run.targets[columns].values.tolist(),
    )  # fmt: skip


def _marked_wells_table(run: RunRows, marks: pd.DataFrame) -> str:
    marked = marks[marks["failed"] | marks["excluded"]]
    if marked.empty:
        return html.paragraph(
            "No single well failed QC or was excluded (a failing curve shows in the QC table above)."
        )
    rows = [
        [m.well, m.sample, m.role, "failed" if m.failed else "", "excluded" if m.excluded else "",
         m.why]
        for m in marked.itertuples(index=False)
    ]  # fmt: skip
    return html.table(["well", "sample", "role", "QC", "omitted", "why"], rows)


def run_page(run: RunRows, settings: QpcrSettings, left_out: LeftOut) -> str:
    """The page of one run."""
    marks = well_marks(run.wells, settings)
    first = run.targets.iloc[0]
    started = first["run_started"]
    facts = (
        f"{first['instrument_format']} export"
        + (f", {first['instrument']}" if first["instrument"] else "")
        + (f", started {pd.Timestamp(started):%Y-%m-%d %H:%M} UTC" if pd.notna(started) else "")
        + f", {marks['well'].nunique()} wells, targets: {', '.join(run.targets['target'])}."
    )
    plate = left_out.figure(
        f"Run {run.run_id} plate map", marks["well"].map(plate_position).notna().any(),
        lambda: plate_map(run.run_id, marks),
        "no well position could be read" if len(marks) else "the run has no wells in qpcr_wells",
    )  # fmt: skip
    return html.page(f"qPCR run {run.run_id}", [
        f'<p {FINGERPRINT_ATTRIBUTE}="{fingerprint(run)}"><a href="../cohort.html">Cohort '
        'overview</a> | <a href="../qc.html">QC trends</a></p>',
        html.paragraph(facts),
        html.section("QC per target", _qc_table(run)),
        _curves_section(run, left_out),
        _amplification_section(run, marks),
        html.section("Plate map", plate, _marked_wells_table(run, marks)),
    ])  # fmt: skip


def runs_in_warehouse(con: duckdb.DuckDBPyConnection) -> list[RunRows]:
    """Every run with rows in `qpcr_runs`, with its wells."""
    targets = con.execute("SELECT * FROM qpcr_runs ORDER BY run_id, target").fetchdf()
    wells = con.execute("SELECT * FROM qpcr_wells ORDER BY run_id, well, target").fetchdf()
    by_run = dict(iter(wells.groupby("run_id", sort=False)))
    return [
        RunRows(str(run_id), group.reset_index(drop=True),
                by_run.get(run_id, wells.iloc[0:0]).reset_index(drop=True))
        for run_id, group in targets.groupby("run_id", sort=True)
    ]  # fmt: skip


def is_current(path: Path, run: RunRows) -> bool:
    """True when the page exists and was drawn from exactly these rows."""
    if not path.is_file():
        return False
    marker = f'{FINGERPRINT_ATTRIBUTE}="{fingerprint(run)}"'
    return marker in path.read_text(encoding="utf-8", errors="replace")


def write_run_pages(
    home: LabHome, con: duckdb.DuckDBPyConnection, settings: QpcrSettings, left_out: LeftOut
) -> list[Path]:
    """Write the pages of the runs whose page is missing or stale; returns those written."""
    written = []
    for run in runs_in_warehouse(con):
        path = home.reports / run_page_link(run.run_id)
        if not is_current(path, run):
            written.append(html.write_page(path, run_page(run, settings, left_out)))
    return written


def run_link(run_id: str, text: str | None = None) -> str:
    """An anchor to the run's page from a page in the reports folder."""
    return f'<a href="{escape(run_page_link(run_id))}">{escape(text or run_id)}</a>'

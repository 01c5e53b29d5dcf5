"""Demo FCS files for the demo trial (`trial.py`): per patient and timepoint a T-cell tube and a
B-cell tube, plus the infused product (timepoint PRODUCT, T-cell tube).

Each file holds exact population counts drawn from the trial's truth (CAR+ % of CD3, CD4:CD8 ratio,
B cells/uL with counting beads). Intensities are drawn in "true" fluorochrome space from normal
distributions truncated at 3.5 SD, well apart from the template's gates, so the shipped templates
recover the counts exactly; then spillover is applied to the events and recorded in `$SPILLOVER`,
so only compensated gating recovers them.

Two cytometers: a BD LSRFortessa (P001, P002 and every product; `FITC-A`, `PE-A`... big-endian
float) and a Beckman Coulter CytoFLEX LX (P003, P004; `FL1-A`... little-endian, scatter recorded
with `$PnG` 2, other `$PnS` spellings such as "FMC63 PE", "CD197 PC7", "Viability KO525").

FlowIO's `create_fcs` writes little-endian float only; BD files are written with it and then turned
big-endian in memory: `$BYTEORD` 1,2,3,4 becomes 4,3,2,1 (same length, so no offset moves) and
every 4-byte value of the DATA segment is byte-swapped.
"""

from __future__ import annotations

import io
import json
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import flowio
import numpy as np

from pipelines.demo import trial
from validation.timepoints import BASELINE, PRODUCT

BEADS_PER_TEST = 10_000.0
SAMPLE_VOLUME_UL = 100.0
BEAD_EVENTS = 2_000
"""Beads acquired per blood tube: 20 events per cell/uL (BEAD_EVENTS / BEADS_PER_TEST x volume)."""
EVENTS_PER_CELL_PER_UL = BEAD_EVENTS / BEADS_PER_TEST * SAMPLE_VOLUME_UL

CAR_MEMORY = {"naive_tscm": 0.15, "tcm": 0.35, "tem": 0.40, "temra": 0.10}
OTHER_MEMORY = {"naive_tscm": 0.30, "tcm": 0.20, "tem": 0.30, "temra": 0.20}
EXHAUSTION = {"PD-1": (0.40, 0.15), "LAG-3": (0.25, 0.08), "TIM-3": (0.30, 0.10)}
"""Marker -> (fraction positive among CAR+, among CAR-) T cells."""

_MEMORY_PHENOTYPE = {  # (CD45RA+, CCR7+)
    "naive_tscm": (True, True), "tcm": (False, True), "tem": (False, False),
    "temra": (True, False),
}  # fmt: skip


@dataclass(frozen=True)
class Detector:
    pnn: str
    fluorochrome: str
    marker_label: str
    """`$PnS` as this instrument's software writes it."""
    marker: str
    """The canonical marker the label stands for."""


@dataclass(frozen=True)
class Cytometer:
    name: str
    serial: str
    big_endian: bool
    scatter: tuple[str, ...]
    scatter_gain: float
    tcell: tuple[Detector, ...]
    bcell: tuple[Detector, ...]
    date_format: str
    time_format: str


def _detectors(rows: list[tuple[str, str, str, str]]) -> tuple[Detector, ...]:
    return tuple(Detector(*row) for row in rows)


FORTESSA = Cytometer(
    name="LSRFortessa",
    serial="H647800L1",
    big_endian=True,
    scatter=("FSC-A", "FSC-H", "FSC-W", "SSC-A", "SSC-H"),
    scatter_gain=1.0,
    tcell=_detectors(
        [
            ("FITC-A", "FITC", "CD45RA", "CD45RA"),
            ("PE-A", "PE", "CAR", "CAR"),
            ("PerCP-Cy5-5-A", "PerCP-Cy5.5", "CD3", "CD3"),
            ("PE-Cy7-A", "PE-Cy7", "CCR7", "CCR7"),
            ("APC-A", "APC", "PD-1", "PD-1"),
            ("APC-H7-A", "APC-H7", "CD8", "CD8"),
            ("BV421-A", "BV421", "CD4", "CD4"),
            ("BV510-A", "BV510", "L/D", "Viability"),
            ("BV605-A", "BV605", "LAG-3", "LAG-3"),
            ("BV711-A", "BV711", "TIM-3", "TIM-3"),
        ]
    ),
    bcell=_detectors(
        [
            ("FITC-A", "FITC", "CD45", "CD45"),
            ("PE-A", "PE", "CD19", "CD19"),
            ("PerCP-Cy5-5-A", "PerCP-Cy5.5", "CD3", "CD3"),
            ("BV510-A", "BV510", "L/D", "Viability"),
        ]
    ),
    date_format="%d-%b-%Y",
    time_format="{clock}",
)
CYTOFLEX = Cytometer(
    name="CytoFLEX LX",
    serial="CX-AW39211",
    big_endian=False,
    scatter=("FSC-A", "FSC-H", "FSC-Width", "SSC-A", "SSC-H"),
    scatter_gain=2.0,
    tcell=_detectors(
        [
            ("FL1-A", "FITC", "CD45RA FITC", "CD45RA"),
            ("FL2-A", "PE", "FMC63 PE", "CAR"),
            ("FL3-A", "PerCP-Cy5.5", "CD3 PC5.5", "CD3"),
            ("FL4-A", "PE-Cy7", "CD197 PC7", "CCR7"),
            ("FL5-A", "APC", "CD279 APC", "PD-1"),
            ("FL6-A", "APC-H7", "CD8a APC-A750", "CD8"),
            ("FL7-A", "BV421", "CD4 PB450", "CD4"),
            ("FL8-A", "BV510", "Viability KO525", "Viability"),
            ("FL9-A", "BV605", "CD223 BV605", "LAG-3"),
            ("FL10-A", "BV711", "CD366 BV711", "TIM-3"),
        ]
    ),
    bcell=_detectors(
        [
            ("FL1-A", "FITC", "CD45 FITC", "CD45"),
            ("FL2-A", "PE", "CD19 PE", "CD19"),
            ("FL3-A", "PerCP-Cy5.5", "CD3 PC5.5", "CD3"),
            ("FL8-A", "BV510", "Viability KO525", "Viability"),
        ]
    ),
    date_format="%Y-%m-%d",
    time_format="{day} {clock}",
)

SPILLOVER: dict[tuple[str, str], float] = {
    ("FITC", "PE"): 0.20, ("PE", "FITC"): 0.01, ("PE", "PerCP-Cy5.5"): 0.06,
    ("PE", "PE-Cy7"): 0.03, ("PerCP-Cy5.5", "PE-Cy7"): 0.12, ("PerCP-Cy5.5", "APC"): 0.02,
    ("APC", "APC-H7"): 0.09, ("PE-Cy7", "APC-H7"): 0.03, ("BV421", "BV510"): 0.16,
    ("BV510", "BV605"): 0.06, ("BV605", "BV711"): 0.11,
}  # fmt: skip
"""(fluorochrome, detector's fluorochrome) -> fraction of the signal seen in that detector."""


@dataclass(frozen=True)
class Tube:
    """One FCS file to write: who, which tube, and the exact event counts per population."""

    accession: str
    patient_id: str
    timepoint: str
    panel: str  # "tcell" or "bcell"
    acquired: date
    cytometer: Cytometer
    counts: dict[str, int]

    @property
    def file_name(self) -> str:
        return f"{self.accession}_{self.panel.upper()}.fcs"


def write_flow_files(
    folder: str | Path, seed: int = 0, on_written: Callable[[Path], None] | None = None
) -> list[Path]:
    """Write every demo FCS file and `flow_truth.json` (the counts and trial values used) into
    `folder`, telling `on_written` each FCS path as it is written; returns the FCS paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths, truth = [], []
    for tube in demo_tubes():
        paths.append(write_tube(folder / tube.file_name, tube, rng))
        truth.append(tube_truth(tube))
        if on_written is not None:
            on_written(paths[-1])
    (folder / "flow_truth.json").write_text(json.dumps(truth, indent=1))
    return paths


def demo_tubes() -> list[Tube]:
    tubes = []
    for sample in trial.study_samples():
        cytometer = FORTESSA if sample.patient_id in ("P001", "P002") else CYTOFLEX
        car_pct = trial.CAR_PCT_OF_CD3[sample.patient_id][sample.timepoint]
        b_per_ul = trial.B_CELLS_PER_UL[sample.patient_id][sample.timepoint]
        ratio = trial.CD4_CD8_RATIO[sample.patient_id]
        common = (sample.accession, sample.patient_id, sample.timepoint)
        tcell = tcell_counts(car_pct, ratio)
        tubes.append(Tube(*common, "tcell", sample.collection_date, cytometer, tcell))
        tubes.append(
            Tube(*common, "bcell", sample.collection_date, cytometer, bcell_counts(b_per_ul))
        )
    for patient in trial.PATIENTS:
        car_pct = trial.PRODUCT_CAR_PCT_OF_CD3[patient]
        counts = tcell_counts(car_pct, trial.CD4_CD8_RATIO[patient], PRODUCT_TUBE)
        product_day = trial.INFUSION_DATE[patient] - timedelta(days=1)
        tubes.append(
            Tube(f"{patient}_{PRODUCT}", patient, PRODUCT, "tcell", product_day, FORTESSA, counts)
        )
    return tubes


TCELL_TUBE = {
    "t_cells": 14_000, "non_t": 4_000, "dead": 1_500, "doublets": 800, "monocytes": 3_000,
    "debris": 1_500, "beads": BEAD_EVENTS,
}  # fmt: skip
PRODUCT_TUBE = {**TCELL_TUBE, "t_cells": 16_000, "non_t": 300, "monocytes": 500, "beads": 0}
"""Events per population besides the T-cell subsets; the product tube has no counting beads."""


def tcell_counts(
    car_pct: float, ratio: float, background: dict[str, int] = TCELL_TUBE, scale: float = 1.0
) -> dict[str, int]:
    """Exact counts: CAR+ = car_pct % of CD3+, CD4+CD8- : CD4-CD8+ = ratio (95 % of T cells;
    3 % double negative, 2 % double positive)."""
    counts = {k: round(v * scale) for k, v in background.items()}
    t_cells = counts["t_cells"]
    single = 0.95 * t_cells
    counts["car"] = round(t_cells * car_pct / 100.0)
    counts["cd4"] = round(single * ratio / (1.0 + ratio))
    counts["cd8"] = round(single / (1.0 + ratio))
    counts["double_negative"] = round(0.03 * t_cells)
    return counts


def bcell_counts(b_cells_per_ul: float) -> dict[str, int]:
    return {
        "b_cells": round(b_cells_per_ul * EVENTS_PER_CELL_PER_UL),
        "t_cells": 10_000,
        "nk_cells": 2_500,
        "dead": 1_200,
        "doublets": 600,
        "monocytes": 3_000,
        "debris": 1_500,
        "beads": BEAD_EVENTS,
    }


def tube_truth(tube: Tube) -> dict[str, object]:
    counts = tube.counts
    truth: dict[str, object] = {
        "file": tube.file_name, "accession": tube.accession, "patient_id": tube.patient_id,
        "timepoint": tube.timepoint, "panel": tube.panel, "cytometer": tube.cytometer.name,
        "counts": counts, "beads_per_test": BEADS_PER_TEST, "sample_volume_ul": SAMPLE_VOLUME_UL,
    }  # fmt: skip
    if tube.panel == "tcell":
        truth["car_pct_of_cd3"] = 100.0 * counts["car"] / counts["t_cells"]
        truth["cd4_cd8_ratio"] = counts["cd4"] / counts["cd8"]
    else:
        truth["b_cells_per_ul"] = (
            counts["b_cells"] / BEAD_EVENTS * BEADS_PER_TEST / SAMPLE_VOLUME_UL
        )
    return truth


# --- events ---------------------------------------------------------------------------------


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    return mean + sd * np.clip(rng.standard_normal(n), -3.5, 3.5)


def _negative(rng: np.random.Generator, n: int) -> np.ndarray:
    return _truncated_normal(rng, 0.0, 120.0, n)


def _positive(rng: np.random.Generator, n: int, log_mean: float = 4.0) -> np.ndarray:
    return 10.0 ** _truncated_normal(rng, log_mean, 0.18, n)


def _level(rng: np.random.Generator, positive: np.ndarray) -> np.ndarray:
    """Positive or negative intensities for a boolean phenotype vector."""
    values = _negative(rng, positive.size)
    values[positive] = _positive(rng, int(positive.sum()))
    return values


def _exact_flags(rng: np.random.Generator, n: int, n_true: int) -> np.ndarray:
    flags = np.zeros(n, dtype=bool)
    flags[:n_true] = True
    return rng.permutation(flags)


def _categories(rng: np.random.Generator, n: int, weights: dict[str, float]) -> np.ndarray:
    return rng.choice(list(weights), size=n, p=list(weights.values()))


@dataclass
class _Events:
    """Intensities per canonical name (scatter channels and markers) for a group of cells."""

    columns: dict[str, np.ndarray]

    @classmethod
    def concat(cls, groups: list[_Events]) -> _Events:
        names = groups[0].columns
        return cls({k: np.concatenate([g.columns[k] for g in groups]) for k in names})


def _scatter(rng: np.random.Generator, n: int, fsc: float, ssc: float, ratio: float) -> dict:
    fsc_a = _truncated_normal(rng, fsc, fsc * 0.1, n)
    ssc_a = _truncated_normal(rng, ssc, ssc * 0.12, n)
    fsc_h = fsc_a * _truncated_normal(rng, ratio, 0.03, n)
    return {
        "FSC-A": fsc_a, "FSC-H": fsc_h, "FSC-W": fsc_a / fsc_h * 65536.0,
        "SSC-A": ssc_a, "SSC-H": ssc_a * _truncated_normal(rng, 0.85, 0.03, n),
    }  # fmt: skip


def _cells(rng: np.random.Generator, n: int, markers: list[str], kind: str) -> _Events:
    """n events of one kind: lymphocytes, doublets, monocytes, debris or beads, all negative."""
    shapes = {
        "lymphocyte": (60_000.0, 20_000.0, 0.85), "doublet": (120_000.0, 28_000.0, 0.55),
        "monocyte": (100_000.0, 60_000.0, 0.85), "debris": (12_000.0, 8_000.0, 0.85),
        "bead": (20_000.0, 45_000.0, 0.85),
    }  # fmt: skip
    columns = _scatter(rng, n, *shapes[kind])
    for marker in markers:
        columns[marker] = _positive(rng, n, 5.0) if kind == "bead" else _negative(rng, n)
    return _Events(columns)


def tcell_events(rng: np.random.Generator, counts: dict[str, int], markers: list[str]) -> _Events:
    n = counts["t_cells"]
    t = _cells(rng, n, markers, "lymphocyte")
    car = _exact_flags(rng, n, counts["car"])
    lineage = rng.permutation(
        ["cd4"] * counts["cd4"]
        + ["cd8"] * counts["cd8"]
        + ["dn"] * counts["double_negative"]
        + ["dp"] * (n - counts["cd4"] - counts["cd8"] - counts["double_negative"])
    )
    memory = np.where(car, _categories(rng, n, CAR_MEMORY), _categories(rng, n, OTHER_MEMORY))
    t.columns["CD3"] = _positive(rng, n)
    t.columns["CAR"] = _level(rng, car)
    t.columns["CD4"] = _level(rng, np.isin(lineage, ["cd4", "dp"]))
    t.columns["CD8"] = _level(rng, np.isin(lineage, ["cd8", "dp"]))
    t.columns["CD45RA"] = _level(rng, np.array([_MEMORY_PHENOTYPE[m][0] for m in memory]))
    t.columns["CCR7"] = _level(rng, np.array([_MEMORY_PHENOTYPE[m][1] for m in memory]))
    for marker, (in_car, in_other) in EXHAUSTION.items():
        t.columns[marker] = _level(rng, rng.random(n) < np.where(car, in_car, in_other))
    return _Events.concat([t, *_background(rng, counts, markers, "non_t")])


def bcell_events(rng: np.random.Generator, counts: dict[str, int], markers: list[str]) -> _Events:
    b = _cells(rng, counts["b_cells"], markers, "lymphocyte")
    b.columns["CD19"] = _positive(rng, counts["b_cells"])
    b.columns["CD45"] = _positive(rng, counts["b_cells"], 4.3)
    t = _cells(rng, counts["t_cells"], markers, "lymphocyte")
    t.columns["CD3"] = _positive(rng, counts["t_cells"])
    t.columns["CD45"] = _positive(rng, counts["t_cells"], 4.3)
    return _Events.concat([b, t, *_background(rng, counts, markers, "nk_cells")])


def _background(
    rng: np.random.Generator, counts: dict[str, int], markers: list[str], non_t_key: str
) -> list[_Events]:
    """CD3- lymphocytes, dead lymphocytes, doublets, monocytes, debris and beads."""
    dead = _cells(rng, counts["dead"], markers, "lymphocyte")
    dead.columns["Viability"] = _positive(rng, counts["dead"], 4.2)
    return [
        _cells(rng, counts[non_t_key], markers, "lymphocyte"),
        dead,
        _cells(rng, counts["doublets"], markers, "doublet"),
        _cells(rng, counts["monocytes"], markers, "monocyte"),
        _cells(rng, counts["debris"], markers, "debris"),
        _cells(rng, counts["beads"], markers, "bead"),
    ]


# --- writing --------------------------------------------------------------------------------


def spillover_matrix(detectors: tuple[Detector, ...]) -> np.ndarray:
    """Rows: the fluorochrome emitting; columns: the detector seeing it (diagonal 1)."""
    fluors = [d.fluorochrome for d in detectors]
    return np.array(
        [[1.0 if a == b else SPILLOVER.get((a, b), 0.0) for b in fluors] for a in fluors]
    )


def write_tube(path: Path, tube: Tube, rng: np.random.Generator) -> Path:
    detectors = tube.cytometer.tcell if tube.panel == "tcell" else tube.cytometer.bcell
    markers = [d.marker for d in detectors]
    make = tcell_events if tube.panel == "tcell" else bcell_events
    events = make(rng, tube.counts, markers)
    write_events(path, tube, detectors, events, rng)
    return path


def write_events(
    path: Path,
    tube: Tube,
    detectors: tuple[Detector, ...],
    events: _Events,
    rng: np.random.Generator,
) -> None:
    """Shuffle the events, apply spillover, add Time, and write the FCS file."""
    cytometer = tube.cytometer
    order = rng.permutation(events.columns["FSC-A"].size)
    true_fluorescence = np.column_stack([events.columns[d.marker][order] for d in detectors])
    spill = spillover_matrix(detectors)
    observed = true_fluorescence @ spill
    scatter_names = ("FSC-A", "FSC-H", "FSC-W", "SSC-A", "SSC-H")
    scatter = np.column_stack([events.columns[k][order] for k in scatter_names])
    ticks = np.sort(rng.uniform(0, 6_000.0, order.size))  # 60 s at $TIMESTEP 0.01
    data = np.column_stack([scatter * cytometer.scatter_gain, observed, ticks]).astype(np.float32)
    pnn = [*cytometer.scatter, *(d.pnn for d in detectors), "Time"]
    pns = ["", "", "", "", "", *(d.marker_label for d in detectors), ""]
    metadata = _metadata(tube, detectors, spill)
    path.write_bytes(fcs_bytes(data, pnn, pns, metadata, cytometer.big_endian))


def _metadata(tube: Tube, detectors: tuple[Detector, ...], spill: np.ndarray) -> dict[str, str]:
    cytometer = tube.cytometer
    clock = "10:15:32"
    day = tube.acquired.strftime(cytometer.date_format).upper()
    names = [d.pnn for d in detectors]
    values = ",".join(f"{v:.6g}" for v in spill.ravel())
    metadata = {
        "$CYT": cytometer.name, "$CYTSN": cytometer.serial, "$DATE": day,
        "$BTIM": cytometer.time_format.format(day=day, clock=clock),
        "$ETIM": cytometer.time_format.format(day=day, clock="10:16:32"),
        "$TIMESTEP": "0.01", "$FIL": tube.file_name, "$SRC": tube.accession,
        "TUBE NAME": "T cell CAR panel" if tube.panel == "tcell" else "B cell panel",
        "$OP": "demo operator", "CREATOR": "cartflow demo writer",
        "$SPILLOVER": f"{len(names)},{','.join(names)},{values}",
    }  # fmt: skip
    if tube.counts["beads"]:
        metadata["BEADS PER TEST"] = f"{BEADS_PER_TEST:g}"
        metadata["SAMPLE VOLUME (UL)"] = f"{SAMPLE_VOLUME_UL:g}"
    if cytometer.scatter_gain != 1.0:
        for n in range(1, len(cytometer.scatter) + 1):
            metadata[f"$P{n}G"] = f"{cytometer.scatter_gain:g}"
    return metadata


def fcs_bytes(
    data: np.ndarray, pnn: list[str], pns: list[str], metadata: dict[str, str], big_endian: bool
) -> bytes:
    """An FCS 3.1 float file written by FlowIO's `create_fcs`, optionally turned big-endian."""
    floats = array("f")
    floats.frombytes(np.ascontiguousarray(data, dtype="<f4").tobytes())
    buffer = io.BytesIO()
    flowio.create_fcs(buffer, floats, pnn, opt_channel_names=pns, metadata_dict=metadata)
    raw = buffer.getvalue()
    return _to_big_endian(raw) if big_endian else raw


def _to_big_endian(raw: bytes) -> bytes:
    text_start, text_end = int(raw[10:18]), int(raw[18:26])
    text = raw[text_start : text_end + 1]
    begin = int(re.search(rb"\$BEGINDATA/(\d+)/", text).group(1))
    end = int(re.search(rb"\$ENDDATA/(\d+)/", text).group(1))
    swapped_text = text.replace(b"/$BYTEORD/1,2,3,4/", b"/$BYTEORD/4,3,2,1/")
    data = np.frombuffer(raw[begin : end + 1], dtype="<f4").astype(">f4").tobytes()
    return raw[:text_start] + swapped_text + raw[text_end + 1 : begin] + data + raw[end + 1 :]


def write_benchmark_file(path: str | Path, events: int = 1_000_000, seed: int = 0) -> Path:
    """A BD-style T-cell tube of about `events` events x 16 channels (big-endian float, with
    `$SPILLOVER` and counting beads) for benchmarks/flow_bench.py."""
    counts = tcell_counts(20.0, 1.5, scale=events / sum(TCELL_TUBE.values()))
    tube = Tube("BENCH-1M", "BENCH", BASELINE, "tcell", date(2026, 1, 5), FORTESSA, counts)
    return write_tube(Path(path), tube, np.random.default_rng(seed))

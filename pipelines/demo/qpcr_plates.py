"""The demo trial's qPCR plates, built from the true copy numbers in `trial.py`.

Every plate carries plasmid standards from 10^1 to 10^6 CAR copies per reaction in triplicate, three
NTCs, a positive control ("PC") and samples in triplicate, and the reference gene RNase P (two copies per diploid genome) on the
same wells' second target. Cq values follow each target's true standard curve with a little
replicate noise; a sample without CAR template gives no Cq at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from pipelines.demo.trial import CAR_COPIES_PER_UG, Sample
from qpcr.model import WELL_COLUMNS, QpcrPlate

CAR_TARGET, REFERENCE_TARGET = "CAR", "RNaseP"
STANDARD_COPIES = (1e1, 1e2, 1e3, 1e4, 1e5, 1e6)
DNA_INPUT_NG = 200.0
POSITIVE_CONTROL_COPIES = 2_000.0
"""CAR copies per reaction in the run's positive control (DNA of a CAR-transduced cell line)."""
GENOME_MASS_PG = 6.6
"""Mass of one diploid human genome: 200 ng of gDNA holds about 30,300 genomes."""


@dataclass(frozen=True)
class TrueCurve:
    slope: float
    intercept: float

    def cq(self, copies: float) -> float:
        return self.slope * np.log10(copies) + self.intercept

    @property
    def efficiency_pct(self) -> float:
        return (10 ** (-1 / self.slope) - 1) * 100


GOOD_CURVES = {CAR_TARGET: TrueCurve(-3.34, 38.6), REFERENCE_TARGET: TrueCurve(-3.38, 39.2)}
FAILING_CURVES = {CAR_TARGET: TrueCurve(-4.15, 42.9), REFERENCE_TARGET: TrueCurve(-3.38, 39.2)}
"""An inhibited run: CAR efficiency about 74 %, outside the 90-110 % window."""


CYCLES = 40
AMPLIFICATION_THRESHOLD = 0.2
"""Delta Rn at which the demo instrument calls the Cq."""
PLATEAU_DELTA_RN = {CAR_TARGET: 1.2, REFERENCE_TARGET: 1.6}
CURVE_STEEPNESS = 1.6
"""Cycles over which a curve's logistic rise goes from 27 % to 73 % of its plateau."""


def amplification_curves(wells: pd.DataFrame) -> pd.DataFrame:
    """Delta Rn per cycle for every well x target (AMPLIFICATION_COLUMNS): a logistic rise
    crossing the threshold exactly at the well's Cq, flat at 0 where nothing amplified."""
    cycles = np.arange(1, CYCLES + 1)
    parts = []
    for row in wells.itertuples(index=False):
        signal = np.zeros(CYCLES)
        if row.amplified and np.isfinite(row.cq):
            plateau = PLATEAU_DELTA_RN.get(row.target, 1.0)
            midpoint = row.cq + CURVE_STEEPNESS * np.log(plateau / AMPLIFICATION_THRESHOLD - 1)
            signal = plateau / (1 + np.exp(-(cycles - midpoint) / CURVE_STEEPNESS))
        parts.append(pd.DataFrame({"well": row.well, "target": row.target, "cycle": cycles,
                                   "fluorescence": signal}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def reference_copies_per_reaction(dna_ng: float = DNA_INPUT_NG) -> float:
    return 2.0 * dna_ng * 1000.0 / GENOME_MASS_PG


def car_copies_per_reaction(sample: Sample) -> float:
    return CAR_COPIES_PER_UG[sample.patient_id][sample.timepoint] * sample.dna_input_ng / 1000.0


def _well_names(rows: int, columns: int) -> list[str]:
    return [f"{chr(ord('A') + r)}{c + 1}" for r in range(rows) for c in range(columns)]


def build_plate(
    *,
    instrument_format: str,
    run_id: str,
    instrument: str,
    run_started: datetime,
    samples: list[tuple[str, Sample]],
    curves: dict[str, TrueCurve],
    rng: np.random.Generator,
    wells_per_plate: int = 384,
    cq_noise_sd: float = 0.05,
) -> QpcrPlate:
    """A plate of (name on the plate, sample) pairs in triplicate, standards and NTCs.

    Each well position holds both targets (duplex), as the real assay runs CAR with RNase P.
    """
    rows, columns = (16, 24) if wells_per_plate == 384 else (8, 12)
    positions = iter(_well_names(rows, columns))
    records: list[dict] = []

    def add(task: str, name: str, copies: dict[str, float], quantity: float | None) -> None:
        well = next(positions)
        for target in (CAR_TARGET, REFERENCE_TARGET):
            n = copies[target]
            cq = curves[target].cq(n) + rng.normal(0, cq_noise_sd) if n > 0 else np.nan
            records.append({
                "well": well, "sample_name": name, "target": target,
                "reporter": "FAM" if target == CAR_TARGET else "VIC", "task": task,
                "cq": cq, "amp_status": "AMP" if n > 0 else "Undetermined",
                "amplified": n > 0, "standard_quantity": quantity if quantity else np.nan,
                "instrument_quantity": np.nan, "dna_input_ng": np.nan, "omitted": False,
            })  # fmt: skip

    for quantity in STANDARD_COPIES:
        for _ in range(3):
            add("STANDARD", f"Std {quantity:.0e}", {CAR_TARGET: quantity, REFERENCE_TARGET: quantity},
                quantity)  # fmt: skip
    for _ in range(3):
        add("NTC", "NTC", {CAR_TARGET: 0.0, REFERENCE_TARGET: 0.0}, None)
    control = {
        CAR_TARGET: POSITIVE_CONTROL_COPIES,
        REFERENCE_TARGET: reference_copies_per_reaction(),
    }
    for _ in range(3):
        add("UNKNOWN", "PC", control, None)
    for name, sample in samples:
        copies = {
            CAR_TARGET: car_copies_per_reaction(sample),
            REFERENCE_TARGET: reference_copies_per_reaction(sample.dna_input_ng),
        }
        for _ in range(3):
            add("UNKNOWN", name, copies, None)
    wells = pd.DataFrame(records, columns=list(WELL_COLUMNS))
    vendor_curves = {
        t: {"slope": c.slope, "intercept": c.intercept, "efficiency_pct": c.efficiency_pct,
            "r_squared": 0.999}
        for t, c in curves.items()
    }  # fmt: skip
    return QpcrPlate(
        instrument_format=instrument_format, run_id=run_id, wells=wells,
        instrument=instrument, run_started=run_started, instrument_curves=vendor_curves,
        amplification=amplification_curves(wells), amplification_measure="Delta Rn",
    )  # fmt: skip

"""`cartflow demo`: write the demo trial's exports into an inbox, as the lab's instruments would.

What is written: the sample manifest (CSV), qPCR plates in two vendor formats (QuantStudio text,
Bio-Rad CFX CSV), including one run that fails QC and its repeat, and bead-array plates in two
formats (BD FCAP Array CSV, LEGENDplex XLSX), and flow-cytometry FCS tubes from two cytometers. The true values behind every
file go to `demo-truth.json` beside the inbox (not into it), so tests can assert recovery.

With `cohort_patients`, a generated CRS cohort comes on top (`crs_cohort.py`, `cohort_files.py`):
its manifest and bead-array plates in the inbox, its clinical observations in the lab home, and
its truth in `crs-cohort-truth.json` beside `demo-truth.json`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path

import numpy as np

from pipelines.demo import trial
from pipelines.demo.cba_files import true_concentrations, write_cba_files
from pipelines.demo.cohort_files import write_cohort_files
from pipelines.demo.crs_cohort import CrsCohort, generate_cohort
from pipelines.demo.flow_files import write_flow_files
from pipelines.demo.qpcr_files import write_cfx_csv, write_quantstudio_text
from pipelines.demo.qpcr_plates import FAILING_CURVES, GOOD_CURVES, build_plate
from pipelines.settings import SETTINGS_FILE, Settings

TRUTH_FILE = "demo-truth.json"
COHORT_TRUTH_FILE = "crs-cohort-truth.json"
FLOW_TRUTH = "flow_truth.json"
DEMO_SETTINGS = """# cartflow settings for the demo lab (every key optional; see README "Settings")
[qpcr]
# DNA per reaction for samples whose export and manifest entry give none (plate 4 names its
# samples P003_D14 instead of by accession, so the manifest's DNA input does not reach it).
default_dna_input_ng = 200
"""
FAILING_PLATE = "2026-04-20_CAR-qPCR_plate3_P003-P004.txt"


@dataclass
class DemoTrial:
    files: list[Path]
    truth: dict
    expected_quarantined: set[str] = field(default_factory=set)
    cohort: CrsCohort | None = None
    """The generated CRS cohort, when one was asked for."""

    def unexpected_outcomes(self, outcomes: list) -> list[str]:
        """Problems with how the pipeline treated the demo, as sentences (empty when all is well)."""
        problems = []
        for outcome in outcomes:
            expected_bad = outcome.name in self.expected_quarantined
            if outcome.status == "quarantined" and not expected_bad:
                problems.append(f"{outcome.name} was quarantined: {outcome.reason}")
            if outcome.status == "ingested" and expected_bad:
                problems.append(f"{outcome.name} should have failed QC but was taken")
        return problems


def _write_manifest(path: Path, samples: list[trial.Sample]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["accession", "patient_id", "timepoint", "collection_date",
                         "infusion_date", "dna_input_ng"])  # fmt: skip
        for s in samples:
            writer.writerow([s.accession, s.patient_id, s.timepoint, s.collection_date.isoformat(),
                             trial.INFUSION_DATE[s.patient_id].isoformat(), f"{s.dna_input_ng:g}"])  # fmt: skip


def write_demo_trial(
    inbox: Path,
    seed: int = 7,
    on_written: Callable[[Path], None] | None = None,
    cohort_patients: int = 0,
) -> DemoTrial:
    """Write the demo trial's exports into `inbox` (telling `on_written` each one as it is
    written: the FCS tubes take most of the time) and its truth beside it; with
    `cohort_patients`, the generated CRS cohort's too."""
    written = on_written or (lambda path: None)
    rng = np.random.default_rng(seed)
    inbox.mkdir(parents=True, exist_ok=True)
    samples = trial.study_samples()
    by_patient = {p: [s for s in samples if s.patient_id == p] for p in trial.PATIENTS}
    files: list[Path] = []
    settings = inbox.parent / SETTINGS_FILE
    if not settings.exists():
        settings.write_text(DEMO_SETTINGS, encoding="utf-8")

    manifest = inbox / "sample_manifest_2026-06.csv"
    _write_manifest(manifest, samples)
    files.append(manifest)
    written(files[-1])

    # Plate 1, QuantStudio 7 Flex: P001 and P002, samples named by accession.
    plate1 = build_plate(
        instrument_format="quantstudio-text", run_id="CAR-qPCR_plate1",
        instrument="QuantStudio 7 Flex", run_started=datetime(2026, 4, 14, 9, 30),
        samples=[(s.accession, s) for p in ("P001", "P002") for s in by_patient[p]],
        curves=GOOD_CURVES, rng=rng,
    )  # fmt: skip
    path1 = inbox / "2026-04-14_CAR-qPCR_plate1_P001-P002.txt"
    write_quantstudio_text(path1, plate1)
    files.append(path1)
    written(files[-1])

    # Plate 3 (run before the repeat): P003/P004 on an inhibited run; fails the efficiency rule.
    failing = build_plate(
        instrument_format="quantstudio-text", run_id="CAR-qPCR_plate3",
        instrument="QuantStudio 7 Flex", run_started=datetime(2026, 4, 20, 10, 5),
        samples=[(s.accession, s) for p in ("P003", "P004") for s in by_patient[p]],
        curves=FAILING_CURVES, rng=rng,
    )  # fmt: skip
    path3 = inbox / FAILING_PLATE
    write_quantstudio_text(path3, failing)
    files.append(path3)
    written(files[-1])

    # Plate 4, CFX384: the repeat of P003/P004, samples named P003_D14 style (the pattern).
    repeat = build_plate(
        instrument_format="cfx-maestro", run_id="CAR-qPCR_plate4",
        instrument="CFX384", run_started=datetime(2026, 4, 22, 8, 45),
        samples=[(f"{s.patient_id}_{s.timepoint}", s) for p in ("P003", "P004")
                 for s in by_patient[p]],
        curves=GOOD_CURVES, rng=rng,
    )  # fmt: skip
    path4 = inbox / "2026-04-22_CAR-qPCR_plate4_P003-P004_repeat.csv"
    write_cfx_csv(path4, repeat)
    files.append(path4)
    written(files[-1])

    # Bead arrays: an FCAP Array MFI table and a LEGENDplex workbook, cytokines from trial.py.
    for path in write_cba_files(inbox, seed=seed):
        files.append(path)
        written(path)

    # Flow cytometry: a T-cell and a B-cell tube per blood draw and the infused product, from a
    # BD LSRFortessa (P001, P002) and a Beckman Coulter CytoFLEX LX (P003, P004).
    files.extend(write_flow_files(inbox, seed=seed, on_written=written))
    flow_truth = json.loads((inbox / FLOW_TRUTH).read_text(encoding="utf-8"))
    (inbox / FLOW_TRUTH).unlink()

    truth = {
        "patients": list(trial.PATIENTS),
        "timepoints": list(trial.TIMEPOINTS),
        "study_day": trial.STUDY_DAY,
        "car_copies_per_ug": trial.CAR_COPIES_PER_UG,
        "qpcr_curves": {
            "good": {t: vars(c) for t, c in GOOD_CURVES.items()},
            "failing": {t: vars(c) for t, c in FAILING_CURVES.items()},
        },
        "cytokines_pg_ml": true_concentrations(),
        "flow_tubes": flow_truth,
        "expected_quarantined": [FAILING_PLATE],
        "written_at": datetime.combine(datetime.now().date(), time()).isoformat(),
    }
    (inbox.parent / TRUTH_FILE).write_text(json.dumps(truth, indent=2), encoding="utf-8")
    demo = DemoTrial(files=files, truth=truth, expected_quarantined={FAILING_PLATE})
    if cohort_patients:
        demo.cohort, cohort_files = write_crs_cohort(inbox, cohort_patients, seed, written)
        demo.files.extend(cohort_files)
    return demo


def write_crs_cohort(
    inbox: Path, patients: int, seed: int, on_written: Callable[[Path], None]
) -> tuple[CrsCohort, list[Path]]:
    """The CRS cohort's exports into `inbox`, its clinical observations where the lab's
    settings look for them, its truth beside the inbox."""
    home = inbox.parent
    cohort = generate_cohort(patients, seed)
    observations = home / Settings.load(home).derived.clinical_observations
    files = write_cohort_files(inbox, observations, cohort, on_written)
    (home / COHORT_TRUTH_FILE).write_text(json.dumps(cohort.truth(), indent=2), encoding="utf-8")
    return cohort, files

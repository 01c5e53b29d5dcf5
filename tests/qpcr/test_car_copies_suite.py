"""The car_copies suite holds the result contract: it takes the four results as `analyse_plate`
writes them and refuses a batch that breaks the contract, naming the rule."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from pipelines.thresholds import suite_thresholds
from pipelines.warehouse import conform
from qpcr.analysis import RESULTS, analyse_plate
from qpcr.model import WELL_COLUMNS, QpcrPlate
from qpcr.settings import QpcrSettings
from validation.runner import Validator
from validation.schemas import CAR_COPIES, CAR_COPIES_RESULTS

SLOPE, INTERCEPT = -3.32, 38.0


def _cq(copies: float) -> float:
    return SLOPE * np.log10(copies) + INTERCEPT


def _well(well: str, sample: str, task: str, cq: float, quantity: float = np.nan) -> dict:
    return {
        "well": well, "sample_name": sample, "target": "CAR", "reporter": "FAM", "task": task,
        "cq": cq, "amp_status": "Undetermined" if np.isnan(cq) else "AMP",
        "amplified": not np.isnan(cq), "standard_quantity": quantity,
        "instrument_quantity": np.nan, "dna_input_ng": np.nan, "omitted": False,
    }  # fmt: skip


def _four_results() -> pd.DataFrame:
    """One sample per result: D7 quantified, D14 below the LOQ, D21 not detected, D28 without
    DNA input (not measured)."""
    wells = [
        _well(f"S{level}{rep}", f"Std{level}", "STANDARD", _cq(10.0**level), 10.0**level)
        for level in range(1, 7)
        for rep in range(3)
    ]
    samples = {"P001_D7": 5_000.0, "P001_D14": 4.0, "P001_D21": 0.0, "P001_D28": 900.0}
    for sample, copies in samples.items():
        cq = _cq(copies) if copies else np.nan
        wells += [_well(f"{sample}-{rep}", sample, "UNKNOWN", cq) for rep in range(3)]
    plate = QpcrPlate("test", "run-1", pd.DataFrame(wells, columns=list(WELL_COLUMNS)))
    dna = {"P001_D7": 200.0, "P001_D14": 200.0, "P001_D21": 200.0}
    copies = analyse_plate(plate, QpcrSettings(loq_copies_per_reaction=10.0), dna).copies
    timepoint = copies["sample_name"].str.split("_").str[1]
    return copies.assign(
        patient_id="P001", timepoint=timepoint, study_day=timepoint.str[1:].astype(int),
        source_sha256="a" * 64, pipeline_version="test", processed_at=datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture(scope="module")
def validator(tmp_path_factory) -> Validator:
    return Validator(tmp_path_factory.mktemp("gx"), suite_thresholds(QpcrSettings()))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return _four_results()


def _failures(validator: Validator, frame: pd.DataFrame) -> str:
    batch = conform(frame, CAR_COPIES).to_pandas()
    return "\n".join(validator.validate("car_copies", batch, "test").failures)


def test_the_suite_knows_exactly_the_results_the_library_writes():
    assert CAR_COPIES_RESULTS == RESULTS


def test_the_four_results_pass_the_suite(validator, rows):
    results = dict(zip(rows["timepoint"], rows["result"], strict=True))
    assert results == {
        "D7": "quantified", "D14": "below_loq", "D21": "not_detected", "D28": "not_measured",
    }  # fmt: skip
    assert _failures(validator, rows) == ""


def _changed(rows: pd.DataFrame, timepoint: str, **values) -> pd.DataFrame:
    changed = rows.copy()
    for column, value in values.items():
        changed.loc[changed["timepoint"] == timepoint, column] = value
    return changed


@pytest.mark.parametrize(
    ("timepoint", "values", "rule"),
    [
        ("D21", {"copies_per_reaction": 0.0, "copies_per_ug": 0.0},
         "not detected has no copy number, not 0"),
        ("D28", {"copies_per_ug": 0.0}, "not detected or not measured has no copies per ug"),
        ("D7", {"copies_per_ug": np.inf}, "copies per ug are finite and not negative"),
        ("D7", {"copies_per_reaction": -1.0}, "copies per reaction are finite and not negative"),
        ("D14", {"copies_per_ug": np.nan}, "quantified and below-LOQ results carry their copies per ug"),
        ("D14", {"result_reason": None}, "every result but quantified says why"),
        ("D7", {"result_reason": "fine"}, "a quantified result needs no reason"),
        ("D7", {"result": "lost"}, "result is one of quantified, below_loq, not_detected, not_measured"),
        ("D21", {"below_loq": False}, "below_loq is true for below-LOQ and not-detected results"),
        ("D7", {"plate_qc_verdict": "FAIL"},
         "results other than not_measured come only from plates that passed QC"),
    ],
)  # fmt: skip
def test_a_batch_breaking_the_contract_is_refused_with_the_rule(
    validator, rows, timepoint, values, rule
):
    failures = _failures(validator, _changed(rows, timepoint, **values))
    assert f"car_copies: {rule} (1 row(s) failed" in failures, failures

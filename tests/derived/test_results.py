"""The result of each car_copies row: the contract's columns where given, else the old flags."""

from __future__ import annotations

import pandas as pd

from pipelines.derived.results import NO_DNA_INPUT, copies_results


def _rows(**columns) -> pd.DataFrame:
    base = {
        "copies_per_ug": [0.0, 20_000.0, 0.0, None, None],
        "below_loq": [True, False, True, False, False],
        "below_lod": [True, False, False, False, False],
        "dna_input_ng": [200.0, 200.0, 200.0, None, 200.0],
    }
    return pd.DataFrame({**base, **columns})


def test_old_rows_are_read_from_their_flags():
    read = copies_results(_rows())
    assert list(read["result"]) == [
        "not_detected", "quantified", "below_loq", "not_measured", "not_measured",
    ]  # fmt: skip
    assert read["result_reason"].iloc[:3].isna().all()
    assert read["result_reason"].iloc[3] == NO_DNA_INPUT
    assert read["result_reason"].iloc[4] == "copies per ug gDNA could not be computed"


def test_the_contract_columns_win_and_fill_only_their_gaps():
    given = _rows(
        result=["not_detected", "quantified", "below_loq", "not_measured", None],
        result_reason=[
            "no replicate amplified", None, "1 of 3 replicates, 4 copies < LOQ 10",
            "plate QC failed: re-run the plate", None,
        ],
    )  # fmt: skip
    read = copies_results(given)
    assert list(read["result"]) == [
        "not_detected", "quantified", "below_loq", "not_measured", "not_measured",
    ]  # fmt: skip
    assert read["result_reason"].iloc[3] == "plate QC failed: re-run the plate"
    assert read["result_reason"].iloc[4] == "copies per ug gDNA could not be computed"

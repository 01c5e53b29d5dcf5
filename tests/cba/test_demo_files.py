from __future__ import annotations

import pandas as pd
import pytest

from cba import analyse_plate, read_plate, sniff
from pipelines.demo import trial
from pipelines.demo.cba_files import ANALYTES, true_concentrations, write_cba_files


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("cba")
    return [(p, analyse_plate(read_plate(p))) for p in write_cba_files(folder, seed=7)]


def test_demo_writes_two_formats_recognised_by_content(demo_results) -> None:
    assert [sniff(p) for p, _ in demo_results] == ["fcap-array-csv", "legendplex-xlsx"]


def test_demo_concentrations_recovered_within_10_pct_in_range(demo_results) -> None:
    truth = true_concentrations()
    cytokines = pd.concat([result.cytokines for _, result in demo_results])
    quantified = cytokines[cytokines["censoring"] == "none"]
    expected = [
        truth[s][a] for s, a in zip(quantified["sample_name"], quantified["analyte"], strict=True)
    ]
    ratio = quantified["concentration_pg_ml"].to_numpy() / expected
    assert len(quantified) > 250
    assert abs(ratio - 1).max() < 0.10
    assert {s.accession for s in trial.study_samples()} == set(cytokines["sample_name"])
    assert set(cytokines["analyte"]) == set(ANALYTES)


def test_demo_censoring_matches_the_truth(demo_results) -> None:
    truth = true_concentrations()
    for _, result in demo_results:
        limits = result.curves.set_index("analyte")
        for row in result.cytokines.itertuples():
            true = truth[row.sample_name][row.analyte]
            if row.censoring == "below_lloq":
                assert true < limits.loc[row.analyte, "lloq_pg_ml"] * 1.1
            elif row.censoring == "above_uloq":
                assert true > limits.loc[row.analyte, "uloq_pg_ml"] * 0.9


def test_every_demo_curve_passes(demo_results) -> None:
    for _, result in demo_results:
        assert set(result.curves["verdict"]) == {"PASS"}

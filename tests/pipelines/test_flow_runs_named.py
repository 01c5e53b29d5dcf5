"""What Prefect's runs list shows, read back from the real server's API: runs named after what
they process, a quarantined file's run not Completed, every file of a sweep a run of its own,
and the run's table artifact naming each file with its outcome."""

from __future__ import annotations

from uuid import UUID

import pytest

from pipelines.demo.qpcr_plates import FAILING_CURVES
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, QUARANTINED
from pipelines.runtime.run_records import outcomes_of
from tests.plates import qpcr_plate

pytestmark = pytest.mark.flow

GOOD, FAILING = "plate_good.txt", "plate_failing.txt"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabHome:
    home = LabHome(tmp_path_factory.mktemp("runs") / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    return home


@pytest.fixture(scope="module")
def sweep(harness, lab: LabHome):
    """A sweep of two plates, one failing QC; its final state."""
    from pipelines import flows

    qpcr_plate(lab.inbox / GOOD, "P801", "RUNS-GOOD")
    qpcr_plate(lab.inbox / FAILING, "P802", "RUNS-BAD", FAILING_CURVES)
    return flows.process_inbox(home=str(lab.root), return_state=True)


def _flow_run(run_id: UUID):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def _file_runs_of(sweep_id: UUID) -> list:
    """The flow runs of the files of a sweep, as the runs list shows them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    files = FlowRunFilter(tags=FlowRunFilterTags(all_=["file"]))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=files)
    return [run for run in runs if run.parameters.get("sweep") == str(sweep_id)]


def test_a_sweep_with_a_quarantined_file_is_named_and_not_completed(sweep) -> None:
    run = _flow_run(sweep.state_details.flow_run_id)
    assert run.name == "sweep 2 files"
    assert run.state.type.value == "FAILED"
    assert run.state.name == "Quarantined"
    assert f"\nquarantined {FAILING}: plate failed QC" in run.state.message
    assert "amplification efficiency 74.2 % outside 90–110 %" in run.state.message
    assert GOOD not in run.state.message


def test_the_outcomes_stay_the_result_of_a_quarantined_run(sweep) -> None:
    outcomes = outcomes_of(sweep)
    assert {o.name: o.status for o in outcomes} == {GOOD: INGESTED, FAILING: QUARANTINED}


def test_every_file_of_the_sweep_is_a_run_of_its_own_in_its_own_state(sweep) -> None:
    runs = {run.name: run for run in _file_runs_of(sweep.state_details.flow_run_id)}
    assert sorted(runs) == [f"ingest {FAILING}", f"ingest {GOOD}"]
    good, failing = runs[f"ingest {GOOD}"], runs[f"ingest {FAILING}"]
    assert (good.state.type.value, good.state.name) == ("COMPLETED", "Completed")
    assert (failing.state.type.value, failing.state.name) == ("FAILED", "Quarantined")
    assert "amplification efficiency 74.2 % outside 90–110 %" in failing.state.message


def test_the_run_table_names_each_file_with_its_outcome(sweep) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    wanted = ArtifactFilter(
        key=ArtifactFilterKey(any_=["ingest-summary"]),
        flow_run_id=ArtifactFilterFlowRunId(any_=[sweep.state_details.flow_run_id]),
    )
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=wanted)
    rows = {row["file"]: row for row in _table_rows(artifact.data)}
    assert rows[GOOD]["outcome"] == "taken"
    assert rows[FAILING]["outcome"] == "quarantined"
    assert "amplification efficiency" in rows[FAILING]["reason"]
    assert rows[GOOD]["reason"] == ""


def _table_rows(data: object) -> list[dict]:
    import json

    return json.loads(data) if isinstance(data, str) else list(data)


def test_a_single_file_run_is_named_after_the_file_and_taken_is_completed(
    harness, lab: LabHome
) -> None:
    from pipelines import flows

    path = qpcr_plate(lab.inbox / "plate_single.txt", "P803", "RUNS-ONE")
    state = flows.ingest_file(path=str(path), home=str(lab.root), return_state=True)
    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == "ingest plate_single.txt"
    assert run.state.type.value == "COMPLETED"
    assert [o.status for o in outcomes_of(state)] == [INGESTED]


def test_a_quarantined_single_file_run_fails_named_quarantined(harness, lab: LabHome) -> None:
    from pipelines import flows

    path = qpcr_plate(lab.inbox / "plate_single_bad.txt", "P804", "RUNS-ONE-BAD", FAILING_CURVES)
    state = flows.ingest_file(path=str(path), home=str(lab.root), return_state=True)
    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == "ingest plate_single_bad.txt"
    assert (run.state.type.value, run.state.name) == ("FAILED", "Quarantined")
    assert run.state.message.startswith(
        "1 of 1 file(s) not taken:\nquarantined plate_single_bad.txt: plate failed QC"
    )
    assert [o.status for o in outcomes_of(state)] == [QUARANTINED]


def test_a_sweep_of_the_given_files_counts_them_in_its_name(harness, lab: LabHome) -> None:
    from pipelines import flows

    paths = [
        qpcr_plate(lab.root / f"given_{n}.txt", f"P81{n}", f"RUNS-GIVEN-{n}") for n in range(3)
    ]
    state = flows.process_inbox(
        home=str(lab.root), paths=[str(p) for p in paths], return_state=True
    )
    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == "sweep 3 files"
    assert run.state.type.value == "COMPLETED"
    files = _file_runs_of(state.state_details.flow_run_id)
    assert sorted(run.name for run in files) == [f"ingest given_{n}.txt" for n in range(3)]
    assert {run.state.type.value for run in files} == {"COMPLETED"}


def test_sweep_names_count_the_files_and_say_when_the_run_is_the_nightly_one() -> None:
    from pipelines.runtime.run_records import sweep_run_name

    assert sweep_run_name(1, nightly=False) == "sweep 1 file"
    assert sweep_run_name(90, nightly=True) == "nightly sweep 90 files"

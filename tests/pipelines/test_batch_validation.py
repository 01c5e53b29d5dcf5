"""A sweep validates each table of all its files in one suite run, and falls back to smaller
batches only when that run fails: outcomes, rows and validation results stay those of one file
after the other."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines.demo.qpcr_plates import FAILING_CURVES
from pipelines.home import LabHome
from pipelines.ingest import (
    BUSY,
    DUPLICATE,
    FAILED,
    INGESTED,
    QUARANTINED,
    ClaimOwner,
    FileOutcome,
    InProcess,
    Prepared,
    Processor,
    run_batch,
    sha256_of,
)
from pipelines.ledger import Ledger
from pipelines.runtime.run_records import outcomes_of
from pipelines.thresholds import suite_thresholds
from pipelines.warehouse import connect
from qpcr.settings import QpcrSettings
from tests.plates import qpcr_plate as _plate
from validation.runner import VALIDATED_TABLES, Validator

RESULTS_PER_PLATE = 16 + 17 + 27
"""Expectations of the qpcr_wells, qpcr_runs and car_copies suites: one validation_results row each."""
RESULTS_PER_FAILED_PLATE = 16 + 17
"""A plate that failed QC gives no car_copies: its wells and runs are validated and kept."""
QPCR_TABLES = ("qpcr_wells", "qpcr_runs", "car_copies")
FROM_FILES = "source_sha256 != 'derived'"


@pytest.fixture()
def lab(tmp_path: Path) -> LabHome:
    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    return home


@pytest.fixture()
def suite_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every suite run, as (table, number of source files in its frame)."""
    runs: list[tuple[str, int]] = []
    original = Validator._run

    def counted(self, table_name: str, frame: pd.DataFrame, files: list[str]):
        runs.append((table_name, frame["source_sha256"].nunique()))
        return original(self, table_name, frame, files)

    monkeypatch.setattr(Validator, "_run", counted)
    return runs


def _by_table(runs: list[tuple[str, int]]) -> dict[str, list[int]]:
    """The files per suite run of the ingested tables (the derived tables' runs left out)."""
    return {t: [n for name, n in runs if name == t] for t in QPCR_TABLES}


def _rows_per_source(home: LabHome, table: str) -> dict[str, int]:
    """Rows per source file (the derived tables' validation results, under "derived", left out)."""
    query = f"select source_sha256, count(*) from {table} where {FROM_FILES} group by 1"
    return dict(connect(home.warehouse).execute(query).fetchall())


def _tables_without_times(home: LabHome) -> dict[str, pd.DataFrame]:
    con = connect(home.warehouse)
    frames = {
        t: con.execute(f"select * exclude (processed_at) from {t} order by all").fetchdf()
        for t in QPCR_TABLES
    }
    frames["validation_results"] = con.execute(
        "select * exclude (processed_at, validated_at) from validation_results "
        f"where {FROM_FILES} order by all"
    ).fetchdf()
    return frames


def _statuses(home: LabHome) -> dict[str, str]:
    return {r.original_name: r.status for r in Ledger(home.ledger_path).records()}


# -- the validator -------------------------------------------------------------------------------


def test_every_suite_may_be_validated_in_batches(tmp_path: Path) -> None:
    """Guards the batch shortcut: a `mostly` or an aggregate expectation would make it wrong."""
    validator = Validator(tmp_path / "gx", suite_thresholds(QpcrSettings()))
    assert [t for t in VALIDATED_TABLES if not validator._is_batchable(t)] == []


# -- the processor's phases, without Prefect -----------------------------------------------------


def test_a_file_whose_validation_raises_is_the_only_one_quarantined(
    lab: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    plates = [_plate(lab.inbox / f"plate_{n}.txt", f"P20{n}", f"RAISE-{n}") for n in range(3)]
    broken = sha256_of(plates[1])
    processor = Processor(lab)
    prepared = [processor.prepare(p, "run-1") for p in plates]
    assert all(isinstance(p, Prepared) for p in prepared)

    def batch_breaks(*args, **kwargs):
        raise RuntimeError("suite run broke")

    original = Validator.validate

    def one_breaks(self, table_name: str, frame: pd.DataFrame, file_name: str):
        if file_name == plates[1].name and table_name == "qpcr_runs":
            raise RuntimeError("suite run broke")
        return original(self, table_name, frame, file_name)

    monkeypatch.setattr(Validator, "validate_batch", batch_breaks)
    monkeypatch.setattr(Validator, "validate", one_breaks)
    checks = processor.validate(prepared)
    outcomes = [processor.commit(p, checks[p.sha256], "run-1") for p in prepared]

    assert [o.status for o in outcomes] == [INGESTED, QUARANTINED, INGESTED]
    assert outcomes[1].reason.startswith(
        "plate_1.txt: cartflow could not process this file because of a fault in cartflow"
    )
    assert sorted(p.name for p in lab.processed.iterdir()) == ["plate_0.txt", "plate_2.txt"]
    reason = (lab.quarantine / "plate_1.txt.reason.txt").read_text()
    assert reason == outcomes[1].reason + "\n"
    assert "RuntimeError: suite run broke" in (lab.root / "logs" / "faults.log").read_text()
    assert broken not in _rows_per_source(lab, "car_copies")
    assert _statuses(lab) == {
        "plate_0.txt": INGESTED, "plate_1.txt": QUARANTINED, "plate_2.txt": INGESTED,
    }  # fmt: skip


def test_an_interrupted_validation_gives_the_claim_back(
    lab: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    plate = _plate(lab.inbox / "plate.txt", "P301", "STOP-1")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Validator, "validate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Processor(lab).process(plate, "run-1")
    assert _statuses(lab) == {"plate.txt": "received"}
    assert plate.exists()
    assert not (lab.warehouse / "car_copies").exists()

    monkeypatch.undo()
    assert Processor(lab).process(plate, "run-2").status == INGESTED


def test_a_duplicate_is_finished_in_the_prepare_phase(lab: LabHome) -> None:
    plate = _plate(lab.inbox / "plate.txt", "P401", "DUP-1")
    processor = Processor(lab)
    assert processor.process(plate, "run-1").status == INGESTED
    again = _plate(lab.inbox / "plate_again.txt", "P401", "DUP-1")
    result = processor.prepare(again, "run-2")
    assert isinstance(result, FileOutcome)
    assert (result.status, result.sha256) == (DUPLICATE, sha256_of(lab.processed / "plate.txt"))
    assert (lab.processed / "plate_again.txt").exists() and not again.exists()


# -- the sweep under Prefect ---------------------------------------------------------------------


def test_one_failing_plate_in_a_batch_is_the_only_one_quarantined(
    harness, lab: LabHome, suite_runs: list[tuple[str, int]]
) -> None:
    from pipelines import flows

    good = [_plate(lab.inbox / f"plate_{n}.txt", f"P50{n}", f"BATCH-{n}") for n in range(3)]
    bad = _plate(lab.inbox / "plate_bad.txt", "P509", "BATCH-BAD", FAILING_CURVES)
    good_shas = [sha256_of(p) for p in good]
    bad_sha = sha256_of(bad)

    outcomes = outcomes_of(flows.process_inbox(home=str(lab.root), return_state=True))

    assert [(o.name, o.status) for o in outcomes] == [
        ("plate_0.txt", INGESTED), ("plate_1.txt", INGESTED), ("plate_2.txt", INGESTED),
        ("plate_bad.txt", QUARANTINED),
    ]  # fmt: skip
    assert outcomes[3].reason == (
        "plate_bad.txt: plate failed QC, no result reported for P509_D14, P509_D7: CAR: "
        "amplification efficiency 74.2 % outside 90–110 % (slope -4.15 over 6 standard levels). "
        "Re-run the assay on a new plate and drop its export into the inbox (this run's QC "
        "figures are kept in qpcr_runs)"
    )
    reason_file = lab.quarantine / "plate_bad.txt.reason.txt"
    assert reason_file.read_text() == outcomes[3].reason + "\n"
    assert [o.rows for o in outcomes[:3]] == [
        {"qpcr_wells": 60, "qpcr_runs": 2, "car_copies": 2}
    ] * 3
    assert outcomes[3].rows == {"qpcr_wells": 60, "qpcr_runs": 2}
    # the failed plate's QC tables are valid data: every table passes as one batch
    assert _by_table(suite_runs) == {
        "qpcr_wells": [4], "qpcr_runs": [4], "car_copies": [3],
    }  # fmt: skip

    assert _rows_per_source(lab, "car_copies") == dict.fromkeys(good_shas, 2)
    assert _rows_per_source(lab, "qpcr_wells") == dict.fromkeys([*good_shas, bad_sha], 60)
    assert _rows_per_source(lab, "validation_results") == {
        **dict.fromkeys(good_shas, RESULTS_PER_PLATE), bad_sha: RESULTS_PER_FAILED_PLATE,
    }  # fmt: skip
    con = connect(lab.warehouse)
    failed = con.execute(
        "select source_sha256, table_name, column_name, unexpected_count "
        "from validation_results where not success order by all"
    ).fetchall()
    assert failed == []
    assert con.execute(
        "select qc_verdict from qpcr_runs where source_sha256 = ? and target = 'CAR'", [bad_sha]
    ).fetchall() == [("FAIL",)]
    keys = con.execute(
        "select count(*), count(distinct (source_sha256, table_name, expectation, column_name)) "
        f"from validation_results where {FROM_FILES}"
    ).fetchone()
    total = 3 * RESULTS_PER_PLATE + RESULTS_PER_FAILED_PLATE
    assert keys == (total, total)
    passed_counts = con.execute(
        "select distinct unexpected_count from validation_results "
        f"where {FROM_FILES} and source_sha256 != ? and unexpected_count is not null",
        [bad_sha],
    ).fetchall()
    assert passed_counts == [(0,)]
    assert sorted(p.name for p in lab.processed.iterdir()) == [p.name for p in good]
    assert _statuses(lab) == {
        "plate_0.txt": INGESTED, "plate_1.txt": INGESTED, "plate_2.txt": INGESTED,
        "plate_bad.txt": QUARANTINED,
    }  # fmt: skip


def test_two_exports_of_one_run_fall_back_to_one_file_after_the_other(
    harness, tmp_path: Path, suite_runs: list[tuple[str, int]]
) -> None:
    """Their keys collide in a batch; the result is what two sweeps of one file each gave."""
    from pipelines import flows

    homes = {}
    for way in ("batch", "sequential"):
        home = homes[way] = LabHome(tmp_path / way).ensure()
        (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    first = _plate(tmp_path / "run_a.txt", "P601", "SAME-RUN")
    second = _plate(tmp_path / "run_b.txt", "P601", "SAME-RUN", shift=0.4)

    for path in (first, second):
        shutil.copyfile(path, homes["batch"].inbox / path.name)
    batch = outcomes_of(flows.process_inbox(home=str(homes["batch"].root), return_state=True))
    batch_runs = _by_table(suite_runs)
    sequential = []
    for path in (first, second):
        shutil.copyfile(path, homes["sequential"].inbox / path.name)
        sequential += outcomes_of(
            flows.process_inbox(home=str(homes["sequential"].root), return_state=True)
        )

    assert batch_runs == {t: [2, 1, 1] for t in QPCR_TABLES}
    assert [(o.name, o.status, o.supersedes, o.rows) for o in batch] == [
        ("run_a.txt", INGESTED, None, {"qpcr_wells": 60, "qpcr_runs": 2, "car_copies": 2}),
        ("run_b.txt", INGESTED, "run_a.txt", {"qpcr_wells": 60, "qpcr_runs": 2, "car_copies": 2}),
    ]
    assert [(o.name, o.status, o.supersedes, o.rows, o.partitions) for o in batch] == [
        (o.name, o.status, o.supersedes, o.rows, o.partitions) for o in sequential
    ]
    for home in homes.values():
        assert _statuses(home) == {"run_a.txt": "superseded", "run_b.txt": INGESTED}
        assert _rows_per_source(home, "car_copies") == {sha256_of(second): 2}
        assert _rows_per_source(home, "validation_results") == {
            sha256_of(second): RESULTS_PER_PLATE
        }
    batch_tables, sequential_tables = (_tables_without_times(h) for h in homes.values())
    for table, frame in batch_tables.items():
        assert len(frame) > 0 and frame.equals(sequential_tables[table]), table


def test_a_single_file_sweep_validates_it_alone_as_ingest_file_does(
    harness, tmp_path: Path, suite_runs: list[tuple[str, int]]
) -> None:
    from pipelines import flows

    plate = _plate(tmp_path / "single.txt", "P701", "SINGLE-1")
    sha256 = sha256_of(plate)
    homes = {}
    for way in ("sweep", "ingest_file"):
        home = homes[way] = LabHome(tmp_path / way).ensure()
        (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
        shutil.copyfile(plate, home.inbox / plate.name)
    swept = outcomes_of(
        flows.process_inbox(
            home=str(homes["sweep"].root),
            paths=[str(homes["sweep"].inbox / plate.name)],
            return_state=True,
        )
    )
    sweep_runs = _by_table(suite_runs)
    suite_runs.clear()
    taken = outcomes_of(
        flows.ingest_file(
            path=str(homes["ingest_file"].inbox / plate.name),
            home=str(homes["ingest_file"].root),
            return_state=True,
        )
    )

    assert sweep_runs == _by_table(suite_runs) == dict.fromkeys(QPCR_TABLES, [1])
    [outcome] = swept
    assert (outcome.name, outcome.sha256, outcome.status, outcome.rows, outcome.partitions) == (
        "single.txt", sha256, INGESTED, {"qpcr_wells": 60, "qpcr_runs": 2, "car_copies": 2},
        [("P701", "D14"), ("P701", "D7")],
    )  # fmt: skip
    assert set(outcome.seconds) == {"compute", "validate", "write"}
    assert [o.as_dict() for o in swept] == [o.as_dict() for o in taken]
    sweep_tables, file_tables = (_tables_without_times(h) for h in homes.values())
    for table, frame in sweep_tables.items():
        assert len(frame) > 0 and frame.equals(file_tables[table]), table
    for home in homes.values():
        assert _rows_per_source(home, "validation_results") == {sha256: RESULTS_PER_PLATE}
        assert (home.processed / plate.name).exists() and not (home.inbox / plate.name).exists()


def test_a_copy_of_a_file_in_the_same_sweep_is_a_duplicate(harness, lab: LabHome) -> None:
    """As one file after the other: the copy finds the original taken, not busy."""
    from pipelines import flows

    original = _plate(lab.inbox / "plate.txt", "P801", "COPY-1")
    shutil.copyfile(original, lab.inbox / "plate_copy.txt")
    seen: list[tuple[str, str]] = []
    flows.on_file_done(lambda o: seen.append((o.name, o.status)))
    try:
        outcomes = outcomes_of(flows.process_inbox(home=str(lab.root), return_state=True))
    finally:
        flows.on_file_done(None)

    assert [(o.name, o.status) for o in outcomes] == [
        ("plate.txt", INGESTED), ("plate_copy.txt", DUPLICATE),
    ]  # fmt: skip
    assert outcomes[1].reason.startswith("same bytes as plate.txt, ingested ")
    assert sorted(seen) == [("plate.txt", INGESTED), ("plate_copy.txt", DUPLICATE)]
    assert BUSY not in {o.status for o in outcomes}
    assert sorted(p.name for p in lab.processed.iterdir()) == ["plate.txt", "plate_copy.txt"]
    assert _rows_per_source(lab, "car_copies") == {sha256_of(lab.processed / "plate.txt"): 2}


# -- worker groups -------------------------------------------------------------------------------


def test_files_are_shared_out_in_order_in_small_groups() -> None:
    from pipelines.flows import GROUP_FILES, file_groups

    assert file_groups(3, 2) == [[0], [1], [2]]
    groups = file_groups(100, 2)
    assert [i for g in groups for i in g] == list(range(100))
    sizes = [len(g) for g in groups]
    assert sizes == sorted(sizes, reverse=True)  # shrinking as the batch runs out
    assert sizes[0] == GROUP_FILES and sizes[-4:] == [1, 1, 1, 1]
    assert len(groups) < 40  # a task per group, not per file
    assert file_groups(0, 2) == []


def _group_of_three(
    lab: LabHome, monkeypatch: pytest.MonkeyPatch, stem: str, failing: str, error: BaseException
) -> list[Path]:
    """Three plates, and `Processor.prepare` raising `error` for the one named `failing`."""
    from pipelines import flows

    plates = [_plate(lab.inbox / f"plate_{n}.txt", f"P80{n}", f"{stem}-{n}") for n in range(3)]
    original = Processor.prepare

    def prepare(self, path: Path, flow_run_id: str | None = None, owner=None):
        if path.name == failing:
            raise error
        return original(self, path, flow_run_id, owner)

    monkeypatch.setattr(Processor, "prepare", prepare)
    flows.forget_processors()
    return plates


def test_a_file_that_raises_in_a_group_is_handed_back_alone(
    lab: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import flows

    plates = _group_of_three(lab, monkeypatch, "GROUP", "plate_1.txt", OSError("share dropped"))
    owner = ClaimOwner.this_process()
    results = flows.prepare_group(plates, "plate_0.txt and 2 more", lab, owner, "run-1")

    assert [type(r).__name__ for r in results] == ["Prepared", "OSError", "Prepared"]
    assert str(results[1]) == "share dropped"
    assert _statuses(lab) == {"plate_0.txt": "processing", "plate_2.txt": "processing"}


def test_a_file_that_keeps_raising_fails_alone_and_stays_in_the_inbox(
    lab: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    plates = _group_of_three(lab, monkeypatch, "GROUP", "plate_1.txt", OSError("share dropped"))
    processor = Processor(lab)
    outcomes = run_batch(processor, plates, InProcess(processor))
    assert [o.status for o in outcomes] == [INGESTED, FAILED, INGESTED]
    assert "share dropped" in outcomes[1].reason and plates[1].exists()
    assert _statuses(lab) == {"plate_0.txt": INGESTED, "plate_2.txt": INGESTED}


def test_an_interrupted_batch_gives_its_claims_back(
    lab: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    plates = _group_of_three(lab, monkeypatch, "STOP", "plate_2.txt", KeyboardInterrupt())
    processor = Processor(lab)
    with pytest.raises(KeyboardInterrupt):
        run_batch(processor, plates, InProcess(processor))
    assert _statuses(lab) == {"plate_0.txt": "received", "plate_1.txt": "received"}
    assert all(p.exists() for p in plates)
    assert not list(lab.warehouse.rglob("*.parquet"))


def test_a_sweep_on_local_workers_takes_files_a_few_per_task(
    harness, lab: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Dask path end to end: two worker processes, groups of files, the same outcomes."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from pipelines import flows

    monkeypatch.setenv("CARTFLOW_LOCAL_WORKERS", "2")
    monkeypatch.setenv("CARTFLOW_LOCAL_CLUSTER_MIN_FILES", "2")
    monkeypatch.setattr(flows, "GROUPS_PER_WORKER", 1)  # 5 files on 2 workers: groups of 3, 1, 1
    good = [_plate(lab.inbox / f"plate_{n}.txt", f"P90{n}", f"DASK-{n}") for n in range(4)]
    _plate(lab.inbox / "plate_bad.txt", "P909", "DASK-BAD", FAILING_CURVES)

    state = flows.process_inbox(home=str(lab.root), return_state=True)
    outcomes = outcomes_of(state)

    assert [(o.name, o.status) for o in outcomes] == [
        *((p.name, INGESTED) for p in good), ("plate_bad.txt", QUARANTINED),
    ]  # fmt: skip
    assert outcomes[-1].reason.startswith("plate_bad.txt: plate failed QC")
    assert [o.rows for o in outcomes[:4]] == [
        {"qpcr_wells": 60, "qpcr_runs": 2, "car_copies": 2}
    ] * 4
    run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        names = sorted(r.name for r in client.read_task_runs(flow_run_filter=run_filter))
    assert [n for n in names if n.startswith("prepare")] == [
        "prepare plate_0.txt and 2 more", "prepare plate_3.txt", "prepare plate_bad.txt",
    ]  # fmt: skip
    assert _rows_per_source(lab, "car_copies") == {sha256_of(p): 2 for p in lab.processed.iterdir()}

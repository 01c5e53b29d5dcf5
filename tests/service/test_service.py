"""The lab service end to end: a real Prefect server, process worker, deployments and watcher.

One `cartflow serve` per module (the `serve` fixture); the tests run in file order and the last one
stops it with SIGINT, as Ctrl-C would. Exactly-once is checked in the ledger: one `ingested`
event per file, and no record of a partial copy.

Everything binds 127.0.0.1 on a free port, keeps its Prefect history in the test's lab home, and
is stopped (then killed, with every descendant) when the module ends. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import numpy as np
import psutil
import pytest
from distributed import LocalCluster
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings

from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import GOOD_CURVES, build_plate
from pipelines.demo.trial import Sample
from pipelines.environment import DASK_ADDRESS
from pipelines.home import LabHome
from pipelines.ingest import BUSY, DUPLICATE, INGESTED, QUARANTINED, ClaimOwner, sha256_of
from pipelines.ledger import Ledger
from pipelines.runtime.run_records import outcomes_of
from pipelines.runtime.runners import LOCAL_DASHBOARD
from pipelines.warehouse import connect

REPO_ROOT = Path(__file__).resolve().parents[2]
# Two busy shared cores: the server, the deploy and the watcher each import a lot.
STARTUP_TIMEOUT = 420.0
LAB_SETTINGS = "[qpcr]\ndefault_dna_input_ng = 200\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `condition` until it is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def qpcr_export(path: Path, patient: str, run_id: str) -> Path:
    """A small QuantStudio text export whose samples are named `<patient>_<timepoint>`."""
    sample = Sample("x", "P001", "D14", datetime(2026, 1, 1).date(), 200.0)
    plate = build_plate(
        instrument_format="quantstudio-text", run_id=run_id, instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[(f"{patient}_D14", sample),
                                                      (f"{patient}_D28", sample)],
        curves=GOOD_CURVES, rng=np.random.default_rng(len(run_id)), wells_per_plate=96,
    )  # fmt: skip
    write_quantstudio_text(path, plate)
    return path


class Serve:
    """`cartflow serve` in a process group of its own, its console lines collected."""

    def __init__(self, home: LabHome, port: int) -> None:
        self.home = home
        self.port = port
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.lines: list[str] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CARTFLOW_"))}
        env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", "--home", str(home.root),
             "--port", str(port), "--steady-seconds", "1", "--worker-query-seconds", "2"],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, process_group=0,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float, after: int = 0) -> re.Match:
        """The first console line from index `after` on matching `pattern`."""

        def found() -> re.Match | None:
            if self.process.poll() is not None:
                pytest.fail(f"cartflow serve exited early:\n{self.output()}")
            return next((m for line in self.lines[after:] if (m := re.search(pattern, line))), None)

        return wait_until(found, timeout, f"{pattern!r} from cartflow serve:\n{self.output()}")

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.process.pid).children(recursive=True)
        return []

    def kill_everything(self) -> None:
        """Last resort at teardown, if a test left the service running."""
        if self.process.poll() is not None:
            return
        victims = [psutil.Process(self.process.pid), *self.descendants()]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        psutil.wait_procs(victims, timeout=10)


@pytest.fixture(scope="module")
def serve(tmp_path_factory) -> Iterator[Serve]:
    home = LabHome(tmp_path_factory.mktemp("service") / "lab").ensure()
    (home.root / "cartflow.toml").write_text(LAB_SETTINGS, encoding="utf-8")
    service = Serve(home, free_port())
    try:
        service.wait_for_line(r"^watching ", STARTUP_TIMEOUT)
        service.wait_for_line(r"^deployments registered", STARTUP_TIMEOUT)
        yield service
    finally:
        service.kill_everything()


pytestmark = pytest.mark.slow

PROCESS_TIMEOUT = 240.0


def on_service(serve: Serve) -> AbstractContextManager:
    """Flows called in this process record their runs in the service's server."""
    return temporary_settings({PREFECT_API_URL: serve.api_url})


def ingested_events(home: LabHome) -> dict[str, int]:
    """How many times each file name was ingested, from the ledger's event history."""
    with sqlite3.connect(f"file:{home.ledger_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT f.original_name, COUNT(*) FROM events e JOIN files f USING (sha256) "
            "WHERE e.status = 'ingested' GROUP BY f.original_name"
        ).fetchall()
    return dict(rows)


def records_named(home: LabHome, names: set[str]) -> list:
    return [r for r in Ledger(home.ledger_path).records() if r.original_name in names]


def wait_settled(home: LabHome, names: set[str], timeout: float = PROCESS_TIMEOUT) -> list:
    """Wait until every named file is ingested or quarantined; their ledger records."""

    def settled() -> list | None:
        records = records_named(home, names)
        done = [r for r in records if r.status in (INGESTED, QUARANTINED)]
        return records if len({r.original_name for r in done}) == len(names) else None

    return wait_until(settled, timeout, f"{sorted(names)} to be processed")


def test_nightly_cron_deployment_has_scheduled_runs(serve: Serve) -> None:
    """Guards the SQLAlchemy 2.1 trap: a cron schedule that never produces a run."""

    def scheduled_runs() -> list:
        with on_service(serve), get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("process_inbox/nightly")
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
        assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
        assert deployment.work_pool_name == "cartflow"
        return [r for r in runs if r.state_type == StateType.SCHEDULED]

    runs = wait_until(scheduled_runs, 120, "the scheduler to create nightly runs")
    assert all(r.expected_start_time.hour == 2 for r in runs)
    with on_service(serve), get_client(sync_client=True) as client:
        client.read_deployment_by_name("ingest_file/ingest-file")


def test_slow_copy_is_ingested_once_whole(serve: Serve, tmp_path: Path) -> None:
    source = qpcr_export(tmp_path / "slow_plate.txt", "P201", "SLOW-1")
    data = source.read_bytes()
    target = serve.home.inbox / source.name
    chunk = len(data) // 4 + 1
    with target.open("wb") as handle:  # one open handle, pauses longer than the steady time
        for start in range(0, len(data), chunk):
            handle.write(data[start : start + chunk])
            handle.flush()
            time.sleep(1.5)
    [record] = wait_settled(serve.home, {source.name})
    assert record.status == INGESTED, record.reason
    assert record.sha256 == sha256_of(source)
    assert ingested_events(serve.home)[source.name] == 1
    assert (serve.home.processed / source.name).read_bytes() == data


def test_twenty_files_dropped_at_once_are_each_ingested_once(serve: Serve, tmp_path: Path) -> None:
    staged = [qpcr_export(tmp_path / f"plate_{n:02d}.txt", f"P3{n:02d}", f"BATCH-{n}")
              for n in range(20)]  # fmt: skip
    for path in staged:
        shutil.copyfile(path, serve.home.inbox / path.name)
    names = {p.name for p in staged}
    records = wait_settled(serve.home, names)
    assert {r.status for r in records} == {INGESTED}, [r.reason for r in records]
    events = ingested_events(serve.home)
    assert {name: events[name] for name in names} == dict.fromkeys(names, 1)
    rows = (
        connect(serve.home.warehouse)
        .execute("select count(distinct patient_id) from car_copies where patient_id like 'P3%'")
        .fetchone()
    )
    assert rows == (20,)


def test_a_garbage_file_is_quarantined_with_its_reason(serve: Serve) -> None:
    garbage = serve.home.inbox / "not_an_export.csv"
    garbage.write_text("this,is\nnot,an export\n", encoding="utf-8")
    [record] = wait_settled(serve.home, {garbage.name})
    assert record.status == QUARANTINED
    reason = serve.home.quarantine / "not_an_export.csv.reason.txt"
    assert "not a recognised export" in reason.read_text(encoding="utf-8")


def test_watcher_and_sweep_meeting_the_same_files_process_each_once(
    serve: Serve, tmp_path: Path
) -> None:
    from pipelines import flows

    staged = [qpcr_export(tmp_path / f"race_{n}.txt", f"P4{n:02d}", f"RACE-{n}")
              for n in range(6)]  # fmt: skip
    for path in staged:
        os.replace(path, serve.home.inbox / path.name)  # arrives by rename: on_moved
    with on_service(serve):
        swept = outcomes_of(flows.process_inbox(home=str(serve.home.root), return_state=True))
    assert {o.status for o in swept} <= {INGESTED, BUSY, DUPLICATE}
    names = {p.name for p in staged}
    wait_settled(serve.home, names)
    wait_until(lambda: not any((serve.home.inbox / n).exists() for n in names), 60, "empty inbox")
    events = ingested_events(serve.home)
    assert {name: events[name] for name in names} == dict.fromkeys(names, 1)


def test_sweep_skips_a_live_claim_and_takes_over_a_dead_one(serve: Serve, tmp_path: Path) -> None:
    """A claim of another host's live run is skipped until its heartbeat expires; a claim of a
    process that is gone is taken over at once."""
    from pipelines import flows

    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text(LAB_SETTINGS, encoding="utf-8")
    elsewhere = qpcr_export(home.inbox / "other_host.txt", "P501", "ELSEWHERE-1")
    killed = qpcr_export(home.inbox / "killed_run.txt", "P502", "KILLED-1")
    ledger = Ledger(home.ledger_path)
    for export in (elsewhere, killed):
        ledger.receive(sha256_of(export), export.stat().st_size, export.name)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    other_host = dataclasses.replace(ClaimOwner.this_process(), host="lab-server-2")
    dead_process = dataclasses.replace(ClaimOwner.this_process(), pid=int(gone.stdout))
    assert ledger.claim(sha256_of(elsewhere), other_host)
    assert ledger.claim(sha256_of(killed), dead_process)
    with on_service(serve):
        flows.forget_processors()
        state = flows.process_inbox(home=str(home.root), return_state=True)
        taken, skipped = outcomes_of(state)  # in the order of their names
        assert (taken.status, skipped.status) == (INGESTED, BUSY), taken.reason
        assert elsewhere.exists() and not killed.exists()
        (home.root / "cartflow.toml").write_text(
            LAB_SETTINGS + "[ingest]\nclaim_expiry_minutes = 0.0001\n", encoding="utf-8"
        )
        flows.forget_processors()
        [taken] = outcomes_of(flows.process_inbox(home=str(home.root), return_state=True))
        flows.forget_processors()
    assert taken.status == INGESTED, taken.reason
    assert not elsewhere.exists() and (home.processed / elsewhere.name).exists()


def test_a_batch_on_a_dask_cluster_gives_the_local_tables(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import flows

    homes = {}
    for where in ("local", "dask"):
        home = homes[where] = LabHome(tmp_path / where).ensure()
        (home.root / "cartflow.toml").write_text(LAB_SETTINGS, encoding="utf-8")
        for n in range(4):
            qpcr_export(home.inbox / f"plate_{n}.txt", f"P6{n:02d}", f"DASK-{n}")
        (home.inbox / "garbage.txt").write_text("garbage\n", encoding="utf-8")
    with on_service(serve):
        local = outcomes_of(flows.process_inbox(home=str(homes["local"].root), return_state=True))
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=LOCAL_DASHBOARD,
        ) as cluster:  # fmt: skip
            monkeypatch.setenv(DASK_ADDRESS.name, cluster.scheduler_address)
            remote = outcomes_of(
                flows.process_inbox(home=str(homes["dask"].root), return_state=True)
            )
    assert [(o.name, o.status, o.rows) for o in remote] == [
        (o.name, o.status, o.rows) for o in local
    ]
    for table in ("car_copies", "qpcr_runs", "qpcr_wells"):
        query = f"select * exclude (processed_at) from {table} order by all"
        frames = [connect(homes[w].warehouse).execute(query).fetchdf() for w in ("local", "dask")]
        assert len(frames[0]) > 0
        assert frames[0].equals(frames[1]), table


def test_a_file_dropped_while_the_watcher_is_down_is_taken_when_it_restarts(
    serve: Serve, tmp_path: Path
) -> None:
    started = serve.wait_for_line(r"^started watcher \(pid (\d+)\)", 5)
    os.killpg(int(started.group(1)), signal.SIGKILL)
    mark = len(serve.lines)
    late = qpcr_export(tmp_path / "while_down.txt", "P701", "DOWN-1")
    shutil.copyfile(late, serve.home.inbox / late.name)
    serve.wait_for_line(r"^watcher exited with code .*; restarting it", 30, after=mark)
    [record] = wait_settled(serve.home, {late.name})
    assert record.status == INGESTED, record.reason
    assert ingested_events(serve.home)[late.name] == 1


def test_a_command_line_sweep_is_recorded_on_the_running_service(
    serve: Serve, tmp_path: Path
) -> None:
    """`cartflow ingest` with no Prefect settings finds the service running for its home: its
    sweep and the file's run appear in the service's runs list, named after what they took."""
    export = qpcr_export(tmp_path / "from_the_terminal.txt", "P711", "CLI-1")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CARTFLOW_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "ingest", str(export), "--home",
         str(serve.home.root)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Starting temporary server" not in done.stdout + done.stderr
    with on_service(serve), get_client(sync_client=True) as client:
        [file_run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=["ingest from_the_terminal.txt"])
            )
        )
        sweep = client.read_flow_run(file_run.parameters["sweep"])
    assert file_run.state.type == StateType.COMPLETED
    assert (sweep.name, sweep.state.type) == ("sweep 1 file", StateType.COMPLETED)


def test_the_nightly_deployment_run_is_named_a_nightly_sweep(serve: Serve) -> None:
    from prefect.deployments import run_deployment

    with on_service(serve):
        run = run_deployment("process_inbox/nightly", timeout=PROCESS_TIMEOUT)
    assert run.state.is_final(), run.state
    assert re.fullmatch(r"nightly sweep \d+ files?", run.name), run.name


def test_ctrl_c_stops_the_whole_service(serve: Serve) -> None:
    children = serve.descendants()
    assert len(children) >= 3  # server, worker, watcher (and their own children)
    os.killpg(serve.process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    assert serve.process.wait(timeout=120) == 0, serve.output()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [(p.pid, p.name()) for p in alive]
    assert "stopped" in serve.lines[-1]

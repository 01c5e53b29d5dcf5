"""Nightly backfill: N generated 1M-event T-cell FCS tubes through the nightly sweep, end to end.

    .venv/bin/python benchmarks/backfill_bench.py [--files 100] [--events 1000000]

Writes a sample manifest and N BD-style T-cell tubes (16 channels, big-endian float, $SPILLOVER,
counting beads; `pipelines/demo/flow_files.py`), each its own patient and timepoint, in parallel
processes, beside the inbox of a temporary lab home. Then, as `cartflow run` does, starts Prefect's
embedded server with its home inside that lab (a sweep of the still empty inbox: imports and
server start-up, printed but not counted), moves the files into the inbox and times
`process_inbox(recompute_all=True)`, what the nightly deployment runs, from call to return. The
issue's target is under 60 s for 100 files on two cores, Prefect's overhead included.

Prints the wall time, seconds per tube, files taken and quarantined, and where the time went,
from Prefect's own records of the flow run and its task runs:

- prepare: hash, raw store, claim, read, gate, conform; from the end of the manifest's task to
  the last prepare task's end, so it includes starting the local Dask workers (batches of 12
  files or more run there);
- validate: the validate tasks, one per table, after the local Dask workers stopped (the Great
  Expectations context is set up on a thread meanwhile);
- commit: Parquet writes, supersession, ledger (the files' write times: they run one after the
  other in the flow), then publish: filing the originals away, ledger export, artifacts, Data Docs;
- derive: the derived tables and reports of every patient.

The generated files and the lab home are deleted at the end. Not a test.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import numpy as np

from pipelines.cli import prepare_environment
from pipelines.demo.flow_files import FORTESSA, TCELL_TUBE, Tube, tcell_counts, write_tube
from pipelines.demo.trial import STUDY_DAY, TIMEPOINTS
from pipelines.home import LabHome

if TYPE_CHECKING:
    from pipelines.ingest import FileOutcome

INFUSION_DATE = date(2026, 3, 2)
MANIFEST = "backfill_manifest.csv"


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float


def backfill_tubes(files: int, events: int) -> list[Tube]:
    """`files` T-cell tubes, patients BF001, BF002... at ten timepoints each, about `events`
    events per tube, CAR+ % of CD3 varying so no two patients look alike."""
    scale = events / sum(TCELL_TUBE.values())
    tubes = []
    for index in range(files):
        patient = f"BF{index // len(TIMEPOINTS) + 1:03d}"
        timepoint = TIMEPOINTS[index % len(TIMEPOINTS)]
        counts = tcell_counts(5.0 + index % 30, 1.5, scale=scale)
        collected = INFUSION_DATE + timedelta(days=STUDY_DAY[timepoint])
        accession = f"BF-{index + 1:05d}"
        tubes.append(Tube(accession, patient, timepoint, "tcell", collected, FORTESSA, counts))
    return tubes


def write_manifest(path: Path, tubes: list[Tube]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["accession", "patient_id", "timepoint", "collection_date", "infusion_date"]
        )
        for tube in tubes:
            writer.writerow([tube.accession, tube.patient_id, tube.timepoint,
                             tube.acquired.isoformat(), INFUSION_DATE.isoformat()])  # fmt: skip


def _write_one(task: tuple[Path, Tube, int]) -> Path:
    path, tube, seed = task
    return write_tube(path, tube, np.random.default_rng(seed))


def write_exports(folder: Path, tubes: list[Tube]) -> float:
    """The manifest and every tube, written by one process per core; returns the seconds."""
    started = time.perf_counter()
    write_manifest(folder / MANIFEST, tubes)
    tasks = [(folder / tube.file_name, tube, seed) for seed, tube in enumerate(tubes)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write_one, tasks))
    return time.perf_counter() - started


def _task_runs(flow_run_id: UUID) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs: list = []
    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        while page := client.read_task_runs(
            flow_run_filter=only_this_run, limit=200, offset=len(runs)
        ):
            runs += page
    return runs


def _spans(task_runs: list) -> dict[str, tuple[datetime, datetime]]:
    """First start and last end of each kind of task run ("prepare x.fcs", "derive-3f2")."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for run in task_runs:
        kind = run.name.split()[0].split("-")[0]
        first, last = spans.get(kind, (run.start_time, run.end_time))
        spans[kind] = (min(first, run.start_time), max(last, run.end_time))
    return spans


def phases(flow_run_id: UUID, outcomes: list[FileOutcome], total: float) -> list[Phase]:
    """The sweep's wall time split by phase, from the flow run's and its task runs' times."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    spans = _spans(_task_runs(flow_run_id))
    flow_start, flow_end = flow_run.start_time, flow_run.end_time
    prepare_start = spans["ingest"][1] if "ingest" in spans else flow_start
    first_prepared, prepare_end = spans["prepare"]
    validate_start, validate_end = spans.get("validate", (prepare_end, prepare_end))
    derive_start, derive_end = spans["derive"]
    commit = sum(o.seconds.get("write", 0.0) for o in outcomes)
    return [
        Phase("flow run start-up, manifest", (prepare_start - flow_start).total_seconds()),
        Phase("prepare (incl. Dask start-up)", (prepare_end - prepare_start).total_seconds()),
        Phase("  of which before the first task ran", (first_prepared - prepare_start).total_seconds()),
        Phase("validate", (validate_end - prepare_end).total_seconds()),
        Phase("  of which stopping the Dask workers", (validate_start - prepare_end).total_seconds()),
        Phase("commit", commit),
        Phase("publish", (derive_start - validate_end).total_seconds() - commit),
        Phase("derive", (derive_end - derive_start).total_seconds()),
        Phase("flow run end", (flow_end - derive_end).total_seconds()),
        Phase("outside the flow run", total - (flow_end - flow_start).total_seconds()),
    ]  # fmt: skip


def cpu_seconds() -> tuple[float, float] | None:
    """(busy, stolen) CPU seconds of the whole machine so far, from /proc/stat (Linux); on a
    virtual machine, stolen time is what other guests took from this one's cores."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields] + [0] * 8
    user, nice, system, _, _, irq, softirq, steal = ticks[:8]
    hertz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hertz, steal / hertz


def report(outcomes: list[FileOutcome], total: float, split: list[Phase], tubes: int) -> None:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    computed = [o.seconds["compute"] for o in outcomes if "compute" in o.seconds]
    print(f"\nnightly sweep of {tubes} tube(s) and a manifest: {total:.1f} s wall, "
          f"{total / tubes:.2f} s per tube (target: under 60 s for 100)")  # fmt: skip
    print("files: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    for outcome in outcomes:
        if outcome.status == "quarantined":
            print(f"  quarantined {outcome.name}: {outcome.reason}")
    if computed:
        print(f"compute per tube (read, gate, conform; on a worker): "
              f"median {float(np.median(computed)):.2f} s, total {sum(computed):.1f} s")  # fmt: skip
    print("\nphase split (wall seconds)")
    for phase in split:
        print(f"  {phase.name:38} {phase.seconds:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100, help="FCS tubes to generate")
    parser.add_argument("--events", type=int, default=1_000_000, help="events per tube")
    parser.add_argument(
        "--keep-files", type=Path, metavar="DIR",
        help="generate the tubes into DIR once and reuse them on later runs (hard links)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cartflow-backfill-") as folder:
        home = LabHome(Path(folder) / "lab").ensure()
        tubes = backfill_tubes(args.files, args.events)
        staging = args.keep_files or Path(folder) / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        if len(list(staging.iterdir())) == len(tubes) + 1:
            print(f"reusing the {len(tubes)} tube(s) and manifest in {staging}")
        else:
            written = write_exports(staging, tubes)
            print(f"wrote {len(tubes)} tube(s) of ~{args.events:,} events and a manifest "
                  f"in {written:.1f} s")  # fmt: skip
        prepare_environment(home)
        from pipelines import flows
        from pipelines.runtime.run_records import outcomes_of

        started = time.perf_counter()
        flows.process_inbox(home=str(home.root))  # the inbox is empty: starts the server
        print(f"imports, embedded Prefect server start-up, empty sweep: "
              f"{time.perf_counter() - started:.1f} s (not counted)")  # fmt: skip
        for path in staging.iterdir():
            os.link(path, home.inbox / path.name)

        started, cpu_before = time.perf_counter(), cpu_seconds()
        state = flows.process_inbox(home=str(home.root), recompute_all=True, return_state=True)
        total, cpu_after = time.perf_counter() - started, cpu_seconds()
        outcomes = outcomes_of(state)
        split = phases(state.state_details.flow_run_id, outcomes, total)
        report(outcomes, total, split, len(tubes))
        if cpu_before and cpu_after:
            busy, stolen = (
                after - before for before, after in zip(cpu_before, cpu_after, strict=True)
            )
            print(f"\nmachine CPU during the sweep: {busy:.0f} s busy of {total * (os.cpu_count() or 1):.0f}"
                  f" s on {os.cpu_count()} cores, {stolen:.1f} s stolen by the hypervisor")  # fmt: skip


if __name__ == "__main__":
    main()

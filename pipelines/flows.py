"""Prefect flows: `ingest_file` (one file) and `process_inbox` (the sweep).

Flows stay thin: each runs the ingest engine's batch (`pipelines.ingest.run_batch`), handing it
an executor that runs the per-file work as Prefect tasks here (`PrefectTasks`), or a few files per
task on a Dask cluster (`DaskTasks`, for large batches: `pipelines.runtime.runners`), and each
table's validation as one task. The engine decides what happens to every file and alone takes and
gives back claims. Each flow run then recomputes the derived tables of the patients with new data
(and of those a stopped run left waiting), and publishes a table artifact (file, status, reason,
rows written) and a link to the Data Docs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.context import get_run_context
from prefect.futures import as_completed
from prefect.runtime import deployment, flow_run
from prefect.states import State
from prefect_dask import DaskTaskRunner

from pipelines.home import LabHome
from pipelines.ingest import (
    BUSY,
    DUPLICATE,
    FAILED,
    INGESTED,
    QUARANTINED,
    Check,
    ClaimOwner,
    FileOutcome,
    Prepared,
    Processor,
    Recovery,
    inbox_files,
    manifests_first,
    run_batch,
)
from pipelines.ingest.batch import Arrival
from pipelines.ingest.faults import DERIVE, fault_point
from pipelines.ingest.processor import resource_problem
from pipelines.runtime.run_records import (
    FileRuns,
    file_run_name,
    final_state,
    sweep_run_name,
)
from pipelines.runtime.runners import local_cluster_settings, per_file_runner

_processors: dict[Path, Processor] = {}
_progress: list[Callable[[FileOutcome], None]] = []
_notices: list[Callable[[str], None]] = []
_steps: list[Callable[[str, str], None]] = []


def processor_for(home: LabHome) -> Processor:
    """One Processor per lab home and process, so the GX context is built once."""
    if home.root not in _processors:
        _processors[home.root] = Processor(home)
    return _processors[home.root]


def forget_processors() -> None:
    """Drop cached processors (settings or the lab home changed on disk)."""
    _processors.clear()


def _flow_run_id() -> str | None:
    try:
        context = get_run_context()
    except RuntimeError:
        return None
    run = getattr(context, "flow_run", None) or getattr(context, "task_run", None)
    return str(getattr(run, "flow_run_id", None) or getattr(run, "id", "")) or None


def on_file_done(
    callback: Callable[[FileOutcome], None] | None,
    on_notice: Callable[[str], None] | None = None,
    on_step: Callable[[str, str], None] | None = None,
) -> None:
    """Call `callback` after each file (the command line's lines), `on_notice` with each notice
    of the run (a stopped run recovered, derived tables not updated), and `on_step` with each
    step of the work as it starts (`pipelines.ingest.batch` steps, then `PUBLISHING` and
    `DERIVING`: the command line's progress bar); None removes them."""
    for callbacks, given in ((_progress, callback), (_notices, on_notice), (_steps, on_step)):
        callbacks.clear()
        if given is not None:
            callbacks.append(given)


PUBLISHING, DERIVING = "publishing", "deriving"
"""Steps after the files: the run summary and Data Docs, the derived tables and reports."""


def _step(step: str, what: str) -> None:
    for callback in _steps:
        callback(step, what)


def _notice(message: str) -> None:
    get_run_logger().warning("%s", message)
    for callback in _notices:
        callback(message)


def _report(outcome: FileOutcome) -> None:
    """Log a finished file and tell the progress callbacks."""
    logger = get_run_logger()
    if outcome.status in (QUARANTINED, FAILED):
        logger.warning("%s %s: %s", outcome.name, outcome.status, outcome.reason)
    else:
        logger.info("%s %s %s", outcome.name, outcome.status, outcome.rows)
    for callback in _progress:
        callback(outcome)


def _log_recovery(recovery: Recovery) -> None:
    _notice(recovery.summary())


def _after_the_files(what: str, step: Callable[[], object]) -> None:
    """A step after the files were taken (the run summary, the derived tables): an error here
    is a notice, never a reason to fail files already committed; what it left undone is done
    by the next run (patients stay waiting for their recompute)."""
    try:
        step()
    except Exception as err:
        problem = resource_problem(err)
        if problem is None:
            get_run_logger().exception("%s failed", what)
            problem = f"{type(err).__name__}: {err} (a defect; please report it)"
        _notice(f"{what} not updated: {problem}; the next run tries again")


# -- the tasks: plain module-level functions wrapped below, so that Dask pickles them by
# reference (a decorated function's name points at the Task object, and pickling it by value
# drags in module globals such as the command line's progress callback). Never cached: a path's
# content can change between runs; the ledger knows what was done.


def prepare_one(
    path: Path, home: LabHome, owner: ClaimOwner, flow_run_id: str | None
) -> Prepared | FileOutcome:
    """The per-file task: the file stored, claimed for `owner`'s batch and computed."""
    return processor_for(home).prepare(path, flow_run_id, owner)


prepare_task = task(
    prepare_one, name="prepare", task_run_name="prepare {path.name}", cache_policy=NONE
)


def prepare_group(
    paths: list[Path], label: str, home: LabHome, owner: ClaimOwner, flow_run_id: str | None
) -> list[Prepared | FileOutcome | Exception]:
    """A worker's task: several files prepared one after the other.

    A task run costs its worker and the Prefect server a few tenths of a second of CPU
    (state changes, logs, the result's trip back), about a third of a 1M-event file's own work,
    so workers take files a few at a time. A file that raised is returned as its exception, for
    the engine to try that file alone; the group's other files keep their results. Claims are
    the batch's (its `owner`), given back by the engine whatever happens here.
    """
    processor = processor_for(home)
    results: list[Prepared | FileOutcome | Exception] = []
    for path in paths:
        try:
            results.append(processor.prepare(path, flow_run_id, owner))
        except Exception as err:  # noqa: BLE001 - handed to the engine with its file
            results.append(err)
    return results


prepare_group_task = task(
    prepare_group, name="prepare", task_run_name="prepare {label}", cache_policy=NONE
)


@task(name="validate", task_run_name="validate {table_name}", cache_policy=NONE)
def validate_task(table_name: str, prepared: list[Prepared], home: LabHome) -> dict[str, Check]:
    """One table of every prepared file, in as few suite runs as they allow."""
    return processor_for(home).validate_table(table_name, prepared)


class PrefectTasks:
    """The engine's executor: one task per file here, one per table."""

    def __init__(self, home: LabHome) -> None:
        self.home = home

    def prepare(
        self, files: Sequence[Path], owner: ClaimOwner, flow_run_id: str | None
    ) -> Iterator[Arrival]:
        for index, path in enumerate(files):
            state = prepare_task(path, self.home, owner, flow_run_id, return_state=True)
            yield index, state.result(raise_on_failure=False)

    def validate(self, table_name: str, prepared: list[Prepared]) -> dict[str, Check]:
        return validate_task(table_name, prepared, self.home)


class DaskTasks(PrefectTasks):
    """All files at once on Dask workers, a few per task, each group as it finishes."""

    def __init__(self, home: LabHome, runner: DaskTaskRunner) -> None:
        super().__init__(home)
        self.runner = runner

    def prepare(
        self, files: Sequence[Path], owner: ClaimOwner, flow_run_id: str | None
    ) -> Iterator[Arrival]:
        runner = self.runner
        with local_cluster_settings(), runner, _warming_up(processor_for(self.home)):
            workers = len(runner.client.scheduler_info().get("workers", {}))
            groups = file_groups(len(files), max(1, workers))
            futures = {
                runner.submit(
                    prepare_group_task,
                    parameters={
                        "paths": [files[i] for i in group], "label": _group_label(files, group),
                        "home": self.home, "owner": owner, "flow_run_id": flow_run_id,
                    },
                ): group
                for group in groups
            }  # fmt: skip
            for future in as_completed(list(futures)):
                results = future.result(raise_on_failure=False)
                if isinstance(results, BaseException):
                    results = [results] * len(futures[future])
                yield from zip(futures[future], results, strict=True)


def executor_for(home: LabHome, file_count: int) -> PrefectTasks:
    """Dask for large batches or a configured cluster, else tasks here."""
    runner = per_file_runner(file_count)
    return PrefectTasks(home) if runner is None else DaskTasks(home, runner)


GROUP_FILES = 8
"""At most this many files per worker task."""
GROUPS_PER_WORKER = 4
"""A group is at most the files left shared out into this many groups per worker."""


def file_groups(count: int, workers: int) -> list[list[int]]:
    """Consecutive file indices in groups that shrink as the batch runs out: at most
    `GROUP_FILES`, and at most the files left over `workers * GROUPS_PER_WORKER`, down to single
    files at the end, so that the workers finish within about a file of each other (with equal
    groups, one worker could idle for most of a group's time at the end)."""
    groups, start = [], 0
    while start < count:
        size = max(1, min(GROUP_FILES, -(-(count - start) // (workers * GROUPS_PER_WORKER))))
        groups.append(list(range(start, start + size)))
        start += size
    return groups


def _group_label(files: Sequence[Path], group: list[int]) -> str:
    first = files[group[0]].name
    return first if len(group) == 1 else f"{first} and {len(group) - 1} more"


@contextmanager
def _warming_up(processor: Processor) -> Iterator[None]:
    """Set up the validator (importing Great Expectations, reading its project: 3-4 s) on a
    thread while the workers compute, instead of after them; joined before validation."""
    warm_up = threading.Thread(target=processor.validator.warm_up, name="validator warm-up")
    warm_up.start()
    try:
        yield
    finally:
        warm_up.join()


# -- after the files: summary, derived tables -------------------------------------------------


OUTCOME_WORDS = {
    INGESTED: "taken", QUARANTINED: "quarantined", DUPLICATE: "duplicate",
    BUSY: "skipped (another run holds it)", FAILED: "failed (left in the inbox)",
}  # fmt: skip
"""A file's outcome in the run's table artifact, in the command line's words."""


def _publish(outcomes: list[FileOutcome], home: LabHome, title: str) -> None:
    """The run summary artifact, the ledger export and the Data Docs index with its link. The
    index is cartflow's own page (`validation.docs`), cheap to rewrite, so a file the watcher
    takes alone is listed at once, as a sweep's files are."""
    _step(PUBLISHING, "run summary, ledger export, Data Docs")
    processor = processor_for(home)
    processor.export_ledger()
    rows = [
        {
            "file": o.name,
            "outcome": OUTCOME_WORDS.get(o.status, o.status),
            "kind": o.kind or "",
            "format": o.instrument_format or "",
            "rows written": sum(o.rows.values()),
            "patient/timepoint": ", ".join(f"{p}/{t}" for p, t in o.partitions[:6]),
            "reason": o.reason or "",
        }
        for o in outcomes
    ]
    if not rows:
        rows = [{"file": "(none)", "outcome": "inbox empty"}]
    create_table_artifact(key="ingest-summary", table=rows, description=title)
    docs = processor.validator.docs_index
    if any(o.status in (INGESTED, QUARANTINED) for o in outcomes):
        docs = processor.validator.build_docs()
    if docs.exists():
        create_link_artifact(
            key="data-docs", link=docs.as_uri(), link_text="Great Expectations Data Docs"
        )


@task(name="derive", cache_policy=NONE)
def derive_task(home: LabHome, patients: list[str] | None) -> list[str]:
    """Recompute the derived tables and reports of `patients` (None: everyone); report paths.

    Patients whose derived tables a stopped or failed run left waiting are recomputed too. A
    failure here leaves them waiting for the next run; it never undoes the files taken.
    """
    from pipelines.derived.recompute import recompute_patients

    processor = processor_for(home)
    waiting = processor.ledger.pending_derive()
    chosen = None if patients is None else sorted(set(patients) | set(waiting))
    fault_point(DERIVE)
    outcome = recompute_patients(home, chosen, processor.validator)
    processor.ledger.derived(chosen)
    processor.validator.build_docs()  # the derived tables' validation runs join the index
    logger = get_run_logger()
    logger.info("CRS forecast refitted in %.1f s", outcome.forecast_seconds)
    for failure in outcome.failures:
        logger.warning("derived table not written: %s", failure)
    for note in outcome.notes:
        _notice(f"report: {note}")
    if outcome.reports:
        create_link_artifact(
            key="reports", link=outcome.reports[0].parent.as_uri(), link_text="cartflow reports"
        )
    return [str(p) for p in outcome.reports]


def _derive(lab: LabHome, outcomes: list[FileOutcome], everyone: bool) -> None:
    """Recompute after the files: for the patients with new data, and for QC trends and the
    cohort pages alone when the only new rows are those of a run that failed QC."""
    patients = None if everyone else _patients_with_new_data(outcomes)
    failed_runs = any(o.status == QUARANTINED and o.rows for o in outcomes)
    if patients is None or patients or failed_runs or processor_for(lab).ledger.pending_derive():
        _step(DERIVING, "derived tables and reports")
        derive_task(lab, patients)


def _patients_with_new_data(outcomes: list[FileOutcome]) -> list[str]:
    return sorted({p for o in outcomes if o.status == INGESTED for p, _ in o.partitions})


def _ingest_run_name() -> str:
    return file_run_name(Path(flow_run.parameters["path"]).name)


def _sweep_run_name() -> str:
    """`sweep 90 files`, or `nightly sweep 90 files` for the nightly deployment's runs."""
    from pipelines.service import NIGHTLY

    parameters = flow_run.parameters
    paths = parameters.get("paths")
    count = len(paths) if paths else len(inbox_files(LabHome.locate(parameters.get("home"))))
    return sweep_run_name(count, nightly=deployment.name == NIGHTLY)


@flow(name="ingest_file", flow_run_name=_ingest_run_name, log_prints=True)
def ingest_file(path: str, home: str | None = None) -> State | list[FileOutcome]:
    """Process one file now, then recompute what depends on it. Quarantined, the run ends in a
    Failed state named "Quarantined" (`final_state`)."""
    lab = LabHome.locate(home)
    processor = processor_for(lab)
    outcomes = run_batch(
        processor, [Path(path)], PrefectTasks(lab), _flow_run_id(), _report, _log_recovery,
        _step,
    )  # fmt: skip
    title = f"cartflow ingest of {Path(path).name}"
    _after_the_files("run summary", lambda: _publish(outcomes, lab, title))
    _after_the_files("derived tables and reports", lambda: _derive(lab, outcomes, False))
    return final_state(outcomes)


@flow(name="process_inbox", flow_run_name=_sweep_run_name, log_prints=True)
def process_inbox(
    home: str | None = None, paths: list[str] | None = None, recompute_all: bool = False
) -> State | list[FileOutcome]:
    """The sweep: every file waiting in the inbox (or the given files) through the engine's
    batch, then the derived tables of the patients with new data (of every patient with
    `recompute_all`, as the nightly run does). Each file is recorded as a run of its own
    (`FileRuns`); with any file quarantined, the sweep ends in a Failed state named
    "Quarantined" (`final_state`)."""
    lab = LabHome.locate(home)
    processor = processor_for(lab)
    files = manifests_first([Path(p) for p in paths]) if paths else inbox_files(lab)
    file_runs = FileRuns(_flow_run_id(), ingest_file)

    def report(outcome: FileOutcome) -> None:
        file_runs.record(outcome)
        _report(outcome)

    try:
        outcomes = run_batch(
            processor, files, executor_for(lab, len(files)), _flow_run_id(), report,
            _log_recovery, _step,
        )  # fmt: skip
        title = f"cartflow sweep of {len(files)} file(s)"
        _after_the_files("run summary", lambda: _publish(outcomes, lab, title))
        _after_the_files(
            "derived tables and reports", lambda: _derive(lab, outcomes, recompute_all)
        )
    finally:
        file_runs.close()  # the files' runs were recorded meanwhile, on a thread
    return final_state(outcomes)

"""Prefect flows: `ingest_file` (one file) and `process_inbox` (the sweep).

Flows stay thin. `ingest_file` runs one task calling `Processor.process`. The sweep runs the
processor's phases: `prepare` tasks (claim, compute, conform; one per file here, or a few files
each on Dask workers for large batches), one `validate` task per table over all prepared files (a Great Expectations run costs
about half a second whatever its size, so per file it dominated a backfill), then the commits,
one after the other in this process, in the sweep's order. Each flow run publishes a table
artifact (file, status, reason, rows written) and a link to the Data Docs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import TaskRun
from prefect.context import get_run_context
from prefect.futures import as_completed
from prefect.states import State
from prefect_dask import DaskTaskRunner

from pipelines.assays import is_manifest
from pipelines.home import LabHome
from pipelines.ingest import (
    BUSY,
    INGESTED,
    QUARANTINED,
    Check,
    FileOutcome,
    Prepared,
    Processor,
    checks_of,
    table_names,
)
from pipelines.runners import local_cluster_settings, per_file_runner

_processors: dict[Path, Processor] = {}
_progress: list[Callable[[FileOutcome], None]] = []

IGNORED_PREFIXES = (".", "~$", "~")
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp", ".reason.txt")


def processor_for(home: LabHome) -> Processor:
    """One Processor per lab home and process, so the GX context is built once."""
    if home.root not in _processors:
        _processors[home.root] = Processor(home)
    return _processors[home.root]


def forget_processors() -> None:
    """Drop cached processors (settings or the lab home changed on disk)."""
    _processors.clear()


def is_candidate(path: Path) -> bool:
    """A complete-looking export: not hidden, not an editor's or a copy's temporary file."""
    name = path.name
    return (
        path.is_file()
        and not name.startswith(IGNORED_PREFIXES)
        and not name.lower().endswith(IGNORED_SUFFIXES)
    )


def manifests_first(files: list[Path]) -> list[Path]:
    """Manifests before everything else, so the samples they name resolve."""
    return sorted(files, key=lambda p: (not is_manifest(p), str(p)))


def inbox_files(home: LabHome) -> list[Path]:
    """Files waiting in the inbox."""
    return manifests_first([p for p in home.inbox.rglob("*") if is_candidate(p)])


def _flow_run_id() -> str | None:
    try:
        context = get_run_context()
    except RuntimeError:
        return None
    run = getattr(context, "flow_run", None) or getattr(context, "task_run", None)
    return str(getattr(run, "flow_run_id", None) or getattr(run, "id", "")) or None


def on_file_done(callback: Callable[[FileOutcome], None] | None) -> None:
    """Call `callback` after each file (the command line's progress bar); None removes it."""
    _progress.clear()
    if callback is not None:
        _progress.append(callback)


def _report(outcome: FileOutcome) -> None:
    """Log a finished file and tell the progress callbacks."""
    logger = get_run_logger()
    if outcome.status == QUARANTINED:
        logger.warning("%s quarantined: %s", outcome.name, outcome.reason)
    else:
        logger.info("%s %s %s", outcome.name, outcome.status, outcome.rows)
    for callback in _progress:
        callback(outcome)


# Never cached: a path's content can change between runs; the ledger knows what was done.
def ingest_one(path: Path, home: LabHome, flow_run_id: str | None) -> FileOutcome:
    """The body of the one-file task: the whole path in one call."""
    outcome = processor_for(home).process(path, flow_run_id)
    _report(outcome)
    return outcome


ingest_task = task(ingest_one, name="ingest", task_run_name="ingest {path.name}", cache_policy=NONE)


def prepare_one(path: Path, home: LabHome, flow_run_id: str | None) -> Prepared | FileOutcome:
    """The body of the sweep's per-file task: the file claimed and computed, or its outcome.

    A plain module-level function, wrapped below rather than decorated, so that Dask pickles
    it by reference: a decorated function's name points at the Task object, and pickling it by
    value drags in module globals such as the command line's progress callback. Progress is
    reported by the flow, which may run this on another machine.
    """
    return processor_for(home).prepare(path, flow_run_id)


prepare_task = task(
    prepare_one, name="prepare", task_run_name="prepare {path.name}", cache_policy=NONE
)


def prepare_group(
    paths: list[Path], label: str, home: LabHome, flow_run_id: str | None
) -> list[Prepared | FileOutcome | Exception]:
    """The body of a worker's task: several files prepared one after the other.

    A task run costs its worker and the Prefect server a few tenths of a second of CPU
    (state changes, logs, the result's trip back), about a third of a 1M-event file's own work,
    so workers take files a few at a time. A file that raised is returned as its exception,
    for the flow to retry that file alone; the group's other files keep their results. Should
    the worker be interrupted, the files it claimed give their claims back.
    """
    processor = processor_for(home)
    results: list[Prepared | FileOutcome | Exception] = []
    try:
        for path in paths:
            try:
                results.append(processor.prepare(path, flow_run_id))
            except Exception as err:  # noqa: BLE001 - handed to the flow with its file
                results.append(err)
    except BaseException:
        processor.release([r for r in results if isinstance(r, Prepared)])
        raise
    return results


prepare_group_task = task(
    prepare_group, name="prepare", task_run_name="prepare {label}", cache_policy=NONE
)


@task(name="validate", task_run_name="validate {table_name}", cache_policy=NONE)
def validate_task(table_name: str, prepared: list[Prepared], home: LabHome) -> dict[str, Check]:
    """One table of every prepared file, in as few suite runs as they allow."""
    return processor_for(home).validate_table(table_name, prepared)


def _publish(outcomes: list[FileOutcome], home: LabHome, title: str, build_docs: bool) -> None:
    """The run summary artifact, the ledger export and the Data Docs link.

    Rebuilding Data Docs takes longer as validation history grows (0.7 s at the first file,
    3 s at the 21st), so single-file runs from the watcher link the docs and sweeps rebuild them.
    """
    processor = processor_for(home)
    processor.export_ledger()
    rows = [
        {
            "file": o.name,
            "status": o.status,
            "kind": o.kind or "",
            "format": o.instrument_format or "",
            "rows written": sum(o.rows.values()),
            "patient/timepoint": ", ".join(f"{p}/{t}" for p, t in o.partitions[:6]),
            "reason": o.reason or "",
        }
        for o in outcomes
    ]
    if not rows:
        rows = [{"file": "(none)", "status": "inbox empty"}]
    create_table_artifact(key="ingest-summary", table=rows, description=title)
    docs = processor.validator.docs_index
    if build_docs and any(o.status in (INGESTED, QUARANTINED) for o in outcomes):
        docs = processor.validator.build_docs()
    if docs.exists():
        create_link_artifact(
            key="data-docs", link=docs.as_uri(), link_text="Great Expectations Data Docs"
        )


@task(name="derive", cache_policy=NONE)
def derive_task(home: LabHome, patients: list[str] | None) -> list[str]:
    """Recompute the derived tables and reports of `patients` (None: everyone); report paths."""
    from pipelines.derived.recompute import recompute_patients

    outcome = recompute_patients(home, patients, processor_for(home).validator)
    logger = get_run_logger()
    for failure in outcome.failures:
        logger.warning("derived table not written: %s", failure)
    if outcome.reports:
        create_link_artifact(
            key="reports", link=outcome.reports[0].parent.as_uri(), link_text="cartflow reports"
        )
    return [str(p) for p in outcome.reports]


def _patients_with_new_data(outcomes: list[FileOutcome]) -> list[str]:
    return sorted({p for o in outcomes if o.status == INGESTED for p, _ in o.partitions})


@flow(name="ingest_file", log_prints=True)
def ingest_file(path: str, home: str | None = None) -> list[FileOutcome]:
    """Process one file now, then recompute what depends on it."""
    lab = LabHome.locate(home)
    outcome = ingest_task(Path(path), lab, _flow_run_id())
    _publish([outcome], lab, f"cartflow ingest of {Path(path).name}", build_docs=False)
    patients = _patients_with_new_data([outcome])
    if patients:
        derive_task(lab, patients)
    return [outcome]


@flow(name="process_inbox", log_prints=True)
def process_inbox(
    home: str | None = None, paths: list[str] | None = None, recompute_all: bool = False
) -> list[FileOutcome]:
    """The sweep: every file waiting in the inbox (or the given files), manifests first, the
    others prepared one task each and validated one task per table (see the module's docstring);
    then the derived tables of the patients with new data (of every patient with
    `recompute_all`, as the nightly run does)."""
    lab = LabHome.locate(home)
    processor_for(lab)
    files = manifests_first([Path(p) for p in paths]) if paths else inbox_files(lab)
    run_id = _flow_run_id()
    manifests = [path for path in files if _manifest_now(path)]
    others = [path for path in files if path not in manifests]
    outcomes = _ingest_here(manifests, lab, run_id) + _ingest_batch(others, lab, run_id)
    _publish(outcomes, lab, f"cartflow sweep of {len(files)} file(s)", build_docs=True)
    patients = None if recompute_all else _patients_with_new_data(outcomes)
    if patients is None or patients:
        derive_task(lab, patients)
    return outcomes


def _manifest_now(path: Path) -> bool:
    """Whether `path` is a manifest; one that another run moved away meanwhile is skipped later."""
    try:
        return is_manifest(path)
    except FileNotFoundError:
        return False


def _worth_retrying(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry I/O and database hiccups; a file that vanished was taken by another run."""
    return not isinstance(state.result(raise_on_failure=False), FileNotFoundError)


# The sweep's tasks retry what failed for transient reasons (a share that dropped, a ledger lock
# held past its timeout); a run killed outright leaves a claim the next sweep takes over once stale.
_sweep_task = ingest_task.with_options(
    retries=2, retry_delay_seconds=10, retry_condition_fn=_worth_retrying
)
_sweep_prepare_task = prepare_task.with_options(
    retries=2, retry_delay_seconds=10, retry_condition_fn=_worth_retrying
)

Arrival = tuple[int, Prepared | FileOutcome | BaseException]
"""A prepare task's result, with the index of its file in the batch."""

GROUP_FILES = 8
"""At most this many files per worker task."""
GROUPS_PER_WORKER = 4
"""A group is at most the files left shared out into this many groups per worker."""


def _taken_meanwhile(result: object, path: Path) -> bool:
    """The task failed because another run moved the file away (the watcher and a sweep met)."""
    return isinstance(result, FileNotFoundError) and not path.exists()


def _skipped(path: Path) -> FileOutcome:
    return FileOutcome(path.name, "", BUSY, reason="taken by another run meanwhile")


def _ingest_here(files: list[Path], lab: LabHome, run_id: str | None) -> list[FileOutcome]:
    """One file after the other, the whole path each, in this process (the task reports it)."""
    outcomes = []
    for path in files:
        result = _sweep_task(path, lab, run_id, return_state=True).result(raise_on_failure=False)
        if _taken_meanwhile(result, path):
            result = _skipped(path)
            _report(result)
        elif isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes


def _ingest_batch(files: list[Path], lab: LabHome, run_id: str | None) -> list[FileOutcome]:
    """Prepare every file, validate each table of them all at once, commit them in order.

    Committing in the sweep's order keeps what one file after the other did: a corrected
    re-export supersedes the earlier one. A copy of a file prepared in this batch (same bytes,
    another name) found it claimed; it is taken once the batch is committed, as a duplicate or,
    if the first was quarantined, as a retry.
    """
    if not files:
        return []
    results = _prepare_all(files, lab, run_id)
    prepared = [r for r in results if isinstance(r, Prepared)]
    claimed_here = {p.sha256 for p in prepared}
    busy = [index for index, r in enumerate(results) if _is_busy(r)]
    again = {index for index in busy if results[index].sha256 in claimed_here}
    for index in busy:
        if index not in again:
            _report(results[index])
    committed = iter(_validate_and_commit(prepared, lab, run_id))
    retaken = iter(_ingest_here([files[i] for i in sorted(again)], lab, run_id))
    return [
        next(committed) if isinstance(r, Prepared) else next(retaken) if index in again else r
        for index, r in enumerate(results)
    ]


def _is_busy(result: Prepared | FileOutcome | BaseException) -> bool:
    return isinstance(result, FileOutcome) and result.status == BUSY


def _prepare_all(
    files: list[Path], lab: LabHome, run_id: str | None
) -> list[Prepared | FileOutcome]:
    """Each file's prepare task, here or on the batch's runner; results in file order.

    Finished files (duplicates, refusals) are reported as they arrive; BUSY ones are left to
    `_ingest_batch`. Should a task fail for good or the run be interrupted, the files prepared
    so far give their claims back before the error propagates.
    """
    runner = per_file_runner(len(files))
    arrivals = (
        _prepare_here(files, lab, run_id) if runner is None
        else _prepare_on(runner, files, lab, run_id)
    )  # fmt: skip
    results: dict[int, Prepared | FileOutcome] = {}
    failure: BaseException | None = None
    try:
        for index, result in arrivals:
            if _taken_meanwhile(result, files[index]):
                result = _skipped(files[index])
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            results[index] = result
            if isinstance(result, FileOutcome) and not _is_busy(result):
                _report(result)
        if failure is not None:
            raise failure
    except BaseException:
        processor_for(lab).release([r for r in results.values() if isinstance(r, Prepared)])
        raise
    return [results[index] for index in range(len(files))]


def _prepare_here(files: list[Path], lab: LabHome, run_id: str | None) -> Iterator[Arrival]:
    """One file after the other in this process (its imports are warm); stops at a failure."""
    for index, path in enumerate(files):
        state = _sweep_prepare_task(path, lab, run_id, return_state=True)
        result = state.result(raise_on_failure=False)
        yield index, result
        if isinstance(result, BaseException) and not _taken_meanwhile(result, path):
            return


def _prepare_on(
    runner: DaskTaskRunner, files: list[Path], lab: LabHome, run_id: str | None
) -> Iterator[Arrival]:
    """All files at once on Dask workers, a few per task, each group as it finishes.

    A file that raised on a worker is prepared again here, alone, with the sweep's retries.
    """
    with local_cluster_settings(), runner, _warming_up(processor_for(lab)):
        workers = len(runner.client.scheduler_info().get("workers", {}))
        groups = file_groups(len(files), max(1, workers))
        futures = {
            runner.submit(
                prepare_group_task,
                parameters={
                    "paths": [files[i] for i in group], "label": _group_label(files, group),
                    "home": lab, "flow_run_id": run_id,
                },
            ): group
            for group in groups
        }  # fmt: skip
        for future in as_completed(list(futures)):
            results = future.result(raise_on_failure=False)
            if isinstance(results, BaseException):
                for index in futures[future]:
                    yield index, results
                continue
            for index, result in zip(futures[future], results, strict=True):
                if isinstance(result, Exception) and not _taken_meanwhile(result, files[index]):
                    state = _sweep_prepare_task(files[index], lab, run_id, return_state=True)
                    result = state.result(raise_on_failure=False)
                yield index, result


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


def _group_label(files: list[Path], group: list[int]) -> str:
    first = files[group[0]].name
    return first if len(group) == 1 else f"{first} and {len(group) - 1} more"


def _validate_and_commit(
    prepared: list[Prepared], lab: LabHome, run_id: str | None
) -> list[FileOutcome]:
    """Validate every table once, then commit (or quarantine) each file here, in order.

    Commits run in this process, not as tasks: a file's commit takes tens of milliseconds, less
    than a task run's own bookkeeping. If the run stops half-way, the files not yet committed
    give their claims back.
    """
    processor = processor_for(lab)
    try:
        checks, seconds = _validate_all(prepared, lab)
    except BaseException:
        processor.release(prepared)
        raise
    outcomes = []
    for index, item in enumerate(prepared):
        try:
            outcome = processor.commit(item, checks[item.sha256], run_id, seconds[item.sha256])
        except BaseException:
            processor.release(prepared[index + 1 :])
            raise
        _report(outcome)
        outcomes.append(outcome)
    return outcomes


def _validate_all(
    prepared: list[Prepared], lab: LabHome
) -> tuple[dict[str, list[Check]], dict[str, float]]:
    """One validate task per table; per file, its checks and its share of the time they took."""
    by_table: dict[str, dict[str, Check]] = {}
    seconds = dict.fromkeys((p.sha256 for p in prepared), 0.0)
    for table_name in table_names(prepared):
        having = [p for p in prepared if table_name in p.tables]
        started = perf_counter()
        by_table[table_name] = validate_task(table_name, having, lab)
        share = (perf_counter() - started) / len(having)
        for item in having:
            seconds[item.sha256] += share
    return {p.sha256: checks_of(p, by_table) for p in prepared}, seconds

"""Prefect flows: `ingest_file` (one file) and `process_inbox` (the sweep), one task per file.

Flows stay thin: a task calls `Processor.process`. Each flow run publishes a table artifact
(file, status, reason, rows written) and a link to the Data Docs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
from pipelines.ingest import BUSY, INGESTED, QUARANTINED, FileOutcome, Processor
from pipelines.runners import per_file_runner

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


# Never cached: a path's content can change between runs; the ledger knows what was done.
def ingest_one(path: Path, home: LabHome, flow_run_id: str | None) -> FileOutcome:
    """The body of the per-file task.

    A plain module-level function, wrapped below rather than decorated, so that Dask pickles
    it by reference: a decorated function's name points at the Task object, and pickling it by
    value drags in module globals such as the command line's progress callback.
    """
    outcome = processor_for(home).process(path, flow_run_id)
    logger = get_run_logger()
    if outcome.status == QUARANTINED:
        logger.warning("%s quarantined: %s", path.name, outcome.reason)
    else:
        logger.info("%s %s %s", path.name, outcome.status, outcome.rows)
    for callback in _progress:
        callback(outcome)
    return outcome


ingest_task = task(ingest_one, name="ingest", task_run_name="ingest {path.name}", cache_policy=NONE)


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
    """The sweep: every file waiting in the inbox (or the given files), one task each; then the
    derived tables of the patients with new data (of every patient with `recompute_all`, as the
    nightly run does)."""
    lab = LabHome.locate(home)
    processor_for(lab)
    files = manifests_first([Path(p) for p in paths]) if paths else inbox_files(lab)
    run_id = _flow_run_id()
    manifests = [path for path in files if _manifest_now(path)]
    others = [path for path in files if path not in manifests]
    outcomes = _ingest_here(manifests, lab, run_id)
    runner = per_file_runner(len(others))
    if runner is None:
        outcomes += _ingest_here(others, lab, run_id)
    else:
        outcomes += _ingest_on(runner, others, lab, run_id)
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


def _settled(result: FileOutcome | BaseException, path: Path, reported: bool) -> FileOutcome:
    """A task's outcome, reported to the progress callbacks unless the task did that itself.

    The watcher's run and a sweep may meet the same file: whichever claims it second skips it
    (BUSY, or DUPLICATE once done), and one that finds it already moved away skips it too.
    """
    if isinstance(result, FileNotFoundError) and not path.exists():
        result = FileOutcome(path.name, "", BUSY, reason="taken by another run meanwhile")
        reported = False
    elif isinstance(result, BaseException):
        raise result
    if not reported:
        for callback in _progress:
            callback(result)
    return result


def _ingest_here(files: list[Path], lab: LabHome, run_id: str | None) -> list[FileOutcome]:
    """One file after the other in this process (its Processor and imports are warm)."""
    outcomes = []
    for path in files:
        state = _sweep_task(path, lab, run_id, return_state=True)
        outcomes.append(_settled(state.result(raise_on_failure=False), path, reported=True))
    return outcomes


def _ingest_on(
    runner: DaskTaskRunner, files: list[Path], lab: LabHome, run_id: str | None
) -> list[FileOutcome]:
    """All files at once on Dask workers; progress is reported here as each one finishes."""
    with runner:
        futures = {
            runner.submit(
                _sweep_task, parameters={"path": path, "home": lab, "flow_run_id": run_id}
            ): path
            for path in files
        }
        settled = {
            futures[future]: _settled(
                future.result(raise_on_failure=False), futures[future], reported=False
            )
            for future in as_completed(list(futures))
        }
    return [settled[path] for path in files]

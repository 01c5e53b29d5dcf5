"""Prefect flows: `ingest_file` (one file) and `process_inbox` (the sweep), one task per file.

Flows stay thin: a task calls `Processor.process`. Each flow run publishes a table artifact
(file, status, reason, rows written) and a link to the Data Docs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.context import get_run_context

from pipelines.assays import is_manifest
from pipelines.home import LabHome
from pipelines.ingest import QUARANTINED, FileOutcome, Processor

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
@task(name="ingest", task_run_name="ingest {path.name}", cache_policy=NONE)
def ingest_task(path: Path, home: LabHome, flow_run_id: str | None) -> FileOutcome:
    outcome = processor_for(home).process(path, flow_run_id)
    logger = get_run_logger()
    if outcome.status == QUARANTINED:
        logger.warning("%s quarantined: %s", path.name, outcome.reason)
    else:
        logger.info("%s %s %s", path.name, outcome.status, outcome.rows)
    for callback in _progress:
        callback(outcome)
    return outcome


def _publish(outcomes: list[FileOutcome], home: LabHome, title: str) -> None:
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
    if processor.validator._context is not None:
        docs = processor.validator.build_docs()
    if docs.exists():
        create_link_artifact(
            key="data-docs", link=docs.as_uri(), link_text="Great Expectations Data Docs"
        )


@flow(name="ingest_file", log_prints=True)
def ingest_file(path: str, home: str | None = None) -> list[FileOutcome]:
    """Process one file now."""
    lab = LabHome.locate(home)
    outcome = ingest_task(Path(path), lab, _flow_run_id())
    _publish([outcome], lab, f"cartflow ingest of {Path(path).name}")
    return [outcome]


@flow(name="process_inbox", log_prints=True)
def process_inbox(home: str | None = None, paths: list[str] | None = None) -> list[FileOutcome]:
    """The sweep: every file waiting in the inbox (or the given files), one task each."""
    lab = LabHome.locate(home)
    processor_for(lab)
    files = manifests_first([Path(p) for p in paths]) if paths else inbox_files(lab)
    run_id = _flow_run_id()
    outcomes = [ingest_task(path, lab, run_id) for path in files]
    _publish(outcomes, lab, f"cartflow sweep of {len(files)} file(s)")
    return outcomes

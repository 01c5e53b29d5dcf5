"""A batch: files taken together, each exactly once, whatever happens to the others.

`run_batch` is the only place claims are given back: one `try/finally` around the whole batch
releases whatever its `ClaimOwner` still holds (an interrupt, a worker lost, a full disk), and
settles a commit of its own that an interrupt stopped half-way. Before taking any file it
recovers what dead runs left (`pipelines.ingest.recovery`) and finishes the identity corrections
they left half-way (`Processor.resume_corrections`).

The files are prepared through an `Executor` the caller hands in: `InProcess` here, one after
the other; the flows hand in Prefect tasks or a Dask cluster (`pipelines.flows`). Manifests are
always taken first and here, so the samples they name resolve. Each table is validated once over
all prepared files, then the files are committed here, one after the other, in the batch's
order, so a corrected re-export supersedes the earlier one as it would one file at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from time import perf_counter
from typing import Protocol

from pipelines.ingest.claims import ClaimOwner, Heartbeat
from pipelines.ingest.inbox import looks_like_manifest
from pipelines.ingest.processor import (
    BUSY,
    FAILED,
    QUARANTINED,
    Check,
    FileOutcome,
    Prepared,
    Processor,
    checks_of,
    failure_advice,
    resource_problem,
    table_names,
)
from pipelines.ingest.recovery import Recovery, recover, settle

Arrival = tuple[int, Prepared | FileOutcome | BaseException]
"""A prepared file (or its outcome, or what it raised), with its index in the batch."""


class Executor(Protocol):
    """Runs a batch's per-file and per-table work somewhere: here, on Prefect tasks, on Dask."""

    def prepare(
        self, files: Sequence[Path], owner: ClaimOwner, flow_run_id: str | None
    ) -> Iterator[Arrival]:
        """`Processor.prepare` of each file, in any order; an exception is handed back as the
        file's result, not raised."""
        ...

    def validate(self, table_name: str, prepared: list[Prepared]) -> dict[str, Check]:
        """`Processor.validate_table` of one table over the files that hold it."""
        ...


class InProcess:
    """Every file here, one after the other (the imports and the validator are warm)."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    def prepare(
        self, files: Sequence[Path], owner: ClaimOwner, flow_run_id: str | None
    ) -> Iterator[Arrival]:
        for index, path in enumerate(files):
            try:
                yield index, self.processor.prepare(path, flow_run_id, owner)
            except Exception as err:  # noqa: BLE001 - the batch makes it the file's outcome
                yield index, err

    def validate(self, table_name: str, prepared: list[Prepared]) -> dict[str, Check]:
        return self.processor.validate_table(table_name, prepared)


Report = Callable[[FileOutcome], None]
Step = Callable[[str, str], None]
"""Told `(COMPUTED, file name)` as each file's computation is in, `(VALIDATING, table name)` as
each table's validation starts: what a progress display needs before files are committed."""
COMPUTED, VALIDATING = "computed", "validating"


def run_batch(
    processor: Processor,
    files: Sequence[Path],
    executor: Executor,
    flow_run_id: str | None = None,
    on_outcome: Report | None = None,
    on_recovery: Callable[[Recovery], None] | None = None,
    on_step: Step | None = None,
) -> list[FileOutcome]:
    """Take `files` (manifests first, then the rest through `executor`); one outcome per file,
    in the files' order, each reported to `on_outcome` as it is known, and the steps of the
    work to `on_step`."""
    report = on_outcome or (lambda outcome: None)
    step = on_step or (lambda step, what: None)
    ledger = processor.ledger
    recovery = recover(processor.home, ledger, processor.claim_expiry_seconds)
    if recovery and on_recovery is not None:
        on_recovery(recovery)
    owner = ClaimOwner.this_process()
    try:
        with Heartbeat(lambda: ledger.heartbeat(owner.token)):
            processor.resume_corrections(owner, flow_run_id)
            return _take(processor, list(files), executor, owner, flow_run_id, report, step)
    finally:
        _release(processor, owner)


def _take(
    processor: Processor,
    files: list[Path],
    executor: Executor,
    owner: ClaimOwner,
    flow_run_id: str | None,
    report: Report,
    step: Step,
) -> list[FileOutcome]:
    here = InProcess(processor)
    manifests = [i for i, path in enumerate(files) if looks_like_manifest(path)]
    others = [i for i in range(len(files)) if i not in set(manifests)]
    results: dict[int, Prepared | FileOutcome] = {}
    for positions, runner in ((manifests, here), (others, executor)):
        chosen = [files[i] for i in positions]
        for index, result in runner.prepare(chosen, owner, flow_run_id):
            position = positions[index]
            if isinstance(result, BaseException):
                result = _again_here(processor, files[position], owner, flow_run_id, result)
            results[position] = result
            step(COMPUTED, files[position].name)
    prepared = [r for r in results.values() if isinstance(r, Prepared)]
    claimed_here = {p.sha256 for p in prepared}
    again = {
        i for i, r in results.items()
        if isinstance(r, FileOutcome) and r.status == BUSY and r.sha256 in claimed_here
    }  # fmt: skip
    for index in sorted(results):
        result = results[index]
        if isinstance(result, FileOutcome) and index not in again:
            report(result)
    committed = _validate_and_commit(processor, prepared, executor, flow_run_id, report, step)
    outcomes = {
        i: committed[r.sha256] if isinstance(r, Prepared) else r for i, r in results.items()
    }
    if again:  # the same bytes under a second name: a duplicate now, or a retry if refused
        retaken = _take(processor, [files[i] for i in sorted(again)], here, owner, flow_run_id,
                        report, step)  # fmt: skip
        outcomes.update(zip(sorted(again), retaken, strict=True))
    return [outcomes[i] for i in range(len(files))]


def _again_here(
    processor: Processor,
    path: Path,
    owner: ClaimOwner,
    flow_run_id: str | None,
    error: BaseException,
) -> Prepared | FileOutcome:
    """A file whose prepare raised elsewhere (a worker lost, a share that dropped) is tried
    once more here; if it raises again, it fails with the reason, and stays in the inbox."""
    if not isinstance(error, Exception):
        raise error
    try:
        return processor.prepare(path, flow_run_id, owner)
    except Exception as err:  # noqa: BLE001 - one file must not stop the batch
        return _failed(path.name, "", err)


def _validate_and_commit(
    processor: Processor,
    prepared: list[Prepared],
    executor: Executor,
    flow_run_id: str | None,
    report: Report,
    step: Step,
) -> dict[str, FileOutcome]:
    """Validate every table once, then commit (or quarantine) each file here, in order."""
    if not prepared:
        return {}
    try:
        checks, seconds = _validate_all(prepared, executor, step)
    except Exception as err:  # noqa: BLE001 - the files wait for the next run
        outcomes = {p.sha256: _failed(p.name, p.sha256, err) for p in prepared}
        for outcome in outcomes.values():
            report(outcome)
        return outcomes
    outcomes = {}
    for item in prepared:
        try:
            outcome = processor.commit(item, checks[item.sha256], flow_run_id, seconds[item.sha256])
        except Exception as err:  # noqa: BLE001 - a defect or resource error of this file's
            outcome = _failed(item.name, item.sha256, err)
        report(outcome)
        outcomes[item.sha256] = outcome
    return outcomes


def _validate_all(
    prepared: list[Prepared], executor: Executor, step: Step
) -> tuple[dict[str, list[Check]], dict[str, float]]:
    """Each table once; per file, its checks and its share of the time they took."""
    by_table: dict[str, dict[str, Check]] = {}
    seconds = dict.fromkeys((p.sha256 for p in prepared), 0.0)
    for table_name in table_names(prepared):
        having = [p for p in prepared if table_name in p.tables]
        step(VALIDATING, table_name)
        started = perf_counter()
        by_table[table_name] = executor.validate(table_name, having)
        share = (perf_counter() - started) / len(having)
        for item in having:
            seconds[item.sha256] += share
    return {p.sha256: checks_of(p, by_table) for p in prepared}, seconds


def _failed(name: str, sha256: str, err: BaseException) -> FileOutcome:
    problem = resource_problem(err) or f"{type(err).__name__}: {err}"
    return FileOutcome(name, sha256, FAILED, reason=failure_advice(problem))


def _release(processor: Processor, owner: ClaimOwner) -> None:
    """The batch's one exit: a commit of its own stopped half-way (an interrupt) is completed
    or rolled back, and every claim it still holds is given back. Should the ledger itself be
    unreachable now, the claims die with this process and the next run takes them over."""
    ledger = processor.ledger
    try:
        for entry in ledger.journal():
            if entry.token == owner.token:
                settle(processor.home, ledger, entry)
        ledger.release_claims(owner.token)
    except Exception:  # noqa: BLE001 - see the docstring
        return


def counts(outcomes: Sequence[FileOutcome]) -> dict[str, int]:
    """How many files ended in each status, for run summaries."""
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome.status] = tally.get(outcome.status, 0) + 1
    return tally


def quarantined_or_failed(outcomes: Sequence[FileOutcome]) -> bool:
    return any(o.status in (QUARANTINED, FAILED) for o in outcomes)

"""What Prefect's runs list shows of cartflow's work: run names, final states, one run per file.

- A run is named after what it processes: `ingest plate1.txt`, `sweep 90 files`, `nightly sweep
  90 files` (`file_run_name`, `sweep_run_name`).
- A run whose files were quarantined (or failed) ends in a `Failed` state named "Quarantined" (or
  "Failed"), which the UI colours as a failure, with a message naming the files and reasons; the
  outcomes stay the state's result for Python callers (`final_state`, `outcomes_of`).
- Every file of a sweep appears in the runs list as a flow run of its own, named `ingest <file>`,
  in the state its outcome deserves, its `sweep` parameter the sweep's run id (`FileRuns`). They
  are recorded through the API on a thread of their own as the files finish, so the batch does
  not wait for the server.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from uuid import UUID

from prefect import Flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import FlowRunCreate
from prefect.states import Cancelled, Completed, Failed, State, to_state_create

from pipelines.ingest import BUSY, DUPLICATE, FAILED, QUARANTINED, FileOutcome

FILE_RUN_PREFIX = "ingest"
"""A file's run name: `ingest plate1.txt`, whether the watcher ran it or a sweep took it."""
MESSAGE_FILES = 10
"""At most this many files named in a run's final message; the artifact lists them all."""

_STATE_OF_STATUS: dict[str, tuple[Callable[..., State], str]] = {
    QUARANTINED: (Failed, "Quarantined"),
    FAILED: (Failed, "Failed"),
    DUPLICATE: (Completed, "Duplicate"),
    BUSY: (Cancelled, "Skipped"),
}


def file_run_name(file_name: str) -> str:
    return f"{FILE_RUN_PREFIX} {file_name}"


def sweep_run_name(file_count: int, nightly: bool) -> str:
    files = "1 file" if file_count == 1 else f"{file_count} files"
    return f"{'nightly sweep' if nightly else 'sweep'} {files}"


def file_state(outcome: FileOutcome) -> State:
    """The state a file's run ends in: Completed (taken), Completed "Duplicate", Failed
    "Quarantined" or "Failed" (with the reason), Cancelled "Skipped" (another run holds it)."""
    make, name = _STATE_OF_STATUS.get(outcome.status, (Completed, "Completed"))
    return make(name=name, message=outcome.reason or outcome.status)


def final_state(outcomes: list[FileOutcome]) -> State | list[FileOutcome]:
    """What a flow returns: its outcomes (Completed), or a Failed state named "Quarantined"
    (any file quarantined) or "Failed" (any failed for a reason outside the file), whose message
    names the files and reasons and whose result is still the outcomes."""
    troubled = [o for o in outcomes if o.status in (QUARANTINED, FAILED)]
    if not troubled:
        return outcomes
    name = "Quarantined" if any(o.status == QUARANTINED for o in troubled) else "Failed"
    lines = [_troubled_line(o) for o in troubled[:MESSAGE_FILES]]
    if len(troubled) > MESSAGE_FILES:
        lines.append(f"and {len(troubled) - MESSAGE_FILES} more (see the ingest-summary artifact)")
    message = f"{len(troubled)} of {len(outcomes)} file(s) not taken:\n" + "\n".join(lines)
    return Failed(name=name, message=message, data=outcomes)


def _troubled_line(outcome: FileOutcome) -> str:
    """`quarantined plate3.txt: validation failed: …` (a quarantine reason starts with the
    file's name already; a failure's does not)."""
    reason = outcome.reason or ""
    named = reason if reason.startswith(outcome.name) else f"{outcome.name}: {reason}"
    return f"{outcome.status} {named}"


def outcomes_of(state: State) -> list[FileOutcome]:
    """The file outcomes of a flow run's final state, whether it completed or was quarantined.
    A run that crashed or failed for another reason raises its exception."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


class FileRuns:
    """Records each file of a sweep as a flow run of its own, as the file's outcome is known.

    One API call per file, on one thread with one open client, while the sweep goes on with its
    files; the sweep waits for the last of them only at its end. They are not Prefect subflows
    of the sweep: a subflow hangs from a task run of its parent, one more API call per file,
    and the server's time for both was about a tenth of a 1M-event file's whole processing in
    the nightly backfill. The file's run names its sweep in its `sweep` parameter instead.
    Recording never fails the sweep: what the server refused is logged; the outcomes stand.
    """

    def __init__(self, sweep_flow_run_id: str | None, file_flow: Flow) -> None:
        self._sweep = sweep_flow_run_id
        self._flow = file_flow
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file runs")
        self._pending: list[Future] = []
        self._client: SyncPrefectClient | None = None
        self._flow_id: UUID | None = None

    def record(self, outcome: FileOutcome) -> None:
        if self._sweep is None:
            return
        context = contextvars.copy_context()  # Prefect's settings: the API of this run
        self._pending.append(self._pool.submit(context.run, self._create, outcome))

    def _create(self, outcome: FileOutcome) -> None:
        if self._client is None:
            self._client = get_client(sync_client=True).__enter__()
            self._flow_id = self._client.create_flow(self._flow)
        run = FlowRunCreate(
            flow_id=self._flow_id, name=file_run_name(outcome.name),
            parameters={"file": outcome.name, "sha256": outcome.sha256, "sweep": self._sweep},
            tags=["file"], state=to_state_create(file_state(outcome)),
        )  # fmt: skip
        self._client.request("POST", "/flow_runs/", json=run.model_dump(mode="json"))

    def close(self) -> None:
        """Wait for the runs still being recorded; log those the server refused."""
        self._pool.submit(self._close_client)
        self._pool.shutdown(wait=True)
        failures = [f.exception() for f in self._pending if f.exception() is not None]
        if failures:
            get_run_logger().warning(
                "%d file run(s) not recorded on the Prefect server: %s", len(failures), failures[0]
            )

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

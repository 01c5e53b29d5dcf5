"""The inbox watcher: take each file once it is complete, once.

A file is *complete* when the writer has closed it (inotify's close-after-write), or it arrived
by a rename (within the inbox: a move event; from elsewhere: a create event with no write after
it), and its size and modification time then stay unchanged for `steady_seconds`. A file that is
being written (created or modified since its last close) waits for its close event, so a slow
copy from an instrument PC is taken whole, after its last chunk, however long it pauses.
Network shares deliver no inotify events, so `polling=True` uses watchdog's PollingObserver,
where "steady" alone decides. Events are missed while the watcher is down, so it sweeps the inbox when it starts and
every `rescan_seconds` after that.

Each complete file is submitted once per content version (key `path:mtime_ns:size`), either

- `inline` (the default): the watcher runs the `ingest_file` flow itself, in its own process,
  where the pipeline's imports and the Great Expectations context are already warm. Drop to rows
  takes a couple of seconds; the run is still recorded by the Prefect server when one is
  configured.
- `deployment`: `run_deployment("ingest_file/ingest-file", timeout=0, idempotency_key=key)`, so
  a process worker (or any worker of the pool, on any machine) runs it. Each flow run starts a
  new Python process that imports the pipeline, which is what dominates its latency.

Either way the ledger's atomic claim makes the watcher's run and a nightly sweep that meet the
same file process it once.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from pipelines.home import LabHome
from pipelines.ingest import BUSY, FileOutcome
from pipelines.ingest.inbox import is_candidate, manifests_first

INLINE, DEPLOYMENT = "inline", "deployment"
SUBMIT_MODES = (INLINE, DEPLOYMENT)
INGEST_DEPLOYMENT = "ingest_file/ingest-file"
TICK_SECONDS = 0.2


@dataclass(frozen=True)
class WatchSettings:
    steady_seconds: float = 1.0
    polling: bool = False
    poll_interval_seconds: float = 1.0
    rescan_seconds: float = 60.0
    submit: str = INLINE
    deployment: str = INGEST_DEPLOYMENT

    def __post_init__(self) -> None:
        if self.submit not in SUBMIT_MODES:
            raise ValueError(
                f"submit must be one of {', '.join(SUBMIT_MODES)}, not {self.submit!r}"
            )
        if self.steady_seconds < 0 or self.poll_interval_seconds <= 0 or self.rescan_seconds <= 0:
            raise ValueError("steady, poll and rescan times must be positive")


def submission_key(path: Path, stat: os.stat_result) -> str:
    """One key per content version of a path: duplicate events give the same key."""
    return f"{path}:{stat.st_mtime_ns}:{stat.st_size}"


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class Arrivals:
    """Paths noted in the inbox; each becomes ready once its size and mtime hold still."""

    def __init__(self, steady_seconds: float) -> None:
        self._steady = steady_seconds
        self._seen: dict[Path, _Seen] = {}

    def note(self, path: Path) -> None:
        self._seen.setdefault(path, _Seen(-1, -1, 0.0))

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def ready(self, now: float) -> list[tuple[Path, os.stat_result]]:
        """Paths unchanged for `steady_seconds`, with their final stat; vanished paths are dropped."""
        done = []
        for path, seen in list(self._seen.items()):
            try:
                stat = path.stat()
            except FileNotFoundError:
                del self._seen[path]
                continue
            if (stat.st_size, stat.st_mtime_ns) != (seen.size, seen.mtime_ns):
                self._seen[path] = _Seen(stat.st_size, stat.st_mtime_ns, now)
            elif now - seen.since >= self._steady:
                del self._seen[path]
                done.append((path, stat))
        return done


CLOSED, CREATED, MODIFIED = "closed", "created", "modified"


class _InboxEvents(FileSystemEventHandler):
    """Hands (event kind, path) to the watcher's loop; runs in the observer's thread."""

    def __init__(self, events: queue.SimpleQueue[tuple[str, Path]]) -> None:
        self._events = events

    def _put(self, kind: str, path: bytes | str) -> None:
        self._events.put((kind, Path(os.fsdecode(path))))

    def on_closed(self, event: FileSystemEvent) -> None:
        self._put(CLOSED, event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        self._put(CLOSED, event.dest_path)  # renamed within the inbox: complete, like a close

    def on_created(self, event: FileSystemEvent) -> None:
        self._put(CREATED, event.src_path)

    def on_modified(self, event: FileSystemEvent) -> None:
        self._put(MODIFIED, event.src_path)


Submit = Callable[[Path, str], FileOutcome | None]


def inline_submitter(home: LabHome, on_outcome: Callable[[FileOutcome], None]) -> Submit:
    """Run the `ingest_file` flow here; returns the outcome."""
    from pipelines import flows
    from pipelines.runtime.run_records import outcomes_of

    flows.processor_for(home)  # build the GX context now, not when the first file arrives

    def submit(path: Path, key: str) -> FileOutcome:
        state = flows.ingest_file(path=str(path), home=str(home.root), return_state=True)
        [outcome] = outcomes_of(state)
        on_outcome(outcome)
        return outcome

    return submit


def deployment_submitter(
    home: LabHome, deployment: str, on_submitted: Callable[[Path, str], None]
) -> Submit:
    """Ask the server for a run of the ingest deployment; the key makes repeats return that run."""
    from prefect.deployments import run_deployment

    def submit(path: Path, key: str) -> None:
        run = run_deployment(
            deployment,
            parameters={"path": str(path), "home": str(home.root)},
            timeout=0,
            idempotency_key=key,
        )
        on_submitted(path, run.name)

    return submit


class Watcher:
    def __init__(
        self,
        home: LabHome,
        settings: WatchSettings,
        submit: Submit,
        on_error: Callable[[Path, BaseException], None],
    ) -> None:
        self.home = home.ensure()
        self.inbox = self.home.inbox.resolve()
        self.settings = settings
        self._submit = submit
        self._on_error = on_error
        self._events: queue.SimpleQueue[tuple[str, Path]] = queue.SimpleQueue()
        self._arrivals = Arrivals(settings.steady_seconds)
        self._submitted: set[str] = set()
        self._writing: set[Path] = set()  # written to since created or last closed
        self._unwritten: set[Path] = set()  # created with no write seen: moved in, or not yet

    def _observer(self) -> BaseObserver:
        if self.settings.polling:
            return PollingObserver(timeout=self.settings.poll_interval_seconds)
        return Observer()

    def _in_inbox(self, path: Path) -> bool:
        return path.is_relative_to(self.inbox) and is_candidate(path)

    def sweep(self) -> None:
        """Note every waiting file: those that arrived while no event could be seen."""
        for path in self.inbox.rglob("*"):
            if self._in_inbox(path) and path not in self._writing:
                self._arrivals.note(path)

    def _drain_events(self) -> None:
        while True:
            try:
                kind, path = self._events.get_nowait()
            except queue.Empty:
                return
            path = path.absolute()
            if self._in_inbox(path):
                self._on_event(kind, path)

    def _on_event(self, kind: str, path: Path) -> None:
        """Inotify: a write defers the file to its close. Polling: any change restarts the wait."""
        if self.settings.polling or kind == CLOSED:
            self._writing.discard(path)
            self._unwritten.discard(path)
            self._arrivals.note(path)
        elif kind == MODIFIED:
            self._writing.add(path)
            self._unwritten.discard(path)
            self._arrivals.forget(path)
        elif path not in self._writing:  # created: moved in from outside, or about to be written
            self._unwritten.add(path)
            self._arrivals.note(path)

    def _submit_ready(self, stop: threading.Event | None = None) -> None:
        ready = dict(self._arrivals.ready(time.monotonic()))
        for path in [p for p in ready if p in self._unwritten and ready[p].st_size == 0]:
            del ready[path]  # created, still empty: its writer has not started; wait for the close
        self._unwritten.difference_update(ready)
        for path in manifests_first(list(ready)):
            if stop is not None and stop.is_set():
                return  # the rest wait in the inbox for the next sweep
            key = submission_key(path, ready[path])
            if key in self._submitted:
                continue
            self._submitted.add(key)
            try:
                outcome = self._submit(path, key)
            except Exception as err:  # one file's failure must not stop the lab's watcher
                self._submitted.discard(key)  # the next rescan tries again
                self._on_error(path, err)
                continue
            if outcome is not None and outcome.status == BUSY:
                self._submitted.discard(key)  # another run holds it: look again at the next rescan

    def run(self, stop: threading.Event) -> None:
        """Watch until `stop` is set; the file being processed at that moment is finished first
        (unless a KeyboardInterrupt or Prefect's TerminationSignal abandons it: they propagate)."""
        observer = self._observer()
        observer.schedule(_InboxEvents(self._events), str(self.inbox),
                          recursive=True)  # fmt: skip
        observer.start()
        try:
            self.sweep()
            next_rescan = time.monotonic() + self.settings.rescan_seconds
            while not stop.wait(TICK_SECONDS):
                self._drain_events()
                if time.monotonic() >= next_rescan:
                    self.sweep()
                    next_rescan = time.monotonic() + self.settings.rescan_seconds
                self._submit_ready(stop)
        finally:
            observer.stop()
            observer.join(timeout=10)

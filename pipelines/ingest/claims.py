"""Who holds a file: a claim names the process that runs its batch, so a dead one is seen at once.

A claim records the batch's token, the host, the process id and that process's start time
(the ledger judges them: `pipelines.ledger.process_alive`). On the same host, a claim whose process is gone (or whose process id now belongs to a process started
later) is dead the moment it is looked at: the next run takes the file over and rolls back or
completes what the dead run left. A claim from another host (a Dask worker elsewhere, a second
lab server on a shared home) cannot be checked that way; its batch renews the claim's heartbeat
while it runs (`Heartbeat`), and a claim whose heartbeat is older than the claim expiry (the
`[ingest] claim_expiry_minutes` setting) is taken to be dead.
"""

from __future__ import annotations

import socket
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from pipelines.ledger import process_alive

HEARTBEAT_SECONDS = 30.0
"""How often a running batch renews its claims' heartbeat (well under any sensible expiry)."""


@dataclass(frozen=True)
class ClaimOwner:
    """The batch holding a claim: a token of its own and the process that runs it."""

    token: str
    host: str
    pid: int
    started: float
    """The process's start time (seconds since the epoch), which tells a reused pid apart."""

    @classmethod
    def this_process(cls) -> ClaimOwner:
        """A new owner for a batch run by this process."""
        return cls(
            token=uuid.uuid4().hex,
            host=socket.gethostname(),
            pid=psutil.Process().pid,
            started=psutil.Process().create_time(),
        )


def process_token() -> str:
    """This process, as a name part: host, pid and start time (`h1a2b3c4-1234-1733400000123`).

    Temporary files (raw store, warehouse) carry it, so that recovery removes exactly those of
    processes that are gone (`orphaned`), never those a live run is writing.
    """
    process = psutil.Process()
    return f"h{_host_tag()}-{process.pid}-{int(process.create_time() * 1000)}"


def orphaned(token: str, age_seconds: float, expiry_seconds: float) -> bool:
    """Whether a temporary file named with `token` (`process_token`) belongs to a dead process.

    A token of this host is judged by its process; another host's (a remote worker's raw-store
    copy) by the file's age against the claim expiry; a name in no known form by its age too.
    """
    parts = token.split("-")
    if len(parts) == 3 and parts[0] == f"h{_host_tag()}":
        try:
            pid, started_ms = int(parts[1]), int(parts[2])
        except ValueError:
            return age_seconds > expiry_seconds
        return not process_alive(pid, started_ms / 1000)
    return age_seconds > expiry_seconds


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


class Heartbeat:
    """Renews a batch's claims every `HEARTBEAT_SECONDS` on a thread, until stopped."""

    def __init__(self, renew: Callable[[], None], every: float = HEARTBEAT_SECONDS) -> None:
        self._renew = renew
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._renew()
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                continue

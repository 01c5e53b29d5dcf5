"""The temporary Prefect server the command line runs its flows against, ended with the command.

With no `PREFECT_API_URL`, Prefect starts a temporary server at a process's first flow call
(`SubprocessASGIServer`: a `python -m uvicorn` child) and stops it from an `atexit` hook. A
command killed outright (SIGKILL, the kernel's out-of-memory killer) runs no hook, and its server
was orphaned: it kept running, holding its port, its memory and the lab home's Prefect database.

`embedded_server()` starts that same server itself (Prefect's command, environment and start-up,
7-9 s on an idle two-core machine, as before), with three differences:

- The child asks Linux to send it SIGTERM when its parent goes away (`prctl(PR_SET_PDEATHSIG)`,
  called between fork and exec), so it ends with the command however the command ends. Linux
  sends that signal when the *thread* that started the child exits, not the process: start the
  server from the main thread, whose end is the process's. Started from another thread the
  server does without the signal (it would die with that thread), as it does where `prctl` does
  not exist (anything but Linux): it then ends through this context manager or Prefect's
  `atexit` hook only, as before.
- It runs in a process group of its own, so a terminal's Ctrl-C (sent to the whole foreground
  group) reaches the command only: the server is still there while the interrupted run records
  its outcome, and is stopped last.
- Its output goes to `<PREFECT_HOME>/embedded-server.log`, not to the technician's terminal
  (Prefect's "Starting temporary server" line is not logged either): a temporary server can
  print "Error flushing events" tracebacks while it shuts down.

For the duration, `PREFECT_API_URL` points at it, both in Prefect's settings (this process) and
in `os.environ` (child processes, such as local Dask workers, which then need no server of their
own), and Prefect's own code that would start a temporary server finds this one instead. On the
way out, the run logs and events still queued in this process are sent before the server stops.

Prefect's server modules are imported (~3 s) only when a server is started.

When the lab service (`cartflow serve`) runs for the lab home, the command line records its runs
on the service's server instead (`prefect_server`), so that a sweep run from the terminal (the
demo's, say) appears in the UI the lab watches. The service notes its API address in the lab
home's Prefect folder while it runs (`note_service_api`); an address whose server no longer
answers (a service killed outright) is ignored.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.home import LabHome

API_URL_ENV = "PREFECT_API_URL"
LOG_NAME = "embedded-server.log"
DRAIN_TIMEOUT_SECONDS = 10.0
"""At most this long to send the logs and events still queued when the command ends."""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
SERVICE_API_FILE = "service-api-url"
"""In the lab home's Prefect folder while `cartflow serve` runs: its server's API address."""


def _prctl() -> Callable[..., int] | None:
    """The C library's `prctl`, where there is one (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that has the child sent `signum` when the thread creating it now ends,
    or None where that cannot be had: no `prctl`, or not called from the main thread (the signal
    would come when this other thread ends, long before the process does)."""
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child, between fork and exec
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call above: no signal will come
            os._exit(1)

    return preexec


@contextlib.contextmanager
def _popen_options(module: Any, **options: Any) -> Iterator[list[int]]:
    """Within the block, `module`'s `subprocess.Popen` calls get `options` added; yields the
    pids of the processes so started. Prefect's command line and environment for its server
    change between releases; only how the child is started is ours."""
    real = module.subprocess
    started: list[int] = []

    class _Subprocess:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:  # noqa: N802
            process = real.Popen(*args, **{**kwargs, **options})
            started.append(process.pid)
            return process

    module.subprocess = _Subprocess()
    try:
        yield started
    finally:
        module.subprocess = real


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """No "Starting/Stopping temporary server" lines from `logger`, whatever its level."""
    quiet = _BelowWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


@functools.cache
def _server_class() -> type:
    from prefect.server.api import server as prefect_server

    class EmbeddedServer(prefect_server.SubprocessASGIServer):
        """Prefect's temporary server, started as described in the module's docstring."""

        _instances: dict = {}  # its own: Prefect's `SubprocessASGIServer()` is aliased to it

        log_path: Path
        dies_with_parent: bool = False

        def start(self, timeout: int | None = None) -> None:
            with _quiet(prefect_server.subprocess_server_logger):
                try:
                    super().start(timeout)
                except RuntimeError as err:
                    raise RuntimeError(f"{err} Its output is in {self.log_path}.") from err

        def stop(self) -> None:
            with _quiet(prefect_server.subprocess_server_logger):
                super().stop()

        def _run_uvicorn_command(self) -> subprocess.Popen:
            preexec = die_with_parent()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                log.write(
                    f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} temporary server on port "
                    f"{self.port} for pid {os.getpid()} ({' '.join(sys.argv[1:2])})\n".encode()
                )
                log.flush()
                options = dict(
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    process_group=0, preexec_fn=preexec,
                )  # fmt: skip
                with _popen_options(prefect_server, **options) as started:
                    process = super()._run_uvicorn_command()
            self.dies_with_parent = preexec is not None and process.pid in started
            return process

    return EmbeddedServer


def note_service_api(home: LabHome, api_url: str | None) -> None:
    """Note (or, with None, forget) the API address of the lab service running for `home`."""
    noted = home.prefect_home / SERVICE_API_FILE
    if api_url is None:
        noted.unlink(missing_ok=True)
        return
    noted.parent.mkdir(parents=True, exist_ok=True)
    noted.write_text(api_url, encoding="utf-8")


def running_service_api(home: LabHome) -> str | None:
    """The API address of the lab service running for `home`: the address it noted, if the
    server there answers and keeps its history in this home (not another lab's service that
    took the port of one killed outright)."""
    try:
        api_url = (home.prefect_home / SERVICE_API_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return api_url if api_url and _serves(api_url, home) else None


def _serves(api_url: str, home: LabHome) -> bool:
    """Whether the Prefect server at `api_url` answers with `home`'s Prefect folder as its own."""
    try:
        with urllib.request.urlopen(f"{api_url}/admin/settings", timeout=2) as response:
            served = json.load(response).get("home")
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return False
    return served is not None and Path(served).resolve() == home.prefect_home.resolve()


@contextlib.contextmanager
def prefect_server(home: LabHome) -> Iterator[str]:
    """Prefect's API for the block: the configured `PREFECT_API_URL`, else the lab service's
    server when one runs for `home`, else a temporary server (`embedded_server`)."""
    from prefect.settings import PREFECT_API_URL

    service = None if PREFECT_API_URL.value() else running_service_api(home)
    if service is None:
        with embedded_server() as api_url:
            yield api_url
        return
    with _api_at(service):
        yield service


@contextlib.contextmanager
def embedded_server(log_path: Path | None = None) -> Iterator[str]:
    """Prefect's API for the block: the configured `PREFECT_API_URL` if there is one, else a
    temporary server started now (from the main thread: see the module's docstring) and
    stopped when the block ends. Yields the API URL.

    `log_path`: where the server's output goes (default: `<PREFECT_HOME>/embedded-server.log`).
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = _server_class()()
    server.log_path = log_path or Path(PREFECT_HOME.value()) / LOG_NAME
    try:
        server.start()
        # Prefect's own code calls `SubprocessASGIServer()` to start a temporary server where it
        # sees no API URL (a thread whose settings were copied before this block): it gets this.
        aliased = SubprocessASGIServer._instances.setdefault(None, server) is server
        try:
            with _api_at(server.api_url):
                yield server.api_url
        finally:
            if aliased and SubprocessASGIServer._instances.get(None) is server:
                del SubprocessASGIServer._instances[None]
    finally:
        server.stop()


@contextlib.contextmanager
def _api_at(api_url: str) -> Iterator[None]:
    """`PREFECT_API_URL` at `api_url` for the block, in Prefect's settings (this process) and in
    `os.environ` (child processes); what this process still queues is sent before it ends."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    environ_before = os.environ.get(API_URL_ENV)
    os.environ[API_URL_ENV] = api_url
    try:
        with temporary_settings({PREFECT_API_URL: api_url}):
            try:
                yield
            finally:
                _send_queued()
    finally:
        if environ_before is None:
            os.environ.pop(API_URL_ENV, None)
        else:
            os.environ[API_URL_ENV] = environ_before


def _send_queued(timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
    """Send the run logs and events this process still holds while the server is up (as
    Prefect's test harness does): sent at interpreter exit instead, they would find it gone."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout)

"""Ctrl-C and SIGTERM for the command line: an exception that unwinds, then one line.

Python turns SIGINT into `KeyboardInterrupt` in the main thread, but SIGTERM's default is to end
the process on the spot, skipping every `finally` block (claims given back, a half-written file
removed, the temporary Prefect server stopped). Within `interruptible()` both raise
`KeyboardInterrupt` in the main thread; during a flow run Prefect raises its own
`TerminationSignal` on SIGTERM instead, and hands the signal on to this handler once the run has
recorded the crash. Whichever of the two leaves the block is not printed as a traceback: the
block's `report` prints one line and the command exits with 128 + the signal's number (130 for
SIGINT, 143 for SIGTERM), or with the status given.

Code between the signal and the block may swallow the exception: DuckDB turns an exception
raised in one of its Python callbacks into an error of its own, which the flow may record as a
failed step and go on. Every signal is also noted as it arrives (`signal.set_wakeup_fd`: the
interpreter writes its number to a pipe whichever handler runs), so that a block which ends
normally after a signal that was not taken as a graceful stop (below) ends the same way.

While the block unwinds, further signals are ignored, so that the clean-up they interrupt is not
itself cut short (SIGKILL still works, and is safe: a claim held by a process that no longer
exists is taken over by the next run, and the temporary server ends with its parent).

A long-running command (`cartflow watch`) asks for `graceful()` once it is running: the first
signal then only sets the returned event, so that the file in hand is finished, and a second one
raises as above. The event is also found set after a signal whose exception was swallowed, and
the block then ends as a graceful stop.

The terminal sees that one line only: from the first signal on, console log records are dropped
(Prefect logs the interruption of its flow and task runs as crashes, with tracebacks; they still
reach the run history on the server), and after the line, the process's standard error is closed
for the interpreter's own teardown (DuckDB's bindings report objects still alive then, which an
interrupted run leaves behind).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType, TracebackType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """A shell's status for a process ended by `signum`: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def is_interruption(exc: BaseException | None) -> bool:
    """`exc`, or an exception it was raised from or during, is a KeyboardInterrupt or Prefect's
    TerminationSignal."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt) or _is_termination_signal(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _is_termination_signal(exc: BaseException) -> bool:
    prefect_exceptions = sys.modules.get("prefect.exceptions")  # no Prefect, no such exception
    return prefect_exceptions is not None and isinstance(exc, prefect_exceptions.TerminationSignal)


def _drop_frames(exc: BaseException | None) -> None:
    """Let go of the interrupted frames' locals, which the SystemExit that follows would keep
    to the end of the interpreter."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


class _Arrivals:
    """The signals this process received, in order, whoever handled them: the interpreter
    writes each one's number to the wakeup file descriptor before any Python handler runs."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        self._seen: list[int] = []
        self._lock = threading.Lock()
        self._previous: int | None = None
        self._closed = False

    def start(self) -> None:
        """Only from the main thread."""
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)

    def close(self) -> None:
        if self._previous is not None:
            signal.set_wakeup_fd(self._previous)
            self._previous = None
        with self._lock:
            self._closed = True
            os.close(self._read)
            os.close(self._write)

    def first(self) -> int | None:
        """The first SIGINT or SIGTERM received so far, if any; callable from any thread."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(BlockingIOError):
                    while data := os.read(self._read, 64):
                        self._seen.extend(s for s in data if s in SIGNALS)
            return self._seen[0] if self._seen else None


class _Stop(threading.Event):
    """Set by the first signal; also found set once a signal has arrived whose handler never
    ran (Prefect's, whose exception was swallowed on its way), at the next look."""

    def __init__(self, arrivals: _Arrivals) -> None:
        super().__init__()
        self._arrivals = arrivals

    def is_set(self) -> bool:
        if not super().is_set() and self._arrivals.first() is not None:
            self.set()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(timeout) or self.is_set()


class _NotAfterSignal(logging.Filter):
    """Keeps console log records out of the terminal from the first signal on."""

    def __init__(self, arrivals: _Arrivals) -> None:
        super().__init__()
        self._arrivals = arrivals

    def filter(self, record: logging.LogRecord) -> bool:
        return self._arrivals.first() is None


class Interruptible:
    """See the module's docstring; use through `interruptible()`."""

    def __init__(self, report: Callable[[int], None], status: Callable[[int], int]) -> None:
        self._report = report
        self._status = status
        self._arrivals = _Arrivals()
        self._raised = False
        self._stop: _Stop | None = None
        self._stopping = False  # the first signal has set `_stop`
        self._previous: dict[int, object] = {}
        self._filter = _NotAfterSignal(self._arrivals)
        self._filtered: list[logging.Handler] = []

    @property
    def signum(self) -> int | None:
        """The first signal received, if any."""
        return self._arrivals.first()

    def graceful(self) -> threading.Event:
        """From now on the first signal sets the returned event; the next one raises."""
        self._stop = _Stop(self._arrivals)
        self.quiet_console()
        return self._stop

    def quiet_console(self) -> None:
        """Filter the console handlers configured so far (Prefect configures its own when
        `prefect.main` is imported: import it before entering the block)."""
        handlers = list(logging.getLogger().handlers)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            handlers += getattr(logger, "handlers", [])
        for handler in handlers:
            if isinstance(handler, logging.StreamHandler) and handler not in self._filtered:
                handler.addFilter(self._filter)
                self._filtered.append(handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._raised:
            return  # unwinding already
        if self._stop is not None and not self._stopping:
            self._stopping = True
            self._stop.set()
            return
        self._raised = True
        raise KeyboardInterrupt

    def __enter__(self) -> Interruptible:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in SIGNALS}
            self._arrivals.start()
        self.quiet_console()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        signum = self.signum
        if exc is not None:
            interrupted = is_interruption(exc)
        else:  # a signal whose exception was swallowed on its way, unless it stopped gracefully
            interrupted = signum is not None and not (self._stop and self._stop.is_set())
        if not interrupted:
            if self._stop is not None and self._stop.is_set():
                self._raised = True  # stopped gracefully: the command ends; later signals ignored
            else:
                self._restore()
            return False
        self._raised = True  # from here on every signal is ignored
        signum = signum or getattr(exc, "signal", None) or signal.SIGINT
        _drop_frames(exc)
        self._report(signum)
        _close_stderr()
        raise SystemExit(self._status(signum))

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._arrivals.close()
        for handler in self._filtered:
            handler.removeFilter(self._filter)


def _close_stderr() -> None:
    """Nothing more on the terminal's standard error from this process (see the module's
    docstring); standard output stays."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)


def interruptible(
    report: Callable[[int], None], status: Callable[[int], int] = exit_status
) -> Interruptible:
    """SIGINT and SIGTERM raise `KeyboardInterrupt` in the main thread within the block; an
    interruption leaving it (or swallowed within it) calls `report(signum)` and exits with
    `status(signum)` (by default 128 + signum). See the module's docstring."""
    return Interruptible(report, status)

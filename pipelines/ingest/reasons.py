"""The reason a technician reads beside a quarantined file, made in one place.

Every refusal and every fault ends here (`refusal`), whichever reader or step raised it, and
leaves as one line that

- starts with the file's name (put in front when the text does not start with it);
- holds no path of the lab home's internals nor a temporary path: the engine reads the raw
  store's copy (`raw/<sha[:2]>/<sha>.<ext>`) through a link under the file's own name in a
  temporary folder, and libraries put those paths in their messages; a path that leads to the
  file becomes the file's name, any other such path its last part;
- holds no stack text and no Python exception class name (`KeyError: ...`), and no line breaks:
  a library's multi-line message is joined into one line, and what could act on a terminal is
  escaped (`validation.names.shown`).

A fault (an exception that is not a `Rejection`: a defect in cartflow, not in the file) becomes
"<file>: cartflow could not process this file because of a fault in cartflow, not in the file;
keep the file and report it (details: fault <id> in logs/faults.log of the lab home)". Its
traceback is appended to `<lab home>/logs/faults.log` under that id, beside the lab service's
`server.log` and `worker.log`, for the maintainers.

Every refusal carries its remedy (`Rejection.action`): fix the file, complete the manifest, re-run
the assay, or report a fault; `advice` is the line a technician reads under the reason.
"""

from __future__ import annotations

import os
import re
import tempfile
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pipelines import __version__
from pipelines.assays import (
    COMPLETE_MANIFEST,
    FIX_FILE,
    REPORT_FAULT,
    RERUN_ASSAY,
    Rejection,
)
from validation.names import shown

FAULT_LOG = Path("logs") / "faults.log"
"""Where fault tracebacks go, relative to the lab home."""
LONGEST = 900
"""Characters kept of a reason; a longer one keeps its start and its end (what to do)."""

ADVICE = {
    FIX_FILE: "the file is in quarantine/ with this reason; fix it (or export it again) and drop "
    "it into the inbox again",
    COMPLETE_MANIFEST: "the file is in quarantine/ with this reason; complete the sample manifest "
    "(drop it into the inbox), then drop this file into the inbox again",
    RERUN_ASSAY: "the file is right about a run that failed QC: re-run the assay on a new plate "
    "and drop the new export into the inbox; this one stays in quarantine/, resolved by the "
    "repeat",
    REPORT_FAULT: "the file is in quarantine/; keep it and report the fault to the maintainers",
}
"""The line under a quarantine reason, per remedy."""

_TRACEBACK = "Traceback (most recent call last)"
_STACK_LINE = re.compile(
    r"^(Traceback \(most recent call last\)|\s|During handling of|The above exception)"
)
"""In a traceback: its head, the indented frames and code, the lines between chained ones."""
_TRACEBACK_HEAD = re.compile(r"Traceback \(most recent[^)]*\)?:?")
_CLASS_NAME = re.compile(r"(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception|Warning)\b:?\s*")
"""`KeyError: `, `flowio.exceptions.FCSParsingError`, a bare `Error: `..."""


def refusal(name: str, problem: BaseException, home: Path, sha256: str = "") -> Rejection:
    """The Rejection a file is quarantined with: `problem`'s reason made fit to read, or for
    a fault, the fault reason, with the traceback logged (see the module docstring)."""
    if isinstance(problem, Rejection):
        text, kind, instrument_format = problem.reason, problem.kind, problem.instrument_format
        action = problem.action
    else:
        text, kind, instrument_format = log_fault(name, problem, home, sha256), None, None
        action = REPORT_FAULT
    return Rejection(
        technician_reason(name, text, _internal_roots(home)), kind, instrument_format, action
    )


def advice(action: str | None) -> str:
    """What to do about a quarantined file, by its remedy (fix the file when not known)."""
    return ADVICE.get(action or FIX_FILE, ADVICE[FIX_FILE])


def technician_reason(name: str, text: str, internal_roots: Iterable[str]) -> str:
    """`text` as one line that starts with the file's `name`, without internal paths, stack
    text or exception class names (see the module docstring)."""
    lines = str(text).splitlines()
    if any(_TRACEBACK in line for line in lines):
        lines = [line for line in lines if not _STACK_LINE.match(line)]
    line = "; ".join(part.strip().rstrip(";") for part in lines if part.strip())
    line = _TRACEBACK_HEAD.sub("", _without_paths(line, name, internal_roots))
    line = _CLASS_NAME.sub("", line).strip(" ;:")
    if not line:
        line = "refused without a reason; keep the file and report it"
    if len(line) > LONGEST:
        line = f"{line[: LONGEST * 2 // 3]} … {line[-LONGEST // 3 :]}"
    if not line.startswith(name):
        line = f"{name}: {line}"
    return shown(line)


def log_fault(name: str, problem: BaseException, home: Path, sha256: str) -> str:
    """Append `problem`'s traceback to the lab home's fault log; the technician's reason."""
    now = datetime.now(UTC)
    fault = f"{now:%Y%m%dT%H%M%SZ}-{sha256[:8] or 'nohash'}"
    entry = (
        f"=== fault {fault} at {now.isoformat(timespec='seconds')}: file {name!r} "
        f"(sha256 {sha256 or 'unknown'}), cartflow {__version__}\n"
        + "".join(traceback.format_exception(problem))
        + "\n"
    )
    where = f"details: fault {fault} in {FAULT_LOG.as_posix()} of the lab home"
    try:
        _append(home / FAULT_LOG, entry.encode("utf-8", "backslashreplace"))
    except OSError as err:
        where = f"its details could not be written to {FAULT_LOG.as_posix()}: {err.strerror}"
    return (
        f"{name}: cartflow could not process this file because of a fault in cartflow, not in "
        f"the file; keep the file and report it ({where})"
    )


def _append(log: Path, entry: bytes) -> None:
    """One write to the end of `log`: entries of processes logging at once stay whole."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        rest = memoryview(entry)
        while rest:
            rest = rest[os.write(handle, rest) :]
    finally:
        os.close(handle)


def _internal_roots(home: Path) -> list[str]:
    """The lab home and the temporary folder, as given and as resolved (longest first, so a
    folder inside another is matched whole)."""
    roots = {str(home), str(home.resolve()), tempfile.gettempdir()}
    roots.add(os.path.realpath(tempfile.gettempdir()))
    absolute = {r.rstrip("/") for r in roots if os.path.isabs(r) and r != "/"}
    return sorted(absolute, key=len, reverse=True)


def _without_paths(text: str, name: str, roots: Iterable[str]) -> str:
    """Each path under one of `roots` replaced by `name` when it leads to the file (it ends in
    the file's name, or is the raw store's copy), else by its last part."""
    for root in roots:
        prefix = re.escape(root) + r"/"
        if name:  # the file's name may hold spaces, which end any other path
            text = re.sub(prefix + r"(?:[^\s'\"]*/)?" + re.escape(name), lambda _: name, text)
        text = re.sub(prefix + r"[^\s'\",;)]*", lambda m: _last_part(m.group(), name), text)
    return text


def _last_part(path: str, name: str) -> str:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    in_raw_store = re.fullmatch(r"[0-9a-f]{64}(\.[\w.]+)?", last) is not None
    return name if in_raw_store or not last else last

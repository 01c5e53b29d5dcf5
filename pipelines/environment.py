"""Every `CARTFLOW_*` environment variable, and the one function that reads them.

Each variable is declared once below with what it holds (a whole number in a range, a number, a
switch, one of a few words, a time zone...). `env_value` reads any of them: unset or empty gives
the caller's default, anything else is parsed by the variable's own parser or refused with an
`EnvironmentValueError` naming the variable, the value and what was expected. The command line
checks them all before any work (`environment_problems`), so a deep reader never meets a bad
value in a command's own process. This module imports nothing of the pipeline: the assay
packages read their variables through it too.
"""

from __future__ import annotations

import math
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

Value = TypeVar("Value")
Default = TypeVar("Default")


class EnvironmentValueError(ValueError):
    """A `CARTFLOW_*` variable whose value cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Variable(Generic[Value]):
    name: str
    parse: Callable[[str], Value]
    """Turns the variable's text into its value; raises ValueError when it is not one."""
    expected: str
    """What a valid value looks like, in the words of the refusal and the README's table."""
    default: str
    """The default, as the README's table states it."""
    meaning: str
    option: str | None = None
    """The command-line option that overrides the variable, if any."""


def env_value(
    variable: Variable[Value], default: Default, environ: Mapping[str, str] | None = None
) -> Value | Default:
    """The variable's value, or `default` when it is unset or empty."""
    raw = (os.environ if environ is None else environ).get(variable.name, "").strip()
    if not raw:
        return default
    try:
        return variable.parse(raw)
    except ValueError as err:
        raise EnvironmentValueError(
            f"{variable.name}={raw!r}: expected {variable.expected}"
        ) from err


def environment_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for every declared variable whose value cannot be used."""
    problems = []
    for variable in VARIABLES:
        try:
            env_value(variable, None, environ)
        except EnvironmentValueError as err:
            problems.append(str(err))
    return problems


# -- the parsers ------------------------------------------------------------------------------
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """Decimal digits only (no `1_000`, no `12.0`), from `minimum` to `maximum`."""

    def parse(text: str) -> int:
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ValueError(text)
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(text)
        return value

    return parse


def seconds(minimum: float, inclusive: bool) -> Callable[[str], float]:
    """A finite decimal number above (or from, when `inclusive`) `minimum`."""

    def parse(text: str) -> float:
        if not _DECIMAL.fullmatch(text):
            raise ValueError(text)
        value = float(text)
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise ValueError(text)
        return value

    return parse


_SWITCH = {"1": True, "true": True, "yes": True, "on": True,
           "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def switch(text: str) -> bool:
    try:
        return _SWITCH[text.lower()]
    except KeyError as err:
        raise ValueError(text) from err


def one_of(*words: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in words:
            raise ValueError(text)
        return text

    return parse


def text(value: str) -> str:
    return value


def time_zone(text: str) -> str:
    """An IANA time zone name the system's zone database knows (`Europe/Paris`)."""
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(text) from err
    return text


def cron(text: str) -> str:
    """Five fields (minute hour day month weekday) of digits, names and `* , - /`."""
    fields = text.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*,/-]+", f) for f in fields):
        raise ValueError(text)
    return text


def fault_step(text: str) -> tuple[str, int]:
    """`<step>` or `<step>:<n>`: the n-th time (default the first) the step is reached."""
    step, _, nth = text.partition(":")
    if not re.fullmatch(r"[a-z][a-z-]*", step):
        raise ValueError(text)
    return step, whole_number(1)(nth) if nth else 1


# -- the variables ----------------------------------------------------------------------------
HOME = Variable(
    "CARTFLOW_HOME", Path, "a directory path", "`./lab`",
    "the lab home of every command and of the service's flow runs", "--home",
)  # fmt: skip
HOST = Variable(
    "CARTFLOW_HOST", text, "a host name or address", "`127.0.0.1`",
    "interface the service's Prefect server listens on; `0.0.0.0` opens the UI to the lab "
    "network (it has no login: put it behind a proxy that has one)", "serve --host",
)  # fmt: skip
PORT = Variable(
    "CARTFLOW_PORT", whole_number(1, 65535), "a whole number from 1 to 65535", "`4200`",
    "the service's Prefect server port", "serve --port",
)  # fmt: skip
TIMEZONE = Variable(
    "CARTFLOW_TIMEZONE", time_zone, "a time zone name such as Europe/Paris", "`UTC` (prefect.yaml)",
    "time zone of the nightly run", "serve --timezone",
)  # fmt: skip
NIGHTLY_CRON = Variable(
    "CARTFLOW_NIGHTLY_CRON", cron, "a five-field cron schedule such as '0 2 * * *'",
    "`0 2 * * *` (prefect.yaml)", "when the nightly sweep runs", "serve --cron",
)  # fmt: skip
DASK_ADDRESS = Variable(
    "CARTFLOW_DASK_ADDRESS", text, "a Dask scheduler address such as tcp://10.0.0.5:8786", "none",
    "run the sweep's per-file tasks on this Dask cluster", "serve --dask-address",
)  # fmt: skip
WORKER_QUERY_SECONDS = Variable(
    "CARTFLOW_WORKER_QUERY_SECONDS", seconds(0, inclusive=False), "a number of seconds above 0",
    "`5`", "how often the service's worker looks for runs", "serve --worker-query-seconds",
)  # fmt: skip
STEADY_SECONDS = Variable(
    "CARTFLOW_STEADY_SECONDS", seconds(0, inclusive=True), "a number of seconds, 0 or more", "`1`",
    "the watcher takes a closed file once its size has not changed for this long",
    "watch/serve --steady-seconds",
)  # fmt: skip
RESCAN_SECONDS = Variable(
    "CARTFLOW_RESCAN_SECONDS", seconds(0, inclusive=False), "a number of seconds above 0", "`60`",
    "the watcher also sweeps the whole inbox this often", "watch --rescan-seconds",
)  # fmt: skip
WATCH_POLLING = Variable(
    "CARTFLOW_WATCH_POLLING", switch, "true or false (1/0, yes/no, on/off)", "off",
    "poll the inbox instead of inotify: needed when it is on a network share",
    "watch/serve --polling",
)  # fmt: skip
WATCH_SUBMIT = Variable(
    "CARTFLOW_WATCH_SUBMIT", one_of("inline", "deployment"), "inline or deployment", "`inline`",
    "`inline`: the watcher runs the ingest itself; `deployment`: it starts `ingest-file` runs "
    "on the pool's workers", "watch/serve --submit",
)  # fmt: skip
LOCAL_WORKERS = Variable(
    "CARTFLOW_LOCAL_WORKERS", whole_number(1), "a whole number, 1 or more", "every core",
    "processes of the temporary local Dask cluster for large batches",
)  # fmt: skip
LOCAL_CLUSTER_MIN_FILES = Variable(
    "CARTFLOW_LOCAL_CLUSTER_MIN_FILES", whole_number(1), "a whole number, 1 or more", "`12`",
    "batches of at least this many files go to the local cluster; smaller ones run in the "
    "sweep's own process",
)  # fmt: skip
GATING_THREADS = Variable(
    "CARTFLOW_GATING_THREADS", whole_number(1), "a whole number, 1 or more",
    "the cores, at most 4 (on local workers: the cores shared out between them)",
    "threads one FCS file is gated on",
)  # fmt: skip
FAULT = Variable(
    "CARTFLOW_FAULT", fault_step, "a step name, optionally ':n' (e.g. journalled:2)", "unset",
    "tests only: the process kills itself at this step (`pipelines/ingest/faults.py`)",
)  # fmt: skip
SHARED_DATA = Variable(
    "CARTFLOW_SHARED_DATA", Path, "a directory path", "`../shared/data` beside the checkout",
    "tests only: the folder of real instrument files the conformance tests read",
)  # fmt: skip

VARIABLES: tuple[Variable, ...] = (
    HOME, HOST, PORT, TIMEZONE, NIGHTLY_CRON, DASK_ADDRESS, WORKER_QUERY_SECONDS, STEADY_SECONDS,
    RESCAN_SECONDS, WATCH_POLLING, WATCH_SUBMIT, LOCAL_WORKERS, LOCAL_CLUSTER_MIN_FILES,
    GATING_THREADS, FAULT, SHARED_DATA,
)  # fmt: skip

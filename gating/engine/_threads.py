"""Running numpy-heavy work on threads: numpy releases the GIL in the gathers, partitions and
arithmetic, so chunks of one file (or its populations' medians) share the machine's cores.

`CARTFLOW_GATING_THREADS` caps the threads (default: the cores, at most 4). Processes that gate
files side by side set it to 1: with every core busy with a file, threads only add their
hand-offs (about a third more CPU per file on two cores). The library reads the variable itself,
at each call (a worker process gets it from whoever starts it); the pipeline's table of
variables (`pipelines/environment.py`) checks its value before any work starts and documents it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
THREADS_VARIABLE = "CARTFLOW_GATING_THREADS"


def gating_threads() -> int:
    """Threads for one file's work: `CARTFLOW_GATING_THREADS`, else the cores (at most 4)."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return min(4, os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_VARIABLE} must be a whole number, 1 or more (it is {value!r})")
    return int(value)


def thread_map(
    function: Callable[[Item], Result], items: Iterable[Item], threads: int | None = None
) -> list[Result]:
    """`[function(item) for item in items]`, in order, on up to `threads` threads (default
    `gating_threads()`); in this thread when one would do (no pool to start, and profilers see
    the work)."""
    items = list(items)
    workers = min(threads or gating_threads(), len(items))
    if workers < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))

"""Running numpy-heavy work on threads: numpy releases the GIL in the gathers, partitions and
arithmetic, so chunks of one file (or its populations' medians) share the machine's cores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

THREADS = min(4, os.cpu_count() or 1)

Item = TypeVar("Item")
Result = TypeVar("Result")


def thread_map(
    function: Callable[[Item], Result], items: Iterable[Item], threads: int = THREADS
) -> list[Result]:
    """`[function(item) for item in items]`, in order, on up to `threads` threads; in this thread
    when one would do (no pool to start, and profilers see the work)."""
    items = list(items)
    workers = min(threads, len(items))
    if workers < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))

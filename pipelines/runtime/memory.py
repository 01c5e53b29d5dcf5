"""glibc's malloc settings for the processes that gate files (the flow's, the local Dask
workers, the service's flow runs). Nothing here imports Prefect: the command line sets them
before it imports anything heavy."""

from __future__ import annotations

import ctypes
import os

_THRESHOLDS = (
    # (environment variable, mallopt parameter in <malloc.h>, value)
    ("MALLOC_MMAP_THRESHOLD_", -3, 64 << 20),
    ("MALLOC_TRIM_THRESHOLD_", -1, 256 << 20),
)
MALLOC_ENVIRON = {name: str(value) for name, _, value in _THRESHOLDS}
"""glibc's malloc for processes that gate files: arrays up to 64 MiB (a chunk's float64 events,
the medians' matrix) come from the heap, and up to 256 MiB of freed heap is kept for the next
file instead of being handed back and faulted in again (~10 000 page faults per 1M-event file
fall to ~700; 10-25 % less CPU per file). Read by glibc when a process starts."""


def tune_malloc() -> bool:
    """`MALLOC_ENVIRON`'s thresholds for this already running process (glibc's `mallopt`),
    unless its environment set them; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(
        name in os.environ or mallopt(parameter, value) for name, parameter, value in _THRESHOLDS
    )

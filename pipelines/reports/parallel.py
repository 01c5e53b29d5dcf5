"""Drawing pages on every core. matplotlib holds the GIL while it draws (a gating page about a
second of CPU, a patient page one to two), so a night's pages are shared out between processes
forked from the pipeline's fork server (`pipelines.runtime.runners.local_processes`): one costs a
few milliseconds once that server runs, a few seconds of imports to start it, so a handful of
pages is drawn here instead."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Job = TypeVar("Job")
Drawn = TypeVar("Drawn")


def on_every_core(draw: Callable[[Job], Drawn], jobs: Sequence[Job], from_jobs: int) -> list[Drawn]:
    """`[draw(job) for job in jobs]`, in order: here when there are fewer than `from_jobs` jobs
    or one core, else on one process per core (`draw` and the jobs must pickle)."""
    # imported here: the runners import Prefect and Dask, seconds that `cartflow report` on a
    # home whose pages are current need not pay
    from pipelines.runtime.runners import local_processes, local_workers

    workers = min(local_workers(), len(jobs))
    if len(jobs) < from_jobs or workers < 2:
        return [draw(job) for job in jobs]
    with local_processes(workers) as pool:
        return list(pool.map(draw, jobs))


def shared_out(items: Sequence[Job]) -> list[list[Job]]:
    """`items` dealt out round-robin into one share per core (fewer when there are few)."""
    from pipelines.runtime.runners import local_workers

    shares = max(1, min(len(items), local_workers()))
    return [list(items[k::shares]) for k in range(shares)]

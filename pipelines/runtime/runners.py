"""Where the sweep's per-file tasks run: in this process, on local worker processes, or on Dask.

Chosen per flow run from the environment, so the same deployment runs on a laptop, on the lab
server's cores, or on a cluster without being redeployed:

- `CARTFLOW_DASK_ADDRESS=tcp://host:8786`: an existing Dask cluster (prefect-dask's
  DaskTaskRunner). Every worker must see the lab home at the same path.
- otherwise, batches of at least `CARTFLOW_LOCAL_CLUSTER_MIN_FILES` files (default 12) run on a
  temporary local Dask cluster of `CARTFLOW_LOCAL_WORKERS` processes (default: every core).
  Smaller batches run in this process: a new worker process pays the pipeline's imports and its
  own Great Expectations context (tens of seconds on a busy two-core machine), which only pays
  back over a large backlog.

Manifests never go through the runner: the sweep takes them first, in this process, so the
samples they name resolve before any plate is computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager

import dask
from distributed.utils import get_mp_context
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask import DaskTaskRunner

from pipelines.environment import (
    DASK_ADDRESS,
    GATING_THREADS,
    LOCAL_CLUSTER_MIN_FILES,
    LOCAL_WORKERS,
    env_value,
)
from pipelines.runtime.memory import MALLOC_ENVIRON, tune_malloc

DEFAULT_LOCAL_CLUSTER_MIN_FILES = 12
_WORKER_ENVIRON = "distributed.nanny.pre-spawn-environ"
_START_METHOD = "distributed.worker.multiprocessing-method"
LOCAL_DASHBOARD = "127.0.0.1:0"
"""A local cluster's HTTP server (dashboard, health): loopback, any free port."""
WORKER_PRELOAD = "pipelines.runtime.worker_start"
"""Imported once by the process local workers are forked from (see `local_cluster_settings`)."""


def dask_address() -> str | None:
    """The configured Dask scheduler address, if any."""
    return env_value(DASK_ADDRESS, None)


def local_workers() -> int:
    """Local worker processes for large batches: the setting, else every core."""
    return env_value(LOCAL_WORKERS, os.cpu_count() or 1)


def per_file_runner(file_count: int) -> DaskTaskRunner | None:
    """The task runner for `file_count` per-file tasks, or None to run them here, one by one."""
    address = dask_address()
    if address:
        return DaskTaskRunner(address=address)
    workers = local_workers()
    minimum = env_value(LOCAL_CLUSTER_MIN_FILES, DEFAULT_LOCAL_CLUSTER_MIN_FILES)
    if workers < 2 or file_count < minimum:
        return None
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,  # FlowUtils' logicle holds the GIL: processes, not threads
            "processes": True,
            "host": "127.0.0.1",
            # None would still start its HTTP server on 8787, warning "Port 8787 is already in
            # use" on the technician's terminal whenever another cluster holds it: any free port
            "dashboard_address": LOCAL_DASHBOARD,
        }
    )


@contextmanager
def local_cluster_settings() -> Iterator[None]:
    """Settings a local cluster's workers must start with; none for a remote cluster.

    - PREFECT_API_URL: the command line sets it to its temporary server (`server`), but a flow
      called from Python without one runs on Prefect's own temporary server and sets none; tasks
      take the flow's settings with them, so each worker's first task would start a temporary
      server of its own (on the same database): seconds of start-up, and one more server
      process per worker competing with the files for the cores.
    - `MALLOC_ENVIRON`: Dask sets MALLOC_TRIM_THRESHOLD_ low for its workers, to hand freed
      memory back to the system sooner. Every large array was then mapped and unmapped afresh,
      and gating a 1M-event file took twice as long (1.9 s against 0.9 s per file, two workers
      on two cores).
    - CARTFLOW_GATING_THREADS: the cores shared out between the workers (1 each when there are
      as many workers as cores), unless set already. Each worker gates its own file; threads
      within a file would only compete with the other workers.
    - Workers are forked from one fork server that has imported the pipeline
      (`WORKER_PRELOAD`), instead of each spawned process importing it again: the imports
      (Prefect, FlowKit, pandas, numba's kernels: 5-7 s of CPU) are paid once, not once per
      worker, on a machine whose cores the workers are waiting for. The fork server starts
      with the first local cluster of the process, in the environment above, and serves the
      later ones.
    """
    if dask_address():
        yield
        return
    threads = env_value(GATING_THREADS, max(1, (os.cpu_count() or 1) // local_workers()))
    environ = {**MALLOC_ENVIRON, GATING_THREADS.name: str(threads)}
    with ExitStack() as stack:
        if not PREFECT_API_URL.value():
            api_url = str(get_client(sync_client=True).api_url)
            stack.enter_context(temporary_settings({PREFECT_API_URL: api_url}))
        stack.enter_context(
            dask.config.set({f"{_WORKER_ENVIRON}.{name}": value for name, value in environ.items()})
        )
        stack.enter_context(dask.config.set({_START_METHOD: "forkserver"}))
        _preload_fork_server()
        yield


@contextmanager
def local_processes(count: int) -> Iterator[ProcessPoolExecutor]:
    """`count` processes for CPU-bound work of the flow's own (drawing the gating pages), forked
    from the fork server the local Dask workers come from: it has imported the pipeline once, so a
    process costs milliseconds instead of the imports' seconds (the server is started here, with
    the same preload, when no local cluster started it before). Each process gates with one
    thread when they fill the cores, and takes the gating processes' malloc settings."""
    with dask.config.set({_START_METHOD: "forkserver"}):
        _preload_fork_server()
        fork_server = get_mp_context()
    threads = max(1, (os.cpu_count() or 1) // count)
    with ProcessPoolExecutor(
        max_workers=count, mp_context=fork_server, initializer=_start_process,
        initargs=(threads,),
    ) as pool:  # fmt: skip
        yield pool


def _start_process(threads: int) -> None:
    os.environ.setdefault(GATING_THREADS.name, str(threads))
    tune_malloc()


def _preload_fork_server() -> None:
    """Have the fork server import the pipeline. Dask sets its own list (its packages) on its
    first use of the context, once per process: that use is made here, then replaced by
    `WORKER_PRELOAD`, which imports them all and more."""
    get_mp_context().set_forkserver_preload(["distributed", WORKER_PRELOAD])

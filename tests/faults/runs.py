"""Running real `cartflow` processes for the fault tests, and finding what they left running."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

from pipelines.environment import FAULT
from pipelines.home import LabHome

RUN_TIMEOUT = 300


def cartflow_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def cartflow_environment(api_url: str, fault: str | None = None) -> dict[str, str]:
    """The test's environment, against the shared server, no local Dask cluster, and the
    fault to inject (`pipelines.ingest.faults`) if any."""
    environ = {**os.environ, "PREFECT_API_URL": api_url, "CARTFLOW_LOCAL_CLUSTER_MIN_FILES": "1000"}
    environ.pop(FAULT.name, None)
    if fault:
        environ[FAULT.name] = fault
    return environ


def cartflow(api_url: str, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """Run `cartflow ARGS` to its end; its output as text."""
    return subprocess.run(
        cartflow_command(*args), env=cartflow_environment(api_url, fault), capture_output=True,
        text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def processes_of(home: LabHome) -> list[psutil.Process]:
    """Processes (but this one) whose command line names the lab home."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid == os.getpid():
            continue
        try:
            if str(home.root) in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found

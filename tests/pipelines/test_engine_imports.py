"""The ingest engine and the watcher's file filter stand without Prefect and Dask."""

from __future__ import annotations

import subprocess
import sys


def test_the_engine_and_the_watcher_import_neither_prefect_nor_dask():
    probe = (
        "import sys, pipelines.ingest, pipelines.watch, pipelines.ingest.recovery; "
        "print(sorted(m for m in ('prefect', 'dask', 'distributed', 'prefect_dask') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"

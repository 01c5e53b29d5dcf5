"""The ingest engine: every file of the lab home taken exactly once, whatever happens.

Prefect-free and Dask-free; the flows (`pipelines.flows`) are thin wrappers over it.

- `inbox`: which files are waiting exports, manifests first (the watcher's filter too);
- `claims`: who holds a file (process, start time, heartbeat), so a dead run is seen at once;
- `processor`: one file's path: store, claim, recognise, compute, validate, journalled commit;
- `batch`: files taken together through an executor it is handed; the one place claims are
  given back;
- `recovery`: what a dead run left, completed or rolled back by the next one;
- `faults`: the named points where the fault-injection tests kill the process.
"""

from pipelines.ingest.batch import Executor, InProcess, counts, run_batch
from pipelines.ingest.claims import ClaimOwner
from pipelines.ingest.inbox import inbox_files, is_candidate, manifests_first
from pipelines.ingest.processor import (
    BUSY,
    DUPLICATE,
    FAILED,
    INGESTED,
    QUARANTINED,
    Check,
    FileOutcome,
    Prepared,
    Processor,
    sha256_of,
)
from pipelines.ingest.recovery import Recovery, recover

__all__ = [
    "BUSY", "DUPLICATE", "FAILED", "INGESTED", "QUARANTINED", "Check", "ClaimOwner", "Executor",
    "FileOutcome", "InProcess", "Prepared", "Processor", "Recovery", "counts", "inbox_files",
    "is_candidate", "manifests_first", "recover", "run_batch", "sha256_of",
]  # fmt: skip

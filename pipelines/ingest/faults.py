"""Named points on a file's path where the fault-injection tests kill the process.

`CARTFLOW_FAULT=<step>` makes the process SIGKILL itself the first time it reaches that step
(`<step>:<n>`: the n-th time), as a power cut or the kernel's OOM killer would. The tests in
`tests/faults/` run a real `cartflow` process so, then check that the next run leaves the
warehouse, the ledger and the lab home exactly as if the killed run had either never started a
file's commit or had finished it. Unset, a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from pipelines.environment import FAULT, env_value

RAW_STORED = "raw-stored"
"""The file's bytes are in the raw store; it is not yet received or claimed."""
CLAIMED = "claimed"
"""The file is claimed by this run; nothing computed yet."""
PARQUET_WRITE = "parquet-write"
"""Half-way through writing the file's Parquet outputs under their temporary names."""
JOURNALLED = "journalled"
"""The commit is in the journal; no output renamed into place yet."""
NEW_PUBLISHED = "new-published"
"""The new outputs are in place; the ledger has not switched to them (before the ledger commit)."""
LEDGER_COMMITTED = "ledger-committed"
"""The ledger switched to the new outputs; the superseded ones are not yet removed."""
FILED_AWAY = "filed-away"
"""The file is committed; its inbox original not yet moved to processed/."""
DERIVE = "derive"
"""Recomputing the derived tables, before they are written."""

STEPS = (RAW_STORED, CLAIMED, PARQUET_WRITE, JOURNALLED, NEW_PUBLISHED, LEDGER_COMMITTED,
         FILED_AWAY, DERIVE)  # fmt: skip

_reached: Counter[str] = Counter()


def fault_point(step: str) -> None:
    """Kill this process here if `CARTFLOW_FAULT` names `step` (and this is its n-th time)."""
    wanted = env_value(FAULT, None)
    if wanted is None or wanted[0] != step:
        return
    _reached[step] += 1
    if _reached[step] >= wanted[1]:
        os.kill(os.getpid(), signal.SIGKILL)

"""What a run that died left behind, settled by the next one before it takes any file.

- A commit in the journal (`Ledger.journal`) whose batch is gone is completed when all its new
  outputs are there (in place, or under their temporary names), else rolled back: either way the
  warehouse then holds the file's old rows or its new ones, never both and never neither.
- Claims of batches that are gone are given back: the files are taken again from the inbox.
- Temporary files of processes that are gone (raw store, warehouse, quarantine) are removed.

Every batch calls `recover` first (`pipelines.ingest.batch.run_batch`), so there is no waiting
for a claim to expire; so does the service when it starts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.hashing import sha256_of
from pipelines.home import LabHome
from pipelines.ingest.claims import orphaned
from pipelines.ledger import PUBLISHED, Journalled, Ledger
from pipelines.warehouse import remove_outputs, temporary_token


@dataclass
class Recovery:
    """What recovery did, for the run's log."""

    completed: list[str] = field(default_factory=list)
    """Files whose interrupted commit was completed."""
    rolled_back: list[str] = field(default_factory=list)
    """Files whose interrupted commit was undone (they are taken again from the inbox)."""
    released: list[str] = field(default_factory=list)
    """Files whose dead claim was given back."""
    removed_temporaries: int = 0

    def __bool__(self) -> bool:
        return bool(self.completed or self.rolled_back or self.released or self.removed_temporaries)

    def summary(self) -> str:
        parts = [
            f"{len(self.completed)} interrupted commit(s) completed" if self.completed else "",
            f"{len(self.rolled_back)} rolled back" if self.rolled_back else "",
            f"{len(self.released)} claim(s) of a stopped run given back" if self.released else "",
            f"{self.removed_temporaries} temporary file(s) removed"
            if self.removed_temporaries
            else "",
        ]
        return "recovered from a stopped run: " + ", ".join(p for p in parts if p)


def recover(home: LabHome, ledger: Ledger, expiry_seconds: float) -> Recovery:
    """Settle what dead runs left in this lab home (see the module's docstring)."""
    recovery = Recovery()
    live = ledger.live_tokens(expiry_seconds)
    for entry in ledger.journal():
        if entry.token in live:
            continue  # a running batch's commit
        if settle(home, ledger, entry):
            recovery.completed.append(entry.sha256)
        else:
            recovery.rolled_back.append(entry.sha256)
    for claim in ledger.dead_claims(expiry_seconds):
        recovery.released.extend(ledger.release_claims(claim.token))
    recovery.removed_temporaries = remove_orphaned_temporaries(home, expiry_seconds)
    return recovery


def settle(home: LabHome, ledger: Ledger, entry: Journalled) -> bool:
    """Complete a journalled commit (True) or roll it back (False).

    A commit whose ledger switch happened (`PUBLISHED`) only has superseded outputs left to
    remove. One that stopped before it (`STAGED`) is completed when every new output is in place
    with its recorded hash or still under its temporary name, else undone.
    """
    from pipelines.ingest.processor import switch_ledger

    plan = entry.plan
    if entry.phase != PUBLISHED:
        if not all(_recoverable(home, path, o.file_sha256, plan.staged.get(path))
                   for o in plan.outputs for path in [o.path]):  # fmt: skip
            for output in plan.outputs:
                Path(plan.staged.get(output.path, "")).unlink(missing_ok=True)
            remove_outputs(home.warehouse, [o.path for o in plan.outputs])
            ledger.end_commit(entry.sha256)
            ledger.release_claims(entry.token)
            return False
        for output in plan.outputs:
            temporary = Path(plan.staged[output.path])
            if temporary.exists():
                os.replace(temporary, home.warehouse / output.path)
        _, remove = switch_ledger(ledger, entry.sha256, plan)
    else:
        remove = plan.remove
    remove_outputs(home.warehouse, remove)
    ledger.end_commit(entry.sha256)
    return True


def _recoverable(home: LabHome, path: str, expected: str | None, temporary: str | None) -> bool:
    final = home.warehouse / path
    if temporary and Path(temporary).exists():
        return expected is None or sha256_of(Path(temporary)) == expected
    return final.exists() and (expected is None or sha256_of(final) == expected)


def remove_orphaned_temporaries(home: LabHome, expiry_seconds: float) -> int:
    """Remove the dot-named temporary files of processes that are gone; return how many."""
    removed = 0
    now = time.time()
    for folder in (home.warehouse, home.raw, home.quarantine, home.processed):
        if not folder.is_dir():
            continue
        for path in folder.rglob(".*.tmp"):
            token = temporary_token(path.name)
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if token is not None and orphaned(token, age, expiry_seconds):
                path.unlink(missing_ok=True)
                removed += 1
    return removed

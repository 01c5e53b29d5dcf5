"""The lab home: one directory holding everything a lab installation keeps."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.environment import HOME, env_value

DEFAULT_HOME = Path("lab")


@dataclass(frozen=True)
class LabHome:
    root: Path
    chosen_by: str = "given by the caller"
    """How the folder was chosen, in the words an error about it uses (`--home`, the variable,
    the `./lab` default)."""

    @classmethod
    def locate(cls, explicit: str | os.PathLike | None = None) -> LabHome:
        """`--home DIR`, else `$CARTFLOW_HOME`, else `./lab`; always absolute."""
        if explicit:
            chosen, how = Path(explicit), "the --home option"
        elif env_value(HOME, None) is not None:
            chosen, how = env_value(HOME, DEFAULT_HOME), f"the {HOME.name} variable"
        else:
            chosen = DEFAULT_HOME
            how = f"the default ./lab of the current folder (no --home, {HOME.name} unset)"
        return cls(Path(chosen).expanduser().resolve(), how)

    def absence(self) -> str | None:
        """What this lab home lacks to be read (by queries, reports, status), or None.

        A folder without a ledger has never had a file ingested: reading it would answer every
        question with nothing, which a typo'd `--home` must not pass for.
        """
        if not self.root.exists():
            return "the folder does not exist"
        if not self.root.is_dir():
            return "it is not a folder"
        if not self.ledger_path.is_file():
            return "it holds no ledger: no file was ever ingested there"
        return None

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    def raw_copy(self, sha256: str) -> Path | None:
        """The kept bytes of a file in the raw store (`raw/<sha[:2]>/<sha><ext>`), or None if
        they are missing."""
        return next(iter(sorted((self.raw / sha256[:2]).glob(f"{sha256}*"))), None)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def gx(self) -> Path:
        return self.root / "gx"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def ensure(self) -> LabHome:
        for folder in (self.inbox, self.processed, self.quarantine, self.raw, self.warehouse,
                       self.gx, self.reports):  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)
        return self


@contextmanager
def under_original_name(raw_copy: Path, name: str) -> Iterator[Path]:
    """The immutable raw-store bytes, seen under the file's original name.

    Libraries read identity from file names (a LEGENDplex `K2-C07-A7.fcs`) and name the file in
    their errors; a symbolic link in a private folder gives them both without a second copy.
    """
    with tempfile.TemporaryDirectory(prefix="cartflow-") as folder:
        link = Path(folder) / name
        link.symlink_to(raw_copy)
        yield link

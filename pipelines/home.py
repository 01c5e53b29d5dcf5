"""The lab home: one directory holding everything a lab installation keeps."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.environment import HOME, env_value

DEFAULT_HOME = Path("lab")


@dataclass(frozen=True)
class LabHome:
    root: Path

    @classmethod
    def locate(cls, explicit: str | os.PathLike | None = None) -> LabHome:
        """`--home DIR`, else `$CARTFLOW_HOME`, else `./lab`; always absolute."""
        chosen = explicit or env_value(HOME, DEFAULT_HOME)
        return cls(Path(chosen).expanduser().resolve())

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

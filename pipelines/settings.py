"""The lab's settings: `cartflow.toml` in the lab home, every key optional.

```toml
[identity]
sample_name_pattern = '^(?P<patient>P\\d{2,4})[ _-]+(?P<timepoint>.+)$'

[qpcr]
efficiency_min_pct = 90
r_squared_min = 0.98
default_dna_input_ng = 200
```

Assay sections are handed to each assay package's own settings class, which rejects unknown keys,
so a typo in a threshold name stops the run instead of silently using the default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cba.settings import CbaSettings
from gating.settings import FlowSettings, flow_settings_from_dict
from qpcr.settings import QpcrSettings

DEFAULT_SAMPLE_NAME_PATTERN = (
    r"^(?P<patient>[A-Za-z]{1,4}\d{1,5})[ _-]+(?P<timepoint>[A-Za-z][A-Za-z0-9 +._-]*)$"
)
"""`P012_D14`, `P012-Day 14`, `PT7 BL`: a patient code, a separator, a timepoint spelling."""

SETTINGS_FILE = "cartflow.toml"


def read_settings_file(home: Path) -> dict[str, Any]:
    """The parsed `<home>/cartflow.toml`, empty when there is none; invalid TOML is an error."""
    path = home / SETTINGS_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from err


@dataclass(frozen=True)
class IngestSettings:
    """`[ingest]`: how the engine treats claims (`pipelines.ingest.claims`)."""

    claim_expiry_minutes: float = 15.0
    """A claim held by a run on another host is taken to be dead once its heartbeat (renewed
    every 30 s while the run lives) is older than this; a claim of a process on this host is
    judged by that process at once."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestSettings:
        unknown = sorted(set(data) - {"claim_expiry_minutes"})
        if unknown:
            raise ValueError(f"[ingest]: unknown setting(s) {', '.join(unknown)}")
        expiry = data.get("claim_expiry_minutes", cls.claim_expiry_minutes)
        if isinstance(expiry, bool) or not isinstance(expiry, int | float) or expiry <= 0:
            raise ValueError(
                f"[ingest] claim_expiry_minutes = {expiry!r}: expected a positive number"
            )
        return cls(claim_expiry_minutes=float(expiry))


@dataclass(frozen=True)
class Settings:
    sample_name_pattern: str = DEFAULT_SAMPLE_NAME_PATTERN
    ingest: IngestSettings = field(default_factory=IngestSettings)
    qpcr: QpcrSettings = field(default_factory=QpcrSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    cba: CbaSettings = field(default_factory=CbaSettings)

    @classmethod
    def load(cls, home: Path) -> Settings:
        """Settings from `<home>/cartflow.toml`, defaults where the file or a key is absent."""
        data = read_settings_file(home)
        identity = data.get("identity", {})
        return cls(
            sample_name_pattern=identity.get("sample_name_pattern", DEFAULT_SAMPLE_NAME_PATTERN),
            ingest=IngestSettings.from_dict(data.get("ingest", {})),
            qpcr=QpcrSettings.from_dict(data.get("qpcr", {})),
            flow=flow_settings_from_dict(data.get("flow", {})),
            cba=CbaSettings.from_dict(data.get("cba", {})),
        )

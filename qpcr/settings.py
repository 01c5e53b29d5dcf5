"""qPCR QC thresholds and assay conventions. Every threshold is a setting.

Defaults are the published values collected in NOTES.md: amplification efficiency 90-110 %
(slope -3.6 to -3.1) and R^2 >= 0.98 for the plasmid standard curve. Replicate SD <= 0.5 Cq and
the NTC rule are common lab practice; the limit of detection defaults to 3 copies per reaction,
the Poisson limit at which 95 % of reactions still contain a template copy (MIQE).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class QpcrSettings:
    efficiency_min_pct: float = 90.0
    efficiency_max_pct: float = 110.0
    r_squared_min: float = 0.98
    min_standard_levels: int = 3
    replicate_sd_max: float = 0.5
    ntc_max_amplified: int = 0
    """NTC wells allowed to amplify below `ntc_cq_cutoff` before the plate fails."""
    ntc_cq_cutoff: float = 38.0
    """An NTC amplifying at or after this Cq is recorded but not counted as contamination."""
    lod_copies_per_reaction: float = 3.0
    loq_copies_per_reaction: float | None = None
    """None: the LOQ is the lowest standard level whose replicates all amplified."""
    default_dna_input_ng: float | None = None
    """DNA per reaction when neither the export nor the manifest gives it."""
    car_targets: tuple[str, ...] = ("CAR", "FMC63", "CD19CAR", "CD19-CAR", "CAR-T", "SCFV", "WPRE")
    reference_targets: tuple[str, ...] = (
        "RNASEP", "RNASE P", "RPPH1", "ALB", "ALBUMIN", "GAPDH", "ACTB", "B2M", "TERT", "CCR5",
    )  # fmt: skip
    positive_control_names: tuple[str, ...] = (
        "PC", "POS", "POSCTRL", "POS CTRL", "POSITIVE CONTROL", "PTC", "CAR PC",
    )  # fmt: skip
    """Sample names of the run's positive control: quantified per run for QC trends, never a patient."""
    reference_copies_per_cell: float = 2.0
    """A single-copy autosomal reference gene has two copies per diploid cell."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> QpcrSettings:
        """Settings from a mapping (e.g. the `[qpcr]` table of cartflow.toml); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown qpcr setting(s): {', '.join(unknown)}; known: {sorted(known)}"
            )
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    def is_positive_control(self, sample_name: str) -> bool:
        name = " ".join(sample_name.strip().upper().replace("_", " ").replace("-", " ").split())
        return name in {" ".join(n.upper().split()) for n in self.positive_control_names}

    def role_of(self, target: str) -> str:
        """'car', 'reference' or 'other', matching target names case-insensitively."""
        name = target.strip().upper()
        if any(name == t.upper() or name.startswith(t.upper()) for t in self.car_targets):
            return "car"
        if any(name == t.upper() for t in self.reference_targets):
            return "reference"
        return "other"

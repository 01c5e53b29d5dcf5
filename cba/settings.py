"""Analysis settings for bead-array plates, with the defaults of NOTES.md ("Bead arrays")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assaykit import settings_from_dict
from cba.analytes import VOCABULARY, Vocabulary

MODELS = ("auto", "4PL", "5PL")
WEIGHTINGS = ("1/y^2", "1/y", "none")


@dataclass(frozen=True)
class CbaSettings:
    """How standard curves are fitted and judged.

    - `model`: "5PL" (the default fit of xPONENT, Bio-Plex Manager and beadplexr), "4PL", or "auto"
      (both are fitted and the lower AICc wins).
    - `weighting`: residual weights; "1/y^2" keeps the low standards from being swamped by the top.
    - `recovery_low_pct` / `recovery_high_pct`: the back-calculated recovery window per standard
      (80-120 %; Bio-Plex Manager's default is 70-130 %).
    - `min_fraction_standards_passed`: ICH M10 asks for at least 75 % of calibrators passing.
    - `dilution_factor`: the standard series' step (2 for BD CBA, 4 for LEGENDplex); None infers it
      as the median ratio of consecutive standards.
    - `dilution_tolerance_pct`: how far a standard may be from the previous one divided by the
      dilution factor before the series is called broken (catches a 1000x decimal slip).
    - `analyte_aliases`: the lab's own analyte spellings, `{ "My-IL6" = "IL-6" }`, added to the
      vocabulary of `cba.analytes`; each value must name an analyte the vocabulary knows.
    """

    model: str = "5PL"
    weighting: str = "1/y^2"
    recovery_low_pct: float = 80.0
    recovery_high_pct: float = 120.0
    min_fraction_standards_passed: float = 0.75
    dilution_factor: float | None = None
    dilution_tolerance_pct: float = 10.0
    analyte_aliases: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model = {self.model!r}: expected one of {', '.join(MODELS)}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting = {self.weighting!r}: expected one of {', '.join(WEIGHTINGS)}"
            )
        if not 0 < self.recovery_low_pct < 100 < self.recovery_high_pct:
            raise ValueError(
                f"recovery_low_pct = {self.recovery_low_pct:g}, recovery_high_pct = "
                f"{self.recovery_high_pct:g}: expected a window around 100 (e.g. 80 and 120)"
            )
        if not 0 < self.min_fraction_standards_passed <= 1:
            raise ValueError(
                f"min_fraction_standards_passed = {self.min_fraction_standards_passed:g}: "
                "expected a fraction above 0, at most 1 (e.g. 0.75)"
            )
        if self.dilution_factor is not None and self.dilution_factor <= 1:
            raise ValueError(f"dilution_factor = {self.dilution_factor:g}: expected above 1")
        if self.dilution_tolerance_pct <= 0:
            raise ValueError(
                f"dilution_tolerance_pct = {self.dilution_tolerance_pct:g}: expected above 0"
            )
        vocabulary_with(self.analyte_aliases)

    @property
    def vocabulary(self) -> Vocabulary:
        """The analyte vocabulary with this lab's aliases."""
        return vocabulary_with(self.analyte_aliases)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CbaSettings:
        """Settings from a `[cba]` table (an unknown key is an error)."""
        return settings_from_dict(cls, values)


def vocabulary_with(aliases: object) -> Vocabulary:
    """The shipped vocabulary plus `[cba] analyte_aliases`; ValueError when one is not a table of
    names or names no known analyte (with the closest canonical name)."""
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise ValueError(
            '[cba] analyte_aliases must be a table of names, e.g. { "My-IL6" = "IL-6" }'
        )
    return VOCABULARY.with_aliases(aliases) if aliases else VOCABULARY

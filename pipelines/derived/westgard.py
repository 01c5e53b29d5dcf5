"""Westgard multirules over a Levey-Jennings series of one control.

Input is the control's z-scores in run order ((value - target mean) / target SD). Each rule is
evaluated at every run over the window ending there, so a point is flagged by the rules its own
value completes:

- 1-2s  warning: one value beyond 2 SD;
- 1-3s  reject: one value beyond 3 SD (random error);
- 2-2s  reject: two consecutive values beyond 2 SD on the same side (systematic error);
- R-4s  reject: two consecutive values more than 4 SD apart, one beyond +2 SD and one beyond
        -2 SD (random error; applied across consecutive runs since each series is one control);
- 4-1s  reject: four consecutive values beyond 1 SD on the same side (systematic error);
- 10-x  reject: ten consecutive values on the same side of the mean (systematic shift).
"""

from __future__ import annotations

from collections.abc import Sequence

WARNING_RULES = ("1-2s",)
REJECT_RULES = ("1-3s", "2-2s", "R-4s", "4-1s", "10-x")


def _same_side_beyond(window: Sequence[float], limit: float) -> bool:
    return all(z > limit for z in window) or all(z < -limit for z in window)


def violations_at(z_scores: Sequence[float], index: int) -> list[str]:
    """The rules violated by the series up to and including run `index`."""
    z = z_scores[index]
    found = []
    if abs(z) > 2:
        found.append("1-2s")
    if abs(z) > 3:
        found.append("1-3s")
    if index >= 1:
        pair = z_scores[index - 1 : index + 1]
        if _same_side_beyond(pair, 2):
            found.append("2-2s")
        if max(pair) > 2 and min(pair) < -2:
            found.append("R-4s")
    if index >= 3 and _same_side_beyond(z_scores[index - 3 : index + 1], 1):
        found.append("4-1s")
    if index >= 9 and _same_side_beyond(z_scores[index - 9 : index + 1], 0):
        found.append("10-x")
    return found


def westgard(z_scores: Sequence[float]) -> list[list[str]]:
    """Violated rules per run of the series."""
    return [violations_at(z_scores, i) for i in range(len(z_scores))]


def status(violations: Sequence[str]) -> str:
    """reject when any rejection rule fires, warning on 1-2s alone, else in_control."""
    if any(v in REJECT_RULES for v in violations):
        return "reject"
    return "warning" if violations else "in_control"

"""The result of each `car_copies` row: quantified, below_loq, not_detected or not_measured.

`car_copies` carries `result` and `result_reason` (README, tables): quantified copies at or above
the LOQ; below_loq detected with the estimate kept; not_detected with NULL copies; not_measured
with NULL copies per ug and the reason. Lab homes written before those columns existed have only
the `below_loq` / `below_lod` flags (and 0 copies below the LOQ); their rows are read the way they
were meant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qpcr.analysis import BELOW_LOQ, NOT_DETECTED, NOT_MEASURED, QUANTIFIED

NO_DNA_INPUT = "no DNA input for this sample: add dna_input_ng to the manifest"


def copies_results(copies: pd.DataFrame) -> pd.DataFrame:
    """`car_copies` rows with their `result` and `result_reason` (quantified, below_loq,
    not_detected, not_measured). Rows written before those columns existed, or with them empty,
    get them from the flags: below the LOQ and the LOD is not detected, below the LOQ alone is
    below_loq (no estimate was kept), no copies per ug is not measured."""
    below_loq = copies["below_loq"].fillna(False).astype(bool)
    below_lod = copies["below_lod"].fillna(False).astype(bool)
    has_copies = copies["copies_per_ug"].notna()
    flagged = pd.Series(
        np.select([below_loq & below_lod, below_loq, has_copies],
                  [NOT_DETECTED, BELOW_LOQ, QUANTIFIED], NOT_MEASURED),
        index=copies.index,
    )  # fmt: skip
    no_dna = copies["dna_input_ng"].isna()
    flagged_reason = pd.Series(
        np.where(no_dna, NO_DNA_INPUT, "copies per ug gDNA could not be computed"),
        index=copies.index,
    ).where(flagged == NOT_MEASURED)
    given, reason = (
        copies[c] if c in copies else pd.Series(None, index=copies.index, dtype=object)
        for c in ("result", "result_reason")
    )
    known = given.notna()
    return copies.assign(
        result=given.where(known, flagged), result_reason=reason.where(known, flagged_reason)
    )

"""Synthetic plates with known truth for the bead-array tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cba.curves import logistic
from cba.model import CbaPlate, wells_frame

TRUE = {"IL-6": (40.0, 1.1, 1500.0, 30000.0, 0.8), "IFN-γ": (30.0, 1.0, 2500.0, 25000.0, 1.0)}
SAMPLES_PG_ML = {"S26-0100": 8.0, "S26-0101": 150.0, "S26-0102": 2600.0, "S26-0103": 1.0,
                 "S26-0104": 40000.0}  # fmt: skip


def make_plate(
    levels: list[float] | None = None, noise_cv: float = 0.0, seed: int = 1, dilution: float = 1.0
) -> CbaPlate:
    """Duplicate standards (LEGENDplex C7..C1 + C0 by default) and duplicate samples."""
    rng = np.random.default_rng(seed)
    levels = levels or [10000 / 4**i for i in range(7)] + [0.0]
    rows = []
    for analyte, params in TRUE.items():
        for i, conc in enumerate(levels):
            name = f"C{7 - i}" if conc > 0 else "C0"
            for rep in range(2):
                mfi = float(logistic(np.array(conc), *params)) * rng.lognormal(0, noise_cv)
                rows.append({"well": f"{'AB'[rep]}{i + 1}", "sample_name": name,
                             "type": "standard", "standard_level": name, "analyte": analyte,
                             "analyte_as_exported": analyte, "mfi": mfi, "standard_pg_ml": conc,
                             "sample_dilution": 1.0, "reported_concentration": ""})  # fmt: skip
        for j, (sample, conc) in enumerate(SAMPLES_PG_ML.items()):
            for rep in range(2):
                mfi = float(logistic(np.array(conc / dilution), *params))
                mfi *= rng.lognormal(0, noise_cv)
                rows.append({"well": f"{'CD'[rep]}{j + 1}", "sample_name": sample,
                             "type": "sample", "standard_level": "", "analyte": analyte,
                             "analyte_as_exported": analyte, "mfi": mfi,
                             "standard_pg_ml": float("nan"), "sample_dilution": dilution,
                             "reported_concentration": ""})  # fmt: skip
    return CbaPlate("test", "test:plate", wells_frame(rows, ""))


def by_sample(frame: pd.DataFrame, analyte: str) -> pd.DataFrame:
    return frame[frame["analyte"] == analyte].set_index("sample_name")

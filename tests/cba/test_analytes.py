from __future__ import annotations

import pytest

from cba.analytes import canonical_analyte, lookup_analyte
from cba.errors import UnknownAnalyteError


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("IFN-g", "IFN-γ"), ("IFNγ", "IFN-γ"), ("IFN-gamma", "IFN-γ"), ("IFNG", "IFN-γ"),
        ("hIFN-γ", "IFN-γ"), ("IFN-g (B2)", "IFN-γ"), ("TNF-a", "TNF"), ("TNFα", "TNF"),
        ("IL-1b", "IL-1β"), ("CCL2", "MCP-1"), ("CCL3", "MIP-1α"), ("CCL4", "MIP-1β"),
        ("CXCL10", "IP-10"), ("sIL-2Ra", "sIL-2Rα"), ("IL2RA", "sIL-2Rα"), ("sCD25", "sIL-2Rα"),
        ("gp130", "sgp130"), ("IL6", "IL-6"), ("IL-10 (B3)", "IL-10"), ("GM-CSF", "GM-CSF"),
        ("IL-1RA", "IL-1RA"), ("sIL-6R", "sIL-6R"), ("IL-17A", "IL-17A"), ("IL-13", "IL-13"),
    ],
)  # fmt: skip
def test_spellings_map_to_canonical_names(spelling: str, canonical: str) -> None:
    assert canonical_analyte(spelling) == canonical


def test_unknown_analyte_raises_listing_the_name() -> None:
    with pytest.raises(UnknownAnalyteError, match="'HPV6'"):
        canonical_analyte("HPV6", "plate.csv")
    assert lookup_analyte("alpha") is None

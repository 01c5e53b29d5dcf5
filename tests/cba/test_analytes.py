from __future__ import annotations

import pytest

from cba.analytes import (
    CANONICAL,
    VOCABULARY,
    ambiguous_spellings,
    canonical_analyte,
    lookup_analyte,
    spelling_key,
)
from cba.errors import UnknownAnalyteError
from cba.settings import CbaSettings

INVITROGEN_30PLEX_AS_EXPORTED = {
    "FGF": "FGF-2", "IL1b": "IL-1β", "G-CSF": "G-CSF", "IL10": "IL-10", "IL13": "IL-13",
    "IL6": "IL-6", "IL12": "IL-12", "RANTES": "RANTES", "EOTAXIN": "Eotaxin", "IL17": "IL-17A",
    "MIP1a": "MIP-1α", "GM-CSF": "GM-CSF", "MIP1b": "MIP-1β", "MCP1": "MCP-1", "IL15": "IL-15",
    "EGF": "EGF", "IL5": "IL-5", "HGF": "HGF", "VEGF": "VEGF-A", "IFNg": "IFN-γ", "IL4": "IL-4",
    "IFNa": "IFN-α", "IL1RA": "IL-1RA", "IL2": "IL-2", "IL7": "IL-7", "IP10": "IP-10",
    "IL2R": "sIL-2Rα", "MIG": "MIG", "IL8": "IL-8", "TNFa": "TNF",
}  # fmt: skip
"""The issue's 30-plex human cytokine panel (Invitrogen LHC6003M) as its xPONENT export names it."""


@pytest.mark.parametrize(("exported", "canonical"), INVITROGEN_30PLEX_AS_EXPORTED.items())
def test_every_analyte_of_the_30plex_resolves(exported: str, canonical: str) -> None:
    assert lookup_analyte(exported) == canonical


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("IFN-g", "IFN-γ"), ("IFNγ", "IFN-γ"), ("IFN-gamma", "IFN-γ"), ("IFNG", "IFN-γ"),
        ("hIFN-γ", "IFN-γ"), ("IFN-g (B2)", "IFN-γ"), ("TNF-a", "TNF"), ("TNFα", "TNF"),
        ("IL-1b", "IL-1β"), ("CCL2", "MCP-1"), ("CCL3", "MIP-1α"), ("MIP-1a", "MIP-1α"),
        ("CCL4", "MIP-1β"), ("CXCL10", "IP-10"), ("sIL-2Ra", "sIL-2Rα"), ("IL2RA", "sIL-2Rα"),
        ("IL-2 Ra", "sIL-2Rα"), ("sCD25", "sIL-2Rα"), ("IL2R", "sIL-2Rα"), ("gp130", "sgp130"),
        ("sgp130", "sgp130"), ("sIL-6R", "sIL-6R"), ("IL6", "IL-6"), ("IL-10 (B3)", "IL-10"),
        ("IL-1RA", "IL-1RA"), ("IL-1ra", "IL-1RA"), ("G-CSF", "G-CSF"), ("CCL5", "RANTES"),
        ("CCL11", "Eotaxin"), ("CXCL9", "MIG"), ("MIG/CXCL9", "MIG"), ("IL-8/CXCL8", "IL-8"),
        ("IL-12 (p70)", "IL-12p70"), ("IL-12P70", "IL-12p70"), ("IL-12(p40)", "IL-12p40"),
        ("MCP-1(MCAF)", "MCP-1"), ("FGF basic", "FGF-2"), ("IL-17E/IL-25", "IL-25"),
        ("PDGF-AB/BB", "PDGF-AB/BB"), ("b-NGF", "β-NGF"), ("SCGF-b", "SCGF-β"), ("TNFb", "LT-α"),
        ("GROa", "GRO-α"), ("IFNa2", "IFN-α2"), ("IFN-λ2/3", "IFN-λ2/3"), ("IL-29", "IFN-λ1"),
        ("sTNF RI", "sTNF-RI"), ("Granzyme B", "Granzyme B"), ("Flt-3 Ligand", "Flt-3L"),
        ("Human Angiogenin Flex Set", "Angiogenin"), ("Human IL-6 Flex Set (A7)", "IL-6"),
        ("IL-1 alpha", "IL-1α"), ("Gro-alpha", "GRO-α"), ("NGF beta", "β-NGF"), ("TNF-R2", "sTNF-RII"),
    ],
)  # fmt: skip
def test_vendor_spellings_map_to_canonical_names(spelling: str, canonical: str) -> None:
    assert canonical_analyte(spelling) == canonical


def test_the_vocabulary_covers_the_commercial_panels() -> None:
    assert len(CANONICAL) >= 100
    assert sum(len(spellings) for spellings in CANONICAL.values()) >= 250


def test_no_spelling_names_two_analytes_and_canonical_names_are_unique() -> None:
    assert ambiguous_spellings(CANONICAL) == {}
    keys = [spelling_key(name) for name in CANONICAL]
    assert len(set(keys)) == len(keys)
    for canonical in CANONICAL:
        assert lookup_analyte(canonical) == canonical


def test_a_clash_between_two_analytes_is_found() -> None:
    clashing = {"IL-12p70": ("IL-12",), "IL-12": ("IL12",)}
    assert ambiguous_spellings(clashing) == {"il12": {"IL-12p70", "IL-12"}}


def test_bare_names_that_vendors_use_for_different_assays_stay_apart() -> None:
    assert {lookup_analyte(n) for n in ("IL-12", "IL-12p70", "IL-12p40")} == {
        "IL-12", "IL-12p70", "IL-12p40",
    }  # fmt: skip
    assert lookup_analyte("IFN-alpha") == "IFN-α" != lookup_analyte("IFN-a2")
    assert lookup_analyte("IL-17A/F") == "IL-17A/F" != lookup_analyte("IL-17A")


def test_unknown_analyte_raises_listing_the_name_and_the_cartflow_toml_way() -> None:
    with pytest.raises(UnknownAnalyteError, match="'HPV6'") as caught:
        canonical_analyte("HPV6", "plate.csv")
    assert '[cba] analyte_aliases = { "HPV6" = ' in str(caught.value)
    assert "analytes.py" not in str(caught.value)
    assert lookup_analyte("alpha") is None


def test_lab_aliases_extend_the_vocabulary() -> None:
    vocabulary = CbaSettings.from_dict(
        {"analyte_aliases": {"My-IL6": "IL-6", "Soluble CD25 (lab)": "IL2R"}}
    ).vocabulary
    assert vocabulary.lookup("MY_IL6") == "IL-6"
    assert vocabulary.lookup("Soluble CD25 (lab)") == "sIL-2Rα"
    assert VOCABULARY.lookup("My-IL6") is None  # the shipped vocabulary is untouched


def test_an_alias_to_an_unknown_analyte_is_a_settings_error_with_did_you_mean() -> None:
    with pytest.raises(ValueError, match=r"'My-IL6' = 'IL-66' names no known analyte; did you "
                       r"mean 'IL-6'\?"):  # fmt: skip
        CbaSettings.from_dict({"analyte_aliases": {"My-IL6": "IL-66"}})
    with pytest.raises(ValueError, match="'IL-8' already names 'IL-8'; it cannot also mean"):
        CbaSettings(analyte_aliases={"IL-8": "IL-6"})
    with pytest.raises(ValueError, match="must be a table of names"):
        CbaSettings.from_dict({"analyte_aliases": ["IL-6"]})

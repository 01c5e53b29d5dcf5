"""One vocabulary of analyte names: the spellings kits and instruments use, as canonical names.

`CANONICAL` is the data table: one row per analyte, its canonical name and the spellings the
vendors' panels and export software write. It covers the human cytokine, chemokine, growth factor
and soluble receptor panels of Milliplex (HCYTA-60K/HCYTMAG-60K 41/48-plex, HSTCMAG high-sensitivity
T cell, cytokine panels II/III), Bio-Plex Pro (human cytokine 27- and 48-plex, inflammation panel 1),
Invitrogen/ProcartaPlex (cytokine human 30-plex, human 45- and 65-plex), LEGENDplex (human
inflammation, cytokine release syndrome, Th cytokine, anti-virus response, CD8/NK, proinflammatory
chemokine panels) and BD CBA (Th1/Th2/Th17, inflammatory cytokine, chemokine kits and flex sets).

A lab extends it without touching this file: `[cba] analyte_aliases = { "My-IL6" = "IL-6" }` in
cartflow.toml (`Vocabulary.with_aliases`).

Lookup ignores case, spaces, dashes, dots, underscores and brackets, spells Greek letters out,
drops a leading species prefix (`h`, `hu`, `human`), BD's `Flex Set` and a trailing bead ID in
parentheses (`IL-6 (A7)`), reads a trailing a/b/g as alpha/beta/gamma (`MIP-1a`), and accepts a pair of spellings
joined by `/` when both name the same analyte (`IL-8/CXCL8`). So `IFN-g`, `IFNγ`, `IFN-gamma`,
`IFNG` and `hIFN-γ (B2)` all become `IFN-γ`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cba.errors import UnknownAnalyteError

# fmt: off
CANONICAL: dict[str, tuple[str, ...]] = {
    # interleukins
    "IL-1α": ("IL-1alpha", "IL1A", "IL-1a", "IL-1F1"),
    "IL-1β": ("IL-1beta", "IL1B", "IL-1b", "IL-1F2"),
    "IL-1RA": ("IL-1Ra", "IL1RN", "IL-1 receptor antagonist", "IL-1F3"),
    "IL-2": ("IL2",),
    "IL-3": ("IL3",),
    "IL-4": ("IL4",),
    "IL-5": ("IL5",),
    "IL-6": ("IL6",),
    "IL-7": ("IL7",),
    "IL-8": ("IL8", "CXCL8"),
    "IL-9": ("IL9",),
    "IL-10": ("IL10",),
    "IL-11": ("IL11",),
    "IL-12": ("IL12", "IL-12 (p40/p70)", "IL-12 p40/p70"),  # assays that see both forms
    "IL-12p40": ("IL12p40", "IL-12 (p40)", "IL-12/IL-23p40", "IL-12/23 p40", "IL12B"),
    "IL-12p70": ("IL12p70", "IL-12 (p70)"),
    "IL-13": ("IL13",),
    "IL-15": ("IL15",),
    "IL-16": ("IL16",),
    "IL-17A": ("IL17A", "IL-17", "IL17", "CTLA-8"),
    "IL-17A/F": ("IL-17A/IL-17F", "IL17AF"),
    "IL-17F": ("IL17F",),
    "IL-18": ("IL18", "IL-1F4"),
    "IL-19": ("IL19",),
    "IL-20": ("IL20",),
    "IL-21": ("IL21",),
    "IL-22": ("IL22",),
    "IL-23": ("IL23",),
    "IL-25": ("IL25", "IL-17E", "IL17E"),
    "IL-26": ("IL26",),
    "IL-27": ("IL27", "IL-27 (p28)", "IL-27p28"),
    "IL-31": ("IL31",),
    "IL-32": ("IL32",),
    "IL-33": ("IL33",),
    "IL-34": ("IL34",),
    "IL-35": ("IL35",),
    # interferons
    "IFN-α": ("IFN-alpha", "IFNa", "IFN alpha", "pan IFN-alpha"),  # Invitrogen's pan-IFN-α bead
    "IFN-α2": ("IFN-alpha2", "IFNA2", "IFN-a2", "IFN-α2a", "IFN-alpha 2a"),
    "IFN-β": ("IFN-beta", "IFNB", "IFNB1", "IFN-b"),
    "IFN-γ": ("IFN-gamma", "IFNG", "IFN-g", "interferon gamma"),
    "IFN-λ1": ("IFN-lambda1", "IL-29", "IL29", "IFNL1"),
    "IFN-λ2": ("IFN-lambda2", "IL-28A", "IL28A", "IFNL2"),
    "IFN-λ2/3": ("IFN-lambda2/3", "IL-28A/B", "IL28AB"),
    # TNF superfamily and its receptors
    "TNF": ("TNF-alpha", "TNF-a", "TNFA", "TNFα", "TNFSF2"),
    "LT-α": ("TNF-beta", "TNF-b", "LTA", "lymphotoxin alpha", "TNFSF1"),
    "sCD40L": ("CD40L", "CD40 ligand", "sCD40 ligand", "CD154", "sCD154", "TNFSF5"),
    "BAFF": ("BLyS", "TNFSF13B", "BAFF/TNFSF13B"),
    "APRIL": ("TNFSF13", "APRIL/TNFSF13"),
    "LIGHT": ("TNFSF14", "LIGHT/TNFSF14"),
    "TWEAK": ("TNFSF12", "TWEAK/TNFSF12"),
    "TRAIL": ("TNFSF10", "TRAIL/TNFSF10", "Apo2L"),
    "RANKL": ("TNFSF11", "sRANKL", "OPGL"),
    "sFas": ("Fas", "CD95", "sCD95", "TNFRSF6", "FAS"),
    "sFasL": ("FasL", "Fas ligand", "CD178", "TNFSF6"),
    "sTNF-RI": ("sTNFR1", "sTNF-R1", "TNFRI", "TNF-RI", "TNF RI", "TNFR1", "TNFRSF1A", "sTNFRI"),
    "sTNF-RII": (
        "sTNFR2", "sTNF-R2", "TNFRII", "TNF-RII", "TNF RII", "TNFR2", "TNFRSF1B", "sTNFRII",
    ),
    "sCD30": ("CD30", "TNFRSF8", "sCD30/TNFRSF8"),
    "sCD137": ("CD137", "4-1BB", "s4-1BB", "TNFRSF9"),
    # soluble receptors and other soluble markers
    "sIL-2Rα": (
        "sIL-2Ralpha", "sIL-2Ra", "sIL2RA", "IL2RA", "IL-2Ra", "IL-2Rα", "IL2R", "IL-2R",
        "sIL-2R", "sCD25", "CD25",
    ),
    "sIL-6R": ("sIL-6Ralpha", "sIL-6Ra", "IL6R", "IL-6R", "IL-6Ra", "sCD126", "CD126"),
    "sgp130": ("gp130", "sIL-6ST", "IL6ST", "sIL-6Rbeta", "sIL-6Rβ", "CD130"),
    "sIL-1RI": ("IL-1RI", "IL1R1", "sIL-1R1"),
    "sIL-1RII": ("IL-1RII", "IL1R2", "sIL-1R2"),
    "sIL-4R": ("IL-4R", "IL4R", "sIL-4Ra", "CD124"),
    "sST2": ("ST2", "IL1RL1", "IL-33R", "sIL-33R"),
    "sCD163": ("CD163",),
    "sCD14": ("CD14",),
    "sICAM-1": ("ICAM-1", "ICAM1", "CD54", "sCD54"),
    "sVCAM-1": ("VCAM-1", "VCAM1", "CD106", "sCD106"),
    "sE-selectin": ("E-selectin", "SELE", "CD62E", "sCD62E"),
    "sP-selectin": ("P-selectin", "SELP", "CD62P", "sCD62P"),
    "Granzyme A": ("GZMA", "GranzymeA", "GrA"),
    "Granzyme B": ("GZMB", "GranzymeB", "GrB"),
    "Perforin": ("PRF1",),
    "Granulysin": ("GNLY",),
    "Ferritin": ("FTL",),
    "CRP": ("C-reactive protein",),
    "Chitinase-3-like 1": ("CHI3L1", "YKL-40", "Chitinase 3-like 1"),
    "Pentraxin-3": ("PTX3", "Pentraxin 3"),
    "Osteopontin": ("OPN", "SPP1"),
    "Osteocalcin": ("BGLAP",),
    "MMP-1": ("MMP1",),
    "MMP-2": ("MMP2",),
    "MMP-3": ("MMP3",),
    "MMP-9": ("MMP9",),
    "TSLP": (),
    "MIF": (),
    # CC chemokines
    "MCP-1": ("CCL2", "MCP1", "MCAF", "MCP-1 (MCAF)"),
    "MCP-2": ("CCL8", "MCP2"),
    "MCP-3": ("CCL7", "MCP3"),
    "MCP-4": ("CCL13", "MCP4"),
    "MIP-1α": ("MIP-1alpha", "MIP-1a", "CCL3"),
    "MIP-1β": ("MIP-1beta", "MIP-1b", "CCL4"),
    "MIP-1δ": ("MIP-1delta", "MIP-1d", "CCL15"),
    "MIP-3α": ("MIP-3alpha", "MIP-3a", "CCL20", "LARC"),
    "MIP-3β": ("MIP-3beta", "MIP-3b", "CCL19", "ELC"),
    "RANTES": ("CCL5",),
    "Eotaxin": ("CCL11", "Eotaxin-1"),
    "Eotaxin-2": ("CCL24", "MPIF-2"),
    "Eotaxin-3": ("CCL26",),
    "MDC": ("CCL22",),
    "TARC": ("CCL17",),
    "I-309": ("CCL1", "I309"),
    "6Ckine": ("CCL21", "SLC"),
    "CTACK": ("CCL27",),
    # CXC and CX3C chemokines
    "GRO-α": ("GRO-alpha", "GROa", "GRO-a", "CXCL1"),
    "ENA-78": ("CXCL5", "ENA78"),
    "GCP-2": ("CXCL6", "GCP2"),
    "NAP-2": ("CXCL7", "PPBP"),
    "MIG": ("CXCL9",),
    "IP-10": ("CXCL10", "IP10"),
    "I-TAC": ("CXCL11", "ITAC"),
    "SDF-1α": ("SDF-1alpha", "SDF-1a", "CXCL12", "CXCL12a"),
    "BCA-1": ("CXCL13", "BLC", "BCA1"),
    "CXCL16": (),
    "Fractalkine": ("CX3CL1",),
    # colony-stimulating and growth factors
    "G-CSF": ("CSF3", "GCSF"),
    "GM-CSF": ("CSF2", "GMCSF"),
    "M-CSF": ("CSF1", "MCSF"),
    "EGF": (),
    "FGF-2": ("FGF-basic", "FGF basic", "basic FGF", "bFGF", "FGF", "FGF2", "FGFb"),
    "HGF": (),
    "VEGF-A": ("VEGF", "VEGFA"),
    "VEGF-C": ("VEGFC",),
    "VEGF-D": ("VEGFD",),
    "PDGF-AA": ("PDGFAA",),
    "PDGF-AB/BB": ("PDGF-AB/PDGF-BB", "PDGFABBB"),
    "PDGF-BB": ("PDGFBB",),
    "PlGF": ("PlGF-1", "PGF", "placental growth factor"),
    "TGF-α": ("TGF-alpha", "TGFa", "TGFA"),
    "TGF-β1": ("TGF-beta1", "TGFb1", "TGFB1"),
    "TGF-β2": ("TGF-beta2", "TGFb2", "TGFB2"),
    "TGF-β3": ("TGF-beta3", "TGFb3", "TGFB3"),
    "SCF": ("KITLG", "c-Kit ligand", "stem cell factor"),
    "Flt-3L": ("Flt-3 ligand", "FLT3LG", "Flt3L", "Flt3 ligand"),
    "LIF": (),
    "β-NGF": ("NGF-beta", "NGF-β", "beta-NGF", "b-NGF", "NGF"),
    "BDNF": (),
    "TPO": ("thrombopoietin", "THPO"),
    "SCGF-β": ("SCGF-beta", "SCGF-b", "SCGF", "CLEC11A"),
    "Angiogenin": (),
    "EPO": ("erythropoietin",),
}
# fmt: on
"""Canonical name -> the other spellings vendors export. Add a spelling here (or, for one lab, in
cartflow.toml's `[cba] analyte_aliases`), never in a reader."""

_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "λ": "lambda"}
_SHORT_GREEK = re.compile(r"(?<=[a-z0-9])(a|b|g|d)(?=\d*$)")
_SHORT_WORDS = {"a": "alpha", "b": "beta", "g": "gamma", "d": "delta"}
_BEAD_ID = re.compile(r"\s*\(\s*[A-H]\d{1,2}\s*\)\s*$")
"""A LEGENDplex / CBA flex-set bead position after the name, `IL-6 (A7)`; `(P70)` is no bead."""
_SPECIES = re.compile(
    r"^(?:human(?=.)|(?:hu|h)(?=il|ifn|tnf|gm|mcp|mip|ip10|scd|sil|sgp|gp130|ccl|cxcl|vegf|fgf"
    r"|egf|gcsf|mcsf|eotaxin|rantes|granzyme))"
)
_FLEX_SET = re.compile(r"flexset$")
"""BD CBA names its single-analyte kits `Human IL-6 Flex Set`."""


def spelling_key(name: str) -> str:
    """Spelling-insensitive lookup key: `hIFN-γ (B2)` -> `ifngamma`."""
    text = _BEAD_ID.sub("", name.strip())
    for letter, word in _GREEK.items():
        text = text.replace(letter, word)
    text = re.sub(r"[\s\-_.·/()\[\],+]", "", text.lower())
    return _SPECIES.sub("", _FLEX_SET.sub("", text))


def _expand_short_greek(key: str) -> str:
    """`ifng` -> `ifngamma`, `il1b` -> `il1beta`, `mip1a` -> `mip1alpha` (letter at the end)."""
    return _SHORT_GREEK.sub(lambda m: _SHORT_WORDS[m.group(1)], key)


def _keys(spelling: str) -> set[str]:
    key = spelling_key(spelling)
    return {key, _expand_short_greek(key)}


def ambiguous_spellings(table: Mapping[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Lookup keys that two or more canonical names claim; empty for a sound table."""
    claims: dict[str, set[str]] = {}
    for canonical, spellings in table.items():
        for spelling in (canonical, *spellings):
            for key in _keys(spelling):
                claims.setdefault(key, set()).add(canonical)
    return {key: names for key, names in claims.items() if len(names) > 1}


@dataclass(frozen=True)
class Vocabulary:
    """Spelling key -> canonical name, with the canonical names for suggestions."""

    index: Mapping[str, str]
    canonical_names: tuple[str, ...]

    @classmethod
    def from_table(cls, table: Mapping[str, tuple[str, ...]]) -> Vocabulary:
        clashes = ambiguous_spellings(table)
        if clashes:
            raise ValueError(f"analyte spellings claimed by two canonical names: {clashes}")
        index = {
            key: canonical
            for canonical, spellings in table.items()
            for spelling in (canonical, *spellings)
            for key in _keys(spelling)
        }
        return cls(index, tuple(table))

    def lookup(self, name: str) -> str | None:
        """The canonical name of a spelling, or None when the vocabulary does not know it."""
        found = self._lookup_whole(name)
        if found is None and "/" in name:
            parts = {self._lookup_whole(part) for part in name.split("/") if part.strip()}
            found = parts.pop() if len(parts) == 1 else None
        return found

    def _lookup_whole(self, name: str) -> str | None:
        key = spelling_key(name)
        return self.index.get(key) or self.index.get(_expand_short_greek(key))

    def suggestion(self, name: str) -> str | None:
        """The closest canonical name, for a "did you mean" after an unknown name."""
        by_key = {spelling_key(c): c for c in self.canonical_names}
        close = difflib.get_close_matches(spelling_key(name), list(by_key), n=1, cutoff=0.85)
        return by_key[close[0]] if close else None

    def with_aliases(self, aliases: Mapping[str, str]) -> Vocabulary:
        """This vocabulary plus a lab's spellings (`[cba] analyte_aliases`).

        Raises ValueError naming the alias when its target is no analyte the vocabulary knows,
        with the closest canonical name, or when it would re-map a spelling that already names
        another analyte.
        """
        index = dict(self.index)
        for alias, target in aliases.items():
            canonical = self.lookup(target)
            if canonical is None:
                hint = self.suggestion(target)
                did_you_mean = f"; did you mean {hint!r}?" if hint else ""
                raise ValueError(
                    f"analyte_aliases: {alias!r} = {target!r} names no known analyte"
                    f"{did_you_mean} (the value must name an analyte the vocabulary knows, "
                    "e.g. 'IL-6' or 'sIL-2Rα')"
                )
            existing = self.lookup(alias)
            if existing is not None and existing != canonical:
                raise ValueError(
                    f"analyte_aliases: {alias!r} already names {existing!r}; it cannot "
                    f"also mean {canonical!r}"
                )
            for key in _keys(alias):
                index[key] = canonical
        return Vocabulary(index, self.canonical_names)


VOCABULARY = Vocabulary.from_table(CANONICAL)
"""The shipped vocabulary, without any lab's aliases."""


def lookup_analyte(name: str, vocabulary: Vocabulary = VOCABULARY) -> str | None:
    """The canonical name of an analyte spelling, or None when the vocabulary does not know it."""
    return vocabulary.lookup(name)


def canonical_analyte(name: str, source: str = "") -> str:
    """The canonical name; raises `UnknownAnalyteError` listing the name when it is unknown."""
    canonical = lookup_analyte(name)
    if canonical is None:
        raise UnknownAnalyteError([name], source)
    return canonical

"""One vocabulary of analyte names: the spellings kits and instruments use, as canonical names.

Lookup ignores case, spaces, dashes, dots and underscores, spells Greek letters out, and drops a
leading species prefix (`h`, `hu`, `human`) and a trailing LEGENDplex bead ID in parentheses
(`IL-6 (A7)`), so `IFN-g`, `IFNγ`, `IFN-gamma`, `IFNG` and `hIFN-γ (B2)` all become `IFN-γ`.
"""

from __future__ import annotations

import re

from cba.errors import UnknownAnalyteError

CANONICAL: dict[str, tuple[str, ...]] = {
    "IFN-γ": ("IFN-gamma", "IFNG", "IFN-g", "interferon gamma"),
    "IFN-α2": ("IFN-alpha2", "IFNA2", "IFN-a2", "IFN-alpha"),
    "IL-1β": ("IL-1beta", "IL1B", "IL-1b"),
    "IL-1α": ("IL-1alpha", "IL1A", "IL-1a"),
    "IL-1RA": ("IL-1Ra", "IL1RN", "IL-1 receptor antagonist"),
    "IL-2": ("IL2",),
    "IL-4": ("IL4",),
    "IL-5": ("IL5",),
    "IL-6": ("IL6",),
    "IL-8": ("IL8", "CXCL8"),
    "IL-9": ("IL9",),
    "IL-10": ("IL10",),
    "IL-12p70": ("IL12p70", "IL-12"),
    "IL-13": ("IL13",),
    "IL-15": ("IL15",),
    "IL-17A": ("IL17A", "IL-17"),
    "IL-17F": ("IL17F",),
    "IL-18": ("IL18",),
    "IL-21": ("IL21",),
    "IL-22": ("IL22",),
    "IL-23": ("IL23",),
    "IL-33": ("IL33",),
    "TNF": ("TNF-alpha", "TNF-a", "TNFA", "TNFα"),
    "LT-α": ("TNF-beta", "LTA", "lymphotoxin alpha"),
    "GM-CSF": ("CSF2", "GMCSF"),
    "sIL-2Rα": ("sIL-2Ralpha", "sIL-2Ra", "sIL2RA", "IL2RA", "sCD25", "CD25", "IL-2Ra"),
    "sgp130": ("gp130", "sIL-6ST", "IL6ST", "sIL-6Rbeta"),
    "sIL-6R": ("sIL-6Ralpha", "sIL-6Ra", "IL6R", "sCD126"),
    "MCP-1": ("CCL2", "MCP1"),
    "MIP-1α": ("MIP-1alpha", "MIP-1a", "CCL3"),
    "MIP-1β": ("MIP-1beta", "MIP-1b", "CCL4"),
    "IP-10": ("CXCL10", "IP10"),
    "Granzyme B": ("GZMB", "GranzymeB", "GrB"),
    "Perforin": ("PRF1",),
    "Ferritin": ("FTL",),
    "sFas": ("Fas", "CD95"),
    "sFasL": ("FasL", "CD178"),
}
"""Canonical name -> other spellings. Add a spelling here, never in a reader."""

_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta"}
_SHORT_GREEK = re.compile(r"(?<=[a-z0-9])(a|b|g)(?=\d*$)")
_BEAD_ID = re.compile(r"\s*\(\s*[A-Z]\d{1,2}\s*\)\s*$")
_SPECIES = re.compile(r"^(?:human|hu|h)(?=il|ifn|tnf|gm|mcp|mip|ip|scd|sil|sgp|gp)")


def _key(name: str) -> str:
    """Spelling-insensitive lookup key: `hIFN-γ (B2)` -> `ifngamma`."""
    text = _BEAD_ID.sub("", name.strip())
    for letter, word in _GREEK.items():
        text = text.replace(letter, word)
    text = re.sub(r"[\s\-_.·/]", "", text.lower())
    text = _SPECIES.sub("", text)
    return text


def _expand_short_greek(key: str) -> str:
    """`ifng` -> `ifngamma`, `il1b` -> `il1beta`, `mip1a` -> `mip1alpha` (letter at the end)."""
    words = {"a": "alpha", "b": "beta", "g": "gamma"}
    return _SHORT_GREEK.sub(lambda m: words[m.group(1)], key)


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for canonical, spellings in CANONICAL.items():
        for spelling in (canonical, *spellings):
            for key in {_key(spelling), _expand_short_greek(_key(spelling))}:
                index.setdefault(key, canonical)
    return index


_INDEX = _build_index()


def lookup_analyte(name: str) -> str | None:
    """The canonical name of an analyte spelling, or None when the vocabulary does not know it."""
    key = _key(name)
    return _INDEX.get(key) or _INDEX.get(_expand_short_greek(key))


def canonical_analyte(name: str, source: str = "") -> str:
    """The canonical name; raises `UnknownAnalyteError` listing the name when it is unknown."""
    canonical = lookup_analyte(name)
    if canonical is None:
        raise UnknownAnalyteError([name], source)
    return canonical

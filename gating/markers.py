"""Channels are matched by marker name, not by detector, so one template serves cytometers whose
detectors are named differently (`PE-A` on a BD, `FL2-A` on a CytoFLEX).

A channel's marker is read from `$PnS` ("CD3 PerCP-Cy5.5", "FMC63", "L/D") and mapped onto the
canonical name used in templates through an alias table: first the whole label, then each word of
it. Scatter channels (FSC-*, SSC-*) and Time keep their `$PnN`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from gating.fcs import Channel

DEFAULT_MARKER_ALIASES: dict[str, tuple[str, ...]] = {
    "CAR": ("CAR", "FMC63", "CD19-CAR", "CD19CAR", "CAR19", "anti-FMC63", "CAR-T", "CD19 CAR"),
    "Viability": ("Viability", "L/D", "Live/Dead", "LiveDead", "Live Dead", "Zombie", "Zombie Aqua",
                  "FVS510", "FVS", "7-AAD", "7AAD", "DAPI", "PI", "Aqua", "Vivid", "LD"),
    "CD3": ("CD3",),
    "CD4": ("CD4",),
    "CD8": ("CD8", "CD8a", "CD8A", "CD8b"),
    "CD19": ("CD19",),
    "CD20": ("CD20",),
    "CD45": ("CD45",),
    "CD45RA": ("CD45RA",),
    "CD45RO": ("CD45RO",),
    "CCR7": ("CCR7", "CD197"),
    "PD-1": ("PD-1", "PD1", "CD279"),
    "LAG-3": ("LAG-3", "LAG3", "CD223"),
    "TIM-3": ("TIM-3", "TIM3", "CD366", "HAVCR2"),
    "CD14": ("CD14",),
    "CD16": ("CD16",),
    "CD56": ("CD56",),
    "CD27": ("CD27",),
    "CD28": ("CD28",),
    "CD127": ("CD127",),
}  # fmt: skip
"""Canonical marker -> spellings seen in `$PnS`. Settings may add spellings."""

SCATTER_PREFIXES = ("FSC", "SSC", "FS ", "SS ", "FS-", "SS-")


def _key(label: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", label.upper())


def alias_lookup(aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Normalised spelling -> canonical marker (case, spaces, dashes and slashes ignored)."""
    lookup = {}
    for canonical, spellings in aliases.items():
        for spelling in (canonical, *spellings):
            lookup[_key(spelling)] = canonical
    return lookup


def is_scatter_or_time(channel: Channel) -> bool:
    name = channel.pnn.upper()
    return name.startswith(SCATTER_PREFIXES) or name in ("TIME", "HDR-T")


def marker_of(channel: Channel, lookup: Mapping[str, str]) -> str:
    """The canonical marker of a channel; the label as written when no alias matches, and the
    detector name (`$PnN`) for scatter, time and unlabelled channels."""
    label = channel.pns.strip()
    if is_scatter_or_time(channel) or not label:
        return channel.pnn
    whole = lookup.get(_key(label))
    if whole:
        return whole
    for word in re.split(r"[\s_]+", label):
        canonical = lookup.get(_key(word))
        if canonical:
            return canonical
    return label


def markers_of(channels: Sequence[Channel], lookup: Mapping[str, str]) -> list[str]:
    """One marker name per channel, in channel order."""
    return [marker_of(c, lookup) for c in channels]


def recognised_markers(channels: Sequence[Channel], lookup: Mapping[str, str]) -> set[str]:
    """Canonical markers (from the alias table) present among the fluorescence channels."""
    canonical = set(lookup.values())
    return {m for m in markers_of(channels, lookup) if m in canonical}

"""Recognise a bead-array export by its content and read it into a `CbaPlate`.

A registry, as the qPCR readers: each vendor module has `FORMATS`, `sniff(head)` and
`read(path, fmt, vocabulary, panel)`; `sniff` asks them in `_READERS`' order and the format it
names is handed on to `read_format`, so a file is detected once. A new vendor export is a new
module and its line in `_READERS`.

| format | module | recognised by |
|---|---|---|
| bead-fcs | bead_fcs | an FCS file named (or `$FIL`-named) by the bead-array convention, e.g. K2-C07-A7 |
| bead-fcs-plate | bead_fcs | a folder or zip of such FCS files |
| luminex-xponent-csv | luminex | a `"Program","xPONENT"` line in the header block |
| luminex-intelliflex-csv | luminex | a first row with MODEL NAME, WELL LOCATION and `Rnn: RP1 MEDIAN` columns |
| fcap-array-csv / -xlsx | tables | a wells table (well, sample, analyte MFI columns), "FCAP" in the preamble |
| legendplex-csv / -xlsx | tables | a wells table, "LEGENDplex" in the preamble/sheets or bead-ID headers |
| <vendor>-concentrations-<csv/xlsx> | tables | the same tables with concentrations but no MFI |

The extension is never trusted. qPCR exports and sample manifests carry no well + analyte MFI
table, no xPONENT/INTELLIFLEX signature and no bead-named FCS, so they are not claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from cba.analytes import VOCABULARY, Vocabulary
from cba.errors import CbaFormatError
from cba.model import CbaPlate
from cba.panels import BeadPanel
from cba.readers import bead_fcs, luminex, tables
from cba.readers.common import read_head

__all__ = ["FORMATS", "read_format", "read_plate", "sniff"]

_READERS: tuple[ModuleType, ...] = (bead_fcs, luminex, tables)
"""In the order they are asked: the tables reader claims any wells table with a vendor mark."""
FORMATS: tuple[str, ...] = tuple(name for reader in _READERS for name in reader.FORMATS)
"""Every format name `sniff` may return."""

_READ_BY_FORMAT: dict[str, Callable[..., CbaPlate]] = {
    name: reader.read for reader in _READERS for name in reader.FORMATS
}


def sniff(path: Path | str) -> str | None:
    """The bead-array format of a file or folder, or None; reads only the head of a file."""
    head = read_head(Path(path))
    return next((fmt for reader in _READERS if (fmt := reader.sniff(head))), None)


def read_format(
    path: Path | str,
    fmt: str,
    *,
    vocabulary: Vocabulary = VOCABULARY,
    panel: BeadPanel | None = None,
) -> CbaPlate:
    """Read a bead-array export of the format `fmt` (as `sniff` named it); `CbaFormatError`
    saying why not.

    Analyte names are looked up in `vocabulary` (the lab's is `CbaSettings.vocabulary`); a name
    it does not know is kept as exported with `analyte_recognised` False and a plate warning.
    `panel` is needed for raw FCS files unless a `panel.json` lies beside them.
    """
    if fmt not in _READ_BY_FORMAT:
        raise ValueError(f"{fmt!r} is not a bead-array format; known: {', '.join(FORMATS)}")
    return _READ_BY_FORMAT[fmt](Path(path), fmt, vocabulary, panel)


def read_plate(
    path: Path | str, *, vocabulary: Vocabulary = VOCABULARY, panel: BeadPanel | None = None
) -> CbaPlate:
    """Read any supported bead-array export, detected by content (`sniff`, then `read_format`)."""
    path = Path(path)
    fmt = sniff(path)
    if fmt is not None:
        return read_format(path, fmt, vocabulary=vocabulary, panel=panel)
    if path.is_file() and path.suffix.lower() in (".csv", ".xlsx", ".txt"):
        return tables.read_table(path, vocabulary)  # raises with the precise reason
    raise CbaFormatError(
        f"{path}: not a bead-array export this library reads (FCAP Array, LEGENDplex, Luminex "
        "xPONENT/INTELLIFLEX tables, or bead FCS files named like K2-C07-A7.fcs)"
    )

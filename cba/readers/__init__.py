"""Recognise a bead-array export by its content and read it into a `CbaPlate`.

| format | recognised by |
|---|---|
| luminex-xponent-csv | a `"Program","xPONENT"` line in the header block |
| luminex-intelliflex-csv | a first row with MODEL NAME, WELL LOCATION and `Rnn: RP1 MEDIAN` columns |
| fcap-array-csv / -xlsx | a wells table (well, sample, analyte MFI columns), "FCAP" in the preamble |
| legendplex-csv / -xlsx | a wells table, "LEGENDplex" in the preamble/sheets or bead-ID headers |
| <vendor>-concentrations-<csv/xlsx> | the same tables with concentrations but no MFI |
| bead-fcs | an FCS file named (or `$FIL`-named) by the bead-array convention, e.g. K2-C07-A7 |
| bead-fcs-plate | a folder or zip of such FCS files |

The extension is never trusted. qPCR exports and sample manifests carry no well + analyte MFI
table, no xPONENT/INTELLIFLEX signature and no bead-named FCS, so they are not claimed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from cba.analytes import VOCABULARY, Vocabulary
from cba.errors import CbaFormatError
from cba.model import CbaPlate
from cba.panels import BeadPanel
from cba.readers.bead_fcs import (
    BEAD_FCS,
    BEAD_FCS_PLATE,
    bead_file_identity,
    fcs_text_keywords,
    read_bead_folder,
    read_bead_plate,
)
from cba.readers.luminex import (
    INTELLIFLEX,
    XPONENT,
    looks_like_intelliflex,
    looks_like_xponent,
    read_intelliflex,
    read_xponent,
)
from cba.readers.tables import read_table, sniff_table

_HEAD_BYTES = 65536


def _is_bead_fcs(path: Path, head: bytes) -> bool:
    keywords = fcs_text_keywords(head)
    return keywords is not None and bead_file_identity(path, keywords) is not None


def _zip_holds_bead_fcs(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".fcs")]
        return bool(names) and all(
            _is_bead_fcs(Path(n), archive.open(n).read(_HEAD_BYTES)) for n in names
        )


def sniff(path: Path | str) -> str | None:
    """The bead-array format of a file or folder, or None; reads only the head of a file."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() == ".fcs"]
        heads = [(p, p.open("rb").read(_HEAD_BYTES)) for p in files]
        return BEAD_FCS_PLATE if heads and all(_is_bead_fcs(p, h) for p, h in heads) else None
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if head.startswith(b"FCS"):
        return BEAD_FCS if _is_bead_fcs(path, head) else None
    if head.startswith(b"PK\x03\x04"):
        if zipfile.is_zipfile(path) and _zip_holds_bead_fcs(path):
            return BEAD_FCS_PLATE
        return sniff_table(path)
    text = head.decode("utf-8-sig", errors="replace")
    if looks_like_xponent(text):
        return XPONENT
    if looks_like_intelliflex(text):
        return INTELLIFLEX
    return sniff_table(path)


def read_plate(
    path: Path | str, *, vocabulary: Vocabulary = VOCABULARY, panel: BeadPanel | None = None
) -> CbaPlate:
    """Read any supported bead-array export; raises `CbaFormatError` saying why not.

    Analyte names are looked up in `vocabulary` (the lab's is `CbaSettings.vocabulary`); a name
    it does not know is kept as exported with `analyte_recognised` False and a plate warning.
    `panel` is needed for raw FCS files unless a `panel.json` lies beside them.
    """
    path = Path(path)
    kind = sniff(path)
    if kind == XPONENT:
        return read_xponent(path, vocabulary)
    if kind == INTELLIFLEX:
        return read_intelliflex(path, vocabulary)
    if kind == BEAD_FCS_PLATE:
        return read_bead_folder(path, panel)
    if kind == BEAD_FCS:
        if panel is None:
            raise CbaFormatError(
                f"{path}: a raw bead FCS file needs the bead panel (pass panel=), or put the "
                "plate's files with a panel.json in one folder"
            )
        return read_bead_plate([path], panel)
    if kind is not None:
        return read_table(path, vocabulary)
    if path.is_file() and path.suffix.lower() in (".csv", ".xlsx", ".txt"):
        return read_table(path, vocabulary)  # raises with the precise reason
    raise CbaFormatError(
        f"{path}: not a bead-array export this library reads (FCAP Array, LEGENDplex, Luminex "
        "xPONENT/INTELLIFLEX tables, or bead FCS files named like K2-C07-A7.fcs)"
    )

"""The flow library's side of the assay contract (docs/assay-libraries.md): one FCS tube in, the
`flow_samples`, `flow_populations` and `flow_mfi` tables and the tube's supersede key out.

A tube is one sample: `sample_names` gives the candidates for its name (`$SRC`, the other
naming keywords, the file name), best first, and the caller resolves the first it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from assaykit import Analysis, SampleFacts, SampleNames
from gating.analysis import FlowResult, analyse_fcs
from gating.errors import FlowFormatError
from gating.fcs import fcs_keywords
from gating.fcs import sniff as sniff_fcs
from gating.keywords import identity_hints
from gating.panels import is_bead_array
from gating.settings import FlowSettings

__all__ = ["FORMATS", "FcsTube", "analyse", "read", "sample_names", "sniff"]

FORMATS = ("fcs2.0", "fcs3.0", "fcs3.1")


@dataclass(frozen=True)
class FcsTube:
    """An FCS file whose TEXT segment was read; its events are read when it is analysed."""

    path: Path
    instrument_format: str
    keywords: dict[str, str]
    """The first dataset's TEXT keywords."""


def sniff(path: Path) -> str | None:
    """The FCS version ("fcs3.1", ...) from the header's first six bytes, else None."""
    if sniff_fcs(path) is None:
        return None
    with Path(path).open("rb") as handle:
        return handle.read(6).decode("ascii").lower()


def read(path: Path, instrument_format: str, settings: FlowSettings | None = None) -> FcsTube:
    """The tube's keywords; `FlowFormatError` for a TEXT segment that cannot be read, or for a
    bead-array acquisition, which is no phenotyping tube."""
    path = Path(path)
    keywords = fcs_keywords(path)
    if is_bead_array(keywords):
        raise FlowFormatError(
            f"{path.name}: a bead-array acquisition, but its well and standard cannot be told from "
            "its name or keywords; name it as the bead-array software does (e.g. K2-C07-A7.fcs) "
            "and drop the plate's files zipped with the kit's panel.json, or export the MFI table "
            "instead"
        )
    return FcsTube(path, instrument_format, keywords)


def sample_names(tube: FcsTube, settings: FlowSettings) -> SampleNames:
    """The tube's names, best first: `sample_name` ($SRC, else SAMPLE ID, else $FIL), the other
    naming keywords, then the file name's stem."""
    hints = identity_hints(tube.keywords, tube.path)
    ordered = [hints.get("sample_name", "")]
    ordered += [value for key, value in hints.items() if key != "file_name"]
    ordered.append(Path(hints.get("file_name", "")).stem)
    return SampleNames(tuple(dict.fromkeys(n for n in ordered if n)), whole_file=True)


def analyse(tube: FcsTube, settings: FlowSettings, facts: SampleFacts | None = None) -> Analysis:
    """Every dataset of the tube gated with its panel's template. The manifest's `facts` are not
    used by this assay."""
    result = analyse_fcs(tube.path, settings)
    return Analysis(
        instrument_format=tube.instrument_format,
        supersede_key=acquisition_key(result, tube.path),
        tables={
            "flow_samples": result.samples,
            "flow_populations": result.populations,
            "flow_mfi": result.mfi,
        },
        warnings=list(result.warnings),
    )


def acquisition_key(result: FlowResult, path: Path) -> str:
    """Same tube, same cytometer, same acquisition time: a re-export of one acquisition.

    The T-cell and B-cell tubes of one blood draw share the sample name, so the panel and tube
    name are part of it; without an acquisition time the file name stands in.
    """
    first = result.samples.iloc[0] if len(result.samples) else {}
    parts = {
        "panel": first.get("panel"),
        "sample": first.get("sample_name"),
        "tube": result.identity.get("TUBE NAME"),
        "cytometer": first.get("cytometer_serial"),
        "acquired": first.get("acquired_at"),
    }
    if parts["acquired"] is None or pd.isna(parts["acquired"]):
        parts["file"] = path.name
    return "flow:" + "|".join(
        f"{k}={v}" for k, v in parts.items() if v is not None and not pd.isna(v)
    )

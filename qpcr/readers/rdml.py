"""RDML (Real-time PCR Data Markup Language) 1.0-1.3: a zip holding one XML file, or bare XML.

Samples carry their type (unkn, std, ntc, nac, ...) and, for standards, their quantity; each
`run/react` is a well holding one `data` element per target with `cq` (absent or `-1` when none
was found), `excl` when the analyst excluded it, and the raw curves. Wells are named by position
(`A1`) or numbered row by row within the run's `pcrFormat`. Several runs of one experiment
(Bio-Rad writes one per channel) are one plate; runs with curves but no Cq at all were never
analysed and are left out with a warning.

One StepOne -> RDML converter writes `cq` 40.0 for NTC wells it found nothing in, and marks them
with a quantity of NaN; only there a 40.0 is read as "no Cq" (its wording kept in amp_status).
A 40.0 anywhere else is a real Cq: the reader never turns a number into "none" or back.

This reader uses the standard library's XML parser rather than `rdmlpython`: importing
rdmlpython pulls in scipy.stats and matplotlib (4-5 s, most of the 5 s ingest budget), and its
object API raises on RDML 1.0 files unless they are first migrated. The conformance tests read
the same files with rdmlpython and compare.

run_id: `rdml:<experiment id>/<run id>[+<run id>...]@<run date>` (date left out when absent).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

from qpcr.model import QpcrPlate
from qpcr.readers._common import (
    Probe,
    format_error,
    normalise_well,
    parse_number,
    parse_quantity,
    read_bytes,
    row_letter,
    run_id,
    unknown_tasks_warning,
    well_row,
    wells_frame,
)

RDML = "rdml"
FORMATS = (RDML,)

_NS = "{http://www.rdml.org}"
_MAX_XML_BYTES = 512 * 1024 * 1024
_NO_QUANTITY_CQ = 40.0
# RDML sample types -> the vendor task words `normalise_task` understands.
_SAMPLE_TASKS = {"unkn": "UNKNOWN", "std": "STANDARD", "ntc": "NTC", "nac": "NAC"}


def sniff(found: Probe) -> str | None:
    """A zip whose XML member has an `<rdml` root, or a bare XML file starting with one."""
    if found.zip_names is not None:
        members = [n for n in found.zip_names if n.lower().endswith((".xml", ".rdml"))]
        if not members or "xl/workbook.xml" in found.zip_names:
            return None
        try:
            with zipfile.ZipFile(found.path) as archive, archive.open(members[0]) as member:
                head = member.read(4096)
        except (zipfile.BadZipFile, OSError, KeyError):
            return None
        return RDML if b"<rdml" in head else None
    head = (found.text or "")[:4096]
    return RDML if "<rdml" in head else None


def read(path: Path) -> QpcrPlate:
    root = _parse(path)
    if root.tag != f"{_NS}rdml":
        raise format_error(path, "the XML is not RDML (its root element is not <rdml>)", "")
    # direct children only: reactions refer to samples with <sample id=".."/> elements too
    samples = {s.get("id", ""): _Sample.parse(s) for s in root.findall(f"{_NS}sample")}
    dyes = _target_dyes(root)
    warnings: list[str] = []
    runs = _analysed_runs(path, root, warnings)
    rows = []
    end_of_run_ntcs = 0
    for run in runs:
        for react in run.element.iter(f"{_NS}react"):
            well = _position(react.get("id", ""), run)
            sample_id = _ref(react, "sample")
            sample = samples.get(sample_id, _Sample())
            for data in react.iter(f"{_NS}data"):
                row, marked = _well_row(data, well, sample_id, sample)
                row["reporter"] = dyes.get(str(row["target"]), "")
                rows.append(row)
                end_of_run_ntcs += marked
    if end_of_run_ntcs:
        warnings.append(
            f"{end_of_run_ntcs} NTC well(s) have Cq 40.0 with quantity NaN (a StepOne converter's "
            "mark for 'no Cq'); read as not amplified"
        )
    warnings += _quantity_unit_warnings(samples)
    warnings += unknown_tasks_warning(s.type for s in samples.values())
    experiment = runs[0].experiment
    moment = _run_date(runs)
    return QpcrPlate(
        instrument_format=RDML,
        run_id=run_id(RDML, f"{experiment}/{'+'.join(r.id for r in runs)}", moment),
        wells=wells_frame(path, rows),
        instrument=runs[0].instrument,
        run_started=moment,
        instrument_curves=_target_efficiencies(root),
        warnings=warnings,
    )


def _parse(path: Path) -> ElementTree.Element:
    """The RDML XML root, from a zip (any .xml member, not only rdml_data.xml) or bare XML."""
    data = read_bytes(path)
    try:
        if data.startswith(b"PK"):
            with zipfile.ZipFile(path) as archive:
                member = next(
                    (i for i in archive.infolist() if i.filename.lower().endswith(".xml")), None
                )
                if member is None:
                    raise format_error(path, "the zip archive holds no RDML XML file", "")
                if member.file_size > _MAX_XML_BYTES:
                    raise format_error(path, "the RDML XML is implausibly large", "")
                data = archive.read(member)
        return ElementTree.fromstring(data)
    except (zipfile.BadZipFile, EOFError, ElementTree.ParseError) as error:
        raise format_error(
            path, f"the RDML file is damaged or truncated ({error})", "Export or copy it again"
        ) from error


@dataclass
class _Sample:
    type: str = "unkn"
    quantity: float = math.nan
    unit: str = ""

    @classmethod
    def parse(cls, element: ElementTree.Element) -> _Sample:
        quantity = element.find(f"{_NS}quantity")
        return cls(
            type=(element.findtext(f"{_NS}type") or "unkn").strip(),
            quantity=(
                parse_quantity(quantity.findtext(f"{_NS}value"))
                if quantity is not None
                else math.nan
            ),
            unit=(quantity.findtext(f"{_NS}unit") or "").strip() if quantity is not None else "",
        )


@dataclass
class _Run:
    element: ElementTree.Element
    experiment: str
    id: str
    instrument: str
    rows: int = 0
    columns: int = 0
    row_label: str = ""
    column_label: str = ""


def _analysed_runs(path: Path, root: ElementTree.Element, warnings: list[str]) -> list[_Run]:
    runs = []
    for experiment in root.iter(f"{_NS}experiment"):
        for element in experiment.iter(f"{_NS}run"):
            run = _describe(element, experiment.get("id", ""))
            if any(True for _ in element.iter(f"{_NS}cq")):
                runs.append(run)
            elif any(True for _ in element.iter(f"{_NS}adp")):
                warnings.append(f"run '{run.id}' has amplification curves but no Cq; left out")
    if not runs:
        raise format_error(
            path,
            "not a quantification run: no reaction has a Cq value (melting curves or raw "
            "curves only)",
            "Export the analysed run (with Cq values) from the instrument software",
        )
    if len({run.experiment for run in runs}) > 1:
        raise format_error(
            path,
            "the RDML file holds several experiments ("
            + ", ".join(sorted({run.experiment for run in runs}))
            + ")",
            "Export one plate per RDML file",
        )
    return runs


def _describe(element: ElementTree.Element, experiment: str) -> _Run:
    layout = element.find(f"{_NS}pcrFormat")

    def number(tag: str) -> int:
        value = parse_number(layout.findtext(f"{_NS}{tag}")) if layout is not None else None
        return int(value) if value else 0

    return _Run(
        element=element,
        experiment=experiment,
        id=element.get("id", ""),
        instrument=(element.findtext(f"{_NS}instrument") or "").strip(),
        rows=number("rows"),
        columns=number("columns"),
        row_label=(layout.findtext(f"{_NS}rowLabel") or "") if layout is not None else "",
        column_label=(layout.findtext(f"{_NS}columnLabel") or "") if layout is not None else "",
    )


def _position(react_id: str, run: _Run) -> str:
    """'A1' stays; a number counts row by row in the run's pcrFormat (Bio-Rad writes 1..96)."""
    named = normalise_well(react_id)
    if named or not react_id.isdigit() or not run.columns:
        return named or react_id
    row, column = divmod(int(react_id) - 1, run.columns)
    row_name = row_letter(row) if run.row_label.upper().startswith("A") else str(row + 1)
    column_name = (
        row_letter(column) if run.column_label.upper().startswith("A") else str(column + 1)
    )
    return row_name + column_name


def _ref(element: ElementTree.Element, tag: str) -> str:
    child = element.find(f"{_NS}{tag}")
    return child.get("id", "") if child is not None else ""


def _well_row(
    data: ElementTree.Element, well: str, sample_id: str, sample: _Sample
) -> tuple[dict[str, object], bool]:
    """The well row, and whether a StepOne end-of-run 40.0 was read as "no Cq"."""
    cq_text = (data.findtext(f"{_NS}cq") or "").strip()
    computed = data.find(f"{_NS}quantity")
    computed_value = (
        parse_number(computed.findtext(f"{_NS}value")) if computed is not None else None
    )
    marked = (
        sample.type in ("ntc", "nac")
        and parse_number(cq_text) == _NO_QUANTITY_CQ
        and computed_value is not None
        and math.isnan(computed_value)
    )
    excluded = (data.findtext(f"{_NS}excl") or "").strip()
    row = well_row(
        well=well,
        sample_name=sample_id,
        target=_ref(data, "tar"),
        reporter="",  # set from the target's dye by the caller
        task=_SAMPLE_TASKS.get(sample.type, sample.type),
        cq_cell="" if marked else cq_text,
        amp_status=cq_text if marked else None,
        standard_quantity=sample.quantity,
        instrument_quantity=math.nan if computed_value is None else computed_value,
        omitted=bool(excluded) and excluded.lower() != "false",
    )
    return row, marked


def _quantity_unit_warnings(samples: dict[str, _Sample]) -> list[str]:
    units = sorted({s.unit for s in samples.values() if s.type == "std" and s.unit != "cop"})
    if not units:
        return []
    return [f"standard quantities are in unit(s) {', '.join(units)}; read as copies per reaction"]


def _run_date(runs: list[_Run]) -> datetime | None:
    for run in runs:
        text = (run.element.findtext(f"{_NS}runDate") or "").strip()
        if text:
            try:
                return datetime.fromisoformat(text)
            except ValueError:
                continue
    return None


def _target_dyes(root: ElementTree.Element) -> dict[str, str]:
    """Target -> dye: `<dyeId id="FAM"/>` (RDML 1.1+) or `<dyeId>FAM</dyeId>` (1.0)."""
    dyes = {}
    for target in root.findall(f"{_NS}target"):
        dye = target.find(f"{_NS}dyeId")
        if dye is not None:
            dyes[target.get("id", "")] = (dye.get("id") or dye.text or "").strip()
    return dyes


def _target_efficiencies(root: ElementTree.Element) -> dict[str, dict[str, float]]:
    """The efficiency the software stored per target.

    RDML specifies it as the fold increase per cycle (1.8-2.0), but StepOne's converter writes a
    percentage (93.9); values up to 3 are converted from fold to percent.
    """
    curves = {}
    for target in root.findall(f"{_NS}target"):
        value = parse_number(target.findtext(f"{_NS}amplificationEfficiency"))
        if value is None or not math.isfinite(value) or value <= 0:
            continue
        curves[target.get("id", "")] = {
            "efficiency_pct": (value - 1.0) * 100.0 if value <= 3.0 else value
        }
    return curves

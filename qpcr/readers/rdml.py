"""RDML (Real-time PCR Data Markup Language) 1.0-1.4: a zip holding one XML file, or bare XML.

Samples carry their type (unkn, std, ntc, nac, ...) and, for standards, their quantity; each
`run/react` is a well holding one `data` element per target with `cq` (absent or `-1` when none
was found), `excl` when the analyst excluded it, and the raw curves. Wells are named by position
(`A1`) or numbered row by row within the run's `pcrFormat`. Several runs of one experiment
(Bio-Rad writes one per channel) are one plate; runs with curves but no Cq at all were never
analysed and are left out with a warning.

One StepOne -> RDML converter writes `cq` 40.0 for NTC wells it found nothing in, and marks them
with a quantity of NaN; only there a 40.0 is read as "no Cq" (its wording kept in amp_status).
A 40.0 anywhere else is a real Cq: the reader never turns a number into "none" or back.

The reading is done by `rdmlpython`, the RDML consortium's library: it parses the XML, checks
the root element and version, and its object API gives the samples, targets, runs and
reactions. Older files are brought to RDML 1.3 with its own migrations
(`migrate_version_1_0_to_1_1`, then 1.1 -> 1.2 -> 1.3), so the API sees one version. Three
things are taken from the document before migrating, because migration rewrites or drops them
and rdmlpython has no accessor for them: the wells as the file names them (1.0 -> 1.1 renumbers
`A1` to `1` and invents a `pcrFormat` for "free format" runs), the per-reaction computed
`data/quantity` (RDML 1.0 only; migration deletes it, and the StepOne rule above needs it), and
whether a run holds curves. This module reads the container itself (any `.xml` member of the
zip, not only `rdml_data.xml`; gzip; the declared encoding) and gives rdmlpython the XML text.
What rdmlpython refuses is refused with its reason: no or an unknown `version`, a `<tar/>` or
`<sample/>` without its id, a 1.0 file its migration cannot convert.

RDML 1.4 (what current tools write) is read by migrating it down to 1.3 here: the released
rdmlpython (1.7.2) refuses 1.4, and the consortium's unreleased 2.x brings its own
`migrate_version_1_4_to_1_3`, which only removes the elements 1.4 added (`data/Ncopy`,
`react/vol`, `sample/doubleStranded`, `oligoConc`, and the dye's `dyeConc`/`nCopyFact`/`dNTPs`;
see the RDML schema's changes_v1.3_to_v1.4.txt). None of them is read here, and every element
that is read (sample type and quantity, target dye, `cq`, `excl`) is the same in 1.3 and 1.4, so
`_from_rdml_1_4` removes those elements and sets the version to 1.3 before rdmlpython loads it.

Roche LightCycler 96 writes its own RDML style: a sample's `id` is a GUID and the name the
technician typed is its `description`; targets are named `<dye>@<target>` (`FAM@bACT`), or
`<dye>@<GUID>` on channels without a target. The sample name is then the description and the
target the part after `@` (the dye where the target is a GUID). Its "no Cq" is `cq` 100 (see
`_LC96_NO_CQ`), taken as such only in files Roche wrote. LC96 keeps standard quantities
in its own `calculated_data.xml`, not in the RDML; standards without a quantity are warned about.

rdmlpython is imported inside `read` only: it pulls in scipy.stats and matplotlib (several seconds),
which a batch of other formats should not pay. `sniff` therefore stays on the standard library
and reads at most the first 4 KiB: it only looks for the `<rdml` root.

The amplification curves (`data/adp`: cycle and fluorescence, as the instrument wrote them, raw
or baseline-corrected) are kept per well and target in `QpcrPlate.amplification`.

run_id: `rdml:<experiment id>/<run id>[+<run id>...]@<run date>` (date left out when absent).
"""

from __future__ import annotations

import codecs
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qpcr.model import AMPLIFICATION_COLUMNS, QpcrFormatError, QpcrPlate
from qpcr.readers._common import (
    Probe,
    format_error,
    normalise_well,
    parse_number,
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
_NOT_AVAILABLE_CQ = -1.0  # RDML's documented "Not Available" Cq
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RDML_1_4_ONLY = frozenset(
    {"Ncopy", "vol", "doubleStranded", "oligoConc", "dyeConc", "nCopyFact", "dNTPs"}
)
"""Elements RDML 1.4 added to 1.3 (none of them is read here)."""
_LC96_NO_CQ = frozenset({"100"})
"""LightCycler 96 writes `<cq>100</cq>` where its own call is Negative or Invalid and it computed
no Cq (every such well in PCRuniversum/RDML's lc96_bACTXY.rdml); no run has 100 cycles."""
_VERSION_ATTRIBUTE = re.compile(r"""(<(?:\w+:)?rdml\b[^>]*?\bversion\s*=\s*["'])1\.4(["'])""")
# RDML sample types -> the vendor task words `normalise_task` understands.
_SAMPLE_TASKS = {"unkn": "UNKNOWN", "std": "STANDARD", "ntc": "NTC", "nac": "NAC"}
# rdmlpython's migrations, oldest first; after them the document is RDML 1.3.
_MIGRATIONS = {
    "1.0": "migrate_version_1_0_to_1_1",
    "1.1": "migrate_version_1_1_to_1_2",
    "1.2": "migrate_version_1_2_to_1_3",
}
# The dye rdmlpython's 1.0 -> 1.1 migration gives a target without one (it fails on a missing
# or empty <dyeId> otherwise); read back as no dye.
_NO_DYE = "conversion_dye_missing"
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# Comments and processing instructions (the XML declaration too): the standard XML parsers drop
# them, rdmlpython keeps them and then fails on their tag-less nodes.
_COMMENTS_AND_PIS = re.compile(r"<!--.*?-->|<\?.*?\?>", re.DOTALL)
_ACTION = "Export or copy it again"


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
    from rdmlpython import rdml  # here, not at the top: the import takes ~4.5 s

    text = _from_rdml_1_4(_xml_text(path))
    document = rdml.Rdml()
    try:
        document.loadXMLString(text)
    except rdml.RdmlError as error:
        raise _load_error(path, error) from error
    if document._node.tag != _NS + "rdml":  # rdmlpython ignores the namespace
        raise format_error(path, "the XML is not RDML (its root element is not <rdml>)", "")
    version = document.version()
    try:
        as_written, no_dye = _as_written(document)
        _migrate(document)
    except (rdml.RdmlError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise format_error(
            path,
            f"rdmlpython cannot migrate this RDML {version} file to 1.3 "
            f"({type(error).__name__}: {error})",
            "Export it again as RDML 1.1 or newer",
        ) from error
    try:
        return _plate(path, document, as_written, no_dye)
    except KeyError as error:  # rdmlpython indexes attributes the schema requires
        raise format_error(
            path,
            f"an element lacks its required {error} attribute (e.g. <tar/> or <sample/> "
            "without id)",
            "Export it again from the instrument software",
        ) from error
    except (rdml.RdmlError, TypeError, AttributeError) as error:
        raise format_error(
            path, f"rdmlpython cannot read this RDML ({type(error).__name__}: {error})", _ACTION
        ) from error


def _xml_text(path: Path) -> str:
    """The RDML XML as text, from a zip (any .xml member, not only rdml_data.xml) or bare XML.

    Decoded here by its byte-order mark or declared encoding, since rdmlpython re-encodes the
    text as UTF-8; comments and processing instructions are removed (see _COMMENTS_AND_PIS).
    """
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
        text = data.decode(_encoding(data))
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError, LookupError) as error:
        raise format_error(
            path, f"the RDML file is damaged or truncated ({error})", _ACTION
        ) from error
    return _COMMENTS_AND_PIS.sub("", text)


def _from_rdml_1_4(text: str) -> str:
    """An RDML 1.4 document as 1.3 (see the module docstring for why); other versions as is."""
    from lxml import etree  # rdmlpython's own XML library

    marked = _VERSION_ATTRIBUTE.search(text[:4096])
    if marked is None:
        return text
    try:
        root = etree.fromstring(text.encode("utf-8"))
    except etree.XMLSyntaxError:
        return text  # rdmlpython names the syntax error
    for element in [e for e in root.iter() if etree.QName(e).localname in _RDML_1_4_ONLY]:
        element.getparent().remove(element)
    root.set("version", "1.3")
    return etree.tostring(root, encoding="unicode")


def _encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    declared = _DECLARED_ENCODING.match(data)
    return declared.group(1).decode("ascii") if declared else "utf-8"


def _load_error(path: Path, error: Exception) -> QpcrFormatError:
    """rdmlpython's RdmlError as a message naming what is wrong and what to do."""
    message = str(error)
    if message.startswith("Root element"):
        return format_error(path, "the XML is not RDML (its root element is not <rdml>)", "")
    if "version" in message:
        return format_error(
            path,
            "its RDML version is missing or not one this reader knows (1.0-1.4)",
            "Export it again as RDML 1.4 or older",
        )
    cause = error.__context__  # lxml's XMLSyntaxError names the line
    return format_error(
        path, f"the RDML file is damaged or truncated ({cause or message})", _ACTION
    )


# --- what migration rewrites or drops, read from the document as written -----------------------


@dataclass
class _AsWritten:
    """One run as the file writes it: migration renumbers wells and drops `data/quantity`."""

    rows: int = 0
    columns: int = 0
    row_label: str = ""
    column_label: str = ""
    react_ids: list[str] = field(default_factory=list)
    # per reaction, per data element: the computed quantity (None when the file has none)
    quantities: list[list[float | None]] = field(default_factory=list)
    has_curves: bool = False


def _as_written(document: Any) -> tuple[list[_AsWritten], set[str]]:
    """Per run, in document order; and the 1.0 targets given rdmlpython's stand-in dye.

    rdmlpython has no accessor for reactions' `data/quantity` or for the raw elements, so this
    walks the lxml nodes behind its objects (`_node`) the way its own code does: direct
    children, matched by tag in the RDML namespace.
    """
    no_dye = set()
    if document.version() == "1.0":  # its 1.0 -> 1.1 migration fails on a target without dye
        for target in document.targets():
            dye = _child(target._node, "dyeId")
            if dye is None or not (dye.text or "").strip():
                if dye is None:
                    dye = target._node.makeelement(_NS + "dyeId")
                    target._node.append(dye)
                dye.text = _NO_DYE
                no_dye.add(target["id"] or "")
    runs = []
    for experiment in document.experiments():
        for run in experiment.runs():

            def number(key: str, run: Any = run) -> int:
                value = parse_number(run[key])
                return int(value) if value else 0

            reacts = _children(run._node, "react")
            runs.append(
                _AsWritten(
                    rows=number("pcrFormat_rows"),
                    columns=number("pcrFormat_columns"),
                    row_label=run["pcrFormat_rowLabel"] or "",
                    column_label=run["pcrFormat_columnLabel"] or "",
                    react_ids=[react.get("id", "") for react in reacts],
                    quantities=[
                        [_computed_quantity(data) for data in _children(react, "data")]
                        for react in reacts
                    ],
                    has_curves=next(run._node.iter(_NS + "adp", "adp"), None) is not None,
                )
            )
    return runs, no_dye


def _children(node: Any, tag: str) -> list[Any]:
    return [child for child in node if child.tag.replace(_NS, "") == tag]


def _child(node: Any, tag: str) -> Any:
    return next(iter(_children(node, tag)), None)


def _computed_quantity(data: Any) -> float | None:
    quantity = _child(data, "quantity")
    value = _child(quantity, "value") if quantity is not None else None
    return parse_number(value.text) if value is not None else None


def _migrate(document: Any) -> None:
    while document.version() in _MIGRATIONS:
        getattr(document, _MIGRATIONS[document.version()])()


# --- the plate, from the migrated document -----------------------------------------------------


@dataclass
class _Sample:
    name: str = ""
    type: str = "unkn"
    quantity: str = ""  # as written; `well_row` checks it
    unit: str = ""

    @classmethod
    def of(cls, sample: Any) -> _Sample:
        types = sample.types()
        quantities = sample.quantitys()
        quantity = quantities[0] if quantities else None
        return cls(
            name=_sample_name(sample),
            type=((types[0]["type"] if types else None) or "unkn").strip(),
            quantity=(quantity["value"] or "").strip() if quantity else "",
            unit=(quantity["unit"] or "").strip() if quantity else "",
        )


def _sample_name(sample: Any) -> str:
    """The sample's id, or its description where the id is a GUID (LightCycler 96)."""
    sample_id = (sample["id"] or "").strip()
    description = (sample["description"] or "").strip()
    return description if _GUID.match(sample_id) and description else sample_id


def _target_name(target_id: str, dye: str) -> str:
    """LightCycler 96's `FAM@bACT` -> `bACT`, `FAM@<GUID>` -> `FAM`; other ids as written."""
    prefix, at, rest = target_id.partition("@")
    if not at or not dye or prefix != dye:
        return target_id
    return dye if _GUID.match(rest) else rest


@dataclass
class _Run:
    experiment: str
    id: str
    instrument: str
    run_date: str
    reacts: list[dict[str, Any]]
    written: _AsWritten


def _plate(path: Path, document: Any, as_written: list[_AsWritten], no_dye: set[str]) -> QpcrPlate:
    samples = {sample["id"] or "": _Sample.of(sample) for sample in document.samples()}
    no_cq = _LC96_NO_CQ if _written_by_roche(document) else frozenset()
    dyes = _target_dyes(document, no_dye)
    warnings: list[str] = []
    runs = _analysed_runs(path, document, as_written, warnings)
    rows = []
    curves: list[dict[str, object]] = []
    end_of_run_ntcs = 0
    for run in runs:
        for react, react_id, quantities in zip(
            run.reacts, run.written.react_ids, run.written.quantities, strict=True
        ):
            well = _position(react_id, run.written)
            sample_id = react.get("sample", "")
            sample = samples.get(sample_id, _Sample())
            for data, computed in zip(react["datas"], quantities, strict=True):
                row, marked = _well_row(
                    data, computed, well, sample.name or sample_id, sample, no_cq
                )
                dye = dyes.get(str(row["target"]), "")
                row["reporter"] = dye
                row["target"] = _target_name(str(row["target"]), dye)
                rows.append(row)
                curves += _curve_rows(path, data, well, str(row["target"]))
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
        instrument_curves=_target_efficiencies(document),
        warnings=warnings,
        amplification=pd.DataFrame(curves, columns=list(AMPLIFICATION_COLUMNS)).astype(
            {"cycle": "int64", "fluorescence": float}
        ),
        amplification_measure="fluorescence" if curves else "",
    )


def _curve_rows(path: Path, data: dict[str, Any], well: str, target: str) -> list[dict]:
    """The reaction's amplification data points (`adp`: cycle, fluorescence) as
    AMPLIFICATION_COLUMNS rows."""
    rows = []
    for point in data.get("adps") or []:
        cycle, fluorescence = parse_number(point[0]), parse_number(point[1])
        if cycle is None or fluorescence is None:
            raise format_error(
                path, f"well {well}, {target}: an amplification point is not a number ({point[:2]})",
                _ACTION,
            )  # fmt: skip
        rows.append({"well": well, "target": target, "cycle": int(cycle),
                     "fluorescence": fluorescence})  # fmt: skip
    return rows


def _analysed_runs(
    path: Path, document: Any, as_written: list[_AsWritten], warnings: list[str]
) -> list[_Run]:
    runs = []
    written = iter(as_written)
    for experiment in document.experiments():
        for element in experiment.runs():
            run = _Run(
                experiment=experiment["id"] or "",
                id=element["id"] or "",
                instrument=(element["instrument"] or "").strip(),
                run_date=(element["runDate"] or "").strip(),
                reacts=element.getreactjson(curves=True)["reacts"],
                written=next(written),
            )
            if any("cq" in data for react in run.reacts for data in react["datas"]):
                runs.append(run)
            elif run.written.has_curves:
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


def _position(react_id: str, layout: _AsWritten) -> str:
    """'A1' stays; a number counts row by row in the run's pcrFormat (Bio-Rad writes 1..96)."""
    named = normalise_well(react_id)
    if named or not react_id.isdigit() or not layout.columns:
        return named or react_id
    row, column = divmod(int(react_id) - 1, layout.columns)
    row_name = row_letter(row) if layout.row_label.upper().startswith("A") else str(row + 1)
    column_name = (
        row_letter(column) if layout.column_label.upper().startswith("A") else str(column + 1)
    )
    return row_name + column_name


def _written_by_roche(document: Any) -> bool:
    identity = _child(document._node, "id")
    publisher = _child(identity, "publisher") if identity is not None else None
    return publisher is not None and "roche" in (publisher.text or "").lower()


def _well_row(
    data: dict[str, Any],
    computed: float | None,
    well: str,
    sample_name: str,
    sample: _Sample,
    vendor_no_cq: frozenset[str],
) -> tuple[dict[str, object], bool]:
    """The well row, and whether a StepOne end-of-run 40.0 was read as "no Cq"."""
    cq_text = (data.get("cq") or "").strip()
    marked = (
        sample.type in ("ntc", "nac")
        and parse_number(cq_text) == _NO_QUANTITY_CQ
        and computed is not None
        and math.isnan(computed)
    )
    excluded = (data.get("excl") or "").strip()
    not_available = parse_number(cq_text) == _NOT_AVAILABLE_CQ
    row = well_row(
        well=well,
        sample_name=sample_name,
        target=data.get("tar", ""),
        reporter="",  # set from the target's dye by the caller
        task=_SAMPLE_TASKS.get(sample.type, sample.type),
        cq_cell="" if marked else cq_text,
        no_cq_markers=vendor_no_cq | ({"", cq_text.lower()} if not_available else {""}),
        amp_status=cq_text if marked else None,
        standard_quantity=sample.quantity,
        instrument_quantity=math.nan if computed is None else computed,
        omitted=bool(excluded) and excluded.lower() != "false",
    )
    return row, marked


def _quantity_unit_warnings(samples: dict[str, _Sample]) -> list[str]:
    standards = [s for s in samples.values() if s.type == "std"]
    without = sorted(s.name for s in standards if not s.quantity)
    units = sorted({s.unit for s in standards if s.quantity and s.unit != "cop"})
    warnings = []
    if without:
        warnings.append(
            f"{len(without)} standard sample(s) carry no quantity ({', '.join(without[:3])}"
            f"{', ...' if len(without) > 3 else ''}): enter the quantities in the instrument "
            "software before the RDML export"
        )
    if units:
        warnings.append(
            f"standard quantities are in unit(s) {', '.join(units)}; read as copies per reaction"
        )
    return warnings


def _run_date(runs: list[_Run]) -> datetime | None:
    for run in runs:
        if run.run_date:
            try:
                return datetime.fromisoformat(run.run_date)
            except ValueError:
                continue
    return None


def _target_dyes(document: Any, no_dye: set[str]) -> dict[str, str]:
    """Target -> dye (`<dyeId id="FAM"/>`; RDML 1.0's `<dyeId>FAM</dyeId>` migrated to that)."""
    dyes = {}
    for target in document.targets():
        name = target["id"] or ""
        try:
            dye = target["dyeId"]
        except KeyError:  # a 1.1+ file writing the dye as in 1.0: <dyeId>FAM</dyeId>
            dye = _child(target._node, "dyeId").text or ""
        if dye is not None and name not in no_dye:
            dyes[name] = dye.strip()
    return dyes


def _target_efficiencies(document: Any) -> dict[str, dict[str, float]]:
    """The efficiency the software stored per target.

    RDML specifies it as the fold increase per cycle (1.8-2.0), but StepOne's converter writes a
    percentage (93.9); values up to 3 are converted from fold to percent.
    """
    curves = {}
    for target in document.targets():
        value = parse_number(target["amplificationEfficiency"])
        if value is None or not math.isfinite(value) or value <= 0:
            continue
        curves[target["id"] or ""] = {
            "efficiency_pct": (value - 1.0) * 100.0 if value <= 3.0 else value
        }
    return curves

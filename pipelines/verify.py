"""`cartflow verify`: the raw store and the warehouse re-hashed against the ledger.

Raw store (`raw/<sha[:2]>/<sha><ext>`): every file is read again and its SHA-256 compared with the
one its name holds (`changed`); every file the ledger knows of must have its bytes there
(`missing`). A file there that no raw-store name describes is `unaccounted`. A raw file of the
right name that the ledger has no record of is a note (a run stopped between keeping the file and
recording it: the inbox still holds it and the next run records it).

Warehouse: every Parquet file the ledger lists as an output of an ingested file must be there
(`missing`) with the SHA-256 recorded when it was committed (`changed`); outputs committed before
the ledger recorded hashes are a note (`not hashed`). In the folders of the tables written one file
per source file (the curated tables and `validation_results`), a `*.parquet` file that no ledger
output names is `unaccounted`, except the validation results of files that were refused (the
ledger lists no outputs for them) and of the derived tables (`validation_results/derived.parquet`).
The derived tables and `ingest_log` are rewritten whole from the curated ones and the ledger, and
are not checked.

Dot-files are temporaries (a write in flight, or left by a run that died, which the next run's
recovery removes): they are listed as `leftover` notes and not read. A path a journalled commit is
publishing or removing is a note (`in flight`) rather than a problem, and the warehouse's problems
are checked once more against a fresh reading of the ledger, so a commit that happened while
verify was reading is not reported.

Everything here returns data; `pipelines.cli` prints it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.hashing import sha256_of
from pipelines.home import LabHome
from pipelines.ledger import FileRecord, Ledger, Output
from validation.schemas import INGEST_LOG, TABLES, VALIDATION_RESULTS

CHANGED, MISSING, UNACCOUNTED = "changed", "missing", "unaccounted"
LEFTOVER, NOT_HASHED, IN_FLIGHT, UNRECORDED = "leftover", "not hashed", "in flight", "unrecorded"
PROBLEMS = frozenset({CHANGED, MISSING, UNACCOUNTED})
"""Finding kinds that make `cartflow verify` exit 1; the others are notes."""

RAW_STATUSES = frozenset({"received", "processing", "ingested", "quarantined", "superseded"})
"""Ledger statuses of a file whose bytes the raw store keeps."""

DERIVED_TABLES = frozenset({
    "car_kinetics", "b_cell_aplasia", "cytokine_fold_changes", "crs_signals", "crs_grades",
    "qc_trends",
})  # fmt: skip
"""The tables after the "derived tables" comment of `validation/schemas.py`, recomputed whole
from the curated tables (`pipelines.derived.recompute`): no ledger output names their files."""
DERIVED_VALIDATION_RESULTS = f"{VALIDATION_RESULTS.name}/derived.parquet"
"""The derived tables' validation results (`recompute.DERIVED_FILE`), beside the sources'."""

_RAW_NAME = re.compile(r"[0-9a-f]{64}")

_TEMPORARY = (
    "a temporary file (a write in flight, or left by a run that died: the next run removes it); "
    "not checked"
)


@dataclass(frozen=True)
class Finding:
    """One thing verify found: `path` is relative to the lab home, as found (not yet `shown`)."""

    kind: str
    path: str
    detail: str

    @property
    def problem(self) -> bool:
        return self.kind in PROBLEMS


@dataclass
class VerifyReport:
    home: Path
    ledger_found: bool
    raw_files: int = 0
    """Raw-store files read and hashed."""
    warehouse_files: int = 0
    """Warehouse Parquet files looked at (ledger outputs present, and files no output names)."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if not f.problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def per_source_tables() -> list[str]:
    """The tables written one file per source file, whose files the ledger lists."""
    return [t for t in TABLES if t not in DERIVED_TABLES and t != INGEST_LOG.name]


@dataclass(frozen=True)
class _LedgerView:
    """What the ledger says, read once."""

    records: dict[str, FileRecord]
    outputs: dict[str, tuple[str, Output]]
    """Warehouse path -> (source sha256, output)."""
    in_flight: dict[str, str]
    """Warehouse path -> source sha256, for the paths journalled commits publish or remove."""

    @classmethod
    def read(cls, home: LabHome) -> _LedgerView:
        if not home.ledger_path.exists():  # never create a ledger merely to verify
            return cls({}, {}, {})
        ledger = Ledger(home.ledger_path)
        records = {r.sha256: r for r in ledger.records()}
        outputs = {output.path: (source, output) for source, output in ledger.all_outputs()}
        in_flight: dict[str, str] = {}
        for commit in ledger.journal():
            for path in [*(o.path for o in commit.plan.outputs), *commit.plan.remove]:
                in_flight[path] = commit.sha256
        return cls(records, outputs, in_flight)

    def name_of(self, sha256: str) -> str:
        record = self.records.get(sha256)
        return record.original_name if record else sha256


def verify_home(home: LabHome) -> VerifyReport:
    """Re-hash `home`'s raw store and warehouse against its ledger; `home` must exist."""
    if not home.root.is_dir():
        raise FileNotFoundError(f"no lab home at {home.root}")
    view = _LedgerView.read(home)
    report = VerifyReport(home=home.root, ledger_found=home.ledger_path.exists())
    _verify_raw(home, view, report)
    _verify_warehouse(home, view, report)
    return report


# -- raw store -------------------------------------------------------------------------------


def _files(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder`, sorted, symbolic links not followed."""
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _verify_raw(home: LabHome, view: _LedgerView, report: VerifyReport) -> None:
    kept: set[str] = set()
    for path in _files(home.raw):
        relative = path.relative_to(home.raw)
        shown_path = f"raw/{relative.as_posix()}"
        if _hidden(relative):
            report.findings.append(Finding(LEFTOVER, shown_path, _TEMPORARY))
            continue
        named = path.name[:64]
        if not (_RAW_NAME.fullmatch(named) and relative.parts == (named[:2], path.name)):
            report.findings.append(
                Finding(UNACCOUNTED, shown_path, "not a raw-store name (raw/<sha[:2]>/<sha><ext>)")
            )
            continue
        digest = sha256_of(path)
        report.raw_files += 1
        kept.add(named)
        record = view.records.get(named)
        if digest != named:
            said = (
                f"the ledger recorded {named} for {record.original_name}"
                if record
                else f"its name says {named}"
            )
            report.findings.append(
                Finding(CHANGED, shown_path, f"content hash is {digest}; {said}")
            )
        elif record is None:
            report.findings.append(
                Finding(
                    UNRECORDED, shown_path, "not in the ledger (a run stopped before recording it?)"
                )
            )
    for sha256, record in sorted(view.records.items()):
        if record.status in RAW_STATUSES and sha256 not in kept:
            report.findings.append(
                Finding(
                    MISSING, f"raw/{sha256[:2]}/{sha256}",
                    f"{record.original_name} ({record.status}) is not in the raw store",
                )
            )  # fmt: skip


# -- warehouse -------------------------------------------------------------------------------


def _verify_warehouse(home: LabHome, view: _LedgerView, report: VerifyReport) -> None:
    warehouse = home.warehouse
    candidates: list[str] = list(view.outputs)
    tables = [*per_source_tables(), *(o.table_name for _, o in view.outputs.values())]
    for table in dict.fromkeys(tables):
        for path in _files(warehouse / table):
            relative = path.relative_to(warehouse)
            if _hidden(relative):
                report.findings.append(
                    Finding(LEFTOVER, f"warehouse/{relative.as_posix()}", _TEMPORARY)
                )
            elif path.suffix == ".parquet" and relative.as_posix() not in view.outputs:
                candidates.append(relative.as_posix())
    checked: list[tuple[str, Finding | None]] = []
    for relative in sorted(set(candidates)):
        checked.append((relative, _check(warehouse, relative, view)))
    report.warehouse_files += sum(
        1
        for relative, _ in checked
        if (warehouse / relative).is_file()
        and (relative in view.outputs or not _refused_files_results(relative, view))
    )
    doubtful = [relative for relative, finding in checked if finding and finding.problem]
    if doubtful:  # a commit may have happened while we read: ask the ledger again
        fresh = _LedgerView.read(home)
        rechecked = {relative: _check(warehouse, relative, fresh) for relative in doubtful}
        checked = [(r, rechecked.get(r, f)) for r, f in checked]
    report.findings.extend(finding for _, finding in checked if finding is not None)


def _check(warehouse: Path, relative: str, view: _LedgerView) -> Finding | None:
    """The finding for one warehouse file, or None when it is as the ledger says."""
    path = warehouse / relative
    where = f"warehouse/{relative}"
    flying = view.in_flight.get(relative)
    in_flight = None if flying is None else Finding(
        IN_FLIGHT, where,
        f"a commit of {view.name_of(flying)} is in flight, or was interrupted: the next run "
        "completes or rolls it back",
    )  # fmt: skip
    named = view.outputs.get(relative)
    if named is None:
        if not path.is_file() or _refused_files_results(relative, view):
            return None
        return in_flight or Finding(UNACCOUNTED, where, "no ledger output names it")
    source, output = named
    of = f"{output.table_name} output of {view.name_of(source)}"
    if not path.is_file():
        return in_flight or Finding(MISSING, where, f"the {of} is not there")
    if output.file_sha256 is None:
        return Finding(NOT_HASHED, where, f"the {of} was written before the ledger hashed outputs")
    digest = sha256_of(path)
    if digest == output.file_sha256:
        return None
    return in_flight or Finding(
        CHANGED, where, f"content hash is {digest}; the ledger recorded {output.file_sha256} ({of})"
    )


def _refused_files_results(relative: str, view: _LedgerView) -> bool:
    """Validation results the ledger lists no output for: the derived tables', and those of a
    file that was refused (`validation_results/<sha>.parquet`, the file not ingested)."""
    if relative == DERIVED_VALIDATION_RESULTS:
        return True
    folder, _, name = relative.partition("/")
    if folder != VALIDATION_RESULTS.name or "/" in name or not name.endswith(".parquet"):
        return False
    record = view.records.get(name.removesuffix(".parquet"))
    return record is not None and record.status != "ingested"

"""The Parquet warehouse: writing one source file's tables, and DuckDB views for analysts.

Layout: `warehouse/<table>/patient_id=<p>/timepoint=<t>/<sha256>.parquet` for patient tables,
`warehouse/<table>/<sha256>.parquet` for plate-level tables. Partition values live in the folder
names only, as hive partitioning expects. Every file is written under a dot-prefixed temporary
name (`stage_source`) and renamed into place (`publish`) only after all of a source's files are
written, so readers (pyarrow and DuckDB both skip dot-files) never see half a source; the engine
journals the renames so that a crash between them is completed or rolled back
(`pipelines.ingest.recovery`). pyarrow's `write_dataset` is not used because its `delete_matching` is neither atomic
nor per-source (NOTES.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.hashing import sha256_of
from pipelines.ledger import Output
from validation.schemas import CAR_COPIES, TABLES, Table
from validation.timepoints import TIMEPOINTS


class SchemaMismatch(ValueError):
    """A frame does not fit its table's schema (a programming error, not bad input)."""


def conform(frame: pd.DataFrame, table: Table) -> pa.Table:
    """The frame as an Arrow table with exactly the table's columns, order and types."""
    unexpected = sorted(set(frame.columns) - set(table.column_names))
    if unexpected:
        raise SchemaMismatch(f"{table.name}: columns not in the schema: {unexpected}")
    arrays = []
    for column in table.schema:
        if column.name in frame.columns:
            values = frame[column.name]
            try:
                arrays.append(_to_arrow(values, column.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
                raise SchemaMismatch(f"{table.name}.{column.name}: {err}") from err
        else:
            arrays.append(pa.nulls(len(frame), column.type))
    return pa.Table.from_arrays(arrays, schema=table.schema)


def _to_arrow(values: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(arrow_type):
        stamps = pd.to_datetime(values, utc=True)
        return pa.array(stamps, type=arrow_type, from_pandas=True)
    if pa.types.is_date(arrow_type):
        dates = pd.to_datetime(values).dt.date
        return pa.array(dates.where(values.notna(), None), type=arrow_type, from_pandas=True)
    if pa.types.is_integer(arrow_type):
        return pa.array(values.astype("Int64"), type=arrow_type, from_pandas=True)
    if pa.types.is_boolean(arrow_type):
        return pa.array(values.astype("boolean"), type=arrow_type, from_pandas=True)
    if pa.types.is_string(arrow_type):
        texts = values.astype(object).where(values.notna(), None)
        return pa.array([None if v is None else str(v) for v in texts], type=arrow_type)
    return pa.array(values, type=arrow_type, from_pandas=True)


def table_dir(warehouse: Path, table: str) -> Path:
    return warehouse / table


def _target_paths(table: Table, data: pa.Table, sha256: str) -> list[tuple[str, pa.Table]]:
    columns = list(table.partition_by)
    if not columns:
        return [(f"{table.name}/{sha256}.parquet", data)]
    keys = data.select(columns)
    if any(keys.column(c).null_count for c in columns):
        raise SchemaMismatch(f"{table.name}: rows without {' or '.join(columns)}")
    payload = data.drop_columns(columns)

    def target(values: tuple) -> str:
        folders = "/".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))
        return f"{table.name}/{folders}/{sha256}.parquet"

    if data.num_rows and all(pc.count_distinct(keys.column(c)).as_py() == 1 for c in columns):
        # one patient and timepoint, as most files hold: no grouping, no copy
        return [(target(tuple(keys.column(c)[0].as_py() for c in columns)), payload)]
    groups = keys.to_pandas().groupby(columns, sort=True).indices
    return [
        (target(values if isinstance(values, tuple) else (values,)), payload.take(pa.array(rows)))
        for values, rows in groups.items()
    ]


@dataclass(frozen=True)
class Staged:
    """One output written under its temporary name, waiting to be renamed into place."""

    temporary: Path
    final: Path
    output: Output


def temporary_name(final: Path, token: str) -> Path:
    """The dot-prefixed name an output is written under first; readers skip dot-files, and the
    token names the batch, so recovery can tell a dead batch's leftovers from a live one's."""
    return final.with_name(f".{final.name}.{token}.tmp")


def temporary_token(name: str) -> str | None:
    """The batch token of a `temporary_name`, or None for any other name."""
    parts = name.split(".")
    if name.startswith(".") and len(parts) >= 4 and parts[-1] == "tmp":
        return parts[-2]
    return None


def stage_source(
    warehouse: Path,
    sha256: str,
    tables: Mapping[str, pa.Table],
    token: str,
    on_written: Callable[[], None] = lambda: None,
) -> list[Staged]:
    """Write one source file's tables under temporary names, each with its SHA-256.

    Nothing is visible to readers yet (`publish`). Should writing fail (a full disk), the files
    written so far are removed before the error propagates. `on_written` is called after each
    file (the engine's fault-injection point).
    """
    staged: list[Staged] = []
    try:
        for name, data in tables.items():
            table = TABLES[name]
            for relative, part in _target_paths(table, data, sha256):
                final = warehouse / relative
                final.parent.mkdir(parents=True, exist_ok=True)
                temporary = temporary_name(final, token)
                staged.append(Staged(temporary, final, Output(name, relative, part.num_rows)))
                pq.write_table(part, temporary, compression="zstd")
                staged[-1] = Staged(
                    temporary, final,
                    Output(name, relative, part.num_rows, sha256_of(temporary)),
                )  # fmt: skip
                on_written()
    except BaseException:
        discard(staged)
        raise
    return staged


def publish(staged: Sequence[Staged]) -> None:
    """Rename staged outputs into place (each rename is atomic; a crash between two is
    completed or rolled back from the commit journal)."""
    for item in staged:
        os.replace(item.temporary, item.final)


def discard(staged: Sequence[Staged]) -> None:
    """Remove staged outputs that will not be published."""
    for item in staged:
        item.temporary.unlink(missing_ok=True)


def write_source(
    warehouse: Path,
    sha256: str,
    tables: Mapping[str, pa.Table],
    previous: Sequence[Output] = (),
) -> list[Output]:
    """Write a source's tables and remove what an earlier write of it no longer holds, without
    a journal: for tables the warehouse rebuilds whole from the curated ones (the derived
    tables), which a crash leaves to the next recompute. Curated tables go through the
    engine's journalled commit (`pipelines.ingest`)."""
    staged = stage_source(warehouse, sha256, tables, "derive")
    publish(staged)
    written = {item.output.path for item in staged}
    remove_outputs(warehouse, [o.path for o in previous if o.path not in written])
    return [item.output for item in staged]


def remove_outputs(warehouse: Path, paths: Sequence[str]) -> None:
    """Delete files a source wrote (superseded or re-partitioned), and empty partition folders."""
    for relative in paths:
        path = warehouse / relative
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != warehouse and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def write_whole_table(warehouse: Path, name: str, data: pa.Table) -> Path:
    """Replace a table held in one file (e.g. the exported ledger), atomically."""
    final = warehouse / name / f"{name}.parquet"
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(data, temporary, compression="zstd")
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final


REPORTABLE_COPIES = """
SELECT c.*, row_number() OVER (
    PARTITION BY c.patient_id, c.timepoint, c.target
    ORDER BY c.plate_qc_verdict = 'PASS' DESC, r.run_started DESC NULLS LAST,
             c.processed_at DESC, c.source_sha256
) = 1 AS reportable
FROM ({rows}) c
LEFT JOIN qpcr_runs r USING (source_sha256, run_id, target)
"""
"""The `car_copies` view: its rows with `reportable`, true for one row per sample (a patient's
draw at a timepoint, whatever name the plate gave it) and target: the one from the latest run
that passed QC (by the run's start time, else when it was taken). A sample measured again keeps every row; the others are
flagged false. Kinetics and the patient page's copies chart read reportable rows only."""


INTERNAL_SCHEMA = "cartflow_internal"
"""Where `connect` keeps the empty stand-ins of tables without files, out of `show tables`."""

TIMEPOINT_TYPE = "timepoint_label"


def connect(warehouse: Path, timepoints_as_enum: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per table over the warehouse's Parquet.

    Tables with no files yet are empty views with the right columns, so queries never fail
    merely because an assay has not delivered data; their stand-ins live in `INTERNAL_SCHEMA`,
    which `show tables` does not list. With `timepoints_as_enum`, `timepoint` is an ENUM in
    study-day order, so `order by timepoint` gives D1, D4, D10 (not D1, D10, D4); pandas then
    receives it as a categorical, which is why the pipeline's own readers keep plain text.
    `car_copies` gains `reportable` (`REPORTABLE_COPIES`).
    """
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {INTERNAL_SCHEMA}")
    if timepoints_as_enum:
        labels = ", ".join(f"'{label}'" for label in TIMEPOINTS)
        con.execute(f"CREATE TYPE {TIMEPOINT_TYPE} AS ENUM ({labels})")
    for name, table in TABLES.items():
        columns = ", ".join(
            f'CAST("{c}" AS {TIMEPOINT_TYPE}) AS "{c}"'
            if timepoints_as_enum and c == "timepoint"
            else f'"{c}"'
            for c in table.column_names
        )
        rows = f"SELECT {columns} FROM {_view_source(con, warehouse, table)}"
        con.execute(f'CREATE VIEW "{name}" AS {view_query(name, rows)}')
    return con


def view_query(name: str, rows: str) -> str:
    """The query of a table's view over `rows`, its written rows."""
    return REPORTABLE_COPIES.format(rows=rows) if name == CAR_COPIES.name else rows


def _view_source(con: duckdb.DuckDBPyConnection, warehouse: Path, table: Table) -> str:
    """The SQL a table's view reads from: its Parquet files, or an empty internal table with
    the table's columns when it has none yet."""
    folder = table_dir(warehouse, table.name)
    files = list(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not any(not f.name.startswith(".") for f in files):
        con.register("stand_in", table.schema.empty_table())
        con.execute(f'CREATE TABLE {INTERNAL_SCHEMA}."{table.name}" AS SELECT * FROM stand_in')
        con.unregister("stand_in")
        return f'{INTERNAL_SCHEMA}."{table.name}"'
    pattern = str(folder / "**" / "*.parquet").replace("'", "''")
    if table.partition_by:
        types = ", ".join(f"'{c}': VARCHAR" for c in table.partition_by)
        return (
            f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true, "
            f"hive_types = {{{types}}})"
        )
    return f"read_parquet('{pattern}', hive_partitioning = false, union_by_name = true)"

"""The tables explained for analysts, from the one table registry (`validation.schemas`):
what `cartflow tables [NAME]` prints, and the README's column reference (`--markdown`).

The README holds the reference between `README_BEGIN` and `README_END`; a test compares it with
`markdown_reference()`, so the README cannot drift from the registry. Regenerate it with
`.venv/bin/python -m pipelines.table_guide README.md`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from validation.schemas import IDENTITY_COLUMNS, PROVENANCE_COLUMNS, TABLES, Column, Table

README_BEGIN = (
    "<!-- tables:begin (generated from validation/schemas.py by "
    "`cartflow tables --markdown`; do not edit by hand) -->"
)
README_END = "<!-- tables:end -->"


class UnknownTable(LookupError):
    """A table name the registry does not hold; the message lists the ones it does."""


def find_table(name: str) -> Table:
    """The table called `name`, else UnknownTable naming every known table."""
    if name in TABLES:
        return TABLES[name]
    raise UnknownTable(f"no table called {name!r}; the tables are: {', '.join(TABLES)}")


def type_name(arrow_type: pa.DataType) -> str:
    """The column's type in words, with the Arrow type pandas, R and Spark readers see."""
    if pa.types.is_list(arrow_type):
        return f"list, each a {type_name(arrow_type.value_type)}"
    if pa.types.is_string(arrow_type):
        words = "text"
    elif pa.types.is_floating(arrow_type):
        words = "number"
    elif pa.types.is_integer(arrow_type):
        words = "whole number"
    elif pa.types.is_boolean(arrow_type):
        words = "true/false"
    elif pa.types.is_timestamp(arrow_type):
        words = "date and time"
    elif pa.types.is_date(arrow_type):
        words = "date"
    else:
        return str(arrow_type)
    return f"{words} ({arrow_type})"


def kind(table: Table) -> str:
    return "derived" if table.derived else "curated"


def partitioning(table: Table) -> str:
    """How the table's Parquet files are laid out, in words."""
    if not table.partition_by:
        return "not partitioned"
    return "a folder per " + " and ".join(table.partition_by)


def table_rows() -> list[tuple[str, str, str]]:
    """One (name, curated or derived, meaning) per table, in registry order."""
    return [(table.name, kind(table), table.description) for table in TABLES.values()]


def column_rows(columns: tuple[Column, ...]) -> list[tuple[str, str, str, str]]:
    """One (name, type, unit, meaning) per column; no unit is an empty string."""
    return [(c.name, type_name(c.type), c.unit or "", c.meaning) for c in columns]


def markdown_reference() -> str:
    """The README's table and column reference, without its markers."""
    lines = [
        "| table | kind | what a row is | layout |",
        "|---|---|---|---|",
        *(
            f"| `{t.name}` | {kind(t)} | {_cell(t.description)} | {partitioning(t)} |"
            for t in TABLES.values()
        ),
        "",
        "Every table starts with the identity columns and ends with the provenance columns "
        "(plate-level tables leave identity empty on rows that belong to no patient, such as "
        "standards and controls):",
        "",
        *_markdown_columns(IDENTITY_COLUMNS + PROVENANCE_COLUMNS),
    ]
    for table in TABLES.values():
        lines += ["", f"#### `{table.name}`", "", _cell(table.description), ""]
        lines += _markdown_columns(table.assay_columns + table.view_columns)
    return "\n".join(lines) + "\n"


def _markdown_columns(columns: tuple[Column, ...]) -> list[str]:
    return [
        "| column | type | unit | meaning |",
        "|---|---|---|---|",
        *(
            f"| `{name}` | {type_} | {unit} | {_cell(meaning)} |"
            for name, type_, unit, meaning in column_rows(columns)
        ),
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme_section(readme: str) -> str | None:
    """The reference as the README holds it between the markers, or None without markers."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        return None
    return readme[begin + len(README_BEGIN) : end].strip("\n") + "\n"


def with_reference(readme: str) -> str:
    """The README with its reference replaced by the registry's."""
    begin, end = readme.index(README_BEGIN), readme.index(README_END)
    return readme[: begin + len(README_BEGIN)] + "\n" + markdown_reference() + readme[end:]


if __name__ == "__main__":
    readme_path = Path(sys.argv[1])
    readme_path.write_text(with_reference(readme_path.read_text(encoding="utf-8")), "utf-8")

"""`cartflow tables [NAME]` and the README's column reference, both from the one table registry."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console
from typer.testing import CliRunner

from pipelines import cli, table_guide
from validation.schemas import TABLES

README = Path(__file__).resolve().parents[2] / "README.md"

UNIT_BY_NAME_ENDING = {
    "_pct": "%",
    "_pg_ml": "pg/mL",
    "_day": "days",
    "cells_per_ul": "cells/µL",
    "copies_per_ug": "copies/µg gDNA",
    "copies_per_reaction": "copies/reaction",
    "_ng": "ng",
}


def _run(*args: str):
    return CliRunner().invoke(cli.app, ["tables", *args])


def _plain_rows(output: str) -> list[list[str]]:
    return [line.split("\t") for line in output.splitlines() if "\t" in line]


def test_the_readme_reference_is_the_registrys():
    held = table_guide.readme_section(README.read_text(encoding="utf-8"))
    assert held is not None, "README.md lacks the tables:begin / tables:end markers"
    assert held == table_guide.markdown_reference(), (
        "README.md's table reference differs from validation/schemas.py: run "
        "`.venv/bin/python -m pipelines.table_guide README.md`"
    )


def test_regenerating_replaces_only_what_is_between_the_markers():
    readme = f"# lab\nbefore\n{table_guide.README_BEGIN}\nstale\n{table_guide.README_END}\nafter\n"
    rewritten = table_guide.with_reference(readme)
    assert rewritten.startswith(f"# lab\nbefore\n{table_guide.README_BEGIN}\n| table |")
    assert rewritten.endswith(f"{table_guide.README_END}\nafter\n")
    assert "stale" not in rewritten
    assert table_guide.readme_section(rewritten) == table_guide.markdown_reference()


def test_every_table_and_column_says_what_it_means():
    for table in TABLES.values():
        assert table.description.strip(), table.name
        for column in table.columns:
            assert len(column.meaning) > 10, (table.name, column.name)


@pytest.mark.parametrize("ending", UNIT_BY_NAME_ENDING)
def test_columns_named_after_a_unit_carry_it(ending):
    """A number named `..._pg_ml` is in pg/mL; an AUC (`auc_...`) is that unit x day."""
    named = [
        (t.name, c.name, c.unit)
        for t in TABLES.values()
        for c in t.columns
        if c.name.endswith(ending) and c.type != pa.string() and not c.name.startswith("auc_")
    ]
    assert named, ending
    assert all(unit == UNIT_BY_NAME_ENDING[ending] for _, _, unit in named), named


def test_the_list_names_every_table_with_its_kind():
    result = _run()
    assert result.exit_code == 0, result.output
    rows = _plain_rows(result.output)
    assert rows[0] == ["table", "kind", "what a row is"]
    assert [r[0] for r in rows[1:]] == list(TABLES)
    kinds = {r[0]: r[1] for r in rows[1:]}
    assert kinds["car_copies"] == "curated" and kinds["car_kinetics"] == "derived"


def test_one_table_lists_its_columns_types_units_and_meanings():
    result = _run("car_copies")
    assert result.exit_code == 0, result.output
    rows = _plain_rows(result.output)
    assert rows[0] == ["column", "type", "unit", "meaning"]
    # the view's own column comes last: it is not in the Parquet files
    assert [r[0] for r in rows[1:]] == [*TABLES["car_copies"].column_names, "reportable"]
    copies = next(r for r in rows if r[0] == "copies_per_ug")
    assert copies[1:3] == ["number (double)", "copies/µg gDNA"]
    assert copies[3].startswith("Transgene copies per µg genomic DNA")
    assert next(r for r in rows if r[0] == "collection_date")[1:3] == ["date (date32[day])", ""]


def test_an_unknown_table_is_a_usage_error_listing_the_known_ones():
    result = _run("car_copy")
    assert result.exit_code == cli.EXIT_USAGE
    assert "no table called 'car_copy'; the tables are: qpcr_wells, qpcr_runs, car_copies" in (
        " ".join(result.stderr.split())
    )


def test_markdown_prints_the_reference():
    result = _run("--markdown")
    assert result.exit_code == 0
    assert result.output == table_guide.markdown_reference()


def test_a_terminal_gets_a_drawn_table(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=screen, force_terminal=True, width=160))
    assert _run("qpcr_runs").exit_code == 0
    drawn = screen.getvalue()
    assert "efficiency_pct" in drawn and "\t" not in drawn
    assert any(ch in drawn for ch in "┃│")

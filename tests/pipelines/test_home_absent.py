"""A lab home that does not exist or never had a file ingested is a usage error (exit 2) for the
commands that read one, naming the folder tried and how it was chosen; never "0 row(s)"."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines import cli
from pipelines.home import LabHome
from pipelines.ledger import Ledger

READING_COMMANDS = (["query", "select count(*) from car_copies"], ["report"], ["status"])


def _run(args: list[str]):
    return CliRunner().invoke(cli.app, args)


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda c: c[0])
def test_a_typoed_home_option_is_refused_naming_the_folder_and_the_option(tmp_path, command):
    LabHome(tmp_path / "lab").ensure()
    typo = tmp_path / "lba"
    result = _run([*command, "--home", str(typo)])
    assert result.exit_code == cli.EXIT_USAGE, result.output
    assert f"no lab home at {typo} (chosen by the --home option): the folder does not exist" in (
        result.stderr
    )
    assert "row(s)" not in result.output
    assert not typo.exists()


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda c: c[0])
def test_a_folder_where_nothing_was_ingested_is_refused(tmp_path, command):
    empty = LabHome(tmp_path / "lab").ensure()
    result = _run([*command, "--home", str(empty.root)])
    assert result.exit_code == cli.EXIT_USAGE, result.output
    assert "holds no ledger: no file was ever ingested there" in result.stderr


def test_the_default_lab_of_the_current_folder_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARTFLOW_HOME", raising=False)
    result = _run(["query", "select 1"])
    assert result.exit_code == cli.EXIT_USAGE, result.output
    assert f"no lab home at {tmp_path / 'lab'} (chosen by the default ./lab" in result.stderr


def test_the_home_variable_is_named_when_it_chose_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTFLOW_HOME", str(tmp_path / "elsewhere"))
    result = _run(["status"])
    assert result.exit_code == cli.EXIT_USAGE, result.output
    assert "(chosen by the CARTFLOW_HOME variable)" in result.stderr


def test_a_file_given_as_home_is_not_a_folder(tmp_path):
    not_a_folder = tmp_path / "lab.txt"
    not_a_folder.write_text("x")
    assert LabHome.locate(not_a_folder).absence() == "it is not a folder"


def test_a_home_with_a_ledger_is_read(tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    Ledger(home.ledger_path).receive("a" * 64, 10, "plate1.txt")
    assert home.absence() is None
    result = _run(["status", "--home", str(home.root)])
    assert result.exit_code == cli.EXIT_OK, result.output
    assert "1 received" in result.output

"""`CARTFLOW_*` variables: one declaration each, one reader, one table in the README
(`pipelines.environment`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gating.engine import THREADS_VARIABLE
from pipelines import environment
from pipelines.environment import (
    VARIABLES,
    EnvironmentValueError,
    env_value,
    environment_problems,
)

REPO = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("pipelines", "gating", "qpcr", "cba", "validation")


@pytest.mark.parametrize(
    ("variable", "raw", "value"),
    [
        (environment.LOCAL_WORKERS, "12", 12), (environment.LOCAL_WORKERS, " 3 ", 3),
        (environment.GATING_THREADS, "1", 1), (environment.PORT, "65535", 65535),
        (environment.LOCAL_CLUSTER_MIN_FILES, "+4", 4),
        (environment.STEADY_SECONDS, "0", 0.0), (environment.RESCAN_SECONDS, "2.5", 2.5),
        (environment.WORKER_QUERY_SECONDS, "1e1", 10.0),
        (environment.WATCH_POLLING, "Yes", True), (environment.WATCH_POLLING, "off", False),
        (environment.WATCH_SUBMIT, "deployment", "deployment"),
        (environment.TIMEZONE, "Europe/Paris", "Europe/Paris"),
        (environment.NIGHTLY_CRON, "30 1 * * 1-5", "30 1 * * 1-5"),
        (environment.FAULT, "journalled:3", ("journalled", 3)),
        (environment.FAULT, "raw-stored", ("raw-stored", 1)),
        (environment.HOME, "/srv/lab", Path("/srv/lab")),
    ],
)  # fmt: skip
def test_values_are_read_as_their_type(variable, raw, value) -> None:
    assert env_value(variable, None, {variable.name: raw}) == value


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        (environment.LOCAL_WORKERS, "0"), (environment.LOCAL_WORKERS, "-2"),
        (environment.LOCAL_WORKERS, "1_000"), (environment.LOCAL_WORKERS, "12.0"),
        (environment.LOCAL_WORKERS, "٣"), (environment.GATING_THREADS, "two"),
        (environment.LOCAL_CLUSTER_MIN_FILES, "0x10"), (environment.PORT, "0"),
        (environment.PORT, "65536"), (environment.STEADY_SECONDS, "-1"),
        (environment.RESCAN_SECONDS, "0"), (environment.RESCAN_SECONDS, "inf"),
        (environment.WORKER_QUERY_SECONDS, "nan"), (environment.WATCH_POLLING, "maybe"),
        (environment.WATCH_SUBMIT, "Inline"), (environment.TIMEZONE, "Mars/Olympus"),
        (environment.TIMEZONE, "../../etc/passwd"), (environment.NIGHTLY_CRON, "0 2 * *"),
        (environment.FAULT, "journalled:0"), (environment.FAULT, "journalled:x"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_the_variable_the_value_and_the_expectation(
    variable, raw
) -> None:
    with pytest.raises(EnvironmentValueError) as refusal:
        env_value(variable, None, {variable.name: raw})
    assert str(refusal.value) == f"{variable.name}={raw!r}: expected {variable.expected}"


def test_unset_or_empty_gives_the_default() -> None:
    assert env_value(environment.LOCAL_WORKERS, 7, {}) == 7
    assert env_value(environment.LOCAL_WORKERS, 7, {"CARTFLOW_LOCAL_WORKERS": "  "}) == 7


def test_all_problems_are_listed_together() -> None:
    problems = environment_problems({
        "CARTFLOW_PORT": "http", "CARTFLOW_LOCAL_WORKERS": "4", "CARTFLOW_GATING_THREADS": "0",
    })  # fmt: skip
    assert problems == [
        f"CARTFLOW_PORT='http': expected {environment.PORT.expected}",
        f"CARTFLOW_GATING_THREADS='0': expected {environment.GATING_THREADS.expected}",
    ]


def variable_names_in(path: Path) -> list[str]:
    """String constants of a module that are a variable's name: what reading one by hand
    (`os.environ.get("CARTFLOW_...")`, `envvar="CARTFLOW_..."`) needs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and re.fullmatch(r"CARTFLOW_[A-Z_]+", node.value)
    ]  # fmt: skip


def test_every_variable_is_declared_once_and_read_only_through_env_value() -> None:
    """The one exception is the gating library's thread cap: a library may not import the
    pipeline, so it reads its variable itself, under the name the pipeline declares."""
    names = [variable.name for variable in VARIABLES]
    assert len(set(names)) == len(names) and all(n.startswith("CARTFLOW_") for n in names)
    declared = REPO / "pipelines" / "environment.py"
    readers = [
        path.relative_to(REPO)
        for folder in SOURCE_FOLDERS
        for path in (REPO / folder).rglob("*.py")
        if path != declared and variable_names_in(path)
    ]
    assert readers == [Path("gating/engine/_threads.py")]
    assert environment.GATING_THREADS.name == THREADS_VARIABLE


def test_the_readme_table_lists_every_variable_with_its_expectation() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = {
        match.group(1): line
        for line in readme.splitlines()
        if (match := re.match(r"\| `(CARTFLOW_[A-Z_]+)` \|", line))
    }
    assert sorted(rows) == sorted(variable.name for variable in VARIABLES)
    for variable in VARIABLES:
        assert variable.expected in rows[variable.name]

"""`cartflow.toml`: every field of every section is accepted with a value of its type and refused
with any other, unknown sections and keys are refused with a suggestion, and each section's
ranges apply (`pipelines.settings`). Table-driven over the dataclasses themselves, so a field
added to a section is covered without a new test."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.settings import SETTINGS_FILE, Settings, SettingsError, expected

SECTIONS = {f.name: typing.get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)}
FIELDS = [
    (section, spec.name, typing.get_type_hints(cls)[spec.name], spec)
    for section, cls in SECTIONS.items()
    for spec in dataclasses.fields(cls)
]
FIELD_IDS = [f"{section}.{name}" for section, name, _, _ in FIELDS]


# -- writing TOML (the standard library reads it only) ------------------------------------------
def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_settings(home: Path, sections: dict[str, dict[str, Any]]) -> Path:
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in table.items())
        for name, table in sections.items()
    )
    path = home / SETTINGS_FILE
    path.write_text(text, encoding="utf-8")
    return path


def refusal(home: Path, sections: dict[str, dict[str, Any]]) -> str:
    write_settings(home, sections)
    with pytest.raises(SettingsError) as refused:
        Settings.load(home)
    return str(refused.value)


# -- values of a field's type, as the file spells them -------------------------------------------
def plain(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        [hint] = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return hint


def as_toml(value: Any) -> Any:
    """A default as the file would spell it."""
    if dataclasses.is_dataclass(value):
        return {k: as_toml(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, tuple | list):
        return [as_toml(v) for v in value]
    if isinstance(value, Mapping):
        return {k: as_toml(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


SAMPLES: dict[Any, Any] = {bool: True, int: 3, float: 2.5, str: "text", Path: "template.xml"}
"""A value of each scalar type that every field of that type accepts (ranges included)."""


def sample(hint: Any) -> Any:
    """A valid value of the annotation, built from the type alone (for fields whose default is
    None or empty)."""
    hint = plain(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return {f.name: sample(hints[f.name]) for f in dataclasses.fields(hint)}
    if origin in (tuple, list):
        return [sample(args[0])]
    if origin in (dict, Mapping):
        return {"tcell": sample(args[1])}
    return SAMPLES[hint]


VALID_BY_FIELD: dict[str, Any] = {
    "analyte_aliases": {"My-IL6": "IL-6"},  # its values must name an analyte the vocabulary knows
}


def valid_value(hint: Any, spec: dataclasses.Field) -> Any:
    """The field's default as the file spells it, or a value made from its type."""
    if spec.name in VALID_BY_FIELD:
        return VALID_BY_FIELD[spec.name]
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else (
        spec.default
    )  # fmt: skip
    if default is None or default == {} or default is dataclasses.MISSING:
        return sample(hint)
    return as_toml(default)


WRONG: dict[Any, Any] = {
    bool: "yes", int: 2.5, float: "high", str: 3, Path: 3,
}  # fmt: skip


def wrong_value(hint: Any) -> Any:
    """A value of another type than the annotation's."""
    hint = plain(hint)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or origin in (dict, Mapping):
        return 3
    if origin in (tuple, list):
        return "a single text, not a list"
    return WRONG[hint]


# -- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("section", "name", "hint", "spec"), FIELDS, ids=FIELD_IDS)
def test_every_field_takes_a_value_of_its_type(tmp_path, section, name, hint, spec) -> None:
    value = valid_value(hint, spec)
    write_settings(tmp_path, {section: {name: value}})
    loaded = getattr(Settings.load(tmp_path), section)
    if plain(hint) in (int, float, str, bool):
        assert getattr(loaded, name) == value


@pytest.mark.parametrize(("section", "name", "hint", "spec"), FIELDS, ids=FIELD_IDS)
def test_every_field_refuses_a_value_of_another_type(tmp_path, section, name, hint, spec) -> None:
    message = refusal(tmp_path, {section: {name: wrong_value(hint)}})
    assert message.startswith(f"{tmp_path / SETTINGS_FILE}: [{section}] {name} = ")
    assert ": expected " in message
    assert len(message.splitlines()) == 1


SCALAR_FIELDS = [f for f in FIELDS if plain(f[2]) in (bool, int, float, str, Path)]


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(SCALAR_FIELDS),
    value=st.one_of(
        st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=5), st.lists(st.integers(), max_size=2),
    ),
)  # fmt: skip
def test_a_scalar_field_takes_only_its_own_type(tmp_path_factory, field, value) -> None:
    """A value whose TOML type is not the field's is refused; one of its type is at least not
    refused for its type (a range may still refuse it, naming the key)."""
    section, name, hint, _ = field
    hint = plain(hint)
    home = tmp_path_factory.mktemp("home")
    write_settings(home, {section: {name: value}})
    fits = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool)
        and value == value and abs(value) != float("inf"),
        str: isinstance(value, str), Path: isinstance(value, str),
    }[hint]  # fmt: skip
    type_refusal = f": expected {expected(hint)}"
    try:
        Settings.load(home)
    except SettingsError as refused:
        message = str(refused)
        assert message.startswith(f"{home / SETTINGS_FILE}: [{section}] ") and name in message
        refused_for_its_type = any(line.endswith(type_refusal) for line in message.splitlines())
        assert refused_for_its_type != fits
    else:
        assert fits


def test_a_misspelled_section_is_refused_with_the_section_meant(tmp_path) -> None:
    message = refusal(tmp_path, {"qcpr": {"efficiency_min_pct": 85}})
    assert message == f"{tmp_path / SETTINGS_FILE}: [qcpr] is not a section; did you mean [qpcr]?"


@pytest.mark.parametrize(
    ("section", "typo", "meant"),
    [
        ("identity", "sample_name_patern", "sample_name_pattern"),
        ("ingest", "claim_expiry_minute", "claim_expiry_minutes"),
        ("qpcr", "efficency_min_pct", "efficiency_min_pct"),
        ("flow", "beads_per_tube", "beads_per_test"),
        ("cba", "modle", "model"),
        ("derived", "aplasia_threshold_cells_per_uL", "aplasia_threshold_cells_per_ul"),
    ],
)
def test_a_misspelled_key_is_refused_with_the_key_meant(tmp_path, section, typo, meant) -> None:
    message = refusal(tmp_path, {section: {typo: 1}})
    assert message == (
        f"{tmp_path / SETTINGS_FILE}: [{section}] {typo} is not a setting; did you mean {meant}?"
    )


def test_a_key_with_no_near_name_lists_the_known_ones(tmp_path) -> None:
    message = refusal(tmp_path, {"ingest": {"zzz": 1}})
    assert message.endswith("[ingest] zzz is not a setting; known: claim_expiry_minutes")


def test_a_key_outside_any_section_is_sent_to_its_section(tmp_path) -> None:
    path = tmp_path / SETTINGS_FILE
    path.write_text('sample_name_pattern = "(?P<patient>P1)_(?P<timepoint>D1)"\n')
    with pytest.raises(SettingsError, match=r"outside any section; put it under \[identity\]"):
        Settings.load(tmp_path)


def test_every_problem_of_the_file_is_reported_at_once(tmp_path) -> None:
    message = refusal(tmp_path, {
        "qcpr": {}, "qpcr": {"r_squared_min": "high", "efficency_min_pct": 80},
        "flow": {"default_transform": {"w": 0.5, "q": 1}},
        "derived": {"qc_targets": {"qpcr:CAR:slope": {"mean": -3.3}}},
    })  # fmt: skip
    path = tmp_path / SETTINGS_FILE
    assert message.splitlines() == [
        f"{path}: [qcpr] is not a section; did you mean [qpcr]?",
        f"{path}: [qpcr] r_squared_min = 'high': expected a number",
        f"{path}: [qpcr] efficency_min_pct is not a setting; did you mean efficiency_min_pct?",
        f"{path}: [flow] default_transform.q is not a setting; known: t, w, m, a",
        f"{path}: [derived] qc_targets.qpcr:CAR:slope.sd is missing; it has no default",
    ]


@pytest.mark.parametrize(
    ("section", "values", "words"),
    [
        ("identity", {"sample_name_pattern": "^(?P<patient>P\\d+"}, "not a valid regular expression"),
        ("identity", {"sample_name_pattern": "^(?P<patient>P\\d+)_(.+)$"}, "missing timepoint"),
        ("qpcr", {"efficiency_min_pct": 112}, "expected 0 < min < max"),
        ("qpcr", {"r_squared_min": 1.5}, "r_squared_min = 1.5: expected above 0, at most 1"),
        ("qpcr", {"default_dna_input_ng": 0}, "default_dna_input_ng = 0: expected a number above 0"),
        ("cba", {"model": "3PL"}, "model = '3PL': expected one of auto, 4PL, 5PL"),
        ("cba", {"dilution_factor": 1}, "dilution_factor = 1: expected above 1"),
        ("flow", {"gating_engine": "turbo"}, "expected one of fast, flowkit"),
        ("flow", {"panel_patterns": {"tcell": "(T cell"}}, "panel_patterns.tcell"),
        ("ingest", {"claim_expiry_minutes": 0}, "expected a number above 0"),
        ("derived", {"qc_min_runs_for_limits": 30}, "qc_min_runs_for_limits <= qc_baseline_runs"),
        ("derived", {"qc_targets": {"x": {"mean": 1.0, "sd": 0}}}, "sd = 0: expected a number"),
        ("qpcr", {"ntc_cq_cutoff": float("nan")}, "ntc_cq_cutoff = nan: expected a number"),
    ],
)  # fmt: skip
def test_ranges_are_refused_naming_the_section_and_key(tmp_path, section, values, words) -> None:
    message = refusal(tmp_path, {section: values})
    assert message.startswith(f"{tmp_path / SETTINGS_FILE}: [{section}] ")
    assert words in message


def test_values_reach_their_sections(tmp_path) -> None:
    write_settings(tmp_path, {
        "identity": {"sample_name_pattern": "^(?P<patient>PT\\d+)-(?P<timepoint>.+)$"},
        "qpcr": {"default_dna_input_ng": 150, "car_targets": ["FMC63"]},
        "flow": {"marker_aliases": {"CAR": ["KappaCAR"]}, "templates": {"tcell": "t.xml"}},
        "derived": {"qc_targets": {"qpcr:CAR:slope": {"mean": -3.3, "sd": 0.05}}},
        "cba": {"model": "auto"},
        "ingest": {"claim_expiry_minutes": 5},
    })  # fmt: skip
    loaded = Settings.load(tmp_path)
    assert loaded.sample_name_pattern == "^(?P<patient>PT\\d+)-(?P<timepoint>.+)$"
    assert (loaded.qpcr.default_dna_input_ng, loaded.qpcr.car_targets) == (150, ("FMC63",))
    assert (
        "KappaCAR" in loaded.flow.marker_aliases["CAR"]
        and "FMC63" in loaded.flow.marker_aliases["CAR"]
    )
    assert loaded.flow.templates["tcell"] == Path("t.xml") and "bcell" in loaded.flow.templates
    target = loaded.derived.qc_targets["qpcr:CAR:slope"]
    assert (target.mean, target.sd) == (-3.3, 0.05)
    assert (loaded.cba.model, loaded.ingest.claim_expiry_minutes) == ("auto", 5)


def test_no_file_gives_the_defaults_and_a_broken_file_is_named(tmp_path) -> None:
    assert Settings.load(tmp_path) == Settings()
    (tmp_path / SETTINGS_FILE).write_text("[qpcr\n")
    with pytest.raises(SettingsError, match=r"cartflow.toml: not valid TOML \(.*\); fix the file"):
        Settings.load(tmp_path)

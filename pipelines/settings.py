"""The lab's settings: `cartflow.toml` in the lab home, every key optional.

```toml
[identity]
sample_name_pattern = '^(?P<patient>P\\d{2,4})[ _-]+(?P<timepoint>.+)$'

[qpcr]
efficiency_min_pct = 90
r_squared_min = 0.98
default_dna_input_ng = 200
```

The file is read once, whole, before a command does any work (`Settings.load`). Every section is
checked by the one mechanism here, against its dataclass: a section or key that is not a field
is refused with "did you mean", a value of the wrong type with what the field holds (from its
annotation), and then the dataclass's own range checks (its `__post_init__`) run. Every problem
in the file is reported at once, one line each, naming the file and the key. The assay packages
keep their dataclasses and ranges; a field added to one is checked here without more code.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from assaykit import settings_from_dict
from cba.settings import CbaSettings
from gating.settings import FlowSettings, flow_settings_from_dict
from pipelines.derived.settings import DerivedSettings
from qpcr.settings import QpcrSettings

DEFAULT_SAMPLE_NAME_PATTERN = (
    r"^(?P<patient>[A-Za-z]{1,4}\d{1,5})[ _-]+(?P<timepoint>[A-Za-z][A-Za-z0-9 +._-]*)$"
)
"""`P012_D14`, `P012-Day 14`, `PT7 BL`: a patient code, a separator, a timepoint spelling."""
PATTERN_GROUPS = ("patient", "timepoint")

SETTINGS_FILE = "cartflow.toml"


class SettingsError(ValueError):
    """`cartflow.toml` cannot be used: one line per problem, each naming the file and the key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class IdentitySettings:
    """`[identity]`: how sample names resolve where the manifest does not name them."""

    sample_name_pattern: str = DEFAULT_SAMPLE_NAME_PATTERN
    """A regular expression with the named groups `patient` and `timepoint`."""

    def __post_init__(self) -> None:
        try:
            groups = re.compile(self.sample_name_pattern).groupindex
        except re.error as err:
            raise ValueError(
                f"sample_name_pattern = {self.sample_name_pattern!r} is not a valid regular "
                f"expression ({err}); fix it or remove the key for the default"
            ) from err
        missing = [name for name in PATTERN_GROUPS if name not in groups]
        if missing:
            raise ValueError(
                f"sample_name_pattern = {self.sample_name_pattern!r}: expected the named groups "
                f"(?P<patient>...) and (?P<timepoint>...); missing {' and '.join(missing)}"
            )


@dataclass(frozen=True)
class IngestSettings:
    """`[ingest]`: how the engine treats claims (`pipelines.ingest.claims`)."""

    claim_expiry_minutes: float = 15.0
    """A claim held by a run on another host is taken to be dead once its heartbeat (renewed
    every 30 s while the run lives) is older than this; a claim of a process on this host is
    judged by that process at once."""

    def __post_init__(self) -> None:
        if self.claim_expiry_minutes <= 0:
            raise ValueError(
                f"claim_expiry_minutes = {self.claim_expiry_minutes}: expected a number above 0"
            )


def section(cls: type, read: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """A section of `cartflow.toml`: the dataclass of its defaults, and how its checked table
    becomes settings: the section's own `from_dict` where a value means more than itself (a
    default table it extends), else the one settings helper, `assaykit.settings_from_dict`."""
    return field(
        default_factory=cls,
        metadata={"read": read or (lambda table: settings_from_dict(cls, table))},
    )


@dataclass(frozen=True)
class Settings:
    """Every section of `cartflow.toml`: the fields of this class are the file's sections."""

    identity: IdentitySettings = section(IdentitySettings)
    ingest: IngestSettings = section(IngestSettings)
    qpcr: QpcrSettings = section(QpcrSettings, QpcrSettings.from_dict)
    flow: FlowSettings = section(FlowSettings, flow_settings_from_dict)
    cba: CbaSettings = section(CbaSettings, CbaSettings.from_dict)
    derived: DerivedSettings = section(DerivedSettings, DerivedSettings.from_dict)

    @property
    def sample_name_pattern(self) -> str:
        return self.identity.sample_name_pattern

    @classmethod
    def load(cls, home: Path) -> Settings:
        """Settings from `<home>/cartflow.toml`, defaults where the file or a key is absent;
        raises SettingsError listing every problem in the file."""
        return settings_from_table(read_settings_file(home), home / SETTINGS_FILE)


def read_settings_file(home: Path) -> dict[str, Any]:
    """The parsed `<home>/cartflow.toml`, empty when there is none; a file that is not TOML
    is a SettingsError."""
    path = home / SETTINGS_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SettingsError([f"{path}: not valid TOML ({err}); fix the file"]) from err
    except UnicodeDecodeError as err:
        raise SettingsError([f"{path}: not UTF-8 text; save it as UTF-8"]) from err


def settings_from_table(data: Mapping[str, Any], path: Path) -> Settings:
    """`Settings` from a parsed settings file, every section checked (see the module's text)."""
    problems: list[str] = []
    sections = {f.name: f for f in fields(Settings)}
    hints = typing.get_type_hints(Settings)
    built: dict[str, Any] = {}
    for name, table in data.items():
        if name not in sections:
            problems.append(f"{path}: {_unknown_section(name, table)}")
        elif not isinstance(table, dict):
            problems.append(f"{path}: {name} = {_shown(table)}: expected a section [{name}]")
        else:
            found = _table_problems(hints[name], table, f"[{name}]")
            problems += [f"{path}: {problem}" for problem in found]
            if not found:
                try:
                    built[name] = sections[name].metadata["read"](table)
                except ValueError as err:
                    problems.append(f"{path}: [{name}] {err}")
    if problems:
        raise SettingsError(problems)
    return Settings(**built)


def _unknown_section(name: str, value: Any) -> str:
    """Why a top-level name is refused, and what was probably meant."""
    sections = [f.name for f in fields(Settings)]
    hints = typing.get_type_hints(Settings)
    if not isinstance(value, dict):
        homes = [s for s in sections if name in {f.name for f in fields(hints[s])}]
        if homes:
            return f"{name} is outside any section; put it under [{homes[0]}]"
        return f"{name} is outside any section; {_suggestion(name, sections, '[{}]')}"
    return f"[{name}] is not a section; {_suggestion(name, sections, '[{}]')}"


def _suggestion(name: str, known: list[str], form: str = "{}") -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {form.format(close[0])}?"
    return "known: " + ", ".join(form.format(k) for k in known)


def _table_problems(cls: type, table: dict[str, Any], where: str) -> list[str]:
    """The problems of a table read into the dataclass `cls`: unknown keys, missing required
    keys, values of the wrong type (nested tables are checked the same way)."""
    known = {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    problems = []
    for key, value in table.items():
        if key not in known:
            problems.append(f"{_at(where, key)} is not a setting; {_suggestion(key, list(known))}")
        else:
            problems += _value_problems(hints[key], value, _at(where, key))
    for name, spec in known.items():
        if name not in table and _required(spec):
            problems.append(f"{_at(where, name)} is missing; it has no default")
    return problems


def _at(where: str, key: str) -> str:
    """`[qpcr] r_squared_min`, `[flow] default_transform.w`: a key's place in the file."""
    return f"{where} {key}" if where.endswith("]") else f"{where}.{key}"


def _required(spec: Field) -> bool:
    return spec.default is MISSING and spec.default_factory is MISSING


def _value_problems(hint: Any, value: Any, where: str) -> list[str]:
    """[] when `value` (as TOML gives it) fits the annotation `hint`, else why not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        [hint] = [arg for arg in args if arg is not type(None)]  # TOML has no None
        return _value_problems(hint, value, where)
    if is_dataclass(hint):
        if not isinstance(value, dict):
            return [_wrong(hint, value, where)]
        return _table_problems(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, list):
            return [_wrong(hint, value, where)]
        return [
            problem
            for index, item in enumerate(value)
            for problem in _value_problems(args[0], item, f"{where}[{index}]")
        ]
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            return [_wrong(hint, value, where)]
        return [
            problem
            for key, item in value.items()
            for problem in _value_problems(args[1], item, _at(where, key))
        ]
    return [] if _fits(hint, value) else [_wrong(hint, value, where)]


def _fits(hint: Any, value: Any) -> bool:
    """Whether a TOML scalar is a value of the plain type `hint`."""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if hint in (str, Path):
        return isinstance(value, str)
    raise TypeError(f"settings fields of type {hint!r} are not supported by cartflow.toml")


def _wrong(hint: Any, value: Any, where: str) -> str:
    return f"{where} = {_shown(value)}: expected {expected(hint)}"


def expected(hint: Any) -> str:
    """What a field annotated `hint` holds, in the words of a refusal."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        [hint] = [arg for arg in args if arg is not type(None)]
        return expected(hint)
    if is_dataclass(hint):
        return "a table with " + ", ".join(f.name for f in fields(hint))
    if origin in (tuple, list):
        return f"a list of {_plural(args[0])}"
    if origin in (dict, Mapping):
        return f"a table of {_plural(args[1])}"
    return _SCALAR_WORDS[hint]


_SCALAR_WORDS = {
    bool: "true or false", int: "a whole number", float: "a number",
    str: "text in quotes", Path: "a file path in quotes",
}  # fmt: skip
_SCALAR_PLURALS = {bool: "true/false values", int: "whole numbers", float: "numbers",
                   str: "texts in quotes", Path: "file paths in quotes"}  # fmt: skip


def _plural(hint: Any) -> str:
    if hint in _SCALAR_PLURALS:
        return _SCALAR_PLURALS[hint]
    return f"({expected(hint)})"


def _shown(value: Any) -> str:
    """A value as the file spells it, cut short."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str | int | float):
        text = repr(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(_shown(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_shown(v)}" for k, v in value.items()) + "}"
    else:  # a TOML date or time
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."

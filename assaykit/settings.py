"""The one settings helper: an assay section of `cartflow.toml` (a table of plain TOML values)
into the library's frozen settings dataclass."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

S = TypeVar("S")


def settings_from_dict(
    cls: type[S],
    values: Mapping[str, Any],
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
) -> S:
    """`cls(**values)` where each value is made what its field holds: by `convert[key]` where
    given (a table that extends a default, a table of nested settings), else a list becomes a
    tuple (settings are frozen) and any other value is kept.

    A key that is not a field of `cls` is an error (`ValueError` naming it, with the closest
    field), never silently ignored: a misspelt threshold must not leave the default in force.
    The dataclass's own `__post_init__` checks the ranges.
    """
    known = [spec.name for spec in fields(cls)]  # type: ignore[arg-type]
    unknown = [key for key in values if key not in known]
    if unknown:
        raise ValueError("; ".join(_unknown_key(key, known) for key in unknown))
    convert = convert or {}
    converted = {
        key: convert[key](value)
        if key in convert
        else tuple(value)
        if isinstance(value, list)
        else value
        for key, value in values.items()
    }
    return cls(**converted)


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(known)
    return f"{key} is not a setting; {hint}"

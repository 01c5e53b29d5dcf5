"""Names shown to people and names given to quarantined files (`validation.names`)."""

from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from validation.names import MAX_NAME_BYTES, REASON_SUFFIX, quarantine_name, shown

# the characters shown() must escape, and ordinary text around them
DANGEROUS = st.sampled_from(
    [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]
    + ["\u2028", "\u2029", "\u200e", "\u200f", "\u061c"]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
    + [chr(c) for c in (0xDC80, 0xDCFF, 0xD800, 0xDFFF)]
)
TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"), DANGEROUS, st.sampled_from(["\\", "/", ".", "é", "漢"])
    ),
    max_size=400,
)
EXTENSION = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789"), min_size=1,
                    max_size=10)  # fmt: skip


def _unsafe(char: str) -> bool:
    return (
        unicodedata.category(char) in ("Cc", "Cs")
        or char in "\u2028\u2029\u200e\u200f\u061c"
        or 0x202A <= ord(char) <= 0x202E
        or 0x2066 <= ord(char) <= 0x2069
    )


@given(TEXT)
def test_shown_never_holds_a_control_or_layout_character(text):
    out = shown(text)
    assert not any(_unsafe(c) for c in out)
    out.encode("utf-8")  # printable on any UTF-8 terminal: no lone surrogates left


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp"))))
def test_printable_text_is_shown_as_it_is(text):
    assert shown(text) == text


@given(TEXT)
def test_shown_twice_is_shown_once(text):
    assert shown(shown(text)) == shown(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plate\n1.txt", "plate\\n1.txt"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[31mred\x1b[0m.fcs", "\\x1b[31mred\\x1b[0m.fcs"),
        ("x\x00y\x7fz\x85", "x\\x00y\\x7fz\\x85"),
        ("evil\u202excod.fcs", "evil\\u202excod.fcs"),
        ("line\u2028sep\u2066", "line\\u2028sep\\u2066"),
        ("C:\\exports\\plate.txt", "C:\\exports\\plate.txt"),
        ("Zellzählung 漢字.fcs", "Zellzählung 漢字.fcs"),
    ],
)
def test_shown_escapes(text, expected):
    assert shown(text) == expected


def test_bytes_that_were_not_utf8_are_shown_as_the_bytes():
    name = os.fsdecode(b"plate\xff\xfe.txt")
    assert shown(name) == "plate\\xff\\xfe.txt"


def test_a_forged_line_stays_on_its_line():
    name = "plate.txt: ok\ntaken       forged.fcs"
    assert "\n" not in shown(name) and shown(name).count("taken") == 1


# -- quarantine_name -----------------------------------------------------------------------


def _fits(name: str) -> bool:
    return len((name + REASON_SUFFIX).encode("utf-8")) <= MAX_NAME_BYTES


@given(TEXT)
def test_a_quarantine_name_always_fits_beside_its_reason(name):
    safe = quarantine_name(name)
    assert _fits(safe)
    assert safe and safe not in (".", "..") and "/" not in safe
    assert not any(_unsafe(c) for c in safe)


@given(TEXT, EXTENSION)
def test_a_quarantine_name_keeps_its_extension(stem, extension):
    name = f"x{stem}.{extension}"
    assert quarantine_name(name).endswith("." + extension)


@given(TEXT)
def test_a_quarantine_name_is_stable_and_given_again_unchanged(name):
    safe = quarantine_name(name)
    assert quarantine_name(name) == safe
    assert quarantine_name(safe) == safe


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=60))
def test_a_short_plain_name_is_unchanged(name):
    if name not in ("", ".", "..") and "/" not in name and shown(name) == name:
        assert quarantine_name(name) == name


def test_a_250_character_name_is_shortened_with_its_extension_and_a_hash():
    name = "P001_D14_" + "x" * 237 + ".fcs"
    assert len(name) == 250
    safe = quarantine_name(name)
    assert _fits(safe) and len((safe + REASON_SUFFIX).encode()) == MAX_NAME_BYTES
    assert safe.startswith("P001_D14_xxx") and safe.endswith(".fcs")
    assert safe[-13] == "~" and all(c in "0123456789abcdef" for c in safe[-12:-4])


def test_two_long_names_alike_up_to_the_cut_stay_apart():
    first, second = "a" * 300 + "1.fcs", "a" * 300 + "2.fcs"
    assert quarantine_name(first) != quarantine_name(second)


def test_a_long_name_is_cut_between_characters():
    name = "é" * 200 + ".txt"  # 400 bytes
    safe = quarantine_name(name)
    assert _fits(safe) and safe.endswith(".txt") and safe.startswith("é" * 100)
    safe.encode("utf-8")


def test_a_long_odd_suffix_is_not_kept_as_an_extension():
    safe = quarantine_name("a" * 300 + ".not an extension")
    assert _fits(safe) and not safe.endswith(".not an extension")


def test_a_name_of_control_characters_is_still_a_usable_name():
    assert quarantine_name("\n\r\x1b") == "\\n\\r\\x1b"
    assert quarantine_name("") == "_"
    assert quarantine_name("..") == "_.."
    assert quarantine_name("a/b") == "a_b"


def test_room_is_kept_for_a_counter():
    name = "b" * 260 + ".csv"
    safe = quarantine_name(name, reserve=len(" (9999)"))
    assert len(safe.encode()) + len(" (9999)") + len(REASON_SUFFIX) <= MAX_NAME_BYTES

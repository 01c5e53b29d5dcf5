"""File names and reasons made safe to show, and to use as quarantine file names.

A file name is whatever bytes the instrument PC or the technician gave it: a newline in a name
would forge a second line of output (`taken  forged.fcs: ...`), an escape sequence would reach the
terminal raw, a right-to-left override would show `cod.exe` as `exe.doc`, and a name near the
filesystem's 255-byte limit leaves no room for the `.reason.txt` written beside it.

`shown(text)` replaces every such character by a visible escape, for terminals, reasons, reports:

- control characters (C0 including `\\n`, `\\r`, `\\t`; DEL; C1 0x80-0x9f): `\\n`, `\\r`, `\\t`,
  otherwise `\\xNN`;
- the characters that break lines or reorder text (U+2028, U+2029, U+200E, U+200F, U+061C,
  U+202A-U+202E, U+2066-U+2069): `\\uXXXX`;
- bytes that were not UTF-8, which `os.fsdecode` turns into U+DC80-U+DCFF: `\\xNN` (the byte);
  any other lone surrogate: `\\uXXXX`.

Backslashes are left as they are, so a name that holds a literal `\\n` reads the same as one that
holds a newline: the point is that nothing the name holds can act on the terminal, not that the
escape can be undone. Everything else, letters of any script included, is shown as it is.

`quarantine_name(name)` is the name a refused file is kept under in `quarantine/`: `shown(name)`
(so the folder lists cleanly too) with `/` made impossible, shortened only when it does not fit
`MAX_NAME_BYTES` together with the `.reason.txt` beside it.
"""

from __future__ import annotations

import hashlib

MAX_NAME_BYTES = 255
"""The file name limit, in bytes, of the filesystems a lab home lives on (ext4, XFS, SMB)."""
REASON_SUFFIX = ".reason.txt"
"""Added to a quarantined file's name for the file holding its reason."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LAYOUT = (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _escapes() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)):
        table[code] = _NAMED.get(chr(code), f"\\x{code:02x}")
    for code in _LAYOUT:
        table[code] = f"\\u{code:04x}"
    for code in range(0xD800, 0xE000):  # lone surrogates cannot be printed nor encoded
        table[code] = f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"
    return table


_ESCAPES = _escapes()


def shown(text: str) -> str:
    """`text` with every character that could act on a terminal or a page replaced by a visible
    escape (see the module's docstring); printable text, backslashes included, is unchanged."""
    return text.translate(_ESCAPES)


def quarantine_name(name: str, reserve: int = 0) -> str:
    """A name for a quarantined file that leaves room for `.reason.txt` within 255 bytes.

    The name is `shown(name)` with `/` replaced by `_` (a name read from a folder never holds
    one; one from elsewhere must not make a path), and `_` put before a name that would be empty,
    `.` or `..`. When its UTF-8 form is longer than `MAX_NAME_BYTES - len(REASON_SUFFIX) - reserve`
    bytes, it is cut (at a character boundary) and ends with `~` and 8 hex digits of the SHA-256
    of the original name, so two long names that start alike stay apart, then the extension: the
    last suffix when it is short (at most 10 characters) and ASCII letters and digits. `reserve`
    keeps bytes free for what the caller adds to the stem later (a ` (2)` when the name is taken).

    The result is the same for the same name, and a result given again comes back unchanged.
    """
    budget = MAX_NAME_BYTES - len(REASON_SUFFIX) - reserve
    safe = shown(name).replace("/", "_")
    if safe in ("", ".", ".."):
        safe = "_" + safe
    if len(safe.encode("utf-8")) <= budget:
        return safe
    stem, dot, extension = safe.rpartition(".")
    if dot and stem and len(extension) <= 10 and extension.isascii() and extension.isalnum():
        suffix = "." + extension
    else:
        stem, suffix = safe, ""
    tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    room = budget - len(tag) - len(suffix)
    if room < 1:
        raise ValueError(f"reserve={reserve} leaves no room for a file name")
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return cut + tag + suffix

"""Hostile variants of real FCS files, written in the tests: a real acquisition re-written with
FlowIO (events or keywords changed), or a real file's own bytes with one keyword value or a few
event values replaced in place (its offsets, byte order and layout kept)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import flowio
import numpy as np

from gating.fcs import fcs_keywords

COMPENSATED = Path("flow") / "odd-fcs" / "test_comp_example.fcs"
"""A real LSR II acquisition (Cytobank export): 18 channels, 10,703 events, a $SPILL matrix."""


@dataclass(frozen=True)
class Acquisition:
    """A real file's events (as stored) and the keywords FlowIO re-writes."""

    events: np.ndarray
    pnn: list[str]
    pns: list[str]
    metadata: dict[str, str]

    @classmethod
    def read(cls, path: Path, keep: tuple[str, ...] = ("spill", "cyt", "date", "btim", "fil")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the known off-by-one end offset of this export
            data = flowio.FlowData(str(path), ignore_offset_error=True)
        metadata = {k: v for k, v in data.text.items() if k in keep}
        return cls(data.as_array(preprocess=False), data.pnn_labels, data.pns_labels, metadata)

    def fcs_bytes(self, events: np.ndarray | None = None, **keywords: str) -> bytes:
        """The acquisition as a FlowIO-written FCS 3.1 file (little-endian float); `keywords`
        (lower case, no `$`: `p1r="0"`, `src="P001_D14"`) added or replaced."""
        values = self.events if events is None else events
        handle = io.BytesIO()
        flowio.create_fcs(handle, values.astype(np.float32).ravel(), self.pnn, self.pns,
                          {**self.metadata, **keywords})  # fmt: skip
        return handle.getvalue()


def replace_keyword(raw: bytes, key: str, value: str) -> bytes:
    """`raw` with the TEXT value of `key` replaced, padded with spaces to the old length (the
    reader strips them) so that every offset stays right."""
    delimiter = raw[int(raw[10:18]) : int(raw[10:18]) + 1]
    start = raw.index(delimiter + key.encode() + delimiter) + len(key) + 2
    end = raw.index(delimiter, start)
    new = value.encode().ljust(end - start)
    assert len(new) == end - start, f"{value!r} is longer than the value it replaces"
    return raw[:start] + new + raw[end:]


def rename_keyword(raw: bytes, key: str, other: str) -> bytes:
    """`raw` with the keyword `key` renamed to `other` (same length): as if it were missing."""
    assert len(key) == len(other)
    delimiter = raw[int(raw[10:18]) : int(raw[10:18]) + 1]
    old = delimiter + key.encode() + delimiter
    assert raw.count(old) == 1, key
    return raw.replace(old, delimiter + other.encode() + delimiter)


def set_stored_values(path: Path, cells: list[tuple[int, int]], value: float) -> None:
    """Write `value` into events x channels `cells` of a float file, in its own byte order."""
    keywords = fcs_keywords(path)
    order = "<" if keywords["$BYTEORD"].startswith("1") else ">"
    dtype = np.dtype(order + {"F": "f4", "D": "f8"}[keywords["$DATATYPE"]])
    channels = int(keywords["$PAR"])
    raw = bytearray(path.read_bytes())
    begin = int(keywords["$BEGINDATA"]) or int(raw[26:34])
    for event, channel in cells:
        at = begin + (event * channels + channel) * dtype.itemsize
        raw[at : at + dtype.itemsize] = np.array(value, dtype=dtype).tobytes()
    path.write_bytes(bytes(raw))

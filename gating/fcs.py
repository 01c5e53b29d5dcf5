"""FCS files: a cheap content sniff, the TEXT keywords alone, and every dataset of a file.

FlowIO decodes the DATA segment (FlowKit takes its `FlowData` as is). Before handing a dataset to
FlowIO this module reads the HEADER and TEXT itself, because FlowIO answers the common defects of
real files with bare exceptions. Here each dataset is either

- read, possibly with a warning when a defect was recovered: HEADER and TEXT DATA offsets that
  disagree (the pair that matches `$TOT` x `$PnB` is used), blank HEADER offsets, or an end offset
  one byte past the data (MACSQuant, some BD exports); or
- refused with a `FlowFormatError` naming the problem: not an FCS file, truncated at byte N,
  `$DATATYPE A`, integer widths FlowIO cannot decode (e.g. 24-bit), histogram `$MODE`, a keyword
  that describes the events (`$PAR`, `$TOT`, `$PnN`, `$PnB`, `$PnR`, `$PnE`, `$PnG`) missing, not
  a number or out of range, a `$TOT` the DATA segment does not hold, or events that are NaN or
  infinite (`check_finite_events`: gating would leave them out of every gate and every total, so
  each percentage a clinician reads would change without a word).

`$PnG`, `$PnE` and `$TIMESTEP` are applied by FlowIO's preprocessing (`FcsDataset.events()`).
"""

from __future__ import annotations

import array
import io
import math
import re
import struct
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import flowio
import numpy as np
from flowio.exceptions import FlowIOException

from gating.errors import FlowFormatError

HEADER_LENGTH = 58
HEADER_OFFSET_LIMIT = 99_999_999
"""FCS 3.x writes zeros in the HEADER for offsets that do not fit its 8-character fields."""

_MAGIC = re.compile(rb"FCS(2\.0|3\.0|3\.1)")
_BYTE_ORDERS = {"1,2,3,4", "1,2", "4,3,2,1", "2,1"}
_FLOWIO_INTEGER_WIDTHS = {8, 16, 32}
_FLOAT_WIDTHS = {"F": 32, "D": 64}
_NUMERIC_TYPECODES = frozenset("bBhHiIlLqQfd")
_CHANNEL_NAME = re.compile(r"^\$P(\d+)N$")
_CHECK_CHUNK_BYTES = 1 << 20
"""Events are checked for NaN / infinity a megabyte at a time, a block that stays in the cache."""
REEXPORT = "Re-export the file from the acquisition software."


@dataclass(frozen=True)
class Channel:
    """One `$Pn` parameter: detector name (`$PnN`) and stain / marker label (`$PnS`)."""

    number: int
    pnn: str
    pns: str


@dataclass(frozen=True)
class _Header:
    offset: int
    """Byte position of this dataset in the file (non-zero for the 2nd... dataset)."""
    version: str
    text_start: int
    text_end: int
    data_start: int | None
    """None when the HEADER field is blank."""
    data_end: int | None


@dataclass(frozen=True)
class _DataLayout:
    start: int
    end: int
    source: str  # "TEXT" or "HEADER"
    off_by_one: bool


@dataclass(frozen=True)
class _EventMap:
    """Where a float list-mode DATA segment lies in the file: mapped as an events x channels array."""

    offset: int
    dtype: str
    shape: tuple[int, int]


@dataclass
class FcsDataset:
    """One dataset of an FCS file, read by FlowIO."""

    path: Path
    index: int
    """0 for the first dataset; files with `$NEXTDATA` hold more."""
    version: str
    keywords: dict[str, str]
    """TEXT keywords with upper-case names as written (`$CYT`, `TUBE NAME`), values stripped."""
    metadata: flowio.FlowData
    """FlowIO's reading of HEADER and TEXT (channels, ranges, gains, spillover); for float data
    without the events, which `flow_data` decodes and `stored_events` maps on demand."""
    decode: Callable[[], flowio.FlowData] = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    event_map: _EventMap | None = None
    _decoded: flowio.FlowData | None = field(default=None, repr=False)
    _mapped: np.memmap | None = field(default=None, repr=False)

    @property
    def flow_data(self) -> flowio.FlowData:
        """FlowIO's whole reading, events included (decoded on first use)."""
        if self.metadata.events is not None:
            return self.metadata
        if self._decoded is None:
            self._decoded = self.decode()
        return self._decoded

    @property
    def event_count(self) -> int:
        return int(self.metadata.event_count)

    @property
    def channels(self) -> list[Channel]:
        return channels_of(self.keywords)

    def events(self) -> np.ndarray:
        """Events x channels, float64, with `$PnG`, `$PnE` and `$TIMESTEP` applied."""
        return self.flow_data.as_array(preprocess=True)

    def stored_events(self) -> np.ndarray | None:
        """Events x channels as stored, without preprocessing and without a copy: float data
        memory-mapped from the file, integer data a view of FlowIO's buffer; None when FlowIO
        holds them as a list (mixed integer widths).

        Mapping is what lets a file larger than memory be gated (pages are read as the chunks
        reach them and can be dropped again), and it skips FlowIO's decode, which reads the
        segment into a bytes object and copies that into an array: 0.1 s and twice the file's
        size in memory for a 61 MiB file. The conformance tests check the mapped values against
        FlowIO's on every real file.
        """
        if self.event_map is not None:
            if self._mapped is None:  # one mapping: the pages the finite check read stay mapped
                where = self.event_map
                self._mapped = np.memmap(self.path, where.dtype, "r", where.offset, where.shape)
            return self._mapped
        events = self.flow_data.events
        if not isinstance(events, array.array) or events.typecode not in _NUMERIC_TYPECODES:
            return None
        count = len(self.metadata.channels)
        return np.frombuffer(events, dtype=events.typecode).reshape(-1, count)

    def preprocessed_channels(self) -> set[int]:
        """Indices of the channels whose values `events()` changes: FlowIO's rules for $TIMESTEP
        (Time channel), $PnE (log decades) and $PnG (gain other than 0 and 1)."""
        flow_data = self.metadata
        changed = set()
        step = flow_data.text.get("timestep")
        timed = step is not None and flow_data.time_index is not None
        if timed and step.strip() and float(step) != 1.0:
            changed.add(flow_data.time_index)
        for number, channel in flow_data.channels.items():
            if channel["pne"][0] > 0 or channel["png"] not in (1.0, 0):
                changed.add(number - 1)
        return changed


def sniff(path: str | Path) -> str | None:
    """ "fcs" when the file starts with an FCS 2.0/3.0/3.1 header, else None (reads 6 bytes)."""
    with open(path, "rb") as fh:
        start = fh.read(6)
    return "fcs" if _MAGIC.fullmatch(start) else None


def fcs_keywords(path: str | Path) -> dict[str, str]:
    """The first dataset's TEXT keywords, without touching the DATA segment; `FlowFormatError`
    when those describing the events are missing or out of range (`check_keywords`)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = _read_header(fh, 0, size, path.name)
        keywords = _read_text(fh, header, size, path.name)
    check_keywords(keywords, path.name)
    return keywords


def channels_of(keywords: Mapping[str, str]) -> list[Channel]:
    """The `$PnN` / `$PnS` pairs of a dataset, in channel order (keywords `check_keywords`
    passed)."""
    count = int(keywords["$PAR"])
    return [
        Channel(n, keywords.get(f"$P{n}N", f"P{n}"), keywords.get(f"$P{n}S", ""))
        for n in range(1, count + 1)
    ]


def read_fcs(path: str | Path) -> list[FcsDataset]:
    """Every dataset of an FCS file, or `FlowFormatError` with the reason it cannot be read."""
    path = Path(path)
    size = path.stat().st_size
    datasets: list[FcsDataset] = []
    offset: int | None = 0
    seen: set[int] = set()
    while offset is not None:
        seen.add(offset)
        dataset = _read_dataset(path, size, offset, len(datasets))
        datasets.append(dataset)
        offset = _next_dataset_offset(dataset, offset, size, seen)
    return datasets


def _read_dataset(path: Path, size: int, offset: int, index: int) -> FcsDataset:
    name = path.name if index == 0 else f"{path.name} (dataset {index + 1})"
    with open(path, "rb") as fh:
        header = _read_header(fh, offset, size, name)
        keywords = _read_text(fh, header, size, name)
    check_keywords(keywords, name)
    expected = _expected_data_bytes(keywords, name)
    layout = _data_layout(header, keywords, expected, size, name)
    event_map = _event_map(keywords, header, layout)

    def decode() -> flowio.FlowData:
        flow_data = _decode_with_flowio(path, header, layout, name)
        _unusable_timestep(flow_data)
        return flow_data

    metadata = _decode_with_flowio(path, header, layout, name, only_text=event_map is not None)
    notes = _layout_warnings(header, keywords, layout, expected) + _unusable_timestep(metadata)
    dataset = FcsDataset(
        path=path,
        index=index,
        version=header.version,
        keywords=keywords,
        metadata=metadata,
        decode=decode,
        warnings=[f"{name}: {note}" for note in notes],
        event_map=event_map,
    )
    if event_map is not None:  # integer data cannot hold NaN or infinity
        check_finite_events(dataset.stored_events(), [c.pnn for c in dataset.channels], name)
    return dataset


def check_finite_events(events: np.ndarray, channels: list[str], name: str) -> None:
    """`FlowFormatError` naming how many events hold NaN or infinite values, and in which
    channels. A gate never holds a NaN, so such events would silently leave every population
    and every percentage; the file is refused instead.

    The pass reads the float bits as stored: a value is NaN or infinite exactly when all its
    exponent bits are set, the bits of +infinity in the file's byte order. Testing them needs
    no conversion of big-endian data (np.isfinite converts every value first, about twice
    the time), so the check costs a few milliseconds per million events.
    """
    if events.size == 0:
        return
    unsigned = np.dtype(f"u{events.dtype.itemsize}")
    exponent = np.array(np.inf, dtype=events.dtype).view(unsigned)[()]
    bits = events.view(unsigned)
    rows = max(1, _CHECK_CHUNK_BYTES // (events.dtype.itemsize * events.shape[1]))
    block = np.empty((rows, events.shape[1]), dtype=unsigned)
    for start in range(0, events.shape[0], rows):
        part = bits[start : start + rows]
        masked = np.bitwise_and(part, exponent, out=block[: len(part)])
        if masked.max() == exponent:
            raise FlowFormatError(_non_finite_reason(events, channels, name))


def _non_finite_reason(events: np.ndarray, channels: list[str], name: str) -> str:
    rows = max(1, _CHECK_CHUNK_BYTES // (events.dtype.itemsize * events.shape[1]))
    affected, kinds = 0, set()
    in_channel = np.zeros(events.shape[1], dtype=bool)
    for start in range(0, events.shape[0], rows):
        part = np.asarray(events[start : start + rows], dtype=np.float64)
        bad = ~np.isfinite(part)
        affected += int(bad.any(axis=1).sum())
        in_channel |= bad.any(axis=0)
        kinds |= {"NaN"} if np.isnan(part).any() else set()
        kinds |= {"infinite"} if np.isinf(part).any() else set()
    named = [c for c, bad in zip(channels, in_channel, strict=True) if bad]
    shown = ", ".join(named[:6]) + (f" and {len(named) - 6} more" if len(named) > 6 else "")
    values = " or ".join(sorted(kinds))
    return (
        f"{name}: {affected:,} of {len(events):,} events hold {values} values (channel"
        f"{'s' if len(named) > 1 else ''} {shown}); dropping them would change every percentage, "
        f"so the file is refused. {REEXPORT} If they come back, have the cytometer checked."
    )


def _event_map(keywords: dict[str, str], header: _Header, layout: _DataLayout) -> _EventMap | None:
    """Float and double list-mode data is a plain events x channels matrix in the file; integer
    data goes through FlowIO's decoder (it masks values to `$PnR` bits)."""
    kind = {"F": "f4", "D": "f8"}.get(keywords.get("$DATATYPE", "").upper())
    if kind is None:
        return None
    order = "<" if keywords["$BYTEORD"].replace(" ", "").startswith("1") else ">"
    shape = (int(keywords["$TOT"]), int(keywords["$PAR"]))
    return _EventMap(header.offset + layout.start, order + kind, shape)


def _unusable_timestep(flow_data: flowio.FlowData) -> list[str]:
    """A `$TIMESTEP` that is not a number only affects the Time channel: it is left in raw ticks
    (FlowIO's rule for a blank `$TIMESTEP`) rather than refusing the file."""
    value = flow_data.text.get("timestep")
    if value is None:
        return []
    try:
        float(value)
    except ValueError:
        flow_data.text["timestep"] = ""
        return [f"$TIMESTEP {value!r} is not a number; the Time channel is left in raw ticks"]
    return []


def _next_dataset_offset(dataset: FcsDataset, offset: int, size: int, seen: set[int]) -> int | None:
    step = _optional_int(dataset.keywords.get("$NEXTDATA"))
    if not step:
        return None
    following = offset + step
    if following in seen or following + HEADER_LENGTH > size or step < 0:
        dataset.warnings.append(
            f"{dataset.path.name}: $NEXTDATA points to byte {following}, outside the file or back "
            f"to a dataset already read; kept the {dataset.index + 1} dataset(s) before it"
        )
        return None
    return following


def _read_header(fh: io.BufferedIOBase, offset: int, size: int, name: str) -> _Header:
    fh.seek(offset)
    raw = fh.read(HEADER_LENGTH)
    match = _MAGIC.match(raw)
    if not match:
        where = "it starts with" if offset == 0 else f"at byte {offset} there is"
        raise FlowFormatError(
            f"{name} is not an FCS file: {where} {raw[:10]!r}, not FCS2.0, FCS3.0 or FCS3.1. "
            "Export the acquisition as FCS from the instrument software."
        )
    if len(raw) < HEADER_LENGTH:
        raise FlowFormatError(
            f"{name} is truncated at byte {size}: the FCS HEADER needs {HEADER_LENGTH} bytes. "
            "Copy the file again from the instrument."
        )
    fields = [_header_field(raw, start, name) for start in (10, 18, 26, 34)]
    if fields[0] is None or fields[1] is None:
        raise FlowFormatError(f"{name}: the HEADER gives no TEXT segment offsets (bytes 10-25)")
    return _Header(offset, match.group(1).decode(), fields[0], fields[1], fields[2], fields[3])


def _header_field(raw: bytes, start: int, name: str) -> int | None:
    text = raw[start : start + 8].decode("ascii", errors="replace").strip()
    if not text:
        return None
    if not text.isdigit():
        raise FlowFormatError(
            f"{name}: HEADER bytes {start}-{start + 7} hold {text!r}, not a byte offset"
        )
    return int(text)


def _read_text(fh: io.BufferedIOBase, header: _Header, size: int, name: str) -> dict[str, str]:
    start, end = header.offset + header.text_start, header.offset + header.text_end
    if end >= size:
        raise FlowFormatError(
            f"{name} is truncated at byte {size}: its TEXT segment runs to byte {end}. "
            "Copy the file again from the instrument."
        )
    if end <= start:
        raise FlowFormatError(f"{name}: the HEADER gives an empty TEXT segment ({start}-{end})")
    fh.seek(start)
    raw = fh.read(end - start + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_text_segment(text)


def parse_text_segment(text: str) -> dict[str, str]:
    """Keyword/value pairs of a TEXT segment; a doubled delimiter stands for the character itself."""
    delimiter, body = text[0], text[1:]
    tokens: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == delimiter and body[i + 1 : i + 2] == delimiter:
            current.append(delimiter)
            i += 2
            continue
        if char == delimiter:
            tokens.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    if current:
        tokens.append("".join(current))
    return {k.strip().upper(): v.strip() for k, v in zip(tokens[0::2], tokens[1::2], strict=False)}


def check_keywords(keywords: Mapping[str, str], name: str) -> None:
    """`FlowFormatError` naming the first keyword FlowIO needs to decode the events that is
    missing, not a number or out of range: the encoding (`$DATATYPE`, `$MODE`, `$BYTEORD`),
    `$PAR` and `$TOT` (whole numbers), and per channel `$PnN`, `$PnB` (a whole number of bits),
    `$PnR` (a range above 0; a whole number for integer data), `$PnE` (two numbers, 0 or more)
    and `$PnG` (a number, 0 or more) where given. FlowIO would otherwise fail with bare Python
    errors (`list index out of range` for a missing `$PnN`) or scale events by a range of 0."""
    _check_encoding(keywords, name)
    count = _whole_number(keywords, "$PAR", "the number of channels", name, minimum=1)
    _whole_number(keywords, "$TOT", "the number of events", name, minimum=0)
    integer_data = keywords["$DATATYPE"].upper() == "I"
    for n in range(1, count + 1):
        detector = keywords.get(f"$P{n}N", "")
        if not detector:
            _refuse(name, f"$P{n}N", f"the name of channel {n}", keywords.get(f"$P{n}N"),
                    "but every channel needs one")  # fmt: skip
        channel = f"channel {n}, {detector}"
        _whole_number(keywords, f"$P{n}B", f"the bits of {channel}", name, minimum=1)
        _channel_range(keywords, n, channel, integer_data, name)
        _channel_amplification(keywords, n, channel, name)
        if f"$P{n}G" in keywords and not _number_at_least(keywords[f"$P{n}G"], 0):
            _refuse(name, f"$P{n}G", f"the gain of {channel}", keywords[f"$P{n}G"],
                    "not a number of 0 or more")  # fmt: skip
    numbers = [int(m.group(1)) for key in keywords if (m := _CHANNEL_NAME.match(key))]
    beyond = sorted(n for n in numbers if n > count)
    if beyond:
        raise FlowFormatError(
            f"{name}: $P{beyond[0]}N names a channel {beyond[0]}, but $PAR says the file has "
            f"{count}; the file's keywords are damaged. {REEXPORT}"
        )


def _check_encoding(keywords: Mapping[str, str], name: str) -> None:
    """Refuse encodings FlowIO cannot decode."""
    datatype = keywords.get("$DATATYPE", "").upper()
    if datatype == "A":
        raise FlowFormatError(
            f"{name}: unsupported $DATATYPE A (events written as ASCII text); only binary "
            "integer (I), float (F) and double (D) data can be read. Re-export the file as FCS 3.x "
            "float data."
        )
    if datatype not in ("I", "F", "D"):
        raise FlowFormatError(
            f"{name}: unknown $DATATYPE {datatype!r}; expected I, F or D. {REEXPORT}"
        )
    mode = keywords.get("$MODE", "L").upper()
    if mode != "L":
        raise FlowFormatError(
            f"{name}: $MODE {mode} holds histograms, not list-mode events; re-export as list mode"
        )
    byte_order = keywords.get("$BYTEORD", "").replace(" ", "")
    if byte_order not in _BYTE_ORDERS:
        raise FlowFormatError(
            f"{name}: unsupported $BYTEORD {byte_order!r}; only little-endian (1,2,3,4) and "
            "big-endian (4,3,2,1) data can be read"
        )


def _whole_number(
    keywords: Mapping[str, str], key: str, meaning: str, name: str, minimum: int
) -> int:
    value = _optional_int(keywords.get(key))
    if value is None or value < minimum:
        expected = (
            f"a whole number of at least {minimum}" if minimum else "a whole number of 0 or more"
        )
        _refuse(name, key, meaning, keywords.get(key), f"not {expected}")
    return value


def _channel_range(
    keywords: Mapping[str, str], n: int, channel: str, integer_data: bool, name: str
) -> None:
    value = keywords.get(f"$P{n}R")
    if integer_data:
        whole = _optional_int(value)
        if whole is None or whole < 1:
            _refuse(name, f"$P{n}R", f"the range of {channel}", value,
                    "not a whole number above 0 as integer data needs")  # fmt: skip
    elif value is None or not _number_at_least(value, 0) or float(value) == 0:
        _refuse(name, f"$P{n}R", f"the range of {channel}", value, "not a number above 0")


def _channel_amplification(keywords: Mapping[str, str], n: int, channel: str, name: str) -> None:
    """`$PnE` is optional for FlowIO (absent: linear); given, it is "decades,offset"."""
    value = keywords.get(f"$P{n}E")
    if value is None:
        return
    parts = value.split(",")
    if len(parts) != 2 or not all(_number_at_least(part, 0) for part in parts):
        _refuse(name, f"$P{n}E", f"the amplification of {channel}", value,
                "not two numbers of 0 or more (decades,offset)")  # fmt: skip


def _number_at_least(text: str, minimum: float) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value >= minimum


def _refuse(name: str, key: str, meaning: str, value: str | None, expected: str) -> NoReturn:
    found = "missing" if value is None else f"{value!r}, {expected}"
    raise FlowFormatError(
        f"{name}: {key} ({meaning}) is {found}; the file's keywords are damaged. {REEXPORT}"
    )


def _expected_data_bytes(keywords: Mapping[str, str], name: str) -> int:
    """Bytes the DATA segment must hold (keywords `check_keywords` passed), refusing integer
    widths FlowIO cannot decode."""
    count = int(keywords["$PAR"])
    widths = [int(keywords[f"$P{n}B"]) for n in range(1, count + 1)]
    _check_widths(keywords["$DATATYPE"].upper(), widths, name)
    events = int(keywords["$TOT"])
    if events == 0:
        raise FlowFormatError(f"{name}: the file holds no events ($TOT is 0)")
    return events * sum(widths) // 8


def _check_widths(datatype: str, widths: list[int], name: str) -> None:
    if datatype == "I":
        odd = sorted({w for w in widths if w not in _FLOWIO_INTEGER_WIDTHS})
        if odd:
            channel = widths.index(odd[0]) + 1
            raise FlowFormatError(
                f"{name}: {odd[0]}-bit integers ($P{channel}B={odd[0]}); FlowIO decodes only 8, "
                "16 and 32-bit integer data. Re-export the file as float data (FCS 3.x $DATATYPE F)."
            )
        return
    wrong = [w for w in widths if w != _FLOAT_WIDTHS[datatype]]
    if wrong:
        raise FlowFormatError(
            f"{name}: $DATATYPE {datatype} needs {_FLOAT_WIDTHS[datatype]}-bit parameters, "
            f"but a $PnB is {wrong[0]}"
        )


def _data_layout(
    header: _Header, keywords: dict[str, str], expected: int, size: int, name: str
) -> _DataLayout:
    """The DATA offsets to trust: the first pair (TEXT first, HEADER first for FCS 2.0) whose
    length matches the event count exactly or is one byte long."""
    pairs = {
        "TEXT": (
            _optional_int(keywords.get("$BEGINDATA")),
            _optional_int(keywords.get("$ENDDATA")),
        ),
        "HEADER": (header.data_start, header.data_end),
    }
    order = ("HEADER", "TEXT") if header.version == "2.0" else ("TEXT", "HEADER")
    for source in order:
        start, end = pairs[source]
        if not start or end is None:
            continue
        length = end - start + 1
        if length in (expected, expected + 1):
            if header.offset + start + expected > size:
                raise FlowFormatError(
                    f"{name} is truncated at byte {size}: its DATA segment should run to byte "
                    f"{header.offset + start + expected - 1}. Copy the file again from the "
                    "instrument."
                )
            return _DataLayout(start, start + expected - 1, source, length == expected + 1)
    held = next(
        (end - start + 1 for start, end in (pairs[s] for s in order) if start and end is not None),
        None,
    )
    holds = f"holds {held:,} bytes" if held is not None else "has no offsets"
    raise FlowFormatError(
        f"{name}: $TOT says {int(keywords['$TOT']):,} events of {keywords['$PAR']} channels "
        f"({expected:,} bytes), but the DATA segment {holds}; the file is damaged or its $TOT, "
        f"$PAR or $PnB is wrong. {REEXPORT}"
    )


def _layout_warnings(
    header: _Header, keywords: dict[str, str], layout: _DataLayout, expected: int
) -> list[str]:
    notes = []
    if layout.off_by_one:
        notes.append(
            f"the {layout.source} DATA end offset points one byte past the data (a known export "
            f"defect); read the {expected} bytes that $TOT and $PnB call for"
        )
    header_pair = (header.data_start, header.data_end)
    if header_pair == (None, None):
        notes.append(
            f"the HEADER DATA offsets are blank; used the TEXT offsets {layout.start}-{layout.end}"
        )
        return notes
    large_file = header_pair == (0, 0) and layout.end > HEADER_OFFSET_LIMIT
    if layout.source == "TEXT" and header_pair[0] != layout.start and not large_file:
        notes.append(
            f"HEADER DATA offsets {header_pair[0]}-{header_pair[1]} disagree with TEXT "
            f"{layout.start}-{layout.end}; used the TEXT offsets, which match $TOT and $PnB"
        )
    elif layout.source == "TEXT" and header_pair[1] not in (layout.end, layout.end + 1, 0):
        notes.append(
            f"HEADER DATA end offset {header_pair[1]} disagrees with TEXT {layout.end}; used the "
            "TEXT offsets, which match $TOT and $PnB"
        )
    text_start = _optional_int(keywords.get("$BEGINDATA"))
    if layout.source == "HEADER" and text_start not in (None, 0, layout.start):
        notes.append(
            f"TEXT $BEGINDATA {text_start} disagrees with the HEADER {layout.start}; used the HEADER "
            "offsets, which match $TOT and $PnB"
        )
    return notes


def _decode_with_flowio(
    path: Path, header: _Header, layout: _DataLayout, name: str, only_text: bool = False
) -> flowio.FlowData:
    """FlowIO reads the dataset with the offsets chosen here; a HEADER FlowIO cannot use (blank
    fields, or FCS 2.0 whose TEXT offsets are the right ones) is rewritten in an in-memory copy."""
    header_usable = None not in (header.data_start, header.data_end)
    needs_rewrite = not header_usable or (header.version == "2.0" and layout.source == "TEXT")
    source: str | io.BytesIO = str(path)
    if needs_rewrite:
        source = _copy_with_data_offsets(path, header.offset, layout)
    try:
        with warnings.catch_warnings():
            # FlowIO's own warnings repeat what _layout_warnings already says
            warnings.simplefilter("ignore")
            return flowio.FlowData(
                source,
                ignore_offset_error=layout.off_by_one,
                ignore_offset_discrepancy=layout.source == "TEXT",
                use_header_offsets=layout.source == "HEADER" and header.version != "2.0",
                nextdata_offset=header.offset,
                only_text=only_text,
            )
    except (FlowIOException, ValueError, KeyError, IndexError, struct.error) as exc:
        # the keywords passed `check_keywords`; FlowIO's own text names its internals
        raise FlowFormatError(
            f"{name}: the events cannot be decoded although the keywords describe them; the "
            f"file is damaged. {REEXPORT}"
        ) from exc
    except NotImplementedError as exc:
        raise FlowFormatError(
            f"{name}: the file uses an FCS feature FlowIO cannot read; re-export it from the "
            "acquisition software as FCS 3.1 list-mode float data."
        ) from exc


def _copy_with_data_offsets(path: Path, offset: int, layout: _DataLayout) -> io.BytesIO:
    buffer = bytearray(path.read_bytes())
    fits = layout.end <= HEADER_OFFSET_LIMIT
    start, end = (layout.start, layout.end + layout.off_by_one) if fits else (0, 0)
    buffer[offset + 26 : offset + 42] = f"{start:>8}{end:>8}".encode("ascii")
    return io.BytesIO(bytes(buffer))


def _optional_int(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else None

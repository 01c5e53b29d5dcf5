"""FCS reading on small generated files: byte orders, $PnG / $TIMESTEP, and bad input refused with
a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gating import FlowFormatError, fcs_keywords, read_fcs, sniff
from pipelines.demo.flow_files import fcs_bytes

EVENTS = np.array([[100.0, 2.5, 10.0], [200.0, -3.25, 20.0], [300.0, 1e5, 30.0]], dtype=np.float32)
PNN = ["FSC-A", "PE-A", "Time"]


def _write(path: Path, big_endian: bool, metadata: dict[str, str] | None = None) -> Path:
    path.write_bytes(fcs_bytes(EVENTS, PNN, ["", "CD19", ""], metadata or {}, big_endian))
    return path


@pytest.mark.parametrize("big_endian", [True, False])
def test_both_byte_orders_read_back_exactly(tmp_path: Path, big_endian: bool) -> None:
    dataset = read_fcs(_write(tmp_path / "tube.fcs", big_endian))[0]
    assert dataset.keywords["$BYTEORD"] == ("4,3,2,1" if big_endian else "1,2,3,4")
    np.testing.assert_array_equal(dataset.events(), EVENTS.astype(float))
    assert [c.pns for c in dataset.channels] == ["", "CD19", ""]


def test_gain_and_timestep_are_applied(tmp_path: Path) -> None:
    path = _write(tmp_path / "gain.fcs", True, {"$P1G": "2", "$TIMESTEP": "0.01"})
    events = read_fcs(path)[0].events()
    np.testing.assert_allclose(events[:, 0], EVENTS[:, 0] / 2)
    np.testing.assert_allclose(events[:, 2], EVENTS[:, 2] * 0.01)


def test_sniff_and_keywords(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.fcs", False, {"$CYT": "LSRFortessa"})
    text = tmp_path / "notes.fcs"
    text.write_text("sample,count\nA,1\n")
    assert sniff(path) == "fcs"
    assert sniff(text) is None
    assert fcs_keywords(path)["$CYT"] == "LSRFortessa"


def test_text_file_renamed_fcs_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "export.fcs"
    text.write_text("sample,count\nA,1\n")
    with pytest.raises(FlowFormatError, match=r"export\.fcs is not an FCS file"):
        read_fcs(text)


def test_truncated_file_is_refused_with_the_byte(tmp_path: Path) -> None:
    raw = _write(tmp_path / "full.fcs", True).read_bytes()
    cut = tmp_path / "cut.fcs"
    cut.write_bytes(raw[:-10])
    with pytest.raises(FlowFormatError, match=f"cut.fcs is truncated at byte {len(raw) - 10}"):
        read_fcs(cut)


def _edit_text(path: Path, old: bytes, new: bytes) -> Path:
    assert len(old) == len(new)
    path.write_bytes(path.read_bytes().replace(old, new, 1))
    return path


def test_ascii_data_is_refused(tmp_path: Path) -> None:
    path = _edit_text(_write(tmp_path / "a.fcs", True), b"/$DATATYPE/F/", b"/$DATATYPE/A/")
    with pytest.raises(FlowFormatError, match=r"unsupported \$DATATYPE A"):
        read_fcs(path)


def test_24_bit_integers_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "i24.fcs", False)
    _edit_text(path, b"/$DATATYPE/F/", b"/$DATATYPE/I/")
    _edit_text(path, b"/$P1B/32/", b"/$P1B/24/")
    with pytest.raises(FlowFormatError, match="24-bit integers"):
        read_fcs(path)


def test_header_offsets_that_disagree_are_recovered_from_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "off.fcs", True)
    raw = bytearray(path.read_bytes())
    raw[26:34] = f"{int(raw[26:34]) - 40:>8}".encode()
    path.write_bytes(bytes(raw))
    dataset = read_fcs(path)[0]
    np.testing.assert_array_equal(dataset.events(), EVENTS.astype(float))
    assert any("used the TEXT offsets" in w for w in dataset.warnings)

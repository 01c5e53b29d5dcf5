"""An FCS file is read only when its keywords describe its events and every event value is a
number: NaN or infinite events, and `$PAR` / `$TOT` / `$PnN` / `$PnB` / `$PnR` / `$PnE` / `$PnG`
missing, not numbers or out of range, are refused naming the keyword and the value (files derived
in the test from a real acquisition). The template's and the file's compensation matrices must
name channels the file has."""

from __future__ import annotations

import shutil
from pathlib import Path

import fcsparser
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gating import FlowFormatError, FlowSettings, FlowTemplateError, fcs_keywords, read_fcs
from gating.analysis import file_spillover, gate_dataset, parse_spillover
from gating.fcs import check_finite_events
from gating.markers import alias_lookup, markers_of
from gating.templates import load_template
from tests.fcs_variants import (
    COMPENSATED,
    Acquisition,
    rename_keyword,
    replace_keyword,
    set_stored_values,
)

FORTESSA = next(
    (Path(fcsparser.__file__).parent / "tests" / "data" / "FlowCytometers").rglob(
        "FCS_3.0_Fortessa*.fcs"
    )
)
"""A real BD LSRFortessa file: big-endian float, 11 channels, 11,585 events."""
REEXPORT = "Re-export the file from the acquisition software."


@pytest.fixture(scope="module")
def acquisition(shared_data: Path) -> Acquisition:
    return Acquisition.read(shared_data / COMPENSATED)


def _refusal(path: Path) -> str:
    with pytest.raises(FlowFormatError) as caught:
        read_fcs(path)
    return str(caught.value)


KEYWORD_CASES = {
    "range_0.fcs": (dict(p1r="0"), None, "$P1R (the range of channel 1, FSC-A) is '0', not a number above 0"),
    "range_negative.fcs": (dict(p1r="-5"), None, "$P1R (the range of channel 1, FSC-A) is '-5'"),
    "range_text.fcs": (dict(p1r="abc"), None, "$P1R (the range of channel 1, FSC-A) is 'abc'"),
    "range_infinite.fcs": (dict(p1r="inf"), None, "$P1R (the range of channel 1, FSC-A) is 'inf'"),
    "range_missing.fcs": ({}, ("rename", "$P2R", "$X2R"), "$P2R (the range of channel 2, FSC-W) is missing"),
    "par_text.fcs": ({}, ("replace", "$PAR", "x"), "$PAR (the number of channels) is 'x'"),
    "par_zero.fcs": ({}, ("replace", "$PAR", "0"), "$PAR (the number of channels) is '0'"),
    "par_short.fcs": ({}, ("replace", "$PAR", "17"), "$P18N names a channel 18, but $PAR says the file has 17"),
    "tot_text.fcs": ({}, ("replace", "$TOT", "x"), "$TOT (the number of events) is 'x'"),
    "tot_negative.fcs": ({}, ("replace", "$TOT", "-5"), "$TOT (the number of events) is '-5'"),
    "bits_text.fcs": ({}, ("replace", "$P3B", "3x"), "$P3B (the bits of channel 3, SSC-A) is '3x'"),
    "bits_zero.fcs": ({}, ("replace", "$P3B", "0"), "$P3B (the bits of channel 3, SSC-A) is '0'"),
    "name_missing.fcs": ({}, ("rename", "$P3N", "$X3N"), "$P3N (the name of channel 3) is missing"),
    "amplification.fcs": ({}, ("replace", "$P2E", "x,0"), "$P2E (the amplification of channel 2, FSC-W) is 'x,0'"),
    "gain_text.fcs": (dict(p2g="abc"), None, "$P2G (the gain of channel 2, FSC-W) is 'abc'"),
    "gain_negative.fcs": (dict(p2g="-1"), None, "$P2G (the gain of channel 2, FSC-W) is '-1'"),
}  # fmt: skip
"""File name -> (keywords FlowIO writes, an edit of the written bytes, what the refusal says)."""


@pytest.mark.parametrize("name", sorted(KEYWORD_CASES))
def test_a_keyword_that_cannot_describe_the_events_is_refused_by_name(
    acquisition: Acquisition, tmp_path: Path, name: str
) -> None:
    keywords, edit, expected = KEYWORD_CASES[name]
    raw = acquisition.fcs_bytes(**keywords)
    if edit is not None:
        how, key, value = edit
        raw = (rename_keyword if how == "rename" else replace_keyword)(raw, key, value)
    path = tmp_path / name
    path.write_bytes(raw)
    reason = _refusal(path)
    assert reason.startswith(f"{name}: {expected}")
    assert reason.endswith(REEXPORT) and "\n" not in reason
    with pytest.raises(FlowFormatError, match="^" + name):  # what `recognise` reads
        fcs_keywords(path)


def test_a_tot_the_data_segment_does_not_hold_is_refused(
    acquisition: Acquisition, tmp_path: Path
) -> None:
    path = tmp_path / "tot_short.fcs"
    path.write_bytes(replace_keyword(acquisition.fcs_bytes(), "$TOT", "10702"))
    assert _refusal(path) == (
        "tot_short.fcs: $TOT says 10,702 events of 18 channels (770,544 bytes), but the DATA "
        "segment holds 770,616 bytes; the file is damaged or its $TOT, $PAR or $PnB is wrong. "
        f"{REEXPORT}"
    )


def test_the_unchanged_acquisition_is_read(acquisition: Acquisition, tmp_path: Path) -> None:
    path = tmp_path / "unchanged.fcs"
    path.write_bytes(acquisition.fcs_bytes())
    [dataset] = read_fcs(path)
    np.testing.assert_array_equal(dataset.stored_events(), acquisition.events.astype(np.float32))


def test_nan_events_are_refused_with_their_count_and_channels(
    acquisition: Acquisition, tmp_path: Path
) -> None:
    events = acquisition.events.copy()
    events[5, 3] = events[7, 3] = events[7, 4] = np.nan  # 2 events, channels 4 and 5
    path = tmp_path / "nan.fcs"
    path.write_bytes(acquisition.fcs_bytes(events))
    assert _refusal(path) == (
        f"nan.fcs: 2 of 10,703 events hold NaN values (channels {acquisition.pnn[3]}, "
        f"{acquisition.pnn[4]}); dropping them would change every percentage, so the file is "
        f"refused. {REEXPORT} If they come back, have the cytometer checked."
    )


def test_infinite_events_in_a_big_endian_real_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / FORTESSA.name
    shutil.copyfile(FORTESSA, path)
    set_stored_values(path, [(0, 2), (11_584, 2)], np.inf)  # the first and last events
    set_stored_values(path, [(9, 6)], -np.inf)
    reason = _refusal(path)
    channels = [c.pnn for c in read_fcs(FORTESSA)[0].channels]
    assert reason.startswith(
        f"{path.name}: 3 of 11,585 events hold infinite values (channels {channels[2]}, "
        f"{channels[6]});"
    )


@st.composite
def _events_with_holes(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    dtype = draw(st.sampled_from([">f4", "<f4", ">f8", "<f8"]))
    shape = (draw(st.integers(1, 300)), draw(st.integers(1, 6)))
    finite = st.floats(allow_nan=False, allow_infinity=False, width=8 * np.dtype(dtype).itemsize)
    events = draw(arrays(dtype, shape, elements=finite))
    cells = st.tuples(st.integers(0, shape[0] - 1), st.integers(0, shape[1] - 1),
                      st.sampled_from([np.nan, np.inf, -np.inf]))  # fmt: skip
    holes = draw(st.lists(cells, max_size=5))
    for event, channel, value in holes:
        events[event, channel] = value
    return events, holes


@settings(max_examples=200, deadline=None)
@given(_events_with_holes())
def test_the_finite_check_finds_exactly_the_non_finite_events(case) -> None:
    events, holes = case
    channels = [f"C{i}" for i in range(events.shape[1])]
    if not holes:
        check_finite_events(events, channels, "tube.fcs")  # extreme finite values pass
        return
    with pytest.raises(FlowFormatError) as caught:
        check_finite_events(events, channels, "tube.fcs")
    affected = len({event for event, _, _ in holes})
    named = ", ".join(channels[c] for c in sorted({c for _, c, _ in holes}))
    assert f"tube.fcs: {affected:,} of {len(events):,} events hold " in str(caught.value)
    assert f" {named});" in str(caught.value)


def test_a_nan_in_the_last_of_many_blocks_is_found() -> None:
    events = np.zeros((300_001, 2), dtype=">f4")  # 2.4 MB: three blocks of the check
    events[-1, 1] = np.nan
    with pytest.raises(FlowFormatError, match=r"1 of 300,001 events hold NaN values \(channel B\)"):
        check_finite_events(events, ["A", "B"], "tube.fcs")


MATRIX_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <transforms:spectrumMatrix transforms:id="Lab_matrix">
    <transforms:fluorochromes>
      <data-type:fcs-dimension data-type:name="FITC"/><data-type:fcs-dimension data-type:name="BV711"/>
    </transforms:fluorochromes>
    <transforms:detectors>
      <data-type:fcs-dimension data-type:name="Ax488-A"/><data-type:fcs-dimension data-type:name="B710-A"/>
    </transforms:detectors>
    <transforms:spectrum><transforms:coefficient transforms:value="1"/><transforms:coefficient transforms:value="0.1"/></transforms:spectrum>
    <transforms:spectrum><transforms:coefficient transforms:value="0.05"/><transforms:coefficient transforms:value="1"/></transforms:spectrum>
  </transforms:spectrumMatrix>
  <gating:RectangleGate gating:id="Positive">
    <gating:dimension gating:compensation-ref="Lab_matrix" gating:min="500"><data-type:fcs-dimension data-type:name="Ax488-A"/></gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""  # fmt: skip


@pytest.mark.parametrize("engine", ["fast", "flowkit"])
def test_a_template_matrix_naming_detectors_the_file_lacks_is_refused(
    acquisition: Acquisition, tmp_path: Path, engine: str
) -> None:
    """FlowKit said "Detectors must be a subset of the Sample's fluorochromes", the fast engine
    "'B710-A' is not in list"."""
    path = tmp_path / "tube.fcs"
    path.write_bytes(acquisition.fcs_bytes())
    template_path = tmp_path / "lab.xml"
    template_path.write_text(MATRIX_TEMPLATE)
    [dataset] = read_fcs(path)
    with pytest.raises(FlowTemplateError) as caught:
        gate_dataset(dataset, load_template(template_path), FlowSettings(gating_engine=engine))
    assert str(caught.value) == (
        "tube.fcs: the compensation matrix Lab_matrix of template lab.xml names detector B710-A, "
        "which this file does not have; use the template made for this cytometer, or give the "
        "template this cytometer's matrix."
    )


def test_a_spillover_naming_channels_the_file_lacks_is_refused_naming_them(
    acquisition: Acquisition, tmp_path: Path
) -> None:
    spill = acquisition.metadata["spill"].replace("Ax700-A", "B710-A").replace("PE-A", "YG586-A")
    path = tmp_path / "other_matrix.fcs"
    path.write_bytes(acquisition.fcs_bytes(spill=spill))
    [dataset] = read_fcs(path)
    markers = markers_of(dataset.channels, alias_lookup(FlowSettings().marker_aliases))
    with pytest.raises(FlowFormatError) as caught:
        file_spillover(dataset, markers)
    assert str(caught.value) == (
        "other_matrix.fcs: SPILL (the spillover matrix) names YG586-A, B710-A, which are not "
        "channels of this file, so it was made for another acquisition; re-export the file with "
        "its own compensation from the acquisition software."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x,A,B,1,0,0,1", "starts with 'x', not its number of channels"),
        (
            "3,A,B,1,0,0,1",
            "is for 3 channels, which needs 3 names and 9 values, but it holds 6 entries",
        ),
        ("2,A,B,1,zero,0,1", "holds 'zero' where a number belongs"),
        ("2,A,B,1,nan,0,1", "holds NaN or infinite values"),
    ],
)
def test_a_malformed_spillover_is_refused_in_words(text: str, expected: str) -> None:
    with pytest.raises(FlowFormatError) as caught:
        parse_spillover(text, "$SPILLOVER", "tube.fcs")
    assert str(caught.value) == (
        f"tube.fcs: $SPILLOVER (the spillover matrix) {expected}; re-export the file with its "
        "compensation from the acquisition software."
    )


def test_a_spillover_is_parsed_into_names_and_matrix() -> None:
    names, matrix = parse_spillover("2,A,B,1,0.25,0,1", "$SPILLOVER", "tube.fcs")
    assert names == ["A", "B"]
    np.testing.assert_array_equal(matrix, [[1.0, 0.25], [0.0, 1.0]])

"""Every real FCS file (shared data and the instrument files fcsparser's wheel ships) ends read, or
refused with a reason that names the problem; little-endian float data equals fcsparser's."""

from __future__ import annotations

import warnings
from pathlib import Path

import fcsparser
import numpy as np
import pytest

from gating import FlowFormatError, fcs_keywords, is_bead_array, read_fcs, sniff

pytestmark = pytest.mark.conformance

FCSPARSER_FILES = Path(fcsparser.__file__).parent / "tests" / "data" / "FlowCytometers"

REFUSED = {
    "Cytek_xP5.fcs": "24-bit integers",
    "corrupted.fcs": "is not an FCS file",
    "sample_header.fcs": "truncated at byte 3931",
}
"""File name -> the reason it is refused; every other file must be read."""
WARNED = {
    "data_start_offset_discrepancy_example.fcs": "used the TEXT offsets",
    "data_stop_offset_discrepancy_example.fcs": "used the TEXT offsets",
    "fake_large_fcs.fcs": "HEADER DATA offsets are blank",
    "test_comp_example.fcs": "one byte past the data",
    "coulter.lmd": "one byte past the data",
    "SG_2014-09-26_Duplicate_Names.fcs": "one byte past the data",
}
DATASETS = {"coulter.lmd": 2}


def _real_files(shared_data: Path) -> list[Path]:
    flow = shared_data / "flow"
    return sorted([*flow.rglob("*.fcs"), *flow.rglob("*.lmd"), *FCSPARSER_FILES.rglob("*.fcs")])


def test_every_real_file_is_read_or_refused_with_a_reason(shared_data: Path) -> None:
    files = _real_files(shared_data)
    assert len(files) >= 20
    for path in files:
        if path.name in REFUSED:
            with pytest.raises(FlowFormatError, match=REFUSED[path.name]) as caught:
                read_fcs(path)
            assert path.name in str(caught.value)
            continue
        datasets = read_fcs(path)
        assert len(datasets) == DATASETS.get(path.name, 1), path.name
        for dataset in datasets:
            events = dataset.events()
            assert events.shape == (dataset.event_count, len(dataset.channels)), path.name
        notes = [w for d in datasets for w in d.warnings]
        if path.name in WARNED:
            assert any(WARNED[path.name] in w for w in notes), (path.name, notes)


def test_sniff_and_keywords_on_real_files(shared_data: Path) -> None:
    assert sniff(FCSPARSER_FILES / "corrupted" / "corrupted.fcs") is None
    fortessa = next(FCSPARSER_FILES.rglob("FCS_3.0_Fortessa*.fcs"))
    assert sniff(fortessa) == "fcs"
    assert fcs_keywords(fortessa)["$CYT"]


def test_legendplex_file_is_a_bead_array_and_phenotyping_files_are_not(shared_data: Path) -> None:
    assert is_bead_array(fcs_keywords(shared_data / "cba" / "legendplex_K2-C07-A7.fcs"))
    assert not is_bead_array(fcs_keywords(shared_data / "flow" / "odd-fcs" / "100715.fcs"))
    assert not is_bead_array(fcs_keywords(shared_data / "flow" / "gatingml-set1" / "data1.fcs"))


def _little_endian_float_files(shared_data: Path) -> list[Path]:
    found = []
    for path in _real_files(shared_data):
        try:
            keywords = fcs_keywords(path)
        except FlowFormatError:
            continue
        little = keywords.get("$BYTEORD") in ("1,2,3,4", "1,2")
        single = keywords.get("$NEXTDATA", "0").strip() in ("0", "")
        if little and single and keywords.get("$DATATYPE") == "F" and path.name not in REFUSED:
            found.append(path)
    return found


def test_little_endian_float_values_equal_fcsparser(shared_data: Path) -> None:
    files = _little_endian_float_files(shared_data)
    assert files
    for path in files:
        dataset = read_fcs(path)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, theirs = fcsparser.parse(str(path), reformat_meta=True, channel_naming="$PnN")
        ours = dataset.flow_data.as_array(preprocess=False)
        assert ours.shape == theirs.shape, path.name
        np.testing.assert_allclose(ours, theirs.to_numpy(dtype=float), rtol=0, atol=0)


def test_mapped_float_events_equal_flowio_decoding(shared_data: Path) -> None:
    """Float and double data is memory-mapped for gating; every dataset of every real file must
    map to exactly what FlowIO decodes (both byte orders, offsets recovered from defects)."""
    mapped = 0
    for path in _real_files(shared_data):
        if path.name in REFUSED:
            continue
        for dataset in read_fcs(path):
            if dataset.event_map is None:
                assert dataset.keywords["$DATATYPE"].upper() == "I", path.name
                continue
            stored = dataset.stored_events()
            decoded = dataset.flow_data.as_array(preprocess=False)
            np.testing.assert_array_equal(stored, decoded, err_msg=path.name)
            mapped += 1
    assert mapped >= 12  # the float datasets among the real files

"""Every quarantine reason is one line that starts with the file's name and holds no internal or
temporary path, no stack text and no exception class name; a fault's traceback goes to the lab
home's logs/faults.log (`pipelines.ingest.reasons`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.assays import Rejection
from pipelines.ingest.reasons import FAULT_LOG, refusal, technician_reason

HOME = Path("/srv/lab")
TMP = tempfile.gettempdir()
NAME = "tube 01.fcs"
INTERNAL = [
    f"{TMP}/cartflow-k2j3/{NAME}",
    f"{HOME}/raw/ab/{'ab' * 32}.fcs",
    f"{HOME}/gx/expectations/flow_samples.json",
    f"{TMP}/pytest-of-lab/scratch.bin",
]

_lines = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            _lines,
            st.sampled_from(INTERNAL),
            st.sampled_from(
                [
                    "Traceback (most recent call last):",
                    '  File "/x/flowkit/_sample.py", line 3, in f',
                    "    raise ValueError(text)",
                    "ValueError: Matrix labels do not match",
                    "",
                    "Labels in comp matrix not found in FCS file (wrong matrix chosen?):",
                    "KeyError: 'p2r'",
                ]
            ),
        ),
        max_size=12,
    ),  # fmt: skip
    st.sampled_from(["\n", "\r\n", " ", "\u2028"]),
)
def test_any_exception_text_becomes_one_line_naming_the_file(parts: list[str], joint: str) -> None:
    reason = technician_reason(NAME, joint.join(parts), [str(HOME), TMP])
    assert len(reason.splitlines()) == 1
    assert reason.startswith(NAME)
    assert f"{HOME}/" not in reason and f"{TMP}/" not in reason
    assert "Traceback (most recent" not in reason and "Error:" not in reason
    if joint != " " and "Traceback (most recent call last):" in parts:  # a traceback's frames
        assert "_sample.py" not in reason and "raise ValueError" not in reason


def test_library_text_keeps_its_words_without_paths_or_class_names() -> None:
    text = (
        f"FCSParsingError: FCS file {TMP}/cartflow-x1/{NAME} reports a data offset\n\n"
        f"see {HOME}/raw/ab/{'ab' * 32}.fcs"
    )
    assert technician_reason(NAME, text, [str(HOME), TMP]) == (
        f"{NAME}: FCS file {NAME} reports a data offset; see {NAME}"
    )


def test_a_reason_already_fit_to_read_is_unchanged() -> None:
    reason = f"{NAME}: $P1R (the range of channel 1, FSC-A) is '0', not a number above 0"
    assert technician_reason(NAME, reason, [str(HOME), TMP]) == reason
    assert technician_reason(NAME, "not recognised", [str(HOME)]) == f"{NAME}: not recognised"


def test_a_fault_is_logged_with_its_traceback_and_named_as_cartflow_s(tmp_path: Path) -> None:
    def broken() -> None:
        {}["sample_name"]

    try:
        broken()
    except KeyError as err:
        rejection = refusal(NAME, err, tmp_path, "c0ffee" * 10 + "abcd")
    assert rejection.reason.startswith(
        f"{NAME}: cartflow could not process this file because of a fault in cartflow, not in "
        "the file; keep the file and report it (details: fault "
    )
    assert rejection.reason.endswith("-c0ffeec0 in logs/faults.log of the lab home)")
    log = (tmp_path / FAULT_LOG).read_text()
    assert "Traceback (most recent call last)" in log and "in broken" in log
    assert "KeyError: 'sample_name'" in log and f"file {NAME!r}" in log


def test_a_refusal_keeps_its_kind_and_format(tmp_path: Path) -> None:
    made = refusal(NAME, Rejection("bad $PAR", "flow", "fcs3.1"), tmp_path)
    assert (made.reason, made.kind, made.instrument_format) == (
        f"{NAME}: bad $PAR",
        "flow",
        "fcs3.1",
    )
    assert not (tmp_path / FAULT_LOG).exists()


def test_each_refusal_keeps_its_remedy_and_the_advice_follows_it(tmp_path: Path) -> None:
    from pipelines.assays import COMPLETE_MANIFEST, FIX_FILE, REPORT_FAULT, RERUN_ASSAY
    from pipelines.ingest.reasons import advice

    remedies = [
        refusal(NAME, Rejection("bad $PAR", "flow", "fcs3.1"), tmp_path).action,
        refusal(NAME, Rejection("identity: P9", "qpcr", "x", COMPLETE_MANIFEST), tmp_path).action,
        refusal(NAME, Rejection("plate failed QC", "qpcr", "x", RERUN_ASSAY), tmp_path).action,
        refusal(NAME, KeyError("sample_name"), tmp_path).action,
    ]
    assert remedies == [FIX_FILE, COMPLETE_MANIFEST, RERUN_ASSAY, REPORT_FAULT]
    assert "fix it" in advice(FIX_FILE) and "fix it" not in advice(RERUN_ASSAY)
    assert "complete the sample manifest" in advice(COMPLETE_MANIFEST)
    assert "re-run the assay on a new plate" in advice(RERUN_ASSAY)
    assert "report the fault" in advice(REPORT_FAULT)

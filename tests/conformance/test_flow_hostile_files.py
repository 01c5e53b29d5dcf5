"""Hostile FCS files, made in the test from real acquisitions, go through the real ingest engine
and are each quarantined with a one-line reason that starts with the file's name and says what is
wrong, with no traceback, class name, temporary or lab-home path, or library text. And every real
FCS file shipped (shared data, fcsparser's instrument files) is either taken with the numbers
its events give or refused with a reason of its own."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import fcsparser
import numpy as np
import pytest

from gating import FlowFormatError, FlowSettings, read_fcs
from pipelines.assays import FLOW, Rejection, compute, recognise
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, QUARANTINED
from pipelines.ingest.processor import Processor
from pipelines.settings import Settings
from tests.fcs_variants import COMPENSATED, Acquisition, replace_keyword, set_stored_values

pytestmark = pytest.mark.conformance

FCSPARSER_FILES = Path(fcsparser.__file__).parent / "tests" / "data" / "FlowCytometers"
FORTESSA = next(FCSPARSER_FILES.rglob("FCS_3.0_Fortessa*.fcs"))

CD4_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="CD4pos">
    <gating:dimension gating:compensation-ref="FCS" gating:min="500"><data-type:fcs-dimension data-type:name="CD4"/></gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""  # fmt: skip
"""A panel of one gate on the file's own compensation, for the real LSR II acquisition."""


@pytest.fixture(scope="module")
def engine(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Processor:
    folder = tmp_path_factory.mktemp("hostile")
    template = folder / "cd4.xml"
    template.write_text(CD4_TEMPLATE)
    flow = FlowSettings(templates={"cd4": template}, panel_patterns={"cd4": "PBMC"})
    return Processor(LabHome(folder / "lab").ensure(), Settings(flow=flow))


def _hostile_files(shared_data: Path, folder: Path) -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, a phrase its reason must hold)."""
    real = Acquisition.read(shared_data / COMPENSATED)
    named = {"src": "P001_D14"}
    nan, inf = real.events.copy(), real.events.copy()
    nan[5, 3] = nan[7, 4] = np.nan
    inf[9, 6] = np.inf
    fortessa = folder / "fortessa_inf.fcs"
    shutil.copyfile(FORTESSA, fortessa)
    set_stored_values(fortessa, [(0, 2)], -np.inf)
    spill = real.metadata["spill"].replace("Ax700-A", "B710-A")
    return {
        "nan_events.fcs": (real.fcs_bytes(nan, **named), "2 of 10,703 events hold NaN values"),
        "inf_events.fcs": (real.fcs_bytes(inf, **named), "1 of 10,703 events hold infinite"),
        "fortessa_inf.fcs": (fortessa.read_bytes(), "1 of 11,585 events hold infinite values"),
        "range_0.fcs": (real.fcs_bytes(p1r="0", **named), "$P1R (the range of channel 1, FSC-A) is '0'"),
        "range_minus_5.fcs": (real.fcs_bytes(p1r="-5", **named), "$P1R (the range of channel 1, FSC-A) is '-5'"),
        "par_x.fcs": (replace_keyword(real.fcs_bytes(**named), "$PAR", "x"), "$PAR (the number of channels) is 'x'"),
        "tot_mismatch.fcs": (replace_keyword(real.fcs_bytes(**named), "$TOT", "10702"), "$TOT says 10,702 events"),
        "foreign_spillover.fcs": (real.fcs_bytes(spill=spill, **named), "SPILL (the spillover matrix) names B710-A"),
    }  # fmt: skip


def test_hostile_fcs_files_are_quarantined_each_with_its_own_reason(
    engine: Processor, shared_data: Path, tmp_path: Path
) -> None:
    home = engine.home
    for name, (content, phrase) in _hostile_files(shared_data, tmp_path).items():
        path = home.inbox / name
        path.write_bytes(content)
        outcome = engine.process(path)
        assert outcome.status == QUARANTINED, (name, outcome.reason)
        reason = outcome.reason
        assert reason.startswith(f"{name}: ") and phrase in reason, reason
        assert len(reason.splitlines()) == 1 and len(reason) < 400, reason
        for leaked in ("Traceback", "Error:", "Exception", tempfile.gettempdir() + "/",
                       str(home.root), "list index", "Matrix labels", "FlowIO"):  # fmt: skip
            assert leaked not in reason, (leaked, reason)
        assert (home.quarantine / f"{name}.reason.txt").read_text() == reason + "\n"


def test_the_real_acquisition_itself_is_taken_with_its_numbers(
    engine: Processor, shared_data: Path
) -> None:
    """The control of the table above: unchanged, the same file is taken."""
    real = Acquisition.read(shared_data / COMPENSATED)
    path = engine.home.inbox / "unchanged.fcs"
    path.write_bytes(real.fcs_bytes(src="P001_D14"))
    outcome = engine.process(path)
    assert outcome.status == INGESTED, outcome.reason
    assert outcome.rows["flow_populations"] == 1 and outcome.partitions == [("P001", "D14")]


def test_a_spillover_over_some_channels_only_is_taken(engine: Processor, shared_data: Path) -> None:
    """FlowKit said "Matrix labels do not match given fluorescent labels ..." on six lines; the
    file's matrix compensates the channels it names, as the acquisition software does."""
    real = Acquisition.read(shared_data / COMPENSATED)
    parts = real.metadata["spill"].split(",")
    n = int(parts[0])
    values = np.array(parts[1 + n :], dtype=float).reshape(n, n)[:-1, :-1]
    spill = ",".join([str(n - 1), *parts[1:n], *map(str, values.ravel())])
    path = engine.home.inbox / "some_channels.fcs"
    path.write_bytes(real.fcs_bytes(spill=spill, src="P001_D14"))
    outcome = engine.process(path)
    assert outcome.status == INGESTED, outcome.reason


SWEEP_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="Upper">
    <gating:dimension gating:compensation-ref="uncompensated" gating:min="{low!r}"><data-type:fcs-dimension data-type:name="{channel}"/></gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""  # fmt: skip
REFUSED = {
    "Cytek_xP5.fcs": "Cytek_xP5.fcs: 24-bit integers ($P1B=24)",
    "corrupted.fcs": "not a recognised export",
    "sample_header.fcs": "sample_header.fcs is truncated at byte 3931",
}
"""Real files refused, with the start of their reason; every other one must be taken."""


def test_every_real_fcs_file_is_taken_with_its_numbers_or_refused_with_its_reason(
    shared_data: Path, tmp_path: Path
) -> None:
    """Each file is gated with a one-gate panel made for it (events at or above the median of
    its first channel), so the count taken can be checked against the file's own events."""
    files = sorted([*shared_data.rglob("*.fcs"), *shared_data.rglob("*.lmd"),
                    *FCSPARSER_FILES.rglob("*.fcs")])  # fmt: skip
    every_tube = SimpleNamespace(
        resolve=lambda name: SimpleNamespace(
            patient_id="P001",
            timepoint="D14",
            study_day=14,
            collection_date=None,
            dna_input_ng=None,
        )
    )
    tally = {"taken": 0, "refused": 0, "bead array": 0}
    for path in files:
        try:
            recognised = recognise(path)
            if recognised.kind != FLOW:
                tally["bead array"] += 1
                continue
            settings, expected = _panel_for(path, tmp_path)
            tables = compute(path, recognised, settings, every_tube).tables
        except Rejection as refused:
            assert refused.reason.startswith(REFUSED[path.name]), refused.reason
            assert "\n" not in refused.reason
            tally["refused"] += 1
            continue
        assert path.name not in REFUSED
        assert list(tables["flow_populations"]["count"]) == expected, path.name
        tally["taken"] += 1
    assert tally == {"taken": 20, "refused": 3, "bead array": 1}


def _panel_for(path: Path, folder: Path) -> tuple[Settings, list[int]]:
    """Settings whose panels gate each dataset at the median of its first channel, and the
    count each dataset must give; a file FlowIO cannot read gets a panel that is never used."""
    try:
        datasets = read_fcs(path)
    except FlowFormatError:
        return Settings(flow=FlowSettings(templates={}, panel_patterns={})), []
    templates, expected, low_of = {}, [], {}
    for dataset in datasets:
        values = dataset.events()[:, 0]
        channel = dataset.channels[0].pnn
        low = low_of.setdefault(channel, float(np.median(values)))
        template = folder / f"{path.stem}-{len(templates)}.xml"
        template.write_text(SWEEP_TEMPLATE.format(low=low, channel=channel))
        templates.setdefault(channel, template)
        expected.append(int((values >= low).sum()))
    flow = FlowSettings(
        templates={f"first-{c}": t for c, t in templates.items()}, panel_patterns={}
    )
    return Settings(flow=flow), expected

"""A 30-plex human cytokine plate exported by xPONENT, built on the shipped export's header block.

The analytes are the Invitrogen Cytokine Human Magnetic 30-Plex Panel as xPONENT names them (the
panel of issue 14), plus one analyte with an invented name. The file follows xPONENT's layout
(the shipped luminex_xPONENT_example02.csv): the real header block up to `"Results"`, then one
`"DataType:"` section per statistic with `Location, Sample, <analytes>..., Total Events` rows.
MFIs come from a known 5PL per analyte, so concentrations can be checked against the truth.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from cba import CbaSettings, analyse_plate, read_plate, sniff
from cba.curves import logistic
from pipelines.assays import CBA, Recognised, Rejection, compute
from pipelines.identity import IdentityResolver
from pipelines.settings import DEFAULT_SAMPLE_NAME_PATTERN, Settings
from tests.cba.test_analytes import INVITROGEN_30PLEX_AS_EXPORTED

pytestmark = pytest.mark.conformance

INVENTED = "Zorbin-7"
ANALYTES = [*INVITROGEN_30PLEX_AS_EXPORTED, INVENTED]
STANDARDS = [f"Standard{n}" for n in range(1, 8)]
"""xPONENT names standards Standard1 (the top) to Standard7; this kit dilutes 1:3."""
TOP_PG_ML = 10_000.0
SAMPLES_PG_ML = {"P001_BL": 25.0, "P001_D4": 480.0, "P002_D7": 3100.0}
XPONENT = Recognised(CBA, "luminex-xponent-csv")


def _curve(index: int) -> tuple[float, float, float, float, float]:
    """A distinct 5PL (a, b, c, d, g) per analyte."""
    return 20.0 + index, 1.0 + 0.01 * index, 900.0 + 40 * index, 24000.0 + 150 * index, 0.9


def _layout() -> list[tuple[str, str]]:
    """(well, sample) in plate order: two backgrounds, duplicate standards, duplicate samples."""
    names = ["Background0"] + STANDARDS + list(SAMPLES_PG_ML)
    wells = [f"{'ABCDEFGH'[i % 8]}{i // 8 + 1}" for i in range(2 * len(names))]
    return [(wells[2 * i + rep], name) for i, name in enumerate(names) for rep in range(2)]


def _expected(sample: str) -> float:
    return TOP_PG_ML / 3 ** (int(sample.removeprefix("Standard")) - 1)


def write_30plex(header: list[list[str]], path: Path, slipped: set[str]) -> Path:
    """The plate, with Standard3's expected concentration written 1000x for `slipped` analytes."""
    layout = _layout()
    rows: list[list[str]] = [*header, [], ["DataType:", "Median"]]
    rows.append(["Location", "Sample", *ANALYTES, "Total Events"])
    for number, (well, sample) in enumerate(layout, start=1):
        truth = SAMPLES_PG_ML.get(sample) or (_expected(sample) if sample in STANDARDS else 0.0)
        mfi = [float(logistic(np.array(truth), *_curve(i))) for i in range(len(ANALYTES))]
        rows.append([f"{number}(1,{well})", sample, *(f"{m:.1f}" for m in mfi), "2400"])
    rows += [[], ["DataType:", "Count"], ["Location", "Sample", *ANALYTES, "Total Events"]]
    for number, (well, sample) in enumerate(layout, start=1):
        rows.append([f"{number}(1,{well})", sample, *("52" for _ in ANALYTES), "2400"])
    rows += [[], ["DataType:", "Standard Expected Concentration"]]
    rows.append(["Location", "Sample", *ANALYTES])
    for number, (well, sample) in enumerate(layout, start=1):
        if sample in STANDARDS:
            values = [
                _expected(sample) * (1000 if a in slipped and sample == "Standard3" else 1)
                for a in ANALYTES
            ]
            rows.append([f"{number}(1,{well})", sample, *(f"{v:.2f}" for v in values)])
    rows += [[], ["DataType:", "Dilution Factor"], ["Location", "Sample", "Dilution Factor"]]
    rows += [[f"{n}(1,{w})", s, "1"] for n, (w, s) in enumerate(layout, start=1)]
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_text(text.getvalue().replace('""\r\n', "\r\n"), encoding="latin-1")
    return path


@pytest.fixture(scope="module")
def header(shared_data: Path) -> list[list[str]]:
    """The shipped export's real header block, up to and including `"Results"`."""
    text = (shared_data / "cba" / "luminex_xPONENT_example02.csv").read_bytes().decode("latin-1")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[: next(i for i, row in enumerate(rows) if row[:1] == ["Results"]) + 1]


def test_the_30plex_is_taken_with_il2r_as_sil2ra_the_slip_flagged_and_the_unknown_kept(
    header: list[list[str]], tmp_path: Path
) -> None:
    path = write_30plex(header, tmp_path / "30plex.csv", slipped={"IL6"})
    assert sniff(path) == "luminex-xponent-csv"
    plate = read_plate(path)
    by_export = plate.wells.drop_duplicates("analyte_as_exported").set_index("analyte_as_exported")
    assert by_export.loc["IL2R", "analyte"] == "sIL-2Rα"
    assert by_export["analyte_recognised"].to_dict() == {a: a != INVENTED for a in ANALYTES}
    assert by_export.loc[INVENTED, "analyte"] == INVENTED

    result = analyse_plate(plate)
    verdicts = result.curves.set_index("analyte")["verdict"].to_dict()
    assert verdicts.pop("IL-6") == "FAIL"
    assert set(verdicts.values()) == {"PASS"} and len(verdicts) == 30
    il6 = result.curves.set_index("analyte").loc["IL-6"]
    assert il6["verdict_reason"].startswith(
        "standard series broken: Standard3 = 1111111.11 pg/mL is 1000x what the series predicts"
    )
    assert result.series_breaks == {"Standard3 1000x the series": ["IL-6"]}
    unknown_warning, series_warning = result.warnings
    assert INVENTED in unknown_warning and "[cba] analyte_aliases" in unknown_warning
    assert series_warning.startswith("standard series broken: Standard3 1000x the series for IL-6;")

    cytokines = result.cytokines.set_index(["analyte", "sample_name"])
    for sample, truth in SAMPLES_PG_ML.items():
        sil2ra = cytokines.loc[("sIL-2Rα", sample)]
        assert sil2ra["censoring"] == "none"
        assert sil2ra["concentration_pg_ml"] == pytest.approx(truth, rel=0.02)
        assert np.isnan(cytokines.loc[("IL-6", sample), "concentration_pg_ml"])
        unknown = cytokines.loc[(INVENTED, sample)]
        assert not unknown["analyte_recognised"]
        assert unknown["concentration_pg_ml"] == pytest.approx(truth, rel=0.02)


def test_a_slip_on_every_analyte_refuses_the_plate_naming_each_analyte(
    header: list[list[str]], tmp_path: Path
) -> None:
    path = write_30plex(header, tmp_path / "30plex.csv", slipped=set(ANALYTES))
    result = analyse_plate(read_plate(path))
    (touched,) = result.series_breaks.values()
    assert len(touched) == 31 and "sIL-2Rα" in touched and INVENTED in touched
    resolver = IdentityResolver([], DEFAULT_SAMPLE_NAME_PATTERN)
    with pytest.raises(Rejection) as caught:
        compute(path, XPONENT, Settings(), resolver)
    reason = caught.value.reason
    assert reason.startswith(
        "30plex.csv: every standard curve failed; standard series broken: Standard3 1000x the "
        "series for FGF-2, IL-1β, G-CSF,"
    )
    assert all(name in reason for name in touched)
    assert str(tmp_path) not in reason and "\n" not in reason


def test_the_pipeline_takes_the_plate_with_a_lab_alias_for_the_invented_name(
    header: list[list[str]], tmp_path: Path
) -> None:
    path = write_30plex(header, tmp_path / "30plex.csv", slipped={"IL6"})
    resolver = IdentityResolver([], DEFAULT_SAMPLE_NAME_PATTERN)
    settings = Settings(cba=CbaSettings(analyte_aliases={INVENTED: "IL-33"}))
    tables = compute(path, XPONENT, settings, resolver)
    cytokines = tables.tables["cytokines"]
    assert cytokines["analyte_recognised"].all()
    assert set(cytokines["patient_id"]) == {"P001", "P002"}
    il33 = cytokines[cytokines["analyte"] == "IL-33"].set_index("sample_name")
    assert il33.loc["P001_D4", "concentration_pg_ml"] == pytest.approx(480.0, rel=0.02)
    assert tables.tables["cba_curves"].set_index("analyte").loc["IL-6", "verdict"] == "FAIL"
    assert any("Standard3 1000x the series for IL-6" in w for w in tables.warnings)

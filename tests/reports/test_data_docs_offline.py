"""cartflow's Data Docs (`validation/docs.py`) offline: a small lab home's validation pages opened
in headless Chromium with the network off fetch nothing but themselves, show pass and fail, and
name every run after the file it validated; no generated file holds a web address."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from pipelines.demo.qpcr_plates import FAILING_CURVES
from pipelines.hashing import sha256_of
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, QUARANTINED, Processor
from tests.browser import inspect, png_is_blank
from tests.plates import qpcr_plate
from validation import docs

PASSING = "2026-05-01_CAR-qPCR_plateA.txt"
FAILING = "2026-05-02_CAR-qPCR_plateB inhibited.txt"
MISLABELLED = "2026-05-02_plateB relabelled PASS.txt"
"""The failing plate's run rows with their verdict set to PASS: the suite's own check of a passing
run's efficiency fails them, a real GX failure for the docs to show."""
SWEPT = ("2026-05-03_plateC.txt", "2026-05-03_plateD.txt")
WEB_ADDRESS = re.compile(r"https?://", re.IGNORECASE)
COMMENTS = re.compile(r"<!--.*?-->|/\*.*?\*/", re.DOTALL)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabHome:
    """A passing plate and a failing one taken one by one, the failing plate's run rows
    mislabelled PASS and validated (GX fails them), then two plates validated as one batch (as
    a sweep does), and the docs' index built."""
    home = LabHome(tmp_path_factory.mktemp("docs-lab")).ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    processor = Processor(home)
    passing = qpcr_plate(home.inbox / PASSING, "P101", "DOCS-A")
    failing = qpcr_plate(home.inbox / FAILING, "P102", "DOCS-B", curves=FAILING_CURVES)
    assert processor.process(passing).status == INGESTED
    failing_sha256 = sha256_of(failing)
    assert processor.process(failing).status == QUARANTINED
    runs = pd.concat(pd.read_parquet(p) for p in (home.warehouse / "qpcr_runs").rglob("*.parquet"))
    relabelled = runs[runs["source_sha256"] == failing_sha256].assign(qc_verdict="PASS")
    assert not processor.validator.validate("qpcr_runs", relabelled, MISLABELLED).success
    swept = [qpcr_plate(home.inbox / n, f"P10{i + 3}", f"DOCS-{n}") for i, n in enumerate(SWEPT)]
    prepared = [processor.prepare(path, "sweep-1") for path in swept]
    checks = processor.validate(prepared)
    assert [processor.commit(p, checks[p.sha256], "sweep-1").status for p in prepared] == [
        INGESTED,
        INGESTED,
    ]
    processor.validator.build_docs()
    return home


def _summaries(home: LabHome) -> list[dict]:
    return [json.loads(p.read_text()) for p in (home.gx / "docs" / docs.RUNS).glob("*.json")]


def _page_of(home: LabHome, run_name: str) -> Path:
    [summary] = [s for s in _summaries(home) if s["run_name"] == run_name]
    return home.gx / "docs" / summary["page"]


def test_every_run_is_named_after_its_file_in_the_docs_and_in_gx(lab: LabHome) -> None:
    names = {s["run_name"] for s in _summaries(lab)}
    assert f"{PASSING} (qpcr_runs)" in names
    assert f"{FAILING} (qpcr_runs)" in names
    assert f"{MISLABELLED} (qpcr_runs)" in names
    assert f"{SWEPT[0]} and 1 more files (car_copies)" in names
    stored = {
        p.name for p in (lab.gx / "gx" / "uncommitted" / "validations" / "qpcr_runs").iterdir()
    }
    assert {f"{PASSING} (qpcr_runs)", f"{FAILING} (qpcr_runs)"} <= stored
    assert not [n for n in names | stored if re.search(r"[0-9a-f]{16}", n)]


def test_the_index_lists_runs_newest_first_with_their_verdict(lab: LabHome) -> None:
    index = (lab.gx / "docs" / docs.INDEX).read_text()
    rows = re.findall(r"<tr><td>([^<]*)</td><td><a href=\"([^\"]+)\">([^<]*)</a>", index)
    latest = max(s["validated_at"][:7] for s in _summaries(lab))  # the fixture may span months
    assert len(rows) == len([s for s in _summaries(lab) if s["validated_at"][:7] == latest])
    assert len(rows) > 4 or (lab.gx / "docs" / docs.MONTHS).is_dir()
    times = [t for t, _, _ in rows]
    assert times == sorted(times, reverse=True)
    for _, href, _ in rows:
        assert (lab.gx / "docs" / href).is_file()
    failed_row = next(r for r in index.split("<tr>") if f"{MISLABELLED} (qpcr_runs)" in r)
    assert docs.FAILED in failed_row
    passed_row = next(r for r in index.split("<tr>") if f"{PASSING} (qpcr_runs)" in r)
    assert docs.PASSED in passed_row and "0 of " in passed_row


def test_a_failed_run_page_names_the_broken_rule_with_what_was_observed(lab: LabHome) -> None:
    page = _page_of(lab, f"{MISLABELLED} (qpcr_runs)").read_text()
    assert docs.FAILED in page and MISLABELLED in page
    rows = page.split("<tbody>")[2].split("</tr>")
    failed = [r for r in rows if docs.FAILED in r]
    assert rows[: len(failed)] == failed  # failures come first
    [efficiency] = [r for r in failed if "efficiency_pct" in r]
    assert "a run that passed QC has its amplification efficiency within 90-110 %" in efficiency
    assert "min_value = 90" in efficiency and "max_value = 110" in efficiency
    assert re.search(r"1 row\(s\) failed, e\.g\. 7\d\.\d+", efficiency)
    assert docs.PASSED in page  # the rules it met are listed too


def test_earlier_months_move_from_the_index_to_a_page_of_their_own(tmp_path: Path) -> None:
    """Runs in GX's JSON result form: one of October that failed a rule, two of December."""
    failing = {
        "success": False,
        "results": [
            {
                "success": False,
                "expectation_config": {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "efficiency_pct", "min_value": 90.0, "max_value": 110.0},
                    "meta": {"rule": "amplification efficiency within 90-110 %"},
                },
                "result": {"unexpected_count": 1, "partial_unexpected_list": [74.17]},
            }
        ],
    }
    passing = {"success": True, "results": []}
    docs.write_run_page(
        tmp_path, "qpcr_runs", ["oct.txt"], datetime(2026, 10, 3, tzinfo=UTC), failing
    )
    for day in (1, 2):
        when = datetime(2026, 12, day, tzinfo=UTC)
        docs.write_run_page(tmp_path, "qpcr_runs", [f"dec{day}.txt"], when, passing)

    index = docs.build_index(tmp_path).read_text()
    assert index.index("dec2.txt") < index.index("dec1.txt")
    assert "oct.txt" not in index
    assert f'<a href="{docs.MONTHS}/2026-10.html">2026-10</a>' in index
    october = (tmp_path / docs.MONTHS / "2026-10.html").read_text()
    [link] = re.findall(r'href="(\.\./runs/[^"]+)"', october)
    run_page = (tmp_path / docs.MONTHS / link).resolve().read_text()
    assert "oct.txt (qpcr_runs)" in run_page and "1 row(s) failed, e.g. 74.17" in run_page
    assert "min_value = 90; max_value = 110" in run_page


def test_no_generated_docs_file_holds_a_web_address(lab: LabHome) -> None:
    written = [
        p for p in (lab.gx / "docs").rglob("*") if p.suffix in (".html", ".css", ".js", ".json")
    ]
    assert len(written) > 8
    for path in written:
        text = COMMENTS.sub("", path.read_text(encoding="utf-8"))
        assert not WEB_ADDRESS.search(text), path


@pytest.mark.slow
@pytest.mark.parametrize("which", ["index", "failed run"])
def test_docs_open_offline_and_request_nothing_else(
    lab: LabHome, browser: str, which: str, tmp_path: Path
) -> None:
    page = (
        lab.gx / "docs" / docs.INDEX
        if which == "index"
        else _page_of(lab, f"{MISLABELLED} (qpcr_runs)")
    )
    shot = tmp_path / f"{which.replace(' ', '_')}.png"
    check = inspect(browser, page, shot)
    assert check.requested == [page.as_uri()], check.requested
    assert check.errors == []
    assert not png_is_blank(check.screenshot)


def test_a_run_name_is_safe_as_gx_folder_whatever_the_file_name() -> None:
    name = docs.run_name("car_copies", ["plate\n" + "x" * 300 + ".txt"])
    assert name.endswith(" (car_copies)")
    assert len(name.encode("utf-8")) <= 255
    assert "\n" not in name and "/" not in name and name.startswith("plate\\n")
    assert docs.run_name("qpcr_runs", ["a.txt", "b.txt", "c.txt"]) == (
        "a.txt and 2 more files (qpcr_runs)"
    )

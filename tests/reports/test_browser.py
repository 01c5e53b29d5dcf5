"""The HTML reports in headless Chromium: no console errors, nothing fetched from the network
(the network is switched off), and every plot drawn (a screenshot that is not blank).

Chromium is driven over the DevTools protocol with the `websockets` client. Without Chromium the
tests skip, except in CI (`CI` set), where they fail: CI installs Debian's chromium (.ci/run).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from pipelines.demo import trial
from pipelines.demo.cba_files import FCAP_FILE
from pipelines.demo.generate import write_demo_trial
from pipelines.derived.recompute import recompute_patients
from pipelines.home import LabHome
from pipelines.ingest import Processor
from tests.plates import qpcr_plate
from tests.reports.partial_exports import accession, one_sample_cba_plate

pytestmark = pytest.mark.slow

PATIENTS = ("P001", "P002")
"""P002 gets every assay; P001 only qPCR and cytokines, so its flow sections must say so."""
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)  # fmt: skip
DRAWN_PLOTS_JS = """(() => {
  const plots = [...document.querySelectorAll('svg.plot')];
  const undrawn = plots.filter(svg => {
    const box = svg.getBoundingClientRect();
    const marks = svg.querySelectorAll('.point, path.series').length;
    return box.width < 100 || box.height < 100 || marks === 0;
  }).map(svg => svg.getAttribute('aria-label'));
  return JSON.stringify({plots: plots.length, undrawn: undrawn});
})()"""


def _subset(files: list[Path]) -> list[Path]:
    """The manifest, P001/P002's qPCR plate, the bead-array plates and P002's FCS tubes."""
    accessions = {s.accession for s in trial.study_samples() if s.patient_id == "P002"}

    def wanted(path: Path) -> bool:
        if path.suffix.lower() == ".fcs":
            return path.name.split("_")[0] in accessions or path.name.startswith("P002_")
        return "plate3" not in path.name and "plate4" not in path.name

    return [p for p in files if wanted(p)]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    home = LabHome(tmp_path_factory.mktemp("report-lab")).ensure()
    demo = write_demo_trial(home.inbox)
    processor = Processor(home)
    for path in _subset(demo.files):
        assert processor.process(path).status == "ingested", path.name
    processor.export_ledger()
    outcome = recompute_patients(home, PATIENTS, processor.validator)
    assert outcome.failures == []
    return {p.stem: p for p in outcome.reports}


@pytest.fixture(scope="module")
def partial_reports(tmp_path_factory) -> dict[str, Path]:
    """Pages of partial data: P001 has one baseline T-cell tube and one day-4 cytokine sample,
    P009 (in no manifest) only a qPCR plate named by pattern, so no DNA input and no copies per ug."""
    exports = tmp_path_factory.mktemp("partial-exports")
    demo = write_demo_trial(exports / "inbox")
    home = LabHome(tmp_path_factory.mktemp("partial-lab")).ensure()
    tube = exports / "inbox" / f"{accession('P001', 'BL')}_TCELL.fcs"
    cytokines = one_sample_cba_plate(
        exports / "inbox" / FCAP_FILE, accession("P001", "D4"), exports / "one_sample.csv"
    )
    plate = qpcr_plate(exports / "pattern_plate.txt", "P009", "partial-1")
    processor = Processor(home)
    for path in (demo.files[0], tube, cytokines, plate):
        assert processor.process(path).status == "ingested", path.name
    processor.export_ledger()
    outcome = recompute_patients(home, ["P001", "P009"], processor.validator)
    assert outcome.failures == [] and len(outcome.notes) == 2
    return {p.stem: p for p in outcome.reports}


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium not installed (apt-get install chromium); browser checks not run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class DevTools:
    """A page in a headless Chromium, driven over the DevTools protocol."""

    def __init__(self, websocket_url: str) -> None:
        self.socket = ws_connect(websocket_url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.socket.recv(timeout=deadline - time.monotonic())))


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory) -> Iterator[str]:
    """A running headless Chromium; yields its DevTools HTTP address."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        address = None
        for line in process.stderr:
            match = re.search(r"DevTools listening on ws://([^/]+)/", line)
            if match:
                address = match.group(1)
                break
        assert address, "chromium did not start its DevTools server"
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def _open_page(address: str) -> DevTools:
    request = urllib.request.Request(f"http://{address}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        target = json.load(response)
    return DevTools(target["webSocketDebuggerUrl"])


def png_is_blank(png: bytes) -> bool:
    """True when the decoded pixel rows hold (almost) a single colour. The rows are decompressed
    from the IDAT chunks; a white page filters to a handful of byte values, a page with text and
    coloured plots to many."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data, offset = b"", 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        kind = png[offset + 4 : offset + 8]
        if kind == b"IDAT":
            data += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    rows = zlib.decompress(data)
    return len(set(rows)) < 32


def test_blank_detection_works():
    white = zlib.compress(b"\x00" + b"\xff" * 30)
    chunk = len(white).to_bytes(4, "big") + b"IDAT" + white + b"\x00" * 4
    assert png_is_blank(b"\x89PNG\r\n\x1a\n" + chunk)


@dataclass
class PageCheck:
    errors: list[dict]
    requested: list[str]
    plots: int
    undrawn: list[str]
    screenshot: bytes


def inspect(address: str, page: Path) -> PageCheck:
    """Load `page` with the network off; collect errors, requests, plot state, a screenshot."""
    tab = _open_page(address)
    tab.call("Network.enable")
    tab.call("Network.emulateNetworkConditions", offline=True, latency=0,
             downloadThroughput=-1, uploadThroughput=-1)  # fmt: skip
    tab.call("Runtime.enable")
    tab.call("Log.enable")
    tab.call("Page.enable")
    tab.call("Emulation.setDeviceMetricsOverride", width=1200, height=2000,
             deviceScaleFactor=1, mobile=False)  # fmt: skip
    tab.call("Page.navigate", url=page.as_uri())
    tab.wait_for("Page.loadEventFired")
    drawn = json.loads(tab.call("Runtime.evaluate", expression=DRAWN_PLOTS_JS)["result"]["value"])
    shot = base64.b64decode(tab.call("Page.captureScreenshot", format="png")["data"])
    errors = [
        e["params"] for e in tab.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]  # fmt: skip
    requested = [
        e["params"]["request"]["url"] for e in tab.events
        if e.get("method") == "Network.requestWillBeSent"
    ]  # fmt: skip
    tab.socket.close()
    return PageCheck(errors, requested, drawn["plots"], drawn["undrawn"], shot)


@pytest.mark.parametrize("page", ["patient_P002", "patient_P001", "cohort", "qc"])
def test_report_opens_offline_without_errors_and_draws_every_plot(browser, reports, page):
    check = inspect(browser, reports[page])
    assert check.errors == []
    assert all(url.startswith("file://") for url in check.requested), check.requested
    assert check.plots >= 1 and check.undrawn == []
    assert not png_is_blank(check.screenshot)


@pytest.mark.parametrize("page", ["patient_P001", "patient_P009", "cohort"])
def test_pages_of_partial_data_draw_every_plot_they_show(browser, partial_reports, page):
    check = inspect(browser, partial_reports[page])
    assert check.errors == []
    assert check.undrawn == []
    assert not png_is_blank(check.screenshot)


def test_the_checks_catch_a_page_that_reaches_out(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="https://cdn.example.org/x.png">'
        '<svg class="plot" width="300" height="200"></svg>'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    check = inspect(browser, page)
    assert check.errors and check.undrawn
    assert any(url.startswith("https://") for url in check.requested)


def test_absent_data_is_said_not_broken(reports):
    p001 = reports["patient_P001"].read_text(encoding="utf-8")
    assert "No T-cell panel data yet." in p001
    assert "No B-cell panel data yet." in p001
    p002 = reports["patient_P002"].read_text(encoding="utf-8")
    assert "B-cell aplasia" in p002 and "alert D4" in p002

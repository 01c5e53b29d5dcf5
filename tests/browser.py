"""Report pages in a headless Chromium, driven over the DevTools protocol with `websockets`.

`inspect` loads a page with the network switched off and returns what a reviewer needs: errors on
the console, every request the page made, how many plots it holds and which are undrawn, and a
screenshot of the whole page. The `chromium` and `browser` fixtures (tests/conftest.py) skip
without Chromium, except in CI (`CI` set), where they fail: CI installs Debian's chromium
(.ci/run).

A plot is an ``<svg class="plot">`` named by its aria-label. It is drawn when it is at least
100 px wide and high and holds data marks: an element whose id starts with ``data-`` (the gid of
a matplotlib artist, `pipelines.reports.plots.data_gid`) that is an image or holds shapes.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)  # fmt: skip
DRAWN_PLOTS_JS = """(() => {
  const plots = [...document.querySelectorAll('svg.plot')];
  const marked = svg => [...svg.querySelectorAll('[id^="data-"]')].filter(
    el => el.tagName === 'image' || el.querySelector('path, use, image, rect, circle, polygon')
  ).length;
  const undrawn = plots.filter(svg => {
    const box = svg.getBoundingClientRect();
    return box.width < 100 || box.height < 100 || marked(svg) === 0;
  }).map(svg => svg.getAttribute('aria-label'));
  return JSON.stringify({plots: plots.length, undrawn: undrawn});
})()"""


def find_chromium() -> str:
    """The Chromium to drive; skips the test without one (fails it in CI)."""
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


@contextmanager
def running_browser(chromium: str, profile: Path) -> Iterator[str]:
    """A running headless Chromium; yields its DevTools HTTP address."""
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


@dataclass
class PageCheck:
    errors: list[dict]
    requested: list[str]
    plots: int
    undrawn: list[str]
    screenshot: bytes


def inspect(address: str, page: Path, screenshot: Path | None = None) -> PageCheck:
    """Load `page` with the network off; collect errors, requests, plot state, a screenshot of
    the first 2000 px (and of the whole page into `screenshot`, a PNG path, when given)."""
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
    if screenshot is not None:
        whole = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(whole["data"]))
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

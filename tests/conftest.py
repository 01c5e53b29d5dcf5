"""Shared fixtures.

Conformance tests read the real instrument files in `../shared/data` (beside the checkout, or
wherever `CARTFLOW_SHARED_DATA` points). In CI (`CI` set) a missing folder is a failure; elsewhere
those tests skip with a message saying where the folder was looked for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.environment import SHARED_DATA, env_value

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path:
    return env_value(SHARED_DATA, REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real instrument files; fails loudly in CI when it is missing."""
    folder = _shared_data_dir()
    if not folder.is_dir():
        message = (
            f"conformance data not found at {folder}; put the shared data folder beside the "
            "checkout or set CARTFLOW_SHARED_DATA"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[str]:
    """A headless Chromium for the page tests (tests/browser.py); yields its DevTools address.
    Skips without Chromium, except in CI, where it fails."""
    from tests.browser import find_chromium, running_browser

    with running_browser(find_chromium(), tmp_path_factory.mktemp("chromium-profile")) as address:
        yield address


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    """A temporary Prefect server for the flow tests of one module (GX analytics off)."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        yield

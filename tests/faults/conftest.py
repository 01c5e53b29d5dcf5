"""Real `cartflow` processes against one Prefect server shared by the fault tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server for the fault tests' `cartflow` processes."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    home = tmp_path_factory.mktemp("prefect")
    quiet = {PREFECT_HOME: str(home), PREFECT_SERVER_ANALYTICS_ENABLED: False}
    with temporary_settings(quiet):
        server = SubprocessASGIServer()
        server.start(timeout=180)
    try:
        yield server.api_url
    finally:
        server.stop()

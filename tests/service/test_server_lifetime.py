"""The command line's temporary Prefect server ends with the command, and signals end a run cleanly.

Each test starts a real `cartflow run` without `PREFECT_API_URL` on a small inbox of QuantStudio
plates, so it pays its own temporary server's start (~10 s). The run is in its own process group,
as a terminal's foreground job would be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipelines.home import LabHome
from tests.plates import qpcr_plate

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 240.0  # a busy two-core machine
INTERRUPTED = "interrupted: files in flight were rolled back and will be taken by the next run"


@pytest.fixture
def lab(tmp_path: Path) -> LabHome:
    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    for n in range(6):
        qpcr_plate(home.inbox / f"plate_{n}.txt", f"P9{n:02d}", f"LIFE-{n}")
    return home


@contextlib.contextmanager
def cartflow_run(home: LabHome) -> Iterator[subprocess.Popen]:
    """`cartflow run` on the embedded server; killed with whatever it left at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CARTFLOW_"))}
    env.update(PYTHONUNBUFFERED="1", CARTFLOW_LOCAL_CLUSTER_MIN_FILES="1000")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--home", str(home.root)],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, process_group=0,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


def server_of(process: subprocess.Popen) -> psutil.Process:
    """The run's temporary server (`python -m uvicorn ...`), once it has been started."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    if "uvicorn" in child.cmdline():
                        return child
        time.sleep(0.1)
    pytest.fail("cartflow run started no temporary server")


def wait_until_serving(server: psutil.Process) -> None:
    """Until the server answers: the run is then about to start its flow."""
    argv = server.cmdline()
    url = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}/api/health"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    pytest.fail("the temporary server never answered")


def test_the_temporary_server_dies_with_a_killed_run(lab: LabHome) -> None:
    with cartflow_run(lab) as run:
        server = server_of(run)
        # its own group: a terminal's Ctrl-C reaches the command, which stops the server last
        assert os.getpgid(server.pid) == server.pid
        run.kill()  # SIGKILL: no atexit hook, no finally block
        run.wait(timeout=10)
        gone, alive = psutil.wait_procs([server], timeout=10)
        assert not alive, f"the server {server.pid} outlived its killed run"


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signalled_run_ends_with_one_line(lab: LabHome, signum: int, status: int) -> None:
    with cartflow_run(lab) as run:
        server = server_of(run)
        wait_until_serving(server)
        time.sleep(1.5)  # into the flow
        run.send_signal(signum)
        out, err = run.communicate(timeout=120)
    assert run.returncode == status, out + err
    assert err.strip().splitlines() == [INTERRUPTED], err
    assert "Traceback" not in out + err
    gone, alive = psutil.wait_procs([server], timeout=10)
    assert not alive, "the interrupted run left its server running"

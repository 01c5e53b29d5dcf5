"""`pipelines.runtime.signals` and `server.die_with_parent` in small Python processes (no Prefect)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from pipelines.runtime.server import die_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, signal, sys, time
from pipelines.runtime.signals import interruptible

def report(signum):
    print(f"interrupted by {signum}", file=sys.stderr)

with interruptible(report):
    try:
        try:
            os.kill(os.getpid(), signal.SIGNAL)
            time.sleep(5)
        finally:
            print("finally ran", flush=True)
    except BaseException as swallowed:  # a library that turns it into an error of its own
        if SWALLOW:
            print("swallowed", flush=True)
        else:
            raise
    os.kill(os.getpid(), signal.SIGINT)  # ignored: the first one decides
print("not reached", flush=True)
"""


def run_script(source: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
@pytest.mark.parametrize("swallow", [False, True])
def test_a_signal_unwinds_then_exits_with_one_line(name: str, status: int, swallow: bool) -> None:
    result = run_script(SCRIPT.replace("SIGNAL", name).replace("SWALLOW", str(swallow)))
    assert result.returncode == status, result.stderr
    assert result.stdout.split() == ["finally", "ran"] + (["swallowed"] if swallow else [])
    assert result.stderr.strip() == f"interrupted by {int(getattr(signal, name))}"


def test_a_graceful_stop_sets_the_event_and_the_next_signal_raises() -> None:
    result = run_script("""
        import os, signal, sys
        from pipelines.runtime.signals import interruptible

        with interruptible(lambda signum: print("stopped", signum), lambda signum: 0) as signals:
            stop = signals.graceful()
            os.kill(os.getpid(), signal.SIGTERM)
            print("first: event set", stop.is_set(), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            print("not reached", flush=True)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["first: event set True", "stopped 15"]
    assert result.stderr == ""


@pytest.mark.skipif(die_with_parent() is None, reason="no prctl(PR_SET_PDEATHSIG) here")
def test_a_child_started_with_die_with_parent_ends_with_its_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import subprocess, sys, time
            from pipelines.runtime.server import die_with_parent
            child = subprocess.Popen(["sleep", "60"], preexec_fn=die_with_parent())
            print(child.pid, flush=True)
            time.sleep(60)
            """)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs([child], timeout=10)
        assert not alive
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_die_with_parent_is_not_offered_off_the_main_thread() -> None:
    import threading

    offered = []
    thread = threading.Thread(target=lambda: offered.append(die_with_parent()))
    thread.start()
    thread.join()
    assert offered == [None]


def test_the_signal_pipe_is_closed_after_a_normal_block() -> None:
    from pipelines.runtime.signals import interruptible

    before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    previous = signal.getsignal(signal.SIGTERM)
    with interruptible(lambda signum: None):
        assert signal.getsignal(signal.SIGTERM) is not previous
    assert signal.getsignal(signal.SIGTERM) is previous
    assert signal.set_wakeup_fd(-1) == -1  # nothing left registered
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


def test_a_signal_whose_handler_was_replaced_still_stops_a_graceful_block() -> None:
    """Prefect's SIGTERM handler raises its own exception, which a library may swallow."""
    result = run_script("""
        import os, signal
        from pipelines.runtime.signals import interruptible

        class Bridge(BaseException):
            pass

        def bridge(signum, frame):
            raise Bridge

        with interruptible(lambda signum: print("reported"), lambda signum: 0) as signals:
            stop = signals.graceful()
            mine = signal.signal(signal.SIGTERM, bridge)
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            except Bridge:
                pass  # swallowed: this block's handler never ran
            signal.signal(signal.SIGTERM, mine)
            print("stop seen", stop.wait(0.01), flush=True)
        print("ended", flush=True)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["stop seen True", "ended"]

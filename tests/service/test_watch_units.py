"""Fast checks of the service's pieces that need no server: completeness, keys, runner choice,
the deployment overlay."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest
import yaml

from pipelines.environment import DASK_ADDRESS, LOCAL_CLUSTER_MIN_FILES, LOCAL_WORKERS
from pipelines.home import LabHome
from pipelines.runtime.memory import MALLOC_ENVIRON, tune_malloc
from pipelines.runtime.runners import per_file_runner
from pipelines.service import PREFECT_YAML, ServiceSettings, deployment_file, service_environment
from pipelines.watch import (
    CLOSED,
    CREATED,
    MODIFIED,
    Arrivals,
    Watcher,
    WatchSettings,
    submission_key,
)


def test_a_file_is_ready_only_after_holding_still(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes(b"first chunk")
    arrivals = Arrivals(steady_seconds=2.0)
    arrivals.note(path)
    assert arrivals.ready(now=100.0) == []  # first look: starts the clock
    with path.open("ab") as handle:
        handle.write(b", second chunk")
    os.utime(path, ns=(0, 123))
    assert arrivals.ready(now=101.5) == []  # changed: the clock starts again
    assert arrivals.ready(now=103.0) == []
    [(ready, stat)] = arrivals.ready(now=103.6)
    assert ready == path and stat.st_size == len(b"first chunk, second chunk")
    assert arrivals.ready(now=200.0) == []  # handed out once


def test_a_vanished_file_is_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "gone.txt"
    path.write_text("x")
    arrivals = Arrivals(steady_seconds=0.0)
    arrivals.note(path)
    path.unlink()
    assert arrivals.ready(now=1.0) == []


def test_the_key_changes_with_the_content_version(tmp_path: Path) -> None:
    path = tmp_path / "plate.txt"
    path.write_text("a")
    first = submission_key(path, path.stat())
    assert submission_key(path, path.stat()) == first
    path.write_text("ab")
    assert submission_key(path, path.stat()) != first


def test_watch_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="submit must be one of"):
        WatchSettings(submit="carrier-pigeon")
    with pytest.raises(ValueError):
        WatchSettings(rescan_seconds=0)


def test_runner_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DASK_ADDRESS.name, raising=False)
    monkeypatch.setenv(LOCAL_WORKERS.name, "2")
    monkeypatch.setenv(LOCAL_CLUSTER_MIN_FILES.name, "5")
    assert per_file_runner(4) is None  # a small batch stays in this process
    local = per_file_runner(5)
    assert local is not None and local.address is None
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["processes"]
    monkeypatch.setenv(LOCAL_WORKERS.name, "1")
    assert per_file_runner(100) is None
    monkeypatch.setenv(DASK_ADDRESS.name, "tcp://10.0.0.5:8786")
    remote = per_file_runner(1)
    assert remote is not None and remote.address == "tcp://10.0.0.5:8786"
    monkeypatch.delenv(DASK_ADDRESS.name)
    monkeypatch.setenv(LOCAL_WORKERS.name, "none")
    with pytest.raises(ValueError, match=LOCAL_WORKERS.name):
        per_file_runner(100)


def test_the_nightly_schedule_can_be_overridden(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "lab")
    home.prefect_home.mkdir(parents=True)
    assert deployment_file(home, ServiceSettings()) == PREFECT_YAML
    rendered = deployment_file(home, ServiceSettings(timezone="Europe/Paris", cron="30 1 * * *"))
    deployments = {d["name"]: d for d in yaml.safe_load(rendered.read_text())["deployments"]}
    assert deployments["nightly"]["schedules"] == [
        {"cron": "30 1 * * *", "timezone": "Europe/Paris", "active": True}
    ]
    assert deployments["ingest-file"]["schedules"] == []
    assert yaml.safe_load(rendered.read_text())["pull"] == []


def test_a_file_being_written_waits_for_its_close_and_a_moved_in_one_does_not(
    tmp_path: Path,
) -> None:
    home = LabHome(tmp_path / "lab").ensure()
    taken: list[str] = []
    watcher = Watcher(
        home, WatchSettings(steady_seconds=0.0), lambda path, key: taken.append(path.name),
        lambda path, err: pytest.fail(str(err)),
    )  # fmt: skip
    written, moved_in, empty = (home.inbox / n for n in ("written.txt", "moved.txt", "new.txt"))
    for path in (written, moved_in):
        path.write_text("content")
    empty.touch()
    for kind, path in [(CREATED, written), (MODIFIED, written), (CREATED, moved_in),
                       (CREATED, empty)]:  # fmt: skip
        watcher._on_event(kind, path)
    for _ in range(3):  # first look starts the steady clock, the next hands the file out
        watcher._submit_ready()
    assert taken == ["moved.txt"]
    watcher.sweep()  # a rescan must not take a file that is still being written
    watcher._on_event(CLOSED, written)
    for _ in range(3):
        watcher._submit_ready()
    assert taken == ["moved.txt", "written.txt"]


def test_flow_runs_started_by_the_service_keep_their_heap_between_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in MALLOC_ENVIRON:
        monkeypatch.delenv(name, raising=False)
    env = service_environment(LabHome(tmp_path / "lab"), ServiceSettings())
    assert {name: env[name] for name in MALLOC_ENVIRON} == {
        "MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
    }  # fmt: skip
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")  # the lab's own choice wins
    assert (
        service_environment(LabHome(tmp_path / "lab"), ServiceSettings())["MALLOC_TRIM_THRESHOLD_"]
        == "0"
    )


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_this_process_takes_the_malloc_settings_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MALLOC_ENVIRON:
        monkeypatch.delenv(name, raising=False)
    assert tune_malloc() is True

"""Drop to rows: how long after a qPCR export lands in the inbox its rows can be queried.

Starts `cartflow serve` on a free loopback port in a temporary lab home, drops `--drops` small
QuantStudio exports one after the other (each a new patient), and times each from the moment the
file is complete in the inbox to the moment its `car_copies` rows are visible through DuckDB
(`pipelines.warehouse.connect`, what `cartflow query` uses). Prints every drop, the median and
the worst, then stops the service.

    .venv/bin/python benchmarks/latency_bench.py --drops 20 --submit inline
    .venv/bin/python benchmarks/latency_bench.py --drops 20 --submit deployment --worker-query-seconds 1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import GOOD_CURVES, build_plate
from pipelines.demo.trial import Sample
from pipelines.home import LabHome
from pipelines.warehouse import connect

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 600.0
DROP_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_export(path: Path, patient: str) -> None:
    sample = Sample("x", "P001", "D14", datetime(2026, 1, 1).date(), 200.0)
    plate = build_plate(
        instrument_format="quantstudio-text", run_id=f"LAT-{patient}",
        instrument="QuantStudio 7 Flex", run_started=datetime(2026, 5, 1, 9),
        samples=[(f"{patient}_D14", sample)], curves=GOOD_CURVES,
        rng=np.random.default_rng(0), wells_per_plate=96,
    )  # fmt: skip
    write_quantstudio_text(path, plate)


def start_service(home: LabHome, args: argparse.Namespace) -> tuple[subprocess.Popen, list[str]]:
    """`cartflow serve` in its own process group; returns it once the watcher and deployments are up."""
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--home", str(home.root),
               "--port", str(free_port()), "--submit", args.submit,
               "--steady-seconds", str(args.steady_seconds),
               "--worker-query-seconds", str(args.worker_query_seconds)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CARTFLOW_"))}
    service = subprocess.Popen(
        command, cwd=REPO_ROOT, env={**env, "COLUMNS": "200"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert service.stdout is not None
        for line in service.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not (any(re.match("watching ", x) for x in lines)
               and any(re.match("deployments registered", x) for x in lines)):  # fmt: skip
        if service.poll() is not None or time.monotonic() > deadline:
            stop_service(service)
            raise SystemExit("cartflow serve did not start:\n" + "\n".join(lines))
        time.sleep(0.5)
    return service, lines


def stop_service(service: subprocess.Popen) -> None:
    """SIGINT, as Ctrl-C would; the service stops its own children."""
    if service.poll() is None:
        os.killpg(service.pid, signal.SIGINT)
        try:
            service.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait(timeout=10)


def rows_visible(home: LabHome, patient: str) -> bool:
    if not (home.warehouse / "car_copies").is_dir():
        return False
    found = (
        connect(home.warehouse)
        .execute("select count(*) from car_copies where patient_id = ?", [patient])
        .fetchone()
    )
    return bool(found and found[0])


def time_one_drop(home: LabHome, staging: Path, patient: str) -> float:
    """Seconds from the export appearing, complete, in the inbox to its rows being queryable."""
    staged = staging / f"{patient}_plate.txt"
    write_export(staged, patient)
    dropped = time.monotonic()
    shutil.move(staged, home.inbox / staged.name)  # a rename: the file appears complete
    while not rows_visible(home, patient):
        if time.monotonic() - dropped > DROP_TIMEOUT:
            raise SystemExit(f"{patient}: no rows after {DROP_TIMEOUT:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--submit", choices=("inline", "deployment"), default="inline")
    parser.add_argument("--steady-seconds", type=float, default=1.0)
    parser.add_argument("--worker-query-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cartflow-latency-") as scratch:
        home = LabHome(Path(scratch) / "lab").ensure()
        (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
        staging = Path(scratch) / "staging"
        staging.mkdir()
        started = time.monotonic()
        service, _ = start_service(home, args)
        print(f"service up in {time.monotonic() - started:.0f} s ({args.submit} submission)")
        try:
            times = []
            for n in range(args.drops):
                seconds = time_one_drop(home, staging, f"P{900 + n}")
                times.append(seconds)
                print(f"drop {n + 1:2d}: {seconds:5.2f} s", flush=True)
        finally:
            stop_service(service)
    print(
        f"{args.drops} drops, {args.submit}: median {statistics.median(times):.2f} s, "
        f"worst {max(times):.2f} s (steady wait {args.steady_seconds:g} s included)"
    )


if __name__ == "__main__":
    main()

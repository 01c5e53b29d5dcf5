"""Time to ingest a 384-well qPCR plate end to end, split into its phases.

    .venv/bin/python benchmarks/qpcr_bench.py [--plates 3]

Prints, for QuantStudio text plates of 384 wells x 2 targets (CAR + RNase P) written by the demo
generator: Prefect's start-up (once), then per plate the parse (reader), fit (curves, QC, copies),
validate (Great Expectations, three tables), write (Parquet) and Prefect overhead (the flow run's
wall time minus the pipeline's own work), with a raw read of the file's bytes as the floor.
The goal is under 5 s per plate once Prefect is up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from pipelines.cli import prepare_environment
from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import GOOD_CURVES, build_plate
from pipelines.demo.trial import TIMEPOINTS, Sample
from pipelines.home import LabHome


def _plate_samples(plate_number: int) -> list[tuple[str, Sample]]:
    """108 samples in triplicate fill a 384-well plate with 18 standards and 3 NTCs (363 wells)."""
    samples = []
    for i in range(108):
        patient, timepoint = (
            f"P{plate_number}{i // len(TIMEPOINTS):02d}",
            TIMEPOINTS[i % len(TIMEPOINTS)],
        )
        sample = Sample(
            f"{patient}_{timepoint}", "P001", timepoint, datetime(2026, 1, 1).date(), 200.0
        )
        samples.append((f"{patient}_{timepoint}", sample))
    return samples


def _write_plates(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for n in range(count):
        plate = build_plate(
            instrument_format="quantstudio-text", run_id=f"bench-{n}", instrument="QuantStudio 7 Flex",
            run_started=datetime(2026, 5, 1, 9, n), samples=_plate_samples(n), curves=GOOD_CURVES,
            rng=rng,
        )  # fmt: skip
        path = folder / f"bench_plate_{n}.txt"
        write_quantstudio_text(path, plate)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = LabHome(Path(tmp) / "lab").ensure()
        (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
        prepare_environment(home)
        paths = _write_plates(Path(tmp), args.plates)

        from pipelines import flows
        from pipelines.runtime.run_records import outcomes_of
        from qpcr.analysis import analyse_plate
        from qpcr.readers import read_plate
        from qpcr.settings import QpcrSettings

        started = time.perf_counter()
        flows.process_inbox(home=str(home.root), paths=[])  # starts the embedded server
        prefect_start = time.perf_counter() - started
        print(f"Prefect embedded server start + first (empty) flow run: {prefect_start:.2f} s")

        rows = []
        for path in paths:
            t0 = time.perf_counter()
            path.read_bytes()
            raw = time.perf_counter() - t0
            t0 = time.perf_counter()
            plate = read_plate(path)
            parse = time.perf_counter() - t0
            t0 = time.perf_counter()
            analyse_plate(plate, QpcrSettings(default_dna_input_ng=200))
            fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            (outcome,) = outcomes_of(
                flows.process_inbox(home=str(home.root), paths=[str(path)], return_state=True)
            )
            total = time.perf_counter() - t0
            assert outcome.status == "ingested", outcome.reason
            s = outcome.seconds
            overhead = total - sum(s.values())
            rows.append(
                (
                    path.name,
                    len(plate.wells),
                    raw,
                    parse,
                    fit,
                    s["validate"],
                    s["write"],
                    overhead,
                    total,
                )
            )

        print(f"\n{'plate':22} {'wells':>5} {'raw read':>9} {'parse':>7} {'fit':>7} "
              f"{'validate':>9} {'write':>7} {'prefect':>8} {'total':>7}")  # fmt: skip
        for name, wells, raw, parse, fit, validate, write, overhead, total in rows:
            print(f"{name:22} {wells:5d} {raw:9.4f} {parse:7.3f} {fit:7.3f} {validate:9.3f} "
                  f"{write:7.3f} {overhead:8.3f} {total:7.3f}")  # fmt: skip
        totals = [r[-1] for r in rows]
        parses = [r[3] for r in rows]
        raws = [r[2] for r in rows]
        print(f"\nmedian end to end per plate once Prefect is up: {statistics.median(totals):.2f} s "
              f"(goal < 5 s); parse / raw read = {statistics.median(parses) / statistics.median(raws):.0f}x")  # fmt: skip
        print(
            "(the first plate also pays for importing Great Expectations and building its context)"
        )


if __name__ == "__main__":
    main()

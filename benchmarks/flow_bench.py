"""Flow benchmark: one generated 1M-event x 16-channel FCS file gated with the shipped T-cell
template (19 gates: polygons, rectangles, quadrants, Booleans; $SPILLOVER compensation; logicle).

Three approaches, each timed and measured in its own subprocess (peak memory = ru_maxrss of that
process, which includes its imports; the post-import baseline is printed beside it):

- cartflow: `gating.analyse_fcs` end to end (read, panel, compensate, gate, counts, MFI);
- flowkit:  `flowkit.Sample` + `GatingStrategy.gate_sample` on the same file and template (the
            sample's $PnS set to the canonical marker names so the marker-named template matches);
- numpy:    `numpy.fromfile` of the DATA segment (the physical floor).

Usage: .venv/bin/python benchmarks/flow_bench.py [--events N] [--fcs FILE]
Prints seconds per file and peak MiB, and ratios measured in the same run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPROACHES = ("numpy", "flowkit", "cartflow")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_numpy(path: Path) -> None:
    import numpy as np

    from gating.fcs import fcs_keywords

    keywords = fcs_keywords(path)
    order = ">" if keywords["$BYTEORD"] == "4,3,2,1" else "<"
    count = int(keywords["$PAR"])
    start = int(keywords["$BEGINDATA"])
    end = int(keywords["$ENDDATA"])
    with open(path, "rb") as fh:
        fh.seek(start)
        data = np.fromfile(fh, dtype=f"{order}f4", count=(end - start + 1) // 4)
    data.reshape(-1, count).astype(np.float64)


def run_flowkit(path: Path) -> None:
    import flowkit as fk

    from gating.fcs import channels_of, fcs_keywords
    from gating.markers import alias_lookup, markers_of
    from gating.settings import DEFAULT_TEMPLATES, FlowSettings

    lookup = alias_lookup(FlowSettings().marker_aliases)
    sample = fk.Sample(str(path))
    sample.pns_labels = markers_of(channels_of(fcs_keywords(path)), lookup)
    strategy = fk.parse_gating_xml(str(DEFAULT_TEMPLATES["tcell"]))
    strategy.gate_sample(sample)


def run_cartflow(path: Path) -> None:
    from gating import analyse_fcs

    analyse_fcs(path)


def measure(approach: str, path: Path) -> None:
    """Child process: import, then time one run; print JSON."""
    runner = {"numpy": run_numpy, "flowkit": run_flowkit, "cartflow": run_cartflow}[approach]
    import flowkit  # noqa: F401  (import cost is not part of the time per file)
    import numpy  # noqa: F401

    import gating  # noqa: F401

    baseline = _peak_mib()
    start = time.perf_counter()
    runner(path)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mib": _peak_mib(), "baseline_mib": baseline}))


def _child(approach: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", approach, "--fcs", str(path)],
        check=True, capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--fcs", type=Path, help="an existing T-cell tube instead of generating")
    parser.add_argument("--measure", choices=APPROACHES, help=argparse.SUPPRESS)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.measure:
        measure(args.measure, args.fcs)
        return
    if args.write:
        from pipelines.demo.flow_files import write_benchmark_file

        write_benchmark_file(args.write, events=args.events)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = args.fcs
        if path is None:
            # written by a child: a child forked from a large parent starts with its peak RSS
            path = Path(folder) / "bench_1M.fcs"
            subprocess.run([sys.executable, __file__, "--write", str(path), "--events",
                            str(args.events)], check=True, cwd=REPO)  # fmt: skip
        print(f"file: {path.name}, {path.stat().st_size / 2**20:.0f} MiB")
        results = {a: _child(a, path) for a in APPROACHES}
    for approach, r in results.items():
        print(f"{approach:9s} {r['seconds']:7.3f} s/file   peak {r['peak_mib']:7.0f} MiB "
              f"(after imports {r['baseline_mib']:.0f} MiB)")  # fmt: skip
    ours, flowkit, floor = (results[a] for a in ("cartflow", "flowkit", "numpy"))
    print(
        f"cartflow / flowkit time {ours['seconds'] / flowkit['seconds']:.2f}x, "
        f"peak memory {ours['peak_mib'] / flowkit['peak_mib']:.2f}x"
    )
    print(f"cartflow / numpy read time {ours['seconds'] / floor['seconds']:.1f}x")


if __name__ == "__main__":
    main()

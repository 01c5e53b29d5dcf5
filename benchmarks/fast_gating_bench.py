"""Benchmark: gating.engine vs FlowKit's gate_sample vs a raw numpy read, 1M and 5M events.

Generates events × 16 channels (4 scatter, 11 fluorescence with spillover, Time) and a 12-gate
Gating-ML strategy (2 polygons on scatter, compensated logicle ranges, a logicle polygon, two
quadrant gates, a 2-D rectangle, an ellipse, a time range, two Booleans), writes both to a
temporary folder, then measures each approach in its own subprocess so peak RSS
(`resource.getrusage`) belongs to that approach alone:

- raw:     np.fromfile of the float32 event block (the physical floor);
- fast:    read + `gating.engine.compile_strategy(...).apply(events)`;
- flowkit: read + `flowkit.Sample` + `GatingStrategy.gate_sample(sample)`.

Runs are interleaved and repeated (best of 3 at 1M, of 2 above); every run's gate counts must
equal FlowKit's. Run: `.venv/bin/python benchmarks/fast_gating_bench.py [millions ...]` (default
`1 5`); a 5M FlowKit run needs about 4 GiB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCATTER = ["FSC-A", "FSC-H", "SSC-A", "SSC-H"]
FLUORESCENCE = [f"FL{i}-A" for i in range(1, 12)]
CHANNELS = [*SCATTER, *FLUORESCENCE, "Time"]
LOGICLE = 'transforms:T="262144" transforms:W="0.5" transforms:M="4.5" transforms:A="0"'
REPO = Path(__file__).resolve().parents[1]


def spillover(size: int, seed: int = 7) -> np.ndarray:
    """A plausible spillover matrix: ones on the diagonal, 0-15 % into the next detectors."""
    rng = np.random.default_rng(seed)
    spill = np.eye(size)
    for offset, scale in ((1, 0.15), (2, 0.05), (3, 0.02)):
        idx = np.arange(size - offset)
        spill[idx, idx + offset] = rng.uniform(0, scale, idx.size)
    return spill


def generate_events(n: int, seed: int = 1) -> np.ndarray:
    """Scatter clusters (cells, debris, doublets) and marker populations, then spillover."""
    rng = np.random.default_rng(seed)
    events = np.empty((n, len(CHANNELS)), dtype=np.float32)
    kind = rng.choice(3, size=n, p=[0.75, 0.15, 0.10])  # cells, debris, doublets
    fsc = np.where(kind == 1, rng.normal(20000, 8000, n), rng.normal(90000, 15000, n))
    ratio = np.where(kind == 2, rng.normal(0.55, 0.05, n), rng.normal(0.85, 0.04, n))
    events[:, 0] = fsc
    events[:, 1] = fsc * ratio
    ssc = np.where(kind == 1, rng.normal(15000, 6000, n), rng.normal(40000, 12000, n))
    events[:, 2] = ssc
    events[:, 3] = ssc * rng.normal(0.9, 0.03, n)
    positive = rng.random((n, len(FLUORESCENCE))) < np.linspace(0.2, 0.7, len(FLUORESCENCE))
    bright = np.exp(rng.normal(np.log(8000), 0.8, positive.shape))
    dim = rng.normal(0, 300, positive.shape)
    true = np.where(positive, bright, dim)
    events[:, 4:15] = true @ spillover(len(FLUORESCENCE))
    events[:, 15] = np.sort(rng.uniform(0, 600, n))
    return events


def _dimension(name: str, transform: str | None = None, compensated: bool = False, **limits) -> str:
    comp = "Spill" if compensated else "uncompensated"
    xform = f' gating:transformation-ref="{transform}"' if transform else ""
    bounds = "".join(f' gating:{key}="{value}"' for key, value in limits.items())
    return (
        f'<gating:dimension gating:compensation-ref="{comp}"{xform}{bounds}>'
        f'<data-type:fcs-dimension data-type:name="{name}"/></gating:dimension>'
    )


def _polygon(gate_id: str, parent: str | None, dims: list[str], vertices: list[tuple]) -> str:
    parent_attr = f' gating:parent_id="{parent}"' if parent else ""
    points = "".join(
        f'<gating:vertex><gating:coordinate data-type:value="{x}"/>'
        f'<gating:coordinate data-type:value="{y}"/></gating:vertex>'
        for x, y in vertices
    )
    return f'<gating:PolygonGate gating:id="{gate_id}"{parent_attr}>{"".join(dims)}{points}</gating:PolygonGate>'


def _rectangle(gate_id: str, parent: str | None, dims: list[str]) -> str:
    parent_attr = f' gating:parent_id="{parent}"' if parent else ""
    return f'<gating:RectangleGate gating:id="{gate_id}"{parent_attr}>{"".join(dims)}</gating:RectangleGate>'


def _quadrant(gate_id: str, parent: str, x: str, y: str, cut: float, names: list[str]) -> str:
    dividers = "".join(
        f'<gating:divider gating:id="{gate_id}_{axis}" gating:compensation-ref="Spill" '
        f'gating:transformation-ref="Logicle"><data-type:fcs-dimension data-type:name="{channel}"/>'
        f"<gating:value>{cut}</gating:value></gating:divider>"
        for axis, channel in (("x", x), ("y", y))
    )
    locations = [(0.9, 0.9), (0.1, 0.9), (0.1, 0.1), (0.9, 0.1)]
    quadrants = "".join(
        f'<gating:Quadrant gating:id="{name}">'
        f'<gating:position gating:divider_ref="{gate_id}_x" gating:location="{lx}"/>'
        f'<gating:position gating:divider_ref="{gate_id}_y" gating:location="{ly}"/></gating:Quadrant>'
        for name, (lx, ly) in zip(names, locations, strict=True)
    )
    return (
        f'<gating:QuadrantGate gating:id="{gate_id}" gating:parent_id="{parent}">'
        f"{dividers}{quadrants}</gating:QuadrantGate>"
    )


def _boolean(gate_id: str, parent: str, operation: str, refs: list[tuple[str, bool]]) -> str:
    operands = "".join(
        f'<gating:gateReference gating:ref="{ref}" gating:use-as-complement="{str(neg).lower()}"/>'
        for ref, neg in refs
    )
    return (
        f'<gating:BooleanGate gating:id="{gate_id}" gating:parent_id="{parent}">'
        f"<gating:{operation}>{operands}</gating:{operation}></gating:BooleanGate>"
    )


def _spill_matrix() -> str:
    names = "".join(f'<data-type:fcs-dimension data-type:name="{c}"/>' for c in FLUORESCENCE)
    rows = "".join(
        "<transforms:spectrum>"
        + "".join(f'<transforms:coefficient transforms:value="{v!r}"/>' for v in row)
        + "</transforms:spectrum>"
        for row in spillover(len(FLUORESCENCE)).tolist()
    )
    return (
        f'<transforms:spectrumMatrix transforms:id="Spill"><transforms:fluorochromes>{names}'
        f"</transforms:fluorochromes><transforms:detectors>{names}</transforms:detectors>"
        f"{rows}</transforms:spectrumMatrix>"
    )


def strategy_xml() -> str:
    """Twelve gates; the ellipse, polygons, quadrants and Booleans sit at several depths."""
    lg = "Logicle"
    gates = [
        _polygon(
            "Cells",
            None,
            [_dimension("FSC-A"), _dimension("SSC-A")],
            [(45000, 5000), (140000, 8000), (150000, 90000), (60000, 85000), (40000, 30000)],
        ),
        _polygon(
            "Singlets",
            "Cells",
            [_dimension("FSC-A"), _dimension("FSC-H")],
            [(30000, 21000), (160000, 110000), (160000, 150000), (30000, 30000)],
        ),
        _rectangle("Live", "Singlets", [_dimension("FL1-A", lg, True, max=0.55)]),
        _rectangle("CD3", "Live", [_dimension("FL2-A", lg, True, min=0.45)]),
        _quadrant(
            "CD4CD8",
            "CD3",
            "FL3-A",
            "FL4-A",
            0.45,
            ["CD4pCD8p", "CD4nCD8p", "CD4nCD8n", "CD4pCD8n"],
        ),
        _polygon(
            "CAR",
            "CD3",
            [_dimension("FL5-A", lg, True), _dimension("FL6-A", lg, True)],
            [(0.5, 0.1), (0.95, 0.1), (0.95, 0.9), (0.6, 0.95), (0.45, 0.5)],
        ),
        _quadrant("Memory", "CAR", "FL7-A", "FL8-A", 0.5, ["TEMRA", "Naive", "TEM", "TCM"]),
        _rectangle(
            "Exhausted",
            "CAR",
            [
                _dimension("FL9-A", lg, True, min=0.5, max=1.0),
                _dimension("FL10-A", lg, True, min=0.45),
            ],
        ),
        (
            '<gating:EllipsoidGate gating:id="Activated" gating:parent_id="CD3">'
            + _dimension("FL11-A", lg, True)
            + _dimension("FL9-A", lg, True)
            + '<gating:mean><gating:coordinate data-type:value="0.7"/>'
            '<gating:coordinate data-type:value="0.65"/></gating:mean><gating:covarianceMatrix>'
            '<gating:row><gating:entry data-type:value="0.01"/><gating:entry data-type:value="0.004"/>'
            '</gating:row><gating:row><gating:entry data-type:value="0.004"/>'
            '<gating:entry data-type:value="0.008"/></gating:row></gating:covarianceMatrix>'
            '<gating:distanceSquare data-type:value="4"/></gating:EllipsoidGate>'
        ),
        _rectangle("Stable", None, [_dimension("Time", min=10, max=590)]),
        _boolean("CAR_CD4", "CD3", "and", [("CAR", False), ("CD4pCD8n", False)]),
        _boolean("CAR_not_exhausted", "CAR", "and", [("Exhausted", True), ("Stable", False)]),
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
        'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
        'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
        'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
        f'<transforms:transformation transforms:id="Logicle"><transforms:logicle {LOGICLE}/>'
        f"</transforms:transformation>\n{_spill_matrix()}\n"
        + "\n".join(gates)
        + "\n</gating:Gating-ML>\n"
    )


# ----------------------------------------------------------------------------- subprocess side


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read(folder: Path) -> np.ndarray:
    return np.fromfile(folder / "events.f32", dtype=np.float32).reshape(-1, len(CHANNELS))


def run_approach(approach: str, folder: Path) -> dict:
    """Body of one measuring subprocess; returns times, peak RSS and gate counts."""
    if approach == "raw":
        start = time.perf_counter()
        events = _read(folder)
        return {"read_s": time.perf_counter() - start, "peak_mib": _peak_mib(), "n": len(events)}
    import flowkit
    import numba  # noqa: F401  (the engine imports it on first use; a worker at start: untimed)

    sys.path.insert(0, str(REPO))
    from gating.engine import ChannelLabels, compile_strategy

    strategy = flowkit.parse_gating_xml(str(folder / "strategy.xml"))
    baseline = _peak_mib()
    start = time.perf_counter()
    events = _read(folder)
    read_s = time.perf_counter() - start
    if approach == "fast":
        start = time.perf_counter()
        # compiling is part of the work, as FlowKit's gate_sample plans every time too
        result = compile_strategy(strategy, ChannelLabels.of(CHANNELS)).apply(events)
        gate_s = time.perf_counter() - start
        counts = {f"{'/'.join(p)}/{n}": int(r.count) for (n, p), r in result.gates.items()}
        recomputed = sum(r.recomputed for r in result.gates.values())
        extra = {"recomputed": recomputed}
    else:
        start = time.perf_counter()
        sample = flowkit.Sample(events, sample_id="bench", channel_labels=CHANNELS)
        sample_s = time.perf_counter() - start
        del events
        start = time.perf_counter()
        report = strategy.gate_sample(sample).report
        gate_s = time.perf_counter() - start
        counts = {
            f"{'/'.join(p)}/{n}": int(c)
            for p, n, c in zip(report.gate_path, report.gate_name, report["count"], strict=True)
        }
        extra = {"sample_s": sample_s}
    return {
        "read_s": read_s,
        "gate_s": gate_s,
        "baseline_mib": baseline,
        "peak_mib": _peak_mib(),
        "counts": counts,
        **extra,
    }


# ----------------------------------------------------------------------------- driver


def measure(approach: str, folder: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--approach", approach, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def best_of(runs: list[dict]) -> dict:
    """Fastest time and lowest peak per field: the machine is shared, slower runs are noise."""
    best = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            best[key] = min(run[key] for run in runs)
    return best


def benchmark(millions: float, repeats: int) -> None:
    n = int(millions * 1_000_000)
    approaches = ("raw", "fast", "flowkit")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Generated in a subprocess: a child inherits its parent's peak RSS across exec.
        subprocess.run([sys.executable, __file__, "--generate", str(n), str(folder)], check=True)
        runs = {a: [] for a in approaches}
        for _ in range(repeats):  # interleaved, so load from other users hits all alike
            for approach in approaches:
                runs[approach].append(measure(approach, folder))
    raw, fast, fk = (best_of(runs[a]) for a in approaches)
    same = all(run["counts"] == fk["counts"] for run in runs["fast"])
    fast_total = fast["read_s"] + fast["gate_s"]
    fk_total = fk["read_s"] + fk["sample_s"] + fk["gate_s"]
    print(
        f"\n{n:,} events × {len(CHANNELS)} channels, {len(fk['counts'])} populations, best of {repeats}"
    )
    print(f"  counts identical: {same}; events recomputed exactly: {fast['recomputed']}")
    print(f"  {'':30}{'time (s)':>10}{'peak RSS (MiB)':>16}{'after imports':>15}")
    print(f"  {'raw numpy read':30}{raw['read_s']:>10.3f}{raw['peak_mib']:>16.0f}")
    print(
        f"  {'fast: read + compile + apply':30}{fast_total:>10.3f}{fast['peak_mib']:>16.0f}{fast['baseline_mib']:>15.0f}"
    )
    print(f"  {'  gating only':30}{fast['gate_s']:>10.3f}")
    print(
        f"  {'flowkit: read + Sample + gate':30}{fk_total:>10.3f}{fk['peak_mib']:>16.0f}{fk['baseline_mib']:>15.0f}"
    )
    print(f"  {'  gate_sample only':30}{fk['gate_s']:>10.3f}")
    print(
        f"  FlowKit / fast: gating {fk['gate_s'] / fast['gate_s']:.1f}×, end to end "
        f"{fk_total / fast_total:.1f}×; peak RSS fast / FlowKit {fast['peak_mib'] / fk['peak_mib']:.2f}"
        f" (above imports {(fast['peak_mib'] - fast['baseline_mib']) / (fk['peak_mib'] - fk['baseline_mib']):.2f});"
        f" fast gating / raw read {fast['gate_s'] / raw['read_s']:.0f}×"
    )
    if not same:
        raise SystemExit("gate counts differ between gating.engine and FlowKit")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--approach":
        print(json.dumps(run_approach(sys.argv[2], Path(sys.argv[3]))))
    elif len(sys.argv) == 4 and sys.argv[1] == "--generate":
        generate_events(int(sys.argv[2])).tofile(Path(sys.argv[3]) / "events.f32")
        (Path(sys.argv[3]) / "strategy.xml").write_text(strategy_xml())
    else:
        sizes = [float(a) for a in sys.argv[1:]] or [1.0, 5.0]
        for size in sizes:
            benchmark(size, repeats=3 if size <= 1 else 2)

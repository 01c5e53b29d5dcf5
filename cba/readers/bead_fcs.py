"""Raw bead-array FCS files (LEGENDplex, BD CBA acquisitions): bead populations and PE medians.

One FCS file is one well. Bead populations are found in two steps, both plain numpy/scipy:

1. Bead groups by forward/side scatter: a Gaussian mixture on log10(FSC-A), log10(SSC-A) fitted by
   our own EM, with one extra uniform component that absorbs debris and doublets; it starts from
   the highest peaks of a smoothed 2-D histogram, so it needs no random restarts. An event belongs
   to a group when that group's Gaussian claims it and it lies inside the 99 % ellipse.
2. Analyte beads within a group by classifier (APC) intensity: the density of log10(APC) is
   smoothed, its peaks found, and events split at the density valleys between neighbouring peaks.
   Without a panel, peaks holding fewer than a quarter of the median population's events are noise
   (spill-over from the other group); with a panel, the panel's number of beads is taken.

The reporter (PE) median of each population is its MFI. Groups are named A, B ... by increasing
FSC; beads by the panel's IDs or `<group><rank>` in APC order.

The plate layout comes from file names following the LEGENDplex convention (beadplexr's
vignette): `K<kit>[-P<plate>]-C<level>-<well>` for standards, `K<kit>[-P<plate>]-S<n>-<well>` for
samples (`K2-C07-A7.fcs`: kit 2, standard C7, well A7), from the FCS `$FIL` keyword when the file was
renamed, and a `layout.csv` (well, sample_name[, dilution]) beside the files may name the samples.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage, signal
from scipy.stats import chi2

from cba.analytes import VOCABULARY, Vocabulary
from cba.errors import CbaFormatError
from cba.model import CbaPlate, wells_frame
from cba.panels import BeadPanel
from cba.readers.common import HEAD_BYTES, Head

BEAD_FCS = "bead-fcs"
BEAD_FCS_PLATE = "bead-fcs-plate"
FORMATS = (BEAD_FCS, BEAD_FCS_PLATE)

_NAME = re.compile(
    r"(?:^|[-_])K(?P<kit>\d+)[-_](?:P(?P<plate>\d+)[-_])?(?P<kind>[CS])(?P<number>\d+)[-_]"
    r"(?P<well>[A-P]\d{1,2})(?=$|[-_.])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BeadFileName:
    kit: str
    plate: str
    kind: str  # "standard" or "sample"
    number: int
    well: str

    @property
    def label(self) -> str:
        return f"C{self.number}" if self.kind == "standard" else f"S{self.number:02d}"


def parse_bead_file_name(name: str) -> BeadFileName | None:
    match = _NAME.search(Path(name).stem)
    if not match:
        return None
    return BeadFileName(
        kit=f"K{match['kit']}",
        plate=f"P{match['plate']}" if match["plate"] else "",
        kind="standard" if match["kind"].upper() == "C" else "sample",
        number=int(match["number"]),
        well=f"{match['well'][0].upper()}{int(match['well'][1:])}",
    )


def fcs_text_keywords(head: bytes) -> dict[str, str] | None:
    """The TEXT segment's keywords from a file's first bytes, or None when it is not FCS."""
    if not re.match(rb"FCS[23]\.\d", head[:6]):
        return None
    try:
        start, end = int(head[10:18]), int(head[18:26])
    except ValueError:
        return None
    text = head[start : end + 1].decode("latin-1", errors="replace")
    if not text:
        return None
    parts = text[1:].split(text[0])
    return {parts[i].upper(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}


def bead_file_identity(path: Path, keywords: dict[str, str]) -> BeadFileName | None:
    """The layout from the file name, else from `$FIL` (CytExpert writes `01-K2_C7-A7.fcs`)."""
    return parse_bead_file_name(path.name) or parse_bead_file_name(keywords.get("$FIL", ""))


def sniff(head: Head) -> str | None:
    """One bead-named FCS file, or a folder or zip holding only such files."""
    if head.is_folder:
        files = [p for p in head.path.iterdir() if p.suffix.lower() == ".fcs"]
        named = [_is_bead_fcs(p, p.open("rb").read(HEAD_BYTES)) for p in files]
        return BEAD_FCS_PLATE if named and all(named) else None
    if head.data.startswith(b"FCS"):
        return BEAD_FCS if _is_bead_fcs(head.path, head.data) else None
    if head.data.startswith(b"PK\x03\x04") and zipfile.is_zipfile(head.path):
        return BEAD_FCS_PLATE if _zip_holds_bead_fcs(head.path) else None
    return None


def read(
    path: Path, fmt: str, vocabulary: Vocabulary = VOCABULARY, panel: BeadPanel | None = None
) -> CbaPlate:
    """A plate from a folder or zip of the plate's FCS files (the panel from `panel.json` in it
    unless given), or from one file where the caller gives the panel.

    Without a panel one file is refused with what to drop instead: a single file is one well,
    and a standard curve needs the plate's standards.
    """
    if fmt == BEAD_FCS_PLATE:
        return read_bead_folder(path, panel)
    if panel is None:
        raise CbaFormatError(single_well_refusal(path))
    return read_bead_plate([path], panel)


def single_well_refusal(path: Path) -> str:
    """Why one raw bead-array FCS file is not a plate, and what a technician drops instead."""
    with path.open("rb") as handle:
        keywords = fcs_text_keywords(handle.read(HEAD_BYTES)) or {}
    identity = bead_file_identity(path, keywords)
    well = f" ({identity.kind} {identity.label}, well {identity.well})" if identity else ""
    return (
        f"{path.name}: one raw bead-array FCS file is one well of a plate{well}, and the plate's "
        "standard curves need all its wells. Zip the plate's FCS files (standards C0 to C7 and "
        "the samples, named as the acquisition software names them, e.g. K2-C07-A7.fcs) together "
        "with the kit's panel.json and drop the zip into the inbox, or export the plate's MFI "
        "table from the bead-array software (LEGENDplex, FCAP Array) and drop that instead"
    )


def _is_bead_fcs(path: Path, head: bytes) -> bool:
    keywords = fcs_text_keywords(head)
    return keywords is not None and bead_file_identity(path, keywords) is not None


def _zip_holds_bead_fcs(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".fcs")]
        return bool(names) and all(
            _is_bead_fcs(Path(n), archive.open(n).read(HEAD_BYTES)) for n in names
        )


@dataclass
class BeadWell:
    """One well's bead populations: `populations` has bead_group, bead_id, analyte, n_events,
    apc_median, pe_median (one row per population)."""

    source: str
    identity: BeadFileName | None
    populations: pd.DataFrame
    keywords: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def _channel(labels: list[tuple[str, str]], pattern: str, prefer: str) -> int:
    matches = [i for i, (pnn, pns) in enumerate(labels) if re.fullmatch(pattern, pns or pnn, re.I)]
    matches += [i for i, (pnn, _) in enumerate(labels) if re.fullmatch(pattern, pnn, re.I)]
    if not matches:
        raise LookupError(pattern)
    preferred = [i for i in matches if (labels[i][1] or labels[i][0]).upper().endswith(prefer)]
    return (preferred or matches)[0]


def _bead_channels(labels: list[tuple[str, str]]) -> dict[str, int]:
    return {
        "fsc": _channel(labels, r"FSC(-[AH])?", "-A"),
        "ssc": _channel(labels, r"SSC(-[AH])?", "-A"),
        "apc": _channel(labels, r"APC(-[AH])?|FL6-[AH]", "-H"),
        "pe": _channel(labels, r"PE(-[AH])?|FL2-[AH]", "-H"),
    }


def _read_events(path: Path) -> tuple[np.ndarray, list[tuple[str, str]], dict[str, str]]:
    import flowio  # imported here: only raw-FCS plates need it

    try:
        data = flowio.FlowData(str(path))
    except Exception as error:  # FlowIO raises several types for damaged files
        raise CbaFormatError(f"{path}: FlowIO cannot read this FCS file ({error})") from None
    labels = [
        (data.channels[k]["pnn"], data.channels[k].get("pns", ""))
        for k in sorted(data.channels, key=int)
    ]
    keywords = {
        f"${k.upper()}" if not k.startswith("$") else k.upper(): v for k, v in data.text.items()
    }
    return data.as_array(), labels, keywords


def _log10(values: np.ndarray) -> np.ndarray:
    return np.log10(np.clip(values, 1.0, None))


def _histogram_peaks(points: np.ndarray, n_peaks: int) -> np.ndarray:
    """The `n_peaks` highest local maxima of a smoothed 2-D histogram, as coordinates."""
    low, high = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    hist, xe, ye = np.histogram2d(
        points[:, 0], points[:, 1], bins=64, range=list(zip(low, high, strict=True))
    )
    smooth = ndimage.gaussian_filter(hist, 1.5)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=7)) & (smooth > 0)
    ix, iy = np.nonzero(peaks)
    order = np.argsort(smooth[ix, iy])[::-1][:n_peaks]
    centres = lambda edges, i: (edges[i] + edges[i + 1]) / 2  # noqa: E731
    return np.column_stack([centres(xe, ix[order]), centres(ye, iy[order])])


def _gaussian_density(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    diff = points - mean
    inv = np.linalg.inv(cov)
    mahalanobis = np.einsum("ij,jk,ik->i", diff, inv, diff)
    return np.exp(-0.5 * mahalanobis) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))


def find_bead_groups(
    fsc: np.ndarray, ssc: np.ndarray, n_groups: int = 2, iterations: int = 100
) -> np.ndarray:
    """Group index per event (0 = smallest FSC), -1 for debris, doublets and outliers."""
    points = np.column_stack([_log10(fsc), _log10(ssc)])
    means = _histogram_peaks(points, n_groups)
    if len(means) < n_groups:
        raise CbaFormatError(f"found {len(means)} bead group(s) by scatter, expected {n_groups}")
    covs = np.array([np.eye(2) * 0.01 for _ in range(n_groups)])
    weights = np.full(n_groups + 1, 1.0 / (n_groups + 1))
    box = np.prod(np.ptp(points, axis=0))
    for _ in range(iterations):
        dens = np.column_stack(
            [weights[k] * _gaussian_density(points, means[k], covs[k]) for k in range(n_groups)]
            + [np.full(len(points), weights[-1] / box)]
        )
        resp = dens / np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
        weights = resp.mean(axis=0)
        for k in range(n_groups):
            r = resp[:, k]
            means[k] = r @ points / r.sum()
            diff = points - means[k]
            covs[k] = (diff * r[:, None]).T @ diff / r.sum() + np.eye(2) * 1e-6
    owner = resp.argmax(axis=1)
    labels = np.full(len(points), -1)
    limit = chi2.ppf(0.99, 2)
    for k in range(n_groups):
        diff = points - means[k]
        inside = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(covs[k]), diff) < limit
        labels[(owner == k) & inside] = k
    order = np.argsort(means[:, 0])
    return np.where(labels >= 0, np.argsort(order)[np.clip(labels, 0, None)], -1)


def find_bead_populations(
    apc: np.ndarray, apc_floor: float, n_beads: int | None = None
) -> np.ndarray:
    """Population index per event in APC order (0 = dimmest), -1 outside every population.

    Every density peak gets the events between its valleys; a peak whose median APC is within
    3x the instrument's APC floor is unlabelled particles, not a bead, and is dropped, as are (with
    no panel) peaks holding fewer than a quarter of the median population's events or (with a
    panel) all but the `n_beads` most prominent peaks.
    """
    values = _log10(apc)
    low, high = np.percentile(values, 0.1), np.percentile(values, 99.9)
    hist, edges = np.histogram(values, bins=400, range=(low - 0.1, high + 0.1))
    density = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    peaks, props = signal.find_peaks(density, prominence=density.max() * 0.02)
    valleys = [p + int(np.argmin(density[p:q])) for p, q in zip(peaks, peaks[1:], strict=False)]
    segment = np.searchsorted(edges[np.array(valleys, dtype=int)], values)
    counts = np.bincount(segment, minlength=len(peaks))
    medians = np.array(
        [np.median(apc[segment == k]) if counts[k] else 0 for k in range(len(peaks))]
    )
    candidates = np.flatnonzero(medians > 3 * apc_floor)
    if n_beads is None:
        real = candidates[counts[candidates] >= 0.25 * np.median(counts[candidates])]
    else:
        real = np.sort(candidates[np.argsort(props["prominences"][candidates])[::-1][:n_beads]])
    remap = np.full(len(peaks), -1)
    remap[real] = np.arange(len(real))
    return remap[segment]


def read_bead_fcs(path: Path | str, panel: BeadPanel | None = None) -> BeadWell:
    """One well: bead groups by scatter, beads by APC, PE median per bead population."""
    path = Path(path)
    events, labels, keywords = _read_events(path)
    try:
        channels = _bead_channels(labels)
    except LookupError as missing:
        raise CbaFormatError(
            f"{path}: no channel matching {missing} (bead arrays need FSC, SSC, APC and PE)"
        ) from None
    group_names = list(panel.groups) if panel else ["A", "B"]
    apc_floor = float(np.percentile(events[:, channels["apc"]], 1))
    groups = find_bead_groups(
        events[:, channels["fsc"]], events[:, channels["ssc"]], len(group_names)
    )
    rows = []
    for g, group in enumerate(group_names):
        in_group = events[groups == g]
        beads = panel.groups[group] if panel else None
        populations = find_bead_populations(
            in_group[:, channels["apc"]], apc_floor, len(beads) if beads else None
        )
        for p in range(populations.max() + 1):
            members = in_group[populations == p]
            bead = beads[p] if beads else None
            if beads and populations.max() + 1 != len(beads):
                raise CbaFormatError(
                    f"{path}: found {populations.max() + 1} bead populations by APC in group "
                    f"{group}, the panel {panel.name} has {len(beads)}"
                )
            rows.append({
                "bead_group": group,
                "bead_id": bead.bead_id if bead else f"{group}{p + 1}",
                "analyte": bead.analyte if bead else "",
                "n_events": len(members),
                "apc_median": float(np.median(members[:, channels["apc"]])),
                "pe_median": float(np.median(members[:, channels["pe"]])),
            })  # fmt: skip
    populations = pd.DataFrame(rows)
    warnings = [
        f"bead {r.bead_id}: only {r.n_events} events"
        for r in populations.itertuples()
        if r.n_events < 50
    ]
    return BeadWell(str(path), bead_file_identity(path, keywords), populations, keywords, warnings)


def _layout_rows(text: str) -> dict[str, dict[str, str]]:
    return {row["well"].strip().upper(): row for row in csv.DictReader(io.StringIO(text))}


def read_bead_plate(
    paths: list[Path], panel: BeadPanel, layout: dict[str, dict[str, str]] | None = None
) -> CbaPlate:
    """A plate from several FCS files (one per well); standards' levels and wells from the names."""
    layout = layout or {}
    rows, warnings = [], []
    identities = []
    for path in sorted(paths):
        well = read_bead_fcs(path, panel)
        if well.identity is None:
            raise CbaFormatError(
                f"{path}: the file name does not say which well and standard or sample it is "
                "(expected e.g. K2-C07-A7.fcs or K2-S01-B3.fcs)"
            )
        identity = well.identity
        identities.append((identity, well.keywords))
        warnings += [f"{path.name}: {w}" for w in well.warnings]
        named = layout.get(identity.well, {})
        sample = named.get("sample_name") or identity.label
        beads = {b.bead_id: b for beads in panel.groups.values() for b in beads}
        for population in well.populations.itertuples():
            bead = beads[population.bead_id]
            standard = identity.kind == "standard"
            rows.append({
                "well": identity.well, "sample_name": sample, "type": identity.kind,
                "standard_level": identity.label if standard else "",
                "analyte": bead.analyte, "analyte_as_exported": bead.bead_id,
                "analyte_recognised": True, "mfi": population.pe_median,
                "standard_pg_ml": panel.standard_pg_ml(bead, identity.number) if standard else float("nan"),
                "sample_dilution": float(named.get("dilution") or 1.0),
                "reported_concentration": "",
            })  # fmt: skip
    first, keywords = identities[0]
    parts = ["bead-fcs", keywords.get("$CYTSN", keywords.get("$SN", "")), keywords.get("$DATE", "")]
    run_id = ":".join(part for part in [*parts, first.kit, first.plate] if part)
    source = str(paths[0].parent)
    return CbaPlate(BEAD_FCS_PLATE, run_id, wells_frame(rows, source), source, warnings)


def read_bead_folder(path: Path, panel: BeadPanel | None) -> CbaPlate:
    """A folder or zip of bead FCS files, with an optional `panel.json` and `layout.csv` in it."""
    if zipfile.is_zipfile(path):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as archive:
            archive.extractall(tmp)
            folder = next((p.parent for p in Path(tmp).rglob("*.fcs")), Path(tmp))
            return _read_folder(folder, panel, str(path))
    return _read_folder(path, panel, str(path))


def _read_folder(folder: Path, panel: BeadPanel | None, source: str) -> CbaPlate:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".fcs")
    if not files:
        raise CbaFormatError(f"{source}: no FCS files in the folder")
    panel_file = folder / "panel.json"
    if panel is None and panel_file.exists():
        panel = BeadPanel.from_dict(json.loads(panel_file.read_text()))
    if panel is None:
        raise CbaFormatError(
            f"{source}: raw bead FCS files need the bead panel (which bead carries which analyte "
            "and the top standard); put a panel.json beside the files or pass panel="
        )
    layout_file = folder / "layout.csv"
    layout = _layout_rows(layout_file.read_text()) if layout_file.exists() else None
    plate = read_bead_plate(files, panel, layout)
    plate.source = source
    return plate

"""Recompute the derived tables of some patients, validate, write, and regenerate the reports.

The flows call `recompute_patients` at the end of a run with the patients the run touched (and the
nightly run with None, every patient). Per-patient tables are written one file per patient
(`<table>/patient_id=<p>/derived.parquet`), all tables of a recompute in one two-phase write, so a
file is replaced atomically and a reader never sees half a recompute. A row's `source_sha256` is
the derivation's identity (a hash of the contributing source hashes); `derived_from` lists those
sources. `qc_trends` covers every run and is rewritten whole each time.

A table whose batch fails its suite is not written (its previous files stay); the failure is
returned in the outcome and kept in `validation_results` under `source_sha256 = "derived"`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipelines import __version__
from pipelines.derived import aplasia, crs, forecast, kinetics, qc_trends
from pipelines.derived.results import copies_results
from pipelines.derived.settings import DerivedSettings
from pipelines.home import LabHome
from pipelines.ledger import Ledger, Output
from pipelines.reports import write_cohort_reports, write_patient_reports
from pipelines.reports.figures import LeftOut
from pipelines.settings import Settings
from pipelines.warehouse import conform, connect, write_source, write_whole_table
from validation.runner import Validator
from validation.schemas import (
    CRS_FORECASTS,
    CRS_MODEL_CARD,
    CRS_RULE_PERFORMANCE,
    QC_TRENDS,
    TABLES,
    VALIDATION_RESULTS,
)

DERIVED_FILE = "derived"
"""File stem of every derived per-patient file, so a recompute replaces it in place."""
PATIENT_TABLES = (
    "car_kinetics", "b_cell_aplasia", "cytokine_fold_changes", "crs_signals", "crs_grades",
)  # fmt: skip


@dataclass
class RecomputeOutcome:
    patients: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    """Rows written per derived table (for qc_trends: the whole table)."""
    reports: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Validation failures, as sentences; those tables kept their previous files."""
    notes: list[str] = field(default_factory=list)
    """Charts left out of the reports for want of data, one line each (also on the pages)."""
    seconds: float = 0.0
    forecast_seconds: float = 0.0
    """How long the CRS forecast refit took (inside `seconds`)."""


@dataclass(frozen=True)
class PatientData:
    """One patient's curated inputs."""

    car_copies: pd.DataFrame
    populations: pd.DataFrame
    cytokines: pd.DataFrame
    collection_dates: Mapping[str, date]
    infusion_date: date | None


def derivation_id(sources: Iterable[str]) -> str:
    """A deterministic identity of a derivation: the hash of its sorted source hashes."""
    return hashlib.sha256("\n".join(sorted(set(sources))).encode()).hexdigest()


def _in_list(patients: list[str]) -> str:
    return ", ".join("'" + p.replace("'", "''") + "'" for p in patients)


def known_patients(con) -> list[str]:
    query = " UNION ".join(
        f"SELECT DISTINCT patient_id FROM {t}"
        for t in ("car_copies", "cytokines", "flow_populations")
    )
    return sorted(p for (p,) in con.execute(query).fetchall() if p)


def load_patient_data(
    con, patients: list[str], settings: Settings, ledger: Ledger
) -> dict[str, PatientData]:
    where = f"patient_id IN ({_in_list(patients)})"
    # one result per sample and target: the latest run that passed QC (warehouse.connect)
    copies = con.execute(f"SELECT * FROM car_copies WHERE {where} AND reportable").fetchdf()
    copies = copies[copies["target"].map(settings.qpcr.role_of) == "car"]
    # rows written before car_copies had `result` get it from their flags (one rule, results.py)
    copies = copies_results(copies)
    copies = copies.assign(
        loq_copies_per_ug=copies["loq_copies_per_reaction"] * 1000.0 / copies["dna_input_ng"]
    )
    populations = con.execute(f"SELECT * FROM flow_populations WHERE {where}").fetchdf()
    cytokines = con.execute(f"SELECT * FROM cytokines WHERE {where}").fetchdf()
    manifest = pd.DataFrame(
        ledger.manifest_rows(),
        columns=["accession", "patient_id", "timepoint", "collection_date", "infusion_date", "dna"],
    )
    data = {}
    for patient in patients:
        entries = manifest[manifest["patient_id"] == patient]
        infusion = entries["infusion_date"].dropna()
        data[patient] = PatientData(
            car_copies=copies[copies["patient_id"] == patient],
            populations=populations[populations["patient_id"] == patient],
            cytokines=cytokines[cytokines["patient_id"] == patient],
            collection_dates={
                t: date.fromisoformat(c)
                for t, c in zip(entries["timepoint"], entries["collection_date"], strict=True)
                if c
            },  # fmt: skip
            infusion_date=date.fromisoformat(infusion.iloc[0]) if len(infusion) else None,
        )
    return data


def _population_rows(populations: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    name = aplasia.first_present(populations["population"], names)
    return populations[populations["population"] == name]


def kinetics_frame(patient: str, data: PatientData, settings: DerivedSettings) -> pd.DataFrame:
    flow_car = _population_rows(data.populations, settings.car_positive_populations)
    if data.car_copies.empty and flow_car.empty:
        return pd.DataFrame()
    row = kinetics.car_kinetics_row(data.car_copies, flow_car, settings.auc_end_day)
    sources = set(data.car_copies["source_sha256"]) | set(flow_car["source_sha256"])
    return pd.DataFrame([{**row, "patient_id": patient, "derived_from": ",".join(sorted(sources))}])


def aplasia_frame(patient: str, data: PatientData, settings: DerivedSettings) -> pd.DataFrame:
    if data.populations.empty:
        return pd.DataFrame()
    measurements = aplasia.b_cell_measurements(
        data.populations, settings.b_cell_populations, settings.lymphocyte_populations
    )
    if measurements.empty:
        return pd.DataFrame()
    course = aplasia.aplasia_course(
        measurements, settings.aplasia_threshold_cells_per_ul,
        settings.aplasia_threshold_pct_of_lymphocytes, data.collection_dates,
    )  # fmt: skip
    return course.assign(patient_id=patient)


def observations_by_patient(home: LabHome, settings: DerivedSettings) -> tuple[dict, str | None]:
    """The optional clinical observation CSV, per patient, and its file hash."""
    path = home.root / settings.clinical_observations
    if not path.is_file():
        return {}, None
    frame = crs.read_observations(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {p: g for p, g in frame.groupby("patient_id")}, digest


def patient_frames(
    patient: str, data: PatientData, settings: DerivedSettings, rules: list[crs.CrsRule],
    observations: pd.DataFrame | None, observations_sha256: str | None,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    folds = crs.fold_changes(data.cytokines) if not data.cytokines.empty else pd.DataFrame()
    frames = {
        "car_kinetics": kinetics_frame(patient, data, settings),
        "b_cell_aplasia": aplasia_frame(patient, data, settings),
        "cytokine_fold_changes": folds.assign(patient_id=patient) if len(folds) else folds,
        "crs_signals": crs.evaluate_rules(folds, rules).assign(patient_id=patient)
        if len(folds) else pd.DataFrame(),
        "crs_grades": pd.DataFrame(),
    }  # fmt: skip
    if observations is not None and observations_sha256 is not None:
        grades = crs.crs_grades(observations, data.infusion_date)
        frames["crs_grades"] = grades.assign(patient_id=patient, derived_from=observations_sha256)
    return frames


def _with_provenance(frame: pd.DataFrame, processed_at: datetime) -> pd.DataFrame:
    ids = frame.groupby("patient_id")["derived_from"].transform(
        lambda joined: derivation_id(h for value in joined for h in value.split(","))
    )
    return frame.assign(source_sha256=ids, pipeline_version=__version__, processed_at=processed_at)


def existing_outputs(warehouse: Path, patients: list[str]) -> list[Output]:
    """The derived files of these patients now in the warehouse (replaced or removed on write)."""
    found = []
    for table in PATIENT_TABLES:
        for patient in patients:
            folder = warehouse / table / f"patient_id={patient}"
            for path in folder.glob("*.parquet") if folder.is_dir() else []:
                found.append(Output(table, str(path.relative_to(warehouse)), 0))
    return found


def _validated(
    name: str, table: pa.Table, validator: Validator, outcome: RecomputeOutcome, results: list
) -> pa.Table | None:
    """The table if it passes its suite; otherwise None, with the failures in the outcome."""
    checked = validator.validate(name, table.to_pandas(), DERIVED_FILE)
    results.extend(checked.results)
    if checked.failures:
        outcome.failures.extend(checked.failures)
        return None
    return table


def recompute_qc_trends(
    con, settings: DerivedSettings, validator: Validator, outcome: RecomputeOutcome,
    results: list, processed_at: datetime, warehouse: Path,
) -> None:  # fmt: skip
    samples = con.execute("SELECT * FROM flow_samples").fetchdf()
    populations = con.execute(
        "SELECT p.* FROM flow_populations p SEMI JOIN flow_samples s USING (source_sha256)"
    ).fetchdf()
    parts = [
        qc_trends.qpcr_measurements(con.execute("SELECT * FROM qpcr_runs").fetchdf()),
        qc_trends.cba_measurements(con.execute("SELECT * FROM cba_curves").fetchdf()),
        qc_trends.flow_measurements(populations, samples, settings.flow_control_pattern),
    ]
    measurements = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts
    ) else pd.DataFrame(columns=qc_trends.MEASUREMENT_COLUMNS)  # fmt: skip
    trends = qc_trends.levey_jennings(measurements, settings)
    trends = trends.assign(pipeline_version=__version__, processed_at=processed_at)
    table = _validated(QC_TRENDS.name, conform(trends, QC_TRENDS), validator, outcome, results)
    if table is not None:
        write_whole_table(warehouse, QC_TRENDS.name, table)
        outcome.rows[QC_TRENDS.name] = table.num_rows


def recompute_forecasts(
    con, settings: DerivedSettings, validator: Validator, outcome: RecomputeOutcome,
    results: list, processed_at: datetime, warehouse: Path,
) -> None:  # fmt: skip
    """Refit the CRS forecast on every graded patient (`con` sees this recompute's per-patient
    tables) and rewrite `crs_forecasts`, `crs_model_card` and `crs_rule_performance` whole."""
    started = time.perf_counter()
    built = forecast.forecast_tables(
        con.execute("SELECT * FROM cytokine_fold_changes").fetchdf(),
        con.execute("SELECT * FROM crs_grades").fetchdf(),
        con.execute("SELECT * FROM crs_signals").fetchdf(),
        settings,
    )
    cohort_id = derivation_id(built.sources)
    frames = {
        CRS_FORECASTS: built.forecasts.assign(
            source_sha256=[derivation_id(f.split(",")) for f in built.forecasts["derived_from"]]
        ) if len(built.forecasts) else built.forecasts,
        CRS_MODEL_CARD: built.model_card.assign(source_sha256=cohort_id),
        CRS_RULE_PERFORMANCE: built.rule_performance.assign(source_sha256=cohort_id),
    }  # fmt: skip
    for schema, frame in frames.items():
        if frame.empty:
            frame = pd.DataFrame(columns=schema.column_names)
        frame = frame.assign(pipeline_version=__version__, processed_at=processed_at)
        table = _validated(schema.name, conform(frame, schema), validator, outcome, results)
        if table is not None:
            write_whole_table(warehouse, schema.name, table)
            outcome.rows[schema.name] = table.num_rows
    outcome.forecast_seconds = time.perf_counter() - started


def recompute_patients(
    home: LabHome, patients: Iterable[str] | None, validator: Validator
) -> RecomputeOutcome:
    """Recompute, validate and write the derived tables of `patients` (None: every patient),
    rewrite `qc_trends`, and regenerate those patients' reports, the cohort and QC pages."""
    started = time.perf_counter()
    settings = Settings.load(home.root)
    derived_settings = DerivedSettings.load(home.root)
    rules = crs.load_rules(derived_settings.crs_rules_path(home.root))
    con = connect(home.warehouse)
    chosen = known_patients(con) if patients is None else sorted(set(patients))
    outcome = RecomputeOutcome(patients=chosen)
    processed_at = datetime.now(UTC)
    data = load_patient_data(con, chosen, settings, Ledger(home.ledger_path))
    observations, observations_sha256 = observations_by_patient(home, derived_settings)
    collected: dict[str, list[pd.DataFrame]] = {t: [] for t in PATIENT_TABLES}
    for patient in chosen:
        frames = patient_frames(
            patient, data[patient], derived_settings, rules, observations.get(patient),
            observations_sha256,
        )  # fmt: skip
        for name, frame in frames.items():
            if len(frame):
                collected[name].append(frame)
    results: list[dict] = []
    tables: dict[str, pa.Table] = {}
    for name, frames in collected.items():
        if frames:
            parts = [conform(_with_provenance(f, processed_at), TABLES[name]) for f in frames]
            table = _validated(name, pa.concat_tables(parts), validator, outcome, results)
            if table is not None:
                tables[name] = table
    recompute_qc_trends(
        con, derived_settings, validator, outcome, results, processed_at, home.warehouse
    )
    failed = {f.split(":", 1)[0] for f in outcome.failures}
    keep = [o for o in existing_outputs(home.warehouse, chosen) if o.table_name in failed]
    replaced = [o for o in existing_outputs(home.warehouse, chosen) if o not in keep]
    for output in write_source(home.warehouse, DERIVED_FILE, tables, replaced):
        outcome.rows[output.table_name] = outcome.rows.get(output.table_name, 0) + output.rows
    # the forecast learns from every patient, so it reads the per-patient tables just written
    recompute_forecasts(
        connect(home.warehouse), derived_settings, validator, outcome, results, processed_at,
        home.warehouse,
    )  # fmt: skip
    validation = conform(
        pd.DataFrame(results, columns=VALIDATION_RESULTS.assay_column_names).assign(
            source_sha256=DERIVED_FILE, pipeline_version=__version__, processed_at=processed_at
        ),
        VALIDATION_RESULTS,
    )
    write_source(home.warehouse, DERIVED_FILE, {VALIDATION_RESULTS.name: validation})
    written = connect(home.warehouse)  # sees what was just written
    left_out = LeftOut()
    outcome.reports = write_patient_reports(home, chosen, written, left_out)
    outcome.reports.extend(write_cohort_reports(home, written, left_out))
    outcome.notes = left_out.lines
    outcome.seconds = time.perf_counter() - started
    return outcome

"""The one definition of every output table: names, columns, Arrow types, keys and partitioning.

The warehouse writer casts to these schemas and the Great Expectations suites are built from them,
so a column is renamed or retyped here and nowhere else.

Assay libraries (`qpcr`, `gating`, `cba`) produce pandas frames holding the *assay* columns of a
table; the pipeline adds the identity columns (`patient_id`, `timepoint`, `study_day`) and the
provenance columns (`source_sha256`, `pipeline_version`, `processed_at`) before writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Patient and timepoint values must match this before they become partition folder names."""

IDENTITY_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("patient_id", pa.string()),
    ("timepoint", pa.string()),
    ("study_day", pa.int32()),
)
PROVENANCE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("source_sha256", pa.string()),
    ("pipeline_version", pa.string()),
    ("processed_at", pa.timestamp("us", tz="UTC")),
)

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Table:
    """An output table.

    Tables are written under one folder level per `partition_by` column (hive style:
    `<table>/patient_id=<p>/timepoint=<t>/`), one Parquet file per source file and partition;
    plate-level tables such as `qpcr_runs` have no partition columns and are written as one file
    per source directly under `<table>/`, with identity columns where a row has one.
    """

    name: str
    description: str
    assay_columns: tuple[tuple[str, pa.DataType], ...]
    key: tuple[str, ...]
    partition_by: tuple[str, ...] = ("patient_id", "timepoint")
    required: tuple[str, ...] = field(default_factory=tuple)
    """Assay columns that may never be null (identity/provenance rules are implied)."""

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(n, t) for n, t in IDENTITY_COLUMNS]
            + [pa.field(n, t) for n, t in self.assay_columns]
            + [pa.field(n, t) for n, t in PROVENANCE_COLUMNS]
        )

    @property
    def column_names(self) -> list[str]:
        return self.schema.names

    @property
    def assay_column_names(self) -> list[str]:
        return [n for n, _ in self.assay_columns]


f64, i64, i32, s, b = pa.float64(), pa.int64(), pa.int32(), pa.string(), pa.bool_()

QPCR_WELLS = Table(
    name="qpcr_wells",
    description="One row per well x target as the instrument exported it.",
    partition_by=(),
    assay_columns=(
        ("run_id", s),
        ("instrument_format", s),
        ("instrument", s),
        ("well", s),
        ("sample_name", s),
        ("target", s),
        ("reporter", s),
        ("task", s),  # UNKNOWN, STANDARD, NTC, NAC, OTHER
        ("cq", f64),  # null where the instrument found none; never 40
        ("amp_status", s),  # the instrument's own wording: Undetermined, NO_AMP, NaN, AMP, ...
        ("amplified", b),
        ("standard_quantity", f64),  # copies per reaction for standards
        ("instrument_quantity", f64),  # the quantity the instrument software computed, if any
        ("dna_input_ng", f64),
        ("omitted", b),
        # the export's fluorescence per cycle where it holds it (QuantStudio [Amplification Data])
        ("amplification_cycles", pa.list_(i32)),
        ("amplification_fluorescence", pa.list_(f64)),
        ("amplification_measure", s),  # what the fluorescence is: "Delta Rn", "Rn"
    ),
    key=("run_id", "well", "target"),
    required=("run_id", "well", "target", "task", "amplified", "omitted"),
)

QPCR_RUNS = Table(
    name="qpcr_runs",
    description="One row per plate x target: standard curve, NTC and replicate QC.",
    partition_by=(),
    assay_columns=(
        ("run_id", s),
        ("instrument_format", s),
        ("instrument", s),
        ("run_started", TIMESTAMP),
        ("target", s),
        ("role", s),  # car, reference, other
        ("n_standard_wells", i32),
        ("n_standard_levels", i32),
        ("slope", f64),
        ("intercept", f64),
        ("efficiency_pct", f64),
        ("r_squared", f64),
        ("lowest_standard", f64),
        ("highest_standard", f64),
        ("loq_copies_per_reaction", f64),
        ("lod_copies_per_reaction", f64),
        ("instrument_slope", f64),
        ("instrument_efficiency_pct", f64),
        ("ntc_wells", i32),
        ("ntc_amplified", i32),
        ("ntc_verdict", s),  # PASS, FAIL, NONE
        ("curve_verdict", s),  # PASS, FAIL, NONE
        ("replicate_verdict", s),  # PASS, FLAG, NONE
        ("n_samples_replicate_sd_high", i32),
        ("positive_control_copies_per_reaction", f64),
        ("qc_verdict", s),  # PASS, FAIL, NO_CURVE
        ("qc_rules", s),  # the rules applied and their outcome, human readable
    ),
    key=("run_id", "target"),
    required=("run_id", "target", "qc_verdict", "qc_rules"),
)

CAR_COPIES = Table(
    name="car_copies",
    description=(
        "One row per sample x target: result (quantified, below_loq, not_detected, not_measured) "
        "and reason, replicate Cq, copies per reaction and per ug gDNA."
    ),
    assay_columns=(
        ("run_id", s),
        ("sample_name", s),
        ("target", s),
        ("collection_date", pa.date32()),
        ("n_replicates", i32),
        ("n_amplified", i32),
        ("cq_mean", f64),
        ("cq_sd", f64),
        ("replicate_sd_ok", b),
        ("copies_per_reaction", f64),
        ("dna_input_ng", f64),
        ("dna_input_source", s),  # export, manifest, setting
        ("copies_per_ug", f64),  # NULL unless quantified or below_loq (never 0 for "none")
        ("copies_unit", s),
        ("result", s),  # quantified, below_loq (estimate kept), not_detected, not_measured
        ("result_reason", s),  # NULL when quantified; else one line: why, and what to do
        ("reference_target", s),
        ("reference_cq_mean", f64),
        ("reference_copies_per_reaction", f64),
        ("copies_per_reference_copy", f64),
        ("delta_cq", f64),
        ("below_lod", b),  # NULL when not measured without an estimate
        ("below_loq", b),  # true for below_loq and not_detected
        ("lod_copies_per_reaction", f64),
        ("loq_copies_per_reaction", f64),
        ("plate_qc_verdict", s),
    ),
    key=("run_id", "sample_name", "target"),
    required=("run_id", "sample_name", "target", "n_replicates", "result"),
)

FLOW_SAMPLES = Table(
    name="flow_samples",
    description="One row per FCS dataset: cytometer, acquisition, events, panel, compensation.",
    assay_columns=(
        ("dataset", i32),
        ("sample_name", s),
        ("fcs_version", s),
        ("cytometer", s),
        ("cytometer_serial", s),
        ("acquired_at", TIMESTAMP),
        ("event_count", i64),
        ("channel_count", i32),
        ("panel", s),
        ("template", s),
        ("compensation_source", s),  # $SPILLOVER, $SPILL, template, none
        ("keywords_json", s),  # allow-listed keywords only
        ("read_warnings", s),
    ),
    key=("source_sha256", "dataset"),
    required=("dataset", "event_count", "panel", "compensation_source"),
)

FLOW_POPULATIONS = Table(
    name="flow_populations",
    description="One row per FCS dataset x population.",
    assay_columns=(
        ("dataset", i32),
        ("panel", s),
        ("population", s),
        ("gate_path", s),
        ("parent", s),
        ("count", i64),
        ("parent_count", i64),
        ("pct_parent", f64),
        ("pct_total", f64),
        ("cells_per_ul", f64),
    ),
    key=("source_sha256", "dataset", "gate_path"),
    required=("dataset", "population", "gate_path", "count"),
)

FLOW_MFI = Table(
    name="flow_mfi",
    description="One row per FCS dataset x population x marker: median fluorescence.",
    assay_columns=(
        ("dataset", i32),
        ("population", s),
        ("gate_path", s),
        ("marker", s),
        ("channel", s),
        ("median_compensated", f64),
        ("median_transformed", f64),
        ("transform", s),
    ),
    key=("source_sha256", "dataset", "gate_path", "marker"),
    required=("dataset", "population", "gate_path", "marker", "channel"),
)

CBA_CURVES = Table(
    name="cba_curves",
    description="One row per plate x analyte: 4PL/5PL standard curve, recovery, LLOQ, ULOQ.",
    partition_by=(),
    assay_columns=(
        ("run_id", s),
        ("instrument_format", s),
        ("analyte", s),  # canonical name, or the exported name when not recognised
        ("analyte_as_exported", s),
        ("analyte_recognised", b),  # false: the vocabulary does not know the exported name
        ("model", s),  # 4PL, 5PL, NONE
        ("param_a", f64),  # response at zero concentration
        ("param_b", f64),  # slope
        ("param_c", f64),  # inflection concentration
        ("param_d", f64),  # response at infinite concentration
        ("param_g", f64),  # asymmetry (5PL; 1 for 4PL)
        ("r_squared", f64),
        ("n_standards", i32),
        ("n_standards_passed", i32),
        ("dilution_factor", f64),
        ("recovery_json", s),  # per standard: expected pg/mL, back-calculated, recovery %, pass
        ("lloq_pg_ml", f64),
        ("uloq_pg_ml", f64),
        ("verdict", s),  # PASS, FAIL
        ("verdict_reason", s),
    ),
    key=("run_id", "analyte"),
    required=("run_id", "analyte", "analyte_recognised", "model", "verdict"),
)

CYTOKINES = Table(
    name="cytokines",
    description="One row per sample x analyte: MFI, concentration in pg/mL, censoring.",
    assay_columns=(
        ("run_id", s),
        ("sample_name", s),
        ("analyte", s),  # canonical name, or the exported name when not recognised
        ("analyte_recognised", b),  # false: kept under the exported name, not used downstream
        ("n_replicates", i32),
        ("mfi", f64),
        ("mfi_cv_pct", f64),
        ("sample_dilution", f64),
        ("concentration_pg_ml", f64),  # null when censored
        ("censoring", s),  # none, below_lloq, above_uloq, not_detected, not_measured
        ("censor_limit_pg_ml", f64),  # the limit the value is censored at
        ("reported_value", s),  # a vendor's own value as written, e.g. "< 3.2"
        ("curve_verdict", s),
    ),
    key=("run_id", "sample_name", "analyte"),
    required=("run_id", "sample_name", "analyte", "analyte_recognised", "censoring"),
)

VALIDATION_RESULTS = Table(
    name="validation_results",
    description="One row per source file x table x expectation: what Great Expectations found.",
    partition_by=(),
    assay_columns=(
        ("table_name", s),
        ("suite", s),
        ("expectation", s),
        ("column_name", s),
        ("success", b),
        ("unexpected_count", i64),
        ("details", s),
        ("validated_at", TIMESTAMP),
    ),
    key=("source_sha256", "table_name", "expectation", "column_name"),
    required=("table_name", "suite", "expectation", "success"),
)

INGEST_LOG = Table(
    name="ingest_log",
    description="The ledger exported: every file received, its status and why.",
    partition_by=(),
    assay_columns=(
        ("original_name", s),
        ("size_bytes", i64),
        ("kind", s),
        ("instrument_format", s),
        ("run_identity", s),
        ("status", s),
        ("reason", s),
        ("warnings", s),
        ("flow_run_id", s),
        ("superseded_by", s),
        ("received_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ),
    key=("source_sha256",),
    required=("original_name", "status"),
)

# --- derived tables (pipelines/derived): recomputed per patient from the curated tables ---------
# `source_sha256` of a derived row is the derivation's identity: a hash of the contributing source
# files' hashes; `derived_from` lists those source hashes (comma-separated, sorted).

CAR_KINETICS = Table(
    name="car_kinetics",
    description="One row per patient: non-compartmental CAR-T expansion and persistence.",
    partition_by=("patient_id",),
    assay_columns=(
        ("cmax_copies_per_ug", f64),
        ("tmax_day", i32),
        ("auc_0_28", f64),  # copies/ug x day, linear-up / log-down trapezoids
        ("auc_0_28_end_day", f64),  # 28, or Tlast when the transgene was unquantifiable by day 28
        ("tlast_day", i32),
        ("clast_copies_per_ug", f64),
        ("loq_copies_per_ug", f64),
        ("n_qpcr_samples", i32),
        ("n_qpcr_below_loq", i32),  # post-infusion days below_loq or not_detected
        ("qpcr_not_measured_json", s),  # samples that are no data point: timepoint, day, reason
        ("last_detected_day", i32),  # last day quantified or detected below the LOQ
        ("persistence_status", s),  # persisting, lost, not_expanded, no_data
        ("persistence_lost_day", i32),  # first not-detected day after the last detection
        ("persistence_json", s),  # per timepoint after day 28: day, status (result), copies/ug
        ("cmax_car_cells_per_ul", f64),
        ("tmax_car_cells_day", i32),
        ("auc_0_28_car_cells_per_ul", f64),  # CAR+ cells/uL x day
        ("tlast_car_cells_day", i32),
        ("blq_handling", s),
        ("derived_from", s),
    ),
    key=("patient_id",),
    required=("n_qpcr_samples", "persistence_status", "blq_handling", "derived_from"),
)

B_CELL_APLASIA = Table(
    name="b_cell_aplasia",
    description="One row per patient x timepoint: CD19+ B cells and B-cell aplasia status.",
    partition_by=("patient_id",),
    assay_columns=(
        ("collection_date", pa.date32()),
        ("b_cells_per_ul", f64),
        ("b_cells_pct_of_lymphocytes", f64),
        ("threshold_cells_per_ul", f64),
        ("threshold_pct_of_lymphocytes", f64),
        ("aplasia", b),
        ("aplasia_basis", s),  # cells_per_ul, pct_of_lymphocytes
        ("aplasia_onset_day", i32),
        ("aplasia_onset_timepoint", s),
        ("aplasia_onset_date", pa.date32()),
        ("aplasia_days_so_far", i32),
        ("recovery_day", i32),
        ("recovery_timepoint", s),
        ("recovery_date", pa.date32()),
        ("derived_from", s),
    ),
    key=("patient_id", "timepoint"),
    required=("aplasia", "aplasia_basis", "derived_from"),
)

CYTOKINE_FOLD_CHANGES = Table(
    name="cytokine_fold_changes",
    description="One row per patient x timepoint x analyte: fold change over the patient's BL.",
    partition_by=("patient_id",),
    assay_columns=(
        ("analyte", s),
        ("concentration_pg_ml", f64),  # the value, or its censoring limit when censored
        ("censoring", s),
        ("baseline_pg_ml", f64),
        ("baseline_censoring", s),
        ("fold_change", f64),
        ("fold_change_bound", s),  # exact, at_least, at_most, unknown
        ("derived_from", s),
    ),
    key=("patient_id", "timepoint", "analyte"),
    required=("analyte", "censoring", "fold_change_bound", "derived_from"),
)

CRS_SIGNALS = Table(
    name="crs_signals",
    description="One row per patient x timepoint x rule: cytokine early-warning rule outcome.",
    partition_by=("patient_id",),
    assay_columns=(
        ("rule_id", s),
        ("rule_title", s),
        ("rule_kind", s),  # fold_change, concentration
        ("rule_source", s),
        ("window_first_day", i32),
        ("window_last_day", i32),
        ("in_window", b),
        ("analytes_considered", s),
        ("analytes_meeting", s),
        ("n_analytes_meeting", i32),
        ("alert", b),
        ("evidence", s),
        ("notice", s),
        ("derived_from", s),
    ),
    key=("patient_id", "timepoint", "rule_id"),
    required=("rule_id", "rule_source", "alert", "evidence", "notice", "derived_from"),
)

CRS_GRADES = Table(
    name="crs_grades",
    description="One row per patient x day of clinical observations: CRS grade with its scale.",
    partition_by=("patient_id",),
    assay_columns=(
        ("observation_date", pa.date32()),
        ("temperature_c", f64),
        ("fever", b),
        ("hypotension", s),  # none, fluids, one_vasopressor, multiple_vasopressors
        ("oxygen_support", s),  # none, low_flow, high_flow, positive_pressure
        ("crs_grade", i32),
        ("grade_scale", s),
        ("grade_basis", s),
        ("notice", s),
        ("derived_from", s),
    ),
    key=("patient_id", "study_day"),
    required=("fever", "hypotension", "oxygen_support", "crs_grade", "grade_scale", "derived_from"),
)

QC_TRENDS = Table(
    name="qc_trends",
    description="One row per QC control series x run: Levey-Jennings statistics, Westgard rules.",
    partition_by=(),
    assay_columns=(
        ("control", s),  # e.g. qpcr:CAR:slope, cba:fcap-array:IL-6:mean_recovery_pct
        ("assay", s),  # qpcr, cba, flow
        ("metric", s),
        ("unit", s),
        ("run_id", s),
        ("run_time", TIMESTAMP),
        ("run_index", i32),
        ("value", f64),
        ("target_mean", f64),
        ("target_sd", f64),
        ("limits_basis", s),  # settings, series (first runs), insufficient_history
        ("z_score", f64),
        ("westgard_violations", s),  # comma-separated rule codes, empty when none
        ("westgard_status", s),  # in_control, warning, reject, not_evaluated
    ),
    key=("control", "run_id"),
    required=("control", "assay", "metric", "run_id", "run_index", "value", "westgard_status"),
)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        QPCR_WELLS,
        QPCR_RUNS,
        CAR_COPIES,
        FLOW_SAMPLES,
        FLOW_POPULATIONS,
        FLOW_MFI,
        CBA_CURVES,
        CYTOKINES,
        VALIDATION_RESULTS,
        INGEST_LOG,
        CAR_KINETICS,
        B_CELL_APLASIA,
        CYTOKINE_FOLD_CHANGES,
        CRS_SIGNALS,
        CRS_GRADES,
        QC_TRENDS,
    )
}

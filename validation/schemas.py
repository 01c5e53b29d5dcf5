"""The one definition of every output table: names, columns, Arrow types, units, meanings, keys
and partitioning.

The warehouse writer casts to these schemas, the Great Expectations suites are built from them,
and `cartflow tables` and the README's column reference are printed from them, so a column is
renamed, retyped or explained here and nowhere else.

Assay libraries (`qpcr`, `gating`, `cba`) produce pandas frames holding the *assay* columns of a
table; the pipeline adds the identity columns (`patient_id`, `timepoint`, `study_day`) and the
provenance columns (`source_sha256`, `pipeline_version`, `processed_at`) before writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Patient and timepoint values must match this before they become partition folder names."""

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """A column as an analyst meets it: its name, Arrow type, unit (None when it has none)
    and what it means, in a sentence a lab scientist understands."""

    name: str
    type: pa.DataType
    meaning: str
    unit: str | None = None


f64, i64, i32, s, b = pa.float64(), pa.int64(), pa.int32(), pa.string(), pa.bool_()
d32 = pa.date32()

IDENTITY_COLUMNS: tuple[Column, ...] = (
    Column("patient_id", s, "The trial's patient identifier, from the sample manifest or the "
           "sample name."),
    Column("timepoint", s, "Visit label: SCREEN, BL (baseline, before lymphodepletion), PRODUCT "
           "(the infused cells), D0 (infusion) to D28, then M2 to M24; `cartflow query` sorts it "
           "by study day."),
    Column("study_day", i32, "Days after infusion (D0 is day 0): from the collection date when "
           "the manifest gives one, else the visit's nominal day.", "days"),
)  # fmt: skip
PROVENANCE_COLUMNS: tuple[Column, ...] = (
    Column("source_sha256", s, "SHA-256 of the raw file the row came from (in derived tables: "
           "a hash of the contributing files' hashes), to trace any number back to its export."),
    Column("pipeline_version", s, "Version of cartflow that wrote the row."),
    Column("processed_at", TIMESTAMP, "When the row was written.", "UTC"),
)  # fmt: skip


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
    """What one row is and holds, in one line."""
    assay_columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_by: tuple[str, ...] = ("patient_id", "timepoint")
    required: tuple[str, ...] = field(default_factory=tuple)
    """Assay columns that may never be null (identity/provenance rules are implied)."""
    derived: bool = False
    """Recomputed from the curated tables (`pipelines/derived`), not read from an export."""
    view_columns: tuple[Column, ...] = ()
    """Columns the DuckDB view adds after the written ones (`pipelines.warehouse.connect`):
    rules over the rows of several source files, such as `car_copies.reportable`."""

    @property
    def columns(self) -> tuple[Column, ...]:
        return IDENTITY_COLUMNS + self.assay_columns + PROVENANCE_COLUMNS

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def assay_column_names(self) -> list[str]:
        return [c.name for c in self.assay_columns]


QPCR_WELLS = Table(
    name="qpcr_wells",
    description="One row per well x target of a qPCR plate, as the instrument exported it.",
    partition_by=(),
    assay_columns=(
        Column("run_id", s, "The plate (run) the well belongs to, as the export names it."),
        Column(
            "instrument_format",
            s,
            "The export format the file was read as, e.g. quantstudio-text, cfx-csv, rdml.",
        ),
        Column("instrument", s, "The instrument model or name the export gives."),
        Column("well", s, "Well position on the plate, e.g. A1."),
        Column("sample_name", s, "The sample name written in the export for this well."),
        Column(
            "target",
            s,
            "The assay target measured in this well, e.g. CAR or a reference "
            "gene; a multiplex well has one row per target.",
        ),
        Column("reporter", s, "Reporter dye of the target, e.g. FAM or VIC."),
        Column(
            "task",
            s,
            "The well's role: UNKNOWN (a sample), STANDARD, NTC (no-template "
            "control), NAC (no-amplification control) or OTHER.",
        ),
        Column(
            "cq",
            f64,
            "Quantification cycle; empty where the instrument found none (never replaced by 40).",
            "cycles",
        ),
        Column(
            "amp_status",
            s,
            "The instrument's own amplification wording, e.g. Undetermined, NO_AMP, NaN, AMP.",
        ),
        Column(
            "amplified",
            b,
            "Whether the well amplified, read from the Cq and the "
            "instrument's amplification status.",
        ),
        Column("standard_quantity", f64, "The known amount in a standard well.", "copies/reaction"),
        Column(
            "instrument_quantity",
            f64,
            "The quantity the instrument software computed, kept for comparison.",
            "copies/reaction",
        ),
        Column(
            "dna_input_ng", f64, "Genomic DNA loaded into the well, when the export gives it.", "ng"
        ),
        Column(
            "omitted",
            b,
            "The well was marked omitted in the instrument software and is "
            "left out of every calculation.",
        ),
        Column(
            "amplification_cycles",
            pa.list_(i32),
            "The cycles of the well's amplification curve, where the export holds one "
            "(QuantStudio [Amplification Data], RDML adp); empty otherwise.",
            "cycles",
        ),
        Column(
            "amplification_fluorescence",
            pa.list_(f64),
            "The well's fluorescence at each of those cycles, as the export gives it (see "
            "amplification_measure).",
        ),
        Column(
            "amplification_measure",
            s,
            "What the amplification fluorescence is: Delta Rn (baseline-corrected), Rn, or "
            "fluorescence as an RDML file wrote it.",
        ),
    ),
    key=("run_id", "well", "target"),
    required=("run_id", "well", "target", "task", "amplified", "omitted"),
)

QPCR_RUNS = Table(
    name="qpcr_runs",
    description="One row per plate x target: standard curve, NTC and replicate QC, and the "
    "plate's verdict.",
    partition_by=(),
    assay_columns=(
        Column("run_id", s, "The plate (run), as the export names it."),
        Column("instrument_format", s, "The export format the file was read as."),
        Column("instrument", s, "The instrument model or name the export gives."),
        Column(
            "run_started",
            TIMESTAMP,
            "When the instrument run started, where the export says.",
            "UTC",
        ),
        Column("target", s, "The assay target, e.g. CAR or a reference gene."),
        Column(
            "role",
            s,
            "What the target is for: car (the transgene), reference (a normalising gene) or other.",
        ),
        Column(
            "n_standard_wells", i32, "Standard wells of this target used for the curve.", "wells"
        ),
        Column(
            "n_standard_levels", i32, "Distinct standard concentrations on the curve.", "levels"
        ),
        Column(
            "slope",
            f64,
            "Slope of the standard curve, Cq against log10 copies (-3.32 is 100 % efficiency).",
            "cycles/log10 copies",
        ),
        Column("intercept", f64, "Cq of one copy on the standard curve.", "cycles"),
        Column(
            "efficiency_pct",
            f64,
            "Amplification efficiency from the slope, (10^(-1/slope) - 1) x 100.",
            "%",
        ),
        Column("r_squared", f64, "Coefficient of determination of the standard curve fit."),
        Column("lowest_standard", f64, "The lowest standard on the curve.", "copies/reaction"),
        Column("highest_standard", f64, "The highest standard on the curve.", "copies/reaction"),
        Column(
            "loq_copies_per_reaction",
            f64,
            "Limit of quantification applied to this plate's samples.",
            "copies/reaction",
        ),
        Column(
            "lod_copies_per_reaction",
            f64,
            "Limit of detection applied to this plate's samples.",
            "copies/reaction",
        ),
        Column(
            "instrument_slope",
            f64,
            "The slope the instrument software reported, kept for comparison.",
            "cycles/log10 copies",
        ),
        Column(
            "instrument_efficiency_pct",
            f64,
            "The efficiency the instrument software reported.",
            "%",
        ),
        Column("ntc_wells", i32, "No-template control wells of this target.", "wells"),
        Column(
            "ntc_amplified",
            i32,
            "NTC wells that amplified before the NTC Cq cut-off (contamination).",
            "wells",
        ),
        Column("ntc_verdict", s, "NTC check: PASS, FAIL or NONE (no NTC on the plate)."),
        Column(
            "curve_verdict",
            s,
            "Standard curve check (efficiency and R² within the lab's "
            "limits): PASS, FAIL or NONE (no curve).",
        ),
        Column(
            "replicate_verdict",
            s,
            "Replicate check: PASS, FLAG (some samples' replicate Cq SD above the limit) or NONE.",
        ),
        Column(
            "n_samples_replicate_sd_high",
            i32,
            "Samples whose replicate Cq SD is above the lab's limit.",
            "samples",
        ),
        Column(
            "positive_control_copies_per_reaction",
            f64,
            "Mean copies measured in the positive control wells, where the plate has them.",
            "copies/reaction",
        ),
        Column(
            "qc_verdict",
            s,
            "The plate's QC verdict for this target: PASS, FAIL or "
            "NO_CURVE (no standards to quantify against).",
        ),
        Column("qc_rules", s, "The QC rules applied and their outcome, in words."),
    ),
    key=("run_id", "target"),
    required=("run_id", "target", "qc_verdict", "qc_rules"),
)

QUANTIFIED, BELOW_LOQ, NOT_DETECTED, NOT_MEASURED = (
    "quantified", "below_loq", "not_detected", "not_measured",
)  # fmt: skip
CAR_COPIES_RESULTS: tuple[str, ...] = (QUANTIFIED, BELOW_LOQ, NOT_DETECTED, NOT_MEASURED)
"""The values of `car_copies.result`: what the qPCR library writes (`qpcr.analysis.RESULTS`) and
the suite holds it to, so a library that wrote another value is caught before the warehouse."""

CAR_COPIES = Table(
    name="car_copies",
    description="One row per sample x target x run: what the qPCR found (result and reason), "
    "replicate Cq, copies per reaction and per µg gDNA; a run that failed QC gives none, and "
    "`reportable` marks the one result per sample and target to report.",
    view_columns=(
        Column(
            "reportable",
            b,
            "True for one row per sample (patient and timepoint) and target: the one from the "
            "latest run that passed QC (by run start, else when taken). A sample measured again "
            "keeps its other rows, false. Added by the query view, not stored in the Parquet.",
        ),
    ),
    assay_columns=(
        Column("run_id", s, "The plate (run) the sample was measured on."),
        Column("sample_name", s, "The sample name written in the export."),
        Column("target", s, "The assay target, e.g. CAR."),
        Column("collection_date", d32, "When the sample was drawn, from the manifest."),
        Column("n_replicates", i32, "Replicate wells of the sample for this target.", "wells"),
        Column("n_amplified", i32, "Replicate wells that amplified.", "wells"),
        Column("cq_mean", f64, "Mean Cq of the replicates that amplified.", "cycles"),
        Column("cq_sd", f64, "Standard deviation of those replicates' Cq.", "cycles"),
        Column("replicate_sd_ok", b, "Whether the replicate SD is within the lab's limit."),
        Column(
            "copies_per_reaction",
            f64,
            "Mean copies per reaction over the amplified "
            "replicates, from the standard curve; empty unless quantified or below_loq.",
            "copies/reaction",
        ),
        Column("dna_input_ng", f64, "Genomic DNA per reaction used to convert to copies/µg.", "ng"),
        Column(
            "dna_input_source",
            s,
            "Where the DNA input came from: export, manifest or setting (the lab's default).",
        ),
        Column(
            "copies_per_ug",
            f64,
            "Transgene copies per µg genomic DNA; empty unless "
            "quantified or below_loq (never 0 for none).",
            "copies/µg gDNA",
        ),
        Column("copies_unit", s, "The unit of copies_per_ug, stored with the value."),
        Column(
            "result",
            s,
            "What the qPCR found: quantified, below_loq (detected, estimate "
            "kept), not_detected or not_measured.",
        ),
        Column(
            "result_reason",
            s,
            "Empty when quantified; otherwise one line saying why, and what to do.",
        ),
        Column(
            "reference_target", s, "The reference gene used to normalise, where the assay has one."
        ),
        Column(
            "reference_cq_mean", f64, "Mean Cq of the reference gene in the same sample.", "cycles"
        ),
        Column(
            "reference_copies_per_reaction",
            f64,
            "Reference-gene copies per reaction.",
            "copies/reaction",
        ),
        Column(
            "copies_per_reference_copy",
            f64,
            "Transgene copies per reference-gene copy.",
            "copies/copy",
        ),
        Column("delta_cq", f64, "Cq of the target minus Cq of the reference gene.", "cycles"),
        Column(
            "below_lod",
            b,
            "Below the limit of detection; empty when not measured without an estimate.",
        ),
        Column(
            "below_loq",
            b,
            "Below the limit of quantification: true for below_loq and not_detected.",
        ),
        Column(
            "lod_copies_per_reaction",
            f64,
            "The limit of detection the row was judged against.",
            "copies/reaction",
        ),
        Column(
            "loq_copies_per_reaction",
            f64,
            "The limit of quantification the row was judged against.",
            "copies/reaction",
        ),
        Column(
            "plate_qc_verdict",
            s,
            "The plate's QC verdict for this target (see qpcr_runs.qc_verdict).",
        ),
    ),
    key=("run_id", "sample_name", "target"),
    required=("run_id", "sample_name", "target", "n_replicates", "result"),
)

FLOW_SAMPLES = Table(
    name="flow_samples",
    description="One row per FCS dataset: cytometer, acquisition, events, panel, compensation.",
    assay_columns=(
        Column(
            "dataset", i32, "Which dataset of the FCS file, counting from 1 (most files hold one)."
        ),
        Column("sample_name", s, "The sample name from the FCS keywords."),
        Column("fcs_version", s, "FCS standard version of the file: 2.0, 3.0 or 3.1."),
        Column("cytometer", s, "The cytometer model ($CYT)."),
        Column("cytometer_serial", s, "The cytometer's serial number ($CYTSN)."),
        Column("acquired_at", TIMESTAMP, "When the tube was acquired.", "UTC"),
        Column("event_count", i64, "Events recorded in the dataset.", "events"),
        Column("channel_count", i32, "Parameters (channels) recorded.", "channels"),
        Column(
            "panel",
            s,
            "The staining panel the tube was recognised as, which picks its gating template.",
        ),
        Column("template", s, "The gating template applied (file name)."),
        Column(
            "compensation_source",
            s,
            "Where the spillover matrix came from: $SPILLOVER, $SPILL, template or none.",
        ),
        Column(
            "keywords_json",
            s,
            "Selected FCS keywords as JSON (an allow-list: no "
            "free-text keywords that may carry personal data).",
        ),
        Column(
            "read_warnings",
            s,
            "What the reader noticed and worked around in the file, one line each.",
        ),
    ),
    key=("source_sha256", "dataset"),
    required=("dataset", "event_count", "panel", "compensation_source"),
)

FLOW_POPULATIONS = Table(
    name="flow_populations",
    description="One row per FCS dataset x gated population: counts, percentages, cells/µL.",
    assay_columns=(
        Column("dataset", i32, "Which dataset of the FCS file, counting from 1."),
        Column("panel", s, "The staining panel of the tube."),
        Column("population", s, "The population's name, e.g. CAR+ or CD4+ TCM."),
        Column(
            "gate_path",
            s,
            "The population's full path in the gating hierarchy, e.g. "
            "lymphocytes/singlets/live/CD3pos.",
        ),
        Column("parent", s, "The population it was gated from."),
        Column("count", i64, "Events in the population.", "events"),
        Column("parent_count", i64, "Events in the parent population.", "events"),
        Column("pct_parent", f64, "Percentage of the parent population.", "%"),
        Column("pct_total", f64, "Percentage of all events.", "%"),
        Column(
            "cells_per_ul",
            f64,
            "Absolute count from the tube's counting beads; empty without beads.",
            "cells/µL",
        ),
    ),
    key=("source_sha256", "dataset", "gate_path"),
    required=("dataset", "population", "gate_path", "count"),
)

FLOW_MFI = Table(
    name="flow_mfi",
    description="One row per FCS dataset x population x marker: median fluorescence.",
    assay_columns=(
        Column("dataset", i32, "Which dataset of the FCS file, counting from 1."),
        Column("population", s, "The population's name."),
        Column("gate_path", s, "The population's full path in the gating hierarchy."),
        Column("marker", s, "The marker (antigen) measured, e.g. PD-1."),
        Column("channel", s, "The detector channel the marker was read on ($PnN)."),
        Column(
            "median_compensated",
            f64,
            "Median fluorescence intensity after compensation.",
            "fluorescence units",
        ),
        Column(
            "median_transformed",
            f64,
            "Median on the gating transform's scale (e.g. logicle).",
            "transformed units",
        ),
        Column("transform", s, "The transform of that scale, e.g. logicle."),
    ),
    key=("source_sha256", "dataset", "gate_path", "marker"),
    required=("dataset", "population", "gate_path", "marker", "channel"),
)

CBA_CURVES = Table(
    name="cba_curves",
    description="One row per bead-array plate x analyte: 4PL/5PL standard curve, recovery, "
    "LLOQ, ULOQ and verdict.",
    partition_by=(),
    assay_columns=(
        Column("run_id", s, "The plate (run), as the export names it."),
        Column(
            "instrument_format",
            s,
            "The export format the file was read as, e.g. fcap-array, legendplex, xponent.",
        ),
        Column(
            "analyte",
            s,
            "Canonical analyte name (e.g. IFN-γ), or the exported name when "
            "the vocabulary does not know it.",
        ),
        Column("analyte_as_exported", s, "The analyte name as written in the export."),
        Column(
            "analyte_recognised",
            b,
            "False when the vocabulary does not know the exported "
            "name (map it with [cba] analyte_aliases).",
        ),
        Column("model", s, "The curve fitted: 4PL, 5PL or NONE."),
        Column("param_a", f64, "Fitted response at zero concentration.", "MFI"),
        Column("param_b", f64, "Fitted slope factor."),
        Column("param_c", f64, "Fitted inflection concentration.", "pg/mL"),
        Column("param_d", f64, "Fitted response at infinite concentration.", "MFI"),
        Column("param_g", f64, "Fitted asymmetry (5PL; 1 for 4PL)."),
        Column("r_squared", f64, "Coefficient of determination of the fit."),
        Column("n_standards", i32, "Standards on the curve.", "standards"),
        Column(
            "n_standards_passed",
            i32,
            "Standards whose back-calculated recovery is within the lab's limits.",
            "standards",
        ),
        Column("dilution_factor", f64, "Dilution factor between successive standards."),
        Column(
            "recovery_json",
            s,
            "Per standard, as JSON: expected concentration, "
            "back-calculated concentration, recovery % and whether it passed.",
        ),
        Column("lloq_pg_ml", f64, "Lower limit of quantification.", "pg/mL"),
        Column("uloq_pg_ml", f64, "Upper limit of quantification.", "pg/mL"),
        Column("verdict", s, "The curve's verdict: PASS or FAIL."),
        Column(
            "verdict_reason",
            s,
            "Why the curve failed, e.g. the standard that is off and by what factor.",
        ),
    ),
    key=("run_id", "analyte"),
    required=("run_id", "analyte", "analyte_recognised", "model", "verdict"),
)

CYTOKINES = Table(
    name="cytokines",
    description="One row per sample x analyte: MFI, concentration in pg/mL, censoring.",
    assay_columns=(
        Column("run_id", s, "The plate (run) the sample was measured on."),
        Column("sample_name", s, "The sample name written in the export."),
        Column("analyte", s, "Canonical analyte name, or the exported name when not recognised."),
        Column(
            "analyte_recognised",
            b,
            "False when kept under the exported name; such rows "
            "are left out of the derived tables.",
        ),
        Column("n_replicates", i32, "Replicate wells with a measurement.", "wells"),
        Column("mfi", f64, "Mean of the replicates' median fluorescence intensity.", "MFI"),
        Column("mfi_cv_pct", f64, "Coefficient of variation of the replicates' MFI.", "%"),
        Column(
            "sample_dilution",
            f64,
            "How much the sample was diluted before the assay "
            "(concentrations are corrected for it).",
            "fold",
        ),
        Column(
            "concentration_pg_ml",
            f64,
            "Concentration in the undiluted sample; empty when censored.",
            "pg/mL",
        ),
        Column(
            "censoring",
            s,
            "What the value is: none (quantified), below_lloq, above_uloq, "
            "not_detected (the vendor's ND) or not_measured.",
        ),
        Column(
            "censor_limit_pg_ml",
            f64,
            "The limit (x dilution) a censored value is bounded by.",
            "pg/mL",
        ),
        Column("reported_value", s, 'The vendor software\'s own value as written, e.g. "< 3.2".'),
        Column(
            "curve_verdict",
            s,
            "The verdict of the analyte's curve on this plate (see cba_curves.verdict).",
        ),
    ),
    key=("run_id", "sample_name", "analyte"),
    required=("run_id", "sample_name", "analyte", "analyte_recognised", "censoring"),
)

VALIDATION_RESULTS = Table(
    name="validation_results",
    description="One row per source file x table x expectation: what Great Expectations found.",
    partition_by=(),
    assay_columns=(
        Column("table_name", s, "The table the expectation was checked on."),
        Column("suite", s, "The Great Expectations suite it belongs to."),
        Column("expectation", s, "The expectation (rule) checked."),
        Column("column_name", s, "The column it checks; empty for a whole-table rule."),
        Column("success", b, "Whether the rows met it."),
        Column("unexpected_count", i64, "Rows that did not meet it.", "rows"),
        Column("details", s, "What failed, with examples of the unexpected values."),
        Column("validated_at", TIMESTAMP, "When the check ran.", "UTC"),
    ),
    key=("source_sha256", "table_name", "expectation", "column_name"),
    required=("table_name", "suite", "expectation", "success"),
)

INGEST_LOG = Table(
    name="ingest_log",
    description="The ledger exported after each run: every file received, its status and why.",
    partition_by=(),
    assay_columns=(
        Column("original_name", s, "The file's name as it arrived in the inbox."),
        Column("size_bytes", i64, "The file's size.", "bytes"),
        Column("kind", s, "The assay recognised from the content: flow, qpcr, cba or manifest."),
        Column("instrument_format", s, "The vendor format recognised."),
        Column("run_identity", s, "The plate or run identity a corrected re-export supersedes by."),
        Column(
            "status",
            s,
            "What happened to the file: received, processing, ingested, quarantined or superseded.",
        ),
        Column("reason", s, "Why it was quarantined or failed, and what to do."),
        Column("warnings", s, "What was noticed but did not stop the file."),
        Column("flow_run_id", s, "The Prefect flow run that processed it."),
        Column("superseded_by", s, "SHA-256 of the file that replaced it."),
        Column("received_at", TIMESTAMP, "When the file was first received.", "UTC"),
        Column("updated_at", TIMESTAMP, "When its status last changed.", "UTC"),
        Column(
            "resolved_by",
            s,
            "For a run quarantined because it failed QC: SHA-256 of the later run that passed "
            "with its samples (the file stays in quarantine).",
        ),
    ),
    key=("source_sha256",),
    required=("original_name", "status"),
)

# --- derived tables (pipelines/derived): recomputed per patient from the curated tables ---------
# `source_sha256` of a derived row is the derivation's identity: a hash of the contributing source
# files' hashes; `derived_from` lists those source hashes (comma-separated, sorted).

DERIVED_FROM = Column(
    "derived_from", s, "The SHA-256 of every source file the row was computed from, "
    "comma-separated."
)  # fmt: skip

CAR_KINETICS = Table(
    name="car_kinetics",
    description="One row per patient: non-compartmental CAR-T expansion and persistence.",
    partition_by=("patient_id",),
    derived=True,
    assay_columns=(
        Column(
            "cmax_copies_per_ug",
            f64,
            "Peak transgene level (quantified values only).",
            "copies/µg gDNA",
        ),
        Column("tmax_day", i32, "Study day of the peak.", "days"),
        Column(
            "auc_0_28",
            f64,
            "Area under the copies curve from day 0 to 28 (linear-up / log-down trapezoids).",
            "copies/µg x day",
        ),
        Column(
            "auc_0_28_end_day",
            f64,
            "Day the AUC ends: 28, or the last quantifiable day when earlier.",
            "days",
        ),
        Column("tlast_day", i32, "Last study day with a quantified value.", "days"),
        Column("clast_copies_per_ug", f64, "The value at tlast_day.", "copies/µg gDNA"),
        Column(
            "loq_copies_per_ug",
            f64,
            "The limit of quantification on the same scale.",
            "copies/µg gDNA",
        ),
        Column("n_qpcr_samples", i32, "qPCR samples of the patient considered.", "samples"),
        Column(
            "n_qpcr_below_loq",
            i32,
            "Post-infusion samples below the LOQ or not detected.",
            "samples",
        ),
        Column(
            "qpcr_not_measured_json",
            s,
            "Samples that are no data point, as JSON: timepoint, day and reason.",
        ),
        Column(
            "last_detected_day",
            i32,
            "Last day the transgene was quantified or detected below the LOQ.",
            "days",
        ),
        Column("persistence_status", s, "persisting, lost, not_expanded or no_data."),
        Column(
            "persistence_lost_day", i32, "First not-detected day after the last detection.", "days"
        ),
        Column(
            "persistence_json",
            s,
            "Each timepoint after day 28, as JSON: day, result and copies/µg.",
        ),
        Column(
            "cmax_car_cells_per_ul",
            f64,
            "Peak CAR+ T cells in blood by flow cytometry.",
            "cells/µL",
        ),
        Column("tmax_car_cells_day", i32, "Study day of that peak.", "days"),
        Column(
            "auc_0_28_car_cells_per_ul",
            f64,
            "Area under the CAR+ cells/µL curve from day 0 to 28.",
            "cells/µL x day",
        ),
        Column("tlast_car_cells_day", i32, "Last study day with CAR+ cells quantified.", "days"),
        Column("blq_handling", s, "The rules applied to values below the LOQ, in words."),
        DERIVED_FROM,
    ),
    key=("patient_id",),
    required=("n_qpcr_samples", "persistence_status", "blq_handling", "derived_from"),
)

B_CELL_APLASIA = Table(
    name="b_cell_aplasia",
    description="One row per patient x timepoint: CD19+ B cells and B-cell aplasia status.",
    partition_by=("patient_id",),
    derived=True,
    assay_columns=(
        Column("collection_date", d32, "When the sample was drawn, from the manifest."),
        Column("b_cells_per_ul", f64, "CD19+ B cells in blood.", "cells/µL"),
        Column(
            "b_cells_pct_of_lymphocytes", f64, "CD19+ B cells as a percentage of lymphocytes.", "%"
        ),
        Column(
            "threshold_cells_per_ul", f64, "Aplasia threshold on the absolute count.", "cells/µL"
        ),
        Column("threshold_pct_of_lymphocytes", f64, "Aplasia threshold on the percentage.", "%"),
        Column("aplasia", b, "Whether B cells are below the threshold (B-cell aplasia)."),
        Column("aplasia_basis", s, "Which measure decided: cells_per_ul or pct_of_lymphocytes."),
        Column("aplasia_onset_day", i32, "First study day of the current aplasia.", "days"),
        Column("aplasia_onset_timepoint", s, "The visit of that first day."),
        Column("aplasia_onset_date", d32, "The collection date of that visit."),
        Column(
            "aplasia_days_so_far",
            i32,
            "Days from onset to this timepoint while aplasia lasts; the episode's length "
            "from recovery on.",
            "days",
        ),
        Column(
            "recovery_day", i32, "First study day B cells were back above the threshold.", "days"
        ),
        Column("recovery_timepoint", s, "The visit of recovery."),
        Column("recovery_date", d32, "The collection date of recovery."),
        DERIVED_FROM,
    ),
    key=("patient_id", "timepoint"),
    required=("aplasia", "aplasia_basis", "derived_from"),
)

CYTOKINE_FOLD_CHANGES = Table(
    name="cytokine_fold_changes",
    description="One row per patient x timepoint x analyte: fold change over the patient's "
    "baseline.",
    partition_by=("patient_id",),
    derived=True,
    assay_columns=(
        Column("analyte", s, "Canonical analyte name."),
        Column(
            "concentration_pg_ml",
            f64,
            "The concentration, or its censoring limit when censored.",
            "pg/mL",
        ),
        Column("censoring", s, "As in cytokines.censoring."),
        Column(
            "baseline_pg_ml",
            f64,
            "The patient's baseline (BL, else SCREEN) concentration.",
            "pg/mL",
        ),
        Column("baseline_censoring", s, "Censoring of the baseline value."),
        Column("fold_change", f64, "Concentration divided by baseline.", "fold"),
        Column(
            "fold_change_bound",
            s,
            "How exact the fold change is, given censoring: exact, at_least, at_most or unknown.",
        ),
        DERIVED_FROM,
    ),
    key=("patient_id", "timepoint", "analyte"),
    required=("analyte", "censoring", "fold_change_bound", "derived_from"),
)

CRS_SIGNALS = Table(
    name="crs_signals",
    description="One row per patient x timepoint x rule: outcome of a cytokine early-warning "
    "rule of pipelines/rules/crs_rules.toml (research use; not a clinical decision).",
    partition_by=("patient_id",),
    derived=True,
    assay_columns=(
        Column("rule_id", s, "The rule's identifier in the rules file."),
        Column("rule_title", s, "The rule in words."),
        Column("rule_kind", s, "fold_change (over baseline) or concentration (absolute)."),
        Column("rule_source", s, "The publication the rule comes from."),
        Column("window_first_day", i32, "First study day the rule applies to.", "days"),
        Column("window_last_day", i32, "Last study day the rule applies to.", "days"),
        Column("in_window", b, "Whether this timepoint is inside the rule's window."),
        Column("analytes_considered", s, "The analytes the rule looks at, comma-separated."),
        Column("analytes_meeting", s, "Those meeting the rule's threshold, comma-separated."),
        Column("n_analytes_meeting", i32, "How many met it.", "analytes"),
        Column("alert", b, "Whether the rule fires at this timepoint."),
        Column("evidence", s, "The values behind the outcome, in words."),
        Column("notice", s, "The use notice: research use; not a clinical decision."),
        DERIVED_FROM,
    ),
    key=("patient_id", "timepoint", "rule_id"),
    required=("rule_id", "rule_source", "alert", "evidence", "notice", "derived_from"),
)

CRS_GRADES = Table(
    name="crs_grades",
    description="One row per patient x day of clinical observations "
    "(lab/clinical/crs_observations.csv): ASTCT 2019 CRS grade with its scale.",
    partition_by=("patient_id",),
    derived=True,
    assay_columns=(
        Column("observation_date", d32, "The day observed."),
        Column("temperature_c", f64, "Highest temperature that day.", "°C"),
        Column("fever", b, "Temperature of 38 °C or more."),
        Column("hypotension", s, "none, fluids, one_vasopressor or multiple_vasopressors."),
        Column("oxygen_support", s, "none, low_flow, high_flow or positive_pressure."),
        Column("crs_grade", i32, "Cytokine release syndrome grade, 0 to 4.", "grade"),
        Column("grade_scale", s, "The grading scale used, e.g. ASTCT 2019."),
        Column("grade_basis", s, "Which observation set the grade."),
        Column("notice", s, "The use notice: research use; not a clinical decision."),
        DERIVED_FROM,
    ),
    key=("patient_id", "study_day"),
    required=("fever", "hypotension", "oxygen_support", "crs_grade", "grade_scale", "derived_from"),
)

NOTICE_COLUMN = Column("notice", s, "The use notice: research use; not a clinical decision.")
MODEL_VERSION = Column(
    "model_version", s, "The model: its kind and a hash of what its fit saw (inputs, graded "
    "patients and their outcomes, settings); changes whenever a refit sees other data."
)  # fmt: skip
OUTCOME_DEFINITION = Column(
    "outcome_definition", s, "What counted as severe CRS and when an outcome is known "
    "([derived] forecast_severe_grade, forecast_follow_up_days)."
)  # fmt: skip

CRS_FORECASTS = Table(
    name="crs_forecasts",
    description="One row per patient x early timepoint (study days 0-3 by default): forecast "
    "probability of severe CRS from samples up to that timepoint (research use; not a clinical "
    "decision).",
    partition_by=(),
    derived=True,
    assay_columns=(
        Column("probability_severe", f64, "Forecast probability of severe CRS; empty when no "
               "model was fitted (see note).", "probability"),
        Column("forecast_basis", s, "leave_one_patient_out (a graded patient: the model never saw "
               "its outcome) or all_graded_patients (a patient whose outcome is not known yet)."),
        Column("status", s, "forecast, or not_fitted when too few outcomes are known."),
        Column("note", s, "fitted, or why no model was fitted."),
        Column("samples_used", s, "The timepoints whose samples the inputs came from, "
               "comma-separated: none after this row's study day."),
        Column("inputs_used", s, "The model's inputs this patient had, comma-separated."),
        Column("inputs_missing", s, "The model's inputs this patient lacked (they contribute "
               "nothing), comma-separated."),
        Column("inputs_bounded", s, "Inputs that are censored bounds, with which way (at most, "
               "at least) and the timepoint."),
        OUTCOME_DEFINITION,
        Column("outcome_known", b, "Whether the patient's outcome counts (graded)."),
        Column("severe_crs", b, "The observed outcome once known."),
        Column("severe_onset_day", i32, "First study day of severe CRS.", "days"),
        MODEL_VERSION,
        NOTICE_COLUMN,
        DERIVED_FROM,
    ),
    key=("patient_id", "timepoint"),
    required=("status", "note", "outcome_definition", "outcome_known", "model_version", "notice",
              "derived_from"),
)  # fmt: skip

CRS_MODEL_CARD = Table(
    name="crs_model_card",
    description="One row per forecast day of the early window (timepoint, study_day): the CRS "
    "forecast model, the patients it learned from, its inputs and its leave-one-patient-out "
    "performance.",
    partition_by=(),
    derived=True,
    assay_columns=(
        MODEL_VERSION,
        Column("model_kind", s, "The kind of model, in words."),
        Column("penalty_c", f64, "Inverse L2 penalty strength ([derived] forecast_penalty_c)."),
        Column("status", s, "fitted or not_fitted."),
        Column("note", s, "fitted, or why no model was fitted."),
        OUTCOME_DEFINITION,
        Column("n_patients", i32, "Graded patients with inputs by this day.", "patients"),
        Column("n_severe", i32, "Of them, with severe CRS (events).", "patients"),
        Column("n_non_severe", i32, "Of them, without.", "patients"),
        Column("min_severe", i32, "Severe patients needed to fit.", "patients"),
        Column("min_non_severe", i32, "Non-severe patients needed to fit.", "patients"),
        Column("inputs", s, "The model's inputs, comma-separated."),
        Column("coefficients_json", s, "Coefficients per standardised input of the model fitted "
               "on every graded patient, largest effect first, as JSON."),
        Column("lopo_auc", f64, "Area under the ROC curve of the leave-one-patient-out "
               "forecasts."),
        Column("auc_ci_low", f64, "Lower end of its bootstrap 95 % interval (patients "
               "resampled)."),
        Column("auc_ci_high", f64, "Upper end of that interval."),
        Column("brier_score", f64, "Mean squared difference between forecast and outcome "
               "(0 is perfect)."),
        Column("reliability_json", s, "Calibration: per forecast bin the patients, mean forecast "
               "and observed share with severe CRS, as JSON."),
        NOTICE_COLUMN,
    ),
    key=("study_day",),
    required=("model_version", "status", "note", "n_patients", "n_severe", "notice"),
)  # fmt: skip

CRS_RULE_PERFORMANCE = Table(
    name="crs_rule_performance",
    description="One row per CRS rule of the rule file, and one for the forecast model: "
    "sensitivity, specificity and lead time on the model card's patients and early window.",
    partition_by=(),
    derived=True,
    assay_columns=(
        Column("rule_id", s, "The rule's identifier, or forecast_model."),
        Column("rule_title", s, "The rule in words."),
        Column("rule_source", s, "The publication the rule comes from, or the model kind."),
        Column("method", s, "rule or model."),
        Column("window_first_day", i32, "First study day of the early window judged.", "days"),
        Column("window_last_day", i32, "Last study day of the early window judged.", "days"),
        Column("n_patients", i32, "Graded patients judged.", "patients"),
        Column("n_severe", i32, "Of them, with severe CRS.", "patients"),
        Column("true_positives", i32, "Severe patients alerted in the window on or before onset.",
               "patients"),
        Column("false_negatives", i32, "Severe patients not alerted by their onset.", "patients"),
        Column("false_positives", i32, "Non-severe patients alerted in the window.", "patients"),
        Column("true_negatives", i32, "Non-severe patients not alerted.", "patients"),
        Column("sensitivity", f64, "true_positives / severe patients.", "fraction"),
        Column("specificity", f64, "true_negatives / non-severe patients.", "fraction"),
        Column("median_lead_time_days", f64, "Median of onset day minus first alert day over "
               "the true positives.", "days"),
        Column("lead_times_json", s, "Lead time of each true positive patient, as JSON."),
        Column("note", s, "For the model: fitted, or why it was not."),
        Column("model_version", s, "For the model: the version judged."),
        NOTICE_COLUMN,
    ),
    key=("rule_id",),
    required=("rule_id", "method", "n_patients", "n_severe", "notice"),
)  # fmt: skip

QC_TRENDS = Table(
    name="qc_trends",
    description="One row per QC control series x run: Levey-Jennings statistics and Westgard "
    "rules.",
    partition_by=(),
    derived=True,
    assay_columns=(
        Column(
            "control", s, "The series: assay, target or analyte and metric, e.g. qpcr:CAR:slope."
        ),
        Column("assay", s, "qpcr, cba or flow."),
        Column("metric", s, "The QC figure followed, e.g. slope or mean_recovery_pct."),
        Column("unit", s, "The unit of value."),
        Column("run_id", s, "The run (plate) the value comes from."),
        Column("run_time", TIMESTAMP, "When the run was made.", "UTC"),
        Column("run_index", i32, "The run's place in the series, from 1."),
        Column("value", f64, "The QC figure of this run, in unit."),
        Column("target_mean", f64, "The series' target mean, in unit."),
        Column("target_sd", f64, "The series' target standard deviation, in unit."),
        Column(
            "limits_basis",
            s,
            "Where mean and SD come from: settings, series (the first "
            "runs) or insufficient_history.",
        ),
        Column("z_score", f64, "(value - target_mean) / target_sd.", "SD"),
        Column(
            "westgard_violations",
            s,
            "Westgard rules violated (1-3s, 2-2s, R-4s, 4-1s, "
            "10-x), comma-separated; empty when none.",
        ),
        Column("westgard_status", s, "in_control, warning, reject or not_evaluated."),
        Column(
            "run_verdict",
            s,
            "The run's own QC verdict (qPCR: PASS, FAIL or NO_CURVE; bead arrays: PASS or FAIL; "
            "empty for flow): a failed run is charted and judged, but never sets the limits.",
        ),
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
        CRS_FORECASTS,
        CRS_MODEL_CARD,
        CRS_RULE_PERFORMANCE,
        QC_TRENDS,
    )
}

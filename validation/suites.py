"""The Great Expectations suite of every table, built from its schema and the QC thresholds the
caller hands in.

Generic rules come from `schemas.py` (exact column list, required columns not null, key
uniqueness, identity values safe and in the trial's vocabulary, `timepoints.py`); table rules add
ranges, allowed values and invariants such as the amplification-efficiency window. Acceptance is
decided in the assay libraries: a qPCR run that failed QC is valid data (its figures are kept in
`qpcr_runs`, verdict FAIL, and the ingest quarantines the file with the QC reason), and the suite
checks that a run marked PASS meets the same window (`thresholds.py`), so a library bug is caught.
No assay library is imported here. Each expectation carries a `meta.rule` sentence, which is what
a technician reads when a batch is quarantined.
"""

from __future__ import annotations

import sys

import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.row_conditions import Column, Condition

from validation.schemas import (
    BELOW_LOQ,
    CAR_COPIES_RESULTS,
    NOT_DETECTED,
    NOT_MEASURED,
    PROVENANCE_COLUMNS,
    QUANTIFIED,
    SAFE_ID_PATTERN,
    TABLES,
    Table,
)
from validation.thresholds import QpcrRunThresholds, SuiteThresholds
from validation.timepoints import TIMEPOINT_PATTERN

FINITE_MAX = sys.float_info.max
"""Upper bound that only infinity exceeds: `between 0 and FINITE_MAX` means finite, not negative."""


def _rule(expectation: Expectation, rule: str) -> Expectation:
    expectation.meta = {"rule": rule}
    return expectation


def generic_expectations(table: Table) -> list[Expectation]:
    expectations: list[Expectation] = [
        _rule(
            gxe.ExpectTableColumnsToMatchOrderedList(column_list=table.column_names),
            f"the columns are exactly those of {table.name}",
        )
    ]
    not_null = [c.name for c in PROVENANCE_COLUMNS] + list(table.required)
    not_null = [*table.partition_by, *not_null]
    for column in not_null:
        expectations.append(
            _rule(gxe.ExpectColumnValuesToNotBeNull(column=column), f"{column} is always filled in")
        )
    if len(table.key) > 1:
        expectations.append(
            _rule(
                gxe.ExpectCompoundColumnsToBeUnique(column_list=list(table.key)),
                f"one row per {' x '.join(table.key)}",
            )
        )
    else:
        expectations.append(
            _rule(
                gxe.ExpectColumnValuesToBeUnique(column=table.key[0]), f"{table.key[0]} is unique"
            )
        )
    if "patient_id" in table.column_names:
        expectations.append(
            _rule(
                gxe.ExpectColumnValuesToMatchRegex(column="patient_id", regex=SAFE_ID_PATTERN),
                "patient_id is a safe identifier",
            )
        )
        expectations.append(
            _rule(
                gxe.ExpectColumnValuesToMatchRegex(column="timepoint", regex=TIMEPOINT_PATTERN),
                "timepoint is in the trial's vocabulary",
            )
        )
    return expectations


def _between(column: str, low: float | None, high: float | None, rule: str, **kw) -> Expectation:
    return _rule(
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high, **kw), rule
    )


def _in_set(column: str, values: list, rule: str, where: Condition | None = None) -> Expectation:
    return _rule(
        gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values, row_condition=where), rule
    )


def _null_where(column: str, where: Condition, rule: str) -> Expectation:
    return _rule(gxe.ExpectColumnValuesToBeNull(column=column, row_condition=where), rule)


def _filled_where(column: str, where: Condition, rule: str) -> Expectation:
    return _rule(gxe.ExpectColumnValuesToNotBeNull(column=column, row_condition=where), rule)


def car_copies_expectations() -> list[Expectation]:
    """The result contract of `car_copies` (`schemas.CAR_COPIES_RESULTS`): four results, a number
    only where there is one, a reason wherever the result is not a plain quantification."""
    result = Column("result")
    without_number = result.is_in([NOT_DETECTED, NOT_MEASURED])
    return [
        _in_set(
            "result",
            list(CAR_COPIES_RESULTS),
            f"result is one of {', '.join(CAR_COPIES_RESULTS)}",
        ),
        _between(
            "copies_per_reaction", 0, FINITE_MAX, "copies per reaction are finite and not negative"
        ),
        _between("copies_per_ug", 0, FINITE_MAX, "copies per ug are finite and not negative"),
        _null_where(
            "copies_per_reaction", result == NOT_DETECTED, "not detected has no copy number, not 0"
        ),
        _null_where(
            "copies_per_ug", without_number, "not detected or not measured has no copies per ug"
        ),
        _filled_where(
            "copies_per_ug",
            result.is_in([QUANTIFIED, BELOW_LOQ]),
            "quantified and below-LOQ results carry their copies per ug",
        ),
        _filled_where(
            "result_reason", result != QUANTIFIED, "every result but quantified says why"
        ),
        _null_where("result_reason", result == QUANTIFIED, "a quantified result needs no reason"),
        _in_set(
            "below_loq",
            [True],
            "below_loq is true for below-LOQ and not-detected results",
            result.is_in([BELOW_LOQ, NOT_DETECTED]),
        ),
        _in_set(
            "plate_qc_verdict",
            ["PASS"],
            "results other than not_measured come only from plates that passed QC",
            result != NOT_MEASURED,
        ),
        _between("cq_sd", 0, None, "replicate SD is not negative"),
        _a_at_least_b("n_replicates", "n_amplified", "amplified replicates <= replicates"),
        _between("dna_input_ng", 0, None, "DNA input is positive", strict_min=True),
    ]


def qpcr_runs_expectations(window: QpcrRunThresholds) -> list[Expectation]:
    """Allowed values of a run's verdicts, and the QC window a run marked PASS lies in."""
    passed = Column("qc_verdict") == "PASS"
    # one expectation per type and column: validation_results is keyed by them
    return [
        _in_set(
            "qc_verdict",
            ["PASS", "FAIL", "NO_CURVE"],
            "the QC verdict is PASS, FAIL or NO_CURVE",
        ),
        _between(
            "efficiency_pct",
            window.efficiency_min_pct,
            window.efficiency_max_pct,
            f"a run that passed QC has its amplification efficiency within "
            f"{window.efficiency_min_pct:g}-{window.efficiency_max_pct:g} %",
            row_condition=passed,
        ),  # fmt: skip
        _between(
            "r_squared",
            window.r_squared_min,
            1.0,
            f"a run that passed QC has its standard curve R2 >= {window.r_squared_min:g}",
            row_condition=passed,
        ),
        _between(
            "ntc_amplified",
            0,
            window.ntc_max_amplified,
            f"a run that passed QC has at most {window.ntc_max_amplified} no-template "
            "control(s) amplified",
            row_condition=passed,
        ),
        _in_set("ntc_verdict", ["PASS", "FAIL", "NONE"], "the NTC verdict is PASS, FAIL or NONE"),
        _in_set("role", ["car", "reference", "other"], "target role is known"),
    ]


def _a_at_least_b(a: str, b: str, rule: str) -> Expectation:
    return _rule(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"
        ),
        rule,
    )


def table_expectations(name: str, thresholds: SuiteThresholds) -> list[Expectation]:
    """The table-specific rules; thresholds are the ones handed in by the caller."""
    if name == "qpcr_wells":
        return [
            _in_set(
                "task", ["UNKNOWN", "STANDARD", "NTC", "NAC", "OTHER"], "task is a known well task"
            ),
            _between("cq", 0, 60, "Cq lies between 0 and 60 cycles"),
            _between(
                "standard_quantity", 0, None, "standard quantities are positive", strict_min=True
            ),
        ]
    if name == "qpcr_runs":
        return qpcr_runs_expectations(thresholds.qpcr_runs)
    if name == "car_copies":
        return car_copies_expectations()
    if name == "flow_samples":
        return [_between("event_count", 1, None, "the file holds events")]
    if name == "flow_populations":
        return [
            _between("pct_parent", 0, 100, "% of parent lies in 0-100"),
            _between("pct_total", 0, 100, "% of total lies in 0-100"),
            _between("count", 0, None, "counts are not negative"),
            _a_at_least_b("parent_count", "count", "a population is no larger than its parent"),
            _between("cells_per_ul", 0, None, "cells/uL are not negative"),
        ]
    if name == "cba_curves":
        return [
            _in_set("model", ["4PL", "5PL", "NONE"], "the curve model is known"),
            _in_set("verdict", ["PASS", "FAIL"], "every curve has a verdict"),
            _a_at_least_b("uloq_pg_ml", "lloq_pg_ml", "LLOQ <= ULOQ"),
        ]
    if name == "cytokines":
        return [
            _in_set(
                "censoring",
                ["none", "below_lloq", "above_uloq", "not_detected", "not_measured"],
                "censoring is one of none, below_lloq, above_uloq, not_detected, not_measured",
            ),  # fmt: skip
            _between("concentration_pg_ml", 0, None, "concentrations are not negative"),
        ]
    if name == "crs_forecasts":
        return [
            _between("probability_severe", 0, 1, "forecast probabilities lie in 0-1"),
            _in_set("status", ["forecast", "not_fitted"], "status is forecast or not_fitted"),
        ]
    if name == "crs_model_card":
        return [
            _between("lopo_auc", 0, 1, "the AUC lies in 0-1"),
            _between("brier_score", 0, 1, "the Brier score lies in 0-1"),
            _a_at_least_b("auc_ci_high", "auc_ci_low", "the AUC interval is not reversed"),
        ]
    if name == "crs_rule_performance":
        return [
            _between("sensitivity", 0, 1, "sensitivity lies in 0-1"),
            _between("specificity", 0, 1, "specificity lies in 0-1"),
        ]
    if name == "car_kinetics":
        return [
            _between("cmax_copies_per_ug", 0, None, "Cmax is not negative"),
            _between("auc_0_28", 0, None, "AUC0-28 is not negative"),
            _between("tmax_day", 0, None, "Tmax is on or after the infusion day"),
            _a_at_least_b("tlast_day", "tmax_day", "Tlast is not before Tmax"),
            _a_at_least_b(
                "last_detected_day", "tlast_day", "the last detection is not before Tlast"
            ),
            _a_at_least_b("cmax_copies_per_ug", "clast_copies_per_ug", "Clast <= Cmax"),
            _a_at_least_b("n_qpcr_samples", "n_qpcr_below_loq", "BLQ samples <= samples"),
            _in_set(
                "persistence_status",
                ["persisting", "lost", "not_expanded", "no_data"],
                "persistence status is persisting, lost, not_expanded or no_data",
            ),  # fmt: skip
            _between("cmax_car_cells_per_ul", 0, None, "CAR+ cells/uL are not negative"),
        ]
    if name == "b_cell_aplasia":
        return [
            _between("b_cells_per_ul", 0, None, "B cells/uL are not negative"),
            _between("b_cells_pct_of_lymphocytes", 0, 100, "B cells % of lymphocytes in 0-100"),
            _in_set(
                "aplasia_basis", ["cells_per_ul", "pct_of_lymphocytes"], "aplasia basis is known"
            ),
            _a_at_least_b("recovery_day", "aplasia_onset_day", "recovery follows onset"),
            _between("aplasia_days_so_far", 0, None, "aplasia duration is not negative"),
        ]
    if name == "cytokine_fold_changes":
        return [
            _between("fold_change", 0, None, "fold changes are not negative"),
            _in_set(
                "fold_change_bound",
                ["exact", "at_least", "at_most", "unknown"],
                "fold-change bound is exact, at_least, at_most or unknown",
            ),  # fmt: skip
        ]
    if name == "crs_signals":
        return [
            _in_set("rule_kind", ["fold_change", "concentration"], "the rule kind is known"),
            _a_at_least_b(
                "window_last_day", "window_first_day", "a rule window ends after it starts"
            ),
            _between("n_analytes_meeting", 0, None, "analyte counts are not negative"),
        ]
    if name == "crs_grades":
        return [
            _between("crs_grade", 0, 4, "CRS grades lie in 0-4"),
            _in_set(
                "hypotension",
                ["none", "fluids", "one_vasopressor", "multiple_vasopressors"],
                "hypotension is none, fluids, one_vasopressor or multiple_vasopressors",
            ),  # fmt: skip
            _in_set(
                "oxygen_support",
                ["none", "low_flow", "high_flow", "positive_pressure"],
                "oxygen support is none, low_flow, high_flow or positive_pressure",
            ),  # fmt: skip
            _between("temperature_c", 30, 45, "body temperature lies in 30-45 degC"),
        ]
    if name == "qc_trends":
        return [
            _in_set(
                "westgard_status",
                ["in_control", "warning", "reject", "not_evaluated"],
                "Westgard status is in_control, warning, reject or not_evaluated",
            ),  # fmt: skip
            _in_set("assay", ["qpcr", "cba", "flow"], "the control's assay is known"),
            _between("target_sd", 0, None, "control SD is positive", strict_min=True),
        ]
    return []


def suite_expectations(name: str, thresholds: SuiteThresholds) -> list[Expectation]:
    return generic_expectations(TABLES[name]) + table_expectations(name, thresholds)

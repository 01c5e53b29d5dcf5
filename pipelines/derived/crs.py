"""Cytokine release syndrome (CRS) signals: fold changes over baseline, rule alerts, ASTCT grades.

**Research use; not a clinical decision.** The rules come from a rule file (data, not code), each
citing its published source; a lab changes or adds rules by editing that file.

Censored concentrations are bounds, and fold changes keep track of which way:

- a value below the LLOQ is at most the LLOQ, one above the ULOQ at least the ULOQ (`not_detected`
  counts as below its limit);
- a baseline below the LLOQ is taken *at* the LLOQ, its upper bound, so the fold change computed
  from it is a lower bound (`at_least`): an alert on it never overstates the rise;
- a post-infusion value below the LLOQ gives an upper bound (`at_most`); when both ends are censored
  in opposite senses the fold change is `unknown` (and null when no bound exists).

A fold-change or concentration rule counts an analyte only when its value is `exact` or a lower
bound (`at_least`) that reaches the threshold.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from validation.timepoints import BASELINE, SCREENING

NOTICE = "research use; not a clinical decision"
ASTCT_2019 = "ASTCT 2019 (Lee et al., Biol Blood Marrow Transplant 2019;25:625-638)"
FEVER_C = 38.0
BASELINE_TIMEPOINTS = (BASELINE, SCREENING)
"""The patient's own baseline: the pre-lymphodepletion sample, else the screening sample."""

_DIRECTION = {"none": 0, "above_uloq": 1, "below_lloq": -1, "not_detected": -1}
_BOUND = {0: "exact", 1: "at_least", -1: "at_most"}


class RuleFileError(ValueError):
    """The rule file is missing a field or has one of the wrong kind."""


@dataclass(frozen=True)
class CrsRule:
    """One alert rule of the rule file."""

    id: str
    title: str
    kind: str  # fold_change, concentration
    source: str
    window_first_day: int
    window_last_day: int
    analytes: tuple[str, ...]
    """Analytes the rule looks at; ("*",) means every measured analyte."""
    min_analytes: int
    min_fold: float | None = None
    thresholds_pg_ml: Mapping[str, float] | None = None

    def considers(self, analyte: str) -> bool:
        return "*" in self.analytes or analyte in self.analytes


def load_rules(path: Path) -> list[CrsRule]:
    """The `[[rule]]` tables of a rule file (format: see pipelines/rules/crs_rules.toml)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise RuleFileError(f"{path}: cannot read the CRS rule file ({err})") from err
    rules = [_rule(entry, path) for entry in data.get("rule", [])]
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise RuleFileError(f"{path}: rule ids must be unique, got {ids}")
    return rules


def _rule(entry: dict, path: Path) -> CrsRule:
    where = f"{path}: rule {entry.get('id', '?')!r}"
    for key in ("id", "title", "kind", "source", "window_days"):
        if key not in entry:
            raise RuleFileError(f"{where} has no {key!r}")
    kind = entry["kind"]
    first, last = (int(d) for d in entry["window_days"])
    common = {
        "id": str(entry["id"]), "title": str(entry["title"]), "kind": kind,
        "source": str(entry["source"]), "window_first_day": first, "window_last_day": last,
        "min_analytes": int(entry.get("min_analytes", 1)),
    }  # fmt: skip
    if kind == "fold_change":
        if "min_fold" not in entry:
            raise RuleFileError(f"{where}: a fold_change rule needs 'min_fold'")
        analytes = tuple(entry.get("analytes", ["*"]))
        return CrsRule(**common, analytes=analytes, min_fold=float(entry["min_fold"]))
    if kind == "concentration":
        thresholds = entry.get("thresholds_pg_ml")
        if not isinstance(thresholds, dict) or not thresholds:
            raise RuleFileError(f"{where}: a concentration rule needs 'thresholds_pg_ml'")
        thresholds = {str(a): float(v) for a, v in thresholds.items()}
        return CrsRule(**common, analytes=tuple(thresholds), thresholds_pg_ml=thresholds)
    raise RuleFileError(f"{where}: kind must be fold_change or concentration, not {kind!r}")


# --- fold changes -------------------------------------------------------------------------------


def reported_value(row: pd.Series) -> float | None:
    """The measured concentration, or the limit a censored one is bounded by."""
    if row["censoring"] == "none":
        return row["concentration_pg_ml"]
    limit = row["censor_limit_pg_ml"]
    return None if pd.isna(limit) else float(limit)


def fold_bound(post_censoring: str, baseline_censoring: str) -> str:
    """Which way the fold change (post / baseline) is bounded, from the two censorings."""
    post = _DIRECTION.get(post_censoring, 0)
    base = -_DIRECTION.get(baseline_censoring, 0)  # a bigger baseline means a smaller fold
    if post == 0 or base == 0 or post == base:
        return _BOUND[post or base]
    return "unknown"


def usable_cytokines(cytokines: pd.DataFrame) -> pd.DataFrame:
    """The rows CRS signals may use: analytes the vocabulary recognised (an analyte kept under an
    export's unknown name is no known cytokine; rows written before the flag existed count as
    recognised) with a value or a censoring bound (`not_measured` has neither)."""
    keep = cytokines["censoring"] != "not_measured"
    if "analyte_recognised" in cytokines.columns:
        keep &= cytokines["analyte_recognised"].fillna(True).astype(bool)
    return cytokines[keep]


def per_sample_cytokines(cytokines: pd.DataFrame) -> pd.DataFrame:
    """One value per timepoint x analyte: a repeated measurement's exact value wins, else the
    tightest bound, so a re-assayed sample replaces its censored first result."""
    frame = cytokines.assign(value=cytokines.apply(reported_value, axis=1))
    frame = frame.assign(_exact=frame["censoring"] == "none")
    frame = frame.sort_values(["_exact", "processed_at"], ascending=[False, False], kind="stable")
    return frame.drop_duplicates(["timepoint", "analyte"]).drop(columns="_exact")


def fold_changes(cytokines: pd.DataFrame) -> pd.DataFrame:
    """The `cytokine_fold_changes` assay columns of one patient (empty without a baseline)."""
    usable = usable_cytokines(cytokines)
    if usable.empty:
        return pd.DataFrame()
    samples = per_sample_cytokines(usable)
    baseline_timepoint = next(
        (t for t in BASELINE_TIMEPOINTS if (samples["timepoint"] == t).any()), None
    )
    if baseline_timepoint is None:
        return pd.DataFrame()
    baseline = samples[samples["timepoint"] == baseline_timepoint].set_index("analyte")
    rows = []
    for _, sample in samples.sort_values("study_day", kind="stable").iterrows():
        if sample["analyte"] not in baseline.index:
            continue
        base = baseline.loc[sample["analyte"]]
        bound = fold_bound(sample["censoring"], base["censoring"])
        usable = pd.notna(sample["value"]) and pd.notna(base["value"]) and base["value"] > 0
        rows.append({
            "timepoint": sample["timepoint"], "study_day": sample["study_day"],
            "analyte": sample["analyte"], "concentration_pg_ml": sample["value"],
            "censoring": sample["censoring"], "baseline_pg_ml": base["value"],
            "baseline_censoring": base["censoring"],
            "fold_change": sample["value"] / base["value"] if usable else None,
            "fold_change_bound": bound if usable else "unknown",
            "derived_from": ",".join(sorted({sample["source_sha256"], base["source_sha256"]})),
        })  # fmt: skip
    return pd.DataFrame(rows)


# --- rules --------------------------------------------------------------------------------------


def _meets(row: pd.Series, rule: CrsRule) -> bool:
    if rule.kind == "fold_change":
        reliable = row["fold_change_bound"] in ("exact", "at_least")
        return reliable and pd.notna(row["fold_change"]) and row["fold_change"] >= rule.min_fold
    threshold = (rule.thresholds_pg_ml or {})[row["analyte"]]
    reliable = row["censoring"] in ("none", "above_uloq")
    value = row["concentration_pg_ml"]
    return reliable and pd.notna(value) and value >= threshold


def _describe(row: pd.Series, rule: CrsRule) -> str:
    if rule.kind == "fold_change":
        sign = {"exact": "", "at_least": ">=", "at_most": "<=", "unknown": "~"}
        return f"{row['analyte']} {sign[row['fold_change_bound']]}{row['fold_change']:.0f}-fold"
    return f"{row['analyte']} {row['concentration_pg_ml']:.4g} pg/mL"


def evaluate_rules(folds: pd.DataFrame, rules: Sequence[CrsRule]) -> pd.DataFrame:
    """The `crs_signals` assay columns: every post-baseline timepoint x rule."""
    if folds.empty:  # no baseline, or no recognised analyte: nothing to judge
        return pd.DataFrame()
    rows = []
    post = folds[~folds["timepoint"].isin(BASELINE_TIMEPOINTS)]
    for (timepoint, day), group in post.groupby(["timepoint", "study_day"], sort=False):
        for rule in rules:
            considered = group[group["analyte"].map(rule.considers)]
            meeting = (
                considered[considered.apply(_meets, axis=1, rule=rule)]
                if len(considered)
                else considered
            )
            in_window = rule.window_first_day <= day <= rule.window_last_day
            alert = bool(in_window and len(meeting) >= rule.min_analytes)
            rows.append({
                "timepoint": timepoint, "study_day": day, "rule_id": rule.id,
                "rule_title": rule.title, "rule_kind": rule.kind, "rule_source": rule.source,
                "window_first_day": rule.window_first_day,
                "window_last_day": rule.window_last_day, "in_window": in_window,
                "analytes_considered": ",".join(sorted(considered["analyte"])),
                "analytes_meeting": ",".join(sorted(meeting["analyte"])),
                "n_analytes_meeting": len(meeting), "alert": alert,
                "evidence": _evidence(rule, meeting, in_window, alert, day),
                "notice": NOTICE,
                "derived_from": ",".join(sorted({
                    h for joined in considered["derived_from"] for h in joined.split(",")
                })),
            })  # fmt: skip
    return pd.DataFrame(rows)


def _evidence(rule: CrsRule, meeting: pd.DataFrame, in_window: bool, alert: bool, day: int) -> str:
    found = "; ".join(_describe(r, rule) for _, r in meeting.iterrows()) or "no analyte"
    need = f"needs {rule.min_analytes} analyte(s)"
    if not in_window:
        return (f"day {day} is outside the rule's window (days {rule.window_first_day}-"
                f"{rule.window_last_day}); meeting the threshold: {found}")  # fmt: skip
    verdict = "ALERT" if alert else "no alert"
    return f"{verdict}: {found} ({need}); {NOTICE}"


# --- ASTCT 2019 grading from clinical observations ----------------------------------------------

OXYGEN_GRADE = {"none": 0, "low_flow": 2, "high_flow": 3, "positive_pressure": 4}
HYPOTENSION_GRADE = {"none": 0, "fluids": 2, "one_vasopressor": 3, "multiple_vasopressors": 4}
OBSERVATION_COLUMNS = ("patient_id", "study_day", "temperature_c", "hypotension", "vasopressors",
                       "oxygen_support")  # fmt: skip
_YES = {"yes", "y", "true", "1"}


def hypotension_category(hypotension: object, vasopressors: object) -> str:
    """ASTCT hypotension levels: vasopressors counted without vasopressin."""
    count = 0 if pd.isna(vasopressors) else int(vasopressors)
    if count >= 2:
        return "multiple_vasopressors"
    if count == 1:
        return "one_vasopressor"
    return "fluids" if str(hypotension).strip().lower() in _YES else "none"


def astct_grade(fever: bool, fever_masked: bool, hypotension: str, oxygen: str) -> tuple[int, str]:
    """ASTCT 2019: CRS needs fever >= 38 degC (or fever masked by antipyretics or anti-cytokine
    therapy); the grade is the more severe of hypotension and hypoxia, at least 1."""
    if not (fever or fever_masked):
        return 0, "no fever: no CRS by ASTCT 2019"
    grade = max(1, HYPOTENSION_GRADE[hypotension], OXYGEN_GRADE[oxygen])
    why = "fever" if fever else "fever masked by treatment"
    return grade, f"{why}; hypotension {hypotension}; oxygen {oxygen}"


def read_observations(path: Path) -> pd.DataFrame:
    """The lab's clinical observation CSV: one row per patient and study day (see README)."""
    frame = pd.read_csv(path, dtype={"patient_id": str})
    missing = [c for c in OBSERVATION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    oxygen = frame["oxygen_support"].fillna("none").str.strip().str.lower()
    unknown = sorted(set(oxygen) - OXYGEN_GRADE.keys())
    if unknown:
        raise ValueError(
            f"{path}: oxygen_support must be one of {list(OXYGEN_GRADE)}, got {unknown}"
        )
    return frame.assign(oxygen_support=oxygen)


def crs_grades(observations: pd.DataFrame, infusion_date: date | None) -> pd.DataFrame:
    """The `crs_grades` assay columns of one patient's observations."""
    rows = []
    for _, obs in observations.sort_values("study_day").iterrows():
        day = int(obs["study_day"])
        fever = bool(pd.notna(obs["temperature_c"]) and obs["temperature_c"] >= FEVER_C)
        masked = str(obs.get("fever_masked", "")).strip().lower() in _YES
        hypotension = hypotension_category(obs["hypotension"], obs["vasopressors"])
        grade, basis = astct_grade(fever, masked, hypotension, obs["oxygen_support"])
        rows.append({
            "timepoint": f"D{day}" if 0 <= day <= 28 else None, "study_day": day,
            "observation_date": infusion_date + timedelta(days=day) if infusion_date else None,
            "temperature_c": obs["temperature_c"], "fever": fever, "hypotension": hypotension,
            "oxygen_support": obs["oxygen_support"], "crs_grade": grade,
            "grade_scale": ASTCT_2019, "grade_basis": basis, "notice": NOTICE,
        })  # fmt: skip
    return pd.DataFrame(rows)

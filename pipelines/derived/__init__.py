"""Derived tables: how each patient is doing, recomputed from the curated tables.

`car_kinetics` (expansion and persistence), `b_cell_aplasia`, `cytokine_fold_changes`,
`crs_signals` (cytokine early-warning rules, research use only), `crs_grades` (ASTCT 2019 from
optional clinical observations), the CRS forecast learned from the trial's graded patients
(`crs_forecasts`, `crs_model_card`, `crs_rule_performance`; research use only) and `qc_trends`
(Levey-Jennings with Westgard rules). Each module is plain pandas in, pandas out;
`recompute.recompute_patients` reads the warehouse, validates and writes them, and regenerates
the reports.
"""

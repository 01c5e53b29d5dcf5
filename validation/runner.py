"""Running the suites in a Great Expectations file context inside the lab home.

One context per process (importing GX takes seconds); per table a suite, a validation definition
over a whole-dataframe batch and a checkpoint. Each run is named after the file it validates,
stored by GX, and written as a page of cartflow's own Data Docs (`validation/docs.py`: offline,
nothing fetched); `build_docs()` lists the runs in the docs' index.

A checkpoint run costs about half a second whatever the batch size, so a sweep validates each
table of all its files at once (`validate_batch`) and falls back to smaller batches, down to
single files, only when that batch fails.

Great Expectations (and `suites.py`, which builds on it) is imported when a validator first
validates, not with this module: a sweep's Dask workers only prepare files and never pay for it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from validation import docs
from validation.schemas import TABLES
from validation.thresholds import SuiteThresholds

logger = logging.getLogger(__name__)

# No usage statistics leave the lab; set before great_expectations is imported anywhere.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DATASOURCE = "cartflow"
VALIDATED_TABLES = tuple(t for t in TABLES if t not in ("validation_results", "ingest_log"))
"""Every table whose batches go through a suite before they are written."""
BATCH_DEFINITION = "whole table"
ROW_WISE_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_pair_values_a_to_be_greater_than_b",
    }
)
"""Expectations that hold for a concatenation of files only if they hold for each file: each row is
checked on its own, or (uniqueness) a subset of unique rows is unique. With `mostly` below 1 they
would not: ten files each 95 % valid can pass together while one of them is 80 % valid."""
COLUMN_LIST_EXPECTATION = "expect_table_columns_to_match_ordered_list"
"""Table-level, but it holds for a concatenation of frames with one column list exactly when it
holds for each of them, so batches are only formed of frames with identical columns."""


@dataclass
class ValidationOutcome:
    table_name: str
    success: bool
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    """One dict per expectation: the assay columns of the validation_results table."""


class Validator:
    """Validates table batches against their suites and keeps Data Docs up to date.

    `thresholds` are the lab's QC thresholds the suites check against, handed in by the caller
    (the pipeline builds them from the same settings the assay libraries decide with)."""

    def __init__(self, gx_root: Path, thresholds: SuiteThresholds) -> None:
        self.gx_root = gx_root
        self.thresholds = thresholds
        self._context = None
        self._checkpoints: dict[str, Any] = {}
        self._batchable: dict[str, bool] = {}

    @property
    def context(self):
        if self._context is None:
            self._set_up()
        return self._context

    def warm_up(self) -> None:
        """Set up the context now (ahead of the first validation); a failure is left for the
        first validation to raise, where it is reported with its file."""
        try:
            _ = self.context
        except Exception:  # noqa: BLE001
            logger.debug("validator warm-up failed", exc_info=True)

    @property
    def docs_folder(self) -> Path:
        return self.gx_root / "docs"

    @property
    def docs_index(self) -> Path:
        return self.docs_folder / docs.INDEX

    def _set_up(self) -> None:
        """Bring the project's suites, validation definitions and checkpoints up to date.

        Several processes (parallel ingest workers, the watcher, the nightly run) share one GX
        project, whose configuration files each process rewrites whole. So changes are made
        under an exclusive file lock, on a context read inside the lock, and only where a
        suite differs from what the current settings ask; every process then validates with a
        context read after the configuration settled.
        """
        import great_expectations as gx

        from validation.suites import suite_expectations

        self.gx_root.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.gx_root / ".cartflow-setup.lock"):
            context = gx.get_context(mode="file", project_root_dir=str(self.gx_root))
            _quiet_progress_bars(context)
            for table_name in VALIDATED_TABLES:
                _ensure_checkpoint(
                    context, table_name, suite_expectations(table_name, self.thresholds)
                )
        self._context = gx.get_context(mode="file", project_root_dir=str(self.gx_root))
        self._checkpoints = {}

    def _checkpoint(self, table_name: str):
        if table_name not in self._checkpoints:
            self._checkpoints[table_name] = self.context.checkpoints.get(table_name)
        return self._checkpoints[table_name]

    def validate(self, table_name: str, frame: pd.DataFrame, file_name: str) -> ValidationOutcome:
        """Run the table's suite on `frame`, the rows of `file_name`; failures are sentences a
        technician can act on."""
        return self._run(table_name, frame, [file_name])

    def validate_batch(
        self,
        table_name: str,
        frames_by_sha256: Mapping[str, pd.DataFrame],
        file_names: Mapping[str, str],
    ) -> dict[str, ValidationOutcome]:
        """Each file's outcome for one table, from as few suite runs as the files allow.

        Every expectation of `validation/suites.py` is row-wise or a uniqueness rule, plus the
        exact column list (see `ROW_WISE_EXPECTATIONS`), none with `mostly`: so when the frames,
        concatenated, pass the suite, every frame passes it on its own, with the same results
        (no unexpected rows) — each file gets a copy of the batch's results. When the batch fails
        (a bad file, or two re-exports of one run whose keys collide), it is halved and each half
        validated the same way, down to single files, which get their exact own outcome: one bad
        file among 100 costs 13 to 15 suite runs instead of 101. A table whose suite is not
        row-wise (should one be added) is validated file by file. `file_names` gives each
        file's name by its SHA-256: runs are named after their files.
        """
        if len(frames_by_sha256) > 1 and self._is_batchable(table_name):
            return self._bisect(table_name, dict(frames_by_sha256), file_names)
        return {
            sha256: self.validate(table_name, frame, file_names[sha256])
            for sha256, frame in frames_by_sha256.items()
        }

    def _bisect(
        self, table_name: str, frames: dict[str, pd.DataFrame], file_names: Mapping[str, str]
    ) -> dict[str, ValidationOutcome]:
        if len(frames) == 1:
            [(sha256, frame)] = frames.items()
            return {sha256: self.validate(table_name, frame, file_names[sha256])}
        if _same_columns(list(frames.values())):
            files = [file_names[sha256] for sha256 in frames]
            batch = self._run(table_name, _concatenated(list(frames.values())), files)
            if batch.success:
                return {sha256: _copy_of(batch) for sha256 in frames}
        shas = list(frames)
        middle = len(shas) // 2
        return {
            **self._bisect(table_name, {s: frames[s] for s in shas[:middle]}, file_names),
            **self._bisect(table_name, {s: frames[s] for s in shas[middle:]}, file_names),
        }

    def _is_batchable(self, table_name: str) -> bool:
        from validation.suites import suite_expectations

        if table_name not in self._batchable:
            self._batchable[table_name] = all(
                _holds_per_file(e) for e in suite_expectations(table_name, self.thresholds)
            )
        return self._batchable[table_name]

    def _run(self, table_name: str, frame: pd.DataFrame, files: list[str]) -> ValidationOutcome:
        """One suite run over `frame`, the rows of `files`: its outcome, and its Data Docs page."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.exceptions.resource_freshness import ResourceFreshnessAggregateError

        run_id = RunIdentifier(run_name=docs.run_name(table_name, files))
        try:
            result = self._checkpoint(table_name).run(
                batch_parameters={"dataframe": frame}, run_id=run_id
            )
        except ResourceFreshnessAggregateError:
            # another process changed the suites (new settings) since this one read them
            self._set_up()
            result = self._checkpoint(table_name).run(
                batch_parameters={"dataframe": frame}, run_id=run_id
            )
        outcome = ValidationOutcome(table_name=table_name, success=bool(result.success))
        validated_at = datetime.now(UTC)
        for run_result in result.run_results.values():
            validation_result = run_result.to_json_dict()
            for line in docs.expectation_lines(validation_result):
                outcome.results.append(
                    {
                        "table_name": table_name,
                        "suite": table_name,
                        "expectation": line.expectation,
                        "column_name": line.column,
                        "success": line.success,
                        "unexpected_count": line.unexpected_count,
                        "details": line.details,
                        "validated_at": validated_at,
                    }
                )
                if not line.success:
                    outcome.failures.append(f"{table_name}: {line.rule} ({line.details})")
            docs.write_run_page(
                self.docs_folder, table_name, files, validated_at, validation_result
            )
        return outcome

    def build_docs(self) -> Path:
        """The Data Docs index, listing every run's page newest first."""
        return docs.build_index(self.docs_folder)


def _holds_per_file(expectation) -> bool:
    """Whether a batch passing `expectation` implies that each file in it passes."""
    kind = expectation.expectation_type
    if kind == COLUMN_LIST_EXPECTATION:
        return True
    return kind in ROW_WISE_EXPECTATIONS and getattr(expectation, "mostly", 1) == 1


def _same_columns(frames: list[pd.DataFrame]) -> bool:
    first = list(frames[0].columns)
    return all(list(f.columns) == first for f in frames[1:])


def _concatenated(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of all rows; empty frames add none (and would only muddle concat's dtypes)."""
    filled = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(filled, ignore_index=True)


def _copy_of(batch: ValidationOutcome) -> ValidationOutcome:
    """A passing batch's outcome for one of its files: the same results, in rows of its own."""
    return ValidationOutcome(
        table_name=batch.table_name,
        success=batch.success,
        failures=list(batch.failures),
        results=[dict(r) for r in batch.results],
    )


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quiet_progress_bars(context) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    current = context.variables.progress_bars  # a config object, or a dict once read back
    globally = (
        current.get("globally") if isinstance(current, dict) else getattr(current, "globally", None)
    )
    if globally is not False:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()


def _signature(expectations) -> list[str]:
    """What an expectation list checks, without GX's generated ids."""
    return sorted(
        json.dumps(
            [e.expectation_type, e.configuration.kwargs, e.meta or {}], sort_keys=True, default=str
        )
        for e in expectations
    )


def _ensure_checkpoint(context, table_name: str, expectations) -> None:
    """The table's asset, suite, validation definition and checkpoint, written only if changed."""
    import great_expectations as gx

    sources = context.data_sources.all()
    if DATASOURCE in sources:
        source = sources[DATASOURCE]
    else:  # add_or_update would replace the data source and drop the other tables' assets
        source = context.data_sources.add_pandas(DATASOURCE)
    # get_asset, not `source.assets`: assets loaded from the config point at a datasource copy
    # without a context (MissingDataContextError on every validation)
    if table_name in source.get_asset_names():
        asset = source.get_asset(table_name)
    else:
        asset = source.add_dataframe_asset(name=table_name)
    batch = next((b for b in asset.batch_definitions if b.name == BATCH_DEFINITION), None)
    if batch is None:
        batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
    try:
        stored = context.suites.get(table_name)
        unchanged = _signature(stored.expectations) == _signature(expectations)
        context.checkpoints.get(table_name)
    except Exception:  # not stored yet (GX raises several kinds of not-found errors)
        unchanged = False
    if unchanged:
        return
    suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=table_name, expectations=expectations)
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=table_name, data=batch, suite=suite)
    )
    context.checkpoints.add_or_update(
        gx.Checkpoint(name=table_name, validation_definitions=[definition], result_format="SUMMARY")
    )

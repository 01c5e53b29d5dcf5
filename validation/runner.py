"""Running the suites in a Great Expectations file context inside the lab home.

One context per process (importing GX takes seconds); per table a suite, a validation definition
over a whole-dataframe batch and a checkpoint. Validation results are stored by GX and rendered
into Data Docs by `build_docs()`, which the flow calls once per run rather than once per table.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qpcr.settings import QpcrSettings
from validation.schemas import TABLES
from validation.suites import suite_expectations

# No usage statistics leave the lab; set before great_expectations is imported anywhere.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DATASOURCE = "cartflow"
VALIDATED_TABLES = tuple(t for t in TABLES if t not in ("validation_results", "ingest_log"))
"""Every table whose batches go through a suite before they are written."""
BATCH_DEFINITION = "whole table"


@dataclass
class ValidationOutcome:
    table_name: str
    success: bool
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    """One dict per expectation: the assay columns of the validation_results table."""


class Validator:
    """Validates table batches against their suites and keeps Data Docs up to date."""

    def __init__(self, gx_root: Path, qpcr_settings: QpcrSettings) -> None:
        self.gx_root = gx_root
        self.qpcr_settings = qpcr_settings
        self._context = None
        self._checkpoints: dict[str, Any] = {}

    @property
    def context(self):
        if self._context is None:
            self._set_up()
        return self._context

    @property
    def docs_index(self) -> Path:
        return self.gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    def _set_up(self) -> None:
        """Bring the project's suites, validation definitions and checkpoints up to date.

        Several processes (parallel ingest workers, the watcher, the nightly run) share one GX
        project, whose configuration files each process rewrites whole. So changes are made
        under an exclusive file lock, on a context read inside the lock, and only where a
        suite differs from what the current settings ask; every process then validates with a
        context read after the configuration settled.
        """
        import great_expectations as gx

        self.gx_root.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.gx_root / ".cartflow-setup.lock"):
            context = gx.get_context(mode="file", project_root_dir=str(self.gx_root))
            _quiet_progress_bars(context)
            for table_name in VALIDATED_TABLES:
                _ensure_checkpoint(
                    context, table_name, suite_expectations(table_name, self.qpcr_settings)
                )
        self._context = gx.get_context(mode="file", project_root_dir=str(self.gx_root))
        self._checkpoints = {}

    def _checkpoint(self, table_name: str):
        if table_name not in self._checkpoints:
            self._checkpoints[table_name] = self.context.checkpoints.get(table_name)
        return self._checkpoints[table_name]

    def validate(self, table_name: str, frame: pd.DataFrame, batch_label: str) -> ValidationOutcome:
        """Run the table's suite on `frame`; failures are sentences a technician can act on."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.exceptions.resource_freshness import ResourceFreshnessAggregateError

        run_id = RunIdentifier(run_name=f"{table_name}:{batch_label[:16]}")
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
            for item in run_result.results:
                config = item.expectation_config
                rule = (config.meta or {}).get("rule", config.type)
                details = _details(item.result)
                outcome.results.append(
                    {
                        "table_name": table_name,
                        "suite": table_name,
                        "expectation": config.type,
                        "column_name": _column_of(config.kwargs),
                        "success": bool(item.success),
                        "unexpected_count": item.result.get("unexpected_count"),
                        "details": details,
                        "validated_at": validated_at,
                    }
                )
                if not item.success:
                    outcome.failures.append(f"{table_name}: {rule} ({details})")
        return outcome

    def build_docs(self) -> Path:
        self.context.build_data_docs()
        return self.docs_index


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


def _column_of(kwargs: dict[str, Any]) -> str:
    for key in ("column", "column_list"):
        if key in kwargs:
            value = kwargs[key]
            return ",".join(value) if isinstance(value, list) else str(value)
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return ""


def _details(result: dict[str, Any]) -> str:
    if result.get("unexpected_count"):
        examples = result.get("partial_unexpected_list") or []
        shown = ", ".join(_short(v) for v in examples[:3])
        return f"{result['unexpected_count']} row(s) failed, e.g. {shown}"
    if "observed_value" in result and result["observed_value"] is not None:
        return f"observed {_short(result['observed_value'])}"
    if "details" in result and result["details"]:
        return _short(result["details"])
    return "ok"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, float):
        text = f"{value:.4g}"
    return text if len(text) <= 200 else text[:197] + "..."

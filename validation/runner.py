"""Running the suites in a Great Expectations file context inside the lab home.

One context per process (importing GX takes seconds); per table a suite, a validation definition
over a whole-dataframe batch and a checkpoint. Validation results are stored by GX and rendered
into Data Docs by `build_docs()`, which the flow calls once per run rather than once per table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qpcr.settings import QpcrSettings
from validation.suites import suite_expectations

# No usage statistics leave the lab; set before great_expectations is imported anywhere.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DATASOURCE = "cartflow"
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
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self.gx_root.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=str(self.gx_root))
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.variables.save()
            self._context = context
        return self._context

    @property
    def docs_index(self) -> Path:
        return self.gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    def _checkpoint(self, table_name: str):
        if table_name in self._checkpoints:
            return self._checkpoints[table_name]
        import great_expectations as gx

        context = self.context
        # add_or_update would replace the data source and drop the other tables' assets
        sources = context.data_sources.all()
        if DATASOURCE in sources:
            source = sources[DATASOURCE]
        else:
            source = context.data_sources.add_pandas(DATASOURCE)
        # get_asset, not `source.assets`: assets loaded from another process's config point at a
        # datasource copy without a context (MissingDataContextError on every validation)
        if table_name in source.get_asset_names():
            asset = source.get_asset(table_name)
        else:
            asset = source.add_dataframe_asset(name=table_name)
        batch = next((b for b in asset.batch_definitions if b.name == BATCH_DEFINITION), None)
        if batch is None:
            batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(
                name=table_name, expectations=suite_expectations(table_name, self.qpcr_settings)
            )
        )
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=table_name, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=table_name, validation_definitions=[definition], result_format="SUMMARY"
            )
        )
        self._checkpoints[table_name] = checkpoint
        return checkpoint

    def validate(self, table_name: str, frame: pd.DataFrame, batch_label: str) -> ValidationOutcome:
        """Run the table's suite on `frame`; failures are sentences a technician can act on."""
        from great_expectations.core.run_identifier import RunIdentifier

        checkpoint = self._checkpoint(table_name)
        run_id = RunIdentifier(run_name=f"{table_name}:{batch_label[:16]}")
        result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
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

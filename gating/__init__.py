"""FCS reading, compensation, transforms, gating templates and population statistics.

A plain library (no Prefect, no validation imports; of the pipeline only `pipelines.environment`,
the one reader of `CARTFLOW_*` variables): a file in, typed tables out.

- `sniff(path)` -> "fcs" | None; `fcs_keywords(path)` (TEXT only); `is_bead_array(keywords)`
- `read_fcs(path)` -> every dataset, or `FlowFormatError` naming the problem
- `analyse_fcs(path, settings)` -> `FlowResult` (flow_samples / flow_populations / flow_mfi
  assay columns, warnings, identity hints)
- `gate_file(fcs, template)` -> populations for a scientist checking a template
- `FlowSettings`, `flow_settings_from_dict(mapping)`
- `compile_kernels()`: the numba kernels compiled into their cache (the install runs it)
- `gating.engine`: the fast gating engine's front door (compile a strategy, apply it to events)
- `gating.assay`: this library's side of the assay contract (docs/assay-libraries.md)
"""

from __future__ import annotations

from gating.analysis import FlowResult, analyse_fcs, gate_file
from gating.engine import compile_kernels
from gating.errors import FlowFormatError, FlowTemplateError
from gating.fcs import FcsDataset, fcs_keywords, read_fcs, sniff
from gating.panels import detect_panel, is_bead_array
from gating.settings import FlowSettings, flow_settings_from_dict
from gating.templates import load_template

__all__ = [
    "compile_kernels",
    "FcsDataset",
    "FlowFormatError",
    "FlowResult",
    "FlowSettings",
    "FlowTemplateError",
    "analyse_fcs",
    "detect_panel",
    "fcs_keywords",
    "flow_settings_from_dict",
    "gate_file",
    "is_bead_array",
    "load_template",
    "read_fcs",
    "sniff",
]

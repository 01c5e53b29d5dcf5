"""FCS reading, compensation, transforms, gating templates and population statistics.

A plain library (no Prefect, no pipeline, no validation imports): a file in, typed tables out.

- `sniff(path)` -> "fcs" | None; `fcs_keywords(path)` (TEXT only); `is_bead_array(keywords)`
- `read_fcs(path)` -> every dataset, or `FlowFormatError` naming the problem
- `analyse_fcs(path, settings)` -> `FlowResult` (flow_samples / flow_populations / flow_mfi
  assay columns, warnings, identity hints)
- `gate_file(fcs, template)` -> populations for a scientist checking a template
- `FlowSettings`, `flow_settings_from_dict(mapping)`
- `THREADS_ENV`: the environment variable capping the threads one file is gated on
"""

from __future__ import annotations

from gating._threads import THREADS_ENV
from gating.analysis import FlowResult, analyse_fcs, gate_file
from gating.errors import FlowFormatError, FlowTemplateError
from gating.fcs import FcsDataset, fcs_keywords, read_fcs, sniff
from gating.panels import detect_panel, is_bead_array
from gating.settings import FlowSettings, flow_settings_from_dict
from gating.templates import load_template

__all__ = [
    "THREADS_ENV",
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

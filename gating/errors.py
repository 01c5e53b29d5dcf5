"""The two errors a technician can meet from `gating`; both are `assaykit.AssayInputError`s (and
so `ValueError`s), the base error of bad input every assay library shares. Messages name the
file, the problem and what to do."""

from __future__ import annotations

from assaykit import AssayInputError


class FlowFormatError(AssayInputError):
    """An FCS file that cannot be read (truncated, unsupported encoding, not an FCS file...)."""


class FlowTemplateError(AssayInputError):
    """A gating template that does not validate, or that does not fit the file (a missing marker)."""

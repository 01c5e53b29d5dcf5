"""The two errors a technician can meet from `gating`; both are `ValueError`s so callers that only
know "bad input" still catch them. Messages name the file, the problem and what to do."""

from __future__ import annotations


class FlowFormatError(ValueError):
    """An FCS file that cannot be read (truncated, unsupported encoding, not an FCS file...)."""


class FlowTemplateError(ValueError):
    """A gating template that does not validate, or that does not fit the file (a missing marker)."""

"""The one base error for bad input, shared by every assay library."""

from __future__ import annotations


class AssayInputError(ValueError):
    """The file (or a setting it is read with) cannot be used as given: the message names the
    file and the problem in words a lab technician can act on.

    Each library raises its own subclasses (`QpcrFormatError`, `CbaFormatError`, ...); a caller
    that refuses bad input catches this one class, so that any other exception stays a bug.
    It is a `ValueError` for the callers that caught those before it existed.
    """

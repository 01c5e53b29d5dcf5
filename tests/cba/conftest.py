"""Fixtures of the bead-array tests."""

from __future__ import annotations

import pytest

from cba.model import CbaPlate
from tests.cba.synthetic import make_plate


@pytest.fixture
def exact_plate() -> CbaPlate:
    """Noise-free duplicate standards and samples on two known 5PL/4PL curves."""
    return make_plate()

"""The one settings helper every assay library's `from_dict` uses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from assaykit import settings_from_dict
from cba import CbaSettings
from gating import flow_settings_from_dict
from pipelines.derived.settings import DerivedSettings
from qpcr import QpcrSettings


@dataclass(frozen=True)
class Thresholds:
    r_squared_min: float = 0.98
    targets: tuple[str, ...] = ("CAR",)
    limits: dict[str, float] | None = None


def test_lists_become_tuples_and_converters_apply_per_key() -> None:
    built = settings_from_dict(
        Thresholds,
        {"targets": ["CAR", "WPRE"], "limits": {"lod": 3}},
        {"limits": lambda table: {k: float(v) * 2 for k, v in table.items()}},
    )
    assert built == Thresholds(0.98, ("CAR", "WPRE"), {"lod": 6.0})


def test_an_unknown_key_is_an_error_naming_the_closest_setting() -> None:
    with pytest.raises(
        ValueError, match=r"r_square_min is not a setting; did you mean r_squared_min\?"
    ):
        settings_from_dict(Thresholds, {"r_square_min": 0.99})


@pytest.mark.parametrize(
    "read",
    [
        QpcrSettings.from_dict,
        CbaSettings.from_dict,
        flow_settings_from_dict,
        DerivedSettings.from_dict,
    ],
    ids=["qpcr", "cba", "flow", "derived"],
)
def test_every_section_refuses_a_misspelt_key_instead_of_keeping_the_default(read) -> None:
    with pytest.raises(ValueError, match="efficency_min_pct is not a setting"):
        read({"efficency_min_pct": 85})


def test_sections_keep_their_own_conversions() -> None:
    qpcr = QpcrSettings.from_dict({"car_targets": ["FMC63"], "r_squared_min": 0.99})
    assert qpcr.car_targets == ("FMC63",) and qpcr.r_squared_min == 0.99
    flow = flow_settings_from_dict({"default_transform": {"w": 1.0}, "panel_keywords": ["$SRC"]})
    assert flow.default_transform.w == 1.0 and flow.default_transform.t == 262144.0
    assert flow.panel_keywords == ("$SRC",)
    derived = DerivedSettings.from_dict(
        {"qc_targets": {"qpcr:CAR:slope": {"mean": -3.3, "sd": 0.05}}}
    )
    assert derived.qc_targets["qpcr:CAR:slope"].sd == 0.05
    with pytest.raises(ValueError, match="sigma is not a setting"):
        DerivedSettings.from_dict({"qc_targets": {"x": {"mean": 1.0, "sigma": 0.1}}})

"""Entities know which state views they show, so reports can skip them."""

from __future__ import annotations

import pytest

from custom_components.bambu_cloud.binary_sensor import PRINTER_BINARY_SENSORS
from custom_components.bambu_cloud.entity import views_read_by
from custom_components.bambu_cloud.number import TARGETS
from custom_components.bambu_cloud.sensor import PRINTER_SENSORS
from custom_components.bambu_cloud.switch import SWITCHES


@pytest.mark.parametrize(
    "description",
    [*PRINTER_SENSORS, *PRINTER_BINARY_SENSORS, *TARGETS, *SWITCHES],
    ids=lambda description: description.key,
)
def test_every_live_description_has_views(description: object) -> None:
    """Every description's value function reads at least one known view."""
    assert views_read_by(
        getattr(description, "value_fn", None), getattr(description, "attrs_fn", None)
    )


def test_views_follow_helpers_and_closures() -> None:
    """Views are found through module helpers and closures, not guessed."""
    by_key = {d.key: d for d in PRINTER_SENSORS}
    assert views_read_by(by_key["nozzle_temperature"].value_fn) == {
        "nozzle_temperature"
    }
    assert views_read_by(by_key["print_status"].value_fn) == {"gcode_state"}
    assert views_read_by(by_key["right_nozzle_temperature"].value_fn) == {"nozzles"}
    assert views_read_by(
        by_key["hms_errors"].value_fn, by_key["hms_errors"].attrs_fn
    ) == {"hms"}
    assert views_read_by(None, lambda value: value + 1) is None

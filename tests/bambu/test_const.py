"""Tests for the region table and model table (bambu/const.py)."""

from __future__ import annotations

import pytest

from custom_components.bambu_cloud.bambu.const import (
    MODELS,
    REGIONS,
    UNKNOWN_MODEL,
    CameraKind,
    Region,
    lookup_model,
)


@pytest.mark.parametrize(
    ("product_name", "expected"),
    [
        ("X1 Carbon", "X1 Carbon"),
        ("Bambu Lab X1-Carbon", "X1 Carbon"),
        ("bambu lab x1 carbon", "X1 Carbon"),
        ("X1C", "X1 Carbon"),
        ("X1", "X1"),
        ("X1E", "X1E"),
        ("A1 mini", "A1 mini"),
        ("Bambu Lab A1 mini", "A1 mini"),
        ("A1MINI", "A1 mini"),
        ("A1", "A1"),
        ("H2D Pro", "H2D Pro"),
        ("Bambu Lab H2D Pro", "H2D Pro"),
        ("H2D", "H2D"),
        ("P2S", "P2S"),
    ],
)
def test_lookup_by_marketing_name(product_name: str, expected: str) -> None:
    assert lookup_model(product_name=product_name).name == expected


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("C12", "P1S"),
        ("C11", "P1P"),
        ("C13", "X1E"),
        ("N1", "A1 mini"),
        ("N2S", "A1"),
        ("O1C", "H2C"),
        ("O1C2", "H2C"),
        ("O1E", "H2D Pro"),
        ("BL-P001", "X1 Carbon"),
        ("3DPrinter-X1-Carbon", "X1 Carbon"),
        ("3DPrinter-X1", "X1"),
        ("N6", "X2D"),
    ],
)
def test_lookup_by_model_id(model_id: str, expected: str) -> None:
    assert lookup_model(model_id=model_id).name == expected


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        ("00M09A350100001", "X1 Carbon"),
        ("01P00A451600002", "P1S"),
        ("01S00C123456789", "P1P"),
        ("0309DA470200003", "A1 mini"),
        ("039AB1234567890", "A1"),
        ("22E8BJ5B1001755", "P2S"),
        ("31B8BP5A1001227", "H2C"),
        ("20P5BJ661500023", "X2D"),
        ("094XXXXXXXXXXXX", "H2D"),
        ("03wabc", "X1E"),  # prefix compared case-insensitively
    ],
)
def test_lookup_by_serial_prefix(serial: str, expected: str) -> None:
    assert lookup_model(serial=serial).name == expected


def test_name_wins_over_model_id_and_serial() -> None:
    model = lookup_model(product_name="A1", model_id="C12", serial="00M0000")
    assert model.name == "A1"


def test_unknown_name_falls_back_to_model_id_then_serial() -> None:
    assert lookup_model(product_name="Mystery", model_id="C12").name == "P1S"
    assert lookup_model(product_name="Mystery", model_id="Z9", serial="039x").name == (
        "A1"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"product_name": "Prusa MK4"},
        {"model_id": "Z99"},
        {"serial": "99Z00000000"},
        {"serial": "0"},
        {"product_name": "", "model_id": "", "serial": ""},
    ],
)
def test_unknown_model(kwargs: dict[str, str]) -> None:
    model = lookup_model(**kwargs)
    assert model is UNKNOWN_MODEL
    assert model.name == "Unknown"
    assert model.camera is CameraKind.NONE


def test_model_capabilities() -> None:
    h2d = lookup_model(model_id="O1D")
    assert (h2d.nozzles, h2d.max_nozzle_temp, h2d.max_chamber_temp) == (2, 350, 65)
    assert h2d.camera is CameraKind.RTSPS
    a1_mini = lookup_model(serial="030ABC")
    assert a1_mini.ams_lite is True
    assert a1_mini.camera is CameraKind.JPEG
    assert a1_mini.max_bed_temp == 80


def test_serial_prefixes_are_unique() -> None:
    prefixes = [prefix for model in MODELS for prefix in model.serial_prefixes]
    assert len(prefixes) == len(set(prefixes))
    assert all(len(prefix) == 3 for prefix in prefixes)
    assert all(model.serial_prefixes for model in MODELS)


def test_model_names_and_ids_are_unique() -> None:
    names = [model.name for model in MODELS]
    ids = [model_id for model in MODELS for model_id in model.model_ids]
    assert len(names) == len(set(names))
    assert len(ids) == len(set(ids))


def test_every_region_has_endpoints() -> None:
    assert set(REGIONS) == set(Region)
    for region in Region:
        endpoints = REGIONS[region]
        assert endpoints.api_url.startswith("https://")
        assert endpoints.web_url.startswith("https://")
        assert endpoints.mqtt_port == 8883
    assert REGIONS[Region.GLOBAL].api_url == "https://api.bambulab.com"
    assert REGIONS[Region.CHINA].api_url == "https://api.bambulab.cn"
    assert REGIONS[Region.CHINA].web_url == "https://bambulab.cn"
    assert REGIONS[Region.GLOBAL].mqtt_host == "us.mqtt.bambulab.com"
    assert REGIONS[Region.CHINA].mqtt_host == "cn.mqtt.bambulab.com"
    assert Region("china") is Region.CHINA

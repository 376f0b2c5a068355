"""Sending commands: signed print commands, refusals, time-outs and errors.

The controls (button, light, number, select, switch) run against virtual
printers on the cloud broker; tested here is how ``command_sender`` signs
print commands and maps the printers' refusals and silences to translated
errors and repair issues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from unittest.mock import patch

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.light import DOMAIN as LIGHT_DOMAIN
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.select import SERVICE_SELECT_OPTION
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.bambu.config import BambuConfig, Timeouts
from custom_components.bambu_cloud.bambu.hub import BambuHub
from custom_components.bambu_cloud.command_sender import async_send_command
from custom_components.bambu_cloud.const import (
    DOMAIN,
)
from tools.virtual_printer.printer import VirtualPrinter

from .app_certs import rsa_cert, signing_entry_data
from .cloud_server import P1S, P1S_SN, X1C_SN, MqttEndpoint
from .helpers import (
    call_service,
    entity_id_of,
    setup_integration,
    state_of,
    wait_for,
)

CONTROL_PLATFORMS = [
    Platform.BUTTON,
    Platform.LIGHT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SWITCH,
]

PRINT_CONTROLS = (
    (BUTTON_DOMAIN, "refresh", False),
    (LIGHT_DOMAIN, "chamber_light", False),
    (LIGHT_DOMAIN, "work_light", False),
    (SWITCH_DOMAIN, "timelapse", False),
    (SWITCH_DOMAIN, "camera_recording", False),
    (SWITCH_DOMAIN, "spaghetti_detection", False),
    (SWITCH_DOMAIN, "first_layer_inspection", False),
    (SELECT_DOMAIN, "print_speed", True),
    (NUMBER_DOMAIN, "nozzle_target_temperature", True),
    (NUMBER_DOMAIN, "bed_target_temperature", True),
    (SWITCH_DOMAIN, "auto_recovery", True),
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The controls talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """The control platforms are set up."""
    return CONTROL_PLATFORMS


@pytest.fixture(autouse=True)
def only_platforms(platforms: list[Platform]) -> Iterator[None]:
    """Tests that set the entry up themselves set up the same platforms."""
    with patch("custom_components.bambu_cloud.PLATFORMS", platforms):
        yield


def _hub(entry: MockConfigEntry) -> BambuHub:
    hub: BambuHub = entry.runtime_data.hub
    return hub


@pytest.mark.usefixtures("mock_bambu_cloud")
async def test_signature_required_without_certificate(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Print controls go unavailable; lights and camera switches stay usable."""
    x1c = printers["x1c"]
    x1c.signature_required = True
    await setup_integration(hass, mock_config_entry)
    x1c.update({"gcode_state": "RUNNING"})
    pause = entity_id_of(hass, BUTTON_DOMAIN, X1C_SN, "pause")
    # Running, but unusable without a certificate.
    await hass.async_block_till_done()
    assert state_of(hass, pause) == STATE_UNAVAILABLE
    for domain, key, signed in PRINT_CONTROLS:
        entity_id = entity_id_of(hass, domain, X1C_SN, key)
        unavailable = state_of(hass, entity_id) == STATE_UNAVAILABLE
        assert unavailable is signed, entity_id
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{X1C_SN}") is not None

    light = entity_id_of(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    await wait_for(hass, lambda: state_of(hass, light) == STATE_OFF)
    # The P1S has no such firmware: its print controls stay available.
    speed = entity_id_of(hass, SELECT_DOMAIN, P1S_SN, "print_speed")
    assert state_of(hass, speed) == "standard"


async def test_rejected_signature(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    issue_registry: ir.IssueRegistry,
) -> None:
    """A printer refusing unsigned commands: translated error and repair issue."""
    p1s = live["p1s"]
    # Enforced before the printer reports it (delta reports skip "fun").
    p1s.signature_required = True
    speed = entity_id_of(hass, SELECT_DOMAIN, P1S_SN, "print_speed")
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{P1S_SN}") is None
    with pytest.raises(HomeAssistantError) as err:
        await call_service(
            hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, option="sport"
        )
    assert err.value.translation_key == "signature_required"
    issue = issue_registry.async_get_issue(DOMAIN, f"signature_{P1S_SN}")
    assert issue is not None
    assert issue.translation_key == "signed_commands_required"
    assert issue.translation_placeholders == {"printer": P1S["name"]}
    assert p1s.state["spd_lvl"] == 2
    assert state_of(hass, speed) == "standard"


@pytest.mark.parametrize("entry_data", [signing_entry_data()])
@pytest.mark.usefixtures("mock_bambu_cloud")
async def test_signed_with_certificate(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """With an app certificate print commands are signed and accepted."""
    cert = rsa_cert()
    x1c = printers["x1c"]
    x1c.public_key = cert.public_key
    x1c.signature_required = True
    await setup_integration(hass, mock_config_entry)
    for domain, key, _ in PRINT_CONTROLS:
        # Signed G-code would also need encryption with the printer's own key:
        # raw G-code controls stay unavailable (Developer Mode only).
        expect_available = domain != NUMBER_DOMAIN
        state = state_of(hass, entity_id_of(hass, domain, X1C_SN, key))
        assert (state != STATE_UNAVAILABLE) is expect_available
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{X1C_SN}") is None

    speed = entity_id_of(hass, SELECT_DOMAIN, X1C_SN, "print_speed")
    await call_service(
        hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, option="ludicrous"
    )
    message = x1c.received[-1]
    assert message["header"]["cert_id"] == cert.certificate_id
    assert x1c.verify_envelope(message) is None
    await wait_for(hass, lambda: state_of(hass, speed) == "ludicrous")

    recovery = entity_id_of(hass, SWITCH_DOMAIN, X1C_SN, "auto_recovery")
    await call_service(hass, SWITCH_DOMAIN, SERVICE_TURN_ON, recovery)
    await wait_for(hass, lambda: state_of(hass, recovery) == STATE_ON)

    # Unsigned classes go out without an envelope.
    light = entity_id_of(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert "header" not in x1c.received[-1]


async def test_command_timeout(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    configure_library: Callable[..., BambuConfig],
) -> None:
    """No ack within the configured time: a translated error, state unchanged."""
    configure_library(timeouts=Timeouts(command_ack=0.2))
    await setup_integration(hass, mock_config_entry)
    printers["x1c"].detach()
    light = entity_id_of(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    with pytest.raises(HomeAssistantError) as err:
        await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert err.value.translation_key == "command_timeout"
    assert state_of(hass, light) == STATE_ON


async def test_command_failed_and_not_connected(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
) -> None:
    """A refused command and an unknown printer map to translated errors."""
    hub = _hub(mock_config_entry)
    with pytest.raises(HomeAssistantError) as err:
        await async_send_command(
            hass, hub, X1C_SN, "X1C", {"print": {"command": "no_such_command"}}
        )
    # The printer's English reason is logged, not put into the message.
    assert err.value.translation_key == "command_failed"
    assert err.value.translation_placeholders is None
    with pytest.raises(HomeAssistantError) as err:
        # The printer echoes the command's fields, err_code included.
        await async_send_command(
            hass,
            hub,
            X1C_SN,
            "X1C",
            {"print": {"command": "no_such_command", "err_code": 50364437}},
        )
    assert err.value.translation_key == "command_failed_code"
    assert err.value.translation_placeholders == {"code": "50364437"}
    with pytest.raises(HomeAssistantError) as err:
        await async_send_command(hass, hub, "00M000000000000", "", {"system": {}})
    assert err.value.translation_key == "printer_not_connected"

"""Cover images: the newest cloud task's cover, downloaded once per task."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any
from unittest.mock import patch

import freezegun.api
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.image import MAX_COVER_BYTES, MAX_REDIRECTS
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S, X1C, Failure, FakeCloud, MqttEndpoint
from .cover_cdn import PNG, Cover, CoverServer
from .helpers import state_of, wait_for

TASKS = "/v1/user-service/my/tasks"
JPEG = b"\xff\xd8\xff\xdb" + b"cube" * 10
# One byte more than a cover may have.
TOO_LARGE = PNG + bytes(MAX_COVER_BYTES + 1 - len(PNG))


@pytest.fixture
def mqtt_endpoint(request: pytest.FixtureRequest) -> MqttEndpoint:
    """The live broker for tests with virtual printers, else none."""
    if "printers" in request.fixturenames:
        endpoint: MqttEndpoint = request.getfixturevalue("broker_endpoint")
        return endpoint
    return MqttEndpoint()


def task(task_id: int, serial: str, cover: str | None, title: str) -> dict[str, Any]:
    """A print task as the task list shows it."""
    return {
        "id": task_id,
        "designId": 0,
        "title": title,
        "cover": cover,
        "status": 2,
        "startTime": "2026-11-20T10:00:00Z",
        "endTime": "2026-11-20T12:00:00Z",
        "weight": 12.5,
        "length": 4000,
        "deviceId": serial,
    }


@pytest.fixture
def with_tasks(cloud: FakeCloud, covers: CoverServer) -> FakeCloud:
    """The X1C printed Benchy (task 111); the P1S has no history."""
    covers.covers["benchy.png"] = Cover(PNG)
    cloud.tasks = [task(111, X1C["dev_id"], covers.url("benchy.png"), "Benchy")]
    return cloud


def image_entity(hass: HomeAssistant, serial: str) -> str:
    """The entity id of a printer's cover image."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "image", DOMAIN, f"{serial}_cover"
    )
    assert entity_id is not None
    return entity_id


async def fetch(
    hass_client: ClientSessionGenerator, entity_id: str
) -> tuple[int, bytes, str | None]:
    """GET the image proxy of an entity."""
    client = await hass_client()
    response = await client.get(f"/api/image_proxy/{entity_id}")
    return response.status, await response.read(), response.content_type


async def settle(hass: HomeAssistant) -> None:
    """Let the background fetches (real sockets) finish."""
    await asyncio.sleep(0.05)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the image platform is set up."""
    return [Platform.IMAGE]


@pytest.fixture
def frozen_clock(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> Iterator[None]:
    """Home Assistant's clock stands still; the event loop's keeps running.

    The cover's time stamp is the image's state. The real sockets need the
    loop's timers, which freezegun would stop (its ``real_asyncio`` patches
    another loop class than the one the tests run on). The real clock comes
    from freezegun's module: freezegun replaces references to it elsewhere.
    """
    freezer.move_to("2026-11-20 12:30:00+00:00")
    with patch.object(hass.loop, "time", freezegun.api.real_monotonic):
        yield


@pytest.mark.usefixtures(
    "entity_registry_enabled_by_default",
    "mock_access_tokens",
    "frozen_clock",
    "with_tasks",
)
async def test_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Cover images (X1C with a cover, P1S without a task) match the snapshot."""
    await settle(hass)
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_cover_served_and_cached(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """The newest task's cover is downloaded once and served by the proxy."""
    await settle(hass)
    x1c = image_entity(hass, X1C["dev_id"])
    state = hass.states.get(x1c)
    assert state is not None
    assert state.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
    assert covers.hits == {"benchy.png": 1}

    for _ in range(2):
        status, body, content_type = await fetch(hass_client, x1c)
        assert status == HTTPStatus.OK
        assert body == PNG
        assert content_type == "image/png"
    assert covers.hits == {"benchy.png": 1}

    # No task: unavailable, nothing downloaded.
    assert state_of(hass, image_entity(hass, P1S["dev_id"])) == STATE_UNAVAILABLE
    assert with_tasks.calls(TASKS) == 2


async def test_new_job_brings_new_cover(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    printers: dict[str, VirtualPrinter],
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """The printer's new task id fetches the task list and the new cover."""
    x1c = image_entity(hass, X1C["dev_id"])
    await wait_for(hass, lambda: covers.hits.get("benchy.png") == 1)
    await settle(hass)
    before = state_of(hass, x1c)
    calls = with_tasks.calls(TASKS)

    covers.covers["cube.jpg"] = Cover(JPEG, "image/jpeg")
    with_tasks.tasks.insert(0, task(222, X1C["dev_id"], covers.url("cube.jpg"), "Cube"))
    printers["x1c"].update({"gcode_state": "PREPARE", "task_id": "222"})
    await wait_for(hass, lambda: state_of(hass, x1c) != before)
    await settle(hass)
    assert with_tasks.calls(TASKS) == calls + 1
    status, body, content_type = await fetch(hass_client, x1c)
    assert (status, body, content_type) == (HTTPStatus.OK, JPEG, "image/jpeg")

    # The same task again (and a LAN job, task id "0") fetch nothing.
    printers["x1c"].update({"gcode_state": "RUNNING", "task_id": "222"})
    printers["p1s"].update({"gcode_state": "RUNNING", "task_id": "0"})
    await asyncio.sleep(0.2)
    await settle(hass)
    assert with_tasks.calls(TASKS) == calls + 1
    assert covers.hits == {"benchy.png": 1, "cube.jpg": 1}


async def test_task_not_listed_yet(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    printers: dict[str, VirtualPrinter],
    init_integration: MockConfigEntry,
) -> None:
    """A job the cloud does not list yet keeps the last cover until a poll."""
    await wait_for(hass, lambda: covers.hits.get("benchy.png") == 1)
    await settle(hass)
    calls = with_tasks.calls(TASKS)
    # The task list answers slowly; meanwhile the job id changes twice.
    with_tasks.fail(TASKS, Failure(500, delay=0.3))
    printers["x1c"].update({"task_id": "300"})
    await asyncio.sleep(0.1)
    printers["x1c"].update({"task_id": "301"})
    await wait_for(hass, lambda: with_tasks.calls(TASKS) == calls + 2)
    await settle(hass)
    # The retry found only the old task: the cover stays.
    assert covers.hits == {"benchy.png": 1}
    assert state_of(hass, image_entity(hass, X1C["dev_id"])) not in (
        STATE_UNKNOWN,
        STATE_UNAVAILABLE,
    )


async def test_refresh_on_poll(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A poll naming another job fetches it; the same job is not refetched."""
    await settle(hass)
    coordinator = init_integration.runtime_data.coordinator
    calls = with_tasks.calls(TASKS)
    await coordinator.async_refresh()
    await settle(hass)
    assert with_tasks.calls(TASKS) == calls

    covers.covers["gear.png"] = Cover(PNG + b"gear")
    with_tasks.tasks.insert(0, task(333, X1C["dev_id"], covers.url("gear.png"), "Gear"))
    with_tasks.devices = [
        {**with_tasks.devices[0], "print_job": "333"},
        *with_tasks.devices[1:],
    ]
    await coordinator.async_refresh()
    await settle(hass)
    assert with_tasks.calls(TASKS) == calls + 1
    status, body, _ = await fetch(hass_client, image_entity(hass, X1C["dev_id"]))
    assert (status, body) == (HTTPStatus.OK, PNG + b"gear")

    await coordinator.async_refresh()
    await settle(hass)
    assert with_tasks.calls(TASKS) == calls + 1

    # A failed poll changes nothing.
    with_tasks.fail("/v1/iot-service/api/user/bind", Failure(500))
    await coordinator.async_refresh()
    await settle(hass)
    assert with_tasks.calls(TASKS) == calls + 1


async def test_task_list_error_retried_next_poll(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """A task list error leaves the image unavailable until the next poll."""
    with_tasks.fail(TASKS, Failure(503), times=2)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await settle(hass)
    x1c = image_entity(hass, X1C["dev_id"])
    assert state_of(hass, x1c) == STATE_UNAVAILABLE
    await mock_config_entry.runtime_data.coordinator.async_refresh()
    await settle(hass)
    assert state_of(hass, x1c) not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
    assert covers.hits == {"benchy.png": 1}


@pytest.mark.parametrize(
    ("cover", "content_type"),
    [
        (Cover(PNG, content_type=None), "image/png"),
        (Cover(JPEG, "image/jpeg; charset=binary", chunked=True), "image/jpeg"),
    ],
)
async def test_content_type(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    cover: Cover,
    content_type: str,
) -> None:
    """The response's content type, else the image's magic number."""
    covers.covers["benchy.png"] = cover
    with_tasks.tasks = [task(112, X1C["dev_id"], covers.url("benchy.png"), "Benchy 2")]
    with_tasks.devices = [
        {**with_tasks.devices[0], "print_job": "112"},
        *with_tasks.devices[1:],
    ]
    await init_integration.runtime_data.coordinator.async_refresh()
    await settle(hass)
    status, body, served = await fetch(hass_client, image_entity(hass, X1C["dev_id"]))
    assert (status, body, served) == (HTTPStatus.OK, cover.body, content_type)


@pytest.mark.parametrize(
    "cover",
    [
        Cover(b"", status=404),
        Cover(b"<html>nope</html>", "text/html"),
        Cover(TOO_LARGE),
        Cover(TOO_LARGE, chunked=True),
    ],
    ids=["missing", "not_an_image", "too_large", "too_large_chunked"],
)
async def test_bad_cover(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    cover: Cover,
) -> None:
    """A cover that cannot be used shows no image; a later request retries."""
    covers.covers["benchy.png"] = cover
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await settle(hass)
    x1c = image_entity(hass, X1C["dev_id"])
    assert state_of(hass, x1c) == STATE_UNKNOWN
    status, _, _ = await fetch(hass_client, x1c)
    assert status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert covers.hits == {"benchy.png": 2}

    covers.covers["benchy.png"] = Cover(PNG)
    status, body, _ = await fetch(hass_client, x1c)
    assert (status, body) == (HTTPStatus.OK, PNG)
    assert state_of(hass, x1c) not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
    assert covers.hits == {"benchy.png": 3}


async def _setup_and_fetch(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> tuple[str, int, bytes]:
    """Set up the entry and ask the proxy for the X1C's cover."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    x1c = image_entity(hass, X1C["dev_id"])
    status, body, _ = await fetch(hass_client, x1c)
    return x1c, status, body


@pytest.mark.parametrize("case", ["http_url", "redirect_to_http"])
async def test_cover_only_over_https(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    plain_covers: CoverServer,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    case: str,
) -> None:
    """A plain-HTTP cover URL, or a redirect to one, is never dialled."""
    plain_covers.covers["benchy.png"] = Cover(PNG)
    if case == "http_url":
        with_tasks.tasks = [
            task(111, X1C["dev_id"], plain_covers.url("benchy.png"), "Benchy")
        ]
    else:
        covers.redirects["benchy.png"] = plain_covers.url("benchy.png")
    x1c, status, _ = await _setup_and_fetch(hass, mock_config_entry, hass_client)
    assert status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert state_of(hass, x1c) == STATE_UNKNOWN
    assert plain_covers.hits == {}
    if case == "redirect_to_http":
        assert covers.hits == {"benchy.png": 2}  # the entity, then the proxy


async def test_https_redirects_are_followed(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """Relative and absolute redirects that stay on https are followed."""
    covers.covers["real.png"] = Cover(PNG)
    covers.redirects["benchy.png"] = "/covers/hop.png"
    covers.redirects["hop.png"] = covers.url("real.png")
    _, status, body = await _setup_and_fetch(hass, mock_config_entry, hass_client)
    assert (status, body) == (HTTPStatus.OK, PNG)
    assert covers.hits == {"benchy.png": 1, "hop.png": 1, "real.png": 1}


@pytest.mark.parametrize("case", ["loop", "no_location"])
async def test_bad_redirects_are_refused(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    case: str,
) -> None:
    """Endless redirects stop after a few hops; a redirect must say where."""
    covers.redirects["benchy.png"] = covers.url("benchy.png") if case == "loop" else ""
    x1c, status, _ = await _setup_and_fetch(hass, mock_config_entry, hass_client)
    assert status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert state_of(hass, x1c) == STATE_UNKNOWN
    hops = MAX_REDIRECTS + 1 if case == "loop" else 1
    assert covers.hits == {"benchy.png": 2 * hops}


async def test_task_without_cover(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A task without a cover URL: unavailable."""
    with_tasks.tasks = [task(113, X1C["dev_id"], None, "No cover")]
    with_tasks.devices = [
        {**with_tasks.devices[0], "print_job": "113"},
        *with_tasks.devices[1:],
    ]
    await init_integration.runtime_data.coordinator.async_refresh()
    await settle(hass)
    x1c = image_entity(hass, X1C["dev_id"])
    assert state_of(hass, x1c) == STATE_UNAVAILABLE
    status, _, _ = await fetch(hass_client, x1c)
    assert status == HTTPStatus.INTERNAL_SERVER_ERROR


async def test_unload_during_fetch(
    hass: HomeAssistant,
    with_tasks: FakeCloud,
    covers: CoverServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Unloading cancels a task list request in flight."""
    with_tasks.fail(TASKS, Failure(200, "{}", delay=5), times=2)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: with_tasks.calls(TASKS) == 2)
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert covers.hits == {}

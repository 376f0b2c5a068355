"""HMS texts in Home Assistant: the shared stored cache and the entities using it.

The texts come from the fake text service (tools/virtual_farm/hms.py) that
``mock_bambu_cloud`` serves on 127.0.0.1 and names as the configuration's
``hms_url``; storage is Home Assistant's (``hass_storage``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, EVENT_STATE_CHANGED, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.bambu.const import Region
from custom_components.bambu_cloud.bambu.hms_text import EMPTY_TEXTS, HmsTexts
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.hms_text import (
    INDEX_KEY,
    REFRESH_AFTER,
    RETRY_MAX,
    STORAGE_VERSION,
    HmsTextBook,
    async_hms_text_book,
    async_remove_stored_texts,
    texts_store_key,
)
from custom_components.bambu_cloud.library import library_config
from tools.virtual_farm.hms import (
    ERROR_CANCELLED,
    HMS_AMS,
    HMS_HEATBED,
    made_up_texts,
)
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S_SN, X1C_SN, FakeCloud, MqttEndpoint
from .helpers import entity_id_of, wait_for

KEY = texts_store_key("00M", "en")
EN = made_up_texts()["en"]
DE = made_up_texts()["de"]
HMS_A = {"attr": 0x03000100, "code": 0x00010007}  # HMS_0300_0100_0001_0007, fatal
HMS_B = {"attr": 0x07008000, "code": 0x00030001}  # HMS_0700_8000_0003_0001, common
WIKI = "https://wiki.bambulab.com/en/{}/troubleshooting/hmscode/{}"
OLD_TEXTS = HmsTexts(hms={HMS_HEATBED: "Stored text."}, errors={})


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The entity tests run with the cloud broker up."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Sensors and events are where codes become words."""
    return [Platform.SENSOR, Platform.EVENT]


@pytest.fixture
def config(cloud: FakeCloud) -> BambuConfig:
    """The library configuration the tests' fake services gave every region."""
    assert library_config(Region.GLOBAL).endpoints.hms_url is not None
    return library_config(Region.GLOBAL)


class Watcher:
    """A book's listener: counts the calls, removable."""

    def __init__(self, book: HmsTextBook) -> None:
        self.book = book
        self.calls = 0
        self.remove = book.listen(self._called)

    @callback
    def _called(self) -> None:
        self.calls += 1


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)


async def _watch(
    hass: HomeAssistant, config: BambuConfig, serial: str = X1C_SN
) -> Watcher:
    book = async_hms_text_book(hass, config, serial)
    assert book is not None
    watcher = Watcher(book)
    await _settle(hass)
    return watcher


async def _tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta
) -> None:
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await _settle(hass)


def _store(
    hass_storage: dict[str, Any],
    texts: HmsTexts,
    *,
    age: timedelta,
    url: str | None,
    key: str = KEY,
) -> None:
    hass_storage[key] = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": key,
        "data": {
            "url": url,
            "fetched": (dt_util.utcnow() - age).isoformat(),
            "texts": texts.as_stored(),
        },
    }


# --------------------------------------------------------------- the cache


async def test_download_and_store(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
) -> None:
    """Missing texts are downloaded once, stored, and shared by printers of a model."""
    watcher = await _watch(hass, config)
    assert watcher.book.texts == HmsTexts(
        language="en", hms=EN["device_hms"], errors=EN["device_error"]
    )
    assert watcher.calls == 1
    assert cloud.hms.queries == [{"lang": "en", "d": "00M"}]
    stored = hass_storage[KEY]["data"]
    assert stored["url"] == config.endpoints.hms_url
    assert dt_util.parse_datetime(stored["fetched"]) is not None
    assert HmsTexts.from_stored(stored["texts"]) == watcher.book.texts
    # Another printer of the model shares the book; no second download.
    other = await _watch(hass, config, "00M09A350100099")
    assert other.book is watcher.book
    assert other.calls == 0
    assert len(cloud.hms.queries) == 1
    # The service's requests never reach the cloud's log.
    assert cloud.requests == []
    # The index lists the table (once), for removal with the last entry.
    assert hass_storage[INDEX_KEY]["data"] == {"keys": [KEY]}
    other.remove()
    watcher.remove()


async def test_stored_texts_are_used_until_a_day_old(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Fresh stored texts need no download; the next one is a day after theirs."""
    _store(
        hass_storage,
        OLD_TEXTS,
        age=timedelta(hours=20),
        url=config.endpoints.hms_url,
    )
    watcher = await _watch(hass, config)
    assert watcher.book.texts == OLD_TEXTS
    assert watcher.calls == 1
    assert cloud.hms.queries == []
    await _tick(hass, freezer, timedelta(hours=3))
    assert cloud.hms.queries == []
    await _tick(hass, freezer, timedelta(hours=1, seconds=1))
    assert cloud.hms.queries == [{"lang": "en", "d": "00M"}]
    assert watcher.book.texts.hms == EN["device_hms"]
    assert watcher.calls == 2
    watcher.remove()


async def test_daily_refresh(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Texts are asked for again at most daily; a change reaches the listeners."""
    watcher = await _watch(hass, config)
    await _tick(hass, freezer, timedelta(hours=23))
    assert len(cloud.hms.queries) == 1
    # Unchanged texts: asked for, nothing to tell.
    await _tick(hass, freezer, timedelta(hours=1, seconds=1))
    assert len(cloud.hms.queries) == 2
    assert watcher.calls == 1
    cloud.hms.texts["en"]["device_hms"][HMS_HEATBED] = "Reworded."
    await _tick(hass, freezer, REFRESH_AFTER)
    assert len(cloud.hms.queries) == 3
    assert watcher.book.texts.hms[HMS_HEATBED] == "Reworded."
    assert watcher.calls == 2
    stored = HmsTexts.from_stored(hass_storage[KEY]["data"]["texts"])
    assert stored.hms[HMS_HEATBED] == "Reworded."
    watcher.remove()


@pytest.mark.parametrize("failure", ["status", "garbage", "no_texts"])
async def test_failure_keeps_old_texts(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    failure: str,
) -> None:
    """Old stored texts stay through failed downloads, which are retried later."""
    _store(hass_storage, OLD_TEXTS, age=timedelta(days=2), url=config.endpoints.hms_url)
    if failure == "status":
        cloud.hms.status = 503
    elif failure == "garbage":
        cloud.hms.body = "<html>maintenance</html>"
    else:
        cloud.hms.prefixes = {"01P"}  # nothing for the X1C any more
    watcher = await _watch(hass, config)
    assert watcher.book.texts == OLD_TEXTS
    assert len(cloud.hms.queries) == 1
    stored = hass_storage[KEY]["data"]
    assert HmsTexts.from_stored(stored["texts"]) == OLD_TEXTS
    # Retried with growing pauses, never more often than every five minutes.
    await _tick(hass, freezer, timedelta(seconds=299))
    assert len(cloud.hms.queries) == 1
    await _tick(hass, freezer, timedelta(seconds=RETRY_MAX))
    assert len(cloud.hms.queries) == 2
    assert watcher.book.texts == OLD_TEXTS
    # The service is back.
    cloud.hms.status, cloud.hms.body, cloud.hms.prefixes = 200, None, set()
    await _tick(hass, freezer, timedelta(seconds=RETRY_MAX))
    assert len(cloud.hms.queries) == 3
    assert watcher.book.texts.hms == EN["device_hms"]
    await _tick(hass, freezer, timedelta(hours=23))
    assert len(cloud.hms.queries) == 3
    watcher.remove()


async def test_model_without_texts(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A model the service has no texts for is asked about again only daily."""
    cloud.hms.prefixes = {"01P"}
    watcher = await _watch(hass, config)
    assert watcher.book.texts == EMPTY_TEXTS
    assert watcher.calls == 0
    assert hass_storage[KEY]["data"]["texts"] == EMPTY_TEXTS.as_stored()
    await _tick(hass, freezer, timedelta(hours=23))
    assert len(cloud.hms.queries) == 1
    watcher.remove()


@pytest.mark.parametrize(
    ("language", "queried", "texts"),
    [
        ("de", ["de"], DE),
        ("de-CH", ["de"], DE),
        ("ko", ["ko", "en"], EN),
    ],
)
async def test_language(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    language: str,
    queried: list[str],
    texts: dict[str, dict[str, str]],
) -> None:
    """Home Assistant's language, English when the service has none in it."""
    hass.config.language = language
    watcher = await _watch(hass, config)
    assert [query["lang"] for query in cloud.hms.queries] == queried
    assert watcher.book.texts.hms == texts["device_hms"]
    assert texts_store_key("00M", queried[0]) in hass_storage
    watcher.remove()


@pytest.mark.parametrize(
    ("same_service", "fetched"),
    [(False, "now"), (True, None), (True, 5), (True, "not a date")],
)
async def test_stored_texts_of_unknown_age_are_old(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    same_service: bool,
    fetched: Any,
) -> None:
    """Texts from another service or without a date are shown, then replaced."""
    if fetched == "now":
        fetched = dt_util.utcnow().isoformat()
    url = config.endpoints.hms_url if same_service else "https://other.invalid"
    hass_storage[KEY] = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": KEY,
        "data": {"url": url, "fetched": fetched, "texts": OLD_TEXTS.as_stored()},
    }
    watcher = await _watch(hass, config)
    assert watcher.calls == 2  # the stored texts, then the downloaded ones
    assert len(cloud.hms.queries) == 1
    assert watcher.book.texts.hms == EN["device_hms"]
    watcher.remove()


@pytest.mark.parametrize(
    "entry",
    [
        {"version": STORAGE_VERSION + 1, "minor_version": 1, "data": {}},
        {"version": STORAGE_VERSION, "minor_version": 1, "data": {"texts": []}},
    ],
)
async def test_unusable_store_is_ignored(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    hass_storage: dict[str, Any],
    entry: dict[str, Any],
) -> None:
    """A damaged store, or one of a newer version, means a download."""
    hass_storage[KEY] = {"key": KEY, **entry}
    watcher = await _watch(hass, config)
    assert len(cloud.hms.queries) == 1
    assert watcher.book.texts.hms == EN["device_hms"]
    watcher.remove()


async def test_no_book_without_service_or_model(
    hass: HomeAssistant, cloud: FakeCloud, config: BambuConfig
) -> None:
    """No text service configured, or a serial without a model prefix: no book."""
    without = dataclasses.replace(
        config, endpoints=dataclasses.replace(config.endpoints, hms_url=None)
    )
    assert async_hms_text_book(hass, without, X1C_SN) is None
    assert async_hms_text_book(hass, config, "0!") is None


async def test_nothing_runs_without_listeners(
    hass: HomeAssistant,
    cloud: FakeCloud,
    config: BambuConfig,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The last listener leaving stops a download and the planned refresh."""
    book = async_hms_text_book(hass, config, X1C_SN)
    assert book is not None
    # Removed before the download finished: it is cancelled.
    Watcher(book).remove()
    await _settle(hass)
    assert book.texts == EMPTY_TEXTS
    watcher = Watcher(book)
    await _settle(hass)
    assert book.texts.hms == EN["device_hms"]
    queries = len(cloud.hms.queries)
    watcher.remove()
    await _tick(hass, freezer, REFRESH_AFTER * 2)
    assert len(cloud.hms.queries) == queries
    # A new listener finds the texts and asks the service when they are old.
    watcher = Watcher(book)
    await _settle(hass)
    assert len(cloud.hms.queries) == queries + 1
    # Home Assistant stopping ends the planned refresh as well.
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await _settle(hass)
    await _tick(hass, freezer, REFRESH_AFTER * 2)
    assert len(cloud.hms.queries) == queries + 1
    watcher.remove()


# ----------------------------------------------------------------- entities


class StateWrites:
    """The states written for some entities."""

    def __init__(self, hass: HomeAssistant, *entity_ids: str) -> None:
        self.writes: dict[str, list[dict[str, Any]]] = {e: [] for e in entity_ids}
        self.remove = hass.bus.async_listen(EVENT_STATE_CHANGED, self._record)

    @callback
    def _record(self, event: Event) -> None:
        if (written := self.writes.get(event.data["entity_id"])) is not None:
            written.append(dict(event.data["new_state"].attributes))


@pytest.fixture
async def setup(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    printers: dict[str, VirtualPrinter],
) -> Callable[[], Any]:
    """Set the entry up and wait until both printers report."""

    async def _setup() -> None:
        mock_config_entry.add_to_hass(hass)
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        hub = mock_config_entry.runtime_data.hub
        await wait_for(hass, lambda: all(p.available for p in hub.printers.values()))

    return _setup


async def test_attributes_have_texts(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    """Each active code has its text and its model's wiki page."""
    printers["x1c"].state.update(hms=[HMS_A], print_error=0x0300400C)
    printers["p1s"].state.update(hms=[HMS_A, HMS_B], print_error=0x0300400D)
    await setup()
    await _settle(hass)
    x1c_hms = entity_id_of(hass, "sensor", X1C_SN, "hms_errors")
    await wait_for(hass, lambda: _errors(hass, x1c_hms)[0]["text"] is not None)
    assert _errors(hass, x1c_hms) == [
        {
            "code": "HMS_0300_0100_0001_0007",
            "severity": "fatal",
            "url": WIKI.format("x1", "0300_0100_0001_0007"),
            "text": EN["device_hms"][HMS_HEATBED],
        }
    ]
    p1s_hms = entity_id_of(hass, "sensor", P1S_SN, "hms_errors")
    assert _errors(hass, p1s_hms) == [
        {
            "code": "HMS_0300_0100_0001_0007",
            "severity": "fatal",
            "url": WIKI.format("p1", "0300_0100_0001_0007"),
            "text": EN["device_hms"][HMS_HEATBED],
        },
        {
            "code": "HMS_0700_8000_0003_0001",
            "severity": "common",
            "url": WIKI.format("p1", "0700_8000_0003_0001"),
            "text": EN["device_hms"][HMS_AMS],
        },
    ]
    x1c_error = entity_id_of(hass, "sensor", X1C_SN, "print_error")
    state = hass.states.get(x1c_error)
    assert state is not None
    assert state.state == "0300_400C"
    assert state.attributes["text"] == EN["device_error"][ERROR_CANCELLED]
    # A code the service has no text for.
    state = hass.states.get(entity_id_of(hass, "sensor", P1S_SN, "print_error"))
    assert state is not None
    assert state.attributes["text"] is None
    # Cleared: no error, no attribute.
    printers["x1c"].update({"print_error": 0, "hms": []})
    await wait_for(hass, lambda: _errors(hass, x1c_hms) == [])
    state = hass.states.get(x1c_error)
    assert state is not None
    assert "text" not in state.attributes


def _errors(hass: HomeAssistant, entity_id: str) -> list[dict[str, Any]]:
    state = hass.states.get(entity_id)
    assert state is not None
    return list(state.attributes["errors"])


async def test_entities_update_when_texts_arrive(
    hass: HomeAssistant,
    cloud: FakeCloud,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    """Texts arriving late update the entities showing codes, and only those."""
    cloud.hms.status = 500
    printers["x1c"].state.update(hms=[HMS_A])
    await setup()
    await _settle(hass)
    x1c_hms = entity_id_of(hass, "sensor", X1C_SN, "hms_errors")
    assert _errors(hass, x1c_hms)[0]["text"] is None
    quiet = [
        entity_id_of(hass, "sensor", P1S_SN, "hms_errors"),
        entity_id_of(hass, "sensor", X1C_SN, "print_error"),
        entity_id_of(hass, "event", X1C_SN, "hms"),
    ]
    writes = StateWrites(hass, x1c_hms, *quiet)
    cloud.hms.status = 200
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=RETRY_MAX))
    await _settle(hass)
    await wait_for(hass, lambda: bool(writes.writes[x1c_hms]))
    writes.remove()
    assert [w["errors"][0]["text"] for w in writes.writes[x1c_hms]] == [
        EN["device_hms"][HMS_HEATBED]
    ]
    assert all(writes.writes[entity_id] == [] for entity_id in quiet)


async def test_event_carries_text(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    """error_raised and error_cleared name the code in words."""
    await setup()
    await _settle(hass)
    entity_id = entity_id_of(hass, "event", P1S_SN, "hms")
    writes = StateWrites(hass, entity_id)
    printers["p1s"].update({"hms": [HMS_B]})
    await wait_for(hass, lambda: len(writes.writes[entity_id]) == 1)
    printers["p1s"].update({"hms": []})
    await wait_for(hass, lambda: len(writes.writes[entity_id]) == 2)
    writes.remove()
    expected = {
        "code": "HMS_0700_8000_0003_0001",
        "severity": "common",
        "url": WIKI.format("p1", "0700_8000_0003_0001"),
        "text": EN["device_hms"][HMS_AMS],
    }
    assert [
        {key: w[key] for key in ("event_type", *expected)}
        for w in writes.writes[entity_id]
    ] == [
        {"event_type": "error_raised", **expected},
        {"event_type": "error_cleared", **expected},
    ]


async def test_texts_removed_with_the_last_entry(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    mock_config_entry: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
    hass_storage: dict[str, Any],
) -> None:
    """Removing the last entry removes every stored table and the index."""
    printers["x1c"].state.update(hms=[HMS_A])
    await setup()
    p1s_key = texts_store_key("01P", "en")
    await wait_for(hass, lambda: {KEY, p1s_key} <= set(hass_storage))
    assert sorted(hass_storage[INDEX_KEY]["data"]["keys"]) == sorted([KEY, p1s_key])
    # Another entry still uses the texts: they stay.
    other = MockConfigEntry(domain=DOMAIN, title="other", data={}, unique_id="other")
    other.add_to_hass(hass)
    await hass.config_entries.async_remove(mock_config_entry.entry_id)
    await _settle(hass)
    assert {KEY, p1s_key, INDEX_KEY} <= set(hass_storage)
    await hass.config_entries.async_remove(other.entry_id)
    await _settle(hass)
    assert not {KEY, p1s_key, INDEX_KEY} & set(hass_storage)


async def test_unreadable_index_removes_nothing_else(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """An index of the wrong shape names no table; foreign keys are never removed."""
    hass_storage[INDEX_KEY] = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": INDEX_KEY,
        "data": {"keys": ["core.config_entries", 7, KEY]},
    }
    hass_storage["core.config_entries"] = {"version": 1, "key": "x", "data": {}}
    hass_storage[KEY] = {"version": STORAGE_VERSION, "key": KEY, "data": {}}
    await async_remove_stored_texts(hass)
    assert "core.config_entries" in hass_storage
    assert KEY not in hass_storage
    assert INDEX_KEY not in hass_storage
    hass_storage[INDEX_KEY] = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": INDEX_KEY,
        "data": {"keys": "not a list"},
    }
    await async_remove_stored_texts(hass)
    assert INDEX_KEY not in hass_storage
    # Written by a newer version: unreadable, removed without touching others.
    hass_storage[INDEX_KEY] = {
        "version": STORAGE_VERSION + 1,
        "minor_version": 1,
        "key": INDEX_KEY,
        "data": {"keys": [KEY]},
    }
    hass_storage[KEY] = {"version": STORAGE_VERSION, "key": KEY, "data": {}}
    await async_remove_stored_texts(hass)
    assert KEY in hass_storage
    assert INDEX_KEY not in hass_storage

"""HMS and print error texts: one shared cache, kept in Home Assistant's storage.

Texts are never bundled: they are downloaded at runtime from the text service
of the library configuration (``bambu.hms_text``), one table per printer model
(serial prefix) and language, with Home Assistant's shared aiohttp session.
Every config entry and printer of a model shares one :class:`HmsTextBook`
per Home Assistant instance. A book starts from what the storage holds and
downloads when that is missing or older than a day; it asks again at most
daily. A failed download (or an answer without texts where texts were known)
keeps the texts it has and tries again later with growing pauses. Nothing
here blocks or fails an entry's set-up: entities show codes without words
until texts arrive, then update.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .bambu.config import BambuConfig
from .bambu.const import PrinterModel
from .bambu.hms_text import (
    EMPTY_TEXTS,
    HmsTextError,
    HmsTexts,
    fetch_texts,
    serial_prefix,
    service_language,
    wiki_url,
)
from .bambu.mqtt import Backoff
from .bambu.state import HmsEntry
from .const import DOMAIN, LOGGER
from .entity import BambuPrinterEntity

DATA_HMS_TEXTS: HassKey[HmsTextCache] = HassKey(f"{DOMAIN}_hms_texts")
STORAGE_VERSION: Final = 1
# How old texts may get before they are downloaded again.
REFRESH_AFTER: Final = timedelta(days=1)
# Pauses between failed downloads (seconds): five minutes growing to six hours.
RETRY_MIN: Final = 300.0
RETRY_MAX: Final = 6 * 3600.0


# The storage key of the list of every stored text table, so that removing
# the integration's last entry can remove them all.
INDEX_KEY: Final = f"{DOMAIN}.hms_texts"


def texts_store_key(prefix: str, language: str) -> str:
    """The storage key of one model's texts in one language."""
    return f"{DOMAIN}.hms_texts.{prefix}.{language}".lower()


class HmsTextBook:
    """The texts of one model in one language, shared by every entity using them.

    It works only while someone listens: the first listener starts loading
    (storage, then the service when needed), the last one leaving stops the
    timers, so an unloaded integration leaves nothing scheduled.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        config: BambuConfig,
        prefix: str,
        language: str,
        on_saved: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """Prepare the book; nothing is read before the first listener.

        ``on_saved`` hears the storage key each time the texts are stored.
        """
        self.hass = hass
        self._on_saved = on_saved
        self.config = config
        self.prefix = prefix
        self.language = language
        self.texts: HmsTexts = EMPTY_TEXTS
        self.fetched: datetime | None = None
        self.store_key = texts_store_key(prefix, language)
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, self.store_key
        )
        self._listeners: list[Callable[[], None]] = []
        self._loaded = False
        self._task: asyncio.Task[None] | None = None
        self._cancel_timer: CALLBACK_TYPE | None = None
        self._backoff = Backoff(RETRY_MIN, RETRY_MAX)

    @callback
    def listen(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``listener`` whenever the texts change; returns the remover."""
        self._listeners.append(listener)
        if len(self._listeners) == 1:
            self._start()

        @callback
        def remove() -> None:
            self._listeners.remove(listener)
            if not self._listeners:
                self.stop()

        return remove

    @callback
    def _start(self) -> None:
        if self._task is None and self._cancel_timer is None:
            task = self.hass.async_create_background_task(
                self._async_update(), f"{DOMAIN} HMS texts {self.prefix}"
            )
            # Started eagerly: it may be over already (nothing was due).
            self._task = None if task.done() else task

    @callback
    def stop(self) -> None:
        """Cancel the planned look and a download under way."""
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @callback
    def _schedule(self, delay: float) -> None:
        self._cancel_timer = async_call_later(self.hass, delay, self._timer_fired)

    @callback
    def _timer_fired(self, _now: datetime) -> None:
        self._cancel_timer = None
        self._start()

    async def _async_update(self) -> None:
        """Load once from storage, download when due, then plan the next look."""
        try:
            if not self._loaded:
                await self._async_load()
                self._loaded = True
            due = self._due()
            if due > 0:
                self._schedule(due)
                return
            delay = await self._async_download()
            self._schedule(delay)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _due(self) -> float:
        """Seconds until the texts should be downloaded again (0: now)."""
        if self.fetched is None:
            return 0.0
        age = dt_util.utcnow() - self.fetched
        return max(0.0, (REFRESH_AFTER - age).total_seconds())

    async def _async_load(self) -> None:
        try:
            stored = await self._store.async_load()
        except (HomeAssistantError, NotImplementedError) as err:
            # Damaged, or written by a newer version of the integration.
            LOGGER.debug("Stored HMS texts %s unreadable: %r", self.prefix, err)
            return
        if stored is None:
            return
        fetched = stored.get("fetched")
        when = dt_util.parse_datetime(fetched) if isinstance(fetched, str) else None
        try:
            texts = HmsTexts.from_stored(stored.get("texts"))
        except HmsTextError as err:
            LOGGER.debug("Stored HMS texts %s ignored: %s", self.prefix, err)
            return
        self._set(texts)
        # Texts from another service (a demo's) count as old.
        if when is not None and stored.get("url") == self.config.endpoints.hms_url:
            self.fetched = when

    async def _async_download(self) -> float:
        """Download the texts; seconds until the next attempt."""
        try:
            texts = await fetch_texts(
                async_get_clientsession(self.hass),
                self.config,
                self.prefix,
                self.language,
            )
        except HmsTextError as err:
            LOGGER.debug("HMS texts %s not downloaded: %s", self.prefix, err)
            return self._backoff.next()
        if not texts and self.texts:
            LOGGER.debug("HMS texts %s: the answer has none, kept", self.prefix)
            return self._backoff.next()
        self._backoff.reset()
        self.fetched = dt_util.utcnow()
        self._set(texts)
        await self._store.async_save(self._stored())
        if self._on_saved is not None:
            await self._on_saved(self.store_key)
        return REFRESH_AFTER.total_seconds()

    def _stored(self) -> dict[str, Any]:
        return {
            "url": self.config.endpoints.hms_url,
            "fetched": self.fetched.isoformat() if self.fetched else None,
            "texts": self.texts.as_stored(),
        }

    @callback
    def _set(self, texts: HmsTexts) -> None:
        if texts == self.texts:
            return
        self.texts = texts
        for listener in list(self._listeners):
            listener()


class HmsTextCache:
    """Every book of this Home Assistant instance, by service, model and language."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Start empty; books are made when first asked for."""
        self.hass = hass
        self.books: dict[tuple[str, str, str], HmsTextBook] = {}
        self._index: Store[dict[str, list[str]]] = Store(
            hass, STORAGE_VERSION, INDEX_KEY
        )
        self._index_lock = asyncio.Lock()
        self._unsubscribe_stop = hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, self._stop
        )

    async def _async_remember(self, key: str) -> None:
        """Add a stored table's key to the index (once)."""
        async with self._index_lock:
            keys = await _async_stored_keys(self._index)
            if key not in keys:
                await self._index.async_save({"keys": [*keys, key]})

    @callback
    def close(self) -> None:
        """Stop every book and stop listening for Home Assistant's stop."""
        self._unsubscribe_stop()
        for book in self.books.values():
            book.stop()

    @callback
    def _stop(self, _event: Event) -> None:
        """Nothing is downloaded or scheduled while Home Assistant stops."""
        for book in self.books.values():
            book.stop()

    @callback
    def book(self, config: BambuConfig, serial: str) -> HmsTextBook | None:
        """The book for a printer in Home Assistant's language.

        None when the configuration names no text service or the serial has
        no model prefix.
        """
        url = config.endpoints.hms_url
        prefix = serial_prefix(serial)
        if url is None or prefix is None:
            return None
        language = service_language(self.hass.config.language)
        key = (url, prefix, language)
        if (found := self.books.get(key)) is None:
            found = self.books[key] = HmsTextBook(
                self.hass, config, prefix, language, self._async_remember
            )
        return found


@callback
def async_hms_text_book(
    hass: HomeAssistant, config: BambuConfig, serial: str
) -> HmsTextBook | None:
    """The shared book of a printer's texts (see :meth:`HmsTextCache.book`)."""
    if (cache := hass.data.get(DATA_HMS_TEXTS)) is None:
        cache = hass.data[DATA_HMS_TEXTS] = HmsTextCache(hass)
    return cache.book(config, serial)


@dataclass(frozen=True, slots=True)
class HmsDescriber:
    """Codes in words for one printer: its model's wiki and its texts."""

    model: PrinterModel
    texts: HmsTexts

    def hms(self, entry: HmsEntry) -> dict[str, Any]:
        """An active HMS message as attributes and event data."""
        return {
            "code": entry.hms_code,
            "severity": entry.severity,
            "url": wiki_url(self.model, entry),
            "text": self.texts.hms_text(entry),
        }

    def error_text(self, code: int | None) -> str | None:
        """The words for a print error code, None when unknown."""
        return self.texts.error_text(code)


class HmsTextEntity(BambuPrinterEntity):
    """A printer entity that shows codes in words; updates when texts arrive."""

    _hms_book: HmsTextBook | None = None

    @property
    def describer(self) -> HmsDescriber:
        """The printer's model and the texts known now."""
        texts = EMPTY_TEXTS if self._hms_book is None else self._hms_book.texts
        return HmsDescriber(self.link.spec.model, texts)

    async def async_added_to_hass(self) -> None:
        """Follow the texts of the printer's model as well as its reports."""
        self._hms_book = async_hms_text_book(self.hass, self.hub.config, self.serial)
        await super().async_added_to_hass()
        if self._hms_book is not None:
            self.async_on_remove(self._hms_book.listen(self.write_if_changed))


async def _async_stored_keys(index: Store[dict[str, list[str]]]) -> list[str]:
    """The keys the index lists (none when it is missing or unreadable)."""
    try:
        stored = await index.async_load()
    except (HomeAssistantError, NotImplementedError) as err:
        LOGGER.debug("HMS text index unreadable: %r", err)
        return []
    keys = stored.get("keys") if isinstance(stored, dict) else None
    if not isinstance(keys, list):
        return []
    prefix = f"{INDEX_KEY}."
    return [key for key in keys if isinstance(key, str) and key.startswith(prefix)]


async def async_remove_stored_texts(hass: HomeAssistant) -> None:
    """Remove every stored text table and the index (the last entry is gone).

    Books still in memory stop first, so none writes its table again.
    """
    if (cache := hass.data.pop(DATA_HMS_TEXTS, None)) is not None:
        cache.close()
    index: Store[dict[str, list[str]]] = Store(hass, STORAGE_VERSION, INDEX_KEY)
    for key in await _async_stored_keys(index):
        await Store[dict[str, Any]](hass, STORAGE_VERSION, key).async_remove()
    await index.async_remove()

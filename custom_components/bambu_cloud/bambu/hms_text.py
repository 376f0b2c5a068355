"""Words for HMS and print error codes: Bambu Studio's HMS text service.

A printer reports its health messages and print errors as numbers only.
Bambu Studio shows them as sentences downloaded from a text service
(PROTOCOL.md, "HMS text service"): ``GET <hms_url>/query.php?lang=<lang>&d=<serial
prefix>`` answers ``{"result": 0, "data": {"device_hms": {<language key>:
[{"ecode": ..., "intro": ...}]}, "device_error": {...}}}``, one table per
model (serial prefix) and language. This module downloads and checks such an
answer and looks codes up in it; when and where the tables are kept is the
caller's business (Home Assistant caches them in its storage).

The answer is untrusted input: its size is capped, every part of it is type
checked, an entry with a malformed code or text is dropped, and a wrong shape
is an error that leaves the caller's older tables alone.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from .config import BambuConfig
from .const import PrinterModel
from .state import HmsEntry

# The language asked for when the user's has no texts.
FALLBACK_LANGUAGE: Final = "en"
# An answer holds one language of one model: a few hundred kilobytes today.
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
# A description is a sentence or two; longer ones are cut to this length.
MAX_TEXT_CHARS: Final = 2000
# Entries kept per table; anything beyond is dropped.
MAX_ENTRIES: Final = 50_000

WIKI_BASE: Final = "https://wiki.bambulab.com/en"
WIKI_HOME: Final = f"{WIKI_BASE}/hms/home"

# The languages the service is asked for: Bambu Studio's languages. Others
# get English; Chinese in any script gets the simplified texts, Portuguese
# the Brazilian ones (the only Portuguese Bambu Studio has).
_LANGUAGES: Final = frozenset(
    {"cs", "de", "en", "es", "fr", "hu", "it", "ja", "ko", "nl", "pl", "ru", "sv"}
    | {"tr", "uk"}
)
_REGIONAL: Final = {"zh": "zh-CN", "pt": "pt-BR"}

_HMS_ECODE: Final = re.compile(r"[0-9A-Fa-f]{16}")
_ERROR_ECODE: Final = re.compile(r"[0-9A-Fa-f]{8}")
_SERIAL_PREFIX: Final = re.compile(r"[0-9A-Za-z]{3}")
_CHUNK: Final = 64 * 1024


class HmsTextError(Exception):
    """The text service could not be reached or answered something unusable.

    ``reason`` names what went wrong (for logs): ``connection``, ``timeout``,
    ``status``, ``too_large``, ``json`` or ``shape``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        """Name the reason; the detail is for debug logs only."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class HmsTexts:
    """One model's descriptions in one language.

    ``hms`` maps the 16 upper-case hex digits of an HMS message (attr then
    code) to its text, ``errors`` the 8 hex digits of a print error.
    ``language`` is the service language the texts are in; empty tables mean
    the service has none (yet).
    """

    language: str = FALLBACK_LANGUAGE
    hms: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """True when there is at least one text."""
        return bool(self.hms or self.errors)

    def hms_text(self, entry: HmsEntry) -> str | None:
        """The description of an active HMS message, None when unknown."""
        return self.hms.get(hms_ecode(entry))

    def error_text(self, code: int | None) -> str | None:
        """The description of a print error code, None when unknown."""
        if code is None:
            return None
        return self.errors.get(f"{code & 0xFFFFFFFF:08X}")

    def as_stored(self) -> dict[str, Any]:
        """A JSON-ready form, read back by :meth:`from_stored`."""
        return {
            "language": self.language,
            "hms": dict(self.hms),
            "errors": dict(self.errors),
        }

    @classmethod
    def from_stored(cls, data: object) -> HmsTexts:
        """Texts kept by :meth:`as_stored`, checked like a download.

        A store may be damaged or written by another version: a wrong shape
        raises HmsTextError, malformed entries are dropped.
        """
        if not isinstance(data, Mapping):
            raise HmsTextError("shape", "stored texts are not an object")
        language = data.get("language")
        hms, errors = data.get("hms"), data.get("errors")
        if not (
            isinstance(language, str)
            and isinstance(hms, Mapping)
            and isinstance(errors, Mapping)
        ):
            raise HmsTextError("shape", "stored texts lack language or tables")
        return cls(
            language=language,
            hms=_table(hms.items(), _HMS_ECODE),
            errors=_table(errors.items(), _ERROR_ECODE),
        )


EMPTY_TEXTS: Final = HmsTexts()


def hms_ecode(entry: HmsEntry) -> str:
    """The service's key of an HMS message: attr and code as 16 hex digits."""
    return f"{entry.attr:08X}{entry.code:08X}"


def wiki_url(model: PrinterModel, entry: HmsEntry) -> str:
    """The wiki page of an HMS message for a model, or the generic HMS page."""
    if model.hms_wiki is None:
        return WIKI_HOME
    code = entry.hms_code.removeprefix("HMS_")
    return f"{WIKI_BASE}/{model.hms_wiki}/troubleshooting/hmscode/{code}"


def service_language(language: str) -> str:
    """The service language for a BCP 47 tag (Home Assistant's ``language``).

    ``de-CH`` asks for ``de``, ``zh-Hans`` for ``zh-CN``, ``pt`` for
    ``pt-BR``; a language the service lacks falls back to English.
    """
    primary = language.replace("_", "-").split("-")[0].lower()
    if primary in _REGIONAL:
        return _REGIONAL[primary]
    return primary if primary in _LANGUAGES else FALLBACK_LANGUAGE


def serial_prefix(serial: str) -> str | None:
    """The model key of the service (first three serial characters)."""
    prefix = serial[:3]
    return prefix.upper() if _SERIAL_PREFIX.fullmatch(prefix) else None


def parse_answer(body: bytes, language: str) -> HmsTexts:
    """The texts of one service answer for ``language``.

    An answer without texts for the language (``result`` not 0, no ``data``,
    no matching language key) gives empty texts; a body that is not JSON or
    has the wrong shape raises HmsTextError.
    """
    if len(body) > MAX_ANSWER_BYTES:
        raise HmsTextError("too_large", f"{len(body)} bytes")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise HmsTextError("json", str(err)) from err
    if not isinstance(answer, dict):
        raise HmsTextError("shape", "answer is not an object")
    result, data = answer.get("result"), answer.get("data")
    if result != 0 or isinstance(result, bool) or not isinstance(data, dict):
        return HmsTexts(language=language)
    hms = _language_list(data.get("device_hms"), language)
    errors = _language_list(data.get("device_error"), language)
    return HmsTexts(
        language=language,
        hms=_table(_pairs(hms), _HMS_ECODE),
        errors=_table(_pairs(errors), _ERROR_ECODE),
    )


async def fetch_texts(
    session: aiohttp.ClientSession,
    config: BambuConfig,
    prefix: str,
    language: str,
) -> HmsTexts:
    """Download a model's texts in a service language, English if it has none.

    ``config.endpoints.hms_url`` None means there is no service: empty texts.
    Failures raise HmsTextError. The answer is decoded in the default executor
    (it can be a few megabytes of JSON).
    """
    base = config.endpoints.hms_url
    if base is None:
        return HmsTexts(language=language)
    if _SERIAL_PREFIX.fullmatch(prefix) is None:
        raise ValueError("serial prefix must be three letters or digits")
    texts = await _fetch(session, config, base, prefix, language)
    if texts or language == FALLBACK_LANGUAGE:
        return texts
    return await _fetch(session, config, base, prefix, FALLBACK_LANGUAGE)


async def _fetch(
    session: aiohttp.ClientSession,
    config: BambuConfig,
    base: str,
    prefix: str,
    language: str,
) -> HmsTexts:
    url = f"{base.rstrip('/')}/query.php"
    timeout = aiohttp.ClientTimeout(total=config.timeouts.request)
    try:
        async with session.get(
            url, params={"lang": language, "d": prefix}, timeout=timeout
        ) as response:
            if response.status != 200:
                raise HmsTextError("status", str(response.status))
            if (response.content_length or 0) > MAX_ANSWER_BYTES:
                raise HmsTextError("too_large", str(response.content_length))
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise HmsTextError("too_large", f"over {MAX_ANSWER_BYTES} bytes")
    except TimeoutError as err:
        raise HmsTextError("timeout") from err
    except aiohttp.ClientError as err:
        raise HmsTextError("connection", type(err).__name__) from err
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, parse_answer, bytes(body), language)


def _language_list(tables: object, language: str) -> list[object]:
    """The entry list of the requested language in one table of the answer.

    The service keys a table by a language name that starts with the one
    asked for (``en``, ``zh-CN``); a key of the same primary language
    (``pt`` for ``pt-BR``) is taken when no such key exists.
    """
    if tables is None:
        return []
    if not isinstance(tables, dict):
        raise HmsTextError("shape", "a text table is not an object")
    wanted = language.lower()
    primary = wanted.split("-")[0]
    fallback: object = None
    for key, entries in tables.items():
        folded = str(key).lower()
        if folded.startswith(wanted):
            fallback = entries
            break
        if fallback is None and folded.split("-")[0] == primary:
            fallback = entries
    if fallback is None:
        return []
    if not isinstance(fallback, list):
        raise HmsTextError("shape", "a language's texts are not a list")
    return fallback


def _pairs(entries: list[object]) -> list[tuple[object, object]]:
    return [
        (entry.get("ecode"), entry.get("intro"))
        for entry in entries
        if isinstance(entry, dict)
    ]


def _table(
    pairs: Iterable[tuple[object, object]], pattern: re.Pattern[str]
) -> dict[str, str]:
    """Code -> text for the well-formed pairs; the first text of a code wins."""
    table: dict[str, str] = {}
    for code, text in pairs:
        if len(table) >= MAX_ENTRIES:
            break
        if not (isinstance(code, str) and pattern.fullmatch(code)):
            continue
        if not isinstance(text, str) or not (text := text.strip()):
            continue
        table.setdefault(code.upper(), text[:MAX_TEXT_CHARS])
    return table

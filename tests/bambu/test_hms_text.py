"""The HMS text service client (bambu/hms_text.py) against a fake over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from custom_components.bambu_cloud.bambu.config import BambuConfig, Timeouts
from custom_components.bambu_cloud.bambu.const import lookup_model
from custom_components.bambu_cloud.bambu.hms_text import (
    EMPTY_TEXTS,
    MAX_ANSWER_BYTES,
    MAX_ENTRIES,
    MAX_TEXT_CHARS,
    WIKI_HOME,
    HmsTextError,
    HmsTexts,
    fetch_texts,
    hms_ecode,
    parse_answer,
    serial_prefix,
    service_language,
    wiki_url,
)
from custom_components.bambu_cloud.bambu.state import HmsEntry
from tests.cloud_server import cloud_server, library_config_for
from tools.virtual_farm.hms import (
    ERROR_CANCELLED,
    HMS_AMS,
    HMS_HEATBED,
    FakeHmsService,
    made_up_texts,
)

HEATBED = HmsEntry(
    attr=0x03000100, code=0x00010007, hms_code="HMS_0300_0100_0001_0007", severity=None
)
AMS = HmsEntry(
    attr=0x07008000, code=0x00030001, hms_code="HMS_0700_8000_0003_0001", severity=None
)
EN = made_up_texts()["en"]


def answer(**tables: Any) -> bytes:
    """A service answer holding ``tables`` (device_hms / device_error)."""
    return json.dumps({"result": 0, "data": tables}).encode()


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (real sockets to 127.0.0.1)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def service() -> FakeHmsService:
    """The fake text service with its made-up texts."""
    return FakeHmsService()


@pytest.fixture
async def config(service: FakeHmsService) -> AsyncIterator[BambuConfig]:
    """A configuration whose text service is the fake, served on 127.0.0.1."""
    async with cloud_server(service.app()) as url:
        yield library_config_for("http://127.0.0.1:1", hms_url=url)


# ------------------------------------------------------------------ parsing


def test_parse_answer() -> None:
    """Both tables of the requested language, codes upper-cased."""
    texts = parse_answer(
        answer(
            device_hms={
                "en": [
                    {"ecode": HMS_HEATBED.lower(), "intro": " Hot bed.\nCheck it. "},
                    {"ecode": HMS_AMS, "intro": 'The "AMS".'},
                ],
                "de": [{"ecode": HMS_HEATBED, "intro": "Heizbett."}],
            },
            device_error={"en": [{"ecode": ERROR_CANCELLED, "intro": "Cancelled."}]},
        ),
        "en",
    )
    assert texts == HmsTexts(
        language="en",
        hms={HMS_HEATBED: "Hot bed.\nCheck it.", HMS_AMS: 'The "AMS".'},
        errors={ERROR_CANCELLED: "Cancelled."},
    )
    assert texts.hms_text(HEATBED) == "Hot bed.\nCheck it."
    assert texts.error_text(0x0300400C) == "Cancelled."
    assert texts.error_text(0x0300400D) is None
    assert texts.error_text(None) is None
    assert texts


@pytest.mark.parametrize(
    "entry",
    [
        {"ecode": "030001000001000", "intro": "15 digits"},
        {"ecode": "03000100000100070", "intro": "17 digits"},
        {"ecode": "03000100000100G7", "intro": "not hex"},
        {"ecode": 0x0300010000010007, "intro": "a number"},
        {"ecode": HMS_HEATBED, "intro": 5},
        {"ecode": HMS_HEATBED, "intro": "   "},
        {"ecode": HMS_HEATBED},
        ["a list"],
        "a string",
    ],
)
def test_malformed_entries_are_dropped(entry: Any) -> None:
    """An entry with a bad code or text is left out; the good ones stay."""
    good = {"ecode": HMS_AMS, "intro": "Good."}
    texts = parse_answer(answer(device_hms={"en": [entry, good]}), "en")
    assert texts.hms == {HMS_AMS: "Good."}


def test_print_error_codes_have_eight_digits() -> None:
    """device_error keys are 8 hex digits; an HMS-sized key is dropped there."""
    texts = parse_answer(
        answer(
            device_error={
                "en": [
                    {"ecode": HMS_HEATBED, "intro": "16 digits"},
                    {"ecode": "0300400c", "intro": "Cancelled."},
                ]
            }
        ),
        "en",
    )
    assert texts.errors == {ERROR_CANCELLED: "Cancelled."}
    assert texts.hms == {}


def test_long_texts_are_cut_and_the_first_text_wins() -> None:
    """A text is capped; a repeated code keeps its first text."""
    long = "x" * (MAX_TEXT_CHARS + 10)
    texts = parse_answer(
        answer(
            device_hms={
                "en": [
                    {"ecode": HMS_HEATBED, "intro": long},
                    {"ecode": HMS_HEATBED, "intro": "Second."},
                ]
            }
        ),
        "en",
    )
    assert texts.hms == {HMS_HEATBED: "x" * MAX_TEXT_CHARS}


def test_entries_are_capped() -> None:
    """At most MAX_ENTRIES codes per table are kept."""
    entries = [
        {"ecode": f"{index:016X}", "intro": "t"} for index in range(MAX_ENTRIES + 5)
    ]
    texts = parse_answer(answer(device_hms={"en": entries}), "en")
    assert len(texts.hms) == MAX_ENTRIES


@pytest.mark.parametrize(
    ("keys", "language", "found"),
    [
        (["en"], "en", True),
        (["EN"], "en", True),
        (["en-US"], "en", True),
        (["zh-CN", "zh"], "zh-CN", True),
        (["pt"], "pt-BR", True),
        (["de"], "en", False),
        ([], "en", False),
    ],
)
def test_language_keys(keys: list[str], language: str, found: bool) -> None:
    """A key starting with the language, else one of its primary language."""
    entry = [{"ecode": HMS_HEATBED, "intro": "Text."}]
    texts = parse_answer(answer(device_hms=dict.fromkeys(keys, entry)), language)
    assert texts.language == language
    assert bool(texts.hms) is found


def test_exact_language_key_beats_a_primary_match() -> None:
    """``zh-CN`` is taken over ``zh-TW`` listed before it."""
    texts = parse_answer(
        answer(
            device_hms={
                "zh-TW": [{"ecode": HMS_HEATBED, "intro": "traditional"}],
                "zh-CN": [{"ecode": HMS_HEATBED, "intro": "simplified"}],
            }
        ),
        "zh-CN",
    )
    assert texts.hms == {HMS_HEATBED: "simplified"}


@pytest.mark.parametrize(
    "body",
    [
        {"result": -1, "data": None},
        {"result": 1, "data": {"device_hms": {"en": []}}},
        {"result": True, "data": {}},
        {"result": "0", "data": {}},
        {"result": 0},
        {"result": 0, "data": []},
        {"result": 0, "data": {}},
    ],
)
def test_answers_without_texts(body: dict[str, Any]) -> None:
    """No texts for the model or language: empty, not an error."""
    texts = parse_answer(json.dumps(body).encode(), "de")
    assert texts == HmsTexts(language="de")
    assert not texts


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>busy</html>", "json"),
        (b"\xff\xfe", "json"),
        (b"[]", "shape"),
        (answer(device_hms=[]), "shape"),
        (answer(device_hms={"en": {"ecode": HMS_HEATBED}}), "shape"),
        (answer(device_error={"en": "text"}), "shape"),
        (b" " * (MAX_ANSWER_BYTES + 1), "too_large"),
    ],
)
def test_bad_answers_are_errors(body: bytes, reason: str) -> None:
    """A body that is not the documented shape raises, naming why."""
    with pytest.raises(HmsTextError) as caught:
        parse_answer(body, "en")
    assert caught.value.reason == reason


# ------------------------------------------------------------------ storage


def test_stored_round_trip() -> None:
    """as_stored / from_stored keep everything."""
    texts = HmsTexts(
        language="de", hms={HMS_HEATBED: "Heizbett."}, errors={ERROR_CANCELLED: "Ab."}
    )
    assert HmsTexts.from_stored(json.loads(json.dumps(texts.as_stored()))) == texts


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        {"language": "en", "hms": {}},
        {"language": 5, "hms": {}, "errors": {}},
        {"language": "en", "hms": [], "errors": {}},
    ],
)
def test_damaged_store_is_an_error(stored: Any) -> None:
    """A store of the wrong shape raises; its caller downloads instead."""
    with pytest.raises(HmsTextError, match="shape"):
        HmsTexts.from_stored(stored)


def test_stored_entries_are_checked() -> None:
    """Malformed stored entries are dropped like downloaded ones."""
    texts = HmsTexts.from_stored(
        {
            "language": "en",
            "hms": {HMS_HEATBED: "Bed.", "bad": "x", HMS_AMS: 5},
            "errors": {ERROR_CANCELLED: "", "0300400D": "Other."},
        }
    )
    assert texts.hms == {HMS_HEATBED: "Bed."}
    assert texts.errors == {"0300400D": "Other."}


# ------------------------------------------------------- codes, links, keys


def test_ecode_and_wiki_links() -> None:
    """Codes as the service and the wiki spell them, per model."""
    assert hms_ecode(HEATBED) == HMS_HEATBED
    path = "troubleshooting/hmscode/0300_0100_0001_0007"
    x1c = lookup_model(serial="00M09A350100001")
    assert wiki_url(x1c, HEATBED) == f"https://wiki.bambulab.com/en/x1/{path}"
    p1s = lookup_model(serial="01P00A451600002")
    assert wiki_url(p1s, HEATBED) == f"https://wiki.bambulab.com/en/p1/{path}"
    a1mini = lookup_model(serial="0309DA470200003")
    assert wiki_url(a1mini, AMS) == (
        "https://wiki.bambulab.com/en/a1-mini/troubleshooting/hmscode/"
        "0700_8000_0003_0001"
    )
    # The X2D has no wiki section yet: the generic HMS page.
    x2d = lookup_model(product_name="X2D")
    assert x2d.hms_wiki is None
    assert (
        wiki_url(x2d, HEATBED) == WIKI_HOME == "https://wiki.bambulab.com/en/hms/home"
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("de", "de"),
        ("de-CH", "de"),
        ("fr", "fr"),
        ("es-419", "es"),
        ("it", "it"),
        ("nl", "nl"),
        ("pl", "pl"),
        ("pt", "pt-BR"),
        ("pt-BR", "pt-BR"),
        ("ja", "ja"),
        ("ko", "ko"),
        ("zh-Hans", "zh-CN"),
        ("zh-Hant", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("cs", "cs"),
        ("sv", "sv"),
        ("uk", "uk"),
        ("eo", "en"),
        ("", "en"),
    ],
)
def test_service_language(language: str, expected: str) -> None:
    """Home Assistant languages map to the service's, English otherwise."""
    assert service_language(language) == expected


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        ("00M09A350100001", "00M"),
        ("01p00a451600002", "01P"),
        ("0", None),
        ("0/M09", None),
        ("", None),
    ],
)
def test_serial_prefix(serial: str, expected: str | None) -> None:
    """The model key is the serial's first three characters."""
    assert serial_prefix(serial) == expected


# ----------------------------------------------------------------- download


async def test_fetch(
    session: aiohttp.ClientSession, service: FakeHmsService, config: BambuConfig
) -> None:
    """English texts of a model, asked for by serial prefix and language."""
    texts = await fetch_texts(session, config, "00M", "en")
    assert texts == HmsTexts(
        language="en", hms=EN["device_hms"], errors=EN["device_error"]
    )
    assert service.queries == [{"lang": "en", "d": "00M"}]


async def test_fetch_in_another_language(
    session: aiohttp.ClientSession, service: FakeHmsService, config: BambuConfig
) -> None:
    """German texts when the service has them; English is not asked for."""
    texts = await fetch_texts(session, config, "00M", "de")
    assert texts.language == "de"
    assert texts.hms_text(HEATBED) == made_up_texts()["de"]["device_hms"][HMS_HEATBED]
    assert texts.hms_text(AMS) is None
    assert service.queries == [{"lang": "de", "d": "00M"}]


async def test_fetch_falls_back_to_english(
    session: aiohttp.ClientSession, service: FakeHmsService, config: BambuConfig
) -> None:
    """A language without texts is followed by English."""
    texts = await fetch_texts(session, config, "01P", "ko")
    assert texts.language == "en"
    assert texts.hms_text(HEATBED) == EN["device_hms"][HMS_HEATBED]
    assert service.queries == [{"lang": "ko", "d": "01P"}, {"lang": "en", "d": "01P"}]


async def test_fetch_model_without_texts(
    session: aiohttp.ClientSession, service: FakeHmsService, config: BambuConfig
) -> None:
    """A model the service has nothing for: empty English texts."""
    service.prefixes = {"00M"}
    texts = await fetch_texts(session, config, "26A", "en")
    assert texts == EMPTY_TEXTS
    assert service.queries == [{"lang": "en", "d": "26A"}]


async def test_fetch_without_service(session: aiohttp.ClientSession) -> None:
    """No hms_url: no texts and no request."""
    config = library_config_for("http://127.0.0.1:1")
    assert config.endpoints.hms_url is None
    assert await fetch_texts(session, config, "00M", "de") == HmsTexts(language="de")


async def test_fetch_refuses_a_bad_prefix(
    session: aiohttp.ClientSession, service: FakeHmsService, config: BambuConfig
) -> None:
    """Only a serial prefix goes into the query."""
    with pytest.raises(ValueError, match="serial prefix"):
        await fetch_texts(session, config, "0&x", "en")
    assert service.queries == []


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [(500, None, "status"), (404, None, "status"), (200, "<html/>", "json")],
)
async def test_fetch_failures(
    session: aiohttp.ClientSession,
    service: FakeHmsService,
    config: BambuConfig,
    status: int,
    body: str | None,
    reason: str,
) -> None:
    """A failed or garbled answer raises HmsTextError."""
    service.status, service.body = status, body
    with pytest.raises(HmsTextError) as caught:
        await fetch_texts(session, config, "00M", "en")
    assert caught.value.reason == reason


async def test_fetch_refuses_large_answers(session: aiohttp.ClientSession) -> None:
    """A declared or streamed body over the limit is not read to the end."""

    async def declared(_request: web.Request) -> web.Response:
        return web.Response(body=b" " * (MAX_ANSWER_BYTES + 1))

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        for _ in range(MAX_ANSWER_BYTES // len(chunk) + 1):
            await response.write(chunk)
        await response.write_eof()
        return response

    for handler in (declared, streamed):
        app = web.Application()
        app.router.add_get("/query.php", handler)
        async with cloud_server(app) as url:
            config = library_config_for("http://127.0.0.1:1", hms_url=url)
            with pytest.raises(HmsTextError) as caught:
                await fetch_texts(session, config, "00M", "en")
        assert caught.value.reason == "too_large"


async def test_fetch_timeout(session: aiohttp.ClientSession) -> None:
    """A service that does not answer in time is a timeout."""

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})  # pragma: no cover - never reached

    app = web.Application()
    app.router.add_get("/query.php", slow)
    async with cloud_server(app) as url:
        config = library_config_for("http://127.0.0.1:1", hms_url=url)
        config = dataclasses.replace(config, timeouts=Timeouts(request=0.2))
        with pytest.raises(HmsTextError) as caught:
            await fetch_texts(session, config, "00M", "en")
    assert caught.value.reason == "timeout"


async def test_fetch_connection_refused(session: aiohttp.ClientSession) -> None:
    """Nothing listening is a connection error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = library_config_for(
        "http://127.0.0.1:1", hms_url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(HmsTextError) as caught:
        await fetch_texts(session, config, "00M", "en")
    assert caught.value.reason == "connection"
    assert str(caught.value) == "connection: ClientConnectorError"

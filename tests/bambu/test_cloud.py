"""Tests for BambuCloud (bambu/cloud.py) against the fake cloud over real HTTP."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from custom_components.bambu_cloud.bambu.auth import AppCertificate
from custom_components.bambu_cloud.bambu.cloud import BambuCloud
from custom_components.bambu_cloud.bambu.config import BambuConfig, Timeouts
from custom_components.bambu_cloud.bambu.const import RegionEndpoints
from custom_components.bambu_cloud.bambu.errors import (
    BambuAuthError,
    BambuCodeError,
    BambuConnectionError,
    BambuError,
    BambuForbiddenError,
    BambuRateLimitedError,
)
from custom_components.bambu_cloud.bambu.models import (
    BedType,
    FirmwareInfo,
    FirmwareRelease,
    LoginKind,
    valid_serial,
)
from tests.app_certs import rsa_cert
from tests.cloud_server import (
    ACCOUNT,
    CODE,
    OTHER_TOKEN,
    OTHER_UID,
    PASSWORD,
    TFA_ACCOUNT,
    TFA_CODE,
    TOKEN,
    UID,
    Failure,
    FakeCloud,
    cloud_server,
    fake_cloud,
    library_config_for,
)
from tests.common import load_json_object_fixture

PROFILE = "/v1/user-service/my/profile"
BIND = "/v1/iot-service/api/user/bind"
TASKS = "/v1/user-service/my/tasks"
VERSION = "/v1/iot-service/api/user/device/version"
LOGIN = "/v1/user-service/user/login"
EMAIL_CODE = "/v1/user-service/user/sendemail/code"
SMS_CODE = "/api/v1/user-service/user/sendsmscode"
TFA_API = "/v1/user-service/user/tfa/login"
CSRF = "/api/csrf"
TFA = "/api/sign-in/tfa"

# 2023-11-14T22:13:20.5Z, exactly representable as a float.
NOW = 1_700_000_000.5


def fixed_clock() -> float:
    return NOW


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (real sockets to 127.0.0.1)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def served(socket_enabled: None) -> AsyncIterator[tuple[FakeCloud, str]]:
    """The fake cloud and its base URL."""
    cloud = fake_cloud()
    async with cloud_server(cloud.app()) as base_url:
        yield cloud, base_url


@pytest.fixture
def fake(served: tuple[FakeCloud, str]) -> FakeCloud:
    """The fake cloud."""
    return served[0]


@pytest.fixture
def config(served: tuple[FakeCloud, str]) -> BambuConfig:
    """The library's configuration pointing at the fake cloud."""
    return library_config_for(served[1])


@pytest.fixture
def client(session: aiohttp.ClientSession, config: BambuConfig) -> BambuCloud:
    """A client of the test account, with a fixed clock."""
    return BambuCloud(session, config, TOKEN, clock=fixed_clock)


def closed_port_url() -> str:
    """The URL of a 127.0.0.1 port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[BambuConfig]:
    """Serve an ad-hoc app on 127.0.0.1; yields a configuration for it."""
    async with cloud_server(app) as base_url:
        yield library_config_for(base_url)


def answer(body: Any, status: int = 200) -> Failure:
    """A canned JSON answer."""
    return Failure(status, json.dumps(body))


def last_request(fake: FakeCloud, path: str) -> tuple[str, dict[str, str], Any]:
    method, _, headers, body = next(r for r in reversed(fake.requests) if r[1] == path)
    return method, headers, body


# --------------------------------------------------------------------------
# Headers


async def test_headers_with_token(client: BambuCloud, fake: FakeCloud) -> None:
    await client.get_profile()
    method, headers, body = last_request(fake, PROFILE)
    assert method == "GET"
    assert body is None
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert "x-bbl-app-certification-id" not in {k.lower() for k in headers}
    assert "x-bbl-device-security-sign" not in {k.lower() for k in headers}


async def test_headers_with_app_certificate(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    good = rsa_cert()
    certificate = AppCertificate.from_pem(None, good.key_pem + good.cert_pem)
    cloud = BambuCloud(session, config, TOKEN, certificate, clock=fixed_clock)
    await cloud.get_bound_printers()
    _, headers, _ = last_request(fake, BIND)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["x-bbl-app-certification-id"] == good.certificate_id
    signature = base64.b64decode(headers["x-bbl-device-security-sign"], validate=True)
    assert good.public_key is not None
    # The signed text is the decimal Unix time in milliseconds.
    good.public_key.verify(
        signature, b"1700000000500", padding.PKCS1v15(), hashes.SHA256()
    )


async def test_no_authorization_without_token(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    cloud = BambuCloud(session, config)
    with pytest.raises(BambuAuthError):
        await cloud.get_profile()
    _, headers, _ = last_request(fake, PROFILE)
    assert "Authorization" not in headers
    assert headers["Content-Type"] == "application/json"


# --------------------------------------------------------------------------
# Profile


async def test_profile(client: BambuCloud) -> None:
    profile = await client.get_profile()
    assert profile.uid == UID
    assert profile.name == "maker_7890"
    assert profile.account == ACCOUNT
    assert profile.nickname == "Maker"
    assert profile.avatar == "https://example.invalid/avatar.png"


async def test_profile_answer_matches_fixture(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    """The fake's profile answer is the one in profile.json, field for field."""
    async with session.get(
        f"{config.endpoints.api_url}{PROFILE}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        assert await response.json() == load_json_object_fixture("profile.json")


async def test_profile_other_account(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    profile = await BambuCloud(session, config, OTHER_TOKEN).get_profile()
    assert profile.uid == OTHER_UID


@pytest.mark.parametrize(
    ("body", "uid"),
    [
        ({"uidStr": "555", "uid": 111}, "555"),
        ({"uid": 31337}, "31337"),
        ({"uidStr": "", "uid": 42}, "42"),
        ({"uidStr": None, "uid": "77"}, "77"),
    ],
)
async def test_profile_uid_sources(
    client: BambuCloud, fake: FakeCloud, body: dict[str, Any], uid: str
) -> None:
    fake.fail(PROFILE, answer(body))
    profile = await client.get_profile()
    assert profile.uid == uid
    assert profile.name is None
    assert profile.account is None
    assert profile.nickname is None
    assert profile.avatar is None


async def test_profile_nickname_fallback_and_wrong_types(
    client: BambuCloud, fake: FakeCloud
) -> None:
    fake.fail(
        PROFILE,
        answer(
            {
                "uid": 1,
                "name": ["not", "a", "name"],
                "account": {"email": "x"},
                "nickName": "Camel",
                "avatar": True,
            }
        ),
    )
    profile = await client.get_profile()
    assert profile.uid == "1"
    assert profile.name is None
    assert profile.account is None
    assert profile.nickname == "Camel"
    assert profile.avatar is None


@pytest.mark.parametrize(
    "body",
    [
        {"name": "no uid"},
        {"uid": None},
        {"uid": True},
        {"uid": ""},
        {"uid": [1]},
        {"uidStr": "", "uid": {"id": 1}},
    ],
)
async def test_profile_without_uid(
    client: BambuCloud, fake: FakeCloud, body: dict[str, Any]
) -> None:
    fake.fail(PROFILE, answer(body))
    with pytest.raises(BambuConnectionError, match="profile without uid"):
        await client.get_profile()


# --------------------------------------------------------------------------
# Bind list


async def test_bound_printers(client: BambuCloud, fake: FakeCloud) -> None:
    printers = await client.get_bound_printers()
    assert [p.serial for p in printers] == ["00M09A350100001", "01P00A451600002"]
    x1c, p1s = printers
    assert x1c.name == "Workshop X1C"
    assert x1c.online is True
    assert x1c.print_status == "IDLE"
    assert x1c.model_id == "BL-P001"
    assert x1c.product_name == "X1 Carbon"
    # The fake appends "\n" like older cloud answers did.
    assert x1c.access_code == "12345678"
    assert x1c.nozzle_diameter == 0.4
    assert x1c.structure == "CoreXY"
    assert x1c.print_job == "987654321"
    assert p1s.print_status == "RUNNING"
    assert p1s.model_id == "C12"
    assert "12345678" not in repr(x1c)


async def test_bound_printers_lenient_parsing(
    client: BambuCloud, fake: FakeCloud
) -> None:
    devices = [
        {
            "dev_id": "0309DA470200003",
            "name": None,
            "online": "true",
            "print_status": {"x": 1},
            "dev_model_name": ["N1"],
            "dev_product_name": 12,
            "dev_access_code": "  87654321 \n",
            "nozzle_diameter": "0.6",
            "dev_structure": False,
            "print_job": 123456,
        },
        {
            "dev_id": "039AB0000000001",
            "name": "",
            "online": 1,
            "dev_access_code": ["nope"],
            "nozzle_diameter": True,
        },
        {
            "dev_id": "22E8BJ5B1001755",
            "name": "P2S",
            "online": False,
            "dev_access_code": "\n",
            "nozzle_diameter": "wide",
        },
    ]
    fake.fail(BIND, answer({"message": "success", "devices": devices}))
    printers = await client.get_bound_printers()
    assert [p.serial for p in printers] == [
        "0309DA470200003",
        "039AB0000000001",
        "22E8BJ5B1001755",
    ]
    a1_mini, a1, p2s = printers
    assert a1_mini.name == "0309DA470200003"  # falls back to the serial
    assert a1_mini.online is False  # only a JSON true is online
    assert a1_mini.print_status is None
    assert a1_mini.model_id is None
    assert a1_mini.product_name == "12"
    assert a1_mini.access_code == "87654321"
    assert a1_mini.nozzle_diameter == 0.6
    assert a1_mini.structure is None
    assert a1_mini.print_job == "123456"
    assert a1.name == "039AB0000000001"
    assert a1.online is False
    assert a1.access_code is None
    assert a1.nozzle_diameter is None
    assert p2s.name == "P2S"
    assert p2s.access_code is None
    assert p2s.nozzle_diameter is None


@pytest.mark.parametrize(
    "body",
    [
        {"message": "success", "code": None, "error": None, "devices": []},
        {"devices": []},
        {"code": 0, "devices": []},
        {"code": "0", "error": "", "devices": []},
    ],
)
async def test_bound_printers_empty(
    client: BambuCloud, fake: FakeCloud, body: dict[str, Any]
) -> None:
    """Only a well-formed empty list means "no printers bound"."""
    fake.fail(BIND, answer(body))
    assert await client.get_bound_printers() == []


X1C_ENTRY = {"dev_id": "00M09A350100001", "name": "X1C", "online": True}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"message": "success"}, "without a device list"),
        ({"message": "success", "code": None, "devices": None}, "without a device"),
        ({"devices": {"dev_id": "00M09A350100001"}}, "without a device list"),
        ({"devices": "00M09A350100001"}, "without a device list"),
        ({"message": "system busy", "code": 500}, r"error \(code 500\)"),
        ({"message": "busy", "code": 500, "devices": [X1C_ENTRY]}, "error"),
        ({"code": "oops", "devices": [X1C_ENTRY]}, r"error \(code None\)"),
        ({"error": "internal", "devices": [X1C_ENTRY]}, "error"),
        ({"devices": [X1C_ENTRY, None]}, "entry without dev_id"),
        ({"devices": [X1C_ENTRY, "01P00A451600002"]}, "entry without dev_id"),
        ({"devices": [X1C_ENTRY, {"name": "no serial"}]}, "entry without dev_id"),
        ({"devices": [X1C_ENTRY, {"dev_id": None}]}, "entry without dev_id"),
        ({"devices": [X1C_ENTRY, {"dev_id": 12345678}]}, "entry without dev_id"),
        ({"devices": [X1C_ENTRY, {"dev_id": True}]}, "entry without dev_id"),
    ],
)
async def test_bound_printers_malformed(
    client: BambuCloud, fake: FakeCloud, body: dict[str, Any], match: str
) -> None:
    """A bad answer is a failure, never a shorter list (which removes devices)."""
    fake.fail(BIND, answer(body))
    with pytest.raises(BambuConnectionError, match=match) as info:
        await client.get_bound_printers()
    assert type(info.value) is BambuConnectionError


@pytest.mark.parametrize(
    "serial",
    [
        "",
        "0309DA4",  # too short
        "0" * 33,  # too long
        "00M09A35010000+",
        "00M09A35010000#",
        "00M09A35/report",
        "00M09A350100001 ",
        "00M09A350100001\n",
        "00M09A35010000\x00",
        "00M09Ä350100001",
        "00M09A\uff1350100001",  # fullwidth digit: a digit, but not ASCII
    ],
)
async def test_bound_printers_invalid_serial_skipped(
    client: BambuCloud,
    fake: FakeCloud,
    serial: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An invalid serial is skipped with one warning, whatever the poll count."""
    devices = [X1C_ENTRY, {"dev_id": serial, "name": "Odd", "online": True}]
    fake.fail(BIND, answer({"devices": devices}), times=3)
    for _ in range(3):
        printers = await client.get_bound_printers()
        assert [p.serial for p in printers] == ["00M09A350100001"]
    warnings = [r for r in caplog.records if "invalid serial" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelname == "WARNING"


async def test_bound_printers_rejected_serials_bounded(
    client: BambuCloud, fake: FakeCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """Ever new junk serials cannot grow the memory of warnings for ever."""
    junk = [{"dev_id": f"bad-{index:04d}"} for index in range(100)]
    fake.fail(BIND, answer({"devices": junk}), times=2)
    assert await client.get_bound_printers() == []
    assert await client.get_bound_printers() == []
    warnings = [r for r in caplog.records if "invalid serial" in r.getMessage()]
    # The first 64 are remembered; the others warn again on the next poll.
    assert len(warnings) == 100 + 36


@pytest.mark.parametrize(
    ("serial", "valid"),
    [
        ("00M09A350100001", True),
        ("01P00A451600002", True),
        ("22E8BJ5B1001755", True),
        ("abcdEFGH", True),
        ("A" * 32, True),
        ("A" * 7, False),
        ("A" * 33, False),
        ("00M09A35010000/", False),
        ("00M09A35010000+", False),
        ("00M09A350100001\n", False),
        ("٠١٢٣٤٥٦٧٨", False),  # Arabic-Indic digits
        (None, False),
        (12345678, False),
    ],
)
def test_valid_serial(serial: object, valid: bool) -> None:
    assert valid_serial(serial) is valid


# --------------------------------------------------------------------------
# Tasks


TASK_X1C, TASK_P1S = load_json_object_fixture("tasks.json")["hits"]


async def test_tasks(client: BambuCloud, fake: FakeCloud) -> None:
    fake.tasks = [TASK_X1C, TASK_P1S]
    tasks = await client.get_tasks()
    assert [t.id for t in tasks] == ["35237965", "35237966"]
    cube, benchy = tasks
    assert cube.serial == "00M09A350100001"
    assert cube.title == "Calibration cube"
    assert cube.cover == "https://example.invalid/cover/1.png"
    assert cube.status == 2
    assert cube.start_time == dt.datetime(2024, 3, 5, 10, 0, tzinfo=dt.UTC)
    assert cube.end_time == dt.datetime(2024, 3, 5, 12, 30, 15, tzinfo=dt.UTC)
    assert cube.weight == 34.62
    assert cube.length == 1161.0
    assert benchy.status == 3
    assert benchy.start_time == dt.datetime(2024, 3, 6, 7, 15, tzinfo=dt.UTC)
    assert benchy.end_time is None
    assert benchy.weight == 12.5
    assert benchy.length is None
    assert benchy.cover is None


@pytest.mark.parametrize(
    ("fields", "bed_type", "plate_index", "plate_name"),
    [
        (
            {"bedType": "textured_plate", "plateIndex": 2, "plateName": "Base"},
            BedType.TEXTURED_PLATE,
            2,
            "Base",
        ),
        (
            {"bedType": "supertack_plate", "plateIndex": "3"},
            BedType.SUPERTACK_PLATE,
            3,
            None,
        ),
        ({"bedType": "auto", "plateIndex": None, "plateName": ""}, None, None, None),
        ({"bedType": "plate_of_the_future", "plateName": 7}, None, None, "7"),
        ({"bedType": ["textured_plate"], "plateIndex": "one"}, None, None, None),
    ],
)
async def test_task_plate_fields(
    client: BambuCloud,
    fake: FakeCloud,
    fields: dict[str, Any],
    bed_type: BedType | None,
    plate_index: int | None,
    plate_name: str | None,
) -> None:
    """Bed type (known plate types only), plate index and name of a task."""
    fake.tasks = [{**TASK_X1C, **fields}]
    (task,) = await client.get_tasks()
    assert (task.bed_type, task.plate_index, task.plate_name) == (
        bed_type,
        plate_index,
        plate_name,
    )


async def test_tasks_filtered_by_serial(client: BambuCloud, fake: FakeCloud) -> None:
    fake.tasks = [TASK_X1C, TASK_P1S]
    tasks = await client.get_tasks("01P00A451600002", limit=5)
    assert [t.id for t in tasks] == ["35237966"]
    assert await client.get_tasks("03W000000000000") == []


async def test_tasks_query_parameters(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    seen: list[dict[str, str]] = []

    async def tasks(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response({"total": 0, "hits": []})

    app = web.Application()
    app.router.add_get(TASKS, tasks)
    async with serve(app) as config:
        cloud = BambuCloud(session, config, TOKEN)
        await cloud.get_tasks()
        await cloud.get_tasks("00M09A350100001", limit=3)
    assert seen == [{"limit": "20"}, {"limit": "3", "deviceId": "00M09A350100001"}]


async def test_tasks_bad_entries_skipped(client: BambuCloud, fake: FakeCloud) -> None:
    hits = [
        {"title": "no id"},
        {"id": None, "title": "null id"},
        {"id": True, "title": "bool id"},
        {"id": [1], "title": "list id"},
        {"id": 1.5, "title": "float id"},
        {"id": 7, "startTime": 1700000000, "status": True, "deviceId": 5},
        "not a dict",
    ]
    fake.fail(TASKS, answer({"total": len(hits), "hits": hits}))
    tasks = await client.get_tasks()
    assert len(tasks) == 1
    (task,) = tasks
    assert task.id == "7"
    assert task.start_time is None
    assert task.status is None
    assert task.serial == "5"
    assert task.title is None


async def test_tasks_without_hits(client: BambuCloud, fake: FakeCloud) -> None:
    fake.fail(TASKS, answer({"total": 0}))
    assert await client.get_tasks() == []
    fake.fail(TASKS, answer({"hits": [{"id": 1, "status": "two"}]}))
    (task,) = await client.get_tasks()
    assert task.status is None
    assert task.serial is None


# --------------------------------------------------------------------------
# Firmware


VERSION_X1C, VERSION_P1S = load_json_object_fixture("version.json")["devices"]


async def test_firmware(client: BambuCloud, fake: FakeCloud) -> None:
    fake.versions = [VERSION_X1C, VERSION_P1S]
    infos = await client.get_firmware()
    assert [i.serial for i in infos] == ["00M09A350100001", "01P00A451600002"]
    x1c, p1s = infos
    assert x1c.installed == "01.07.00.00"
    assert [r.version for r in x1c.releases] == [
        "01.09.05.01",
        "01.10.00.00",
        "01.08.02.00",
    ]
    assert x1c.releases[0] == FirmwareRelease(
        version="01.09.05.01",
        force_update=False,
        url="https://example.invalid/fw/01.09.05.01.json.sig",
        release_notes="- fixes",
    )
    assert x1c.releases[2].force_update is False  # only JSON true forces
    assert x1c.releases[2].url is None
    assert x1c.latest is not None
    assert x1c.latest.version == "01.10.00.00"
    assert x1c.latest.force_update is True
    assert x1c.latest.release_notes == "# New\n- features"
    assert p1s.installed is None
    assert p1s.releases == ()
    assert p1s.latest is None


async def test_firmware_of_one_printer(client: BambuCloud, fake: FakeCloud) -> None:
    fake.versions = [VERSION_X1C, VERSION_P1S]
    infos = await client.get_firmware("01P00A451600002")
    assert [i.serial for i in infos] == ["01P00A451600002"]


async def test_firmware_entries_without_serial_skipped(
    client: BambuCloud, fake: FakeCloud
) -> None:
    fake.fail(
        VERSION,
        answer({"devices": [{"version": "1"}, {"dev_id": ""}, {"dev_id": "X"}, 3]}),
    )
    assert await client.get_firmware() == [FirmwareInfo(serial="X", installed=None)]


@pytest.mark.parametrize(
    "body",
    [
        {"message": "success"},
        {"devices": None},
        {"devices": {"dev_id": "00M09A350100001"}},
        {"message": "system busy", "code": 500},
        {"code": 500, "devices": [VERSION_P1S]},
        {"error": "internal", "devices": [VERSION_P1S]},
    ],
)
async def test_firmware_malformed(
    client: BambuCloud, fake: FakeCloud, body: dict[str, Any]
) -> None:
    """An answer without the list is a failure, not "nothing offered"."""
    fake.fail(VERSION, answer(body))
    with pytest.raises(BambuConnectionError):
        await client.get_firmware()


async def test_firmware_empty_list(client: BambuCloud, fake: FakeCloud) -> None:
    fake.fail(VERSION, answer({"message": "success", "code": None, "devices": []}))
    assert await client.get_firmware() == []


@pytest.mark.parametrize(
    ("versions", "latest"),
    [
        (["1.9.0", "1.10.0", "1.2.0"], "1.10.0"),  # numeric, not lexicographic
        (["01.09.05.01", "01.09.05.10", "01.09.05.02"], "01.09.05.10"),
        (["01.09", "01.09.00.01"], "01.09.00.01"),
        (["beta", "00.00.00.01"], "00.00.00.01"),  # non-numbers sort first
        (["01.02.x.00", "01.02.00.00"], "01.02.00.00"),
        (["only"], "only"),
    ],
)
def test_firmware_latest(versions: list[str], latest: str) -> None:
    info = FirmwareInfo(
        serial="S",
        installed=None,
        releases=tuple(FirmwareRelease(version=v) for v in versions),
    )
    assert info.latest is not None
    assert info.latest.version == latest


# --------------------------------------------------------------------------
# Login


async def test_login_token(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    cloud = BambuCloud(session, config)
    result = await cloud.login(ACCOUNT, PASSWORD)
    assert result.kind is LoginKind.TOKEN
    assert result.access_token == TOKEN
    assert result.expires_in == 7776000
    assert TOKEN not in repr(result)
    method, headers, body = last_request(fake, LOGIN)
    assert method == "POST"
    assert "Authorization" not in headers
    assert json.loads(body) == {
        "account": ACCOUNT,
        "password": PASSWORD,
        "apiError": "",
    }


@pytest.mark.parametrize(
    ("login_type", "kind"),
    [("verifyCode", LoginKind.VERIFY_CODE), ("tfa", LoginKind.TFA)],
)
async def test_login_needs_more(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    login_type: str,
    kind: LoginKind,
    config: BambuConfig,
) -> None:
    fake.login_type = login_type
    result = await BambuCloud(session, config).login(ACCOUNT, PASSWORD)
    assert result.kind is kind
    assert result.access_token is None
    assert result.expires_in is None


async def test_login_wrong_password(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    with pytest.raises(BambuAuthError, match="account or password refused"):
        await BambuCloud(session, config).login(ACCOUNT, "wrong")
    with pytest.raises(BambuAuthError):
        await BambuCloud(session, config).login("nobody@example.com", PASSWORD)


@pytest.mark.parametrize(
    "body",
    [
        {"loginType": ""},
        {"loginType": "", "accessToken": ""},
        {"accessToken": None, "expiresIn": 10},
        {"accessToken": {"v": 1}},
    ],
)
async def test_login_answer_without_token(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    body: dict[str, Any],
    config: BambuConfig,
) -> None:
    fake.fail(LOGIN, answer(body))
    with pytest.raises(BambuConnectionError, match="without a token") as info:
        await BambuCloud(session, config).login(ACCOUNT, PASSWORD)
    assert not isinstance(info.value, BambuAuthError)


async def test_login_expires_in_optional(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    fake.fail(LOGIN, answer({"accessToken": "tok-2", "expiresIn": "soon"}))
    result = await BambuCloud(session, config).login(ACCOUNT, PASSWORD)
    assert result.kind is LoginKind.TOKEN
    assert result.access_token == "tok-2"
    assert result.expires_in is None


async def test_login_server_error_is_not_auth_error(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    fake.fail(LOGIN, Failure(503, "down"))
    with pytest.raises(BambuConnectionError) as info:
        await BambuCloud(session, config).login(ACCOUNT, PASSWORD)
    assert not isinstance(info.value, BambuAuthError)


async def test_send_login_code_by_email(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    await BambuCloud(session, config).send_login_code(ACCOUNT)
    assert fake.codes_sent == [{"email": ACCOUNT, "type": "codeLogin"}]
    assert fake.calls(EMAIL_CODE) == 1
    assert fake.calls(SMS_CODE) == 0


async def test_send_login_code_by_sms_uses_web_url(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    # Only the web host answers: the SMS request must go there.
    endpoints = RegionEndpoints(
        api_url=closed_port_url(),
        web_url=config.endpoints.web_url,
        mqtt_host="127.0.0.1",
    )
    web_only = BambuConfig(endpoints=endpoints)
    await BambuCloud(session, web_only).send_login_code("13800138000")
    assert fake.codes_sent == [{"phone": "13800138000", "type": "codeLogin"}]
    assert fake.calls(SMS_CODE) == 1
    assert fake.calls(EMAIL_CODE) == 0


async def test_send_login_code_failure(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    fake.fail(EMAIL_CODE, Failure(429, "{}", headers={"Retry-After": "60"}))
    with pytest.raises(BambuRateLimitedError) as info:
        await BambuCloud(session, config).send_login_code(ACCOUNT)
    assert info.value.retry_after == 60.0
    assert fake.codes_sent == []


async def test_login_with_code(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    fake.login_token = "code-token"
    result = await BambuCloud(session, config).login_with_code(ACCOUNT, CODE)
    assert result.kind is LoginKind.TOKEN
    assert result.access_token == "code-token"
    _, _, body = last_request(fake, LOGIN)
    assert json.loads(body) == {"account": ACCOUNT, "code": CODE}


async def test_login_with_expired_code(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    fake.code_expired = True
    with pytest.raises(BambuCodeError) as info:
        await BambuCloud(session, config).login_with_code(ACCOUNT, CODE)
    assert info.value.expired is True
    assert str(info.value) == "verification code expired"


async def test_login_with_wrong_code(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    with pytest.raises(BambuCodeError) as info:
        await BambuCloud(session, config).login_with_code(ACCOUNT, "000000")
    assert info.value.expired is False
    assert str(info.value) == "wrong code"


async def test_login_with_code_bad_request_without_code(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    fake.fail(LOGIN, Failure(400, "<html>bad</html>", content_type="text/html"))
    with pytest.raises(BambuCodeError) as info:
        await BambuCloud(session, config).login_with_code(ACCOUNT, CODE)
    assert info.value.expired is False


# --------------------------------------------------------------------------
# Authenticator (TFA) login


async def _tfa_key(cloud: BambuCloud) -> str:
    result = await cloud.login(TFA_ACCOUNT, PASSWORD)
    assert result.kind is LoginKind.TFA
    assert result.tfa_key is not None
    assert result.tfa_key not in repr(result)
    return result.tfa_key


async def test_login_with_tfa(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    config: BambuConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API host takes the code for the login's tfaKey; its JSON is the token."""
    caplog.set_level(logging.DEBUG)
    fake.login_token = "tfa-token"
    cloud = BambuCloud(session, config)
    key = await _tfa_key(cloud)
    result = await cloud.login_with_tfa(key, TFA_CODE)
    assert result.kind is LoginKind.TOKEN
    assert result.access_token == "tfa-token"
    assert result.expires_in == 7776000
    method, headers, body = last_request(fake, TFA_API)
    assert method == "POST"
    assert "Authorization" not in headers
    assert json.loads(body) == {"tfaKey": key, "tfaCode": TFA_CODE}
    assert "tfa-token" not in caplog.text
    # The browser-gated web host was not needed.
    assert fake.calls(CSRF) == fake.calls(TFA) == 0
    # The key was used up: the sign-in has to start over.
    with pytest.raises(BambuCodeError) as info:
        await cloud.login_with_tfa(key, TFA_CODE)
    assert info.value.expired is True
    assert fake.calls(TFA) == 0


async def test_login_tfa_key_spellings(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    cloud = BambuCloud(session, config)
    fake.fail(LOGIN, answer({"loginType": "tfa", "tfa_key": "k-2"}))
    assert (await cloud.login(ACCOUNT, PASSWORD)).tfa_key == "k-2"
    fake.fail(LOGIN, answer({"loginType": "tfa", "tfaKey": ""}))
    result = await cloud.login(ACCOUNT, PASSWORD)
    assert result.kind is LoginKind.TFA
    assert result.tfa_key is None


@pytest.mark.parametrize("api", [True, False])
async def test_login_with_wrong_tfa_code(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig, api: bool
) -> None:
    """A wrong code is refused; the same sign-in takes the right one after."""
    fake.tfa_api = api
    cloud = BambuCloud(session, config)
    key = await _tfa_key(cloud)
    with pytest.raises(BambuCodeError) as info:
        await cloud.login_with_tfa(key, "000000")
    assert info.value.expired is False
    assert (await cloud.login_with_tfa(key, TFA_CODE)).access_token == TOKEN
    assert fake.calls(TFA) == (0 if api else 2)


@pytest.mark.parametrize("missing", [Failure(404), Failure(405)])
async def test_login_with_tfa_on_the_web_host(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    config: BambuConfig,
    caplog: pytest.LogCaptureFixture,
    missing: Failure,
) -> None:
    """Without the API host's endpoint: the web host's CSRF cookie, then its sign-in."""
    caplog.set_level(logging.DEBUG)
    fake.login_token = "tfa-token"
    cloud = BambuCloud(session, config, clock=fixed_clock)
    key = await _tfa_key(cloud)
    fake.fail(TFA_API, missing)
    result = await cloud.login_with_tfa(key, TFA_CODE)
    assert result.access_token == "tfa-token"
    assert result.expires_in == 7776000
    (csrf,) = fake.csrf_tokens
    method, headers, body = last_request(fake, TFA)
    assert method == "POST"
    assert "Authorization" not in headers
    assert headers["Cookie"] == f"bbl_csrf_token={csrf}"
    assert headers["x-bbl-csrf-token"] == csrf
    assert json.loads(body) == {"tfaKey": key, "tfaCode": TFA_CODE}
    assert "tfa-token" not in caplog.text
    # The fake's own 404 (a cloud without the endpoint) takes the same way.
    fake.tfa_api = False
    with pytest.raises(BambuCodeError) as info:
        await cloud.login_with_tfa(key, TFA_CODE)
    assert info.value.expired is True
    assert fake.calls(TFA) == 2


def _cookie_answer(cookie: str | None, status: int = 200, body: str = "{}") -> Failure:
    headers = {"Set-Cookie": cookie} if cookie is not None else {}
    return Failure(status, body, headers=headers)


@pytest.mark.parametrize(
    ("cookie", "token", "expires_in"),
    [
        ("token=abc; Max-Age=3600; Path=/; HttpOnly", "abc", 3600),
        # Expires one day after the fixed clock.
        (f"token=abc; Expires={formatdate(NOW + 86400.5, usegmt=True)}", "abc", 86400),
        (f"token=abc; Expires={formatdate(NOW - 60, usegmt=True)}", "abc", 0),
        ("token=abc; Max-Age=soon; Expires=not a date", "abc", None),
        # "-0000": UTC without a stated zone.
        (
            "token=abc; Expires=Wed, 21 Oct 2099 07:28:00 -0000",
            "abc",
            int(dt.datetime(2099, 10, 21, 7, 28, tzinfo=dt.UTC).timestamp() - NOW),
        ),
        ("token=abc", "abc", None),
    ],
)
async def test_tfa_cookie_shapes(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    config: BambuConfig,
    cookie: str,
    token: str,
    expires_in: int | None,
) -> None:
    """A token cookie is the fallback of an answer without a token JSON."""
    fake.fail(TFA_API, _cookie_answer(cookie))
    cloud = BambuCloud(session, config, clock=fixed_clock)
    result = await cloud.login_with_tfa("key", TFA_CODE)
    assert result.access_token == token
    assert result.expires_in == expires_in


async def test_tfa_json_token_before_cookie(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    body = json.dumps({"accessToken": "from-json", "expiresIn": 60})
    fake.fail(TFA_API, _cookie_answer("token=from-cookie", body=body))
    result = await BambuCloud(session, config).login_with_tfa("key", TFA_CODE)
    assert result.access_token == "from-json"
    assert result.expires_in == 60


@pytest.mark.parametrize("path", [TFA_API, TFA])
@pytest.mark.parametrize(
    "failure",
    [
        _cookie_answer(None),
        _cookie_answer(None, body='{"accessToken": ""}'),
        _cookie_answer("token=; Max-Age=0"),
        _cookie_answer("other=abc"),
        Failure(400, '{"code": 2}'),
        Failure(400, "<html>bad</html>", content_type="text/html"),
        Failure(401, "{}"),
    ],
)
async def test_tfa_code_refused(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    config: BambuConfig,
    failure: Failure,
    path: str,
) -> None:
    fake.tfa_api = path == TFA_API
    fake.fail(path, failure)
    with pytest.raises(BambuCodeError) as info:
        await BambuCloud(session, config).login_with_tfa("key", TFA_CODE)
    assert info.value.expired is False


async def test_tfa_forbidden(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    """The site's CSRF check and a Cloudflare page are 403s, not wrong codes."""
    cloud = BambuCloud(session, config)
    key = await _tfa_key(cloud)
    # Cloudflare in front of the API host: no try on the web host.
    fake.fail(TFA_API, Failure(403, CLOUDFLARE_PAGE, content_type="text/html"))
    with pytest.raises(BambuForbiddenError) as info:
        await cloud.login_with_tfa(key, TFA_CODE)
    assert info.value.cloudflare is True
    assert fake.calls(CSRF) == fake.calls(TFA) == 0

    fake.tfa_api = False
    # No CSRF cookie issued: the web host's CSRF check refuses the sign-in.
    fake.fail(CSRF, Failure(204))
    with pytest.raises(BambuForbiddenError) as info:
        await cloud.login_with_tfa(key, TFA_CODE)
    assert info.value.cloudflare is False
    _, headers, _ = last_request(fake, TFA)
    assert "Cookie" not in headers
    assert "x-bbl-csrf-token" not in headers

    # The browser challenge, on either web request.
    for path in (CSRF, TFA):
        fake.fail(path, Failure(403, CLOUDFLARE_PAGE, content_type="text/html"))
        with pytest.raises(BambuForbiddenError) as info:
            await cloud.login_with_tfa(key, TFA_CODE)
        assert info.value.cloudflare is True
    # The key is still good.
    assert (await cloud.login_with_tfa(key, TFA_CODE)).access_token == TOKEN


@pytest.mark.parametrize("path", [TFA_API, CSRF, TFA])
@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Failure(429, "{}", headers={"Retry-After": "30"}), BambuRateLimitedError),
        (Failure(500, "down"), BambuConnectionError),
        (Failure(200, "{}", delay=2), BambuConnectionError),
    ],
)
async def test_tfa_cloud_failures(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    served: tuple[FakeCloud, str],
    failure: Failure,
    error: type[BambuError],
    path: str,
) -> None:
    config = library_config_for(served[1], timeouts=Timeouts(request=0.5))
    fake.tfa_api = path == TFA_API
    fake.fail(path, failure)
    with pytest.raises(error):
        await BambuCloud(session, config).login_with_tfa("key", TFA_CODE)


@pytest.mark.parametrize("api", [True, False])
async def test_tfa_cookies_not_kept(socket_enabled: None, api: bool) -> None:
    """A session keeping cookies holds no token or CSRF cookie after the sign-in."""
    fake = fake_cloud()
    fake.tfa_api = api
    app = fake.app()
    async with (
        cloud_server(app) as base_url,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as jar_session,
    ):
        config = library_config_for(base_url)
        # Another cookie of the same host stays.
        fake.fail(TFA_API if api else TFA, _cookie_answer("theme=dark; Path=/"))
        with pytest.raises(BambuCodeError):
            await BambuCloud(jar_session, config).login_with_tfa("key", TFA_CODE)
        cloud = BambuCloud(jar_session, config)
        key = await _tfa_key(cloud)
        if api:
            fake.fail(TFA_API, _cookie_answer("token=abc; Path=/"))
        assert (await cloud.login_with_tfa(key, TFA_CODE)).access_token == (
            "abc" if api else TOKEN
        )
        names = {cookie.key for cookie in jar_session.cookie_jar}
        assert names == {"theme"}


# --------------------------------------------------------------------------
# Errors


CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>"
    "</head><body>Sorry, you have been blocked</body></html>"
)


async def test_unauthorised(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    cloud = BambuCloud(session, config, "expired-token")
    with pytest.raises(BambuAuthError, match="unauthorised"):
        await cloud.get_profile()
    with pytest.raises(BambuAuthError):
        await cloud.get_bound_printers()


async def test_forbidden_cloudflare(client: BambuCloud, fake: FakeCloud) -> None:
    fake.fail(PROFILE, Failure(403, CLOUDFLARE_PAGE, content_type="text/html"))
    with pytest.raises(BambuForbiddenError) as info:
        await client.get_profile()
    assert info.value.cloudflare is True
    assert info.value.code is None
    assert str(info.value) == "forbidden: cloudflare"


async def test_forbidden_json_mentioning_cloudflare(
    client: BambuCloud, fake: FakeCloud
) -> None:
    fake.fail(BIND, answer({"error": "blocked by Cloudflare", "code": 5}, 403))
    with pytest.raises(BambuForbiddenError) as info:
        await client.get_bound_printers()
    assert info.value.cloudflare is True
    assert info.value.code == 5


async def test_forbidden_permission(client: BambuCloud, fake: FakeCloud) -> None:
    fake.fail(
        BIND,
        answer(
            {"message": "permission denied", "code": 8, "error": "Resource forbidden"},
            403,
        ),
    )
    with pytest.raises(BambuForbiddenError) as info:
        await client.get_bound_printers()
    assert info.value.cloudflare is False
    assert info.value.code == 8
    assert str(info.value) == "forbidden: permission (code 8)"


async def test_forbidden_empty_body(client: BambuCloud, fake: FakeCloud) -> None:
    # The WAF answers 403 with an empty body: not something the account can fix.
    fake.fail(TASKS, Failure(403, ""))
    with pytest.raises(BambuForbiddenError) as info:
        await client.get_tasks()
    assert info.value.cloudflare is True


@pytest.mark.parametrize(
    ("header", "retry_after"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        # HTTP dates are measured against the injected clock (NOW).
        # (HTTP dates have whole seconds; NOW has half a second.)
        (formatdate(1_700_000_090, usegmt=True), 89.5),
        (formatdate(1_600_000_000, usegmt=True), 0.0),  # in the past
        ("Tue, 14 Nov 2023 22:15:00 -0000", 99.5),  # "-0000" still means UTC
        ("soon", None),
        ("", None),
        ("-5", None),
        ("1.5e3", None),
        ("inf", None),
        ("nan", None),
        ("1_000", None),
    ],
)
async def test_rate_limited(
    client: BambuCloud, fake: FakeCloud, header: str, retry_after: float | None
) -> None:
    fake.fail(PROFILE, Failure(429, "{}", headers={"Retry-After": header}))
    with pytest.raises(BambuRateLimitedError) as info:
        await client.get_profile()
    assert info.value.retry_after == retry_after


async def test_rate_limited_without_header(client: BambuCloud, fake: FakeCloud) -> None:
    fake.fail(
        BIND, Failure(429, "rate limited by cloudflare", content_type="text/html")
    )
    with pytest.raises(BambuRateLimitedError) as info:
        await client.get_bound_printers()
    assert info.value.retry_after is None
    assert str(info.value) == "rate limited, retry after None s"


@pytest.mark.parametrize("status", [404, 422, 500, 502, 503])
async def test_http_errors(client: BambuCloud, fake: FakeCloud, status: int) -> None:
    fake.fail(PROFILE, answer({"message": "error", "code": 99}, status))
    with pytest.raises(BambuConnectionError, match=f"HTTP {status}") as info:
        await client.get_profile()
    assert type(info.value) is BambuConnectionError


async def test_bad_request_on_plain_call(client: BambuCloud, fake: FakeCloud) -> None:
    fake.fail(TASKS, answer({"code": 3}, 400))
    with pytest.raises(BambuConnectionError, match=r"bad request \(code 3\)"):
        await client.get_tasks()


async def test_timeout(
    session: aiohttp.ClientSession, fake: FakeCloud, config: BambuConfig
) -> None:
    """The configured request timeout applies."""
    fake.fail(PROFILE, Failure(200, '{"uid": 1}', delay=0.6))
    config = dataclasses.replace(config, timeouts=Timeouts(request=0.2))
    cloud = BambuCloud(session, config, TOKEN)
    with pytest.raises(BambuConnectionError, match="timeout") as info:
        await cloud.get_profile()
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_connection_refused(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    cloud = BambuCloud(session, library_config_for(closed_port_url()), TOKEN)
    with pytest.raises(BambuConnectionError) as info:
        await cloud.get_bound_printers()
    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    assert str(info.value).startswith(f"GET {BIND}: ")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html>maintenance</html>", "text/html"),
        ("", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"success"', "application/json"),
        ("null", "application/json"),
        ("{not json", "application/json"),
    ],
)
async def test_unusable_bodies(
    client: BambuCloud, fake: FakeCloud, body: str, content_type: str
) -> None:
    fake.fail(PROFILE, Failure(200, body, content_type=content_type))
    with pytest.raises(BambuConnectionError, match="not a JSON object") as info:
        await client.get_profile()
    assert type(info.value) is BambuConnectionError


@pytest.mark.parametrize("path", [PROFILE, BIND, TASKS, VERSION])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_deeply_nested_answer(
    client: BambuCloud, fake: FakeCloud, path: str, opener: str
) -> None:
    """Nesting deeper than the stack is a malformed answer, not a RecursionError."""
    depth = 200_000
    closer = "]" if opener == "[" else "}"
    fake.fail(path, Failure(200, opener * depth + "1" + closer * depth))
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        PROFILE: client.get_profile,
        BIND: client.get_bound_printers,
        TASKS: client.get_tasks,
        VERSION: client.get_firmware,
    }
    with pytest.raises(BambuConnectionError, match="not a JSON object"):
        await calls[path]()


async def test_deeply_nested_error_answer(client: BambuCloud, fake: FakeCloud) -> None:
    """The error paths parse the body too (403 reads the code)."""
    fake.fail(PROFILE, Failure(403, "[" * 200_000))
    with pytest.raises(BambuForbiddenError) as info:
        await client.get_profile()
    assert info.value.cloudflare is True


async def test_bodies_not_utf8(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    answers = {
        PROFILE: web.Response(
            body=b'{"uid": "1\xff\xfe"}', content_type="application/json"
        ),
        BIND: web.Response(body=b"\x89PNG\r\n\x1a\n\x00\xff", content_type="image/png"),
        TASKS: web.Response(
            status=403,
            body="<html>Cloudflare: accès refusé</html>".encode("latin-1"),
            content_type="text/html",
        ),
    }

    async def handler(request: web.Request) -> web.Response:
        return answers[request.path]

    app = web.Application()
    for path in answers:
        app.router.add_get(path, handler)
    async with serve(app) as config:
        cloud = BambuCloud(session, config, TOKEN)
        # Undecodable bytes are replaced, never an untyped UnicodeDecodeError.
        assert (await cloud.get_profile()).uid == "1\ufffd\ufffd"
        with pytest.raises(BambuConnectionError, match="not a JSON object"):
            await cloud.get_bound_printers()
        with pytest.raises(BambuForbiddenError) as info:
            await cloud.get_tasks()
        assert info.value.cloudflare is True


SECRET = "s3cr3t-T0KEN-must-not-leak"


def _chain_text(err: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = err
    while current is not None:
        parts.extend((str(current), repr(current)))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("failure", "call"),
    [
        (None, "profile"),  # 401: the fake does not know the token
        (Failure(403, CLOUDFLARE_PAGE, content_type="text/html"), "bind"),
        (answer({"code": 8}, 403), "tasks"),
        (Failure(429, "{}", headers={"Retry-After": "7"}), "firmware"),
        (answer({"code": 1}, 400), "tasks"),
        (Failure(500, "oops"), "profile"),
        (Failure(200, "[]"), "bind"),
        (Failure(200, "{}", delay=0.6), "profile"),
    ],
)
async def test_token_never_in_errors(
    session: aiohttp.ClientSession,
    fake: FakeCloud,
    failure: Failure | None,
    call: str,
    config: BambuConfig,
) -> None:
    paths = {"profile": PROFILE, "bind": BIND, "tasks": TASKS, "firmware": VERSION}
    if failure is not None:
        fake.fail(paths[call], failure)
    config = dataclasses.replace(config, timeouts=Timeouts(request=0.2))
    cloud = BambuCloud(session, config, SECRET)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "profile": cloud.get_profile,
        "bind": cloud.get_bound_printers,
        "tasks": cloud.get_tasks,
        "firmware": cloud.get_firmware,
    }
    with pytest.raises(BambuError) as info:
        await calls[call]()
    assert SECRET not in _chain_text(info.value)
    # The token did go out, so the check above is meaningful.
    _, headers, _ = last_request(fake, paths[call])
    assert headers["Authorization"] == f"Bearer {SECRET}"


async def test_token_never_in_connection_errors(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    config = library_config_for(closed_port_url())
    with pytest.raises(BambuConnectionError) as info:
        await BambuCloud(session, config, SECRET).get_profile()
    assert SECRET not in _chain_text(info.value)

"""Config, reauth, reconfigure and options flows, against the fake cloud."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.config_flow import MAX_LENGTHS, _valid_host
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_ACCOUNT,
    CONF_CA_BUNDLE,
    CONF_CERTIFICATE_ID,
    CONF_CODE,
    CONF_EXPIRES_AT,
    CONF_HOST,
    CONF_LAN,
    CONF_POLL_INTERVAL,
    CONF_PRINTER,
    CONF_PRINTERS,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    DOMAIN,
    LAN_FIXED,
)
from tools.test_pki import TestPKI

from .app_certs import ec_cert, encrypted_key_pem, mismatched_pem, rsa_cert
from .cloud_server import (
    ACCOUNT,
    CODE,
    OTHER_TOKEN,
    P1S,
    PASSWORD,
    TFA_ACCOUNT,
    TFA_CODE,
    TOKEN,
    UID,
    X1C,
    Failure,
    FakeCloud,
)

pytestmark = pytest.mark.usefixtures("cloud")

NOW = "2026-03-04T05:06:07.890+00:00"
CLOUDFLARE_HTML = "<html><title>Attention Required! | Cloudflare</title></html>"


async def _start(hass: HomeAssistant, step: str) -> FlowResult:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["token", "sign_in", "lan"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return result


async def _submit(
    hass: HomeAssistant, result: FlowResult, user_input: dict[str, Any]
) -> FlowResult:
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    await hass.async_block_till_done()
    return result


TOKEN_INPUT = {CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN}


async def test_token_creates_entry(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """A valid token creates an entry named after the account."""
    result = await _start(hass, "token")
    result = await _submit(
        hass, result, {CONF_REGION: "global", CONF_ACCESS_TOKEN: f"  Bearer {TOKEN}\n"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Maker"
    assert result["data"] == {CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN}
    assert result["result"].unique_id == UID
    _, _, headers, _ = cloud.requests[-1]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "x-bbl-app-certification-id" not in headers


async def test_token_with_certificate(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """Key plus certificate: the id is derived and requests are signed."""
    cert = rsa_cert()
    result = await _start(hass, "token")
    result = await _submit(
        hass,
        result,
        {**TOKEN_INPUT, CONF_PRIVATE_KEY: cert.key_pem + cert.cert_pem},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PRIVATE_KEY] == (cert.key_pem + cert.cert_pem).strip()
    assert CONF_CERTIFICATE_ID not in result["data"]
    _, _, headers, _ = cloud.requests[-1]
    assert headers["x-bbl-app-certification-id"] == cert.certificate_id
    assert headers["x-bbl-device-security-sign"]


async def test_token_with_key_and_id(hass: HomeAssistant) -> None:
    """A bare key needs the id, which is then stored."""
    cert = rsa_cert()
    result = await _start(hass, "token")
    result = await _submit(
        hass, result, {**TOKEN_INPUT, CONF_PRIVATE_KEY: cert.key_pem}
    )
    assert result["errors"] == {"base": "certificate_id_required"}
    result = await _submit(
        hass,
        result,
        {
            **TOKEN_INPUT,
            CONF_PRIVATE_KEY: cert.key_pem,
            CONF_CERTIFICATE_ID: cert.certificate_id,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_CERTIFICATE_ID] == cert.certificate_id


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({CONF_PRIVATE_KEY: "not a pem"}, "invalid_certificate_no_private_key"),
        ({CONF_CERTIFICATE_ID: "abc"}, "invalid_certificate_no_private_key"),
        ({CONF_PRIVATE_KEY: "rsa-1024"}, "invalid_certificate_key_too_small"),
        ({CONF_PRIVATE_KEY: "rsa-4160"}, "invalid_certificate_key_too_large"),
        ({CONF_PRIVATE_KEY: "ec"}, "invalid_certificate_not_rsa"),
        ({CONF_PRIVATE_KEY: "mismatch"}, "invalid_certificate_key_mismatch"),
        ({CONF_PRIVATE_KEY: "encrypted"}, "invalid_certificate_encrypted_key"),
    ],
)
async def test_token_invalid_certificate(
    hass: HomeAssistant, extra: dict[str, str], error: str
) -> None:
    """Each unusable certificate has its own error key; then the user recovers."""
    pem = {
        "rsa-1024": lambda: rsa_cert(1024).key_pem,
        "rsa-4160": lambda: rsa_cert(4160).key_pem + rsa_cert(4160).cert_pem,
        "ec": lambda: ec_cert().key_pem + ec_cert().cert_pem,
        "mismatch": mismatched_pem,
        "encrypted": encrypted_key_pem,
    }
    if (key := extra.get(CONF_PRIVATE_KEY)) in pem:
        extra = {**extra, CONF_PRIVATE_KEY: pem[key]()}
    result = await _start(hass, "token")
    result = await _submit(
        hass, result, {**TOKEN_INPUT, CONF_CERTIFICATE_ID: "x", **extra}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert not result["description_placeholders"]
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Failure(401, '{"code":401}'), "invalid_auth"),
        (Failure(403, CLOUDFLARE_HTML, "text/html"), "forbidden"),
        (Failure(403, '{"message":"permission denied","code":8}'), "forbidden"),
        (Failure(429, "", headers={"Retry-After": "30"}), "rate_limited"),
        (Failure(500, "oops", "text/plain"), "cannot_connect"),
        (Failure(200, "not json", "text/plain"), "cannot_connect"),
        (Failure(200, "{}"), "cannot_connect"),
    ],
)
async def test_token_errors_recover(
    hass: HomeAssistant, cloud: FakeCloud, failure: Failure, error: str
) -> None:
    """Every cloud failure shows its error and the next try succeeds."""
    cloud.fail("/v1/user-service/my/profile", failure)
    result = await _start(hass, "token")
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_token_refused(hass: HomeAssistant) -> None:
    """A token the cloud does not know is invalid_auth; no secret refilled."""
    result = await _start(hass, "token")
    result = await _submit(hass, result, {**TOKEN_INPUT, CONF_ACCESS_TOKEN: "nope"})
    assert result["errors"] == {"base": "invalid_auth"}
    for field in result["data_schema"].schema:
        assert field.description in (None, {"suggested_value": "global"})
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_token_unknown_error(hass: HomeAssistant) -> None:
    """An unexpected exception is logged and shown as unknown."""
    result = await _start(hass, "token")
    with patch(
        "custom_components.bambu_cloud.config_flow.BambuCloud.get_profile",
        side_effect=RuntimeError("boom"),
    ):
        result = await _submit(hass, result, TOKEN_INPUT)
    assert result["errors"] == {"base": "unknown"}
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_duplicate_aborts(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The same account cannot be added twice."""
    mock_config_entry.add_to_hass(hass)
    result = await _start(hass, "token")
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


SIGN_IN = {CONF_REGION: "global", CONF_ACCOUNT: f" {ACCOUNT} ", CONF_PASSWORD: PASSWORD}


def _expires_in(seconds: int) -> str:
    """The expiry sign-in stores for an expiresIn, at the frozen time."""
    return (
        dt_util.utcnow().replace(microsecond=0) + timedelta(seconds=seconds)
    ).isoformat()


def _signed_in() -> dict[str, str]:
    """The data of a signed-in entry: the fake cloud's expiresIn is 90 days."""
    return {
        CONF_REGION: "global",
        CONF_ACCESS_TOKEN: TOKEN,
        CONF_EXPIRES_AT: _expires_in(7776000),
    }


@pytest.mark.freeze_time(NOW)
async def test_sign_in_direct_token(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """A password login that returns a token creates the entry, with its expiry."""
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, SIGN_IN)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == _signed_in()
    assert PASSWORD not in str(result["data"])


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize(
    ("expires_in", "stored"),
    [
        (864000, True),
        ("864000", True),
        (315360000, True),  # ten years: the longest believed
        (315360001, False),
        (10**30, False),
        (0, False),
        (-5, False),
        (None, False),
        ("soon", False),
        (True, False),
    ],
)
async def test_sign_in_expiry_shapes(
    hass: HomeAssistant, cloud: FakeCloud, expires_in: object, stored: bool
) -> None:
    """Only a sane expiresIn is stored; without one the token has no expiry."""
    body = {"accessToken": TOKEN, "loginType": ""}
    if expires_in is not None:
        body["expiresIn"] = expires_in
    cloud.fail("/v1/user-service/user/login", Failure(200, json.dumps(body)))
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, SIGN_IN)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    expected = {CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN}
    if stored:
        expected[CONF_EXPIRES_AT] = _expires_in(int(str(expires_in)))
    assert result["data"] == expected


async def test_signed_in_opaque_token_gets_expiry_repair(
    hass: HomeAssistant, cloud: FakeCloud, issue_registry: ir.IssueRegistry
) -> None:
    """A sign-in whose opaque token expires in 10 days raises the repair at once."""
    body = {"accessToken": TOKEN, "expiresIn": 864000, "loginType": ""}
    cloud.fail("/v1/user-service/user/login", Failure(200, json.dumps(body)))
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, SIGN_IN)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    issue = issue_registry.async_get_issue(DOMAIN, f"token_expiring_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "token_expiring"


@pytest.mark.freeze_time(NOW)
async def test_sign_in_with_code(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """verifyCode: a code is e-mailed; wrong, expired, then right code."""
    cloud.login_type = "verifyCode"
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, SIGN_IN)
    assert result["step_id"] == "code"
    assert result["description_placeholders"] == {"account": ACCOUNT}
    assert cloud.codes_sent == [{"email": ACCOUNT, "type": "codeLogin"}]

    result = await _submit(hass, result, {CONF_CODE: "000000"})
    assert result["errors"] == {"base": "invalid_code"}

    cloud.code_expired = True
    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["errors"] == {"base": "code_expired"}
    assert len(cloud.codes_sent) == 2

    result = await _submit(hass, result, {CONF_CODE: f" {CODE} "})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == _signed_in()


async def test_sign_in_phone_uses_sms(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """A China phone account gets its code by SMS."""
    cloud.login_type = "verifyCode"
    cloud.passwords["13800000000"] = PASSWORD
    result = await _start(hass, "sign_in")
    result = await _submit(
        hass,
        result,
        {CONF_REGION: "china", CONF_ACCOUNT: "13800000000", CONF_PASSWORD: PASSWORD},
    )
    assert result["step_id"] == "code"
    assert cloud.codes_sent == [{"phone": "13800000000", "type": "codeLogin"}]
    assert cloud.calls("/api/v1/user-service/user/sendsmscode") == 1
    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_REGION] == "china"


async def test_sign_in_errors_recover(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """Wrong password, TFA, failing code e-mail: each recovers."""
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, {**SIGN_IN, CONF_PASSWORD: "wrong"})
    assert result["errors"] == {"base": "invalid_auth"}

    # An authenticator sign-in without the key its code must go with.
    cloud.fail("/v1/user-service/user/login", Failure(200, '{"loginType":"tfa"}'))
    result = await _submit(hass, result, SIGN_IN)
    assert result["errors"] == {"base": "tfa_unsupported"}

    cloud.login_type = "verifyCode"
    cloud.fail("/v1/user-service/user/sendemail/code", Failure(500))
    result = await _submit(hass, result, SIGN_IN)
    assert result["errors"] == {"base": "cannot_connect"}

    cloud.login_type = ""
    cloud.fail("/v1/user-service/my/profile", Failure(429))
    result = await _submit(hass, result, SIGN_IN)
    assert result["errors"] == {"base": "rate_limited"}

    result = await _submit(hass, result, SIGN_IN)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_code_step_errors_recover(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """Cloud failures on the code step, including a failed re-send."""
    cloud.login_type = "verifyCode"
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, SIGN_IN)

    cloud.fail("/v1/user-service/user/login", Failure(503))
    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["errors"] == {"base": "cannot_connect"}

    cloud.code_expired = True
    cloud.fail("/v1/user-service/user/sendemail/code", Failure(429))
    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["errors"] == {"base": "rate_limited"}

    cloud.code_expired = False
    cloud.fail("/v1/user-service/user/login", Failure(200, '{"loginType":""}'))
    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["errors"] == {"base": "cannot_connect"}

    with patch(
        "custom_components.bambu_cloud.config_flow.BambuCloud.login_with_code",
        return_value=type("R", (), {"access_token": None})(),
    ):
        result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["errors"] == {"base": "invalid_code"}

    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["type"] is FlowResultType.CREATE_ENTRY


TFA = "/v1/user-service/user/tfa/login"
WEB_TFA = "/api/sign-in/tfa"
CSRF = "/api/csrf"
TFA_SIGN_IN = {**SIGN_IN, CONF_ACCOUNT: TFA_ACCOUNT}


@pytest.mark.freeze_time(NOW)
async def test_sign_in_with_authenticator(
    hass: HomeAssistant, cloud: FakeCloud
) -> None:
    """loginType tfa: the app's code for the login's key on the API host."""
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, TFA_SIGN_IN)
    assert result["step_id"] == "tfa"
    assert result["description_placeholders"] == {"account": TFA_ACCOUNT}
    assert cloud.codes_sent == []

    for malformed in ("12345", "1234567", "abcdef", "12345a"):
        result = await _submit(hass, result, {CONF_CODE: malformed})
        assert result["errors"] == {CONF_CODE: "tfa_code_format"}
    assert cloud.calls(TFA) == 0

    result = await _submit(hass, result, {CONF_CODE: "000000"})
    assert result["errors"] == {"base": "invalid_code"}

    result = await _submit(
        hass, result, {CONF_CODE: f" {TFA_CODE[:3]} {TFA_CODE[3:]} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == _signed_in()
    _, _, headers, body = next(r for r in reversed(cloud.requests) if r[1] == TFA)
    assert json.loads(body)["tfaCode"] == TFA_CODE
    assert "Authorization" not in headers


async def test_authenticator_errors_recover(
    hass: HomeAssistant, cloud: FakeCloud
) -> None:
    """Each failure of the code step is a form error; an expired sign-in restarts."""
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, TFA_SIGN_IN)

    # Without the API host's endpoint, the web host's CSRF check refuses.
    cloud.tfa_api = False
    cloud.fail(CSRF, Failure(204))
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    assert result["errors"] == {"base": "tfa_forbidden"}
    assert cloud.calls(WEB_TFA) == 1
    cloud.tfa_api = True

    failures = [
        (Failure(403, CLOUDFLARE_HTML, content_type="text/html"), "tfa_forbidden"),
        (Failure(429), "rate_limited"),
        (Failure(502, "bad gateway"), "cannot_connect"),
        (Failure(200, "{}"), "invalid_code"),
    ]
    for failure, error in failures:
        cloud.fail(TFA, failure)
        result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
        assert result["step_id"] == "tfa"
        assert result["errors"] == {"base": error}

    calls = cloud.calls(TFA)
    result = await _submit(hass, result, {CONF_CODE: _too_long(CONF_CODE)})
    assert result["errors"] == {CONF_CODE: "too_long"}
    assert cloud.calls(TFA) == calls

    # The cloud forgot the sign-in: back to the password form.
    cloud.tfa_keys.clear()
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    assert result["step_id"] == "sign_in"
    assert result["errors"] == {"base": "tfa_expired"}

    result = await _submit(hass, result, TFA_SIGN_IN)
    assert result["step_id"] == "tfa"
    cloud.fail("/v1/user-service/my/profile", Failure(401))
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    assert result["errors"] == {"base": "invalid_auth"}

    # That try used the key up: the next code starts over.
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    assert result["step_id"] == "sign_in"
    result = await _submit(hass, result, TFA_SIGN_IN)
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def _reauth(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> FlowResult:
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["step_id"] == step
    assert CONF_REGION not in {str(key) for key in result["data_schema"].schema}
    return result


async def test_reauth_token(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """A new token for the same account replaces the old one."""
    cert = rsa_cert()
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={
            CONF_REGION: "global",
            CONF_ACCESS_TOKEN: "expired",
            CONF_PRIVATE_KEY: cert.key_pem + cert.cert_pem,
            CONF_EXPIRES_AT: "2020-01-01T00:00:00+00:00",
        },
    )
    result = await _reauth(hass, mock_config_entry, "token")
    result = await _submit(hass, result, {CONF_ACCESS_TOKEN: "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await _submit(hass, result, {CONF_ACCESS_TOKEN: TOKEN})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_ACCESS_TOKEN] == TOKEN
    assert (
        mock_config_entry.data[CONF_PRIVATE_KEY]
        == (cert.key_pem + cert.cert_pem).strip()
    )
    # The old token's expiry went with it; a pasted token records none.
    assert CONF_EXPIRES_AT not in mock_config_entry.data
    _, _, headers, _ = cloud.requests[-1]
    assert headers["x-bbl-app-certification-id"] == cert.certificate_id


async def test_reauth_wrong_account(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A token of another account is refused."""
    mock_config_entry.add_to_hass(hass)
    result = await _reauth(hass, mock_config_entry, "token")
    result = await _submit(hass, result, {CONF_ACCESS_TOKEN: OTHER_TOKEN})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert mock_config_entry.data[CONF_ACCESS_TOKEN] == TOKEN


@pytest.mark.freeze_time(NOW)
async def test_reauth_sign_in(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """Signing in again stores the new token and its expiry, in the entry's region."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={
            CONF_REGION: "china",
            CONF_ACCESS_TOKEN: "old",
            CONF_EXPIRES_AT: "2020-01-01T00:00:00+00:00",
        },
    )
    result = await _reauth(hass, mock_config_entry, "sign_in")
    result = await _submit(
        hass, result, {CONF_ACCOUNT: ACCOUNT, CONF_PASSWORD: PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data == {**_signed_in(), CONF_REGION: "china"}


@pytest.mark.freeze_time(NOW)
async def test_reauth_sign_in_with_authenticator(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """Reauth of an account using an authenticator app: same code step."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={CONF_REGION: "global", CONF_ACCESS_TOKEN: "old"}
    )
    result = await _reauth(hass, mock_config_entry, "sign_in")
    result = await _submit(
        hass, result, {CONF_ACCOUNT: TFA_ACCOUNT, CONF_PASSWORD: PASSWORD}
    )
    assert result["step_id"] == "tfa"
    cloud.tfa_keys.clear()
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    # The password form of a reauth: still without the region.
    assert result["step_id"] == "sign_in"
    assert result["errors"] == {"base": "tfa_expired"}
    assert CONF_REGION not in {str(key) for key in result["data_schema"].schema}
    result = await _submit(
        hass, result, {CONF_ACCOUNT: TFA_ACCOUNT, CONF_PASSWORD: PASSWORD}
    )
    result = await _submit(hass, result, {CONF_CODE: TFA_CODE})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data == _signed_in()


async def test_reauth_sign_in_wrong_account(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """Signing in as another account is refused."""
    mock_config_entry.add_to_hass(hass)
    cloud.login_token = OTHER_TOKEN
    result = await _reauth(hass, mock_config_entry, "sign_in")
    result = await _submit(
        hass, result, {CONF_ACCOUNT: ACCOUNT, CONF_PASSWORD: PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"


async def test_reconfigure(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """Region and certificate change; errors recover; removal works."""
    mock_config_entry.add_to_hass(hass)
    cert = rsa_cert()
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await _submit(
        hass, result, {CONF_REGION: "china", CONF_PRIVATE_KEY: "garbage"}
    )
    assert result["errors"] == {"base": "invalid_certificate_no_private_key"}

    result = await _submit(
        hass,
        result,
        {CONF_REGION: "china", CONF_PRIVATE_KEY: cert.key_pem + cert.cert_pem},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data[CONF_REGION] == "china"
    assert CONF_PRIVATE_KEY in mock_config_entry.data

    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await _submit(hass, result, {CONF_REGION: "global"})
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data == {CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN}


async def test_reconfigure_keeps_token_expiry(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """The token stays, so its recorded expiry stays too."""
    mock_config_entry.add_to_hass(hass)
    expires = "2031-05-06T07:08:09+00:00"
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={**mock_config_entry.data, CONF_EXPIRES_AT: expires},
    )
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await _submit(hass, result, {CONF_REGION: "china"})
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data == {
        CONF_REGION: "china",
        CONF_ACCESS_TOKEN: TOKEN,
        CONF_EXPIRES_AT: expires,
    }


async def test_reconfigure_wrong_account(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """An entry whose token now answers for another account cannot change."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UID,
        data={CONF_REGION: "global", CONF_ACCESS_TOKEN: OTHER_TOKEN},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await _submit(hass, result, {CONF_REGION: "global"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"


async def test_options_offer_no_poll_interval(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """No polling option (appropriate-polling); an old stored one is ignored."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={CONF_POLL_INTERVAL: 120}
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data.coordinator
    assert coordinator.update_interval == timedelta(minutes=5)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["menu_options"] == ["printer", "certificates"]


async def _printer_host(
    hass: HomeAssistant, entry: MockConfigEntry, serial: str
) -> FlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "printer"}
    )
    assert result["step_id"] == "printer"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_PRINTER: serial}
    )
    assert result["step_id"] == "printer_host"
    assert result["description_placeholders"] == {"serial": serial, "learned": "-"}
    return result


async def test_options_printer_host(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A LAN host is validated, stored per printer and can be cleared."""
    entry = init_integration
    result = await _printer_host(hass, entry, X1C["dev_id"])
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: "not a host!"}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1:70000"}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: " 127.0.0.1:1 "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    result = await _printer_host(hass, entry, P1S["dev_id"])
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1:2"}
    )
    await hass.async_block_till_done()
    assert entry.options[CONF_PRINTERS] == {
        X1C["dev_id"]: {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:1"},
        P1S["dev_id"]: {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:2"},
    }

    result = await _printer_host(hass, entry, X1C["dev_id"])
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: ""}
    )
    await hass.async_block_till_done()
    assert entry.options[CONF_PRINTERS] == {
        P1S["dev_id"]: {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:2"}
    }


async def test_options_when_not_loaded(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Without a loaded entry only the certificates are offered: no menu."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "certificates"


async def _certificates_step(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    if result["type"] is FlowResultType.MENU:
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "certificates"}
        )
    assert result["step_id"] == "certificates"
    return result


async def test_options_ca_bundle(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    tmp_path: Path,
    configure_library: Callable[..., BambuConfig],
) -> None:
    """Only pinned CAs (or CAs they signed) are accepted; empty removes."""
    pki = TestPKI(tmp_path)
    pinned = pki.root("Pinned CA")
    intermediate = pki.intermediate(pinned, "Series CA")
    stranger = pki.root("Stranger CA")
    configure_library(pins=frozenset({pinned.sha256}))
    mock_config_entry.add_to_hass(hass)

    result = await _certificates_step(hass, mock_config_entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CA_BUNDLE: stranger.pem}
    )
    assert result["errors"] == {CONF_CA_BUNDLE: "invalid_bundle_not_pinned"}
    assert result["description_placeholders"] == {"certificate": "Stranger CA"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CA_BUNDLE: "garbage"}
    )
    assert result["errors"] == {CONF_CA_BUNDLE: "invalid_bundle_not_pem"}
    assert not result["description_placeholders"]
    bundle = pinned.pem + intermediate.pem
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CA_BUNDLE: bundle}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options[CONF_CA_BUNDLE] == bundle.strip()

    result = await _certificates_step(hass, mock_config_entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CA_BUNDLE: ""}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_CA_BUNDLE not in mock_config_entry.options


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("printer.local", True),
        ("printer.local:8883", True),
        ("10.0.0.7", True),
        ("fe80::1", True),
        ("bad host", False),
        ("printer.local:0", False),
        ("-bad-.local", False),
        ("printer.local.", True),
        ("a" * 63 + ".local", True),
        ("a" * 64 + ".local", False),
        ("a..b", False),
        (".", False),
        ("a." * 126 + "aa", False),  # 254 characters
        ("printer:\u00b2", False),  # a digit to str.isdigit, not to int
        ("printer:\u0663", False),  # Arabic-Indic three
        ("printer:99999", False),
        ("printer:008883", False),  # six digits are no port
        ("a" * 25 + "!", False),  # backtracked for seconds with a single regex
    ],
)
def test_host_validation(host: str, valid: bool) -> None:
    """Host names, addresses and an optional port are accepted, in linear time."""
    start = time.perf_counter()
    assert _valid_host(host) is valid
    assert time.perf_counter() - start < 0.05


# A paste no PEM parser should have to look at twice: 224 KB of unterminated
# BEGIN lines made the old block pattern rescan the rest for each of them.
HUGE_PEM = "-----BEGIN PRIVATE KEY-----\n" * 8000


def _too_long(field: str) -> str:
    return "x" * (MAX_LENGTHS[field] + 1)


async def test_huge_private_key_is_refused_at_once(hass: HomeAssistant) -> None:
    """A 200 KB paste is a form error in well under 100 ms, not a frozen loop."""
    result = await _start(hass, "token")
    start = time.perf_counter()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**TOKEN_INPUT, CONF_PRIVATE_KEY: HUGE_PEM}
    )
    assert time.perf_counter() - start < 0.1
    assert result["errors"] == {CONF_PRIVATE_KEY: "too_long"}
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_hostile_token_is_a_form_error(hass: HomeAssistant) -> None:
    """A JWT whose payload nests deeper than any parser goes does not crash."""
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    payload = base64.urlsafe_b64encode(nested).decode().rstrip("=")
    result = await _start(hass, "token")
    result = await _submit(
        hass, result, {**TOKEN_INPUT, CONF_ACCESS_TOKEN: f"e30.{payload}.c2ln"}
    )
    assert result["errors"] == {CONF_ACCESS_TOKEN: "too_long"}


@pytest.mark.parametrize(
    "field", [CONF_ACCESS_TOKEN, CONF_CERTIFICATE_ID, CONF_PRIVATE_KEY]
)
async def test_token_fields_have_limits(hass: HomeAssistant, field: str) -> None:
    """Each field over its limit is named; nothing reaches the cloud."""
    result = await _start(hass, "token")
    result = await _submit(hass, result, {**TOKEN_INPUT, field: _too_long(field)})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: "too_long"}
    result = await _submit(hass, result, TOKEN_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("field", [CONF_ACCOUNT, CONF_PASSWORD])
async def test_sign_in_fields_have_limits(
    hass: HomeAssistant, cloud: FakeCloud, field: str
) -> None:
    """An over-long account or password is never sent to the cloud."""
    result = await _start(hass, "sign_in")
    calls = len(cloud.requests)
    result = await _submit(hass, result, {**SIGN_IN, field: _too_long(field)})
    assert result["errors"] == {field: "too_long"}
    assert len(cloud.requests) == calls
    result = await _submit(hass, result, SIGN_IN)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_code_has_a_limit(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """An over-long verification code is never sent to the cloud."""
    cloud.login_type = "verifyCode"
    result = await _start(hass, "sign_in")
    result = await _submit(hass, result, SIGN_IN)
    calls = len(cloud.requests)
    result = await _submit(hass, result, {CONF_CODE: _too_long(CONF_CODE)})
    assert result["errors"] == {CONF_CODE: "too_long"}
    assert len(cloud.requests) == calls
    result = await _submit(hass, result, {CONF_CODE: CODE})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reconfigure_fields_have_limits(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The certificate fields keep their limits when reconfiguring."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await _submit(
        hass, result, {CONF_REGION: "global", CONF_PRIVATE_KEY: HUGE_PEM}
    )
    assert result["errors"] == {CONF_PRIVATE_KEY: "too_long"}
    result = await _submit(hass, result, {CONF_REGION: "global"})
    assert result["reason"] == "reconfigure_successful"


async def test_options_fields_have_limits(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The CA bundle and the printer host have limits too."""
    entry = init_integration
    result = await _certificates_step(hass, entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CA_BUNDLE: _too_long(CONF_CA_BUNDLE)}
    )
    assert result["errors"] == {CONF_CA_BUNDLE: "too_long"}

    result = await _printer_host(hass, entry, X1C["dev_id"])
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: "a" * MAX_LENGTHS[CONF_HOST] + "!"}
    )
    assert result["errors"] == {CONF_HOST: "too_long"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: "printer:\u00b2"}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    assert CONF_PRINTERS not in entry.options

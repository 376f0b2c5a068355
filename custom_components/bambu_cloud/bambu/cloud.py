"""Asynchronous client of the Bambu Lab cloud REST API.

The aiohttp session is injected (Home Assistant shares one), every answer is
parsed into the typed results of `models`, and every failure becomes one of the
typed errors of `errors`. Parsing is lenient: unknown fields are ignored and a
field of the wrong type reads as missing. The lists that decide what exists
are not: a bind or firmware answer without a well-formed device list (or an
error envelope in a 200) is a BambuConnectionError, so a caller never mistakes
a bad answer for "no printers" and removes what the user configured.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any

import aiohttp
from yarl import URL

from .auth import AppCertificate
from .config import BambuConfig
from .errors import (
    BambuAuthError,
    BambuCodeError,
    BambuConnectionError,
    BambuForbiddenError,
    BambuRateLimitedError,
)
from .models import (
    SERIAL_MAX_LENGTH,
    SERIAL_MIN_LENGTH,
    BedType,
    BoundPrinter,
    FirmwareInfo,
    FirmwareRelease,
    LoginKind,
    LoginResult,
    PrintTask,
    Profile,
    valid_serial,
)
from .values import as_enum, as_float, as_int, dicts

_LOGGER = logging.getLogger(__name__)

PATH_PROFILE = "/v1/user-service/my/profile"
PATH_BIND = "/v1/iot-service/api/user/bind"
PATH_TASKS = "/v1/user-service/my/tasks"
PATH_VERSION = "/v1/iot-service/api/user/device/version"
PATH_LOGIN = "/v1/user-service/user/login"
PATH_EMAIL_CODE = "/v1/user-service/user/sendemail/code"
PATH_SMS_CODE = "/api/v1/user-service/user/sendsmscode"
# Authenticator sign-in (PROTOCOL.md 1.4): first on the API host (token JSON),
# else on the web host, which wants a CSRF cookie and answers with a cookie.
PATH_TFA_LOGIN = "/v1/user-service/user/tfa/login"
PATH_TFA = "/api/sign-in/tfa"
PATH_CSRF = "/api/csrf"
TOKEN_COOKIE = "token"
CSRF_COOKIE = "bbl_csrf_token"
CSRF_HEADER = "x-bbl-csrf-token"

# Invalid serials already warned about, per client: one warning each, not one
# per poll; bounded so a cloud sending ever new junk cannot grow it for ever.
MAX_REJECTED_SERIALS = 64

type Json = dict[str, Any]


class BambuCloud:
    """Client of one account's cloud API in one region."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: BambuConfig,
        access_token: str | None = None,
        certificate: AppCertificate | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Bind the client to a session, a region's configuration, credentials."""
        self._session = session
        self._api_url = config.endpoints.api_url
        self._web_url = config.endpoints.web_url
        self._token = access_token
        self._certificate = certificate
        self._timeout = aiohttp.ClientTimeout(total=config.timeouts.request)
        self._clock = clock
        self._rejected_serials: set[str] = set()

    async def get_profile(self) -> Profile:
        """The signed-in account; a 200 here proves the token is valid."""
        data = await self._request("GET", PATH_PROFILE)
        uid = data.get("uidStr") or data.get("uid")
        if not isinstance(uid, str | int) or isinstance(uid, bool) or not str(uid):
            raise BambuConnectionError("profile without uid")
        return Profile(
            uid=str(uid),
            name=_str(data.get("name")),
            account=_str(data.get("account")),
            nickname=_str(data.get("nickname") or data.get("nickName")),
            avatar=_str(data.get("avatar")),
        )

    async def get_bound_printers(self) -> list[BoundPrinter]:
        """Printers bound to the account.

        Raises BambuConnectionError unless the answer is a well-formed list of
        objects each naming its printer: callers remove the devices of
        printers missing from this list, so a partial list must never pass.
        A serial that cannot be one (see ``valid_serial``) is skipped with one
        warning: it must never reach a topic, a TLS server name or a device.
        """
        data = await self._request("GET", PATH_BIND)
        printers: list[BoundPrinter] = []
        for item in _device_list(data, "bind"):
            if not isinstance(item, dict) or not isinstance(
                serial := item.get("dev_id"), str
            ):
                raise BambuConnectionError("bind answer: entry without dev_id")
            if not valid_serial(serial):
                self._reject_serial(serial)
                continue
            access_code = (_str(item.get("dev_access_code")) or "").strip()
            printers.append(
                BoundPrinter(
                    serial=serial,
                    name=_str(item.get("name")) or serial,
                    online=item.get("online") is True,
                    print_status=_str(item.get("print_status")),
                    model_id=_str(item.get("dev_model_name")),
                    product_name=_str(item.get("dev_product_name")),
                    access_code=access_code or None,
                    nozzle_diameter=as_float(item.get("nozzle_diameter")),
                    structure=_str(item.get("dev_structure")),
                    print_job=_str(item.get("print_job")),
                )
            )
        return printers

    async def get_tasks(
        self, serial: str | None = None, limit: int = 20
    ) -> list[PrintTask]:
        """Print history, newest first, optionally of one printer."""
        params: dict[str, str] = {"limit": str(limit)}
        if serial:
            params["deviceId"] = serial
        data = await self._request("GET", PATH_TASKS, params=params)
        tasks: list[PrintTask] = []
        for item in dicts(data.get("hits")):
            task_id = item.get("id")
            if not isinstance(task_id, str | int) or isinstance(task_id, bool):
                continue
            tasks.append(
                PrintTask(
                    id=str(task_id),
                    serial=_str(item.get("deviceId")),
                    title=_str(item.get("title")),
                    cover=_str(item.get("cover")),
                    status=as_int(item.get("status")),
                    start_time=_time(item.get("startTime")),
                    end_time=_time(item.get("endTime")),
                    weight=as_float(item.get("weight")),
                    length=as_float(item.get("length")),
                    # None for an unknown plate type (or "auto").
                    bed_type=as_enum(BedType, item.get("bedType")),
                    plate_index=as_int(item.get("plateIndex")),
                    plate_name=_str(item.get("plateName")),
                )
            )
        return tasks

    async def get_firmware(self, serial: str | None = None) -> list[FirmwareInfo]:
        """Installed and offered firmware, of one printer or of all."""
        params = {"dev_id": serial} if serial else None
        data = await self._request("GET", PATH_VERSION, params=params)
        infos: list[FirmwareInfo] = []
        # Entries are read leniently (an unusable one only lacks an offer),
        # but an answer without the list is a failure, not "no firmware".
        for item in dicts(_device_list(data, "firmware")):
            if not (dev_id := _str(item.get("dev_id"))):
                continue
            releases = tuple(
                FirmwareRelease(
                    version=version,
                    force_update=fw.get("force_update") is True,
                    url=_str(fw.get("url")),
                    release_notes=_str(fw.get("description")),
                )
                for fw in dicts(item.get("firmware"))
                if (version := _str(fw.get("version")))
            )
            infos.append(
                FirmwareInfo(
                    serial=dev_id,
                    installed=_str(item.get("version")),
                    releases=releases,
                )
            )
        return infos

    async def login(self, account: str, password: str) -> LoginResult:
        """Password login; may answer that a code or TFA is needed."""
        body = {"account": account, "password": password, "apiError": ""}
        try:
            data = await self._request("POST", PATH_LOGIN, json_body=body)
        except _BadRequestError as err:
            raise BambuAuthError("account or password refused") from err
        return _login_result(data)

    async def send_login_code(self, account: str) -> None:
        """Ask the cloud to send a login code by e-mail (or SMS for phones)."""
        if "@" in account:
            body = {"email": account, "type": "codeLogin"}
            await self._request("POST", PATH_EMAIL_CODE, json_body=body)
            return
        url = self._web_url + PATH_SMS_CODE
        body = {"phone": account, "type": "codeLogin"}
        await self._request("POST", url, json_body=body)

    async def login_with_code(self, account: str, code: str) -> LoginResult:
        """Code login; BambuCodeError when the code is wrong or expired."""
        body = {"account": account, "code": code}
        try:
            data = await self._request("POST", PATH_LOGIN, json_body=body)
        except _BadRequestError as err:
            raise BambuCodeError(expired=err.code == 1) from err
        return _login_result(data)

    async def login_with_tfa(self, tfa_key: str, code: str) -> LoginResult:
        """Finish a login that asked for an authenticator app's code.

        ``tfa_key`` is the one the password login answered with (PROTOCOL.md
        1.4). The API host's endpoint comes first, as in the slicers: the web
        host's sign-in sits behind a browser (Cloudflare) challenge and a CSRF
        check. Only when the API host has no such endpoint (404/405) does the
        web flow run. BambuCodeError when the code is refused (``expired``
        when the sign-in itself has to start over), BambuForbiddenError when a
        site refuses the request as such (Cloudflare or CSRF, PROTOCOL.md 1.3).
        """
        body = {"tfaKey": tfa_key, "tfaCode": code}
        url = self._api_url + PATH_TFA_LOGIN
        try:
            answer = await self._exchange("POST", url, PATH_TFA_LOGIN, json_body=body)
        finally:
            self._forget_cookies(url)
        if answer.status not in (404, 405):
            return self._tfa_result(answer, PATH_TFA_LOGIN)
        url = self._web_url + PATH_TFA
        try:
            csrf = await self._csrf_token()
            answer = await self._exchange(
                "POST",
                url,
                PATH_TFA,
                json_body=body,
                headers={CSRF_HEADER: csrf} if csrf else None,
                cookies={CSRF_COOKIE: csrf} if csrf else None,
            )
        finally:
            self._forget_cookies(url)
        return self._tfa_result(answer, PATH_TFA)

    async def _csrf_token(self) -> str | None:
        """The web host's CSRF cookie, which its TFA sign-in must carry.

        None when the answer sets none: the sign-in then goes without, and
        the site's own 403 says whether it needed one.
        """
        answer = await self._exchange("GET", self._web_url + PATH_CSRF, PATH_CSRF)
        if answer.status >= 400:
            now = self._clock()
            _check(
                "GET", PATH_CSRF, answer.status, answer.text, answer.retry_after, now
            )
        cookie = answer.cookies.get(CSRF_COOKIE)
        return cookie.value if cookie is not None and cookie.value else None

    def _tfa_result(self, answer: _Answer, path: str) -> LoginResult:
        """The token of a TFA answer: its JSON body, else its ``token`` cookie.

        The cookie is read from this answer only (the caller drops it from the
        shared session's jar: later requests must not carry it).
        """
        if answer.status in (400, 401):
            data = _parse_json(answer.text)
            expired = data is not None and as_int(data.get("code")) == 1
            raise BambuCodeError(expired=expired)
        _check(
            "POST",
            path,
            answer.status,
            # A token answer need not be JSON: only failures are parsed.
            answer.text if answer.status >= 400 else "{}",
            answer.retry_after,
            self._clock(),
        )
        data = _parse_json(answer.text) or {}
        if token := _str(data.get("accessToken")):
            return LoginResult(
                kind=LoginKind.TOKEN,
                access_token=token,
                expires_in=as_int(data.get("expiresIn")),
            )
        cookie = answer.cookies.get(TOKEN_COOKIE)
        if cookie is None or not (token := cookie.value.strip()):
            raise BambuCodeError(expired=False)
        return LoginResult(
            kind=LoginKind.TOKEN,
            access_token=token,
            expires_in=_cookie_lifetime(cookie, self._clock()),
        )

    def _forget_cookies(self, url: str) -> None:
        """Drop the sign-in cookies the session's jar may have kept for url."""
        host = (URL(url).host or "").lower()

        def is_sign_in(morsel: Morsel[str]) -> bool:
            domain = str(morsel["domain"]).lower().lstrip(".")
            return morsel.key in (TOKEN_COOKIE, CSRF_COOKIE) and (
                host == domain or host.endswith("." + domain)
            )

        self._session.cookie_jar.clear(is_sign_in)

    def _reject_serial(self, serial: str) -> None:
        """Warn once per invalid serial the bind list names."""
        if serial in self._rejected_serials:
            return
        if len(self._rejected_serials) < MAX_REJECTED_SERIALS:
            self._rejected_serials.add(serial)
        _LOGGER.warning(
            "Ignoring a bound printer with an invalid serial %r: it must be"
            " %s to %s ASCII letters and digits",
            serial[:40],
            SERIAL_MIN_LENGTH,
            SERIAL_MAX_LENGTH,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._certificate is not None:
            now_ms = int(self._clock() * 1000)
            headers.update(self._certificate.request_headers(now_ms))
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Json | None = None,
    ) -> Json:
        """Send one request and map every failure to a typed error."""
        url = path if path.startswith("http") else self._api_url + path
        answer = await self._exchange(
            method, url, path, params=params, json_body=json_body
        )
        return _check(
            method, path, answer.status, answer.text, answer.retry_after, self._clock()
        )

    async def _exchange(
        self,
        method: str,
        url: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Json | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> _Answer:
        """Send one request; a transport failure is a BambuConnectionError.

        ``path`` names the request in errors and logs (never a query, a body
        or a cookie: they may hold secrets).
        """
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                data=json.dumps(json_body) if json_body is not None else None,
                headers={**self._headers(), **(headers or {})},
                cookies=cookies,
                timeout=self._timeout,
            ) as response:
                answer = _Answer(
                    status=response.status,
                    text=await response.text(errors="replace"),
                    retry_after=response.headers.get("Retry-After"),
                    cookies=response.cookies,
                )
        except TimeoutError as err:
            raise BambuConnectionError(f"{method} {path}: timeout") from err
        except aiohttp.ClientError as err:
            raise BambuConnectionError(f"{method} {path}: {err!r}") from err
        _LOGGER.debug("%s %s -> %s", method, path, answer.status)
        return answer


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one request got back (the cookies are never shown)."""

    status: int
    text: str
    retry_after: str | None
    cookies: SimpleCookie = field(repr=False)


class _BadRequestError(BambuConnectionError):
    """HTTP 400 with the cloud's numeric code (used by code login)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def _check(
    method: str,
    path: str,
    status: int,
    text: str,
    retry_after: str | None,
    now: float,
) -> Json:
    """Turn a status and body into parsed JSON or a typed error."""
    where = f"{method} {path}"
    body = _parse_json(text)
    code = as_int(body.get("code")) if body is not None else None
    if status == 401:
        raise BambuAuthError(f"{where}: unauthorised")
    if status == 403:
        cloudflare = body is None or "cloudflare" in text.lower()
        raise BambuForbiddenError(cloudflare=cloudflare, code=code)
    if status == 429:
        raise BambuRateLimitedError(_retry_after(retry_after, now))
    if status == 400:
        raise _BadRequestError(f"{where}: bad request (code {code})", code)
    if status >= 400:
        raise BambuConnectionError(f"{where}: HTTP {status}")
    if body is None:
        raise BambuConnectionError(f"{where}: answer is not a JSON object")
    return body


def _parse_json(text: str) -> Json | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the interpreter's stack allows.
        return None
    return data if isinstance(data, dict) else None


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    # RFC 9110 delay-seconds is ASCII digits only: no sign, exponent, inf or nan.
    if (seconds := value.strip()).isascii() and seconds.isdigit():
        return float(seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC without a stated zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _device_list(data: Json, what: str) -> list[Any]:
    """The ``devices`` list of an iot-service answer, or a connection error.

    These answers come in the envelope ``{"message", "code", "error", ...}``;
    success has ``code`` null (or 0) and no ``error``. A 200 carrying an error
    (``{"message":"system busy","code":500}``) or a missing, null or non-list
    ``devices`` is a failed request, never an empty account.
    """
    code = data.get("code")
    if (code is not None and as_int(code) != 0) or _str(data.get("error")):
        raise BambuConnectionError(f"{what} answer: error (code {as_int(code)})")
    devices = data.get("devices")
    if not isinstance(devices, list):
        raise BambuConnectionError(f"{what} answer without a device list")
    return devices


def _cookie_lifetime(cookie: Morsel[str], now: float) -> int | None:
    """Seconds a cookie lives: its Max-Age, else its Expires; None if neither."""
    max_age = str(cookie["max-age"]).strip()
    if max_age.isascii() and max_age.isdigit():
        return int(max_age)
    if not (expires := str(cookie["expires"]).strip()):
        return None
    try:
        when = parsedate_to_datetime(expires)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int(when.timestamp() - now))


def _login_result(data: Json) -> LoginResult:
    login_type = data.get("loginType")
    if login_type == "verifyCode":
        return LoginResult(kind=LoginKind.VERIFY_CODE)
    if login_type == "tfa":
        # Some answers spell it tfa_key (PROTOCOL.md 1.4).
        key = _str(data.get("tfaKey")) or _str(data.get("tfa_key"))
        return LoginResult(kind=LoginKind.TFA, tfa_key=key)
    token = _str(data.get("accessToken"))
    if not token:
        raise BambuConnectionError("login answer without a token")
    return LoginResult(
        kind=LoginKind.TOKEN,
        access_token=token,
        expires_in=as_int(data.get("expiresIn")),
    )


def _str(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value) if str(value) else None
    return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

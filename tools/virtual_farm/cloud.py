"""A fake Bambu Lab cloud: a real aiohttp application speaking the documented JSON.

Shared by the test suite (``tests/cloud_server.py`` serves it over plain HTTP
on 127.0.0.1 and configures the integration for it) and by the virtual farm
(``tools.virtual_farm`` serves it over HTTPS with the farm's CA). Callers
change its state (accounts, printers, tasks, firmware) and queue failures;
clients talk to it exactly as they talk to the real cloud (PROTOCOL.md 1).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import typedefs as web_typedefs
from aiohttp import web

from .hms import FakeHmsService

TOKEN = "test-access-token"
OTHER_TOKEN = "other-account-token"
UID = "1234567890"
OTHER_UID = "9876543210"
ACCOUNT = "maker@example.com"
PASSWORD = "correct horse battery staple"
CODE = "123456"
# An account that signs in with an authenticator app (loginType "tfa").
TFA_ACCOUNT = "tfa-maker@example.com"
TFA_CODE = "654321"


def bind_entry(
    serial: str,
    name: str,
    product: str,
    model_id: str,
    *,
    online: bool = True,
    status: str = "IDLE",
    access_code: str = "12345678",
) -> dict[str, Any]:
    """A printer as the bind endpoint lists it."""
    return {
        "dev_id": serial,
        "name": name,
        "online": online,
        "print_status": status,
        "dev_model_name": model_id,
        "dev_product_name": product,
        "dev_access_code": access_code,
        "nozzle_diameter": 0.4,
        "dev_structure": "CoreXY",
        "print_job": "987654321",
    }


X1C = bind_entry("00M09A350100001", "Workshop X1C", "X1 Carbon", "BL-P001")
P1S = bind_entry("01P00A451600002", "Garage P1S", "P1S", "C12", status="RUNNING")
A1MINI = bind_entry(
    "0309DA470200003", "Desk A1 mini", "A1 mini", "N1", online=False, status="SUCCESS"
)


@dataclass
class Failure:
    """A canned answer replacing the next real one on a path."""

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class FakeCloud:
    """State and behaviour of the fake cloud."""

    tokens: dict[str, str] = field(
        default_factory=lambda: {TOKEN: UID, OTHER_TOKEN: OTHER_UID}
    )
    devices: list[dict[str, Any]] = field(default_factory=lambda: [X1C, P1S])
    tasks: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    passwords: dict[str, str] = field(
        default_factory=lambda: {ACCOUNT: PASSWORD, TFA_ACCOUNT: PASSWORD}
    )
    tfa_codes: dict[str, str] = field(default_factory=lambda: {TFA_ACCOUNT: TFA_CODE})
    """The authenticator code of each account that signs in with one."""
    tfa_keys: dict[str, str] = field(default_factory=dict)
    """tfaKey -> account of the sign-ins waiting for their code."""
    tfa_api: bool = True
    """Serve the API host's TFA sign-in; False answers 404 there, like a cloud
    without it, so clients take the web host's flow (CSRF cookie first)."""
    csrf_tokens: set[str] = field(default_factory=set)
    """The CSRF cookies the web host issued; its TFA sign-in wants one (403)."""
    login_type: str = ""
    login_token: str = TOKEN
    code: str = CODE
    code_expired: bool = False
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    codes_sent: list[dict[str, Any]] = field(default_factory=list)
    account: str = ACCOUNT
    """What the profile reports as the account (e-mail)."""
    nickname: str = "Maker"
    product_models: list[str] = field(default_factory=lambda: ["X1 Carbon", "P1S"])
    hms: FakeHmsService = field(default_factory=FakeHmsService)
    """The HMS text service's texts and the queries it answered."""
    request_log_size: int = 0
    """Keep only the newest N entries of ``requests`` (0 keeps all, for tests)."""

    def fail(self, path: str, failure: Failure, times: int = 1) -> None:
        """Answer the next `times` requests on path with failure."""
        self.failures.setdefault(path, []).extend([failure] * times)

    def calls(self, path: str) -> int:
        """How many requests reached path."""
        return sum(1 for _, seen, _, _ in self.requests if seen == path)

    def app(self) -> web.Application:
        """The aiohttp application serving the cloud paths."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/user-service/my/profile", self._profile)
        app.router.add_get("/v1/iot-service/api/user/bind", self._bind)
        app.router.add_get("/v1/user-service/my/tasks", self._tasks)
        app.router.add_get("/v1/iot-service/api/user/device/version", self._version)
        app.router.add_post("/v1/user-service/user/login", self._login)
        app.router.add_post("/v1/user-service/user/tfa/login", self._tfa_api)
        app.router.add_post("/v1/user-service/user/sendemail/code", self._send_code)
        app.router.add_post("/api/v1/user-service/user/sendsmscode", self._send_code)
        # The HMS text service (hms_url), on the same host as the API.
        self.hms.add_routes(app)
        # Served by the web host (web_url), which tests and the farm share
        # with the API host.
        app.router.add_get("/api/csrf", self._csrf)
        app.router.add_post("/api/sign-in/tfa", self._tfa)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: web_typedefs.Handler
    ) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(
            (request.method, request.path, dict(request.headers), body or None)
        )
        if self.request_log_size:
            del self.requests[: -self.request_log_size]
        if queued := self.failures.get(request.path):
            failure = queued.pop(0)
            if failure.delay:
                await asyncio.sleep(failure.delay)
            return web.Response(
                status=failure.status,
                text=failure.body,
                content_type=failure.content_type,
                headers=failure.headers,
            )
        return await handler(request)

    def _uid(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        uid = self.tokens.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or uid is None:
            raise web.HTTPUnauthorized(
                text='{"code":401,"error":"unauthorized"}',
                content_type="application/json",
            )
        return uid

    async def _profile(self, request: web.Request) -> web.Response:
        uid = self._uid(request)
        return web.json_response(
            {
                "uid": int(uid),
                "uidStr": uid,
                "name": f"maker_{uid[-4:]}",
                "account": self.account,
                "nickname": self.nickname,
                "avatar": "https://example.invalid/avatar.png",
                "productModels": list(self.product_models),
            }
        )

    async def _bind(self, request: web.Request) -> web.Response:
        self._uid(request)
        # Older cloud answers carried a trailing newline in the access code.
        devices = [
            {**device, "dev_access_code": device["dev_access_code"] + "\n"}
            for device in self.devices
        ]
        return web.json_response(
            {"message": "success", "code": None, "error": None, "devices": devices}
        )

    async def _tasks(self, request: web.Request) -> web.Response:
        self._uid(request)
        serial = request.query.get("deviceId")
        hits = [t for t in self.tasks if serial is None or t.get("deviceId") == serial]
        return web.json_response({"total": len(hits), "hits": hits})

    async def _version(self, request: web.Request) -> web.Response:
        self._uid(request)
        serial = request.query.get("dev_id")
        devices = [v for v in self.versions if serial is None or v["dev_id"] == serial]
        return web.json_response(
            {"message": "success", "code": None, "error": None, "devices": devices}
        )

    async def _login(self, request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        account = body.get("account")
        if "code" in body:
            if self.code_expired:
                return web.json_response({"code": 1, "error": "expired"}, status=400)
            if body["code"] != self.code:
                return web.json_response({"code": 2, "error": "wrong code"}, status=400)
            return self._token_answer()
        if self.passwords.get(account) != body.get("password"):
            return web.json_response({"code": 2, "error": "wrong password"}, status=400)
        if account in self.tfa_codes:
            key = f"tfa-key-{len(self.tfa_keys) + 1}"
            self.tfa_keys[key] = account
            return web.json_response({"loginType": "tfa", "tfaKey": key})
        if self.login_type:
            return web.json_response(
                {"loginType": self.login_type, "tfaKey": "tfa-key"}
            )
        return self._token_answer()

    def _token_answer(self) -> web.Response:
        return web.json_response(
            {
                "accessToken": self.login_token,
                "refreshToken": self.login_token,
                "expiresIn": 7776000,
                "loginType": "",
            }
        )

    async def _tfa_account(self, request: web.Request) -> str:
        """The account a TFA sign-in's key and code prove, or a 400.

        An unknown (or used) tfaKey is code 1 (start over), a wrong code is
        code 2 (the key stays valid for another try); a right one uses it up.
        """
        body = json.loads(await request.text())
        key = str(body.get("tfaKey"))
        account = self.tfa_keys.get(key)
        if account is None or body.get("tfaCode") != self.tfa_codes.get(account):
            code, error = (1, "expired") if account is None else (2, "wrong code")
            raise web.HTTPBadRequest(
                text=json.dumps({"code": code, "error": error}),
                content_type="application/json",
            )
        del self.tfa_keys[key]
        return account

    async def _tfa_api(self, request: web.Request) -> web.Response:
        """The API host's authenticator sign-in: the token JSON of a login."""
        if not self.tfa_api:
            raise web.HTTPNotFound
        await self._tfa_account(request)
        return self._token_answer()

    async def _csrf(self, request: web.Request) -> web.Response:
        """The web host's CSRF cookie (204, no body)."""
        token = f"csrf-{len(self.csrf_tokens) + 1}"
        self.csrf_tokens.add(token)
        response = web.Response(status=204)
        response.set_cookie(
            "bbl_csrf_token", token, secure=request.secure, samesite="Lax"
        )
        return response

    async def _tfa(self, request: web.Request) -> web.Response:
        """The web host's authenticator sign-in: the token in a ``token`` cookie.

        Without a CSRF cookie the site issued, a 403 like the real one's.
        """
        if request.cookies.get("bbl_csrf_token") not in self.csrf_tokens:
            return web.json_response(
                {"error": "CSRF error: missing_cookie", "reason": "missing_cookie"},
                status=403,
            )
        await self._tfa_account(request)
        response = web.json_response({})
        response.set_cookie(
            "token",
            self.login_token,
            max_age=7776000,
            httponly=True,
            secure=request.secure,
            samesite="Lax",
        )
        return response

    async def _send_code(self, request: web.Request) -> web.Response:
        self.codes_sent.append(json.loads(await request.text()))
        self.code_expired = False
        return web.json_response({"message": "success", "code": None, "error": None})

"""A test CDN on 127.0.0.1 serving print task covers over HTTPS.

Home Assistant's client context is made to trust the CDN's test CA, so cover
downloads run with verification on, exactly as against Bambu Lab's CDN.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from unittest.mock import patch

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tools.test_pki import IssuedCert, TestPKI, server_context

PNG = b"\x89PNG\r\n\x1a\n" + b"benchy" * 10


@dataclass
class Cover:
    """What the cover server answers for one name."""

    body: bytes
    content_type: str | None = "image/png"
    status: int = 200
    chunked: bool = False


@dataclass
class CoverServer:
    """A CDN on 127.0.0.1 serving task covers, counting downloads."""

    covers: dict[str, Cover] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    base: str = ""

    def url(self, name: str) -> str:
        return f"{self.base}/covers/{name}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if (location := self.redirects.get(name)) is not None:
            headers = {"Location": location} if location else {}
            return web.Response(status=HTTPStatus.FOUND, headers=headers)
        cover = self.covers.get(name)
        if cover is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        if request.headers.get("Authorization"):
            return web.Response(status=HTTPStatus.BAD_REQUEST)  # never sent
        if cover.chunked:
            response = web.StreamResponse(status=cover.status)
            if cover.content_type:
                response.content_type = cover.content_type
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(cover.body), 16):
                await response.write(cover.body[start : start + 16])
            await response.write_eof()
            return response
        response = web.Response(status=cover.status, body=cover.body)
        if cover.content_type:
            response.content_type = cover.content_type
        else:
            response.headers["Content-Type"] = ""
        return response


@pytest.fixture
def cdn_ca(pki: TestPKI) -> IssuedCert:
    """The CA of the test CDN."""
    return pki.root("Test CDN CA", key_usage=True)


@pytest.fixture
def trust_cdn(cdn_ca: IssuedCert) -> Iterator[None]:
    """Home Assistant's client context trusts the test CDN (verification stays on)."""
    context = ssl.create_default_context(cadata=cdn_ca.pem)
    with patch("homeassistant.util.ssl.client_context", return_value=context):
        yield


async def _serve(context: ssl.SSLContext | None) -> tuple[CoverServer, TestServer]:
    server = CoverServer()
    app = web.Application()
    app.router.add_get("/covers/{name}", server.handle)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(ssl=context)
    server.base = str(test_server.make_url("")).rstrip("/")
    return server, test_server


@pytest.fixture
async def covers(
    socket_enabled: None, pki: TestPKI, cdn_ca: IssuedCert, trust_cdn: None
) -> AsyncIterator[CoverServer]:
    """The cover server: HTTPS with a certificate for 127.0.0.1."""
    leaf = pki.server(cdn_ca, "cdn.test", san=["127.0.0.1"])
    server, test_server = await _serve(server_context(leaf))
    assert server.base.startswith("https://")
    yield server
    await test_server.close()


@pytest.fixture
async def plain_covers(socket_enabled: None) -> AsyncIterator[CoverServer]:
    """A plain-HTTP cover server, which must never be asked for anything."""
    server, test_server = await _serve(None)
    assert server.base.startswith("http://")
    yield server
    await test_server.close()

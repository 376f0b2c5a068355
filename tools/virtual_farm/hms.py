"""A fake of Bambu Studio's HMS text service (``GET /query.php``).

Serves the answer shape of PROTOCOL.md ("HMS text service") with texts made
up for the codes the tests and the farm raise; nothing here comes from
Bambu Lab's tables. The farm serves it on its cloud's host; tests serve it
on a server of its own (so the cloud's request log holds only cloud calls)
and change ``texts``, ``status`` or ``body`` to make it fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# The HMS message the farm and the tests raise: 0300_0100_0001_0007.
HMS_HEATBED: str = "0300010000010007"
# The same message as a printer reports it (the farm's first P1S raises it).
HMS_HEATBED_ATTR: int = 0x03000100
HMS_HEATBED_CODE: int = 0x00010007
# A second one, of an AMS unit: 0700_8000_0003_0001.
HMS_AMS: str = "0700800000030001"
# A print error: 0300_400C ("cancelled"), the virtual printer's stop.
ERROR_CANCELLED: str = "0300400C"


def made_up_texts() -> dict[str, dict[str, dict[str, str]]]:
    """Service language -> table -> code -> text, invented for the fakes."""
    return {
        "en": {
            "device_hms": {
                HMS_HEATBED: "Virtual heatbed reports an odd temperature (demo text).",
                HMS_AMS: "Virtual AMS slot 1 feels stuck (demo text).",
            },
            "device_error": {ERROR_CANCELLED: "The virtual job was cancelled."},
        },
        "de": {
            "device_hms": {
                HMS_HEATBED: "Virtuelles Heizbett meldet eine seltsame Temperatur.",
            },
            "device_error": {},
        },
    }


@dataclass
class FakeHmsService:
    """Texts per service language; answers like the real service.

    A language it has no texts for gets ``{"result": -1}`` (no data), as does
    a serial prefix outside ``prefixes`` (when that is not empty).
    """

    texts: dict[str, dict[str, dict[str, str]]] = field(default_factory=made_up_texts)
    prefixes: set[str] = field(default_factory=set)
    queries: list[dict[str, str]] = field(default_factory=list)
    # A canned failure: an HTTP status other than 200, or a raw body.
    status: int = 200
    body: str | None = None

    def add_routes(self, app: web.Application) -> None:
        """Serve ``/query.php`` on ``app``."""
        app.router.add_get("/query.php", self._query)

    def app(self) -> web.Application:
        """An application serving only the text service."""
        app = web.Application()
        self.add_routes(app)
        return app

    def answer(self, language: str, prefix: str) -> dict[str, Any]:
        """The service's JSON answer for one language and serial prefix."""
        tables = self.texts.get(language)
        if tables is None or (self.prefixes and prefix not in self.prefixes):
            return {"result": -1, "data": None}
        # The service keys each table by its language name.
        return {
            "result": 0,
            "data": {
                table: {
                    language: [
                        {"ecode": code, "intro": text}
                        for code, text in tables.get(table, {}).items()
                    ]
                }
                for table in ("device_hms", "device_error")
            },
        }

    async def _query(self, request: web.Request) -> web.Response:
        query = {key: request.query.get(key, "") for key in ("lang", "d")}
        self.queries.append(query)
        if self.status != 200 or self.body is not None:
            return web.Response(
                status=self.status, text=self.body or "", content_type="text/html"
            )
        return web.json_response(self.answer(query["lang"], query["d"]))

"""The farm's cloud: :class:`FakeCloud` plus job covers, served over HTTPS."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .cloud import FakeCloud

MAX_COVERS = 64
"""Cover images kept in memory (each is a few kilobytes)."""


@dataclass
class FarmCloud(FakeCloud):
    """A :class:`FakeCloud` that also serves ``/covers/<task id>.png``.

    ``draw_cover(task_id)`` returns PNG bytes or None for an unknown task; it
    is blocking and runs in the default executor.
    """

    draw_cover: Callable[[str], bytes | None] | None = None
    _covers: OrderedDict[str, bytes] = field(default_factory=OrderedDict)

    def app(self) -> web.Application:
        """The cloud paths, the cover images and a short index page."""
        app = super().app()
        app.router.add_get("/covers/{task_id}.png", self._cover)
        app.router.add_get("/", self._index)
        return app

    async def _index(self, _request: web.Request) -> web.Response:
        return web.Response(text="Virtual Bambu Lab cloud (virtual farm)\n")

    async def _cover(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        png = self._covers.get(task_id)
        if png is None and self.draw_cover is not None and task_id.isdigit():
            loop = asyncio.get_running_loop()
            png = await loop.run_in_executor(None, self.draw_cover, task_id)
            if png is not None:
                self._covers[task_id] = png
                while len(self._covers) > MAX_COVERS:
                    self._covers.popitem(last=False)
        if png is None:
            raise web.HTTPNotFound
        return web.Response(body=png, content_type="image/png")

"""Listener plumbing the printer-shaped test servers share (FTPS, cameras).

Each client's handler runs as a task the server keeps, so ``stop`` can
cancel every one still running and a test leaves no task behind; a client
over ``max_clients`` is turned away; a connection always ends with a polite
close (TLS close_notify), aborted when the peer does not take it.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ClientServer:
    """A listener on ``host`` (``port`` 0 = ephemeral) that tracks its clients.

    Subclasses serve a client in :meth:`_serve`; timeouts, socket errors and
    a peer that hangs up mid-read end the client quietly.
    """

    def __init__(self, *, host: str, port: int, max_clients: int) -> None:
        """Configure; nothing listens before :meth:`_listen`."""
        self.host = host
        self.max_clients = max_clients
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The listening port (the chosen one once started)."""
        return self._port

    async def _listen(self, **options: Any) -> None:
        """Listen for clients (``options`` go to ``asyncio.start_server``)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self._port, **options
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every client; no task is left behind."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            server.abort_clients()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client until it leaves."""
        raise NotImplementedError

    def _turn_away(self, writer: asyncio.StreamWriter) -> None:
        """A client over ``max_clients``: by default closed politely."""

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if len(self._tasks) > self.max_clients:
                self._turn_away(writer)
                return
            await self._serve(reader, writer)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            await close(writer)


async def close(writer: asyncio.StreamWriter) -> None:
    """Close politely (TLS close_notify, so the client reads EOF); abort if stuck."""
    if writer.transport.is_closing():
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()

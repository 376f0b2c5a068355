"""Closing asyncio stream connections to printers.

A TLS close waits for the peer's close_notify; a printer that went away (or
an impostor that never answers) would keep that wait open, so the close is
bounded and falls back to aborting the transport. Used by the camera client
and the camera relay.
"""

from __future__ import annotations

import asyncio
from typing import Final

CLOSE_TIMEOUT: Final = 2.0


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Close a connection; abort it when the (TLS) shutdown hangs."""
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise

"""Closing printer connections: bounded, aborted when the peer hangs."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from custom_components.bambu_cloud.bambu import streams


class _Transport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class _Writer:
    """Stands for a StreamWriter whose close never completes (or fails)."""

    def __init__(self, wait: Any) -> None:
        self.transport = _Transport()
        self.closed = False
        self._wait = wait

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        await self._wait()


async def _closes() -> None:
    return None


async def _fails() -> None:
    raise ConnectionResetError


async def _hangs() -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize(("wait", "aborted"), [(_closes, False), (_fails, True)])
async def test_close_or_abort(wait: Any, aborted: bool) -> None:
    writer = _Writer(wait)
    await streams.close_stream(cast("asyncio.StreamWriter", writer))
    assert writer.closed
    assert writer.transport.aborted is aborted


async def test_a_hanging_close_is_aborted_after_the_bound() -> None:
    writer = _Writer(_hangs)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await streams.close_stream(cast("asyncio.StreamWriter", writer))
    assert writer.transport.aborted
    assert loop.time() - started == pytest.approx(streams.CLOSE_TIMEOUT, abs=1.0)


async def test_cancelled_close_aborts_and_is_cancelled() -> None:
    writer = _Writer(_hangs)
    task = asyncio.create_task(
        streams.close_stream(cast("asyncio.StreamWriter", writer))
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.transport.aborted

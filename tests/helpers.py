"""Helpers for tests that wait on real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeassistant.core import HomeAssistant

TIMEOUT = 10.0


async def wait_for(
    hass: HomeAssistant, condition: Callable[[], bool], within: float = TIMEOUT
) -> None:
    """Let real sockets work until condition holds (polling, bounded)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls state of other tasks
            await asyncio.sleep(0.02)
    await hass.async_block_till_done()


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    """The state string of an entity, None when it does not exist."""
    state = hass.states.get(entity_id)
    return None if state is None else state.state

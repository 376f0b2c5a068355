"""A paho-mqtt 2.1 client driven by the running asyncio loop, for test tooling.

Why: the virtual printers and the test broker's own observer are real MQTT
clients of a real broker (mosquitto), but they live in the same process as
the tests and Home Assistant. Driving paho from the event loop (socket
readers/writers instead of ``loop_start``) keeps every callback on the loop
thread, so printer state is never touched from another thread and no thread
outlives a test.

Only the broker's plain internal listener on 127.0.0.1 is dialled, so the
blocking part of ``connect()`` is a local TCP connect. The client reconnects
(after ``retry_delay``) until :meth:`MqttClient.stop`, like firmware does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

_LOGGER = logging.getLogger(__name__)

type MessageHandler = Callable[[str, bytes, int], None]
"""``(topic, payload, qos)`` of every message received."""

MISC_INTERVAL = 1.0
"""How often paho's keepalive bookkeeping runs."""


class MqttClient:
    """One MQTT 3.1.1 connection with fixed subscriptions, kept up until stopped."""

    def __init__(
        self,
        port: int | Callable[[], int],
        *,
        client_id: str,
        username: str,
        password: str,
        subscriptions: Sequence[tuple[str, int]] = (),
        on_message: MessageHandler | None = None,
        host: str = "127.0.0.1",
        keepalive: int = 30,
        retry_delay: float = 0.1,
    ) -> None:
        """Configure; nothing connects before :meth:`start`.

        ``port`` may be a callable, asked on every attempt (a broker that
        comes back on another port after a restart).
        """
        self._port = port
        self.host = host
        self.client_id = client_id
        self.keepalive = keepalive
        self.retry_delay = retry_delay
        self._username = username
        self._password = password
        self._subscriptions = tuple(subscriptions)
        self._on_message = on_message
        self._client: mqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._pending_subacks = 0

    @property
    def port(self) -> int:
        """The port the next attempt dials."""
        return self._port() if callable(self._port) else self._port

    @property
    def started(self) -> bool:
        """Between :meth:`start` and :meth:`stop`."""
        return self._task is not None

    @property
    def ready(self) -> bool:
        """Connected, with every subscription acknowledged."""
        return self._ready.is_set()

    async def start(self, within: float = 5.0) -> None:
        """Connect (and keep reconnecting); wait until subscribed."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._run(), name=f"mqtt-client-{self.client_id}"
            )
        await self.wait_ready(within)

    async def wait_ready(self, within: float = 5.0) -> None:
        """Wait until connected and subscribed (TimeoutError otherwise)."""
        async with asyncio.timeout(within):
            await self._ready.wait()

    async def stop(self) -> None:
        """Disconnect cleanly and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> bool:
        """Queue a message; False when not connected (nothing is queued)."""
        client = self._client
        if client is None or not self.ready:
            return False
        info = client.publish(topic, payload, qos=qos)
        return info.rc is MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- connection ----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._connection()
            except OSError as err:
                _LOGGER.debug("%s: connect failed: %s", self.client_id, err)
            await asyncio.sleep(self.retry_delay)

    async def _connection(self) -> None:
        loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        client.username_pw_set(self._username, self._password)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.on_socket_open = lambda c, _u, sock: loop.add_reader(sock, self._read, c)
        client.on_socket_close = lambda _c, _u, sock: _forget(loop, sock)
        client.on_socket_register_write = lambda c, _u, sock: loop.add_writer(
            sock, self._write, c
        )
        client.on_socket_unregister_write = lambda _c, _u, sock: _unwatch_writes(
            loop, sock
        )
        self._closed = asyncio.Event()
        self._client = client
        misc: asyncio.Task[None] | None = None
        try:
            client.connect(self.host, self.port, self.keepalive)
            misc = asyncio.create_task(self._misc(client))
            await self._closed.wait()
        finally:
            self._ready.clear()
            self._client = None
            if misc is not None:
                misc.cancel()
            _close(loop, client)

    async def _misc(self, client: mqtt.Client) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL)
            if client.loop_misc() is not MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._closed.set()
                return

    def _read(self, client: mqtt.Client) -> None:
        rc = client.loop_read()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self._closed.set()

    def _write(self, client: mqtt.Client) -> None:
        rc = client.loop_write()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self._closed.set()

    # -- paho callbacks (on the loop thread) ---------------------------------

    def _handle_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            _LOGGER.warning("%s: broker refused: %s", self.client_id, reason)
            self._closed.set()
            return
        if not self._subscriptions:
            self._ready.set()
            return
        self._pending_subacks = 1
        client.subscribe(list(self._subscriptions))

    def _handle_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        codes: list[ReasonCode],
        _properties: Any,
    ) -> None:
        if any(code.is_failure for code in codes):
            _LOGGER.warning("%s: subscription refused: %s", self.client_id, codes)
        self._pending_subacks -= 1
        if self._pending_subacks <= 0:
            self._ready.set()

    def _handle_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        _reason: ReasonCode,
        _properties: Any,
    ) -> None:
        self._closed.set()

    def _handle_message(
        self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        # Nothing may escape to paho: it would handle the packet again.
        if self._on_message is None:
            return
        try:
            self._on_message(message.topic, message.payload, message.qos)
        except Exception:
            _LOGGER.exception("%s: message handler failed", self.client_id)


def _unwatch_writes(loop: asyncio.AbstractEventLoop, sock: Any) -> None:
    loop.remove_writer(sock)


def _forget(loop: asyncio.AbstractEventLoop, sock: Any) -> None:
    loop.remove_reader(sock)
    loop.remove_writer(sock)


def _close(loop: asyncio.AbstractEventLoop, client: mqtt.Client) -> None:
    """Send DISCONNECT if still connected, then drop the socket for good."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop_write()  # DISCONNECT is tiny: one non-blocking write
    sock = client.socket()
    if sock is not None:
        _forget(loop, sock)
        with contextlib.suppress(OSError):
            sock.close()

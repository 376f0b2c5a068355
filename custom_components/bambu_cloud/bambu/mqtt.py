"""One MQTT connection (an account's cloud broker or one printer's LAN broker).

paho-mqtt is driven by the asyncio loop itself: only the blocking part of
`connect` (DNS, TCP, TLS handshake) runs in the executor; after that paho's
socket callbacks register the socket with the loop, so every message callback
runs on the loop and no thread is left behind. Reconnects use capped
exponential back-off with jitter that starts over only after a connection
stayed up for a while (``RetryPolicy``); a broker that refuses the credentials
stops the session until its owner calls ``retry``.

The session supervises itself: an exception in a callback of its owner, in a
subscribe or in paho's packet handling is logged once and contained, and a
connection whose state paho can no longer trust is dropped and re-made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

_LOGGER = logging.getLogger(__name__)

KEEPALIVE = 60
CONNECT_TIMEOUT: Final = 15.0
MISC_INTERVAL: Final = 1.0
READ_BATCH = 100
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
# A connection must stay up this long before the back-off starts over.
STABLE_AFTER = 60.0
# CONNACK codes (MQTT 3.1.1) that mean "wrong credentials": retrying is futile.
_AUTH_REFUSED = {4, 5}


class SessionStatus(StrEnum):
    """Where a session is in its life."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"
    TLS_FAILED = "tls_failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """How to reach and log in to one broker."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    ssl_context: ssl.SSLContext
    # SNI and certificate name to expect; the printer serial on the LAN.
    server_hostname: str | None = None
    keepalive: int = KEEPALIVE
    client_id_prefix: str = "bambu_cloud"
    # Dialling (DNS, TCP, TLS handshake) and CONNACK together, in seconds.
    connect_timeout: float = CONNECT_TIMEOUT
    # How often paho's keepalive and dead-connection checks run, in seconds.
    check_interval: float = MISC_INTERVAL


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When a session tries again (seconds).

    Delays grow from ``minimum`` to ``maximum`` with jitter; they start over
    only once a connection stayed up for ``stable_after``, so a broker that
    accepts and at once drops the client sees growing intervals rather than
    a reconnect per ``minimum``.
    """

    minimum: float = BACKOFF_MIN
    maximum: float = BACKOFF_MAX
    stable_after: float = STABLE_AFTER

    def backoff(self) -> Backoff:
        """A fresh back-off following this policy."""
        return Backoff(self.minimum, self.maximum)


class Backoff:
    """Capped exponential back-off with full jitter."""

    def __init__(
        self,
        minimum: float = BACKOFF_MIN,
        maximum: float = BACKOFF_MAX,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """Start at the minimum."""
        self._min = minimum
        self._max = maximum
        self._rand = rand
        self._attempt = 0

    def reset(self) -> None:
        """Forget earlier failures after a good connection."""
        self._attempt = 0

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = min(self._max, self._min * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 16)
        return float(self._min + (ceiling - self._min) * self._rand())


class _Client(mqtt.Client):
    """paho client that can send an SNI different from the host it dials.

    Printers are dialled by IP but identified by serial: SNI and the
    certificate name check must use the serial (the context has
    check_hostname on, so OpenSSL verifies it during the handshake).
    """

    server_hostname: str | None = None

    def _ssl_wrap_socket(self, tcp_sock: Any) -> ssl.SSLSocket:
        if self._ssl_context is None:
            return super()._ssl_wrap_socket(tcp_sock)
        # Like paho's, but a failed handshake closes the socket at once
        # (paho leaves it to the garbage collector).
        sock = self._ssl_context.wrap_socket(
            tcp_sock,
            server_hostname=self.server_hostname or self._host,
            do_handshake_on_connect=False,
        )
        try:
            # paho waits keepalive seconds (60) for the handshake: a peer
            # that accepts TCP and stays silent would hold an executor
            # thread long after the attempt timed out on the loop.
            sock.settimeout(self._connect_timeout)
            sock.do_handshake()
        except BaseException:
            sock.close()
            raise
        return sock


type MessageHandler = Callable[[str, bytes], None]
type StatusHandler = Callable[[SessionStatus, BaseException | None], None]


class MqttSession:
    """A self-healing MQTT connection whose callbacks all run on the loop."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        loop: asyncio.AbstractEventLoop,
        on_message: MessageHandler,
        on_status: StatusHandler,
        on_connected: Callable[[], None] | None = None,
        retry: RetryPolicy | None = None,
        backoff: Backoff | None = None,
        name: str = "mqtt",
    ) -> None:
        """Prepare the session; `start` connects.

        ``backoff`` overrides the delays of ``retry`` (tests inject one with
        a fixed random source); ``retry.stable_after`` still applies.
        """
        self.config = config
        self.name = name
        self.status = SessionStatus.STOPPED
        self._on_message = on_message
        self._on_status = on_status
        self._on_connected = on_connected
        self._retry = retry or RetryPolicy()
        self._backoff = backoff or self._retry.backoff()
        self._topics: set[str] = set()
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[int] | None = None
        self._closed: asyncio.Event = asyncio.Event()
        self._sockets: dict[Any, int] = {}
        self._loop = loop
        self._loop_thread = 0
        self._faults: set[str] = set()

    @property
    def connected(self) -> bool:
        """Whether the broker accepted us and the socket is up."""
        return self.status is SessionStatus.CONNECTED

    def start(self) -> None:
        """Begin connecting in the background (call from the loop)."""
        if self._task is not None:
            return
        self._loop_thread = threading.get_ident()
        self._task = self._loop.create_task(self._run(), name=f"bambu {self.name}")

    def retry(self) -> None:
        """Connect again, after the back-off, once the broker refused us.

        The owner calls this when it has found the refusal transient (the
        cloud API still accepts the token). Does nothing while the session
        runs or after `stop`.
        """
        task = self._task
        if task is None or not task.done():
            return
        self._task = self._loop.create_task(
            self._run(self._backoff.next()), name=f"bambu {self.name}"
        )

    async def stop(self) -> None:
        """Disconnect and end every task and socket registration; never raises."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # stop() itself was cancelled
            except Exception:
                _LOGGER.exception("%s: session task failed", self.name)
        self._teardown()
        self._set_status(SessionStatus.STOPPED, None)

    def subscribe(self, topic: str) -> None:
        """Subscribe now if connected, and on every future connect."""
        if topic in self._topics:
            return
        self._topics.add(topic)
        if self._client is not None and self.connected:
            self._subscribe(self._client, topic)

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving a topic without reconnecting."""
        if topic not in self._topics:
            return
        self._topics.discard(topic)
        if self._client is not None and self.connected:
            try:
                self._client.unsubscribe(topic)
            except Exception as err:  # noqa: BLE001 - logged by _fault
                self._fault("unsubscribe", err, f"unsubscribing from {topic} failed")

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> bool:
        """Queue a message; False when not connected."""
        if self._client is None or not self.connected:
            return False
        info = self._client.publish(topic, payload, qos=qos)
        return info.rc is MQTTErrorCode.MQTT_ERR_SUCCESS

    def _fault(
        self, kind: str, err: BaseException, message: str, level: int = logging.ERROR
    ) -> None:
        """Log a contained exception once at ``level``, then at debug level.

        A fault that repeats for every message must not flood the log.
        """
        if kind in self._faults:
            level = logging.DEBUG
        self._faults.add(kind)
        _LOGGER.log(level, "%s: %s", self.name, message, exc_info=err)

    async def _run(self, delay: float = 0.0) -> None:
        """Connect, stay connected, reconnect with back-off until stopped."""
        if delay:
            await asyncio.sleep(delay)
        while True:
            try:
                if await self._attempt():
                    return
            except Exception as err:  # noqa: BLE001 - logged by _fault
                # A bug here must not end the session for good: drop the
                # connection and try again like after any other failure.
                self._fault("session", err, "connection failed unexpectedly")
                self._teardown()
                self._set_status(SessionStatus.DISCONNECTED, err)
            await asyncio.sleep(self._backoff.next())

    async def _attempt(self) -> bool:
        """One connection, from dialling to its end; True when refused for good."""
        self._set_status(SessionStatus.CONNECTING, None)
        try:
            code = await self._connect()
        except ssl.SSLCertVerificationError as err:
            self._teardown()
            self._set_status(SessionStatus.TLS_FAILED, err)
            return False
        except (OSError, TimeoutError, ssl.SSLError) as err:
            _LOGGER.debug("%s: connect failed: %r", self.name, err)
            self._teardown()
            self._set_status(SessionStatus.DISCONNECTED, err)
            return False
        if code in _AUTH_REFUSED:
            self._teardown()
            self._set_status(SessionStatus.AUTH_FAILED, None)
            return True
        if code != 0:
            _LOGGER.debug("%s: broker refused with CONNACK %s", self.name, code)
            self._teardown()
            self._set_status(SessionStatus.DISCONNECTED, None)
            return False
        up_since = self._loop.time()
        misc = asyncio.create_task(self._misc_loop())
        try:
            self._set_status(SessionStatus.CONNECTED, None)
            client = self._client
            if client is not None:
                for topic in sorted(self._topics):
                    self._subscribe(client, topic)
            if self._on_connected is not None:
                try:
                    self._on_connected()
                except Exception as err:  # noqa: BLE001 - logged by _fault
                    self._fault("on_connected", err, "connect handler failed")
            await self._closed.wait()
        finally:
            misc.cancel()
            # Only a connection that stayed up proves the broker is healthy;
            # one dropped at once keeps the delays growing.
            if self._loop.time() - up_since >= self._retry.stable_after:
                self._backoff.reset()
        self._teardown()
        self._set_status(SessionStatus.DISCONNECTED, None)
        return False

    def _subscribe(self, client: _Client, topic: str) -> None:
        """Subscribe one topic; a topic paho refuses is dropped, not fatal."""
        try:
            client.subscribe(topic, qos=1)
        except ValueError as err:
            self._topics.discard(topic)
            self._fault("subscribe", err, f"cannot subscribe to {topic!r}")
        except Exception as err:  # noqa: BLE001 - logged by _fault
            self._fault("subscribe", err, f"subscribing to {topic!r} failed")

    async def _connect(self) -> int:
        """Dial (in the executor) and wait for CONNACK; return its code."""
        loop = self._loop
        client = self._new_client()
        self._client = client
        self._closed = asyncio.Event()
        self._connack = loop.create_future()
        cfg = self.config
        async with asyncio.timeout(cfg.connect_timeout):
            await loop.run_in_executor(
                None, client.connect, cfg.host, cfg.port, cfg.keepalive
            )
            return await self._connack

    def _new_client(self) -> _Client:
        cfg = self.config
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{cfg.client_id_prefix}_{uuid.uuid4().hex[:12]}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        client.server_hostname = cfg.server_hostname
        client.connect_timeout = cfg.connect_timeout
        client.username_pw_set(cfg.username, cfg.password)
        client.tls_set_context(cfg.ssl_context)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_socket_open = self._threadsafe(self._socket_open)
        client.on_socket_close = self._threadsafe(self._socket_close)
        client.on_socket_register_write = self._threadsafe(self._register_write)
        client.on_socket_unregister_write = self._threadsafe(self._unregister_write)
        return client

    def _threadsafe(
        self, handler: Callable[[mqtt.Client, Any, Any], None]
    ) -> Callable[[mqtt.Client, Any, Any], None]:
        """Run a socket hook on the loop: paho calls some from the executor."""
        loop = self._loop
        loop_thread = self._loop_thread

        def call(client: mqtt.Client, userdata: Any, sock: Any) -> None:
            if threading.get_ident() == loop_thread:
                handler(client, userdata, sock)
            else:
                loop.call_soon_threadsafe(handler, client, userdata, sock)

        return call

    def _socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if client is not self._client:
            return
        fd = sock.fileno()
        if fd < 0:
            return
        self._sockets[sock] = fd
        self._loop.add_reader(fd, self._read, client)

    def _socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._forget_socket(sock)

    def _register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if client is self._client and (fd := self._sockets.get(sock)) is not None:
            self._loop.add_writer(fd, self._write, client)

    def _unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if (fd := self._sockets.get(sock)) is not None:
            self._loop.remove_writer(fd)

    def _read(self, client: mqtt.Client) -> None:
        if client is not self._client:
            return
        try:
            code = client.loop_read(READ_BATCH)
        except Exception as err:  # noqa: BLE001 - logged by _fault
            # paho raises from its packet handlers on a malformed packet and
            # then keeps the half-handled packet, handling it again on every
            # read: the connection cannot recover, so make a new one.
            self._fault("read", err, "dropping the connection after a bad packet")
            self._drop_connection()
            return
        if code not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self._closed.set()
            return
        # Decrypted bytes can wait in the TLS buffer with the socket idle.
        sock = client.socket()
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            self._loop.call_soon(self._read, client)

    def _write(self, client: mqtt.Client) -> None:
        if client is not self._client:
            return
        try:
            client.loop_write()
        except Exception as err:  # noqa: BLE001 - logged by _fault
            self._fault("write", err, "dropping the connection after a failed write")
            self._drop_connection()

    def _drop_connection(self) -> None:
        """Stop watching the socket now and let `_run` reconnect."""
        for sock in list(self._sockets):
            self._forget_socket(sock)
        self._closed.set()

    def _forget_socket(self, sock: Any) -> None:
        if (fd := self._sockets.pop(sock, None)) is not None:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)

    async def _misc_loop(self) -> None:
        """Keepalive pings and dead-connection detection."""
        while True:
            await asyncio.sleep(self.config.check_interval)
            client = self._client
            healthy = MQTTErrorCode.MQTT_ERR_SUCCESS
            try:
                alive = client is not None and client.loop_misc() is healthy
            except Exception as err:  # noqa: BLE001 - logged by _fault
                self._fault("misc", err, "keepalive check failed")
                alive = False
            if not alive:
                self._closed.set()
                return

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(_connack_code(reason))

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if client is self._client:
            self._closed.set()

    def _handle_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        # Nothing may escape to paho: it would keep the packet and handle it
        # again on every later read.
        try:
            topic = message.topic
        except UnicodeDecodeError as err:
            self._fault(
                "topic",
                err,
                "dropped a message whose topic is not UTF-8",
                logging.WARNING,
            )
            return
        try:
            self._on_message(topic, message.payload)
        except Exception as err:  # noqa: BLE001 - logged by _fault
            self._fault("message", err, f"message handler failed on {topic}")

    def _teardown(self) -> None:
        """Drop the client and every loop registration of its socket."""
        client, self._client = self._client, None
        for sock in list(self._sockets):
            self._forget_socket(sock)
        if client is not None:
            client.on_socket_close = None
            client.on_socket_unregister_write = None
            client.on_disconnect = None
            try:
                client.disconnect()
            except Exception:
                _LOGGER.debug("%s: disconnect failed", self.name, exc_info=True)
            finally:
                _close_socket(client)
        if self._connack is not None and not self._connack.done():
            self._connack.cancel()

    def _set_status(self, status: SessionStatus, error: BaseException | None) -> None:
        if status is self.status and error is None:
            return
        self.status = status
        try:
            self._on_status(status, error)
        except Exception as err:  # noqa: BLE001 - logged by _fault
            self._fault("on_status", err, f"status handler failed on {status}")


def _connack_code(reason: ReasonCode) -> int:
    """The MQTT 3.1.1 CONNACK return code behind paho's v5-style reason."""
    if not reason.is_failure:
        return 0
    # paho maps 3.1.1 codes to v5 reason codes; map back the ones we act on.
    return {
        0x84: 1,  # unsupported protocol version
        0x85: 2,  # client identifier not valid
        0x88: 3,  # server unavailable
        0x86: 4,  # bad user name or password
        0x87: 5,  # not authorised
    }.get(reason.value, 3)


def _close_socket(client: mqtt.Client) -> None:
    """Close paho's socket now rather than at garbage collection."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()

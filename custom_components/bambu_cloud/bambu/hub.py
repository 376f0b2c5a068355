"""Routes an account's printers over MQTT: one cloud session, optional LAN ones.

The cloud session (one per account) carries every bound printer; a printer
with a LAN host also gets its own LAN session, which is preferred while it is
connected. Reports from the cloud are ignored for a printer whose LAN session
is up, so there is one source of state at a time. A hub built without a cloud
login (a printer added without an account) has no cloud session: its printers'
only link is LAN, and everything else works the same.

One fault never stops the hub for good: a failing listener is logged once and
the others still run, a refused cloud login is retried once the owner found
it transient (``retry_cloud``), a printer refused for an unknown CA is probed
again with back-off, and ``stop`` always completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from . import commands
from .auth import AppCertificate
from .config import LAN_PORT, BambuConfig
from .const import PrinterModel
from .ftps import (
    DEFAULT_MAX_BYTES,
    PrinterStorage,
    RemoteFile,
    StorageError,
    StorageErrorReason,
)
from .models import valid_serial
from .mqtt import Backoff, MqttSession, SessionConfig, SessionStatus
from .state import ChangeSet, CommandAck, PrinterState, affected_views
from .tls import classify_tls_error

_LOGGER = logging.getLogger(__name__)

LAN_USER = "bblp"
AVAILABILITY = "availability"
# Routes a printer keeps: reports repeat a few small change sets (a new
# temperature, the progress); large ones (a reconnect's full report) are rare
# and not kept, so the memory stays small at any fleet size.
_MAX_ROUTES = 64
_MAX_ROUTED_FIELDS = 8
_PORT = re.compile(r"[0-9]{1,5}")


def split_host_port(value: str, default_port: int = LAN_PORT) -> tuple[str, int]:
    """A LAN address as host and port; "host:port" overrides the MQTT port.

    Only one to five ASCII digits count as a port: ``str.isdigit`` also
    accepts characters such as "²" that ``int`` refuses.
    """
    host, sep, port = value.rpartition(":")
    if sep and _PORT.fullmatch(port) and host and ":" not in host:
        return host, int(port)
    return value, default_port


def lan_address(value: str) -> str:
    """The printer's address alone, from a LAN host option ("host[:port]").

    An IPv6 address may come in brackets ("[fd00::1]:8883").
    """
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return split_host_port(value)[0]


class ProblemKind(StrEnum):
    """Conditions the user must act on (repair issues, reauth)."""

    CLOUD_AUTH = "cloud_auth"
    LAN_AUTH = "lan_auth"
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem raised (active) or cleared (not active)."""

    kind: ProblemKind
    serial: str | None
    active: bool
    detail: str | None = None


class CommandError(Exception):
    """The printer rejected a command (``result: failed``)."""

    def __init__(self, reason: str | None, err_code: int | None) -> None:
        """Keep the printer's reason and error code."""
        super().__init__(f"{reason} ({err_code})")
        self.reason = reason
        self.err_code = err_code

    @property
    def signature_rejected(self) -> bool:
        """Whether the firmware wants signed commands."""
        return (
            self.err_code in (commands.ERR_SIGNATURE, commands.ERR_ENVELOPE)
            or (self.reason or "").lower() == commands.SIGNATURE_REJECTED
        )


class CommandTimeoutError(Exception):
    """The printer did not acknowledge a command in time."""


class NotConnectedError(Exception):
    """No session can reach the printer right now."""


class TrustError(Exception):
    """No trust anchor could be established for a printer."""

    def __init__(self, kind: str) -> None:
        """Keep the classified cause (unknown_ca, serial_mismatch, ...)."""
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterSpec:
    """What the hub needs to know about a bound printer."""

    serial: str
    model: PrinterModel
    name: str = ""
    access_code: str | None = field(default=None, repr=False)
    lan_host: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudSpec:
    """The account's login on the cloud broker named by the configuration."""

    uid: str
    token: str = field(repr=False)
    ssl_context: ssl.SSLContext


type StateListener = Callable[[ChangeSet], None]


class ContextFactory(Protocol):
    """The verifying TLS context of a printer, from its trust anchors.

    ``refresh`` asks for a new look at the chain the printer presents: after
    it failed verification with an unknown CA, a first probe may have been
    answered by another device, and newly presented pinned certificates may
    join the anchors (never anything that is not pinned).
    """

    def __call__(
        self, serial: str, host: str, *, refresh: bool = ...
    ) -> Awaitable[ssl.SSLContext]:
        """Return the context; raise TrustError or OSError."""


@dataclass(slots=True, eq=False)
class PrinterLink:
    """A printer's state, its listeners and which session feeds it."""

    spec: PrinterSpec
    state: PrinterState = field(default_factory=PrinterState)
    sequence: commands.SequenceCounter = field(default_factory=commands.SequenceCounter)
    listeners: list[tuple[StateListener, frozenset[str] | None]] = field(
        default_factory=list
    )
    # Change set -> (what listeners hear, who hears it); see _route.
    routes: dict[ChangeSet, tuple[ChangeSet, tuple[StateListener, ...]]] = field(
        default_factory=dict
    )
    lan: MqttSession | None = None
    lan_task: asyncio.Task[None] | None = None
    last_report: float = 0.0
    last_pushall: float = float("-inf")
    tls_problem: str | None = None
    retry: asyncio.TimerHandle | None = None
    reprobe: bool = False
    # When to look at the chain again; the hub passes its probe policy.
    probe_backoff: Backoff = field(default_factory=Backoff)
    lan_up: bool = False
    available: bool = False
    # Once available: later changes are logged (once each way, at info).
    seen_available: bool = False
    failed_listeners: set[int] = field(default_factory=set)

    @property
    def serial(self) -> str:
        """The printer's serial number."""
        return self.spec.serial

    @property
    def report_topic(self) -> str:
        """Where the printer publishes."""
        return f"device/{self.serial}/report"

    @property
    def request_topic(self) -> str:
        """Where commands go."""
        return f"device/{self.serial}/request"

    @property
    def lan_connected(self) -> bool:
        """Whether the LAN session is up."""
        return self.lan is not None and self.lan.connected


def _route(
    link: PrinterLink, changed: ChangeSet
) -> tuple[ChangeSet, tuple[StateListener, ...]]:
    """The change set with the views it affects, and the listeners of those.

    A printer's reports change the same few fields over and over (the nozzle
    temperature, the progress), so both are looked up, not worked out again:
    computed once per distinct small change set and forgotten whenever a
    listener comes or goes (and all at once past ``_MAX_ROUTES``).
    """
    route = link.routes.get(changed)
    if route is None:
        heard = changed | affected_views(changed)
        listeners = tuple(
            listener
            for listener, views in link.listeners
            if views is None or not heard.isdisjoint(views)
        )
        route = (heard, listeners)
        if len(changed) <= _MAX_ROUTED_FIELDS:
            if len(link.routes) >= _MAX_ROUTES:
                link.routes.clear()
            link.routes[changed] = route
    return route


def _notify(link: PrinterLink, changed: ChangeSet) -> None:
    """Hand a change set, with the views it affects, to its listeners.

    Listeners filter on view names, so those are added here once. A failing
    listener is logged (in full once, then briefly) and the others still
    hear the change; one that stops listening meanwhile hears this one still.
    """
    heard, listeners = _route(link, changed)
    for listener in listeners:
        try:
            listener(heard)
        except Exception:
            if id(listener) in link.failed_listeners:
                _LOGGER.debug("%s: listener failed again", link.serial)
            else:
                link.failed_listeners.add(id(listener))
                _LOGGER.exception("%s: a state listener failed", link.serial)


async def _settle(task: asyncio.Future[Any], what: str) -> None:
    """Wait for a (cancelled) task; its failure is logged, never raised."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the waiter itself is being cancelled
    except Exception:
        _LOGGER.exception("%s failed", what)


class BambuHub:
    """All MQTT traffic of one account."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        cloud: CloudSpec | None,
        *,
        config: BambuConfig,
        printer_context: ContextFactory,
        on_problem: Callable[[Problem], None],
        certificate: AppCertificate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare the cloud session; `start` connects.

        ``config`` names the cloud broker and times everything: reconnects
        of every MQTT session, new looks at a printer's chain after a probe
        or trust failure, command acknowledgements and the watchdog. Without
        ``cloud`` there is no cloud session: printers are reached over LAN only.
        """
        self.config = config
        self._loop = loop
        self._printer_context = printer_context
        self._on_problem = on_problem
        self._stopped = False
        self._rejected: set[str] = set()
        self.certificate = certificate
        self._clock = clock
        self._pending: dict[tuple[str, str], asyncio.Future[CommandAck]] = {}
        self.printers: dict[str, PrinterLink] = {}
        self.cloud: MqttSession | None = None
        if cloud is not None:
            self.cloud = MqttSession(
                SessionConfig(
                    host=config.endpoints.mqtt_host,
                    port=config.endpoints.mqtt_port,
                    username=f"u_{cloud.uid}",
                    password=cloud.token,
                    ssl_context=cloud.ssl_context,
                    connect_timeout=config.timeouts.mqtt_connect,
                ),
                loop=loop,
                on_message=self._cloud_message,
                on_status=self._cloud_status,
                on_connected=self._cloud_connected,
                retry=config.retry,
                name="cloud",
            )
        self._watchdog: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cloud_tls_logged = False
        self._cloud_auth_logged = False
        self._cloud_was_up = False
        self._cloud_down_logged = False
        self._watch_failed = False
        # Printers accept very few FTPS sessions: one file operation at a time.
        self._storage_locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Connect the cloud session (if any) and the watchdog."""
        if self.cloud is not None:
            self.cloud.start()
        self._watchdog = self._loop.create_task(self._watch(), name="bambu watchdog")

    async def stop(self) -> None:
        """Stop every session and task; nothing lingers, nothing is raised.

        Once stopping, nothing new starts (a LAN restart racing the unload
        finds the hub stopped); whatever fails on the way is logged and the
        rest is still torn down, so an unload always completes.
        """
        self._stopped = True
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            await _settle(watchdog, "The watchdog")
        for link in list(self.printers.values()):
            await self._stop_lan_logged(link)
        while self._tasks:
            tasks = list(self._tasks)
            self._tasks.difference_update(tasks)
            for task in tasks:
                await _settle(task, "Background work")
        # A restart that was running may have left a session behind.
        for link in list(self.printers.values()):
            await self._stop_lan_logged(link)
        try:
            if self.cloud is not None:
                await self.cloud.stop()
        except Exception:
            _LOGGER.exception("Stopping the cloud session failed")

    async def _stop_lan_logged(self, link: PrinterLink) -> None:
        try:
            await self._stop_lan(link)
        except Exception:
            _LOGGER.exception("%s: stopping the LAN session failed", link.serial)

    def retry_cloud(self) -> None:
        """Log in to the cloud broker again after its refusal, with back-off.

        The owner calls this once it has found the refusal transient (the
        cloud API still accepts the token); nothing happens after `stop`.
        """
        if not self._stopped and self.cloud is not None:
            self.cloud.retry()

    def set_printers(self, specs: Mapping[str, PrinterSpec]) -> None:
        """Follow the bind list and LAN options: add, update, remove.

        Synchronous so entities of a new printer can attach right after;
        LAN sessions start and stop in background tasks. Ignored once the
        hub is stopping.
        """
        if self._stopped:
            return
        for serial in list(self.printers.keys() - specs.keys()):
            link = self.printers.pop(serial)
            if self.cloud is not None:
                self.cloud.unsubscribe(link.report_topic)
            self._background(self._stop_lan(link))
        for serial, spec in specs.items():
            if not valid_serial(serial) or spec.serial != serial:
                # Whoever built the spec: a serial becomes a topic level and
                # the TLS server name, so a malformed one never gets there.
                if serial not in self._rejected:
                    self._rejected.add(serial)
                    _LOGGER.warning("Ignoring a printer with an invalid serial")
                continue
            existing = self.printers.get(serial)
            if existing is None:
                link = self.printers[serial] = PrinterLink(
                    spec, probe_backoff=self.config.probe_retry.backoff()
                )
                if self.cloud is not None:
                    self.cloud.subscribe(link.report_topic)
                    if self.cloud.connected:
                        self._greet(link)
            elif (link := existing).spec != spec:
                old, link.spec = link.spec, spec
                if (old.lan_host, old.access_code) != (spec.lan_host, spec.access_code):
                    self._background(self._restart_lan(link))
                    continue
            # After a trust failure only the scheduled new look (unknown CA)
            # or new LAN options start the link again: no error per bind poll.
            if (
                spec.lan_host
                and spec.access_code
                and link.lan_task is None
                and link.tls_problem is None
            ):
                link.lan_task = self._loop.create_task(
                    self._start_lan(link), name=f"bambu lan {serial}"
                )

    async def _restart_lan(self, link: PrinterLink) -> None:
        await self._stop_lan(link)
        # New options: start over as for a new printer.
        link.probe_backoff.reset()
        link.reprobe = False
        self._retry_lan(link)  # does nothing once the hub is stopping

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("Background work failed", exc_info=err)

    def _problem(self, problem: Problem) -> None:
        """Tell the owner; its failure must not break the session reporting."""
        try:
            self._on_problem(problem)
        except Exception:
            _LOGGER.exception("Handling %s failed", problem)

    def listen(
        self,
        serial: str,
        listener: StateListener,
        views: frozenset[str] | None = None,
    ) -> Callable[[], None]:
        """Call listener with each change set of a printer; returns unlisten.

        With ``views``, only change sets naming one of them (view or field
        names, or AVAILABILITY) reach the listener: most entities show one
        value, and a report usually changes few.
        """
        link = self.printers[serial]
        entry = (listener, views)
        link.listeners.append(entry)
        link.routes.clear()

        def unlisten() -> None:
            with contextlib.suppress(ValueError):
                link.listeners.remove(entry)
                link.routes.clear()

        return unlisten

    def publish(self, serial: str, command: commands.Command, qos: int = 0) -> bool:
        """Send a command over the preferred connected session."""
        link = self.printers.get(serial)
        if link is None:
            return False
        session = link.lan if link.lan_connected else self.cloud
        if session is None or not session.connected:
            return False
        return session.publish(link.request_topic, commands.encode(command), qos)

    async def async_command(
        self,
        serial: str,
        command: commands.Command,
        *,
        ack_within: float | None = None,
    ) -> CommandAck:
        """Send a command and wait for the printer's acknowledgement.

        ``print`` commands are signed when an app certificate is configured.
        The acknowledgement is awaited ``ack_within`` seconds, by default the
        configured ``timeouts.command_ack``.
        Raises NotConnectedError, CommandTimeoutError or CommandError.
        """
        link = self.printers.get(serial)
        if link is None:
            raise NotConnectedError(serial)
        sequence_id = link.sequence.next()
        message = commands.with_sequence(command, sequence_id)
        if self.certificate is not None:
            message = commands.sign(message, self.certificate)
        key = (serial, sequence_id)
        future: asyncio.Future[CommandAck] = self._loop.create_future()
        self._pending[key] = future
        try:
            if not self.publish(serial, message, qos=1):
                raise NotConnectedError(serial)
            try:
                async with asyncio.timeout(
                    self.config.timeouts.command_ack
                    if ack_within is None
                    else ack_within
                ):
                    ack = await future
            except TimeoutError as err:
                raise CommandTimeoutError(serial) from err
        finally:
            self._pending.pop(key, None)
        if not ack.ok:
            raise CommandError(ack.reason, ack.err_code)
        return ack

    def request_full_report(self, serial: str, *, force: bool = False) -> bool:
        """Send pushall, at most once per ``watchdog.pushall_spacing`` unless forced."""
        link = self.printers.get(serial)
        if link is None:
            return False
        now = self._clock()
        if not force and now - link.last_pushall < self.config.watchdog.pushall_spacing:
            return False
        sent = self.publish(serial, commands.pushall(link.sequence.next()))
        if sent:
            link.last_pushall = now
        return sent

    # -------------------------------------------------------------- storage

    async def async_list_files(self, serial: str) -> tuple[RemoteFile, ...]:
        """The project files (``.3mf``) on a printer's storage, over LAN FTPS.

        Raises StorageError (``NO_ADDRESS`` without a LAN address or access
        code).
        """
        storage = await self._storage(serial)
        async with self._storage_lock(serial):
            return await storage.async_list_files()

    async def async_read_file(
        self, serial: str, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> bytes:
        """One file of a printer's storage (at most ``max_bytes``), over LAN FTPS.

        Raises StorageError (``NO_ADDRESS``, ``NOT_FOUND``, ``TOO_LARGE``, ...).
        """
        storage = await self._storage(serial)
        async with self._storage_lock(serial):
            return await storage.async_read_file(path, max_bytes=max_bytes)

    def _storage_lock(self, serial: str) -> asyncio.Lock:
        lock = self._storage_locks.get(serial)
        if lock is None:
            lock = self._storage_locks[serial] = asyncio.Lock()
        return lock

    async def _storage(self, serial: str) -> PrinterStorage:
        """The printer's storage, reached like its LAN MQTT session.

        Same address (fixed or learnt), same access code and the same pinned
        context, verified with the serial as hostname before the access code
        is sent.
        """
        link = self.printers.get(serial)
        spec = None if link is None else link.spec
        if spec is None or not spec.lan_host or not spec.access_code:
            raise StorageError(StorageErrorReason.NO_ADDRESS)
        try:
            context = await self._printer_context(spec.serial, spec.lan_host)
        except TrustError as err:
            raise StorageError(StorageErrorReason.TLS, err.kind) from err
        except OSError as err:
            raise StorageError(StorageErrorReason.CONNECTION) from err
        return PrinterStorage(
            host=lan_address(spec.lan_host),
            serial=spec.serial,
            access_code=spec.access_code,
            context=context,
            port=self.config.ports.ftps,
            timeout=self.config.timeouts.file_transfer,
        )

    # ----------------------------------------------------------- cloud side

    @property
    def cloud_connected(self) -> bool:
        """Whether the cloud session is up (never, for a LAN-only hub)."""
        return self.cloud is not None and self.cloud.connected

    def _cloud_connected(self) -> None:
        for link in self.printers.values():
            if not link.lan_connected:
                self._greet(link)

    def _cloud_status(self, status: SessionStatus, error: BaseException | None) -> None:
        if status is SessionStatus.AUTH_FAILED:
            # The owner confirms over HTTP: reauth on a 401 there, otherwise
            # retry_cloud. Logged once until the broker accepts us again.
            if not self._cloud_auth_logged:
                self._cloud_auth_logged = True
                _LOGGER.warning("The cloud MQTT broker refused the access token")
            self._problem(Problem(ProblemKind.CLOUD_AUTH, None, active=True))
        elif status is SessionStatus.TLS_FAILED and not self._cloud_tls_logged:
            self._cloud_tls_logged = True
            _LOGGER.warning("The cloud MQTT broker failed TLS verification: %s", error)
        elif status is SessionStatus.CONNECTED:
            self._cloud_tls_logged = False
            self._cloud_auth_logged = False
            _LOGGER.debug("Cloud MQTT connected")
        if status is SessionStatus.CONNECTED:
            if self._cloud_down_logged:
                self._cloud_down_logged = False
                _LOGGER.info("Connected to the cloud MQTT broker again")
            self._cloud_was_up = True
        elif self._cloud_was_up and not self._cloud_down_logged:
            # Once per outage, not per reconnect attempt.
            self._cloud_down_logged = True
            _LOGGER.info("Lost the connection to the cloud MQTT broker; reconnecting")
        self._refresh_availability()

    def _cloud_message(self, topic: str, payload: bytes) -> None:
        link = self._link_for(topic)
        if link is not None and not link.lan_connected:
            self._handle_report(link, payload)

    # ------------------------------------------------------------- LAN side

    async def _start_lan(self, link: PrinterLink) -> None:
        """Establish trust (probe if needed), then run the LAN session."""
        spec = link.spec
        if not spec.lan_host or not spec.access_code:
            link.lan_task = None
            return
        host, port = split_host_port(spec.lan_host, self.config.ports.mqtt)
        code = spec.access_code
        refresh, link.reprobe = link.reprobe, False
        try:
            if refresh:
                context = await self._printer_context(
                    spec.serial, spec.lan_host, refresh=True
                )
            else:
                context = await self._printer_context(spec.serial, spec.lan_host)
        except TrustError as err:
            link.lan_task = None
            self._tls_failed(link, err.kind)
            if err.kind == "unknown_ca":
                self._schedule_probe(link, refresh=True)
            return
        except OSError as err:
            _LOGGER.debug("%s: trust probe failed: %r", spec.serial, err)
            link.lan_task = None
            self._schedule_probe(link, refresh=refresh)
            return
        except Exception:
            _LOGGER.exception("%s: establishing trust failed", spec.serial)
            link.lan_task = None
            self._schedule_probe(link, refresh=refresh)
            return
        if self._stopped or self.printers.get(link.serial) is not link:
            # The hub stopped (or the printer left) while the probe ran.
            link.lan_task = None
            return
        session = MqttSession(
            SessionConfig(
                host=host,
                port=port,
                username=LAN_USER,
                password=code,
                ssl_context=context,
                server_hostname=spec.serial,
                connect_timeout=self.config.timeouts.mqtt_connect,
            ),
            loop=self._loop,
            on_message=lambda topic, payload: self._lan_message(link, topic, payload),
            on_status=lambda status, error: self._lan_status(link, status, error),
            on_connected=lambda: self._greet(link),
            retry=self.config.retry,
            name=f"lan {spec.serial}",
        )
        session.subscribe(link.report_topic)
        link.lan = session
        session.start()

    def _schedule_probe(self, link: PrinterLink, *, refresh: bool) -> None:
        """Start the LAN link again after the probe back-off."""
        if self._stopped or self.printers.get(link.serial) is not link:
            return
        if link.retry is not None:
            link.retry.cancel()
        link.reprobe = refresh
        link.retry = self._loop.call_later(
            link.probe_backoff.next(), self._retry_lan, link
        )

    def _retry_lan(self, link: PrinterLink) -> None:
        link.retry = None
        if self._stopped:
            return
        if self.printers.get(link.serial) is link and link.lan_task is None:
            spec = link.spec
            if spec.lan_host and spec.access_code:
                link.lan_task = self._loop.create_task(
                    self._start_lan(link), name=f"bambu lan {link.serial}"
                )

    async def _stop_lan(self, link: PrinterLink) -> None:
        if link.retry is not None:
            link.retry.cancel()
            link.retry = None
        task, link.lan_task = link.lan_task, None
        if task is not None and not task.done():
            task.cancel()
            await _settle(task, f"{link.serial}: the LAN start")
        session, link.lan = link.lan, None
        if session is not None:
            await session.stop()
        self._refresh_availability()

    async def _reprobe_after_unknown_ca(self, link: PrinterLink) -> None:
        """Stop the refused session, then look at the chain again later.

        A first probe answered by another device must not lock the printer
        out for ever; the back-off keeps the looks rare.
        """
        await self._stop_lan(link)
        self._schedule_probe(link, refresh=True)

    def _lan_status(
        self, link: PrinterLink, status: SessionStatus, error: BaseException | None
    ) -> None:
        if link.lan is None:
            return
        was_connected = link.lan_up
        link.lan_up = status is SessionStatus.CONNECTED
        if status is SessionStatus.CONNECTED:
            link.probe_backoff.reset()
            if link.tls_problem is not None:
                link.tls_problem = None
                self._problem(Problem(ProblemKind.TLS, link.serial, active=False))
            self._problem(Problem(ProblemKind.LAN_AUTH, link.serial, active=False))
        elif status is SessionStatus.AUTH_FAILED:
            _LOGGER.warning("%s: the printer refused the LAN access code", link.serial)
            self._problem(Problem(ProblemKind.LAN_AUTH, link.serial, active=True))
        elif status is SessionStatus.TLS_FAILED and isinstance(error, ssl.SSLError):
            kind = classify_tls_error(error)
            self._tls_failed(link, kind)
            if kind == "unknown_ca":
                self._background(self._reprobe_after_unknown_ca(link))
            else:
                self._background(self._stop_lan(link))
        self._refresh_availability()
        if was_connected and not link.lan_connected and self.cloud_connected:
            # The cloud takes over: its reports were ignored, so ask for a
            # full one (once per LAN outage; reconnects back off).
            self.request_full_report(link.serial, force=True)

    def _tls_failed(self, link: PrinterLink, kind: str) -> None:
        if link.tls_problem == kind:
            # Still the same refusal after a new look: already reported.
            _LOGGER.debug("%s: TLS certificate still refused (%s)", link.serial, kind)
            return
        _LOGGER.error(
            "%s: refusing the printer's TLS certificate (%s); not connecting over LAN",
            link.serial,
            kind,
        )
        link.tls_problem = kind
        self._problem(Problem(ProblemKind.TLS, link.serial, active=True, detail=kind))

    def _lan_message(self, link: PrinterLink, topic: str, payload: bytes) -> None:
        if topic == link.report_topic:
            self._handle_report(link, payload)

    # --------------------------------------------------------------- common

    def _greet(self, link: PrinterLink) -> None:
        """On connect: ask for versions and a full report."""
        self.publish(link.serial, commands.get_version(link.sequence.next()))
        self.request_full_report(link.serial, force=True)

    def _link_for(self, topic: str) -> PrinterLink | None:
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != "device" or parts[2] != "report":
            return None
        return self.printers.get(parts[1])

    def _handle_report(self, link: PrinterLink, payload: bytes) -> None:
        link.last_report = self._clock()
        result = link.state.merge(payload)
        if (ack := result.ack) is not None:
            future = self._pending.get((link.serial, ack.sequence_id))
            if future is not None and not future.done():
                future.set_result(ack)
        changed = result.changed
        if self._update_available(link):
            changed = changed | {AVAILABILITY}
        if changed:
            _notify(link, changed)

    def _update_available(self, link: PrinterLink) -> bool:
        """Recompute availability; True when it changed."""
        connected = link.lan_connected or self.cloud_connected
        available = (
            connected and link.state.has_full_report and link.state.online is not False
        )
        if available is link.available:
            return False
        link.available = available
        if not available:
            _LOGGER.info("%s is unavailable", link.serial)
        elif link.seen_available:
            _LOGGER.info("%s is available again", link.serial)
        link.seen_available = True
        return True

    def _refresh_availability(self) -> None:
        for link in list(self.printers.values()):
            if self._update_available(link):
                _notify(link, frozenset({AVAILABILITY}))

    async def _watch(self) -> None:
        """Ask a silent printer for a full report (rate limited per printer)."""
        while True:
            await asyncio.sleep(self.config.watchdog.interval)
            try:
                self._watch_once()
            except Exception:
                if self._watch_failed:
                    _LOGGER.debug("Watchdog round failed again", exc_info=True)
                else:
                    self._watch_failed = True
                    _LOGGER.exception("Watchdog round failed")

    def _watch_once(self) -> None:
        now = self._clock()
        silence = self.config.watchdog.silence
        for link in list(self.printers.values()):
            if link.available and now - link.last_report > silence:
                self.request_full_report(link.serial)

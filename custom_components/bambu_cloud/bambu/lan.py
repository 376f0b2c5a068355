"""Checking a printer on the local network before anything is stored.

Adding a printer without a cloud account must prove that the address, the
serial and the access code belong together before they are kept, and must
never hand the access code to a device that is not that printer. So the check
runs in the same order as every LAN connection of the hub: the chain the
printer presents is read (no credential sent), only pinned certificates are
kept as anchors, and the MQTT login ``bblp`` / access code runs over TLS
verified against those anchors with SNI and hostname = serial. It passes only
once the printer answered with a full report. Each failure is one reason a
user can act on (``LanCheckError.reason``).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from functools import partial
from typing import Literal

from . import commands, tls
from .config import BambuConfig
from .const import PrinterModel, lookup_model
from .errors import BambuError
from .hub import LAN_USER, split_host_port
from .mqtt import MqttSession, SessionConfig, SessionStatus
from .state import PrinterState

type LanCheckReason = Literal[
    "cannot_connect",
    "unknown_ca",
    "serial_mismatch",
    "expired",
    "tls_other",
    "access_code",
    "no_report",
]


class LanCheckError(BambuError):
    """The printer could not be verified; ``reason`` says why."""

    def __init__(self, reason: LanCheckReason) -> None:
        """Keep the reason (a translation key suffix for the caller)."""
        super().__init__(reason)
        self.reason: LanCheckReason = reason


@dataclass(frozen=True, slots=True)
class LanCheck:
    """What the verified printer said about itself."""

    model: PrinterModel
    product_name: str | None
    firmware_version: str | None


# Refused handshakes with a reason of their own; any other is "tls_other".
_TLS_REASONS: dict[str, LanCheckReason] = {
    "unknown_ca": "unknown_ca",
    "serial_mismatch": "serial_mismatch",
    "expired": "expired",
}


def _tls_reason(error: BaseException | None) -> LanCheckReason:
    """The reason of a refused handshake."""
    kind = tls.classify_tls_error(error) if isinstance(error, ssl.SSLError) else ""
    return _TLS_REASONS.get(kind, "tls_other")


async def check_printer(
    host: str,
    serial: str,
    access_code: str,
    *,
    config: BambuConfig,
    extra_pem: str | None = None,
) -> LanCheck:
    """Verify the printer at ``host`` (``host[:port]``) and its access code.

    ``config`` gives the pins, the printers' MQTT port and the time limits;
    ``extra_pem`` is a user CA bundle (each certificate pinned or signed by
    a pin). Raises LanCheckError; ``serial`` must be a valid serial.
    """
    loop = asyncio.get_running_loop()
    address, port = split_host_port(host, config.ports.mqtt)
    try:
        chain = await loop.run_in_executor(
            None,
            tls.probe_printer_chain,
            address,
            port,
            serial,
            config.timeouts.probe,
        )
    except ssl.SSLError as err:
        raise LanCheckError("tls_other") from err
    except OSError as err:
        raise LanCheckError("cannot_connect") from err
    anchors = tls.pinned_anchors(chain, pins=config.pins)
    if not anchors and not extra_pem:
        raise LanCheckError("unknown_ca")
    try:
        context = await loop.run_in_executor(
            None, partial(tls.printer_context, anchors, extra_pem, pins=config.pins)
        )
    except tls.TlsBundleError as err:
        raise LanCheckError("unknown_ca") from err
    return await _login(loop, address, port, serial, access_code, context, config)


async def _login(
    loop: asyncio.AbstractEventLoop,
    address: str,
    port: int,
    serial: str,
    access_code: str,
    context: ssl.SSLContext,
    config: BambuConfig,
) -> LanCheck:
    """Log in over the verified context and wait for a full report."""
    state = PrinterState()
    outcome: asyncio.Future[LanCheckReason | None] = loop.create_future()
    sequence = commands.SequenceCounter()
    report_topic = f"device/{serial}/report"
    request_topic = f"device/{serial}/request"

    def settle(reason: LanCheckReason | None) -> None:
        if not outcome.done():
            outcome.set_result(reason)

    def on_status(status: SessionStatus, error: BaseException | None) -> None:
        if status is SessionStatus.TLS_FAILED:
            settle(_tls_reason(error))
        elif status is SessionStatus.AUTH_FAILED:
            settle("access_code")
        elif status is SessionStatus.DISCONNECTED:
            # Refused, reset, timed out or dropped after the probe read the
            # chain: nothing more specific can be said about the address.
            settle("cannot_connect")

    def on_message(topic: str, payload: bytes) -> None:
        if topic == report_topic:
            state.merge(payload)
            if state.has_full_report:
                settle(None)

    def on_connected() -> None:
        for command in (
            commands.get_version(sequence.next()),
            commands.pushall(sequence.next()),
        ):
            session.publish(request_topic, commands.encode(command))

    session = MqttSession(
        SessionConfig(
            host=address,
            port=port,
            username=LAN_USER,
            password=access_code,
            ssl_context=context,
            server_hostname=serial,
            connect_timeout=config.timeouts.mqtt_connect,
        ),
        loop=loop,
        on_message=on_message,
        on_status=on_status,
        on_connected=on_connected,
        retry=config.retry,
        name=f"check {serial}",
    )
    session.subscribe(report_topic)
    session.start()
    try:
        async with asyncio.timeout(
            config.timeouts.mqtt_connect + config.timeouts.command_ack
        ):
            reason = await outcome
    except TimeoutError:
        reason = "no_report" if session.connected else "cannot_connect"
    finally:
        await session.stop()
    if reason is not None:
        raise LanCheckError(reason)
    return LanCheck(
        model=lookup_model(product_name=state.product_name, serial=serial),
        product_name=state.product_name,
        firmware_version=state.firmware_version,
    )

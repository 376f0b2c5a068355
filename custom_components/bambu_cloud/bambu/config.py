"""How the library is set up: endpoints, pins, ports, timeouts and back-off.

Every class that talks to Bambu Lab's services or printers takes this one
frozen value when it is built (``BambuCloud``, ``BambuHub``), and the hub hands
its parts to the sessions, so a caller chooses where the library connects and
how patiently it does so. Nothing reads a module global at call time: a test
or a demo builds its own configuration instead of patching constants.

Every default is the value for Bambu Lab's real services and printers; only
the endpoints have none (they depend on the account's region, see
``const.REGIONS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .const import RegionEndpoints
from .mqtt import CONNECT_TIMEOUT, RetryPolicy
from .tls import BBL_CA_SHA256

# The printer's MQTT port; a LAN host option "ip:port" overrides it.
LAN_PORT: Final = 8883
# Reconnects of an MQTT session; new looks at an untrusted printer's chain.
MQTT_RETRY: Final = RetryPolicy()
PROBE_RETRY: Final = RetryPolicy(minimum=60.0, maximum=3600.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """The ports printers serve on the LAN."""

    mqtt: int = LAN_PORT
    # RTSPS live view (X1, P2S, H2, X2D).
    rtsps: int = 322
    # The JPEG frame stream (P1, A1).
    jpeg: int = 6000
    # The printers' NOTIFY datagrams (PROTOCOL.md section 6): broadcast to
    # 255.255.255.255 (where Bambu Studio listens) and multicast to
    # 239.255.255.250; listened to, never sent to.
    discovery_broadcast: int = 2021
    discovery_multicast: int = 1990
    # The printer's storage: FTPS with implicit TLS.
    ftps: int = 990


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """How long to wait for an answer (seconds)."""

    # A printer's acknowledgement of a command.
    command_ack: float = 10.0
    # An MQTT connection: DNS, TCP, TLS handshake and CONNACK.
    mqtt_connect: float = CONNECT_TIMEOUT
    # The handshake that reads the chain a printer presents.
    probe: float = 10.0
    # One request to the cloud API.
    request: float = 30.0
    # One file operation on the printer's storage (connect, list or read).
    file_transfer: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Watchdog:
    """When the hub asks a silent printer for a full report (seconds).

    Printers send deltas only; one missed message leaves a value stale until
    the next full report, so a printer quiet for ``silence`` is asked for one,
    but at most once per ``pushall_spacing`` (Bambu asks clients not to
    flood printers with pushall).
    """

    interval: float = 10.0
    silence: float = 60.0
    pushall_spacing: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BambuConfig:
    """Everything the library needs to know before it connects anywhere."""

    endpoints: RegionEndpoints
    # SHA-256 fingerprints of the CA certificates printers may chain to.
    pins: frozenset[str] = BBL_CA_SHA256
    ports: Ports = Ports()
    timeouts: Timeouts = Timeouts()
    # Reconnects of every MQTT session.
    retry: RetryPolicy = MQTT_RETRY
    # A new look at a printer's chain after a failed probe or an unknown CA.
    probe_retry: RetryPolicy = PROBE_RETRY
    watchdog: Watchdog = Watchdog()
    # The local IPv4 address the discovery listener binds to and joins the
    # multicast group on: every interface (broadcasts reach only a socket
    # bound to all of them). Tests use 127.0.0.1 so nothing leaves the host.
    discovery_interface: str = "0.0.0.0"  # noqa: S104

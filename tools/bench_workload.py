"""Benchmark workload: a TLS broker, N virtual printers and a paced driver.

The workload is the same with and without Home Assistant consuming it, so the
publishing side (the virtual printers' JSON and MQTT clients, the broker's
front door; mosquitto itself runs in its own process) can be measured on its
own and subtracted from the full run.

Every report changes exactly ``k`` values, each shown by its own enabled
sensor on both printer families, so the integration must write exactly ``k``
states per report. The first changed value (the nozzle temperature) encodes
the report's sequence number, which lets the consumer match each state write
to the moment its report was published.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cloud_server import TOKEN, UID, MqttEndpoint, bind_entry
from tools.test_pki import TestPKI
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

# (report field, the one entity showing it); the order is the order of ``k``.
# Target temperatures are left out on purpose: a sensor and a number entity
# both show them, so one changed target rightly costs two state writes.
CHANGING_FIELDS: tuple[tuple[str, str], ...] = (
    ("nozzle_temper", "nozzle_temperature"),
    ("bed_temper", "bed_temperature"),
    ("mc_percent", "progress"),
    ("layer_num", "current_layer"),
    ("total_layer_num", "total_layers"),
    ("mc_remaining_time", "remaining_time"),
)
MAX_K = len(CHANGING_FIELDS)
PRIMARY_SENSOR = CHANGING_FIELDS[0][1]
# Nozzle temperatures cycle through this many distinct values: a report is
# identified by (serial, temperature) while it is in flight.
TEMPERATURE_BASE = 100
TEMPERATURE_SPAN = 200
MODELS = ("X1C", "P1S")  # full reports, deltas
_SERIAL_PREFIX = {"X1C": "00M09A35", "P1S": "01P00A45"}
_BIND = {"X1C": ("X1 Carbon", "BL-P001"), "P1S": ("P1S", "C12")}


def report_fields(k: int, seq: int) -> dict[str, Any]:
    """The ``k`` values of report ``seq`` of one printer.

    Each value differs from every value the same field had in the printer's
    previous 100 reports (``mc_percent`` is capped at 100 by the integration,
    the others never repeat within 10 000 reports), so the changed values are
    exactly ``k`` even when ``k`` grows between windows.
    """
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be 1..{MAX_K}")
    values: dict[str, Any] = {
        "nozzle_temper": float(report_key(seq)),
        "bed_temper": 20 + seq % 10_000 / 10,
        "mc_percent": seq % 101,
        "layer_num": seq % 10_000,
        "total_layer_num": 10_000 + seq % 10_000,
        "mc_remaining_time": 1 + seq % 10_000,
    }
    return {name: values[name] for name, _ in CHANGING_FIELDS[:k]}


def report_key(seq: int) -> int:
    """What the primary sensor's state says about the report's sequence."""
    return TEMPERATURE_BASE + seq % TEMPERATURE_SPAN


@dataclass(slots=True)
class BenchPrinter:
    """One virtual printer of the fleet and its report counter."""

    printer: VirtualPrinter
    model: str
    seq: int = 0

    @property
    def serial(self) -> str:
        """The printer's serial number."""
        return self.printer.serial


@dataclass(slots=True)
class Fleet:
    """The cloud broker, its CA and N virtual printers (X1C and P1S mixed)."""

    broker: MqttBroker
    ca_pem: str
    printers: list[BenchPrinter]

    @property
    def endpoint(self) -> MqttEndpoint:
        """Where the integration finds the broker."""
        return MqttEndpoint(port=self.broker.port, ca_pem=self.ca_pem)

    def bind_list(self) -> list[dict[str, Any]]:
        """The cloud's bind entries for the fleet."""
        entries = []
        for index, member in enumerate(self.printers):
            product, model_id = _BIND[member.model]
            entries.append(
                bind_entry(
                    member.serial,
                    f"Bench {member.model} {index:03d}",
                    product,
                    model_id,
                )
            )
        return entries


@contextlib.asynccontextmanager
async def running_fleet(workdir: Path, count: int) -> AsyncIterator[Fleet]:
    """Start a TLS broker on 127.0.0.1 and ``count`` attached printers."""
    pki = TestPKI(workdir / "pki")
    ca = pki.root("Bench Cloud CA", key_usage=True)
    leaf = pki.server(ca, "mqtt.cloud.test", san=["127.0.0.1"])
    broker = MqttBroker(leaf, users={f"u_{UID}": TOKEN}, log_size=16)
    members = []
    try:
        await broker.start()
        for index in range(count):
            model = MODELS[index % len(MODELS)]
            serial = f"{_SERIAL_PREFIX[model]}{index:07d}"
            printer = VirtualPrinter(broker, serial, model, log_size=16)
            members.append(BenchPrinter(printer, model))
            await printer.start()
        yield Fleet(broker, ca.pem, members)
    finally:
        for member in members:
            await member.printer.stop()
        await broker.stop()


# ------------------------------------------------------------------ driving


type PublishHook = Callable[[BenchPrinter, int, int], None]
"""``(printer, seq, perf_counter_ns before publishing)``."""


@dataclass(slots=True)
class DriveResult:
    """What the driver published."""

    published: int = 0
    deliveries: int = 0
    started: float = 0.0
    finished: float = 0.0
    late_ms_max: float = 0.0

    @property
    def duration(self) -> float:
        """Seconds from the first to the last scheduled report plus one period."""
        return self.finished - self.started


async def drive(
    fleet: Fleet,
    *,
    duration: float,
    rate: float,
    k: int,
    on_publish: PublishHook | None = None,
) -> DriveResult:
    """Each printer reports ``rate`` times per second for ``duration`` seconds.

    Printers are evenly staggered over the period, like unsynchronised real
    printers, and the schedule is absolute so that a slow loop does not
    lower the rate (lateness is recorded instead).
    """
    loop = asyncio.get_running_loop()
    count = len(fleet.printers)
    result = DriveResult()
    if count == 0 or duration <= 0:
        return result
    period = 1.0 / rate
    rounds = max(1, round(duration * rate))
    start = loop.time() + 0.01
    schedule = sorted(
        (start + r * period + i * period / count, i)
        for r in range(rounds)
        for i in range(count)
    )
    result.started = time.perf_counter()
    for due, index in schedule:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.late_ms_max = max(result.late_ms_max, -delay * 1000)
        member = fleet.printers[index]
        member.seq += 1
        fields = report_fields(k, member.seq)
        stamp = time.perf_counter_ns()
        if on_publish is not None:
            on_publish(member, member.seq, stamp)
        result.deliveries += member.printer.update(fields)
        result.published += 1
    # The last round's slot ends one period after it started.
    await asyncio.sleep(max(0.0, start + rounds * period - loop.time()))
    result.finished = time.perf_counter()
    return result


# --------------------------------------------------------------------- sink


def _mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _mqtt_packet(first: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([first]) + bytes(encoded) + body


class Sink:
    """A minimal MQTT subscriber that only drains bytes (no parsing).

    Stands in for the integration in the publish-only run: the broker routes
    and encrypts exactly as much, while the consumer costs almost nothing.
    """

    def __init__(self, fleet: Fleet) -> None:
        """Subscribe to the same per-printer topics as the integration."""
        self._fleet = fleet
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.received_bytes = 0

    async def start(self) -> None:
        """Connect, subscribe and drain in the background."""
        context = ssl.create_default_context(cadata=self._fleet.ca_pem)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self._fleet.broker.port, ssl=context
        )
        self._writer = writer
        connect = (
            _mqtt_string("MQTT")
            + bytes([4, 0xC2])  # level 4; username, password, clean session
            + struct.pack("!H", 0)
            + _mqtt_string("bench-sink")
            + _mqtt_string(f"u_{UID}")
            + _mqtt_string(TOKEN)
        )
        writer.write(_mqtt_packet(0x10, connect))
        connack = await reader.readexactly(4)
        if connack[3] != 0:
            raise RuntimeError(f"sink refused: CONNACK {connack[3]}")
        filters = b"".join(
            _mqtt_string(f"device/{m.serial}/report") + b"\x00"
            for m in self._fleet.printers
        )
        writer.write(_mqtt_packet(0x82, struct.pack("!H", 1) + filters))
        await self._fleet.broker.wait_for_client("bench-sink")
        self._task = asyncio.create_task(self._drain(reader))

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(1 << 16):
            self.received_bytes += len(chunk)

    async def stop(self) -> None:
        """Disconnect and end the drain task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.write(bytes([0xE0, 0]))
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


# -------------------------------------------------------------- measuring


@dataclass(slots=True)
class CpuWindow:
    """Process CPU time, wall time and RSS over a measured window."""

    cpu_start: float = field(default_factory=time.process_time)
    wall_start: float = field(default_factory=time.perf_counter)
    cpu: float = 0.0
    wall: float = 0.0

    def stop(self) -> None:
        """Close the window."""
        self.cpu = time.process_time() - self.cpu_start
        self.wall = time.perf_counter() - self.wall_start


class GcMeter:
    """Time spent in the garbage collector, by generation (all threads).

    Why: the collector runs in whatever code allocates when a threshold is
    crossed, and a full collection walks every object of the process (Home
    Assistant's too), so its cost is part of the CPU per report but shows in
    no profile entry of its own.
    """

    def __init__(self) -> None:
        """Not counting until :meth:`start`."""
        self.ns = [0, 0, 0]
        self.runs = [0, 0, 0]
        self._started = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            generation = info["generation"]
            self.ns[generation] += time.perf_counter_ns() - self._started
            self.runs[generation] += 1

    def start(self) -> None:
        """Count from now on."""
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        """Stop counting."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def summary(self, reports: int) -> dict[str, Any]:
        """Collections per generation and GC wall time per report."""
        return {
            "collections": list(self.runs),
            "us_per_report": sum(self.ns) / reports / 1000 if reports else None,
            "gen2_us_per_report": self.ns[2] / reports / 1000 if reports else None,
        }


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def latency_summary(samples_ns: list[int]) -> dict[str, float | int | None]:
    """p50, p90, p99 and max in milliseconds."""
    values = sorted(ns / 1e6 for ns in samples_ns)
    return {
        "samples": len(values),
        "p50_ms": percentile(values, 0.50),
        "p90_ms": percentile(values, 0.90),
        "p99_ms": percentile(values, 0.99),
        "max_ms": values[-1] if values else None,
    }


def current_rss_kib() -> int:
    """Resident set size now (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    import resource  # noqa: PLC0415 - POSIX only

    return pages * resource.getpagesize() // 1024


def peak_rss_kib() -> int:
    """Peak resident set size of this process (ru_maxrss, KiB on Linux)."""
    import resource  # noqa: PLC0415 - POSIX only

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


async def run_publish_only(
    workdir: Path,
    *,
    printers: int,
    duration: float,
    rate: float = 1.0,
    k: int = 1,
    warmup: float = 1.0,
) -> dict[str, Any]:
    """The workload with a do-nothing subscriber: the publishing side's cost."""
    async with running_fleet(workdir, printers) as fleet:
        sink = Sink(fleet)
        await sink.start()
        try:
            if warmup > 0:
                await drive(fleet, duration=warmup, rate=rate, k=k)
            window = CpuWindow()
            collector = GcMeter()
            collector.start()
            driven = await drive(fleet, duration=duration, rate=rate, k=k)
            window.stop()
            collector.stop()
        finally:
            await sink.stop()
    published = max(driven.published, 1)
    return {
        "printers": printers,
        "k": k,
        "published": driven.published,
        "deliveries": driven.deliveries,
        "sink_bytes": sink.received_bytes,
        "cpu_s": window.cpu,
        "wall_s": window.wall,
        "cpu_us_per_report": window.cpu / published * 1e6,
        "late_ms_max": driven.late_ms_max,
        "gc": collector.summary(published),
    }

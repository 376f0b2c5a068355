"""Measure the integration inside a real Home Assistant core instance.

The fake cloud (``tests.cloud_server``) lists the fleet's printers, the
integration connects to the local TLS broker (mosquitto) exactly as it
connects to the real cloud broker, and every figure is taken in this process
(mosquitto's own CPU is not counted: it runs in its own process):

* reports received: calls of the hub's report handler;
* state writes: ``state_changed`` events of the config entry's entities,
  and ``state_reported`` events (a write of an unchanged state: it floods
  nothing, but costs almost as much CPU as a change);
* latency: ``perf_counter_ns`` when the printer publishes, to the
  ``state_changed`` event of its nozzle temperature sensor;
* CPU: process CPU over the window, plus the loop thread's CPU inside the
  integration's MQTT read callback (paho, merge, entities, state machine)
  and inside the hub's report handler (merge, entities, state machine).

Only instrumentation wraps integration code; nothing is changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import io
import pstats
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
    flush_store,
)

from custom_components.bambu_cloud.bambu.hub import BambuHub, PrinterLink
from custom_components.bambu_cloud.bambu.mqtt import MqttSession
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_REGION,
    DOMAIN,
)
from tests.cloud_server import TOKEN, UID, FakeCloud, running_cloud

from .bench_workload import (
    CHANGING_FIELDS,
    PRIMARY_SENSOR,
    BenchPrinter,
    CpuWindow,
    Fleet,
    GcMeter,
    current_rss_kib,
    drive,
    latency_summary,
    peak_rss_kib,
    report_key,
    running_fleet,
)

SETUP_TIMEOUT = 120.0
DRAIN_TIMEOUT = 10.0


@dataclass(slots=True)
class Counters:
    """What the instrumentation saw; reset per window."""

    received: int = 0
    writes: int = 0
    reported: int = 0
    other_writes: int = 0
    handle_ns: dict[str, int] = field(default_factory=dict)
    handled: dict[str, int] = field(default_factory=dict)
    latency_ns: dict[str, list[int]] = field(default_factory=dict)
    unmatched: int = 0


class ReadMeter:
    """Loop-thread CPU spent in the integration's MQTT read callbacks."""

    def __init__(self) -> None:
        """Start at zero."""
        self.cpu_ns = 0
        self.calls = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap ``MqttSession._read`` (must wrap before sessions connect)."""
        original = MqttSession._read  # noqa: SLF001 - instrumentation only

        def timed(session: MqttSession, client: Any) -> None:
            start = time.thread_time_ns()
            try:
                original(session, client)
            finally:
                self.cpu_ns += time.thread_time_ns() - start
                self.calls += 1

        MqttSession._read = timed  # type: ignore[method-assign,assignment] # noqa: SLF001
        try:
            yield
        finally:
            MqttSession._read = original  # type: ignore[method-assign] # noqa: SLF001


def _instrument_hub(hub: BambuHub, session: _Session) -> None:
    """Count and time every report the hub handles, per printer model."""
    original = hub._handle_report  # noqa: SLF001 - instrumentation only

    def counted(link: PrinterLink, payload: bytes) -> None:
        # Wall clock: reading the thread CPU clock on every report measurably
        # inflated the CPU share this benchmark is about.
        start = time.perf_counter_ns()
        original(link, payload)
        elapsed = time.perf_counter_ns() - start
        model = session.models.get(link.serial, "other")
        counters = session.counters
        counters.received += 1
        counters.handle_ns[model] = counters.handle_ns.get(model, 0) + elapsed
        counters.handled[model] = counters.handled.get(model, 0) + 1

    hub._handle_report = counted  # type: ignore[method-assign] # noqa: SLF001


def _per_report_us(total_ns: int, count: int) -> float | None:
    return None if count == 0 else total_ns / count / 1000


async def _wait(condition: Callable[[], bool], within: float) -> bool:
    """Poll until condition holds; False on timeout."""
    deadline = time.perf_counter() + within
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


@dataclass(slots=True)
class _Session:
    """The state of one measured integration run."""

    hass: HomeAssistant
    fleet: Fleet
    models: dict[str, str]
    counters: Counters = field(default_factory=Counters)
    tracked: frozenset[str] = frozenset()
    primaries: dict[str, str] = field(default_factory=dict)
    pending: dict[tuple[str, int], int] = field(default_factory=dict)

    @callback
    def on_state_changed(self, event: Event[EventStateChangedData]) -> None:
        now = time.perf_counter_ns()
        entity_id = event.data["entity_id"]
        counters = self.counters
        if entity_id not in self.tracked:
            counters.other_writes += 1
            return
        counters.writes += 1
        serial = self.primaries.get(entity_id)
        new_state = event.data["new_state"]
        if serial is None or new_state is None:
            return
        try:
            key = round(float(new_state.state))
        except ValueError:
            return
        stamp = self.pending.pop((serial, key), None)
        if stamp is None:
            counters.unmatched += 1
            return
        model = self.models[serial]
        counters.latency_ns.setdefault(model, []).append(now - stamp)

    @callback
    def is_tracked(self, event_data: Any) -> bool:
        """Event filter: the entry's entities only (required for reports)."""
        return event_data["entity_id"] in self.tracked

    @callback
    def on_state_reported(self, event: Event[Any]) -> None:
        self.counters.reported += 1

    def on_publish(self, member: BenchPrinter, seq: int, stamp: int) -> None:
        self.pending[(member.serial, report_key(seq))] = stamp

    def refresh_tracked(self, entry_id: str) -> int:
        """The entry's entities (AMS ones appear after the first report)."""
        registry = er.async_get(self.hass)
        entries = er.async_entries_for_config_entry(registry, entry_id)
        self.tracked = frozenset(e.entity_id for e in entries)
        return sum(1 for e in entries if self.hass.states.get(e.entity_id))

    async def window(
        self, *, k: int, duration: float, rate: float, meter: ReadMeter
    ) -> dict[str, Any]:
        """Drive one window and collect its figures."""
        self.counters = counters = Counters()
        self.pending.clear()
        read_ns, read_calls = meter.cpu_ns, meter.calls
        window = CpuWindow()
        collector = GcMeter()
        collector.start()
        driven = await drive(
            self.fleet, duration=duration, rate=rate, k=k, on_publish=self.on_publish
        )
        drained = await _wait(
            lambda: counters.received >= driven.published, DRAIN_TIMEOUT
        )
        window.stop()
        collector.stop()
        received = counters.received
        read_cpu = meter.cpu_ns - read_ns
        handle_total = sum(counters.handle_ns.values())
        samples = [s for values in counters.latency_ns.values() for s in values]
        return {
            "k": k,
            "changed_values": [name for name, _ in CHANGING_FIELDS[:k]],
            "published": driven.published,
            "received": received,
            "drained": drained,
            "publish_seconds": driven.duration,
            "reports_per_s": received / driven.duration if driven.duration else None,
            "writes": counters.writes,
            "writes_per_report": counters.writes / received if received else None,
            "reported_writes": counters.reported,
            "reported_writes_per_report": (
                counters.reported / received if received else None
            ),
            "other_state_writes": counters.other_writes,
            "latency": latency_summary(samples),
            "latency_by_model": {
                model: latency_summary(values)
                for model, values in sorted(counters.latency_ns.items())
            },
            "unmatched_primary_writes": counters.unmatched,
            "cpu_s": window.cpu,
            "wall_s": window.wall,
            "cpu_us_per_report": window.cpu / received * 1e6 if received else None,
            "read_callback_us_per_report": _per_report_us(read_cpu, received),
            "read_callbacks": meter.calls - read_calls,
            "handle_us_per_report": _per_report_us(handle_total, received),
            "handle_us_per_report_by_model": {
                model: _per_report_us(ns, counters.handled[model])
                for model, ns in sorted(counters.handle_ns.items())
            },
            "late_ms_max": driven.late_ms_max,
            "gc": collector.summary(received),
        }


async def run_integration(
    hass: HomeAssistant,
    workdir: Path,
    *,
    printers: int,
    duration: float,
    rate: float = 1.0,
    ks: tuple[int, ...] = (1,),
    k_duration: float | None = None,
    warmup: float = 2.0,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Set the integration up for ``printers`` printers and measure windows.

    ``hass`` must allow custom integrations (``custom_components`` loaded
    from this working tree). The first window runs ``duration`` seconds,
    further ones (one per extra ``k``) ``k_duration`` seconds.
    """
    rss_start = current_rss_kib()
    meter = ReadMeter()
    result: dict[str, Any] = {"printers": printers, "rate": rate}
    async with running_fleet(workdir, printers) as fleet:
        session = _Session(hass, fleet, {m.serial: m.model for m in fleet.printers})
        cloud = FakeCloud(devices=fleet.bind_list())
        async with running_cloud(cloud, mqtt=fleet.endpoint):
            entry = MockConfigEntry(
                domain=DOMAIN,
                title="Bench",
                unique_id=UID,
                data={CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN},
            )
            entry.add_to_hass(hass)
            with meter.installed():
                try:
                    result |= await _setup(hass, entry.entry_id, session)
                    result["rss_after_setup_kib"] = current_rss_kib()
                    hub: BambuHub = entry.runtime_data.hub
                    _instrument_hub(hub, session)
                    windows = await _measure(
                        session,
                        hub,
                        entry.entry_id,
                        ks=ks,
                        duration=duration,
                        k_duration=k_duration or duration,
                        rate=rate,
                        warmup=warmup,
                        meter=meter,
                        profile=profile,
                    )
                    result["windows"] = windows
                    result["entities"] = session.refresh_tracked(entry.entry_id)
                    result["rss_end_kib"] = current_rss_kib()
                finally:
                    await hass.config_entries.async_unload(entry.entry_id)
    result["rss_start_kib"] = rss_start
    result["peak_rss_kib"] = peak_rss_kib()
    return result


async def _setup(
    hass: HomeAssistant, entry_id: str, session: _Session
) -> dict[str, Any]:
    """Set the entry up; time until every printer's sensor is available."""
    started = time.perf_counter()
    loaded = await hass.config_entries.async_setup(entry_id)
    setup_s = time.perf_counter() - started
    if not loaded:
        raise RuntimeError("the config entry did not set up")
    registry = er.async_get(hass)
    for member in session.fleet.printers:
        unique_id = f"{member.serial}_{PRIMARY_SENSOR}"
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, unique_id)
        if entity_id is None:
            raise RuntimeError(f"no {PRIMARY_SENSOR} sensor for {member.serial}")
        session.primaries[entity_id] = member.serial

    def all_available() -> bool:
        for entity_id in session.primaries:
            state = hass.states.get(entity_id)
            if state is None or state.state == STATE_UNAVAILABLE:
                return False
        return True

    if not await _wait(all_available, SETUP_TIMEOUT):
        raise RuntimeError("printers did not become available")
    return {
        "setup_s": setup_s,
        "available_s": time.perf_counter() - started,
    }


async def _measure(
    session: _Session,
    hub: BambuHub,
    entry_id: str,
    *,
    ks: tuple[int, ...],
    duration: float,
    k_duration: float,
    rate: float,
    warmup: float,
    meter: ReadMeter,
    profile: Path | None,
) -> list[dict[str, Any]]:
    hass = session.hass
    unlisten = hass.bus.async_listen(EVENT_STATE_CHANGED, session.on_state_changed)
    unlisten_reported = hass.bus.async_listen(
        EVENT_STATE_REPORTED, session.on_state_reported, event_filter=session.is_tracked
    )
    try:
        if warmup > 0 and ks:
            await drive(session.fleet, duration=warmup, rate=rate, k=max(ks))
            await _wait(
                lambda: all(
                    link.state.has_full_report for link in hub.printers.values()
                ),
                DRAIN_TIMEOUT,
            )
        await asyncio.sleep(0.2)
        await _write_pending_registries(hass)
        session.refresh_tracked(entry_id)
        windows = []
        for index, k in enumerate(ks):
            gc.collect()
            profiler = cProfile.Profile() if profile and index == 0 else None
            if profiler is not None:
                profiler.enable()
            window = await session.window(
                k=k,
                duration=duration if index == 0 else k_duration,
                rate=rate,
                meter=meter,
            )
            if profiler is not None:
                profiler.disable()
                window["profile"] = _write_profile(profiler, profile, session)
            windows.append(window)
    finally:
        unlisten()
        unlisten_reported()
    return windows


async def _write_pending_registries(hass: HomeAssistant) -> None:
    """Write now what setup left for the registries' delayed saves.

    Creating thousands of entities schedules one save of the entity and
    device registries ten seconds later (about 30 ms of CPU at 50 printers).
    Left alone it lands in the first window and is counted as the cost of
    reports: about 40 us per report at 50 printers, a millisecond at one.
    """
    for registry in (er.async_get(hass), dr.async_get(hass)):
        await flush_store(registry._store)  # noqa: SLF001 - test helper's way


def _write_profile(
    profiler: cProfile.Profile, directory: Path | None, session: _Session
) -> str:
    """Dump the window's profile (.prof and a text top list); return the path."""
    assert directory is not None  # noqa: S101 - only called with a directory
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"profile_n{len(session.fleet.printers)}"
    profiler.dump_stats(stem.with_suffix(".prof"))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(60)
    stem.with_suffix(".txt").write_text(text.getvalue())
    return str(stem.with_suffix(".txt"))

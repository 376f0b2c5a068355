"""Smoke test of the benchmark machinery (tools/bench*.py), short enough for CI."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from homeassistant.const import EVENT_STATE_REPORTED
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from tools.bench import Plan, render, summarise, targets
from tools.bench_ha import _Session, _write_pending_registries, run_integration
from tools.bench_workload import GcMeter, report_fields, run_publish_only


@pytest.mark.parametrize("printers", [1, 3])
async def test_integration_run_measures(
    hass: HomeAssistant, socket_enabled: None, tmp_path: Path, printers: int
) -> None:
    """Writes per report equal the changed values; latency and CPU are measured."""
    result = await run_integration(
        hass,
        tmp_path,
        printers=printers,
        duration=2.0,
        rate=2.0,
        ks=(1, 2),
        k_duration=1.0,
        warmup=0.5,
    )
    single, double = result["windows"]
    assert single["published"] == single["received"] == printers * 4
    assert single["writes_per_report"] == 1.0
    assert double["writes_per_report"] == 2.0
    # No entity rewrites an unchanged state (state_reported costs CPU too).
    assert single["reported_writes"] == double["reported_writes"] == 0
    assert single["unmatched_primary_writes"] == 0
    latency = single["latency"]
    assert latency["samples"] == printers * 4
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert set(single["latency_by_model"]) == {"X1C", "P1S"} or printers == 1
    assert single["read_callback_us_per_report"] > 0
    assert single["handle_us_per_report"] > 0
    assert set(single["gc"]) == {"collections", "us_per_report", "gen2_us_per_report"}
    assert result["available_s"] >= result["setup_s"] > 0
    assert result["peak_rss_kib"] > 0


async def test_unchanged_writes_are_counted(hass: HomeAssistant) -> None:
    """A write of an unchanged state is a state_reported, counted apart."""
    session = _Session(hass, fleet=None, models={})  # type: ignore[arg-type]
    session.tracked = frozenset({"sensor.tracked"})
    unlisten = hass.bus.async_listen(
        EVENT_STATE_REPORTED, session.on_state_reported, event_filter=session.is_tracked
    )
    for entity_id in ("sensor.tracked", "sensor.other"):
        for _ in range(3):
            hass.states.async_set(entity_id, "20")
    await hass.async_block_till_done()
    unlisten()
    assert session.counters.reported == 2


async def test_setup_registry_writes_are_done_before_measuring(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """What setup left for the registries' delayed saves is written at once.

    Otherwise one save of every entity lands in the first window and counts
    as the cost of reports.
    """
    registry = er.async_get(hass)
    registry.async_get_or_create("sensor", "bench", "unique", suggested_object_id="x")
    await hass.async_block_till_done()
    assert "core.entity_registry" not in hass_storage  # due in ten seconds
    await _write_pending_registries(hass)
    entities = hass_storage["core.entity_registry"]["data"]["entities"]
    assert [entity["entity_id"] for entity in entities] == ["sensor.x"]


async def test_publish_only_run(socket_enabled: None, tmp_path: Path) -> None:
    """The publishing side alone: every report is delivered to the sink."""
    result = await run_publish_only(
        tmp_path, printers=3, duration=1.0, rate=2.0, warmup=0.0
    )
    assert result["published"] == result["deliveries"] == 6
    assert result["sink_bytes"] > 0
    assert result["cpu_us_per_report"] > 0


def test_gc_meter_counts_collections_while_started() -> None:
    """Collections are timed per generation between start and stop only."""
    meter = GcMeter()
    gc.collect()
    meter.start()
    gc.collect()
    gc.collect(0)
    meter.stop()
    gc.collect()
    assert meter.runs[2] == 1
    assert meter.runs[0] >= 1
    summary = meter.summary(reports=2)
    assert summary["collections"] == meter.runs
    assert summary["us_per_report"] >= summary["gen2_us_per_report"] > 0
    assert meter.summary(reports=0)["us_per_report"] is None


def test_report_fields_change_exactly_k_values() -> None:
    """Consecutive reports differ in every one of their k fields."""
    for k in range(1, 7):
        for seq in range(1, 300):
            before, after = report_fields(k, seq), report_fields(k, seq + 1)
            assert len(after) == k
            assert all(before[name] != after[name] for name in after)
    with pytest.raises(ValueError, match="k must be"):
        report_fields(7, 1)


def test_summary_and_targets() -> None:
    """Rows, targets and the rendered tables from canned raw results."""
    window = {
        "k": 1,
        "published": 200,
        "received": 200,
        "reports_per_s": 100.0,
        "writes_per_report": 1.0,
        "reported_writes_per_report": 0.0,
        "latency": {"p50_ms": 1.0, "p99_ms": 3.0, "max_ms": 4.0, "samples": 200},
        "cpu_us_per_report": 900.0,
        "read_callback_us_per_report": 300.0,
        "handle_us_per_report": 250.0,
        "handle_us_per_report_by_model": {"X1C": 300.0, "P1S": 200.0},
    }
    run = {
        "printers": 100,
        "windows": [window, {**window, "k": 2, "writes_per_report": 2.5}],
        "peak_rss_kib": 300_000,
        "rss_end_kib": 290_000,
        "setup_s": 1.0,
        "available_s": 2.0,
        "entities": 5000,
    }
    raw = {
        "idle": {"peak_rss_kib": 200_000, "rss_end_kib": 190_000, "setup_s": 0.2},
        "runs": [run],
        "publish_only": [{"printers": 100, "cpu_us_per_report": 500.0}],
    }
    plan = Plan(
        printers=(100,),
        duration=2.0,
        rate=1.0,
        ks=(1, 2),
        k_sweep_at=100,
        k_duration=1.0,
        warmup=0.0,
        baseline=True,
        profile=None,
        output=Path("unused.json"),
        quick=True,
    )
    summary = summarise(plan, raw)
    row = summary["rows"][0]
    assert row["cpu_integration_us_per_report"] == 400.0
    assert row["integration_core_percent"] == 4.0
    assert row["rss_per_printer_kib"] == 1000.0
    assert row["reported_per_report"] == 0.0
    statuses = [t["status"] for t in targets(plan, raw, summary["rows"])]
    assert statuses == ["FAIL", "PASS", "PASS"]
    text = render(summary)
    assert "k sweep" in text
    assert "unchanged/rep" in text
    assert "[FAIL] state writes per report" in text
    # Exact changed writes but one unchanged write per report also fails.
    run["windows"] = [{**window, "reported_writes_per_report": 1.0}]
    statuses = [t["status"] for t in targets(plan, raw, summarise(plan, raw)["rows"])]
    assert statuses[0] == "FAIL"

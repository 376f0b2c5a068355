"""Benchmark the integration in a real Home Assistant against N virtual printers.

Run ``scripts/bench`` (``--help`` for options). For every fleet size it runs,
each in a fresh process so that memory and CPU figures do not bleed:

* the integration in Home Assistant core (``tools.bench_ha``): setup time,
  reports/s, state writes per report, report-to-state latency, CPU, RSS;
* the same publishing workload with a do-nothing subscriber
  (``tools.bench_workload.run_publish_only``): the CPU of the virtual
  printers and the broker's front door in this process (mosquitto itself
  runs in its own), subtracted to get the integration's share;
* once, an account without printers: the memory baseline.

Figures are printed as tables and written to ``bench/results.json``
(``--quick`` runs go to ``bench/results.local.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiohttp import ThreadedResolver

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
QUICK_RESULTS = ROOT / "bench" / "results.local.json"

TARGET_CORE_PERCENT = 5.0
TARGET_P99_MS = 50.0
TARGET_PRINTERS = 100
CHILD_TIMEOUT_EXTRA = 180.0


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run."""

    printers: tuple[int, ...]
    duration: float
    rate: float
    ks: tuple[int, ...]
    k_sweep_at: int
    k_duration: float
    warmup: float
    baseline: bool
    profile: Path | None
    output: Path
    quick: bool


# ------------------------------------------------------------------ parsing


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text}") from err
    if not values or any(value < 0 for value in values):
        raise argparse.ArgumentTypeError(f"not a list of counts: {text}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=(
            "Benchmark the Bambu Lab Cloud integration in a real Home Assistant "
            "against N virtual printers (1 report/s each, X1C full reports and "
            "P1S deltas mixed) on a local TLS MQTT broker (mosquitto)."
        ),
    )
    parser.add_argument(
        "--printers",
        type=_ints,
        help="fleet sizes (default 1,10,50,100; quick: 1,10,100)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds of the main (k=1) window per size (default 20; quick: 3)",
    )
    parser.add_argument(
        "--rate", type=float, default=1.0, help="reports per second per printer"
    )
    parser.add_argument(
        "--ks",
        type=_ints,
        default=(1, 2, 4, 6),
        help="changed values per report for the k sweep (1-6, default 1,2,4,6)",
    )
    parser.add_argument(
        "--k-sweep-at",
        type=int,
        default=10,
        help="fleet size of the k sweep (default 10; the nearest size runs it)",
    )
    parser.add_argument(
        "--k-duration",
        type=float,
        help="seconds per extra k window (default 5; quick: 2)",
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds of traffic before measuring (default 2)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (about a minute)"
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the publish-only runs (integration share then unknown)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile stats of each main window to this directory "
        "(profiling slows everything: do not compare those figures)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="results file (default bench/results.json; quick: results.local.json)",
    )
    # Internal: one measurement in this process, results as JSON to a file.
    parser.add_argument(
        "--child", choices=("integration", "publish"), help=argparse.SUPPRESS
    )
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser


def make_plan(args: argparse.Namespace) -> Plan:
    """Resolve defaults (``--quick`` changes them)."""
    quick: bool = args.quick
    printers = args.printers or ((1, 10, 100) if quick else (1, 10, 50, 100))
    return Plan(
        printers=tuple(sorted(set(printers) - {0})),
        duration=args.duration or (3.0 if quick else 20.0),
        rate=args.rate,
        ks=args.ks,
        k_sweep_at=args.k_sweep_at,
        k_duration=args.k_duration or (2.0 if quick else 5.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if quick else 2.0),
        baseline=args.baseline,
        profile=args.profile,
        output=args.output or (QUICK_RESULTS if quick else RESULTS),
        quick=quick,
    )


# -------------------------------------------------------------------- child


class _Resolver(ThreadedResolver):
    """The system resolver; Home Assistant's zeroconf one needs the network."""

    async def real_close(self) -> None:
        """What Home Assistant calls at shutdown."""
        await self.close()


async def _child_integration(args: argparse.Namespace, workdir: Path) -> Any:
    from homeassistant import loader  # noqa: PLC0415 - child processes only
    from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]  # noqa: PLC0415
        async_test_home_assistant,
    )

    import custom_components.bambu_cloud  # noqa: F401, PLC0415 - before HA's loader

    from .bench_ha import run_integration  # noqa: PLC0415

    config_dir = workdir / "config"
    config_dir.mkdir()
    async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
        # What pytest-homeassistant-custom-component's enable_custom_integrations
        # does: let the loader find custom_components on sys.path.
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        try:
            return await run_integration(
                hass,
                workdir,
                printers=args.printers[0],
                duration=args.duration,
                rate=args.rate,
                ks=args.ks if args.printers[0] else (),
                k_duration=args.k_duration,
                warmup=args.warmup,
                profile=args.profile,
            )
        finally:
            await hass.async_stop(force=True)


async def _child_publish(args: argparse.Namespace, workdir: Path) -> Any:
    from .bench_workload import run_publish_only  # noqa: PLC0415

    return await run_publish_only(
        workdir,
        printers=args.printers[0],
        duration=args.duration,
        rate=args.rate,
        k=args.ks[0],
        warmup=args.warmup,
    )


def _run_child(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    # Expected here: the custom integration warning; missing optional
    # native speed-ups (libturbojpeg, zlib-ng) of this machine.
    for name in ("homeassistant.loader", "aiohttp_fast_zlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("homeassistant.components.camera.img_util").disabled = True
    with (
        tempfile.TemporaryDirectory(prefix="bambu-bench-") as tmp,
        patch(
            "homeassistant.helpers.aiohttp_client._async_make_resolver",
            new=lambda hass: _Resolver(),
        ),
    ):
        workdir = Path(tmp)
        if args.child == "integration":
            result = asyncio.run(_child_integration(args, workdir))
        else:
            result = asyncio.run(_child_publish(args, workdir))
    args.child_out.write_text(json.dumps(result))
    return 0


def _spawn(plan: Plan, mode: str, printers: int, ks: Sequence[int]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and read its JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [
        sys.executable,
        "-m",
        "tools.bench",
        "--child",
        mode,
        "--child-out",
        str(out),
        "--printers",
        str(printers),
        "--duration",
        str(plan.duration),
        "--rate",
        str(plan.rate),
        "--ks",
        ",".join(map(str, ks)),
        "--k-duration",
        str(plan.k_duration),
        "--warmup",
        str(plan.warmup),
    ]
    if plan.profile is not None and mode == "integration":
        command += ["--profile", str(plan.profile.resolve())]
    timeout = (
        CHILD_TIMEOUT_EXTRA + plan.warmup + plan.duration + len(ks) * plan.k_duration
    )
    try:
        subprocess.run(command, cwd=ROOT, check=True, timeout=timeout)  # noqa: S603
        result: dict[str, Any] = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return result


# ------------------------------------------------------------ orchestration


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)  # noqa: T201


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def run_plan(plan: Plan) -> dict[str, Any]:
    """Run every measurement of the plan; return the raw results."""
    sweep_at = min(plan.printers, key=lambda n: (abs(n - plan.k_sweep_at), n))
    started = time.perf_counter()
    load_before = _load()
    _log("memory baseline: account without printers")
    idle = _spawn(plan, "integration", 0, (1,))
    runs, publish_only = [], []
    for printers in plan.printers:
        ks = tuple(dict.fromkeys((1, *plan.ks))) if printers == sweep_at else (1,)
        _log(f"{printers} printer(s): Home Assistant + integration, k={ks}")
        runs.append(_spawn(plan, "integration", printers, ks))
        if plan.baseline:
            _log(f"{printers} printer(s): publishing side only")
            publish_only.append(_spawn(plan, "publish", printers, (1,)))
    elapsed = time.perf_counter() - started
    _log(f"done in {elapsed:.0f} s")
    return {
        "idle": idle,
        "runs": runs,
        "publish_only": publish_only,
        "elapsed_s": round(elapsed, 1),
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def summarise(plan: Plan, raw: dict[str, Any]) -> dict[str, Any]:
    """Per-size rows, the k sweep, memory and the targets."""
    idle = raw["idle"]
    publish = {row["printers"]: row for row in raw["publish_only"]}
    rows = []
    for run in raw["runs"]:
        printers = run["printers"]
        main = run["windows"][0]
        base = publish.get(printers)
        total_us = main["cpu_us_per_report"]
        publish_us = base["cpu_us_per_report"] if base else None
        share_us = None if publish_us is None else total_us - publish_us
        direct_us = main["read_callback_us_per_report"]
        reports_per_s = printers * plan.rate
        rows.append(
            {
                "printers": printers,
                "published": main["published"],
                "received": main["received"],
                "reports_per_s": _round(main["reports_per_s"]),
                "writes_per_report": _round(main["writes_per_report"], 4),
                "reported_per_report": _round(main["reported_writes_per_report"], 4),
                "latency_p50_ms": _round(main["latency"]["p50_ms"]),
                "latency_p99_ms": _round(main["latency"]["p99_ms"]),
                "latency_max_ms": _round(main["latency"]["max_ms"]),
                "latency_samples": main["latency"]["samples"],
                "cpu_total_us_per_report": _round(total_us, 1),
                "cpu_publish_side_us_per_report": _round(publish_us, 1),
                "cpu_integration_us_per_report": _round(share_us, 1),
                "cpu_read_callback_us_per_report": _round(direct_us, 1),
                "cpu_handle_us_per_report": _round(main["handle_us_per_report"], 1),
                "gc_us_per_report": _round(main.get("gc", {}).get("us_per_report"), 1),
                "cpu_handle_us_by_model": {
                    model: _round(us, 1)
                    for model, us in main["handle_us_per_report_by_model"].items()
                },
                "integration_core_percent": _round(
                    None if share_us is None else share_us * reports_per_s / 1e4, 3
                ),
                "read_callback_core_percent": _round(
                    direct_us * reports_per_s / 1e4 if direct_us else None, 3
                ),
                "peak_rss_mib": _round(run["peak_rss_kib"] / 1024, 1),
                "rss_per_printer_kib": _round(
                    (run["peak_rss_kib"] - idle["peak_rss_kib"]) / printers, 1
                ),
                "steady_rss_per_printer_kib": _round(
                    (run["rss_end_kib"] - idle["rss_end_kib"]) / printers, 1
                ),
                "setup_s": _round(run["setup_s"], 3),
                "available_s": _round(run["available_s"], 3),
                "entities": run["entities"],
            }
        )
    sweep = [
        {
            "printers": run["printers"],
            "k": window["k"],
            "received": window["received"],
            "writes_per_report": _round(window["writes_per_report"], 4),
            "reported_per_report": _round(window["reported_writes_per_report"], 4),
            "latency_p50_ms": _round(window["latency"]["p50_ms"]),
            "latency_p99_ms": _round(window["latency"]["p99_ms"]),
            "cpu_read_callback_us_per_report": _round(
                window["read_callback_us_per_report"], 1
            ),
        }
        for run in raw["runs"]
        for window in run["windows"]
        if len(run["windows"]) > 1
    ]
    return {
        "rows": rows,
        "k_sweep": sweep,
        "memory_baseline": {
            "peak_rss_mib": _round(idle["peak_rss_kib"] / 1024, 1),
            "steady_rss_mib": _round(idle["rss_end_kib"] / 1024, 1),
            "setup_s": _round(idle["setup_s"], 3),
        },
        "targets": targets(plan, raw, rows),
        "load_average": {
            "before": raw.get("load_average_before"),
            "after": raw.get("load_average_after"),
        },
    }


def targets(
    plan: Plan, raw: dict[str, Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """PASS/FAIL per target."""
    results = []
    windows = [(run["printers"], w) for run in raw["runs"] for w in run["windows"]]
    worst = [
        f"N={n} k={w['k']}: {w['writes_per_report']} changed,"
        f" {w['reported_writes_per_report']} unchanged"
        for n, w in windows
        if w["writes_per_report"] != w["k"] or w["reported_writes_per_report"]
    ]
    results.append(
        {
            "target": (
                "state writes per report == changed values, no unchanged writes"
                " (state_reported) (every N, every k)"
            ),
            "value": "; ".join(worst) if worst else "all exact",
            "status": "FAIL" if worst or not windows else "PASS",
        }
    )
    row = next((r for r in rows if r["printers"] == TARGET_PRINTERS), None)
    share = None if row is None else row["integration_core_percent"]
    name = (
        f"{TARGET_PRINTERS} printers at {plan.rate:g} report/s"
        f" < {TARGET_CORE_PERCENT:g} % of one core (integration share)"
    )
    if row is None or share is None:
        reason = "no 100-printer run" if row is None else "no publish-only baseline"
        results.append({"target": name, "value": reason, "status": "SKIP"})
    else:
        results.append(
            {
                "target": name,
                "value": f"{share:.2f} % (read callback alone: "
                f"{row['read_callback_core_percent']:.2f} %)",
                "status": "PASS" if share < TARGET_CORE_PERCENT else "FAIL",
            }
        )
    for row in rows:
        p99 = row["latency_p99_ms"]
        results.append(
            {
                "target": f"p99 latency < {TARGET_P99_MS:g} ms, N={row['printers']}",
                "value": "no samples" if p99 is None else f"{p99:.2f} ms",
                "status": "PASS" if p99 is not None and p99 < TARGET_P99_MS else "FAIL",
            }
        )
    return results


# ------------------------------------------------------------------- output


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(header), *(len(row[i]) for row in cells))
        for i, header in enumerate(headers)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    )
    return "\n".join(lines)


def render(summary: dict[str, Any]) -> str:
    """The human-readable report."""
    rows = summary["rows"]
    main = _table(
        (
            "N",
            "rep/s",
            "recv/pub",
            "writes/rep",
            "unchanged/rep",
            "p50 ms",
            "p99 ms",
            "CPU tot us/rep",
            "pub-side us/rep",
            "integr. us/rep",
            "read-cb us/rep",
            "integr. %core",
            "peak RSS MiB",
            "RSS/printer KiB",
            "setup s",
            "avail s",
        ),
        [
            (
                r["printers"],
                r["reports_per_s"],
                f"{r['received']}/{r['published']}",
                r["writes_per_report"],
                r["reported_per_report"],
                r["latency_p50_ms"],
                r["latency_p99_ms"],
                r["cpu_total_us_per_report"],
                r["cpu_publish_side_us_per_report"],
                r["cpu_integration_us_per_report"],
                r["cpu_read_callback_us_per_report"],
                r["integration_core_percent"],
                r["peak_rss_mib"],
                r["rss_per_printer_kib"],
                r["setup_s"],
                r["available_s"],
            )
            for r in rows
        ],
    )
    parts = ["Integration in Home Assistant, k=1 (one temperature per report)", main]
    by_model = [
        (r["printers"], *(r["cpu_handle_us_by_model"].get(m) for m in ("X1C", "P1S")))
        for r in rows
    ]
    parts += [
        "",
        "Hub report handler (merge + entities + state machine), wall us/report",
        _table(("N", "X1C full", "P1S delta"), by_model),
    ]
    if summary["k_sweep"]:
        parts += [
            "",
            "k sweep: each report changes k values",
            _table(
                (
                    "N",
                    "k",
                    "reports",
                    "writes/rep",
                    "unchanged/rep",
                    "p50 ms",
                    "p99 ms",
                    "read-cb us",
                ),
                [
                    (
                        s["printers"],
                        s["k"],
                        s["received"],
                        s["writes_per_report"],
                        s["reported_per_report"],
                        s["latency_p50_ms"],
                        s["latency_p99_ms"],
                        s["cpu_read_callback_us_per_report"],
                    )
                    for s in summary["k_sweep"]
                ],
            ),
        ]
    memory = summary["memory_baseline"]
    load = summary["load_average"]
    parts += [
        "",
        f"Load average (1, 5, 15 min) before: {load['before']}, after: "
        f"{load['after']} (other processes inflate latency, less so CPU time)",
        "",
        f"Memory baseline (account without printers): peak RSS "
        f"{memory['peak_rss_mib']} MiB, steady {memory['steady_rss_mib']} MiB",
        "",
        "Targets",
    ]
    parts.extend(
        f"  [{t['status']}] {t['target']}: {t['value']}" for t in summary["targets"]
    )
    return "\n".join(parts)


def _meta(plan: Plan) -> dict[str, Any]:
    from homeassistant.const import __version__ as ha_version  # noqa: PLC0415

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit or None,
        "python": platform.python_version(),
        "home_assistant": ha_version,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": plan.quick,
        "profiled": plan.profile is not None,
        "printers": list(plan.printers),
        "duration_s": plan.duration,
        "rate_per_printer": plan.rate,
        "k_sweep": list(plan.ks),
        "k_duration_s": plan.k_duration,
        "warmup_s": plan.warmup,
        "workload": "printers alternate X1C (full reports) and P1S (deltas); "
        "each report changes exactly k values (k=1: nozzle temperature)",
        "notes": [
            "the broker is mosquitto in its own process: its CPU is in neither "
            "run; the virtual printers, the broker's observer and front door "
            "(in-process clients and a byte pipe) and Home Assistant share one "
            "process and one event loop",
            "integration share = total CPU per report minus the publish-only "
            "run's CPU per report (virtual printers, observer, front door and a "
            "do-nothing TLS subscriber: the same in both runs)",
            "gc = time in the garbage collector per report (already inside the "
            "CPU figures; shown because no profile entry has it)",
            "read callback = loop-thread CPU inside the integration's MQTT "
            "read callback (TLS read, paho, merge, entities, state machine)",
            "no recorder, history or frontend is loaded",
            "the registry saves that setup schedules (ten seconds after the "
            "entities are created) are written before the first window, not "
            "counted as the cost of reports",
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tools.bench``."""
    args = _parser().parse_args(argv)
    if args.child:
        return _run_child(args)
    plan = make_plan(args)
    raw = run_plan(plan)
    summary = summarise(plan, raw)
    report = {"meta": _meta(plan), **summary, "raw": raw}
    plan.output.parent.mkdir(parents=True, exist_ok=True)
    plan.output.write_text(json.dumps(report, indent=2) + "\n")
    print(render(summary))  # noqa: T201
    print(f"\nResults written to {plan.output}")  # noqa: T201
    return 1 if any(t["status"] == "FAIL" for t in summary["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Print jobs on a schedule: what a busy printer reports through a day.

Each printer runs one :class:`JobRunner` loop: idle, then a job (prepare ->
running with rising progress, layers, temperatures, fans and AMS tray
switches -> finish), then idle again. Across jobs and printers the schedule
mixes in an HMS error raised then cleared, a pause and resume, and a failed
print, so every path of the integration gets exercised.

Time is simulated: one step is one simulated second and lasts
``1 / speed`` real seconds, so ``speed=20`` runs a job in a few seconds
(tests) while ``speed=1`` reports about once per second (the demo). The
printer's own command handling (pause/resume/stop from Home Assistant) wins:
the runner holds while the printer is paused by a command and ends the job
when it was stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tools.virtual_printer.printer import VirtualPrinter, pack_temp, unpack_temp

_LOGGER = logging.getLogger(__name__)

HMS_AMS_TANGLE = (0x07002000, 0x00020004)
"""``HMS_0700_2000_0002_0004``: a serious AMS notice, raised then cleared."""
HMS_NOZZLE_CLOG = (0x0C000300, 0x00030001)
"""``HMS_0C00_0300_0003_0001``: raised with the failed print."""
FAILED_PRINT_ERROR = 0x07008006
"""``print_error`` 0700_8006 (PROTOCOL.md 2.5 example) of the failed print."""

TITLES = (
    "Benchy",
    "Cable clip x12",
    "Planetary gearbox",
    "Desk organiser",
    "Lithophane lamp",
    "Raspberry Pi case",
    "Vase mode spiral",
    "Calibration cube",
    "Headphone stand",
    "Filament swatches",
)

TASK_RUNNING = 4
TASK_FINISHED = 2
TASK_FAILED = 3


class Scenario(StrEnum):
    """What happens during a job besides printing."""

    HMS = "hms"
    PAUSE = "pause"
    PLAIN = "plain"
    FAIL = "fail"


SCENARIOS = (Scenario.HMS, Scenario.PAUSE, Scenario.PLAIN, Scenario.FAIL)


@dataclass(frozen=True, slots=True)
class JobPlan:
    """One job: its identity, length and what happens during it."""

    number: int
    task_id: int
    title: str
    scenario: Scenario
    total_layers: int
    print_seconds: int
    trays: tuple[int, ...]
    nozzle_temp: float
    bed_temp: float


@dataclass(slots=True)
class JobEvents:
    """Callbacks into the farm (cloud task list, bind status)."""

    started: Callable[[VirtualPrinter, JobPlan], None]
    ended: Callable[[VirtualPrinter, JobPlan, bool], None]


@dataclass
class _Temps:
    nozzle_target: float = 0.0
    bed_target: float = 0.0
    chamber_target: float = 0.0


@dataclass
class JobRunner:
    """Drives one :class:`VirtualPrinter` through jobs, one step at a time."""

    printer: VirtualPrinter
    index: int
    events: JobEvents
    speed: float = 1.0
    job_seconds: int = 180
    prepare_seconds: int = 12
    idle_seconds: int = 20
    seed: int = 0
    jobs_done: int = 0
    history: list[str] = field(default_factory=list)
    """``gcode_state`` values in the order they were reported (bounded)."""
    _rng: random.Random = field(init=False)
    _temps: _Temps = field(default_factory=_Temps)
    _step_count: int = 0

    def __post_init__(self) -> None:
        """Seed the variation of this printer's jobs."""
        self._rng = random.Random(self.seed * 1000 + self.index)  # noqa: S311

    # -- the loop ----------------------------------------------------------

    @property
    def step_seconds(self) -> float:
        """Real seconds per simulated second."""
        return 1.0 / self.speed

    async def run(self) -> None:
        """Idle, print, repeat until cancelled."""
        await self._idle(self.idle_seconds // 2 + 3 * self.index)
        while True:
            plan = self.plan(self.jobs_done)
            await self.run_job(plan)
            self.jobs_done += 1
            await self._idle(self.idle_seconds)

    async def _sleep(self) -> None:
        await asyncio.sleep(self.step_seconds)

    def plan(self, number: int) -> JobPlan:
        """The ``number``-th job of this printer (deterministic per seed)."""
        rng = self._rng
        has_ams = bool(self._ams_units())
        trays: tuple[int, ...] = (0,)
        if has_ams:
            count = rng.choice((2, 3))
            trays = tuple(range(count))
        return JobPlan(
            number=number,
            task_id=400_000_000 + self.index * 10_000 + number,
            title=TITLES[(self.index * 3 + number) % len(TITLES)],
            scenario=SCENARIOS[(self.index + number) % len(SCENARIOS)],
            total_layers=rng.randrange(60, 240),
            print_seconds=max(10, int(self.job_seconds * rng.uniform(0.8, 1.2))),
            trays=trays,
            nozzle_temp=float(rng.choice((215, 220, 250))),
            bed_temp=float(rng.choice((55, 60, 70))),
        )

    async def _idle(self, seconds: int) -> None:
        for _ in range(max(1, seconds)):
            self._report(self._physics())
            await self._sleep()

    async def run_job(self, plan: JobPlan) -> None:
        """Prepare, print and end one job (success or failure)."""
        printer = self.printer
        self.events.started(printer, plan)
        start = dt.datetime.now(dt.UTC)
        self._temps = _Temps(
            plan.nozzle_temp, plan.bed_temp, 35.0 if self._enclosed() else 0.0
        )
        self._report(
            {
                "gcode_state": "PREPARE",
                "print_type": "cloud",
                "subtask_name": plan.title,
                "gcode_file": self._gcode_file(plan),
                "gcode_file_prepare_percent": "0",
                "gcode_start_time": str(int(start.timestamp())),
                "task_id": str(plan.task_id),
                "subtask_id": str(plan.task_id + 1),
                "project_id": str(plan.task_id + 2),
                "profile_id": str(plan.task_id + 3),
                "mc_percent": 0,
                "mc_remaining_time": math.ceil(plan.print_seconds / 60),
                "layer_num": 0,
                "total_layer_num": plan.total_layers,
                "mc_print_stage": "2",
                "stg": [2, 13, 1, 7, 14],
                "stg_cur": 2,
                "print_error": 0,
                "hms": [],
                "s_obj": [],
                **self._target_fields(),
            }
        )
        if not await self._prepare(plan):
            self._end(plan, success=False)
            return
        success = await self._print(plan)
        self._end(plan, success=success)

    # -- phases ------------------------------------------------------------

    def _aborted(self) -> bool:
        """The printer was stopped by a command (``print.stop``)."""
        return self.printer.state.get("gcode_state") == "FAILED"

    async def _hold_while_paused(self) -> None:
        """Wait while a command paused the printer (``print.pause``)."""
        while self.printer.state.get("gcode_state") == "PAUSE":
            self._report(self._physics())
            await self._sleep()

    async def _prepare(self, plan: JobPlan) -> bool:
        stages = (2, 13, 1, 7, 14)
        total = self.prepare_seconds
        for second in range(total):
            await self._sleep()
            await self._hold_while_paused()
            if self._aborted():
                return False
            fields = self._physics()
            percent = min(100, (second + 1) * 200 // total)
            fields["gcode_file_prepare_percent"] = str(percent)
            stage = stages[min(len(stages) - 1, second * len(stages) // total)]
            if self.printer.state.get("stg_cur") != stage:
                fields["stg_cur"] = stage
            self._report(fields)
        self._report({"gcode_state": "RUNNING", "stg_cur": 0, "stg": []})
        return True

    async def _print(self, plan: JobPlan) -> bool:
        seconds = plan.print_seconds
        switches = {
            seconds * (i + 1) // len(plan.trays): tray
            for i, tray in enumerate(plan.trays[1:])
        }
        hms_at = seconds * 2 // 5
        pause_at = seconds * 3 // 5
        fail_at = seconds * 7 // 10
        self._report(self._ams_fields(plan.trays[0]))
        elapsed = 0
        while elapsed < seconds:
            await self._sleep()
            await self._hold_while_paused()
            if self._aborted():
                return False
            elapsed += 1
            fields = self._physics()
            fields.update(self._progress(plan, elapsed))
            if elapsed in switches:
                await self._switch_tray(switches[elapsed])
            if plan.scenario is Scenario.HMS:
                if elapsed == hms_at:
                    self.printer.set_hms([HMS_AMS_TANGLE])
                elif elapsed == hms_at + 10:
                    self.printer.set_hms([])
            elif plan.scenario is Scenario.PAUSE and elapsed == pause_at:
                await self._pause_resume()
            elif plan.scenario is Scenario.FAIL and elapsed == fail_at:
                self.printer.set_hms([HMS_NOZZLE_CLOG])
                self._report(
                    {"gcode_state": "FAILED", "print_error": FAILED_PRINT_ERROR}
                )
                return False
            self._report(fields)
        return True

    async def _pause_resume(self) -> None:
        """The printer pauses itself (filament runout) and resumes."""
        self._report({"gcode_state": "PAUSE", "stg_cur": 6})
        for _ in range(8):
            await self._sleep()
            self._report(self._physics())
            if self.printer.state.get("gcode_state") != "PAUSE":
                return  # a command resumed or stopped it
        self._report({"gcode_state": "RUNNING", "stg_cur": 0})

    async def _switch_tray(self, tray: int) -> None:
        self._report({"stg_cur": 4, **self._ams_fields(tray)})
        for _ in range(3):
            await self._sleep()
            self._report(self._physics())
        if self.printer.state.get("gcode_state") == "RUNNING":
            self._report({"stg_cur": 0})

    def _end(self, plan: JobPlan, *, success: bool) -> None:
        self._temps = _Temps()
        fields: dict[str, Any] = {
            "gcode_state": "FINISH" if success else "FAILED",
            "stg_cur": self.printer.idle_stage,
            "mc_print_stage": "1",
            "mc_remaining_time": 0,
            "cooling_fan_speed": "0",
            "big_fan1_speed": "0",
            "big_fan2_speed": "0",
            **self._target_fields(),
        }
        if success:
            fields.update(mc_percent=100, layer_num=plan.total_layers)
        if self._ams_units():
            fields.update(self._ams_fields(None))
        self._report(fields)
        self.events.ended(self.printer, plan, success)

    # -- fields ------------------------------------------------------------

    def _progress(self, plan: JobPlan, elapsed: int) -> dict[str, Any]:
        percent = min(99, elapsed * 100 // plan.print_seconds)
        layer = max(1, plan.total_layers * elapsed // plan.print_seconds)
        remaining = math.ceil((plan.print_seconds - elapsed) / 60)
        fields: dict[str, Any] = {}
        state = self.printer.state
        if state.get("mc_percent") != percent:
            fields["mc_percent"] = percent
        if state.get("layer_num") != layer:
            fields["layer_num"] = layer
        if state.get("mc_remaining_time") != remaining:
            fields["mc_remaining_time"] = remaining
        fans = {
            "cooling_fan_speed": "0" if layer < 3 else ("15" if layer % 40 else "10"),
            "big_fan1_speed": "0" if layer < 20 else ("7" if layer // 30 % 2 else "5"),
            "big_fan2_speed": "4" if self._enclosed() and layer > 10 else "0",
        }
        fields.update({k: v for k, v in fans.items() if state.get(k) != v})
        return fields

    def _physics(self) -> dict[str, Any]:
        """Temperatures approach their targets; only changed fields."""
        state = self.printer.state
        fields: dict[str, Any] = {}
        temps = self._temps
        for key, target in (
            ("nozzle_temper", temps.nozzle_target),
            ("bed_temper", temps.bed_target),
        ):
            current = float(state.get(key, 24.0))
            new = _approach(current, target, self._rng)
            if new != current:
                fields[key] = new
        if self._enclosed():
            current = float(state.get("chamber_temper", 26.0))
            goal = temps.chamber_target or 26.0
            new = round(current + max(-0.5, min(0.5, goal - current)), 1)
            if new != current:
                fields["chamber_temper"] = new
        heatbreak = "15" if float(state.get("nozzle_temper", 0)) > 50 else "0"
        if state.get("heatbreak_fan_speed") != heatbreak:
            fields["heatbreak_fan_speed"] = heatbreak
        device = state.get("device")
        if isinstance(device, dict) and fields:
            fields["device"] = self._packed_temps(device, fields)
        return fields

    def _packed_temps(
        self, device: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The H2D ``device`` block, with packed current/target temperatures."""
        state = self.printer.state
        nozzle = _num(fields.get("nozzle_temper", state.get("nozzle_temper")))
        bed = _num(fields.get("bed_temper", state.get("bed_temper")))
        extruders = []
        for slot in device["extruder"]["info"]:
            current, _ = unpack_temp(int(slot["temp"]))
            if slot["id"] == 0:
                value = pack_temp(nozzle, self._temps.nozzle_target)
            else:
                value = pack_temp(current, 0)
            extruders.append({**slot, "temp": value})
        return {
            "extruder": {"info": extruders},
            "bed": {"info": {"temp": pack_temp(bed, self._temps.bed_target)}},
        }

    def _target_fields(self) -> dict[str, Any]:
        temps = self._temps
        fields: dict[str, Any] = {
            "nozzle_target_temper": temps.nozzle_target,
            "bed_target_temper": temps.bed_target,
        }
        device = self.printer.state.get("device")
        if isinstance(device, dict):
            fields["device"] = self._packed_temps(device, {})
        return fields

    def _ams_units(self) -> list[dict[str, Any]]:
        ams = self.printer.state.get("ams")
        if not isinstance(ams, dict):
            return []
        units = ams.get("ams")
        return units if isinstance(units, list) else []

    def _ams_fields(self, tray: int | None) -> dict[str, Any]:
        """``tray_now`` etc. for a switch to ``tray`` (None = unloaded)."""
        if not self._ams_units():
            return {}
        ams = self.printer.state["ams"]
        now = "255" if tray is None else str(tray)
        block: dict[str, Any] = {
            "tray_pre": ams.get("tray_now", "255"),
            "tray_now": now,
            "tray_tar": now,
        }
        if tray is not None:
            units = self._ams_units()
            for unit in units:
                for slot in unit.get("tray", []):
                    base = int(unit["id"]) * 4 if int(unit["id"]) < 128 else 0
                    if base + int(slot["id"]) == tray and slot.get("remain", -1) > 5:
                        slot["remain"] = int(slot["remain"]) - 1
            block["ams"] = units
        return {"ams": block}

    def _enclosed(self) -> bool:
        return self.printer.spec.key in ("X1C", "H2D", "P1S")

    def _gcode_file(self, plan: JobPlan) -> str:
        if self.printer.full_reports:
            return "/data/Metadata/plate_1.gcode"
        return f"{plan.title.replace(' ', '_')}.gcode.3mf"

    def _report(self, fields: dict[str, Any]) -> None:
        if not fields:
            return
        state = fields.get("gcode_state")
        if isinstance(state, str):
            self.history.append(state)
            del self.history[:-200]
        self.printer.update(fields)


def _num(value: object) -> float:
    """A report number (float, int or numeric string); 0 when missing."""
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def _approach(current: float, target: float, rng: random.Random) -> float:
    goal = max(target, 24.0)
    if abs(goal - current) < 0.6:
        jitter = rng.choice((-0.2, 0.0, 0.0, 0.2)) if target else 0.0
        return round(goal + jitter, 1)
    step = max(-6.0, min(8.0, (goal - current) * 0.3))
    if abs(step) < 0.5:
        step = 0.5 if step > 0 else -0.5
    return round(current + step, 1)

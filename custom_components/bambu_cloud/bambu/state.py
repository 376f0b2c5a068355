"""Printer state: merge MQTT reports and expose typed, read-only views.

Every field name of the printer report lives in this module and nowhere else,
so firmware quirks are handled in one place. The rest of the integration reads
plain Python values (or small frozen dataclasses) and never sees raw JSON.

Merge rules (PROTOCOL.md section 2.5):
- a ``print`` object with ``command == "push_status"`` and ``msg`` 0 or absent
  is a full snapshot and REPLACES the cached report (fields it lacks are gone);
- any other ``push_status`` (or a ``print`` object without a command, as P1/A1
  deltas and the H2D captures show) is a delta: dicts merge recursively, AMS
  units (``ams.ams[]``) and their trays (``tray[]``) merge by ``id``, every
  other list (``hms`` included) is replaced; a tray sent as just ``id`` (and
  ``state``) means the slot was emptied and replaces the old tray;
- a class object carrying ``result`` (and no ``push_status``) is a command
  acknowledgement: it never touches state and comes back as ``CommandAck``;
- ``info.get_version`` replies store the module list (change name ``"info"``);
- cloud presence events set ``online`` (change name ``"online"``); any status
  report also marks the printer online. The report's own ``online`` object
  shares that change name, which at worst refreshes the presence entity.

Bad input (not JSON, not an object, wrong types, > 1 MiB) is dropped with a
debug log; nesting deeper than any report is never recursed into (merge and
diagnostics stop at ``_MAX_DEPTH``). Neither ``merge`` nor a view raises.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from types import MappingProxyType, ModuleType
from typing import Any, Final, cast

from .ams import (
    AMS_2_PRO,
    AMS_HT,
    DRYING_BLOCKER_CODES,
    DRYING_PHASE_CODES,
    DRYING_STATE_CODES,
    DryingBlocker,
    DryingState,
    can_dry,
)
from .commands import AMS_HT_UNIT_IDS, AMS_UNIT_IDS, EXTERNAL_TRAY_IDS, SLOTS_PER_AMS
from .enums import (
    AirDuctMode,
    JobState,
    PrintStage,
    PrintType,
    SpeedLevel,
    print_stage,
)
from .project_file import plate_index
from .values import as_bool, as_enum, as_float, as_hex, as_int, as_str, dicts

_orjson: ModuleType | None
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - Home Assistant always has it
    _orjson = None

_LOGGER = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES: Final = 1_048_576
_MAX_DEPTH: Final = 32
_UINT32: Final = 0xFFFFFFFF
_MAX_MINUTES: Final = 1_000_000

type ChangeSet = frozenset[str]
type Payload = bytes | bytearray | str | Mapping[str, Any]

_PUSH_STATUS: Final = "push_status"
_ENVELOPE: Final = frozenset({"command", "msg", "sequence_id"})
# The ids a printer can report (commands.py numbers them): AMS, AMS lite and
# AMS 2 Pro units 0-3, AMS HT units 128-135, four slots per unit, external
# spool holders 254 and 255. Anything else (or an item without an id) is
# dropped, so a hostile report cannot grow the state or the entity list
# without bound.
_AMS_UNIT_IDS: Final = frozenset((*AMS_UNIT_IDS, *AMS_HT_UNIT_IDS))
_TRAY_IDS: Final = frozenset(range(SLOTS_PER_AMS))
_EXTERNAL_SPOOL_IDS: Final = frozenset(EXTERNAL_TRAY_IDS)
_UNIT_PATH: Final = ("ams", "ams")
_TRAY_PATH: Final = ("ams", "ams", "tray")
_MERGE_BY_ID: Final = {_UNIT_PATH: _AMS_UNIT_IDS, _TRAY_PATH: _TRAY_IDS}
_EMPTY_TRAY_KEYS: Final = frozenset({"id", "state"})
_PRESENCE: Final = {"client.connected": True, "client.disconnected": False}
_REDACTED_KEYS: Final = frozenset(
    {"sn", "rtsp_url", "ip", "access_code", "user_id", "oss_url", "url"}
)
_MISSING: Final = object()


_HMS_SEVERITIES: Final = {1: "fatal", 2: "serious", 3: "common", 4: "info"}
_AMS_KINDS: Final = {
    "ams": "ams",
    "ams_f1": "ams_lite",
    "n3f": AMS_2_PRO,
    "n3s": AMS_HT,
}
_NO_SNOW: Final = 0xFFFF
_NOZZLE_CODE: Final = re.compile(r"[A-Z]{2}\d{2}")
_NOZZLE_MATERIALS: Final = {
    "00": "stainless_steel",
    "01": "hardened_steel",
    "05": "tungsten_carbide",
}
_NOZZLE_FLOWS: Final = {"H": "high_flow", "E": "high_flow", "U": "tpu_high_flow"}
_NOZZLE_FIELDS: Final = (
    "device",
    "nozzle_temper",
    "nozzle_target_temper",
    "nozzle_diameter",
    "nozzle_type",
)
_SD_STATES: Final = ("none", "normal", "abnormal", "readonly")
_DBM: Final = re.compile(r"\s*(-?\d{1,4})")
_HEX_COLOR: Final = re.compile(r"[0-9A-Fa-f]{6}(?:[0-9A-Fa-f]{2})?")
_DOOR_OPEN: Final = 0x00800000
_SIGNED_COMMANDS: Final = 0x20000000
_REMOTE_DRYING: Final = 1 << 5
_SECONDARY_AUX_FAN: Final = 160
_AIR_DUCT_MODES: Final = frozenset(int(mode) for mode in AirDuctMode)
_LAST_EPOCH: Final = 10**11


# --------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandAck:
    """The printer's answer to a command, matched by ``sequence_id``."""

    kind: str
    command: str
    sequence_id: str
    ok: bool
    reason: str | None
    err_code: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MergeResult:
    """What one MQTT message changed, plus the command ack it carried."""

    changed: ChangeSet = frozenset()
    ack: CommandAck | None = None


_NOTHING: Final = MergeResult()


# ----------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True, kw_only=True)
class Nozzle:
    """One hotend; dual-nozzle printers (H2D) report two."""

    index: int
    active: bool
    temperature: float | None
    target_temperature: float | None
    diameter: float | None
    type: str | None
    flow: str | None
    tray_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tray:
    """One filament slot (AMS tray or external spool holder)."""

    id: int
    ams_id: int | None
    global_id: int
    empty: bool
    type: str | None = None
    sub_brand: str | None = None
    color: str | None = None
    remaining: int | None = None
    name: str | None = None
    filament_id: str | None = None
    nozzle_temp_min: int | None = None
    nozzle_temp_max: int | None = None
    # The filament's drying recommendation (°C, hours); 0 or absent: none.
    drying_temperature: int | None = None
    drying_hours: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AmsDrying:
    """The dryer of an AMS 2 Pro or AMS HT: state, settings, blockers.

    ``temperature``, ``hours`` and ``filament`` are the running (or last)
    drying run's settings; ``blockers`` why drying cannot start now.
    """

    state: DryingState | None = None
    temperature: int | None = None
    hours: int | None = None
    filament: str | None = None
    blockers: tuple[DryingBlocker, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AmsUnit:
    """One AMS unit; ``kind`` comes from the get_version module names."""

    id: int
    kind: str
    humidity_index: int | None
    humidity: int | None
    temperature: float | None
    drying_minutes_left: int | None
    firmware_version: str | None
    trays: tuple[Tray, ...]
    drying: AmsDrying = AmsDrying()

    @property
    def can_dry(self) -> bool:
        """Whether the unit has a heater (AMS 2 Pro, AMS HT)."""
        return can_dry(self.kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class HmsEntry:
    """One active health-management (HMS) message."""

    attr: int
    code: int
    hms_code: str
    severity: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraState:
    """Camera settings reported under ``ipcam``."""

    recording: bool | None
    timelapse: bool | None
    resolution: str | None
    rtsp_url: str | None
    rtsp_enabled: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Xcam:
    """AI detection switches reported under ``xcam``."""

    first_layer_inspector: bool | None
    spaghetti_detector: bool | None
    print_halt: bool | None
    printing_monitor: bool | None
    buildplate_marker_detector: bool | None
    allow_skip_parts: bool | None
    halt_print_sensitivity: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeFlags:
    """Decoded ``home_flag`` bits; every field is None when it is absent."""

    homed: bool | None
    auto_recovery: bool | None
    camera_recording: bool | None
    ams_remain_detection: bool | None
    sd_card_state: str | None
    ams_auto_refill: bool | None
    prompt_sound: bool | None
    wired_network: bool | None
    filament_tangle_detect_supported: bool | None
    filament_tangle_detect: bool | None
    door_open: bool | None
    # Nozzle blob and air printing detection: whether the firmware has them
    # (bits 25, 29) and whether they are on (bits 24, 28).
    nozzle_blob_detect_supported: bool | None
    nozzle_blob_detect: bool | None
    air_print_detect_supported: bool | None
    air_print_detect: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AmsUserSettings:
    """AMS options of ``ams_user_setting``; each None when not reported.

    ``startup_read``: read every tray's RFID at power on; ``tray_read``: read
    a spool when it is inserted; ``remain_detection``: estimate the filament
    left on spools (``home_flag`` bit 7). The command sets all three at once.
    """

    startup_read: bool | None
    tray_read: bool | None
    remain_detection: bool | None

    @property
    def complete(self) -> bool:
        """Whether all three are known, so one can change without the others."""
        return None not in (self.startup_read, self.tray_read, self.remain_detection)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareUpdate:
    """Printer firmware upgrade status from ``upgrade_state``."""

    available: bool | None
    new_version: str | None
    status: str | None
    progress: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareModule:
    """One module of the get_version reply (serial numbers left out)."""

    name: str
    sw_ver: str | None
    hw_ver: str | None
    product_name: str | None
    project_name: str | None


# ------------------------------------------------------------------ converters


def _as_id(value: object) -> str:
    """Sequence ids are strings, some firmware sends ints."""
    if isinstance(value, str):
        return value
    number = as_int(value)
    return "" if number is None else str(number)


# The most plates a project holds (Bambu Studio allows a few dozen).
_MAX_PLATE = 999


def _in_range(value: int | None, low: int, high: int) -> int | None:
    return value if value is not None and low <= value <= high else None


def _first[T](*values: T | None) -> T | None:
    return next((value for value in values if value is not None), None)


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _path(root: Mapping[str, Any], *keys: str) -> object:
    node: object = root
    for key in keys:
        node = _dict(node).get(key)
    return node


def _bit(flags: int | None, mask: int) -> bool | None:
    return None if flags is None else bool(flags & mask)


def _unpack_temp(value: object) -> tuple[float | None, float | None]:
    """Packed temperature: low 16 bits current, high 16 bits target."""
    packed = as_int(value)
    if packed is None or packed < 0:
        return None, None
    return float(packed & 0xFFFF), float((packed >> 16) & 0xFFFF)


def _fan_percent(value: object) -> int | None:
    """Fan step 0-15 to percent, rounded up to 10 % like Bambu Studio."""
    step = _in_range(as_int(value), 0, 15)
    return None if step is None else (step * 10 + 14) // 15 * 10


def _color(value: object) -> str | None:
    text = as_str(value)
    if text is None or not _HEX_COLOR.fullmatch(text):
        return None
    return f"#{text[:6].upper()}"


def _nozzle_kind(value: object) -> tuple[str | None, str | None]:
    """Material and flow from a nozzle type name or code such as ``HS01``."""
    text = as_str(value)
    if text is None:
        return None, None
    if _NOZZLE_CODE.fullmatch(text):
        return _NOZZLE_MATERIALS.get(text[2:]), _NOZZLE_FLOWS.get(text[1], "standard")
    return text.lower(), None


def _global_tray_id(ams_id: int | None, slot: int) -> int:
    """Global tray id: AMS n slot s is n*4+s, AMS HT and spools use their id.

    ``commands.global_tray_id``'s numbering, read leniently: ``snow`` names
    an external holder as unit 254/255 with any slot bits, and an odd id in
    a report must give some number rather than raise.
    """
    if ams_id is None:
        return slot
    if ams_id >= AMS_HT_UNIT_IDS.start:
        return ams_id
    return ams_id * SLOTS_PER_AMS + slot


def _snow_tray(value: object) -> int | None:
    """Tray loaded in one extruder: ``ams_id = snow >> 8``, slot in low bits."""
    snow = _in_range(as_int(value), 0, _NO_SNOW - 1)
    return None if snow is None else _global_tray_id(snow >> 8, snow & 0x3)


def _tray(data: Mapping[str, Any], ams_id: int | None) -> Tray | None:
    """An AMS tray (slot 0-3) or an external spool (``ams_id`` None, 254/255)."""
    slot = as_int(data.get("id"))
    if slot not in (_TRAY_IDS if ams_id is not None else _EXTERNAL_SPOOL_IDS):
        return None
    global_id = _global_tray_id(ams_id, slot)
    kind = as_str(data.get("tray_type"))
    if kind is None:
        return Tray(id=slot, ams_id=ams_id, global_id=global_id, empty=True)
    return Tray(
        id=slot,
        ams_id=ams_id,
        global_id=global_id,
        empty=False,
        type=kind,
        sub_brand=as_str(data.get("tray_sub_brands")),
        color=_color(data.get("tray_color")),
        remaining=_in_range(as_int(data.get("remain")), 0, 100),
        name=as_str(data.get("tray_id_name")),
        filament_id=as_str(data.get("tray_info_idx")),
        nozzle_temp_min=as_int(data.get("nozzle_temp_min")),
        nozzle_temp_max=as_int(data.get("nozzle_temp_max")),
        # Some firmware (P1P's vt_tray) names them tray_temp / tray_time.
        drying_temperature=_in_range(
            as_int(_first(data.get("drying_temp"), data.get("tray_temp"))), 1, 200
        ),
        drying_hours=_in_range(
            as_int(_first(data.get("drying_time"), data.get("tray_time"))), 1, 100
        ),
    )


_DRY_STATE_SHIFT: Final = 4
_DRY_PHASE_SHIFT: Final = 22


def _drying(unit: Mapping[str, Any]) -> AmsDrying:
    """A dryer's state, settings and blockers from its unit's report.

    State: ``info`` bits 4-7 (phase while drying: bits 22-23); settings:
    ``dry_setting`` (-1: not set); blockers: the ``dry_sf_reason`` codes.
    """
    info = as_hex(unit.get("info"))
    state: DryingState | None = None
    if info is not None and info >= 0:
        code = (info >> _DRY_STATE_SHIFT) & 0xF
        state = DRYING_STATE_CODES[code] if code < len(DRYING_STATE_CODES) else None
        if state is DryingState.DRYING:
            phase = (info >> _DRY_PHASE_SHIFT) & 0x3
            state = DRYING_PHASE_CODES.get(phase, state)
    setting = _dict(unit.get("dry_setting"))
    reasons = unit.get("dry_sf_reason")
    codes = [as_int(code) for code in reasons] if isinstance(reasons, list) else []
    return AmsDrying(
        state=state,
        temperature=_in_range(as_int(setting.get("dry_temperature")), 1, 200),
        hours=_in_range(as_int(setting.get("dry_duration")), 1, 1000),
        filament=as_str(setting.get("dry_filament")),
        blockers=tuple(
            dict.fromkeys(
                DRYING_BLOCKER_CODES[code]
                for code in codes
                if code in DRYING_BLOCKER_CODES
            )
        ),
    )


def _trays(items: Iterable[Mapping[str, Any]], ams_id: int | None) -> tuple[Tray, ...]:
    """The valid trays of a list, the first of each id (ids are unique)."""
    found: dict[int, Tray] = {}
    for item in items:
        if (tray := _tray(item, ams_id)) is not None:
            found.setdefault(tray.id, tray)
    return tuple(found.values())


def _hms_entry(attr: int, code: int) -> HmsEntry:
    digits = (
        f"{attr >> 16:04X}_{attr & 0xFFFF:04X}_{code >> 16:04X}_{code & 0xFFFF:04X}"
    )
    return HmsEntry(
        attr=attr,
        code=code,
        hms_code=f"HMS_{digits}",
        severity=_HMS_SEVERITIES.get(code >> 16),
    )


def _redact(value: object, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return "**TOO DEEP**"
    if isinstance(value, dict):
        return {
            key: "**REDACTED**" if key in _REDACTED_KEYS else _redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, depth + 1) for item in value]
    return value


# ----------------------------------------------------------------- decoding


def _no_constant(_: str) -> None:
    """NaN and Infinity are not JSON; read them as null."""


def _loads(payload: bytes | bytearray) -> object:
    """Parse JSON fast with orjson (Home Assistant ships it), else stdlib.

    orjson refuses what the firmware rarely sends (NaN, huge integers); the
    standard parser then decides, so both paths accept the same messages.
    """
    if _orjson is not None:
        try:
            return _orjson.loads(payload)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(payload, parse_constant=_no_constant)


def _decode(payload: object) -> dict[str, Any] | None:
    """Parse one MQTT payload into a JSON object, or None when unusable.

    Logs say why a message was dropped, never its content (acks carry secrets).
    """
    try:
        # Bytes, what MQTT delivers, are checked first: the Mapping check is
        # an abstract-class lookup, paid on every report otherwise.
        if isinstance(payload, bytes | bytearray):
            pass
        elif isinstance(payload, str):
            payload = payload.encode()
        elif isinstance(payload, Mapping):
            payload = json.dumps(dict(payload)).encode()  # plain JSON types only
        else:
            _LOGGER.debug(
                "Dropped printer message: unsupported payload type %s",
                type(payload).__name__,
            )
            return None
        if len(payload) > MAX_PAYLOAD_BYTES:
            _LOGGER.debug(
                "Dropped printer message: payload of %d bytes is too large",
                len(payload),
            )
            return None
        message = _loads(payload)
    except (TypeError, ValueError, RecursionError) as err:
        _LOGGER.debug("Dropped printer message: not JSON (%s)", type(err).__name__)
        return None
    if not isinstance(message, dict):
        _LOGGER.debug(
            "Dropped printer message: root is %s, not an object", type(message).__name__
        )
        return None
    return message


def _merge_tree(old: object, new: object, path: tuple[str, ...]) -> object:
    """Delta merge: dicts recursively, AMS units/trays by id, else replace.

    Below ``_MAX_DEPTH`` levels (deeper than any real report) the new value
    replaces the old one, so hostile nesting cannot exhaust the stack.
    """
    if len(path) > _MAX_DEPTH:
        return new
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = _merge_tree(old.get(key, _MISSING), value, (*path, key))
        return merged
    if isinstance(old, list) and isinstance(new, list) and path in _MERGE_BY_ID:
        return _merge_by_id(old, new, path)
    return new


def _item_id(item: object) -> int | None:
    return as_int(item.get("id")) if isinstance(item, dict) else None


def _merge_by_id(old: list[Any], new: list[Any], path: tuple[str, ...]) -> list[Any]:
    """Merge units or trays by id; items without a known id are dropped.

    A full report may list an id twice: the first one wins, as in the views.
    """
    known = _MERGE_BY_ID[path]
    merged: list[Any] = []
    where: dict[int, int] = {}
    for item in old:
        key = _item_id(item)
        if key is not None and key in known and key not in where:
            where[key] = len(merged)
            merged.append(item)
    for item in new:
        key = _item_id(item)
        if key is None or key not in known:
            continue
        if key not in where:
            where[key] = len(merged)
            merged.append(item)
        elif path == _TRAY_PATH and item.keys() <= _EMPTY_TRAY_KEYS:
            merged[where[key]] = item  # slot emptied: forget the old spool
        else:
            merged[where[key]] = _merge_tree(merged[where[key]], item, path)
    return merged


def _parse_ack(kind: str, body: Mapping[str, Any]) -> CommandAck:
    return CommandAck(
        kind=kind,
        command=as_str(body.get("command")) or "",
        sequence_id=_as_id(body.get("sequence_id")),
        ok=(as_str(body.get("result")) or "").lower() == "success",
        reason=as_str(body.get("reason")),
        err_code=as_int(body.get("err_code")),
    )


# ------------------------------------------------------------ view registry

_VIEW_FIELDS: dict[str, frozenset[str]] = {}
VIEW_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(_VIEW_FIELDS)


def _uses[F: Callable[..., object]](*fields: str) -> Callable[[F], F]:
    """Record which change names a view reads, and cache its value.

    Many entities read the same views after every report; a view without
    arguments is computed once per state version (a merge drops the cached
    views reading a field it changed, see ``PrinterState._forget``).
    """

    def register(view: F) -> F:
        name = view.__name__
        _VIEW_FIELDS[name] = frozenset(fields)
        if view.__code__.co_argcount != 1:
            return view

        @functools.wraps(view)
        def cached(self: PrinterState) -> object:
            # A miss is the rule once per report: no KeyError raised for it.
            value = self._cache.get(name, _MISSING)
            if value is _MISSING:
                value = self._cache[name] = view(self)
            return value

        return cast("F", cached)

    return register


def affected_views(changed: Iterable[str]) -> frozenset[str]:
    """Names of the PrinterState views a change set may have altered.

    Entities key on view names, so no report field name leaks out of here.
    """
    index = _views_by_field()
    views: set[str] = set()
    for name in changed:
        views.update(index.get(name, ()))
    return frozenset(views)


@functools.cache
def _views_by_field() -> dict[str, frozenset[str]]:
    """Field name -> views reading it (built once, after every view exists)."""
    index: dict[str, set[str]] = {}
    for view, fields in _VIEW_FIELDS.items():
        for name in fields:
            index.setdefault(name, set()).add(view)
    return {name: frozenset(views) for name, views in index.items()}


# --------------------------------------------------------------------- state


class PrinterState:
    """Merged report of one printer with typed, read-only views."""

    def __init__(self) -> None:
        """Start empty: every view is None (or empty) until reports arrive."""
        self._print: dict[str, Any] = {}
        self._modules: list[Mapping[str, Any]] = []
        self._online: bool | None = None
        self._full = False
        self._cache: dict[str, object] = {}

    # ------------------------------------------------------------- merging

    def merge(self, payload: Payload) -> MergeResult:
        """Apply one message from ``device/<serial>/report``; never raises."""
        message = _decode(payload)
        if message is None:
            return _NOTHING
        changed: set[str] = set()
        ack: CommandAck | None = None
        for kind, body in message.items():
            if not isinstance(body, dict):
                continue
            if kind == "event":
                changed |= self._apply_presence(body)
                continue
            command = as_str(body.get("command"))
            is_ack = "result" in body and command != _PUSH_STATUS
            if is_ack:
                ack = _parse_ack(kind, body)
            if kind == "info" and command == "get_version":
                changed |= self._apply_version(body)
            elif kind == "print" and not is_ack and command in (None, _PUSH_STATUS):
                changed |= self._apply_report(body)
        if changed:
            self._forget(changed)
        elif ack is None:
            return _NOTHING
        return MergeResult(changed=frozenset(changed), ack=ack)

    def _forget(self, changed: Iterable[str]) -> None:
        """Drop the cached views a change may have altered; the others stay.

        The registry names the fields each view reads (a test holds every
        view to it), so a new temperature does not make availability,
        signing needs or presence be worked out again on every report.
        """
        cache = self._cache
        if cache:
            index = _views_by_field()
            for name in changed:
                for view in index.get(name, ()):
                    cache.pop(view, None)

    def _apply_report(self, body: dict[str, Any]) -> set[str]:
        """Merge a status report; the names of the top-level fields it changed.

        ``body`` is this merge's own parse, so the envelope is taken out of
        it rather than copying the report without it.
        """
        full = body.get("command") == _PUSH_STATUS and as_int(body.get("msg", 0)) == 0
        for key in _ENVELOPE:
            body.pop(key, None)
        old = self._print
        changed: set[str] = set()
        if full:
            for key, value in body.items():
                if old.get(key, _MISSING) != value:
                    changed.add(key)
            changed.update(old.keys() - body.keys())
            self._print = body
        else:
            # In place: nothing outside this class holds the cached report,
            # and a delta usually carries a field or two of a hundred.
            for key, value in body.items():
                before = old.get(key, _MISSING)
                # Lists merge by id deeper down only (AMS units and trays).
                after = (
                    _merge_tree(before, value, (key,))
                    if isinstance(value, dict)
                    else value
                )
                if before != after:
                    changed.add(key)
                    old[key] = after
        self._full |= full
        return changed | self._set_online(online=True)

    def _apply_version(self, body: Mapping[str, Any]) -> set[str]:
        if not isinstance(body.get("module"), list):
            return set()
        modules = dicts(body.get("module"))
        if modules == self._modules:
            return set()
        self._modules = modules
        return {"info"}

    def _apply_presence(self, body: Mapping[str, Any]) -> set[str]:
        online = _PRESENCE.get(as_str(body.get("event")) or "")
        return set() if online is None else self._set_online(online=online)

    def _set_online(self, *, online: bool) -> set[str]:
        if self._online is online:
            return set()
        self._online = online
        return {"online"}

    @property
    def has_full_report(self) -> bool:
        """True once a full snapshot arrived (P1/A1 deltas alone are partial)."""
        return self._full

    def diagnostics(self) -> dict[str, Any]:
        """Return the cached report with serials, URLs and addresses redacted."""
        return {
            "print": _redact(self._print),
            "modules": _redact(self._modules),
            "online": self._online,
            "full_report": self._full,
        }

    # ---------------------------------------------------------- presence

    @property
    @_uses("online")
    def online(self) -> bool | None:
        """Cloud presence; True once the printer reports, None when unknown."""
        return self._online

    # ------------------------------------------------------ temperatures

    def _packed(self, part: str) -> tuple[float | None, float | None]:
        return _unpack_temp(_path(self._print, "device", part, "info", "temp"))

    @property
    @_uses("device")
    def active_extruder(self) -> int | None:
        """Index of the extruder in use (bits 4-7 of the extruder state)."""
        state = as_int(_path(self._print, "device", "extruder", "state"))
        return None if state is None or state < 0 else (state >> 4) & 0xF

    @property
    @_uses(*_NOZZLE_FIELDS)
    def nozzles(self) -> tuple[Nozzle, ...]:
        """Every hotend; single-nozzle printers get one from top-level fields."""
        p = self._print
        heads = dicts(_path(p, "device", "extruder", "info"))
        specs = {
            as_int(spec.get("id")): spec
            for spec in dicts(_path(p, "device", "nozzle", "info"))
        }
        if len(heads) <= 1:
            head = heads[0] if heads else {}
            current, target = _unpack_temp(head.get("temp"))
            return (
                self._nozzle(
                    0,
                    active=True,
                    current=_first(as_float(p.get("nozzle_temper")), current),
                    target=_first(as_float(p.get("nozzle_target_temper")), target),
                    spec=specs.get(0, {}),
                    snow=head.get("snow"),
                ),
            )
        active = self.active_extruder
        nozzles = []
        for position, head in enumerate(heads):
            index = as_int(head.get("id"))
            index = position if index is None else index
            current, target = _unpack_temp(head.get("temp"))
            nozzles.append(
                self._nozzle(
                    index,
                    active=index == active,
                    current=current,
                    target=target,
                    spec=specs.get(index, {}),
                    snow=head.get("snow"),
                )
            )
        return tuple(nozzles)

    def _nozzle(
        self,
        index: int,
        *,
        active: bool,
        current: float | None,
        target: float | None,
        spec: Mapping[str, Any],
        snow: object,
    ) -> Nozzle:
        """One nozzle; ``device.nozzle.info`` wins over the legacy fields."""
        material, flow = _nozzle_kind(spec.get("type"))
        if material is None:
            material, flow = _nozzle_kind(self._print.get("nozzle_type"))
        diameter = as_float(spec.get("diameter"))
        return Nozzle(
            index=index,
            active=active,
            temperature=current,
            target_temperature=target,
            diameter=_first(diameter, as_float(self._print.get("nozzle_diameter"))),
            type=material,
            flow=flow,
            tray_id=_snow_tray(snow),
        )

    def _active_head(self) -> tuple[int, Mapping[str, Any], bool]:
        """``(index, extruder entry, single)`` of the nozzle in use.

        The nozzle ``nozzles`` marks active (else its first one), found
        without building every Nozzle: the scalar nozzle views below read
        only their own field and ``device``, so a new temperature does not
        wake the entities showing the diameter, type or target.
        """
        heads = dicts(_path(self._print, "device", "extruder", "info"))
        if len(heads) <= 1:
            return 0, heads[0] if heads else {}, True
        active = self.active_extruder
        indexed = [
            (position if (index := as_int(head.get("id"))) is None else index, head)
            for position, head in enumerate(heads)
        ]
        index, head = next((item for item in indexed if item[0] == active), indexed[0])
        return index, head, False

    def _nozzle_spec(self, index: int) -> Mapping[str, Any]:
        """``device.nozzle.info`` of one nozzle (the last entry of an id wins)."""
        specs = dicts(_path(self._print, "device", "nozzle", "info"))
        return next((s for s in reversed(specs) if as_int(s.get("id")) == index), {})

    def _active_temperature(self, field: str, part: int) -> float | None:
        """Current (part 0) or target (part 1) of the active nozzle, °C.

        Single-nozzle printers: the float field first, the packed form as
        fallback; dual-nozzle printers report the packed form only.
        """
        _index, head, single = self._active_head()
        if single and (value := as_float(self._print.get(field))) is not None:
            return value
        return _unpack_temp(head.get("temp"))[part]

    @property
    @_uses("nozzle_temper", "device")
    def nozzle_temperature(self) -> float | None:
        """Current temperature of the active nozzle, °C."""
        return self._active_temperature("nozzle_temper", 0)

    @property
    @_uses("nozzle_target_temper", "device")
    def nozzle_target_temperature(self) -> float | None:
        """Target temperature of the active nozzle, °C."""
        return self._active_temperature("nozzle_target_temper", 1)

    @property
    @_uses("nozzle_diameter", "device")
    def nozzle_diameter(self) -> float | None:
        """Diameter of the active nozzle, mm."""
        index, _head, _single = self._active_head()
        diameter = as_float(self._nozzle_spec(index).get("diameter"))
        return _first(diameter, as_float(self._print.get("nozzle_diameter")))

    @property
    @_uses("nozzle_type", "device")
    def nozzle_type(self) -> str | None:
        """Active nozzle material: stainless_steel, hardened_steel, ..."""
        index, _head, _single = self._active_head()
        material, _flow = _nozzle_kind(self._nozzle_spec(index).get("type"))
        if material is None:
            material, _flow = _nozzle_kind(self._print.get("nozzle_type"))
        return material

    @property
    @_uses("bed_temper", "device")
    def bed_temperature(self) -> float | None:
        """Bed temperature, °C (float field first, packed form as fallback)."""
        return _first(as_float(self._print.get("bed_temper")), self._packed("bed")[0])

    @property
    @_uses("bed_target_temper", "device")
    def bed_target_temperature(self) -> float | None:
        """Bed target temperature, °C."""
        target = as_float(self._print.get("bed_target_temper"))
        return _first(target, self._packed("bed")[1])

    @property
    @_uses("chamber_temper", "device")
    def chamber_temperature(self) -> float | None:
        """Chamber temperature, °C (P1/A1 send a constant 5: check the model)."""
        chamber = as_float(self._print.get("chamber_temper"))
        return _first(chamber, self._packed("ctc")[0])

    @property
    @_uses("device")
    def chamber_target_temperature(self) -> float | None:
        """Chamber target, °C; only printers with chamber heating report it."""
        return self._packed("ctc")[1]

    # --------------------------------------------------------------- job

    @property
    @_uses("gcode_state")
    def gcode_state(self) -> JobState | None:
        """Where the job is; None for a state this library does not know."""
        state = as_str(self._print.get("gcode_state"))
        return None if state is None else as_enum(JobState, state.upper())

    @property
    @_uses("print_type")
    def print_type(self) -> PrintType | None:
        """Where the job came from; None when empty or a kind not known yet."""
        kind = as_str(self._print.get("print_type"))
        return None if kind is None else as_enum(PrintType, kind.lower())

    @property
    @_uses("mc_percent")
    def progress(self) -> int | None:
        """Print progress, %."""
        return _in_range(as_int(self._print.get("mc_percent")), 0, 100)

    @property
    @_uses("mc_remaining_time")
    def remaining_minutes(self) -> int | None:
        """Minutes the printer expects the job to take still."""
        minutes = as_int(self._print.get("mc_remaining_time"))
        return _in_range(minutes, 0, _MAX_MINUTES)

    @_uses("mc_remaining_time", "gcode_state")
    def end_time(self, now: datetime) -> datetime | None:
        """Return the expected end of the job, to the minute so it stays stable."""
        minutes = self.remaining_minutes
        state = self.gcode_state
        if minutes is None or state is None or not state.active:
            return None
        return now.replace(second=0, microsecond=0) + timedelta(minutes=minutes)

    @property
    @_uses("gcode_start_time")
    def start_time(self) -> datetime | None:
        """When the current job started (UTC)."""
        seconds = _in_range(as_int(self._print.get("gcode_start_time")), 1, _LAST_EPOCH)
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    @property
    @_uses("gcode_file_prepare_percent")
    def prepare_percent(self) -> int | None:
        """Download progress of the job file during PREPARE, %."""
        percent = as_int(self._print.get("gcode_file_prepare_percent"))
        return _in_range(percent, 0, 100)

    @property
    @_uses("stg_cur", "stage")
    def stage_id(self) -> int | None:
        """Raw ``stg_cur`` id (newer firmware: ``stage._id``)."""
        stage = as_int(self._print.get("stg_cur"))
        return _first(stage, as_int(_path(self._print, "stage", "_id")))

    @property
    @_uses("stg_cur", "stage", "print_type")
    def stage(self) -> PrintStage | None:
        """Current stage; None for an id the stage table lacks."""
        stage = self.stage_id
        if stage is None:
            return None
        return print_stage(stage, idle_job=self.print_type == "idle")

    @property
    @_uses("layer_num", "3D")
    def layer(self) -> int | None:
        """Layer being printed."""
        layer = as_int(self._print.get("layer_num"))
        layer = _first(layer, as_int(_path(self._print, "3D", "layer_num")))
        return _in_range(layer, 0, _UINT32)

    @property
    @_uses("total_layer_num", "3D")
    def total_layers(self) -> int | None:
        """Layer count of the job."""
        total = as_int(self._print.get("total_layer_num"))
        total = _first(total, as_int(_path(self._print, "3D", "total_layer_num")))
        return _in_range(total, 0, _UINT32)

    @property
    @_uses("subtask_name")
    def job_name(self) -> str | None:
        """Job name shown on the printer screen."""
        return as_str(self._print.get("subtask_name"))

    @property
    @_uses("task_id")
    def task_id(self) -> str | None:
        """Cloud task id of the current or last job; None for LAN jobs ("0")."""
        task = _as_id(self._print.get("task_id")).strip()
        return task if task.strip("0") else None

    @property
    @_uses("gcode_file")
    def gcode_file(self) -> str | None:
        """File being printed."""
        return as_str(self._print.get("gcode_file"))

    @property
    @_uses("gcode_file", "plate_idx")
    def plate(self) -> int | None:
        """Plate of the project being printed (1-based).

        The file a project job runs names it (``Metadata/plate_<n>.gcode``);
        newer firmware also reports ``plate_idx``. A single-plate ``.gcode``
        job has none.
        """
        if (plate := plate_index(self.gcode_file)) is not None:
            return _in_range(plate, 1, _MAX_PLATE)
        return _in_range(as_int(self._print.get("plate_idx")), 1, _MAX_PLATE)

    @property
    @_uses("s_obj")
    def skipped_objects(self) -> tuple[int, ...]:
        """Object ids skipped in the current job."""
        objects = self._print.get("s_obj")
        if not isinstance(objects, list):
            return ()
        return tuple(i for i in map(as_int, objects) if i is not None)

    @property
    @_uses("spd_lvl")
    def speed_level(self) -> SpeedLevel | None:
        """Silent, standard, sport or ludicrous."""
        level = as_int(self._print.get("spd_lvl"))
        return None if level is None else as_enum(SpeedLevel, level)

    @property
    @_uses("spd_mag")
    def speed_percent(self) -> int | None:
        """Speed multiplier, % (100 = standard)."""
        return _in_range(as_int(self._print.get("spd_mag")), 1, 1000)

    # -------------------------------------------------------------- fans

    @property
    @_uses("cooling_fan_speed")
    def part_cooling_fan(self) -> int | None:
        """Part cooling fan, %."""
        return _fan_percent(self._print.get("cooling_fan_speed"))

    @property
    @_uses("big_fan1_speed")
    def aux_fan(self) -> int | None:
        """Auxiliary part fan, %."""
        return _fan_percent(self._print.get("big_fan1_speed"))

    @property
    @_uses("big_fan2_speed")
    def chamber_fan(self) -> int | None:
        """Chamber (exhaust) fan, %."""
        return _fan_percent(self._print.get("big_fan2_speed"))

    @property
    @_uses("heatbreak_fan_speed")
    def heatbreak_fan(self) -> int | None:
        """Hotend heatbreak fan, %."""
        return _fan_percent(self._print.get("heatbreak_fan_speed"))

    @property
    @_uses("device")
    def secondary_aux_fan(self) -> int | None:
        """Secondary auxiliary fan (P2S/X2D air duct part 160), %."""
        parts = dicts(_path(self._print, "device", "airduct", "parts"))
        for part in parts:
            if as_int(part.get("id")) == _SECONDARY_AUX_FAN:
                return _in_range(as_int(part.get("state")), 0, 100)
        return None

    @property
    @_uses("device")
    def air_duct_mode(self) -> AirDuctMode | None:
        """Air duct mode (P2S, H2 series, X2D): ``device.airduct.modeCur``."""
        mode = as_int(_path(self._print, "device", "airduct", "modeCur"))
        return None if mode not in _AIR_DUCT_MODES else AirDuctMode(mode)

    # ------------------------------------------------- network and flags

    @property
    @_uses("wifi_signal")
    def wifi_signal(self) -> int | None:
        """Wi-Fi signal, dBm."""
        signal = self._print.get("wifi_signal")
        if isinstance(signal, str):
            match = _DBM.match(signal)
            return int(match[1]) if match else None
        return _in_range(as_int(signal), -200, 200)

    @property
    @_uses("net")
    def printer_ip(self) -> str | None:
        """The printer's own IPv4 address (little-endian uint32 in net.info)."""
        addresses = self.printer_addresses
        return addresses[0] if addresses else None

    @property
    @_uses("net")
    def printer_addresses(self) -> tuple[str, ...]:
        """Every IPv4 address the printer reports (one per interface).

        A printer on Wi-Fi and Ethernet has two; the LAN link keeps the one
        it uses while it is still among them, instead of hopping between them.
        """
        addresses: list[str] = []
        for entry in dicts(_path(self._print, "net", "info")):
            address = _in_range(as_int(entry.get("ip")), 1, _UINT32)
            if address is not None:
                text = str(IPv4Address(address.to_bytes(4, "little")))
                if text not in addresses:
                    addresses.append(text)
        return tuple(addresses)

    @property
    @_uses("fun")
    def signed_commands_required(self) -> bool | None:
        """True when print commands must be signed (enable Developer Mode)."""
        return _bit(as_hex(self._print.get("fun")), _SIGNED_COMMANDS)

    @property
    @_uses("home_flag")
    def home_flags(self) -> HomeFlags:
        """Decoded ``home_flag`` bitfield (a negative int is its 32-bit form)."""
        raw = as_int(self._print.get("home_flag"))
        flags = None if raw is None else raw & _UINT32
        sd_state = None if flags is None else _SD_STATES[(flags >> 8) & 0x3]
        return HomeFlags(
            homed=None if flags is None else flags & 0x7 == 0x7,
            auto_recovery=_bit(flags, 0x10),
            camera_recording=_bit(flags, 0x20),
            ams_remain_detection=_bit(flags, 0x80),
            sd_card_state=sd_state,
            ams_auto_refill=_bit(flags, 0x400),
            prompt_sound=_bit(flags, 0x20000),
            wired_network=_bit(flags, 0x40000),
            filament_tangle_detect_supported=_bit(flags, 0x80000),
            filament_tangle_detect=_bit(flags, 0x100000),
            door_open=_bit(flags, _DOOR_OPEN),
            nozzle_blob_detect_supported=_bit(flags, 1 << 25),
            nozzle_blob_detect=_bit(flags, 1 << 24),
            air_print_detect_supported=_bit(flags, 1 << 29),
            air_print_detect=_bit(flags, 1 << 28),
        )

    @property
    @_uses("stat", "home_flag")
    def door_open(self) -> bool | None:
        """Door open per ``stat`` (H2) or ``home_flag`` (X1): either bit counts.

        Older H2D firmware reports the door in ``home_flag`` although it sends
        ``stat`` too, so neither field alone is trusted to say "closed".
        """
        stat = _bit(as_hex(self._print.get("stat")), _DOOR_OPEN)
        flag = self.home_flags.door_open
        if stat is None and flag is None:
            return None
        return bool(stat or flag)

    @property
    @_uses("sdcard", "home_flag")
    def sd_card(self) -> bool | None:
        """Whether an SD card is inserted."""
        inserted = as_bool(self._print.get("sdcard"))
        state = self.home_flags.sd_card_state
        return _first(inserted, None if state is None else state != "none")

    @property
    @_uses("hw_switch_state")
    def filament_present(self) -> bool | None:
        """Toolhead filament sensor sees filament."""
        return as_bool(self._print.get("hw_switch_state"))

    @property
    @_uses("lights_report")
    def lights(self) -> dict[str, str]:
        """Light node -> mode (on/off/flashing), e.g. ``chamber_light``."""
        lights = {}
        for light in dicts(self._print.get("lights_report")):
            node, mode = as_str(light.get("node")), as_str(light.get("mode"))
            if node and mode:
                lights[node] = mode.lower()
        return lights

    @property
    @_uses("ipcam")
    def camera(self) -> CameraState:
        """Camera recording/timelapse switches and the LAN live-view URL."""
        ipcam = _dict(self._print.get("ipcam"))
        url = as_str(ipcam.get("rtsp_url"))
        is_url = url is not None and url.startswith("rtsp")
        return CameraState(
            recording=as_bool(ipcam.get("ipcam_record")),
            timelapse=as_bool(ipcam.get("timelapse")),
            resolution=as_str(ipcam.get("resolution")),
            rtsp_url=url if is_url else None,
            rtsp_enabled=True if is_url else as_bool(url),
        )

    @property
    @_uses("xcam")
    def xcam(self) -> Xcam:
        """AI detection switches."""
        xcam = _dict(self._print.get("xcam"))
        return Xcam(
            first_layer_inspector=as_bool(xcam.get("first_layer_inspector")),
            spaghetti_detector=as_bool(xcam.get("spaghetti_detector")),
            print_halt=as_bool(xcam.get("print_halt")),
            printing_monitor=as_bool(xcam.get("printing_monitor")),
            buildplate_marker_detector=as_bool(xcam.get("buildplate_marker_detector")),
            allow_skip_parts=as_bool(xcam.get("allow_skip_parts")),
            halt_print_sensitivity=as_str(xcam.get("halt_print_sensitivity")),
        )

    # ------------------------------------------------------------ errors

    @property
    @_uses("hms")
    def hms(self) -> tuple[HmsEntry, ...]:
        """Active HMS messages; empty when cleared."""
        entries = []
        for item in dicts(self._print.get("hms")):
            attr = _in_range(as_int(item.get("attr")), 0, _UINT32)
            code = _in_range(as_int(item.get("code")), 0, _UINT32)
            if attr is not None and code is not None:
                entries.append(_hms_entry(attr, code))
        return tuple(entries)

    @property
    @_uses("print_error")
    def print_error(self) -> int | None:
        """Print error code, None when there is none."""
        code = as_int(self._print.get("print_error"))
        if code is None:
            return None
        return (code & _UINT32) or None

    @property
    @_uses("print_error")
    def print_error_code(self) -> str | None:
        """Print error as ``XXXX_XXXX`` (the key of Bambu's error table)."""
        code = self.print_error
        if code is None:
            return None
        digits = f"{code:08X}"
        return f"{digits[:4]}_{digits[4:]}"

    # -------------------------------------------------------------- AMS

    def _ams_modules(self) -> dict[int, tuple[str, str | None]]:
        """AMS id -> (kind, firmware) from get_version names like ``n3f/2``."""
        found = {}
        for module in self._modules:
            prefix, _, number = (as_str(module.get("name")) or "").partition("/")
            ams_id = as_int(number) if prefix in _AMS_KINDS else None
            if ams_id is not None:
                found[ams_id] = (_AMS_KINDS[prefix], as_str(module.get("sw_ver")))
        return found

    @property
    @_uses("ams", "info")
    def ams_units(self) -> tuple[AmsUnit, ...]:
        """AMS units with their trays; ids 128+ are AMS HT units."""
        modules = self._ams_modules()
        units = []
        seen: set[int] = set()
        for unit in dicts(_path(self._print, "ams", "ams")):
            ams_id = as_int(unit.get("id"))
            if ams_id is None or ams_id not in _AMS_UNIT_IDS or ams_id in seen:
                continue
            seen.add(ams_id)
            fallback = AMS_HT if ams_id in AMS_HT_UNIT_IDS else "ams"
            kind, firmware = modules.get(ams_id, (fallback, None))
            units.append(
                AmsUnit(
                    id=ams_id,
                    kind=kind,
                    humidity_index=_in_range(as_int(unit.get("humidity")), 1, 5),
                    humidity=_in_range(as_int(unit.get("humidity_raw")), 0, 100),
                    temperature=as_float(unit.get("temp")),
                    drying_minutes_left=_in_range(
                        as_int(unit.get("dry_time")), 0, _MAX_MINUTES
                    ),
                    firmware_version=firmware,
                    trays=_trays(dicts(unit.get("tray")), ams_id),
                    drying=_drying(unit) if can_dry(kind) else AmsDrying(),
                )
            )
        return tuple(units)

    @property
    @_uses("fun2")
    def remote_drying(self) -> bool | None:
        """Whether the firmware starts and stops AMS drying on command.

        ``fun2`` bit 5; P1 firmware leaves it clear (drying from the screen
        only) and acknowledges drying commands without acting on them.
        """
        return _bit(as_hex(self._print.get("fun2")), _REMOTE_DRYING)

    @property
    @_uses("ams", "home_flag")
    def ams_user_settings(self) -> AmsUserSettings:
        """AMS read options and remain detection (None: not reported).

        The read options are ``ams.power_on_flag`` and ``ams.insert_flag``;
        a printer without an AMS reports neither.
        """
        ams = _dict(self._print.get("ams"))
        return AmsUserSettings(
            startup_read=as_bool(ams.get("power_on_flag")),
            tray_read=as_bool(ams.get("insert_flag")),
            remain_detection=self.home_flags.ams_remain_detection,
        )

    @property
    @_uses("vt_tray", "vir_slot")
    def external_spools(self) -> tuple[Tray, ...]:
        """External spool holders: ``vir_slot`` (H2D, two) else ``vt_tray``."""
        slots = dicts(self._print.get("vir_slot"))
        if not slots and isinstance(self._print.get("vt_tray"), dict):
            slots = [self._print["vt_tray"]]
        return _trays(slots, None)

    @property
    @_uses("ams")
    def active_tray_id(self) -> int | None:
        """Global id of the tray feeding the printer (254 external spool)."""
        return _in_range(as_int(_path(self._print, "ams", "tray_now")), 0, 254)

    @property
    @_uses("ams", "info", "vt_tray", "vir_slot")
    def active_tray(self) -> Tray | None:
        """The tray feeding the printer, None when nothing is loaded."""
        wanted = self.active_tray_id
        trays = [tray for unit in self.ams_units for tray in unit.trays]
        trays += self.external_spools
        return next((tray for tray in trays if tray.global_id == wanted), None)

    # ---------------------------------------------------------- firmware

    def _ota_module(self) -> Mapping[str, Any]:
        return next((m for m in self._modules if m.get("name") == "ota"), {})

    @property
    @_uses("info")
    def modules(self) -> tuple[FirmwareModule, ...]:
        """Modules from the get_version reply."""
        return tuple(
            FirmwareModule(
                name=name,
                sw_ver=as_str(module.get("sw_ver")),
                hw_ver=as_str(module.get("hw_ver")),
                product_name=as_str(module.get("product_name")),
                project_name=as_str(module.get("project_name")),
            )
            for module in self._modules
            if (name := as_str(module.get("name")))
        )

    @property
    @_uses("info")
    def firmware_version(self) -> str | None:
        """Printer firmware version (the ``ota`` module)."""
        return as_str(self._ota_module().get("sw_ver"))

    @property
    @_uses("info")
    def product_name(self) -> str | None:
        """Model name as the printer states it, e.g. ``Bambu Lab H2D``."""
        return as_str(self._ota_module().get("product_name"))

    @property
    @_uses("info")
    def project_name(self) -> str | None:
        """Vendor model id on older firmware without product_name (``C11``)."""
        return as_str(self._ota_module().get("project_name"))

    @property
    @_uses("upgrade_state")
    def firmware_update(self) -> FirmwareUpdate:
        """Whether a newer printer firmware is offered, and which."""
        upgrade = _dict(self._print.get("upgrade_state"))
        offers = dicts(upgrade.get("new_ver_list"))
        listed = (as_str(o.get("new_ver")) for o in offers if o.get("name") == "ota")
        version = _first(
            as_str(upgrade.get("ota_new_version_number")), next(listed, None)
        )
        state = as_int(upgrade.get("new_version_state"))
        available = True if version or state == 1 else (False if state == 2 else None)
        return FirmwareUpdate(
            available=available,
            new_version=version,
            status=as_str(upgrade.get("status")),
            progress=_in_range(as_int(upgrade.get("progress")), 0, 100),
        )

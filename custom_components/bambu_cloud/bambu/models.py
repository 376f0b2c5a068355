"""Typed results of the Bambu Lab cloud API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

SERIAL_MIN_LENGTH: Final = 8
SERIAL_MAX_LENGTH: Final = 32
_SERIAL = re.compile(rf"[A-Za-z0-9]{{{SERIAL_MIN_LENGTH},{SERIAL_MAX_LENGTH}}}")


def valid_serial(value: object) -> bool:
    """Whether a value can be a printer serial (ASCII letters and digits).

    A serial becomes an MQTT topic level, the TLS server name and a device
    identifier: anything else (wildcards, slashes, spaces, non-ASCII, absurd
    lengths) must never get that far, whoever supplied it.
    """
    return isinstance(value, str) and _SERIAL.fullmatch(value) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The signed-in account."""

    uid: str
    name: str | None = None
    account: str | None = None
    nickname: str | None = None
    avatar: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BoundPrinter:
    """A printer bound to the account, as the bind list reports it."""

    serial: str
    name: str
    online: bool
    print_status: str | None = None
    model_id: str | None = None
    product_name: str | None = None
    access_code: str | None = field(default=None, repr=False)
    nozzle_diameter: float | None = None
    structure: str | None = None
    print_job: str | None = None


class BedType(StrEnum):
    """The build plate a job was sliced for (a task's ``bedType``).

    The names Bambu Studio writes for its plate types.
    """

    COOL_PLATE = "cool_plate"
    TEXTURED_COOL_PLATE = "textured_cool_plate"
    ENGINEERING_PLATE = "eng_plate"
    HIGH_TEMP_PLATE = "hot_plate"
    TEXTURED_PLATE = "textured_plate"
    SUPERTACK_PLATE = "supertack_plate"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintTask:
    """One entry of the print history (newest first)."""

    id: str
    serial: str | None
    title: str | None = None
    cover: str | None = None
    status: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    # The slicer's estimates: grams, and centimetres of filament (a task of
    # 34.62 g of PLA lists 1161, i.e. 11.6 m at 1.75 mm and 1.24 g/cm3).
    weight: float | None = None
    length: float | None = None
    # The build plate the job was sliced for ("textured_plate", ...) and the
    # plate of the project it prints (1-based) with its name.
    bed_type: BedType | None = None
    plate_index: int | None = None
    plate_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareRelease:
    """A firmware build the cloud offers for a printer."""

    version: str
    force_update: bool = False
    url: str | None = None
    release_notes: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareInfo:
    """Installed and offered firmware of one printer."""

    serial: str
    installed: str | None
    releases: tuple[FirmwareRelease, ...] = ()

    @property
    def latest(self) -> FirmwareRelease | None:
        """The newest offered release, by version number."""
        return max(self.releases, key=lambda r: _version_key(r.version), default=None)


def _version_key(version: str) -> tuple[int, ...]:
    """Sort key for "01.09.05.01"-style versions; non-numbers sort first."""
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


class LoginKind(StrEnum):
    """What the login endpoint asked for."""

    TOKEN = "token"
    VERIFY_CODE = "verify_code"
    TFA = "tfa"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult:
    """The outcome of a password or code login."""

    kind: LoginKind
    access_token: str | None = field(default=None, repr=False)
    expires_in: int | None = None
    # For ``LoginKind.TFA``: what ``login_with_tfa`` sends with the app's code.
    tfa_key: str | None = field(default=None, repr=False)

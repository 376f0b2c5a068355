"""What a Bambu project file (``.3mf``) says about one plate.

A sliced Bambu project is a zip: per plate ``Metadata/plate_<n>.gcode`` (what
the printer runs), ``Metadata/plate_<n>.png`` (the plate's thumbnail) and one
``Metadata/slice_info.config`` describing every plate::

    <config>
      <plate>
        <metadata key="index" value="1"/>
        <metadata key="prediction" value="5140"/>     (seconds)
        <metadata key="weight" value="16.86"/>        (grams)
        <metadata key="label_object_enabled" value="true"/>
        <object identify_id="75" name="Cube" skipped="false"/>
        <filament id="1" type="PLA" color="#FFFFFF" used_m="5.63" used_g="16.86"/>
      </plate>
    </config>

Bambu Studio also writes ``Metadata/plate_<n>.json`` per plate, a JSON object
naming the build plate the plate was sliced for (``"bed_type":
"textured_plate"``, the names of :class:`~.models.BedType`) besides object
bounding boxes.

The ``identify_id`` of an object is what ``skip_objects`` names; printers
report the skipped ones in ``s_obj``. A printer reports the running plate as
a G-code path (``/data/Metadata/plate_2.gcode``), see :func:`plate_index`.

The file comes from the printer's storage, so it is untrusted: members are
read with hard size limits (a zip's declared sizes can lie, so reads are
bounded too), the XML is parsed with expat with every document type
declaration refused (no entity can expand), and a missing member is simply
absent from the result. Parsing is CPU work: run it in an executor.

Nothing here imports Home Assistant.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, NoReturn
from xml.parsers import expat

from .errors import BambuError
from .models import BedType
from .values import as_bool, as_enum, as_float

SLICE_INFO: Final = "Metadata/slice_info.config"
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# slice_info.config is a few kilobytes; even hundreds of objects stay far
# below this.
MAX_CONFIG_BYTES: Final = 4 * 1024 * 1024
# Plate thumbnails are 512x512 PNGs, some hundred kilobytes.
MAX_THUMBNAIL_BYTES: Final = 8 * 1024 * 1024
MAX_MEMBERS: Final = 10_000
# Members above this size must not inflate more than MAX_RATIO times: XML
# compresses well, but not a thousandfold at this size.
_RATIO_FLOOR: Final = 1024 * 1024
MAX_RATIO: Final = 200
MAX_OBJECTS: Final = 4096
MAX_NAME_CHARS: Final = 256

# ASCII digits only: ``\d`` would take other scripts' digits, which int() reads.
_PLATE_GCODE = re.compile(r"(?:^|/)Metadata/plate_([0-9]{1,4})\.gcode$")


def plate_index(gcode_path: str | None) -> int | None:
    """The plate a printer's G-code path names (``.../Metadata/plate_2.gcode`` -> 2).

    None for anything else (a plain ``.gcode`` file, a ``.3mf`` name).
    """
    if not gcode_path:
        return None
    match = _PLATE_GCODE.search(gcode_path.strip())
    if match is None:
        return None
    index = int(match[1])
    return index if index > 0 else None


class ProjectFileErrorReason(StrEnum):
    """Why a project file could not be read."""

    NOT_ZIP = "not_zip"
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"


class ProjectFileError(BambuError):
    """A project file that cannot be read safely; ``reason`` says why."""

    def __init__(
        self, reason: ProjectFileErrorReason, member: str | None = None
    ) -> None:
        """Keep the reason and the member it is about."""
        super().__init__(reason.value if member is None else f"{reason}: {member}")
        self.reason = reason
        self.member = member


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintObject:
    """A printable object of a plate: the id ``skip_objects`` takes, its name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlateFilament:
    """A filament a plate uses, as sliced (estimates)."""

    id: int
    type: str | None = None
    # "#RRGGBB" or "#RRGGBBAA" as the slicer wrote it.
    color: str | None = None
    used_m: float | None = None
    used_g: float | None = None


def _total(values: tuple[float | None, ...]) -> float | None:
    """The sum of the known values, None when none is known."""
    known = [value for value in values if value is not None]
    return sum(known) if known else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlateInfo:
    """One plate of a project file."""

    index: int
    objects: tuple[PrintObject, ...] = ()
    # The PNG of Metadata/plate_<n>.png, None when missing or not a PNG.
    thumbnail: bytes | None = field(default=None, repr=False)
    # The slicer's estimates: print time (seconds) and filament weight (grams).
    prediction: int | None = None
    weight: float | None = None
    # Whether objects were labelled when slicing: without it, none can be
    # skipped. None when the file does not say.
    label_objects: bool | None = None
    filaments: tuple[PlateFilament, ...] = ()
    # The build plate the plate was sliced for (Metadata/plate_<n>.json).
    bed_type: BedType | None = None

    @property
    def filament_weight(self) -> float | None:
        """Grams of filament: the plate's weight, else its filaments' sum."""
        if self.weight is not None:
            return self.weight
        return _total(tuple(filament.used_g for filament in self.filaments))

    @property
    def filament_length(self) -> float | None:
        """Metres of filament, summed over the plate's filaments."""
        return _total(tuple(filament.used_m for filament in self.filaments))


def read_plate(data: bytes, plate: int = 1) -> PlateInfo:
    """Read one plate's objects, thumbnail and estimates from a project file.

    Missing members leave their part empty. Raises ProjectFileError for
    something that is not a zip, too large a member or malformed XML.
    """
    with _open(data) as archive:
        raw = _member(archive, SLICE_INFO, MAX_CONFIG_BYTES)
        plates = {} if raw is None else _parse_slice_info(raw)
        thumbnail = _member(archive, f"Metadata/plate_{plate}.png", MAX_THUMBNAIL_BYTES)
        plate_json = _member(archive, f"Metadata/plate_{plate}.json", MAX_CONFIG_BYTES)
    bed_type = None if plate_json is None else _bed_type(plate_json)
    if thumbnail is not None and not thumbnail.startswith(PNG_SIGNATURE):
        thumbnail = None
    found = plates.get(plate)
    if found is None:
        return PlateInfo(index=plate, thumbnail=thumbnail, bed_type=bed_type)
    meta = found.metadata
    return PlateInfo(
        index=plate,
        objects=tuple(found.objects),
        thumbnail=thumbnail,
        prediction=_int(meta.get("prediction")),
        weight=as_float(meta.get("weight")),
        label_objects=as_bool(meta.get("label_object_enabled")),
        filaments=tuple(found.filaments),
        bed_type=bed_type,
    )


def plate_indexes(data: bytes) -> tuple[int, ...]:
    """The plates a project file has G-code for, in order."""
    with _open(data) as archive:
        found = {
            index
            for name in archive.namelist()
            if (index := plate_index(name)) is not None
        }
    return tuple(sorted(found))


# ---------------------------------------------------------------- the zip


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ProjectFileError(ProjectFileErrorReason.NOT_ZIP) from err
    if len(archive.infolist()) > MAX_MEMBERS:
        archive.close()
        raise ProjectFileError(ProjectFileErrorReason.TOO_LARGE)
    return archive


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    """A member's content, at most ``limit`` bytes; None when absent."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    too_large = ProjectFileError(ProjectFileErrorReason.TOO_LARGE, name)
    if info.file_size > limit:
        raise too_large
    if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(
        info.compress_size, 1
    ):
        raise too_large
    try:
        with archive.open(info) as member:
            content = member.read(limit + 1)
    except (
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
    ) as err:
        raise ProjectFileError(ProjectFileErrorReason.MALFORMED, name) from err
    if len(content) > limit:  # pragma: no cover - zipfile stops at the declared size
        raise too_large
    return content


# ---------------------------------------------------------------- the JSON


def _bed_type(raw: bytes) -> BedType | None:
    """The plate's ``bed_type``; None when unknown or the JSON is malformed.

    The bed type is an extra: a plate file that cannot be read leaves it
    unknown rather than failing the objects and thumbnail. ``json`` has no
    entities to expand; nesting too deep raises RecursionError.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return as_enum(BedType, data.get("bed_type")) if isinstance(data, dict) else None


# ---------------------------------------------------------------- the XML


@dataclass(slots=True)
class _Plate:
    metadata: dict[str, str] = field(default_factory=dict)
    objects: list[PrintObject] = field(default_factory=list)
    filaments: list[PlateFilament] = field(default_factory=list)


def _refuse(*_: object) -> NoReturn:
    raise ProjectFileError(ProjectFileErrorReason.MALFORMED, SLICE_INFO)


def _parse_slice_info(raw: bytes) -> dict[int, _Plate]:
    """Plates by index; entities and document types are refused outright."""
    plates: list[_Plate] = []
    stack: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        parent = stack[-1] if stack else None
        stack.append(tag)
        if tag == "plate" and len(stack) == 2:
            plates.append(_Plate())
        elif parent == "plate" and len(stack) == 3 and plates:
            _plate_child(plates[-1], tag, attrs)

    def end(tag: str) -> None:
        stack.pop()

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as err:
        raise ProjectFileError(ProjectFileErrorReason.MALFORMED, SLICE_INFO) from err
    found: dict[int, _Plate] = {}
    for plate in plates:
        index = _int(plate.metadata.get("index"))
        if index is not None and index not in found:
            found[index] = plate
    return found


def _plate_child(plate: _Plate, tag: str, attrs: Mapping[str, str]) -> None:
    if tag == "metadata":
        key = attrs.get("key")
        if key is not None:
            plate.metadata.setdefault(key, attrs.get("value", ""))
    elif tag == "object" and len(plate.objects) < MAX_OBJECTS:
        identify = _int(attrs.get("identify_id"))
        if identify is not None:
            name = _text(attrs.get("name")) or str(identify)
            plate.objects.append(PrintObject(id=identify, name=name))
    elif tag == "filament" and len(plate.filaments) < MAX_OBJECTS:
        number = _int(attrs.get("id"))
        if number is not None:
            plate.filaments.append(
                PlateFilament(
                    id=number,
                    type=_text(attrs.get("type")),
                    color=_text(attrs.get("color")),
                    used_m=as_float(attrs.get("used_m")),
                    used_g=as_float(attrs.get("used_g")),
                )
            )


def _text(value: str | None) -> str | None:
    """Printable text of bounded length, None when empty."""
    if value is None:
        return None
    cleaned = "".join(char for char in value if char.isprintable()).strip()
    return cleaned[:MAX_NAME_CHARS] or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)

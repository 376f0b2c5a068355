"""Sliced Bambu project files (``.3mf``) made at run time, for tests and the farm.

A project is a zip shaped like the ones Bambu Studio writes for a sliced
plate: the 3MF package parts, ``Metadata/slice_info.config`` listing the
plate's printable objects (``identify_id`` + name), its estimates and
filaments (grams and metres used), ``Metadata/plate_<n>.json`` (the build
plate it was sliced for and the objects' bounding boxes),
``Metadata/plate_<n>.png`` (a real PNG drawn with Pillow: the
objects seen from above on the build plate) and ``Metadata/plate_<n>.gcode``
(a few lines of G-code with the header Bambu Studio writes).

Nothing is copied from a real file: everything is generated here.
Blocking (drawing, zipping, a few milliseconds): run it in an executor from
async code.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from PIL import Image, ImageDraw

THUMBNAIL_SIZE = (256, 256)
_OBJECT_KINDS = ("Body", "Lid", "Clip", "Bracket", "Spacer", "Knob")


@dataclass(frozen=True, slots=True)
class SampleObject:
    """A printable object of the sample plate."""

    identify_id: int
    name: str


def sample_objects(title: str, count: int | None = None) -> tuple[SampleObject, ...]:
    """3 or 4 named objects for a project (stable for a title).

    Ids grow in uneven steps, like the ones Bambu Studio assigns.
    """
    digest = hashlib.sha256(title.encode()).digest()
    count = count if count is not None else 3 + digest[0] % 2
    objects = []
    identify = 60 + digest[1] % 40
    for number in range(count):
        kind = _OBJECT_KINDS[(digest[2] + number) % len(_OBJECT_KINDS)]
        objects.append(SampleObject(identify, f"{title} {kind} {number + 1}"))
        identify += 50 + digest[3 + number] % 30
    return tuple(objects)


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return 64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160


def plate_png(title: str, objects: Sequence[SampleObject]) -> bytes:
    """The plate seen from above: one coloured shape per object."""
    width, height = THUMBNAIL_SIZE
    image = Image.new("RGB", THUMBNAIL_SIZE, (44, 46, 52))
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 16, width - 16, height - 16), fill=(70, 73, 80))
    colour = _colour(title)
    columns = 2
    cell = (width - 64) // columns
    for number, _ in enumerate(objects):
        left = 32 + (number % columns) * cell
        top = 32 + (number // columns) * cell
        box = (left + 8, top + 8, left + cell - 8, top + cell - 8)
        if number % 2:
            draw.ellipse(box, fill=colour)
        else:
            draw.rounded_rectangle(box, radius=10, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def slice_info(
    objects: Sequence[SampleObject],
    *,
    plate: int = 1,
    prediction: int = 3600,
    weight: float = 12.5,
    filament_type: str = "PLA",
    colour: str = "#F2754EFF",
) -> str:
    """``Metadata/slice_info.config`` for one plate."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<config>",
        "  <header>",
        '    <header_item key="X-BBL-Client-Type" value="slicer"/>',
        '    <header_item key="X-BBL-Client-Version" value="02.00.00.00"/>',
        "  </header>",
        "  <plate>",
        f'    <metadata key="index" value="{plate}"/>',
        '    <metadata key="nozzle_diameters" value="0.4"/>',
        f'    <metadata key="prediction" value="{prediction}"/>',
        f'    <metadata key="weight" value="{weight:.2f}"/>',
        '    <metadata key="outside" value="false"/>',
        '    <metadata key="support_used" value="false"/>',
        '    <metadata key="label_object_enabled" value="true"/>',
    ]
    lines += [
        f"    <object identify_id={quoteattr(str(obj.identify_id))} "
        f'name={quoteattr(obj.name)} skipped="false"/>'
        for obj in objects
    ]
    metres = weight / 2.98
    lines += [
        f'    <filament id="1" tray_info_idx="GFA00" type={quoteattr(filament_type)} '
        f'color={quoteattr(colour)} used_m="{metres:.2f}" used_g="{weight:.2f}"/>',
        "  </plate>",
        "</config>",
        "",
    ]
    return "\n".join(lines)


def plate_json(
    objects: Sequence[SampleObject], *, bed_type: str = "textured_plate"
) -> str:
    """``Metadata/plate_<n>.json``: bed type, objects' boxes on the plate."""
    boxes = []
    for number, obj in enumerate(objects):
        left = 20.0 + (number % 2) * 60.0
        front = 20.0 + (number // 2) * 60.0
        boxes.append(
            {
                "area": 1600.0,
                "bbox": [left, front, left + 40.0, front + 40.0],
                "id": obj.identify_id,
                "layer_height": 0.2,
                "name": obj.name,
            }
        )
    return json.dumps(
        {
            "bbox_all": [20.0, 20.0, 140.0, 140.0],
            "bbox_objects": boxes,
            "bed_type": bed_type,
            "filament_colors": ["#F2754E"],
            "filament_ids": [0],
            "first_extruder": 0,
            "is_seq_print": False,
            "nozzle_diameter": 0.4,
            "version": 2,
        },
        indent=4,
    )


def _gcode(title: str, plate: int, prediction: int, weight: float) -> str:
    hours, rest = divmod(prediction, 3600)
    return "\n".join(
        [
            "; HEADER_BLOCK_START",
            "; generated by the virtual printer's project files",
            f"; model printing time: {hours}h {rest // 60}m; total estimated time: "
            f"{hours}h {rest // 60 + 5}m",
            f"; total filament weight [g] : {weight:.2f}",
            "; HEADER_BLOCK_END",
            f"; plate {plate} of {title}",
            "M73 P0 R60",
            "G28",
            "M104 S220",
            "M140 S60",
            "G1 X10 Y10 Z0.2 F3000",
            "M73 P100 R0",
            "",
        ]
    )


_PACKAGE = "application/vnd.openxmlformats-package.relationships+xml"
_MODEL_TYPE = "application/vnd.ms-package.3dmanufacturing-3dmodel+xml"
_CONTENT_TYPES = f"""<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
 <Default Extension="rels" ContentType="{_PACKAGE}"/>
 <Default Extension="model" ContentType="{_MODEL_TYPE}"/>
 <Default Extension="png" ContentType="image/png"/>
 <Default Extension="gcode" ContentType="text/x.gcode"/>
</Types>
"""
_RELS = """<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
 <Relationship Target="/3D/3dmodel.model" Id="rel-1" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>
</Relationships>
"""


def _model(objects: Sequence[SampleObject]) -> str:
    """A 3MF model with one tiny tetrahedron per object (valid, not pretty)."""
    parts = []
    for number, obj in enumerate(objects, start=1):
        parts.append(
            f'  <object id="{number}" type="model" name={quoteattr(obj.name)}>'
            "<mesh><vertices>"
            '<vertex x="0" y="0" z="0"/><vertex x="10" y="0" z="0"/>'
            '<vertex x="0" y="10" z="0"/><vertex x="0" y="0" z="10"/>'
            "</vertices><triangles>"
            '<triangle v1="0" v2="2" v3="1"/><triangle v1="0" v2="1" v3="3"/>'
            '<triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/>'
            "</triangles></mesh></object>"
        )
    items = "".join(
        f'<item objectid="{number}"/>' for number in range(1, len(objects) + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<model unit="millimeter" xml:lang="en-US" '
        'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">\n'
        " <resources>\n" + "\n".join(parts) + "\n </resources>\n"
        f" <build>{items}</build>\n</model>\n"
    )


def sample_project(
    title: str,
    *,
    objects: Sequence[SampleObject] | None = None,
    plate: int = 1,
    prediction: int = 3600,
    weight: float = 12.5,
    bed_type: str | None = "textured_plate",
) -> bytes:
    """A sliced project file (``.gcode.3mf``) with one plate, as bytes.

    ``bed_type`` None leaves out ``plate_<n>.json`` (older slicers).
    """
    objects = tuple(objects) if objects is not None else sample_objects(title)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("3D/3dmodel.model", _model(objects))
        archive.writestr(
            "Metadata/slice_info.config",
            slice_info(objects, plate=plate, prediction=prediction, weight=weight),
        )
        archive.writestr(f"Metadata/plate_{plate}.png", plate_png(title, objects))
        if bed_type is not None:
            archive.writestr(
                f"Metadata/plate_{plate}.json", plate_json(objects, bed_type=bed_type)
            )
        archive.writestr(
            f"Metadata/plate_{plate}.gcode", _gcode(title, plate, prediction, weight)
        )
    return buffer.getvalue()

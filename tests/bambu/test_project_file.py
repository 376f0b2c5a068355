"""Tests for the project file reader (custom_components/.../bambu/project_file.py).

Project files are generated at run time (tools/virtual_printer/project_files.py)
or built here member by member for the malformed and hostile cases.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from custom_components.bambu_cloud.bambu.models import BedType
from custom_components.bambu_cloud.bambu.project_file import (
    MAX_CONFIG_BYTES,
    MAX_MEMBERS,
    PNG_SIGNATURE,
    SLICE_INFO,
    PlateFilament,
    PlateInfo,
    PrintObject,
    ProjectFileError,
    ProjectFileErrorReason,
    plate_index,
    plate_indexes,
    read_plate,
)
from tools.virtual_printer.project_files import (
    SampleObject,
    sample_objects,
    sample_project,
    slice_info,
)


def zip_of(members: dict[str, bytes | str], *, stored: bool = False) -> bytes:
    """A zip with these members."""
    buffer = io.BytesIO()
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/data/Metadata/plate_2.gcode", 2),
        ("Metadata/plate_1.gcode", 1),
        (" /data/Metadata/plate_12.gcode ", 12),
        ("/data/Metadata/plate_0.gcode", None),
        ("Benchy.gcode.3mf", None),
        ("/sdcard/plate_2.gcode", None),
        ("/data/Metadata/plate_x.gcode", None),
        ("", None),
        (None, None),
    ],
)
def test_plate_index(path: str | None, expected: int | None) -> None:
    """The plate of a printer's G-code path; None for anything else."""
    assert plate_index(path) == expected


def test_reads_a_generated_project() -> None:
    """Objects, thumbnail, estimates and filaments of plate 1."""
    objects = (
        SampleObject(75, "Cube"),
        SampleObject(137, 'Cylinder <&> "quoted"'),
        SampleObject(199, "Cone"),
    )
    data = sample_project("Shapes", objects=objects, prediction=5140, weight=16.86)

    plate = read_plate(data, 1)

    assert plate.index == 1
    assert plate.objects == (
        PrintObject(id=75, name="Cube"),
        PrintObject(id=137, name='Cylinder <&> "quoted"'),
        PrintObject(id=199, name="Cone"),
    )
    assert plate.prediction == 5140
    assert plate.weight == 16.86
    assert plate.label_objects is True
    assert plate.filaments == (
        PlateFilament(id=1, type="PLA", color="#F2754EFF", used_m=5.66, used_g=16.86),
    )
    assert plate.bed_type is BedType.TEXTURED_PLATE
    assert (plate.filament_weight, plate.filament_length) == (16.86, 5.66)
    assert plate.thumbnail is not None
    assert plate.thumbnail.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(plate.thumbnail)) as image:
        assert image.size == (256, 256)
    assert "thumbnail" not in repr(plate)
    assert plate_indexes(data) == (1,)


def _filaments_info(weight: str | None, filaments: str) -> str:
    weight_line = "" if weight is None else f'<metadata key="weight" value="{weight}"/>'
    return (
        '<config><plate><metadata key="index" value="1"/>'
        f"{weight_line}{filaments}</plate></config>"
    )


@pytest.mark.parametrize(
    ("weight", "filaments", "grams", "metres"),
    [
        # Two filaments, no plate weight: their sums.
        (
            None,
            '<filament id="1" used_m="1.5" used_g="4.5"/>'
            '<filament id="2" used_m="2.25" used_g="7"/>',
            11.5,
            3.75,
        ),
        # The plate's weight wins over the filaments' grams.
        ("20", '<filament id="1" used_m="3" used_g="9"/>', 20.0, 3.0),
        # A filament without figures counts for nothing.
        (None, '<filament id="1" used_m="2"/><filament id="2" used_g="x"/>', None, 2.0),
        (None, "", None, None),
        ("nan", '<filament id="1"/>', None, None),
    ],
)
def test_filament_totals(
    weight: str | None, filaments: str, grams: float | None, metres: float | None
) -> None:
    """Grams: the plate's weight, else its filaments'; metres: their sum."""
    data = zip_of({SLICE_INFO: _filaments_info(weight, filaments)})

    plate = read_plate(data, 1)

    assert (plate.filament_weight, plate.filament_length) == (grams, metres)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps({"bed_type": "supertack_plate"}), BedType.SUPERTACK_PLATE),
        (
            json.dumps({"bed_type": "eng_plate", "version": 2}),
            BedType.ENGINEERING_PLATE,
        ),
        (json.dumps({"bed_type": "auto"}), None),
        (json.dumps({"bed_type": "Textured PEI Plate"}), None),
        (json.dumps({"bed_type": 3}), None),
        (json.dumps({"version": 2}), None),
        (json.dumps(["textured_plate"]), None),
        ("{not json", None),
        (b"\xff\xfe{}", None),
        ("[" * 100_000 + "]" * 100_000, None),
    ],
)
def test_bed_type(content: str | bytes, expected: BedType | None) -> None:
    """The plate's bed type from plate_<n>.json; anything odd leaves it unknown."""
    data = zip_of(
        {
            SLICE_INFO: slice_info([SampleObject(5, "A")], plate=2),
            "Metadata/plate_2.json": content,
            "Metadata/plate_1.json": json.dumps({"bed_type": "cool_plate"}),
        }
    )

    plate = read_plate(data, 2)

    assert plate.bed_type is expected
    # An unreadable plate_<n>.json costs the bed type only.
    assert plate.objects == (PrintObject(id=5, name="A"),)
    # Plate 1 is not in slice_info: still its bed type.
    assert read_plate(data, 1) == PlateInfo(index=1, bed_type=BedType.COOL_PLATE)


def test_bed_type_too_large() -> None:
    """A plate_<n>.json beyond the configuration limit is refused."""
    data = zip_of({"Metadata/plate_1.json": b" " * (MAX_CONFIG_BYTES + 1)})

    with pytest.raises(ProjectFileError) as err:
        read_plate(data, 1)

    assert err.value.reason is ProjectFileErrorReason.TOO_LARGE
    assert err.value.member == "Metadata/plate_1.json"


def test_sample_project_without_plate_json() -> None:
    """Older slicers write no plate_<n>.json: no bed type."""
    assert read_plate(sample_project("Old", bed_type=None)).bed_type is None


def test_sample_objects_are_stable() -> None:
    """3 or 4 named objects per title, the same each time, ids increasing."""
    first = sample_objects("Benchy")
    assert first == sample_objects("Benchy")
    assert 3 <= len(first) <= 4
    ids = [obj.identify_id for obj in first]
    assert ids == sorted(set(ids))
    assert len(sample_objects("Benchy", 2)) == 2


def test_another_plate_of_the_file() -> None:
    """The plate asked for, not the first one."""
    info = slice_info([SampleObject(1, "A")], plate=1)
    info2 = slice_info([SampleObject(8, "B"), SampleObject(9, "C")], plate=2)
    merged = info.replace(
        "</config>", info2.split("<config>", 1)[1].split("</config>")[0] + "</config>"
    )
    data = zip_of(
        {
            SLICE_INFO: merged,
            "Metadata/plate_1.gcode": "G28",
            "Metadata/plate_2.gcode": "G28",
            "Metadata/plate_2.png": PNG_SIGNATURE + b"rest",
        }
    )

    plate = read_plate(data, 2)

    assert [obj.id for obj in plate.objects] == [8, 9]
    assert plate.thumbnail == PNG_SIGNATURE + b"rest"
    assert read_plate(data, 1).thumbnail is None
    assert plate_indexes(data) == (1, 2)


def test_missing_members_leave_parts_empty() -> None:
    """No slice_info, no thumbnail: an empty plate, not an error."""
    plate = read_plate(zip_of({"3D/3dmodel.model": "<model/>"}), 3)

    assert plate == PlateInfo(index=3)


def test_plate_missing_from_slice_info() -> None:
    """A plate slice_info does not describe has no objects."""
    data = zip_of({SLICE_INFO: slice_info([SampleObject(1, "A")], plate=1)})

    assert read_plate(data, 2) == PlateInfo(index=2)


def test_thumbnail_that_is_not_a_png_is_dropped() -> None:
    """Only a PNG is offered as a picture."""
    data = zip_of({"Metadata/plate_1.png": b"<html>not a picture</html>"})

    assert read_plate(data).thumbnail is None


def test_odd_values_are_tolerated() -> None:
    """Bad numbers become None; objects without a usable id are dropped."""
    xml = """<?xml version="1.0"?>
<config>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="index" value="7"/>
    <metadata key="prediction" value="-5"/>
    <metadata key="weight" value="nan"/>
    <metadata key="label_object_enabled" value="maybe"/>
    <metadata value="no key"/>
    <object identify_id="12" name="  "/>
    <object identify_id="x" name="No id"/>
    <object name="Missing id"/>
    <object identify_id="13" name="Tab&#9;here"/>
    <filament id="2" used_g="1e999" used_m="abc" color="" />
    <filament id="z"/>
    <nested><object identify_id="99" name="Not a plate child"/></nested>
  </plate>
  <plate>
    <metadata key="index" value="1"/>
    <object identify_id="50" name="Duplicate plate"/>
  </plate>
  <plate><metadata key="index" value="none"/></plate>
  <object identify_id="98" name="Outside a plate"/>
</config>
"""
    plate = read_plate(zip_of({SLICE_INFO: xml}), 1)

    assert plate.objects == (
        PrintObject(id=12, name="12"),
        PrintObject(id=13, name="Tabhere"),
    )
    assert plate.prediction is None
    assert plate.weight is None
    assert plate.label_objects is None
    assert plate.filaments == (PlateFilament(id=2),)


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("0", False), ("False", False)]
)
def test_label_objects(value: str, expected: bool) -> None:
    """The slicer's label_object_enabled flag."""
    xml = (
        '<config><plate><metadata key="index" value="1"/>'
        f'<metadata key="label_object_enabled" value="{value}"/></plate></config>'
    )

    assert read_plate(zip_of({SLICE_INFO: xml})).label_objects is expected


def test_very_long_name_is_cut() -> None:
    """Names are bounded."""
    xml = (
        '<config><plate><metadata key="index" value="1"/>'
        f'<object identify_id="1" name="{"n" * 1000}"/></plate></config>'
    )

    (obj,) = read_plate(zip_of({SLICE_INFO: xml})).objects
    assert obj.name == "n" * 256


# ---------------------------------------------------------- hostile input


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_not_a_zip(data: bytes) -> None:
    """Anything that is not a zip is NOT_ZIP."""
    with pytest.raises(ProjectFileError) as caught:
        read_plate(data)
    assert caught.value.reason is ProjectFileErrorReason.NOT_ZIP
    with pytest.raises(ProjectFileError):
        plate_indexes(data)


@pytest.mark.parametrize(
    "xml",
    [
        "<config><plate>",
        "not xml",
        "<config></plate></config>",
    ],
)
def test_malformed_xml(xml: str) -> None:
    """Broken XML is MALFORMED, naming the member."""
    with pytest.raises(ProjectFileError) as caught:
        read_plate(zip_of({SLICE_INFO: xml}))
    assert caught.value.reason is ProjectFileErrorReason.MALFORMED
    assert caught.value.member == SLICE_INFO
    assert str(caught.value) == f"malformed: {SLICE_INFO}"


@pytest.mark.parametrize(
    "xml",
    [
        # Billion laughs: entities expanding entities.
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<config>&lol2;</config>",
        # An external entity.
        '<?xml version="1.0"?><!DOCTYPE config [<!ENTITY x SYSTEM '
        '"file:///etc/passwd">]><config>&x;</config>',
        # A bare document type.
        '<!DOCTYPE config SYSTEM "http://example.invalid/x.dtd"><config/>',
        # Hidden in UTF-16.
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE c [<!ENTITY a "b">]><c/>',
    ],
)
def test_document_types_are_refused(xml: str) -> None:
    """No DOCTYPE at all: no entity can ever expand."""
    encoding = "utf-16" if "UTF-16" in xml else "utf-8"
    data = zip_of({SLICE_INFO: xml.encode(encoding)})

    with pytest.raises(ProjectFileError) as caught:
        read_plate(data)
    assert caught.value.reason is ProjectFileErrorReason.MALFORMED


def test_zip_bomb_by_declared_size() -> None:
    """A member declaring more than the limit is never inflated."""
    data = zip_of({SLICE_INFO: b" " * (MAX_CONFIG_BYTES + 1)})

    with pytest.raises(ProjectFileError) as caught:
        read_plate(data)
    assert caught.value.reason is ProjectFileErrorReason.TOO_LARGE
    assert caught.value.member == SLICE_INFO


def test_zip_bomb_by_ratio() -> None:
    """Within the size limit but inflating far too much: refused."""
    data = zip_of({SLICE_INFO: b"\0" * (3 * 1024 * 1024)})

    with pytest.raises(ProjectFileError) as caught:
        read_plate(data)
    assert caught.value.reason is ProjectFileErrorReason.TOO_LARGE


def lying_zip(real: bytes, declared: int) -> bytes:
    """A stored member whose headers declare ``declared`` bytes (a lie)."""
    data = bytearray(zip_of({SLICE_INFO: real}, stored=True))
    size = declared.to_bytes(4, "little")
    # Local header: compressed and uncompressed sizes at offsets 18 and 22.
    data[18:22] = size
    data[22:26] = size
    # Central directory entry: the same fields at offsets 20 and 24.
    central = data.find(b"PK\x01\x02")
    data[central + 20 : central + 24] = size
    data[central + 24 : central + 28] = size
    return bytes(data)


def test_member_lying_about_its_size() -> None:
    """Headers that lie make a MALFORMED member, never an unbounded read."""
    data = lying_zip(b"<config/>" * 10, 10)

    with pytest.raises(ProjectFileError) as caught:
        read_plate(data)
    assert caught.value.reason is ProjectFileErrorReason.MALFORMED


def test_corrupt_member() -> None:
    """A member whose data fails its CRC is MALFORMED."""
    data = bytearray(zip_of({SLICE_INFO: b"<config/>" * 50}, stored=True))
    data[40] ^= 0xFF

    with pytest.raises(ProjectFileError) as caught:
        read_plate(bytes(data))
    assert caught.value.reason is ProjectFileErrorReason.MALFORMED


def test_too_many_members() -> None:
    """A zip listing absurdly many members is refused before reading any."""
    data = zip_of({f"m/{number}": b"" for number in range(MAX_MEMBERS + 1)})

    with pytest.raises(ProjectFileError) as caught:
        read_plate(data)
    assert caught.value.reason is ProjectFileErrorReason.TOO_LARGE
    assert str(caught.value) == "too_large"

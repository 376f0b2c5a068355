"""Facts about Bambu Lab's services and printer models.

The region table is the only place that names Bambu Lab's hosts. Home
Assistant's glue builds the library's configuration (``config.BambuConfig``)
from it; tests and the demo build their own configuration instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Region(StrEnum):
    """Account regions; accounts and tokens are region specific."""

    GLOBAL = "global"
    CHINA = "china"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionEndpoints:
    """Where a region's services live."""

    api_url: str
    web_url: str
    mqtt_host: str
    mqtt_port: int = 8883
    # Extra CA (PEM) the cloud broker's certificate chains to. None for Bambu
    # Lab's brokers, whose certificates are publicly trusted; a configuration
    # for a private broker (a test's, the virtual farm's) names its CA here.
    mqtt_ca_pem: str | None = None
    # Bambu Studio's HMS text service: descriptions of HMS and print error
    # codes per model and language (PROTOCOL.md, HMS). None = no texts.
    hms_url: str | None = None


REGIONS: dict[Region, RegionEndpoints] = {
    Region.GLOBAL: RegionEndpoints(
        api_url="https://api.bambulab.com",
        web_url="https://bambulab.com",
        mqtt_host="us.mqtt.bambulab.com",
        hms_url="https://e.bambulab.com",
    ),
    Region.CHINA: RegionEndpoints(
        api_url="https://api.bambulab.cn",
        web_url="https://bambulab.cn",
        mqtt_host="cn.mqtt.bambulab.com",
        hms_url="https://e.bambulab.com",
    ),
}


class StorageUrl(StrEnum):
    """How ``project_file`` names a file on the printer's own storage.

    Models whose firmware reads the SD card by path take ``file:///sdcard/``;
    the P2S keeps its files on USB storage; the H2 series and the X2D take the
    FTP form that Bambu Studio uses for a file it uploaded over FTPS.
    """

    SDCARD = "file:///sdcard/"
    USB = "file:///media/usb0/"
    FTP = "ftp://"


class CameraKind(StrEnum):
    """How a model streams its camera on the LAN."""

    RTSPS = "rtsps"
    JPEG = "jpeg"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterModel:
    """One printer model and what it can do."""

    name: str
    model_ids: tuple[str, ...]
    serial_prefixes: tuple[str, ...]
    camera: CameraKind
    chamber_sensor: bool = False
    chamber_heater: bool = False
    nozzles: int = 1
    max_nozzle_temp: int = 300
    max_bed_temp: int = 110
    max_chamber_temp: int = 0
    work_light: bool = False
    second_chamber_light: bool = False
    ams_lite: bool = False
    enclosed: bool = True
    # Lidar for first-layer inspection (X1 family).
    lidar: bool = False
    # Prompt sound toggle (print_option sound_enable).
    prompt_sound: bool = False
    # Fans besides part cooling: aux (M106 P2), chamber (P3), and the
    # secondary aux fan of the P2S and X2D (P10).
    aux_fan: bool = False
    chamber_fan: bool = False
    secondary_aux_fan: bool = False
    # Air duct mode (set_airduct: cooling / heating): P2S, H2 series, X2D.
    air_duct: bool = False
    # The buzzer command (buzzer_ctrl): H2 series.
    buzzer: bool = False
    # URL form of a file on the printer's storage for project_file.
    storage_url: StorageUrl = StorageUrl.SDCARD
    # Path of the model's HMS pages on Bambu Lab's wiki; None = the generic
    # HMS page (models the wiki has no section for).
    hms_wiki: str | None = None


MODELS: tuple[PrinterModel, ...] = (
    PrinterModel(
        name="X1 Carbon",
        model_ids=("BL-P001", "3DPrinter-X1-Carbon", "X1C"),
        serial_prefixes=("00M",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        work_light=True,
        lidar=True,
        aux_fan=True,
        chamber_fan=True,
        hms_wiki="x1",
    ),
    PrinterModel(
        name="X1",
        model_ids=("BL-P002", "3DPrinter-X1"),
        serial_prefixes=("00W",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        work_light=True,
        lidar=True,
        aux_fan=True,
        chamber_fan=True,
        hms_wiki="x1",
    ),
    PrinterModel(
        name="X1E",
        model_ids=("C13",),
        serial_prefixes=("03W",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=60,
        max_bed_temp=120,
        work_light=True,
        lidar=True,
        aux_fan=True,
        chamber_fan=True,
        hms_wiki="x1",
    ),
    PrinterModel(
        name="P1P",
        model_ids=("C11",),
        serial_prefixes=("01S",),
        camera=CameraKind.JPEG,
        max_bed_temp=100,
        enclosed=False,
        hms_wiki="p1",
    ),
    PrinterModel(
        name="P1S",
        model_ids=("C12",),
        serial_prefixes=("01P",),
        camera=CameraKind.JPEG,
        max_bed_temp=100,
        aux_fan=True,
        chamber_fan=True,
        hms_wiki="p1",
    ),
    PrinterModel(
        name="P2S",
        model_ids=("N7",),
        serial_prefixes=("22E",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=65,
        prompt_sound=True,
        aux_fan=True,
        chamber_fan=True,
        secondary_aux_fan=True,
        air_duct=True,
        storage_url=StorageUrl.USB,
        hms_wiki="p2s",
    ),
    PrinterModel(
        name="A1 mini",
        model_ids=("N1",),
        serial_prefixes=("030",),
        camera=CameraKind.JPEG,
        max_bed_temp=80,
        ams_lite=True,
        enclosed=False,
        prompt_sound=True,
        hms_wiki="a1-mini",
    ),
    PrinterModel(
        name="A1",
        model_ids=("N2S",),
        serial_prefixes=("039",),
        camera=CameraKind.JPEG,
        max_bed_temp=100,
        ams_lite=True,
        enclosed=False,
        prompt_sound=True,
        hms_wiki="a1",
    ),
    PrinterModel(
        name="A2L",
        model_ids=("N9",),
        serial_prefixes=("26A",),
        camera=CameraKind.JPEG,
        max_bed_temp=100,
        enclosed=False,
        prompt_sound=True,
    ),
    PrinterModel(
        name="H2D",
        model_ids=("O1D",),
        serial_prefixes=("094",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=65,
        max_nozzle_temp=350,
        max_bed_temp=120,
        nozzles=2,
        second_chamber_light=True,
        prompt_sound=True,
        aux_fan=True,
        chamber_fan=True,
        air_duct=True,
        buzzer=True,
        storage_url=StorageUrl.FTP,
        hms_wiki="h2d",
    ),
    PrinterModel(
        name="H2D Pro",
        model_ids=("O1E",),
        serial_prefixes=("239",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=65,
        max_nozzle_temp=350,
        max_bed_temp=120,
        nozzles=2,
        second_chamber_light=True,
        prompt_sound=True,
        aux_fan=True,
        chamber_fan=True,
        air_duct=True,
        buzzer=True,
        storage_url=StorageUrl.FTP,
        hms_wiki="h2d",
    ),
    PrinterModel(
        name="H2S",
        model_ids=("O1S",),
        serial_prefixes=("093",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=65,
        max_nozzle_temp=350,
        max_bed_temp=120,
        second_chamber_light=True,
        prompt_sound=True,
        aux_fan=True,
        chamber_fan=True,
        air_duct=True,
        buzzer=True,
        storage_url=StorageUrl.FTP,
        hms_wiki="h2d",
    ),
    PrinterModel(
        name="H2C",
        model_ids=("O1C", "O1C2"),
        serial_prefixes=("31B",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=65,
        max_nozzle_temp=350,
        max_bed_temp=120,
        second_chamber_light=True,
        prompt_sound=True,
        aux_fan=True,
        chamber_fan=True,
        air_duct=True,
        buzzer=True,
        storage_url=StorageUrl.FTP,
        hms_wiki="h2d",
    ),
    PrinterModel(
        name="X2D",
        model_ids=("N6",),
        serial_prefixes=("20P",),
        camera=CameraKind.RTSPS,
        chamber_sensor=True,
        chamber_heater=True,
        max_chamber_temp=65,
        max_nozzle_temp=350,
        max_bed_temp=120,
        nozzles=2,
        second_chamber_light=True,
        prompt_sound=True,
        aux_fan=True,
        chamber_fan=True,
        secondary_aux_fan=True,
        air_duct=True,
        storage_url=StorageUrl.FTP,
    ),
)

UNKNOWN_MODEL = PrinterModel(
    name="Unknown", model_ids=(), serial_prefixes=(), camera=CameraKind.NONE
)


def _normalise(name: str) -> str:
    """Fold a model name for comparison: case, spaces, dashes and brand."""
    folded = name.upper().replace("BAMBU LAB", "").replace(" ", "").replace("-", "")
    return folded.replace("CARBON", "C")


_BY_NAME: dict[str, PrinterModel] = {
    _normalise(key): model for model in MODELS for key in (model.name, *model.model_ids)
}


def lookup_model(
    *, product_name: str | None = None, model_id: str | None = None, serial: str = ""
) -> PrinterModel:
    """Find a model by marketing name, vendor model id or serial prefix."""
    for candidate in (product_name, model_id):
        if candidate and (model := _BY_NAME.get(_normalise(candidate))):
            return model
    prefix = serial[:3].upper()
    for model in MODELS:
        if prefix in model.serial_prefixes:
            return model
    return UNKNOWN_MODEL

"""The virtual farm: a fake Bambu cloud, its MQTT broker and N busy printers.

Everything listens on 127.0.0.1 only::

    async with VirtualFarm(printers=4, speed=20) as farm:
        farm.api_url, farm.mqtt_port, farm.token, farm.printers[0].lan_host

* HTTPS cloud (:class:`FarmCloud`): profile, bind, tasks (with covers served
  by the farm), device/version, login with password + e-mail code (or, for
  ``DEMO_TFA_ACCOUNT``, + the authenticator code ``DEMO_TFA_CODE``);
* the cloud MQTT broker (mosquitto, TLS, user ``u_<uid>`` / password = token,
  which may read reports and send requests only, like Bambu's);
* per printer: a :class:`VirtualPrinter` living through jobs
  (:class:`JobRunner`), its own LAN MQTT broker (mosquitto, user ``bblp`` /
  access code) and, for P1/A1 models, a port-6000 style camera server.
  Printer-side TLS uses the Bambu-shaped CA (``CN=<serial>``, no SAN) of
  :class:`tools.test_pki.FarmPKI`;
* ``lan_only`` more printers in LAN-only mode: bound to no account (the
  cloud does not list them, they are not on its broker), reachable only on
  their own LAN broker, alternately with Developer Mode on (controls work
  unsigned) and off (authorization firmware: ``print`` commands need a
  signature, reads and the light work). With ``notify_port`` they announce
  themselves with ``NOTIFY`` datagrams to ``127.0.0.1:<notify_port>``
  (:mod:`.notify`; never broadcast or multicast).

Certificates are made at start-up in a temporary directory removed on stop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tools.test_pki import FarmPKI, IssuedCert
from tools.virtual_printer.ftps import FtpsServer, FtpsSite
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import MODELS, VirtualPrinter

from . import images, storage
from .camera import CameraServer
from .cloud import bind_entry
from .cloud_farm import FarmCloud
from .hms import HMS_HEATBED_ATTR, HMS_HEATBED_CODE
from .jobs import (
    TASK_FAILED,
    TASK_FINISHED,
    TASK_RUNNING,
    TITLES,
    JobEvents,
    JobPlan,
    JobRunner,
)
from .notify import Announcement, NotifySender

_LOGGER = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEMO_UID = "4242424242"
DEMO_TOKEN = "virtual-farm-demo-token"
DEMO_ACCOUNT = "demo@virtual-farm.invalid"
DEMO_PASSWORD = "virtual-farm"
DEMO_CODE = "424242"
# An account that signs in with an authenticator app: same password, then
# this code on the "Authenticator code" step (the fake accepts it at any time).
DEMO_TFA_ACCOUNT = "demo-tfa@virtual-farm.invalid"
DEMO_TFA_CODE = "135790"
MODEL_CYCLE = ("X1C", "P1S", "A1MINI", "H2D")
MAX_TASKS = 200


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """How the cloud lists one model."""

    product: str
    model_id: str
    short: str
    camera: bool
    """Whether the model streams JPEG over port 6000 (P1/A1)."""


MODEL_INFO: dict[str, ModelInfo] = {
    "X1C": ModelInfo("X1 Carbon", "BL-P001", "X1C", camera=False),
    "P1S": ModelInfo("P1S", "C12", "P1S", camera=True),
    "A1MINI": ModelInfo("A1 mini", "N1", "A1 mini", camera=True),
    "H2D": ModelInfo("H2D", "O1D", "H2D", camera=False),
}


@dataclass(slots=True)
class FarmPrinter:
    """One printer of the farm and everything serving it."""

    index: int
    serial: str
    name: str
    model: str
    access_code: str
    printer: VirtualPrinter
    certificate: IssuedCert
    lan_broker: MqttBroker | None
    camera: CameraServer | None
    runner: JobRunner
    firmware_behind: bool
    cloud: bool = True
    """Bound to the farm's account; False: LAN-only mode, no cloud binding."""
    developer_mode: bool | None = None
    """LAN-only printers: whether ``print`` commands work unsigned."""

    @property
    def lan_host(self) -> str | None:
        """``127.0.0.1:<port>`` of the LAN MQTT broker (the options value)."""
        return None if self.lan_broker is None else f"{HOST}:{self.lan_broker.port}"

    @property
    def camera_port(self) -> int | None:
        """Port of the JPEG camera server (P1/A1 only)."""
        return None if self.camera is None else self.camera.port

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (state file, start-up banner)."""
        return {
            "serial": self.serial,
            "name": self.name,
            "model": self.model,
            "access_code": self.access_code,
            "lan_host": self.lan_host,
            "camera_port": self.camera_port,
            "firmware_behind": self.firmware_behind,
            "cloud": self.cloud,
            "developer_mode": self.developer_mode,
        }

    def announcement(self) -> Announcement:
        """What the printer says in its ``NOTIFY`` datagram."""
        return Announcement(
            serial=self.serial,
            model_id=MODEL_INFO[self.model].model_id,
            name=self.name,
            version=self.printer.spec.sw_ver,
            connect="cloud" if self.cloud else "lan",
            bind="occupied" if self.cloud else "free",
        )


def _newer(version: str) -> str:
    """The release after ``version`` ("01.08.02.00" -> "01.08.03.00")."""
    parts = version.split(".")
    parts[2] = f"{int(parts[2]) + 1:02d}"
    return ".".join(parts)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VirtualFarm:
    """Start with ``async with`` (or :meth:`start` / :meth:`stop`)."""

    def __init__(
        self,
        printers: int = 4,
        *,
        speed: float = 1.0,
        job_seconds: int = 180,
        idle_seconds: int = 20,
        api_port: int = 0,
        mqtt_port: int = 0,
        lan_base_port: int = 0,
        first_camera_port: int = 0,
        ftps_port: int = 0,
        lan: bool = True,
        cameras: bool = True,
        camera_interval: float = 1.0,
        seed: int = 0,
        lan_only: int = 0,
        notify_port: int | None = None,
        notify_interval: float = 5.0,
    ) -> None:
        """Configure the farm; nothing runs before :meth:`start`.

        ``lan_base_port`` 0 gives every server an ephemeral port; otherwise
        printer ``i`` gets its LAN broker on ``base + 2i`` and its camera on
        ``base + 2i + 1`` (stable across runs, for saved options).
        ``first_camera_port`` (e.g. 6000, where the integration looks for a
        P1/A1 camera) overrides the port of the first camera server.
        ``lan_only`` printers in LAN-only mode come after the account's
        (their LAN brokers next in the port range); with ``notify_port``
        they send ``NOTIFY`` datagrams to ``127.0.0.1:<notify_port>`` every
        ``notify_interval`` seconds.
        """
        if not 1 <= printers <= 100:
            raise ValueError("printers must be between 1 and 100")
        if not 0 <= lan_only <= 10:
            raise ValueError("lan_only must be between 0 and 10")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.count = printers
        self.lan_only = lan_only
        self.notify: NotifySender | None = (
            None
            if notify_port is None
            else NotifySender(
                self._announcements, port=notify_port, interval=notify_interval
            )
        )
        self.speed = speed
        self.job_seconds = job_seconds
        self.idle_seconds = idle_seconds
        self.lan = lan
        self.cameras = cameras
        self.camera_interval = camera_interval
        self.seed = seed
        self.uid = DEMO_UID
        self.token = DEMO_TOKEN
        self.account = DEMO_ACCOUNT
        self.password = DEMO_PASSWORD
        self.code = DEMO_CODE
        self.tfa_account = DEMO_TFA_ACCOUNT
        self.tfa_code = DEMO_TFA_CODE
        self.printers: list[FarmPrinter] = []
        self.pki: FarmPKI | None = None
        self.cloud = FarmCloud(
            tokens={DEMO_TOKEN: DEMO_UID},
            devices=[],
            passwords={DEMO_ACCOUNT: DEMO_PASSWORD, DEMO_TFA_ACCOUNT: DEMO_PASSWORD},
            tfa_codes={DEMO_TFA_ACCOUNT: DEMO_TFA_CODE},
            login_type="verifyCode",
            login_token=DEMO_TOKEN,
            code=DEMO_CODE,
            account=DEMO_ACCOUNT,
            nickname="Virtual Farm",
            product_models=[],
            request_log_size=500,
        )
        self.cloud.draw_cover = self._draw_cover
        self.broker: MqttBroker | None = None
        self._api_port = api_port
        self._mqtt_port = mqtt_port
        self._lan_base_port = lan_base_port
        self._first_camera_port = first_camera_port
        # Every printer's storage, one port: the client's SNI picks the printer.
        self._ftps_port = ftps_port
        self.ftps: FtpsServer | None = None
        self._directory: Path | None = None
        self._web: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._task_index: dict[int, dict[str, Any]] = {}

    # -- endpoints ---------------------------------------------------------

    @property
    def api_port(self) -> int:
        """Port of the HTTPS cloud."""
        return self._api_port

    @property
    def api_url(self) -> str:
        """Base URL of the HTTPS cloud (``https://127.0.0.1:<port>``)."""
        return f"https://{HOST}:{self._api_port}"

    @property
    def mqtt_port(self) -> int:
        """Port of the cloud MQTT broker (TLS)."""
        return self._mqtt_port

    @property
    def ftps_port(self) -> int:
        """Port of the FTPS server of every printer's storage (implicit TLS)."""
        return self._ftps_port

    @property
    def directory(self) -> Path:
        """The temporary directory holding the farm's certificates."""
        if self._directory is None:
            raise RuntimeError("the farm is not running")
        return self._directory

    def _pki(self) -> FarmPKI:
        if self.pki is None:
            raise RuntimeError("the farm is not running")
        return self.pki

    @property
    def cloud_ca_pem(self) -> str:
        """PEM of the CA of the HTTPS cloud and the cloud broker."""
        return self._pki().cloud_ca.pem

    @property
    def printer_ca_pem(self) -> str:
        """PEM of the Bambu-shaped printer CA."""
        return self._pki().printer_ca.pem

    @property
    def printer_ca_sha256(self) -> str:
        """SHA-256 of the printer CA: the pin of the demo's ``BambuConfig``."""
        return self._pki().printer_ca.sha256

    @property
    def lan_mqtt_port(self) -> int | None:
        """The first LAN-only printer's MQTT port, None without one.

        Printers announce a bare address and the integration adds the MQTT
        port of its configuration: the demo configures this one, so the
        printer it discovers at ``127.0.0.1`` is that printer.
        """
        first = next((p for p in self.printers if not p.cloud), None)
        if first is None or first.lan_broker is None:
            return None
        return first.lan_broker.port

    def describe(self) -> dict[str, Any]:
        """Everything a launcher needs, JSON-friendly (the state file)."""
        pki = self._pki()
        return {
            "api_url": self.api_url,
            "api_port": self.api_port,
            "mqtt_host": HOST,
            "mqtt_port": self.mqtt_port,
            "cloud_ca_file": str(pki.cloud_ca.cert_path),
            "cloud_ca_pem": pki.cloud_ca.pem,
            "printer_ca_file": str(pki.printer_ca.cert_path),
            "printer_ca_sha256": pki.printer_ca.sha256,
            "uid": self.uid,
            "token": self.token,
            "account": self.account,
            "password": self.password,
            "code": self.code,
            "speed": self.speed,
            "lan_mqtt_port": self.lan_mqtt_port,
            "ftps_port": self._ftps_port,
            "printers": [p.describe() for p in self.printers],
        }

    def write_state(self, path: Path) -> None:
        """Write :meth:`describe` as JSON, atomically, readable by the owner only."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.describe(), indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> VirtualFarm:
        """Start the farm."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the farm."""
        await self.stop()

    async def start(self) -> None:
        """Make the CAs, start every server and the printers' job loops."""
        if self._directory is not None:
            raise RuntimeError("the farm is already running")
        self._directory = Path(tempfile.mkdtemp(prefix="virtual-farm-"))
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        directory = self.directory
        self.pki = pki = await loop.run_in_executor(None, FarmPKI, directory / "pki")
        leaves = await loop.run_in_executor(
            None,
            lambda: [pki.printer_server(self._serial(i)) for i in range(self.count)],
        )
        lan_leaves = await loop.run_in_executor(
            None,
            lambda: [
                pki.printer_server(self._lan_only_serial(j))
                for j in range(self.lan_only)
            ],
        )
        cloud_ctx = pki.cloud_server.server_context()

        self.broker = MqttBroker(
            pki.cloud_server,
            port=self._mqtt_port,
            users={f"u_{self.uid}": self.token},
            restrict_topics=True,
        )
        await self.broker.start()
        self._mqtt_port = self.broker.port

        self._web = web.AppRunner(self.cloud.app(), access_log=None)
        await self._web.setup()
        site = web.TCPSite(self._web, HOST, self._api_port, ssl_context=cloud_ctx)
        await site.start()
        self._api_port = int(self._web.addresses[0][1])

        for index, leaf in enumerate(leaves):
            self.printers.append(await self._start_printer(index, leaf))
        for number, leaf in enumerate(lan_leaves):
            self.printers.append(await self._start_lan_only_printer(number, leaf))
        await self._start_storage()
        self._seed_history()
        self.cloud.product_models = sorted(
            {MODEL_INFO[p.model].product for p in self.printers if p.cloud}
        )
        for farm_printer in self.printers:
            self._tasks.append(
                asyncio.create_task(
                    self._run(farm_printer), name=f"farm-{farm_printer.serial}"
                )
            )
        if self.notify is not None:
            await self.notify.start()
        _LOGGER.info(
            "virtual farm: cloud %s, broker %s:%s, %d printers",
            self.api_url,
            HOST,
            self._mqtt_port,
            len(self.printers),
        )

    async def stop(self) -> None:
        """Stop everything; leaves no task, socket or temporary file behind."""
        if self.notify is not None:
            await self.notify.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ftps, self.ftps = self.ftps, None
        if ftps is not None:
            await ftps.stop()
        for farm_printer in self.printers:
            await farm_printer.printer.stop()
            if farm_printer.camera is not None:
                await farm_printer.camera.stop()
            if farm_printer.lan_broker is not None:
                await farm_printer.lan_broker.stop()
        self.printers = []
        if self.broker is not None:
            await self.broker.stop()
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        directory, self._directory = self._directory, None
        if directory is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: shutil.rmtree(directory, ignore_errors=True)
            )

    async def _run(self, farm_printer: FarmPrinter) -> None:
        try:
            await farm_printer.runner.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("virtual farm: %s stopped", farm_printer.serial)

    # -- printers ----------------------------------------------------------

    def _serial(self, index: int) -> str:
        spec = MODELS[MODEL_CYCLE[index % len(MODEL_CYCLE)]]
        return f"{spec.serial_prefix}0FA{index + 1:09d}"

    def _lan_only_serial(self, number: int) -> str:
        spec = MODELS[MODEL_CYCLE[number % len(MODEL_CYCLE)]]
        return f"{spec.serial_prefix}0FL{number + 1:09d}"

    def _announcements(self) -> list[Announcement]:
        """Who announces: the LAN-only printers (found only on the network)."""
        return [p.announcement() for p in self.printers if not p.cloud]

    def _port(self, index: int, offset: int) -> int:
        if not self._lan_base_port:
            return 0
        return self._lan_base_port + 2 * index + offset

    async def _start_printer(self, index: int, leaf: IssuedCert) -> FarmPrinter:
        model = MODEL_CYCLE[index % len(MODEL_CYCLE)]
        info = MODEL_INFO[model]
        serial = self._serial(index)
        access_code = f"{(index + 1) * 13579 % 100000000:08d}"
        name = f"Farm {info.short} {index + 1}"
        if self.broker is None:
            raise RuntimeError("the cloud broker is not running")
        printer = VirtualPrinter(self.broker, serial, model, access_code=access_code)
        if model == "H2D" and index < len(MODEL_CYCLE):
            # The first H2D's AMS HT (its AMS 2 Pro is idle): dryers in the demo.
            printer.start_drying(128, 65, 8, "PA")
        if model == "P1S" and index < len(MODEL_CYCLE):
            # The first P1S shows an active HMS error, with its (made-up) text.
            printer.state["hms"] = [
                {"attr": HMS_HEATBED_ATTR, "code": HMS_HEATBED_CODE}
            ]
        # Every farm printer lives at 127.0.0.1, and the demo reaches the
        # LAN-only printer at that bare address (``lan_mqtt_port``): an
        # account printer reporting it would have its automatic LAN address
        # point at another printer's broker. Its LAN host is set by hand.
        printer.state["net"]["info"] = []
        behind = index % 2 == 1
        if behind:
            self._offer_update(printer)
        lan_broker: MqttBroker | None = None
        camera: CameraServer | None = None
        try:
            if self.lan:
                lan_broker = MqttBroker(
                    leaf, port=self._port(index, 0), users={"bblp": access_code}
                )
                await lan_broker.start()
                await printer.add_mirror(lan_broker)
            if self.cameras and info.camera:
                first = not any(p.camera is not None for p in self.printers)
                camera = CameraServer(
                    leaf.server_context(),
                    access_code,
                    lambda: self._draw_frame(name, printer),
                    host=HOST,
                    port=(
                        self._first_camera_port
                        if first and self._first_camera_port
                        else self._port(index, 1)
                    ),
                    interval=self.camera_interval,
                )
                await camera.start()
            await printer.start()
        except BaseException:
            # Not listed yet, so stop() would not find them: no broker
            # process may outlive a failed start.
            await printer.stop()
            if camera is not None:
                await camera.stop()
            if lan_broker is not None:
                await lan_broker.stop()
            raise
        runner = JobRunner(
            printer,
            index,
            JobEvents(self._job_started, self._job_ended),
            speed=self.speed,
            job_seconds=self.job_seconds,
            idle_seconds=self.idle_seconds,
            prepare_seconds=max(4, min(12, self.job_seconds // 5)),
            seed=self.seed,
        )
        self.cloud.devices.append(
            bind_entry(
                serial,
                name,
                info.product,
                info.model_id,
                status="IDLE",
                access_code=access_code,
            )
        )
        self.cloud.versions.append(self._versions(serial, printer, behind=behind))
        return FarmPrinter(
            index=index,
            serial=serial,
            name=name,
            model=model,
            access_code=access_code,
            printer=printer,
            certificate=leaf,
            lan_broker=lan_broker,
            camera=camera,
            runner=runner,
            firmware_behind=behind,
        )

    async def _start_lan_only_printer(
        self, number: int, leaf: IssuedCert
    ) -> FarmPrinter:
        """A printer in LAN-only mode: its own broker only, no cloud, no camera.

        Even-numbered ones have Developer Mode on; odd ones run
        authorization firmware without it (``fun`` bit 0x20000000 set,
        unsigned ``print`` commands refused).
        """
        model = MODEL_CYCLE[number % len(MODEL_CYCLE)]
        info = MODEL_INFO[model]
        serial = self._lan_only_serial(number)
        access_code = f"{(number + 1) * 24680 % 100000000:08d}"
        developer_mode = number % 2 == 0
        name = f"LAN {info.short} {number + 1}"
        lan_broker = MqttBroker(
            leaf,
            port=self._port(self.count + number, 0),
            users={"bblp": access_code},
        )
        printer = VirtualPrinter(
            lan_broker,
            serial,
            model,
            access_code=access_code,
            signature_required=not developer_mode,
        )
        try:
            await lan_broker.start()
            await printer.start()
        except BaseException:
            await printer.stop()
            await lan_broker.stop()
            raise
        runner = JobRunner(
            printer,
            self.count + number,
            # No account: the cloud's task list and bind list never hear of it.
            JobEvents(lambda *_: None, lambda *_: None),
            speed=self.speed,
            job_seconds=self.job_seconds,
            idle_seconds=self.idle_seconds,
            prepare_seconds=max(4, min(12, self.job_seconds // 5)),
            seed=self.seed,
        )
        return FarmPrinter(
            index=self.count + number,
            serial=serial,
            name=name,
            model=model,
            access_code=access_code,
            printer=printer,
            certificate=leaf,
            lan_broker=lan_broker,
            camera=None,
            runner=runner,
            firmware_behind=False,
            cloud=False,
            developer_mode=developer_mode,
        )

    async def _start_storage(self) -> None:
        """Give every printer its projects and serve them all over FTPS."""
        made = await asyncio.get_running_loop().run_in_executor(
            None, storage.projects, TITLES
        )
        sites = []
        for farm_printer in self.printers:
            files = storage.printer_storage(made)
            farm_printer.printer.storage = files
            sites.append(
                FtpsSite(
                    farm_printer.serial,
                    farm_printer.certificate.server_context(),
                    farm_printer.access_code,
                    files,
                )
            )
        self.ftps = FtpsServer(sites, host=HOST, port=self._ftps_port)
        await self.ftps.start()
        self._ftps_port = self.ftps.port

    def _offer_update(self, printer: VirtualPrinter) -> None:
        """Make the printer's MQTT report show the pending firmware update."""
        installed = printer.spec.sw_ver
        upgrade = printer.state.setdefault("upgrade_state", {})
        if printer.full_reports:
            upgrade["ota_new_version_number"] = _newer(installed)
        else:
            upgrade.update(
                new_version_state=1,
                new_ver_list=[
                    {"name": "ota", "cur_ver": installed, "new_ver": _newer(installed)}
                ],
            )

    def _versions(
        self, serial: str, printer: VirtualPrinter, *, behind: bool
    ) -> dict[str, Any]:
        installed = printer.spec.sw_ver
        releases = [installed, _newer(installed)] if behind else [installed]
        model_id = MODEL_INFO[printer.spec.key].model_id
        return {
            "dev_id": serial,
            "version": installed,
            "firmware": [
                {
                    "version": version,
                    "force_update": False,
                    "url": f"{self.api_url}/firmware/{model_id}/{version}.json.sig",
                    "description": (
                        f"## {printer.spec.product_name} firmware {version}\n\n"
                        "- Improved first-layer inspection accuracy.\n"
                        "- Quieter part-cooling fan at low speeds.\n"
                        "- Fixed a rare AMS retraction timeout.\n"
                    ),
                }
                for version in releases
            ],
            "ams": [],
        }

    # -- jobs and cloud tasks ----------------------------------------------

    def _task(
        self,
        farm_printer: FarmPrinter,
        plan: JobPlan,
        start: dt.datetime,
        status: int,
        end: dt.datetime | None = None,
    ) -> dict[str, Any]:
        info = MODEL_INFO[farm_printer.model]
        weight = round(plan.total_layers * 0.21, 2)
        return {
            "id": plan.task_id,
            "designId": 0,
            "designTitle": "",
            "instanceId": 0,
            "modelId": f"FARM{plan.task_id}",
            "title": plan.title,
            "cover": f"{self.api_url}/covers/{plan.task_id}.png",
            "status": status,
            "feedbackStatus": 0,
            "startTime": _iso(start),
            "endTime": _iso(end or start),
            "weight": weight,
            # Centimetres, like the real list (about 33.5 cm of PLA per gram).
            "length": round(weight * 33.5),
            "costTime": plan.print_seconds,
            "profileId": plan.task_id + 3,
            "plateIndex": 1,
            "plateName": "",
            "deviceId": farm_printer.serial,
            "amsDetailMapping": [],
            "mode": "cloud_file",
            "isPublicProfile": False,
            "isPrintable": True,
            "deviceModel": info.short,
            "deviceName": farm_printer.name,
            "bedType": "textured_plate",
        }

    def _find(self, printer: VirtualPrinter) -> FarmPrinter:
        return next(p for p in self.printers if p.printer is printer)

    def _add_task(self, task: dict[str, Any]) -> None:
        self.cloud.tasks.insert(0, task)
        self._task_index[int(task["id"])] = task
        for old in self.cloud.tasks[MAX_TASKS:]:
            self._task_index.pop(int(old["id"]), None)
        del self.cloud.tasks[MAX_TASKS:]

    def _bind(self, serial: str) -> dict[str, Any]:
        return next(d for d in self.cloud.devices if d["dev_id"] == serial)

    def _seed_history(self) -> None:
        """Two finished jobs per printer, in the past, so covers exist at once."""
        now = dt.datetime.now(dt.UTC)
        for farm_printer in self.printers:
            if not farm_printer.cloud:
                continue
            for back in (2, 1):
                plan = JobPlan(
                    number=-back,
                    task_id=300_000_000 + farm_printer.index * 10 + back,
                    title=TITLES[(farm_printer.index + back * 5) % len(TITLES)],
                    scenario=farm_printer.runner.plan(0).scenario,
                    total_layers=120,
                    print_seconds=3600 * back,
                    trays=(0,),
                    nozzle_temp=220,
                    bed_temp=60,
                )
                end = now - dt.timedelta(hours=3 * back)
                start = end - dt.timedelta(seconds=plan.print_seconds)
                self._add_task(
                    self._task(farm_printer, plan, start, TASK_FINISHED, end)
                )
            self._bind(farm_printer.serial).update(
                print_status="SUCCESS",
                print_job=str(300_000_000 + farm_printer.index * 10 + 1),
            )

    def _job_started(self, printer: VirtualPrinter, plan: JobPlan) -> None:
        farm_printer = self._find(printer)
        start = dt.datetime.now(dt.UTC)
        self._add_task(self._task(farm_printer, plan, start, TASK_RUNNING))
        self._bind(farm_printer.serial).update(
            print_status="RUNNING", print_job=str(plan.task_id)
        )

    def _job_ended(self, printer: VirtualPrinter, plan: JobPlan, success: bool) -> None:
        farm_printer = self._find(printer)
        task = self._task_index.get(plan.task_id)
        if task is not None:
            task.update(
                status=TASK_FINISHED if success else TASK_FAILED,
                endTime=_iso(dt.datetime.now(dt.UTC)),
            )
        self._bind(farm_printer.serial)["print_status"] = (
            "SUCCESS" if success else "FAILED"
        )

    # -- pictures (blocking: run in an executor) ---------------------------

    def _draw_cover(self, task_id: str) -> bytes | None:
        task = self._task_index.get(int(task_id))
        if task is None:
            return None
        return images.cover_png(str(task["title"]), str(task["deviceName"]))

    @staticmethod
    def _draw_frame(name: str, printer: VirtualPrinter) -> bytes:
        state = printer.state
        return images.camera_jpeg(
            name,
            str(state.get("subtask_name") or ""),
            int(state.get("mc_percent") or 0),
            str(state.get("gcode_state") or "IDLE"),
        )

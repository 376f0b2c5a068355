"""The library is configured, not patched.

The integration builds the library's configuration from the region table in
one place (``library.LIBRARY_CONFIGS``); tests and the demo swap that value
or build their own configuration, and nothing in tests/ or tools/ patches a
module global of the integration.
"""

from __future__ import annotations

import ast
import importlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from custom_components.bambu_cloud.bambu import tls
from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports
from custom_components.bambu_cloud.bambu.const import REGIONS, Region
from custom_components.bambu_cloud.library import LIBRARY_CONFIGS, library_config
from tools.demo_launcher import configure_integration, farm_config

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "custom_components.bambu_cloud"

# Module globals of the integration that tests and tools may swap, and why.
ALLOWED = {
    f"{PACKAGE}.library.LIBRARY_CONFIGS": (
        "the one documented configuration value (demo launcher, test fixtures)"
    ),
    f"{PACKAGE}.PLATFORMS": (
        "Home Assistant's test idiom: set up only the platforms a test is about"
    ),
}
# Calls that change a mapping in place.
_MUTATORS = frozenset({"update", "pop", "popitem", "clear", "setdefault"})


# ------------------------------------------------------------ configuration


@pytest.mark.parametrize("region", list(Region))
def test_library_config_follows_the_region_table(region: Region) -> None:
    """Each region's configuration is the table's endpoints with the defaults."""
    config = library_config(region)
    assert config == BambuConfig(endpoints=REGIONS[region])
    assert config.endpoints is REGIONS[region]
    assert config.pins is tls.BBL_CA_SHA256
    assert library_config(region.value) is config


def test_every_region_is_configured() -> None:
    """The one value covers every region, and an unknown region is refused."""
    assert set(LIBRARY_CONFIGS) == set(Region)
    with pytest.raises(ValueError, match="mars"):
        library_config("mars")


def test_demo_launcher_swaps_only_the_library_configuration() -> None:
    """The demo gives every region the farm's endpoints, pin and camera port."""
    state = {
        "api_url": "https://127.0.0.1:8443",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": 8884,
        "cloud_ca_pem": "-----BEGIN CERTIFICATE-----\n",
        "printer_ca_sha256": "ab" * 32,
        "printers": [{"name": "X1C"}, {"name": "P1S", "camera_port": 6001}],
    }
    config = farm_config(state)
    assert config.endpoints.api_url == config.endpoints.web_url == state["api_url"]
    assert (config.endpoints.mqtt_host, config.endpoints.mqtt_port) == (
        "127.0.0.1",
        8884,
    )
    assert config.endpoints.mqtt_ca_pem == state["cloud_ca_pem"]
    assert config.pins == {"ab" * 32}
    assert config.ports == Ports(jpeg=6001)
    assert farm_config({**state, "printers": []}).ports == Ports()

    with patch.dict(LIBRARY_CONFIGS):
        configure_integration(state)
        assert all(library_config(region) == config for region in Region)
    assert library_config(Region.GLOBAL).endpoints is REGIONS[Region.GLOBAL]


# ------------------------------------------------------- no patched globals


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _module_global(target: str) -> str | None:
    """``target`` as "module.NAME" when it names a global of the integration.

    An attribute of an object inside a module ("module.Class.method") is no
    module global: patching a method where unavoidable stays possible.
    """
    if target != PACKAGE and not target.startswith(f"{PACKAGE}."):
        return None
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        if _is_module(".".join(parts[:cut])):
            rest = parts[cut:]
            return target if len(rest) == 1 else None
    return None  # pragma: no cover - the package itself always imports


class _Finder(ast.NodeVisitor):
    """Finds patches and assignments of the integration's module globals."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.found: list[tuple[int, str]] = []

    # Names bound by imports -------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.names[alias.asname] = alias.name
            else:
                first = alias.name.split(".")[0]
                self.names[first] = first

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for alias in node.names:
                self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _dotted(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def _target(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return self._dotted(node)

    def _report(self, node: ast.AST, target: str | None) -> None:
        if target is not None and (name := _module_global(target)) is not None:
            self.found.append((node.lineno, name))  # type: ignore[attr-defined]

    # Patches ------------------------------------------------------------

    def _is_patch(self, node: ast.expr) -> bool:
        """``patch``, ``mock.patch`` or ``unittest.mock.patch``."""
        return self._dotted(node) == "unittest.mock.patch"

    def visit_Call(self, node: ast.Call) -> None:
        func, args = node.func, node.args
        if self._is_patch(func) and args:
            self._report(node, self._target(args[0]))  # patch("module.NAME")
        elif isinstance(func, ast.Name) and func.id in ("setattr", "delattr"):
            self._setattr(node, args)  # the builtins
        elif isinstance(func, ast.Attribute):
            owner, attr = func.value, func.attr
            if self._is_patch(owner) and attr == "object":
                self._setattr(node, args)
            elif self._is_patch(owner) and attr == "dict" and args:
                self._report(node, self._target(args[0]))
            elif attr in ("setattr", "delattr"):  # monkeypatch.setattr
                self._setattr(node, args)
            elif attr in ("setitem", "delitem") and args:  # monkeypatch.setitem
                self._report(node, self._dotted(args[0]))
            elif attr in _MUTATORS:  # NAME.update(...)
                self._report(node, self._dotted(owner))
        self.generic_visit(node)

    def _setattr(self, node: ast.Call, args: list[ast.expr]) -> None:
        """``setattr(obj, "NAME", ...)`` or monkeypatch's ``("module.NAME", ...)``."""
        if not args:
            return
        first = args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            self._report(node, first.value)
        elif len(args) >= 2 and (
            isinstance(second := args[1], ast.Constant)
            and isinstance(second.value, str)
        ):
            base = self._dotted(first)
            self._report(node, None if base is None else f"{base}.{second.value}")

    # Assignments --------------------------------------------------------

    def _assigned(self, node: ast.stmt, targets: list[ast.expr]) -> None:
        for target in targets:
            if isinstance(target, ast.Attribute):
                self._report(node, self._dotted(target))
            elif isinstance(target, ast.Subscript):
                self._report(node, self._dotted(target.value))

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assigned(node, node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assigned(node, [node.target])
        self.generic_visit(node)


def patched_globals(source: str) -> list[tuple[int, str]]:
    """(line, "module.NAME") of every patched or assigned integration global."""
    finder = _Finder()
    finder.visit(ast.parse(source))
    return [(line, name) for line, name in finder.found if name not in ALLOWED]


def _python_files() -> Iterator[Path]:
    for folder in ("tests", "tools"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_test_or_tool_patches_a_module_global() -> None:
    """Tests and tools configure the library; they never patch its globals."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _python_files()
        for line, name in patched_globals(path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            """
            from custom_components.bambu_cloud.bambu import tls
            monkeypatch.setattr(tls, "BBL_CA_SHA256", frozenset())
            """,
            ["custom_components.bambu_cloud.bambu.tls.BBL_CA_SHA256"],
        ),
        (
            """
            from custom_components.bambu_cloud.bambu import hub as hub_module
            monkeypatch.setattr(hub_module, "WATCHDOG_INTERVAL", 0.01)
            """,
            ["custom_components.bambu_cloud.bambu.hub.WATCHDOG_INTERVAL"],
        ),
        (
            """
            from unittest import mock
            from unittest.mock import patch
            monkeypatch.setattr("custom_components.bambu_cloud.bambu.hub.X", 1)
            with patch("custom_components.bambu_cloud.event.SETTLE_SECONDS", 0.2):
                pass
            with mock.patch("custom_components.bambu_cloud.image.MAX_COVER_BYTES"):
                pass
            """,
            [
                "custom_components.bambu_cloud.bambu.hub.X",
                "custom_components.bambu_cloud.event.SETTLE_SECONDS",
                "custom_components.bambu_cloud.image.MAX_COVER_BYTES",
            ],
        ),
        (
            """
            import custom_components.bambu_cloud.bambu.camera as camera
            from custom_components.bambu_cloud.bambu import const
            from unittest import mock
            from unittest.mock import patch
            with patch.object(camera, "JPEG_PORT", 1), patch.dict(const.REGIONS, {}):
                pass
            mock.patch.object(camera, "RTSPS_PORT", 2)
            """,
            [
                "custom_components.bambu_cloud.bambu.camera.JPEG_PORT",
                "custom_components.bambu_cloud.bambu.const.REGIONS",
                "custom_components.bambu_cloud.bambu.camera.RTSPS_PORT",
            ],
        ),
        (
            """
            from custom_components.bambu_cloud.bambu import camera, const, tls
            tls.BBL_CA_SHA256 = frozenset()
            const.REGIONS[region] = endpoints
            camera.JPEG_PORT += 1
            const.REGIONS.update({})
            setattr(tls, "BBL_CA_SHA256", frozenset())
            monkeypatch.setitem(const.REGIONS, region, endpoints)
            """,
            [
                "custom_components.bambu_cloud.bambu.tls.BBL_CA_SHA256",
                "custom_components.bambu_cloud.bambu.const.REGIONS",
                "custom_components.bambu_cloud.bambu.camera.JPEG_PORT",
                "custom_components.bambu_cloud.bambu.const.REGIONS",
                "custom_components.bambu_cloud.bambu.tls.BBL_CA_SHA256",
                "custom_components.bambu_cloud.bambu.const.REGIONS",
            ],
        ),
        (
            """
            from custom_components.bambu_cloud.bambu.hub import BambuHub
            from custom_components.bambu_cloud.library import LIBRARY_CONFIGS
            from custom_components.bambu_cloud import library
            from unittest.mock import patch
            monkeypatch.setattr(BambuHub, "listen", listen)
            monkeypatch.setattr(hub, "_watch_once", broken)
            monkeypatch.setattr(ssl.SSLSocket, "get_unverified_chain", None)
            patch("custom_components.bambu_cloud.config_flow.BambuCloud.login")
            patch("custom_components.bambu_cloud.PLATFORMS", [])
            patch("homeassistant.util.ssl.client_context")
            patch.dict(LIBRARY_CONFIGS, {})
            LIBRARY_CONFIGS.update({})
            library.LIBRARY_CONFIGS[region] = config
            """,
            [],
        ),
    ],
    ids=["setattr", "module_alias", "strings", "object_and_dict", "assignment", "ok"],
)
def test_patch_finder(source: str, expected: list[str]) -> None:
    """The guard above finds every way of patching a global, and only those."""
    assert [name for _, name in patched_globals(textwrap.dedent(source))] == expected


def test_module_global_resolution() -> None:
    """Only integration module globals count, not objects' attributes."""
    cases: dict[str, Any] = {
        f"{PACKAGE}.bambu.tls.BBL_CA_SHA256": f"{PACKAGE}.bambu.tls.BBL_CA_SHA256",
        f"{PACKAGE}.PLATFORMS": f"{PACKAGE}.PLATFORMS",
        f"{PACKAGE}.bambu.hub.BambuHub.listen": None,
        f"{PACKAGE}.bambu": None,
        "homeassistant.const.STATE_ON": None,
    }
    assert {target: _module_global(target) for target in cases} == cases

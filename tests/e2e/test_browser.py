"""The UI as a person uses it: headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tools.virtual_farm.farm import VirtualFarm

from .hass_process import HassProcess, enable_jpeg_camera, jpeg_printer

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
EN = json.loads(
    (ROOT / "custom_components/bambu_cloud/translations/en.json").read_text()
)
SCREENSHOT_DIR = Path(__file__).resolve().parent / "screenshots"
# Chromium as root, offline: no sandbox, no background traffic.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RAW_KEY = re.compile(r"component\.bambu_cloud|config\.(step|error)|\bbase\b")


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """Debian's Chromium under Playwright (no browser download)."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat, before any I/O
        pytest.skip("Debian chromium is not installed (scripts/setup installs it)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class _Quiet:
    """When the page last started a request (map tiles included)."""

    def __init__(self, page: Any) -> None:
        self.last = time.monotonic()
        page.on("request", self._request)

    def _request(self, _request: object) -> None:
        self.last = time.monotonic()

    async def wait(self, page: Any, quiet: float = 1.0, within: float = 15.0) -> None:
        """Until no request started for ``quiet`` seconds (at most ``within``)."""
        deadline = time.monotonic() + within
        while time.monotonic() - self.last < quiet and time.monotonic() < deadline:
            await page.wait_for_timeout(200)


async def _onboard(page: object, hass: HassProcess) -> None:
    await page.goto(hass.url)  # type: ignore[attr-defined]
    await page.get_by_text("Create my smart home").click()  # type: ignore[attr-defined]
    create = page.get_by_role("button", name="Create account")  # type: ignore[attr-defined]
    fields = (
        ("name", "Browser Owner"),
        ("username", "owner"),
        ("password", "owner-password-123"),
        ("password_confirm", "owner-password-123"),
    )
    for _ in range(10):
        # The form may still be wiring its fields up, and it derives the
        # username from the name as that is typed: fill, then check that
        # every field holds what was typed before creating the owner.
        for name, value in fields:
            await page.locator(f"input[name={name}]").fill(value)  # type: ignore[attr-defined]
        await page.wait_for_timeout(300)  # type: ignore[attr-defined]
        held = [
            await page.locator(f"input[name={name}]").input_value()  # type: ignore[attr-defined]
            for name, _ in fields
        ]
        if held == [value for _, value in fields] and await create.is_enabled():
            break
        await page.wait_for_timeout(500)  # type: ignore[attr-defined]
    else:
        raise AssertionError("the owner form did not take the values typed")
    quiet = _Quiet(page)
    await create.click()
    for _ in range(10):
        await page.wait_for_timeout(800)  # type: ignore[attr-defined]
        if "onboarding" not in page.url:  # type: ignore[attr-defined]
            return
        # As a person would: the location step's map zooms in after it loads,
        # and leaving it mid-animation makes Leaflet throw (a frontend error
        # in Home Assistant's log).
        await quiet.wait(page)
        for label in ("Next", "Finish"):
            button = page.get_by_role("button", name=label)  # type: ignore[attr-defined]
            if await button.count():
                await button.first.click()
                break
    raise AssertionError("onboarding did not finish")


# Home Assistant renders inside shadow roots: collect text through them.
DEEP_TEXT = """() => {
  const parts = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) parts.push(child.textContent);
      else if (child.nodeType === Node.ELEMENT_NODE) {
        if (child.getAttribute("label")) parts.push(child.getAttribute("label"));
        walk(child);
      }
    }
  };
  walk(document.body);
  return parts.join(" ").replace(/\\s+/g, " ");
}"""


async def _expect_labels(page: object, step: str) -> None:
    """Every field label of a config-flow step renders from en.json."""
    strings = EN["config"]["step"][step]
    await page.get_by_text(strings["title"]).first.wait_for()  # type: ignore[attr-defined]
    labels = list(strings["data"].values())
    text = ""
    for _ in range(50):  # the form renders its fields after the title
        text = await _dialog_text(page)
        if all(label in text for label in labels):
            break
        await page.wait_for_timeout(200)  # type: ignore[attr-defined]
    for label in labels:
        assert label in text, f"{step}: label {label!r} not rendered"
    assert not RAW_KEY.search(text), text


async def _dialog_text(page: object) -> str:
    text: str = await page.evaluate(DEEP_TEXT)  # type: ignore[attr-defined]
    return text


async def test_add_account_in_the_ui(
    hass_process: HassProcess, farm: VirtualFarm, browser: object
) -> None:
    """Onboard, add the account, open the printer's page, watch its camera.

    Home Assistant runs a real user's configuration (default_config minus
    go2rtc) and must log no error at all meanwhile.
    """
    hass = hass_process
    page = await browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    await page.route("**/*", _local_only)
    # Home Assistant may still be installing what onboarding set up.
    page.set_default_timeout(120_000)
    try:
        await _add_account(page, hass, farm)
        await _watch_camera(page, hass, farm)
    except Exception:
        SCREENSHOT_DIR.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT_DIR / "failure.png"))
        raise
    problems = hass.log_problems()
    assert not problems, "\n\n".join(problems)


async def _local_only(route: Any) -> None:
    """Only 127.0.0.1 is dialled: the frontend's brand icons and the like fail."""
    if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
        await route.continue_()
    else:
        await route.abort("blockedbyclient")


async def _add_account(page: Any, hass: HassProcess, farm: VirtualFarm) -> None:
    await _onboard(page, hass)
    # Onboarding adds Home Assistant's default entries (weather, text to
    # speech...), whose requirements may still be installing: wait for them,
    # then load the UI afresh.
    await hass.login("owner", "owner-password-123")
    await hass.wait_for_entries_settled()

    await page.goto(f"{hass.url}/config/integrations/dashboard")
    await page.get_by_role("button", name="Add integration").click()
    await page.wait_for_timeout(800)
    await page.keyboard.type("Bambu")
    await page.get_by_text("Bambu Lab Cloud").last.click()  # the dialog, above the card

    user = EN["config"]["step"]["user"]
    await page.get_by_text(user["menu_options"]["sign_in"]).wait_for()
    await page.get_by_text(user["menu_options"]["token"]).click()
    await _expect_labels(page, "token")

    # A wrong token shows the translated error; the right one creates the entry.
    await page.locator("input[name=access_token]").fill("not-the-token")
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text(EN["config"]["error"]["invalid_auth"]).wait_for()
    await page.locator("input[name=access_token]").fill(farm.token)
    await page.get_by_role("button", name="Submit").click()
    # Home Assistant lists the new devices (account and printers) to name.
    finish = page.get_by_role("button", name="Skip and finish")
    await finish.wait_for()
    await finish.click()

    # The sign-in form renders and shows its errors from the translations too.
    await page.get_by_role("button", name="Add integration").click()
    await page.wait_for_timeout(800)
    await page.keyboard.type("Bambu")
    await page.get_by_text("Bambu Lab Cloud").last.click()  # the dialog, above the card
    await page.get_by_text(user["menu_options"]["sign_in"]).click()
    await _expect_labels(page, "sign_in")
    await page.locator("input[name=account]").fill(farm.account)
    await page.locator("input[name=password]").fill("wrong password")
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text(EN["config"]["error"]["invalid_auth"]).wait_for()
    await page.keyboard.press("Escape")

    printer = farm.printers[0]
    device = await hass_device_id(hass, printer.serial)
    await page.goto(f"{hass.url}/config/devices/device/{device}")
    await page.get_by_text(printer.name).first.wait_for()
    await page.get_by_text("Nozzle temperature").first.wait_for()
    await page.wait_for_timeout(1500)
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT_DIR / "device_page.png"), full_page=True)
    assert not RAW_KEY.search(await _dialog_text(page))


async def hass_device_id(hass: HassProcess, serial: str) -> str:
    """The device registry id of a printer (through the websocket API)."""
    if hass.token is None:
        await hass.login("owner", "owner-password-123")
    devices = await hass.ws_command({"type": "config/device_registry/list"})
    return next(
        d["id"]
        for d in devices
        if ["bambu_cloud", serial] in [list(i) for i in d["identifiers"]]
    )


# The size of every camera picture (img) or video in the page, through shadow
# roots: [tag, source, width, height], 0 x 0 until a frame has been decoded.
CAMERA_MEDIA = """(entityId) => {
  const found = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children) {
      if (child.tagName === "IMG" && child.src.includes(entityId)) {
        found.push(["img", child.src, child.naturalWidth, child.naturalHeight]);
      } else if (child.tagName === "VIDEO") {
        found.push(["video", child.src, child.videoWidth, child.videoHeight]);
      }
      walk(child);
    }
  };
  walk(document.body);
  return found;
}"""

# What the frontend's entity rows do on a click: ask the app for the
# more-info dialog of an entity.
OPEN_MORE_INFO = """(entityId) => {
  document.querySelector("home-assistant").dispatchEvent(
    new CustomEvent("hass-more-info", {
      detail: { entityId }, bubbles: true, composed: true,
    })
  );
}"""


async def _watch_camera(page: Any, hass: HassProcess, farm: VirtualFarm) -> None:
    """The P1S camera's more-info dialog shows decoded frames (live MJPEG)."""
    camera = await enable_jpeg_camera(hass, farm)
    printer = jpeg_printer(farm)
    device = await hass_device_id(hass, printer.serial)
    await page.goto(f"{hass.url}/config/devices/device/{device}")
    await page.get_by_text(printer.name).first.wait_for()
    await page.evaluate(OPEN_MORE_INFO, camera)
    media: list[list[Any]] = []
    for _ in range(120):  # the first frame arrives within seconds
        media = await page.evaluate(CAMERA_MEDIA, camera)
        if any(width > 0 and height > 0 for _, _, width, height in media):
            break
        await page.wait_for_timeout(500)
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT_DIR / "camera.png"))
    assert any(width > 0 and height > 0 for _, _, width, height in media), media
    # The live view is the MJPEG stream the integration relays from the printer.
    assert any("camera_proxy_stream" in source for _, source, _, _ in media), media

"""Repair issues: token expiry, printer TLS refusals, changed access codes."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .bambu.auth import AccessToken
from .bambu.errors import BambuAuthError, BambuError
from .bambu.hub import Problem, ProblemKind
from .const import DOMAIN, LOGGER, TOKEN_EXPIRY_WARNING
from .coordinator import BambuConfigEntry, BambuLanCoordinator

TLS_CAUSES = ("unknown_ca", "serial_mismatch", "expired", "other")


def token_issue_id(entry: BambuConfigEntry) -> str:
    """The issue warning that the entry's token expires soon."""
    return f"token_expiring_{entry.entry_id}"


def _printer_issue_id(kind: ProblemKind, serial: str) -> str:
    return f"{kind.value}_{serial}"


@callback
def sync_token_issue(
    hass: HomeAssistant, entry: BambuConfigEntry, token: AccessToken
) -> None:
    """Raise a repair issue two weeks before a known token expiry."""
    issue_id = token_issue_id(entry)
    expires = token.expires_at
    if expires is None or expires - dt_util.utcnow() > TOKEN_EXPIRY_WARNING:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="token_expiring",
        translation_placeholders={
            "title": entry.title,
            "expires": dt_util.as_local(expires).strftime("%Y-%m-%d %H:%M"),
        },
        data={"entry_id": entry.entry_id},
    )


def problem_handler(
    hass: HomeAssistant, entry: BambuConfigEntry
) -> Callable[[Problem], None]:
    """Turn hub problems into reauth flows and repair issues."""

    @callback
    def handle(problem: Problem) -> None:
        if problem.kind is ProblemKind.CLOUD_AUTH:
            if problem.active:
                entry.async_create_background_task(
                    hass,
                    _confirm_cloud_refusal(hass, entry),
                    f"{DOMAIN} confirm cloud refusal",
                )
            return
        serial = problem.serial or ""
        issue_id = _printer_issue_id(problem.kind, serial)
        if not problem.active:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
            return
        coordinator = entry.runtime_data.coordinator
        printer = coordinator.data.printers.get(serial)
        name = printer.name if printer else serial
        if problem.kind is ProblemKind.LAN_AUTH and isinstance(
            coordinator, BambuLanCoordinator
        ):
            # The access code is the entry's own: ask the user for the new
            # one (reauth); nothing else could tell it.
            entry.async_start_reauth(hass)
            return
        if problem.kind is ProblemKind.LAN_AUTH:
            ir.async_create_issue(
                hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="lan_access_code",
                translation_placeholders={"printer": name},
            )
            # The bind list carries the current access code.
            hass.async_create_task(coordinator.async_request_refresh())
            return
        cause = problem.detail if problem.detail in TLS_CAUSES else "other"
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=f"printer_tls_{cause}",
            translation_placeholders={"printer": name},
        )

    return handle


async def _confirm_cloud_refusal(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Reauth only when the API agrees the token is bad; else retry later.

    The cloud broker answers "not authorised" for more than a revoked token
    (it has refused valid ones during outages). A 401 from the profile
    endpoint is proof; anything else is treated as transient, and the hub
    logs in again after its back-off.
    """
    runtime = entry.runtime_data
    if runtime.cloud is None:
        return  # no cloud session, no cloud refusal
    try:
        await runtime.cloud.get_profile()
    except BambuAuthError:
        entry.async_start_reauth(hass)
        return
    except BambuError as err:
        LOGGER.debug("Cannot confirm the broker's refusal over HTTP: %s", err)
    runtime.hub.retry_cloud()


SIGNATURE_ISSUE = "signature"


@callback
def sync_signature_issue(
    hass: HomeAssistant, serial: str, name: str, *, required: bool
) -> None:
    """Explain the two ways out when the printer wants signed commands."""
    issue_id = f"{SIGNATURE_ISSUE}_{serial}"
    if not required:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="signed_commands_required",
        translation_placeholders={"printer": name},
    )


@callback
def async_delete_entry_issues(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Remove every issue this entry raised."""
    ir.async_delete_issue(hass, DOMAIN, token_issue_id(entry))
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain == DOMAIN and issue_id.startswith(
            (
                *(f"{kind.value}_" for kind in ProblemKind),
                f"{SIGNATURE_ISSUE}_",
                "camera_liveview_disabled_",
            )
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)

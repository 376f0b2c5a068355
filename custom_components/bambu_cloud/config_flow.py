"""Config flow: add a Bambu Lab account, or one printer on the local network.

An account is added by access token or by signing in. A printer without an
account (LAN only, e.g. Developer Mode on authorization firmware) is added by
address, serial and access code, typed or picked from the printers heard on
the network; nothing is stored before the printer proved who it is over the
pinned TLS context and accepted the access code (``bambu.lan.check_printer``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util import dt as dt_util

from .bambu import tls
from .bambu.auth import MAX_PEM_CHARS, AccessToken, AppCertificate, CertificateError
from .bambu.cloud import BambuCloud
from .bambu.const import Region, lookup_model
from .bambu.discovery import DiscoveredPrinter
from .bambu.errors import (
    BambuAuthError,
    BambuCodeError,
    BambuConnectionError,
    BambuError,
    BambuForbiddenError,
    BambuRateLimitedError,
)
from .bambu.hub import split_host_port
from .bambu.lan import LanCheck, LanCheckError, LanCheckReason, check_printer
from .bambu.models import (
    SERIAL_MAX_LENGTH,
    LoginKind,
    LoginResult,
    Profile,
    valid_serial,
)
from .const import (
    CONF_ACCESS_CODE,
    CONF_ACCESS_TOKEN,
    CONF_ACCOUNT,
    CONF_CA_BUNDLE,
    CONF_CERTIFICATE_ID,
    CONF_CODE,
    CONF_EXPIRES_AT,
    CONF_HOST,
    CONF_LAN,
    CONF_PRINTER,
    CONF_PRINTERS,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    CONF_SERIAL,
    DOMAIN,
    LAN_AUTO,
    LAN_FIXED,
    LAN_MODES,
    LAN_OFF,
    LOGGER,
)
from .coordinator import BambuCloudCoordinator, BambuConfigEntry
from .discovery import async_recent_printers
from .error_reasons import bundle_error, certificate_error_key
from .library import entry_library_config, library_config

CERTIFICATE_KEYS = (CONF_CERTIFICATE_ID, CONF_PRIVATE_KEY)

_REGION_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[region.value for region in Region],
        translation_key=CONF_REGION,
        mode=SelectSelectorMode.DROPDOWN,
    )
)
_SECRET = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_CERTIFICATE_FIELDS: dict[vol.Marker, Any] = {
    vol.Optional(CONF_CERTIFICATE_ID): TextSelector(),
    vol.Optional(CONF_PRIVATE_KEY): TextSelector(TextSelectorConfig(multiline=True)),
}
# One DNS label. Checked label by label: a single pattern for the whole name
# backtracks exponentially on inputs like "aaaa...a!".
_HOST_LABEL = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
MAX_HOSTNAME = 253

# The longest value accepted per field, checked before anything parses it:
# far above any real value, small enough that a huge paste is refused at once.
MAX_LENGTHS: dict[str, int] = {
    CONF_ACCESS_TOKEN: 8192,
    CONF_CERTIFICATE_ID: 256,
    CONF_PRIVATE_KEY: MAX_PEM_CHARS,
    CONF_ACCOUNT: 254,
    CONF_PASSWORD: 1024,
    CONF_CODE: 32,
    CONF_HOST: MAX_HOSTNAME + len(":65535"),
    CONF_CA_BUNDLE: tls.MAX_BUNDLE_CHARS,
    CONF_SERIAL: SERIAL_MAX_LENGTH,
    # Printers show eight characters; far more is a paste gone wrong.
    CONF_ACCESS_CODE: 64,
}

# The form error of each reason a LAN printer failed its check.
LAN_CHECK_ERRORS: dict[LanCheckReason, str] = {
    "cannot_connect": "printer_cannot_connect",
    "unknown_ca": "tls_unknown_ca",
    "serial_mismatch": "serial_mismatch",
    "expired": "tls_expired",
    "tls_other": "tls_other",
    "access_code": "invalid_access_code",
    "no_report": "no_report",
}
# The choice of the printer list that means "type the address".
MANUAL = "manual"
# An authenticator app's code: six digits (typed with spaces, "123 456", too).
_TFA_CODE = re.compile(r"[0-9]{6}")


class _FlowError(Exception):
    """A form error: translation key plus placeholders."""

    def __init__(self, key: str, placeholders: dict[str, str] | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.placeholders = placeholders or {}


def _flow_error(err: Exception) -> _FlowError:
    """Map a library error to the form error a user can act on."""
    if isinstance(err, BambuAuthError):
        return _FlowError("invalid_auth")
    if isinstance(err, BambuForbiddenError):
        return _FlowError("forbidden")
    if isinstance(err, BambuRateLimitedError):
        return _FlowError("rate_limited")
    if isinstance(err, BambuConnectionError):
        return _FlowError("cannot_connect")
    if isinstance(err, CertificateError):
        if err.reason == "certificate_id_required":
            return _FlowError("certificate_id_required")
        return _FlowError(certificate_error_key(err.reason))
    LOGGER.exception("Unexpected error while talking to the Bambu Lab cloud")
    return _FlowError("unknown")


def _certificate_data(user_input: Mapping[str, Any]) -> dict[str, str]:
    """The non-empty certificate fields of a form."""
    return {
        key: value
        for key in CERTIFICATE_KEYS
        if (value := str(user_input.get(key) or "").strip())
    }


# A login's expiresIn beyond this is not believed (Bambu's are 90 days to a year).
MAX_TOKEN_LIFETIME = timedelta(days=3650)


def _expiry_data(expires_in: int | None) -> dict[str, str]:
    """The entry data recording when a signed-in token expires.

    Bambu's newer tokens are opaque, so the login's ``expiresIn`` is the only
    way the expiry repair can warn before such a token stops working.
    """
    if expires_in is None or not 0 < expires_in <= MAX_TOKEN_LIFETIME.total_seconds():
        return {}
    expires_at = dt_util.utcnow().replace(microsecond=0) + timedelta(seconds=expires_in)
    return {CONF_EXPIRES_AT: expires_at.isoformat()}


def _too_long(user_input: Mapping[str, Any]) -> dict[str, str]:
    """A ``too_long`` form error for each field over its length limit."""
    return {
        key: "too_long"
        for key, limit in MAX_LENGTHS.items()
        if len(str(user_input.get(key) or "")) > limit
    }


def _title(profile: Profile) -> str:
    return profile.nickname or profile.name or profile.account or profile.uid


class BambuCloudConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Bambu Lab account."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with no account and no printer chosen."""
        self._region = Region.GLOBAL.value
        self._account = ""
        # What the password login answered for an authenticator sign-in.
        self._tfa_key = ""
        # A LAN printer picked from the network or announced by discovery.
        self._lan: dict[str, str] = {}
        self._lan_name: str | None = None
        self._lan_picked = False

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: BambuConfigEntry) -> BambuOptionsFlow:
        """Options: per-printer LAN hosts and printer CA certificates."""
        return BambuOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose: paste a token, sign in, or add a printer on the network."""
        return self.async_show_menu(
            step_id="user", menu_options=["token", "sign_in", "lan"]
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The token (or a LAN printer's access code) was refused: a new one."""
        if CONF_SERIAL in entry_data:
            return await self.async_step_reauth_lan()
        self._region = entry_data[CONF_REGION]
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the same two ways to get a token."""
        return self.async_show_menu(
            step_id="reauth_confirm", menu_options=["token", "sign_in"]
        )

    async def async_step_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Paste an access token, optionally with the app certificate."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        reauth = self.source == SOURCE_REAUTH
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            region = user_input.get(CONF_REGION, self._region)
            token = AccessToken.parse(user_input[CONF_ACCESS_TOKEN]).value
            certificate = (
                self._entry_certificate_data()
                if reauth
                else _certificate_data(user_input)
            )
            try:
                profile = await self._async_profile(region, token, certificate)
            except _FlowError as err:
                errors["base"] = err.key
                placeholders = err.placeholders
            else:
                data = {CONF_REGION: region, CONF_ACCESS_TOKEN: token, **certificate}
                return await self._async_finish(profile, data)
        fields: dict[vol.Marker, Any] = {}
        if not reauth:
            fields[vol.Required(CONF_REGION, default=self._region)] = _REGION_SELECTOR
        fields[vol.Required(CONF_ACCESS_TOKEN)] = _SECRET
        if not reauth:
            fields.update(_CERTIFICATE_FIELDS)
        schema = self.add_suggested_values_to_schema(
            vol.Schema(fields), self._without_secrets(user_input)
        )
        return self.async_show_form(
            step_id="token",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_sign_in(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Sign in with account and password; the password is not stored."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            self._region = user_input.get(CONF_REGION, self._region)
            self._account = user_input[CONF_ACCOUNT].strip()
            cloud = self._cloud(self._region)
            try:
                try:
                    result = await cloud.login(self._account, user_input[CONF_PASSWORD])
                    if result.kind is LoginKind.VERIFY_CODE:
                        await cloud.send_login_code(self._account)
                except Exception as err:
                    raise _flow_error(err) from err
                if result.kind is LoginKind.VERIFY_CODE:
                    return await self.async_step_code()
                if result.kind is LoginKind.TFA:
                    if not result.tfa_key:
                        raise _FlowError("tfa_unsupported")
                    self._tfa_key = result.tfa_key
                    return await self.async_step_tfa()
                return await self._async_login_with_token(result)
            except _FlowError as err:
                errors["base"] = err.key
        return self._sign_in_form(errors)

    def _sign_in_form(self, errors: dict[str, str]) -> ConfigFlowResult:
        """The account and password form (the region too, unless reauth)."""
        reauth = self.source == SOURCE_REAUTH
        fields: dict[vol.Marker, Any] = {}
        if not reauth:
            fields[vol.Required(CONF_REGION, default=self._region)] = _REGION_SELECTOR
        fields[vol.Required(CONF_ACCOUNT, default=self._account)] = TextSelector(
            TextSelectorConfig(type=TextSelectorType.TEXT, autocomplete="username")
        )
        fields[vol.Required(CONF_PASSWORD)] = TextSelector(
            TextSelectorConfig(
                type=TextSelectorType.PASSWORD, autocomplete="current-password"
            )
        )
        return self.async_show_form(
            step_id="sign_in", data_schema=vol.Schema(fields), errors=errors
        )

    async def async_step_code(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Enter the code the cloud sent by e-mail or SMS."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            cloud = self._cloud(self._region)
            code = str(user_input[CONF_CODE]).strip()
            try:
                try:
                    result = await cloud.login_with_code(self._account, code)
                except BambuCodeError as err:
                    if not err.expired:
                        raise _FlowError("invalid_code") from err
                    await cloud.send_login_code(self._account)
                    raise _FlowError("code_expired") from err
                except Exception as err:
                    raise _flow_error(err) from err
                return await self._async_login_with_token(result)
            except _FlowError as err:
                errors["base"] = err.key
            except BambuError as err:
                errors["base"] = _flow_error(err).key
        return self.async_show_form(
            step_id="code",
            data_schema=vol.Schema({vol.Required(CONF_CODE): TextSelector()}),
            errors=errors,
            description_placeholders={"account": self._account},
        )

    async def async_step_tfa(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Enter the current code of the account's authenticator app.

        A refused code may be typed again; a sign-in that expired goes back
        to the password form, which starts a new one.
        """
        errors: dict[str, str] = {}
        code = ""
        if user_input is not None:
            errors = _too_long(user_input)
            code = "".join(str(user_input[CONF_CODE]).split())
            if not errors and not _TFA_CODE.fullmatch(code):
                errors[CONF_CODE] = "tfa_code_format"
        if user_input is not None and not errors:
            cloud = self._cloud(self._region)
            try:
                try:
                    result = await cloud.login_with_tfa(self._tfa_key, code)
                except BambuCodeError as err:
                    if err.expired:
                        return self._sign_in_form({"base": "tfa_expired"})
                    raise _FlowError("invalid_code") from err
                except BambuForbiddenError as err:
                    raise _FlowError("tfa_forbidden") from err
                except Exception as err:
                    raise _flow_error(err) from err
                return await self._async_login_with_token(result)
            except _FlowError as err:
                errors["base"] = err.key
        return self.async_show_form(
            step_id="tfa",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_CODE): TextSelector(
                        TextSelectorConfig(
                            type=TextSelectorType.TEXT, autocomplete="one-time-code"
                        )
                    )
                }
            ),
            errors=errors,
            description_placeholders={"account": self._account},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the region or the app certificate of an account."""
        entry = self._get_reconfigure_entry()
        if CONF_SERIAL in entry.data:
            return await self.async_step_reconfigure_lan()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            region = user_input[CONF_REGION]
            token = entry.data[CONF_ACCESS_TOKEN]
            certificate = _certificate_data(user_input)
            try:
                profile = await self._async_profile(region, token, certificate)
            except _FlowError as err:
                errors["base"] = err.key
                placeholders = err.placeholders
            else:
                data = {CONF_REGION: region, CONF_ACCESS_TOKEN: token, **certificate}
                # Same token, same expiry.
                if expires_at := entry.data.get(CONF_EXPIRES_AT):
                    data[CONF_EXPIRES_AT] = expires_at
                return await self._async_finish(profile, data)
        schema = self.add_suggested_values_to_schema(
            vol.Schema(
                {vol.Required(CONF_REGION): _REGION_SELECTOR, **_CERTIFICATE_FIELDS}
            ),
            user_input or {**entry.data, CONF_PRIVATE_KEY: None},
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    # ------------------------------------------------ a printer on the LAN

    async def async_step_lan(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Address, serial and access code of a printer; no account needed."""
        if (
            user_input is None
            and not self._lan_picked
            and await self._recent_printers()
        ):
            return await self.async_step_lan_pick()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
            host = str(user_input.get(CONF_HOST) or "").strip()
            serial = str(user_input.get(CONF_SERIAL) or "").strip().upper()
            if not errors and not _valid_host(host):
                errors[CONF_HOST] = "invalid_host"
            if not errors and not valid_serial(serial):
                errors[CONF_SERIAL] = "invalid_serial"
        if user_input is not None and not errors:
            await self.async_set_unique_id(serial)
            self._abort_if_unique_id_configured()
            self._abort_if_account_printer(serial)
            self._lan = {CONF_HOST: host, CONF_SERIAL: serial}
            try:
                return await self._async_lan_entry(
                    user_input[CONF_ACCESS_CODE], _certificate_data(user_input)
                )
            except _FlowError as err:
                errors["base"] = err.key
        fields: dict[vol.Marker, Any] = {
            vol.Required(CONF_HOST): TextSelector(),
            vol.Required(CONF_SERIAL): TextSelector(),
            vol.Required(CONF_ACCESS_CODE): _SECRET,
            **_CERTIFICATE_FIELDS,
        }
        return self.async_show_form(
            step_id="lan",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), self._without_secrets(user_input or self._lan)
            ),
            errors=errors,
        )

    async def async_step_lan_pick(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick one of the printers heard on the network, or type the address."""
        heard = await self._recent_printers()
        if user_input is not None:
            self._lan_picked = True
            if (printer := heard.get(user_input[CONF_PRINTER])) is not None:
                self._lan = {CONF_HOST: printer.host, CONF_SERIAL: printer.serial}
                self._lan_name = printer.name
            return await self.async_step_lan()
        options = [
            SelectOptionDict(
                value=serial,
                label=" — ".join(
                    part for part in (serial, printer.name, printer.host) if part
                ),
            )
            for serial, printer in heard.items()
        ]
        options.append(SelectOptionDict(value=MANUAL, label=MANUAL))
        schema = vol.Schema(
            {
                vol.Required(CONF_PRINTER): SelectSelector(
                    SelectSelectorConfig(
                        options=options,
                        translation_key="lan_printer",
                        mode=SelectSelectorMode.LIST,
                    )
                )
            }
        )
        return self.async_show_form(step_id="lan_pick", data_schema=schema)

    async def async_step_integration_discovery(
        self, discovery_info: dict[str, Any]
    ) -> ConfigFlowResult:
        """A printer announced itself on the network (``DiscoveredPrinter``)."""
        serial = str(discovery_info.get("serial") or "")
        host = str(discovery_info.get("host") or "")
        if not valid_serial(serial) or not _valid_host(host):
            return self.async_abort(reason="invalid_discovery")
        await self.async_set_unique_id(serial)
        # A LAN entry of this printer follows its new address; a port the
        # user typed ("host:port", a forwarded MQTT port) is kept.
        self._abort_if_unique_id_configured(
            updates={CONF_HOST: self._announced_host(serial, host)}
        )
        self._abort_if_account_printer(serial)
        name = discovery_info.get("name")
        self._lan = {CONF_HOST: host, CONF_SERIAL: serial}
        self._lan_name = name if isinstance(name, str) and name else None
        model_id = discovery_info.get("model_id")
        model = lookup_model(
            model_id=model_id if isinstance(model_id, str) else None, serial=serial
        )
        self.context["title_placeholders"] = {
            "name": self._lan_name or serial,
            "model": model.name,
            "host": host,
        }
        return await self.async_step_discovery_confirm()

    def _announced_host(self, serial: str, address: str) -> str:
        """The announced address, with the port of the known entry if it had one."""
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, serial
        )
        known = entry.data.get(CONF_HOST) if entry is not None else None
        if isinstance(known, str):
            host, port = split_host_port(known, 0)
            if port and host != known:
                return f"{address}:{port}"
        return address

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask only for the access code of the announced printer."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            try:
                return await self._async_lan_entry(user_input[CONF_ACCESS_CODE], {})
            except _FlowError as err:
                errors["base"] = err.key
        return self.async_show_form(
            step_id="discovery_confirm",
            data_schema=vol.Schema({vol.Required(CONF_ACCESS_CODE): _SECRET}),
            errors=errors,
            description_placeholders=self.context["title_placeholders"],
        )

    async def async_step_reauth_lan(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The printer refused its access code: ask for the new one."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            code = str(user_input[CONF_ACCESS_CODE]).strip()
            try:
                await self._async_check_lan(
                    entry.data[CONF_HOST],
                    entry.data[CONF_SERIAL],
                    code,
                    entry.options.get(CONF_CA_BUNDLE),
                )
            except _FlowError as err:
                errors["base"] = err.key
            else:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_ACCESS_CODE: code}
                )
        return self.async_show_form(
            step_id="reauth_lan",
            data_schema=vol.Schema({vol.Required(CONF_ACCESS_CODE): _SECRET}),
            errors=errors,
            description_placeholders={"printer": entry.title},
        )

    async def async_step_reconfigure_lan(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the address or the app certificate of a LAN printer."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
            host = str(user_input.get(CONF_HOST) or "").strip()
            if not errors and not _valid_host(host):
                errors[CONF_HOST] = "invalid_host"
        if user_input is not None and not errors:
            certificate = _certificate_data(user_input)
            try:
                await self._async_certificate(certificate)
                await self._async_check_lan(
                    host,
                    entry.data[CONF_SERIAL],
                    entry.data[CONF_ACCESS_CODE],
                    entry.options.get(CONF_CA_BUNDLE),
                )
            except _FlowError as err:
                errors["base"] = err.key
            else:
                data = {
                    CONF_HOST: host,
                    CONF_SERIAL: entry.data[CONF_SERIAL],
                    CONF_ACCESS_CODE: entry.data[CONF_ACCESS_CODE],
                    **certificate,
                }
                return self.async_update_reload_and_abort(entry, data=data)
        schema = self.add_suggested_values_to_schema(
            vol.Schema(
                {vol.Required(CONF_HOST): TextSelector(), **_CERTIFICATE_FIELDS}
            ),
            self._without_secrets(user_input)
            if user_input is not None
            else {**entry.data, CONF_PRIVATE_KEY: None},
        )
        return self.async_show_form(
            step_id="reconfigure_lan", data_schema=schema, errors=errors
        )

    async def _async_lan_entry(
        self, access_code: str, certificate: dict[str, str]
    ) -> ConfigFlowResult:
        """Check the chosen printer (and certificate); create its entry."""
        host, serial = self._lan[CONF_HOST], self._lan[CONF_SERIAL]
        code = access_code.strip()
        await self._async_certificate(certificate)
        checked = await self._async_check_lan(host, serial, code, None)
        model = checked.model.name if checked.model.model_ids else "Bambu Lab"
        return self.async_create_entry(
            title=self._lan_name or f"{model} {serial[-4:]}",
            data={
                CONF_HOST: host,
                CONF_SERIAL: serial,
                CONF_ACCESS_CODE: code,
                **certificate,
            },
        )

    async def _async_check_lan(
        self, host: str, serial: str, access_code: str, extra_pem: str | None
    ) -> LanCheck:
        """Connect as the entry would: pinned TLS, serial hostname, a report."""
        try:
            return await check_printer(
                host,
                serial,
                access_code,
                config=entry_library_config({}),
                extra_pem=extra_pem,
            )
        except LanCheckError as err:
            raise _FlowError(LAN_CHECK_ERRORS[err.reason]) from err

    async def _async_certificate(self, certificate_data: Mapping[str, str]) -> None:
        """Validate the app certificate fields like the account flow does."""
        try:
            if certificate_data:
                if CONF_PRIVATE_KEY not in certificate_data:
                    raise CertificateError("no_private_key")
                await self.hass.async_add_executor_job(
                    AppCertificate.from_pem,
                    certificate_data.get(CONF_CERTIFICATE_ID),
                    certificate_data[CONF_PRIVATE_KEY],
                )
        except CertificateError as err:
            raise _flow_error(err) from err

    async def _recent_printers(self) -> dict[str, DiscoveredPrinter]:
        """Printers heard lately that no entry (or ignored one) knows yet."""
        known = {entry.unique_id for entry in self._async_current_entries()}
        return {
            printer.serial: printer
            for printer in await async_recent_printers(self.hass)
            if printer.serial not in known
            and valid_serial(printer.serial)
            and self._account_of(printer.serial) is None
        }

    def _account_of(self, serial: str) -> str | None:
        """The title of a loaded account entry that serves this printer."""
        for entry in self._async_current_entries(include_ignore=False):
            if entry.state is not ConfigEntryState.LOADED:
                continue
            coordinator = entry.runtime_data.coordinator
            if (
                isinstance(coordinator, BambuCloudCoordinator)
                and serial in coordinator.data.printers
            ):
                return entry.title
        return None

    def _abort_if_account_printer(self, serial: str) -> None:
        """A printer of a loaded account is set up there, LAN address included."""
        if (account := self._account_of(serial)) is not None:
            raise AbortFlow("account_printer", {"account": account})

    async def _async_login_with_token(self, result: LoginResult) -> ConfigFlowResult:
        """Finish a sign-in: check the new token like a pasted one."""
        if not (token := result.access_token):
            raise _FlowError("invalid_code")
        certificate = (
            self._entry_certificate_data() if self.source == SOURCE_REAUTH else {}
        )
        profile = await self._async_profile(self._region, token, certificate)
        data = {
            CONF_REGION: self._region,
            CONF_ACCESS_TOKEN: token,
            **certificate,
            **_expiry_data(result.expires_in),
        }
        return await self._async_finish(profile, data)

    async def _async_profile(
        self, region: str, token: str, certificate_data: Mapping[str, str]
    ) -> Profile:
        """Test before configure: the profile call must succeed."""
        certificate = None
        try:
            if certificate_data:
                if CONF_PRIVATE_KEY not in certificate_data:
                    raise CertificateError("no_private_key")
                certificate = await self.hass.async_add_executor_job(
                    AppCertificate.from_pem,
                    certificate_data.get(CONF_CERTIFICATE_ID),
                    certificate_data[CONF_PRIVATE_KEY],
                )
            return await self._cloud(region, token, certificate).get_profile()
        except Exception as err:
            raise _flow_error(err) from err

    async def _async_finish(
        self, profile: Profile, data: dict[str, str]
    ) -> ConfigFlowResult:
        """Create the entry, or update it for reauth and reconfigure."""
        await self.async_set_unique_id(profile.uid)
        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            entry = self._get_reauth_entry()
            # The old token's expiry must not outlive it (a pasted token has
            # none recorded; a signed-in one brings its own).
            kept = {k: v for k, v in entry.data.items() if k != CONF_EXPIRES_AT}
            return self.async_update_reload_and_abort(entry, data={**kept, **data})
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), data=data
            )
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=_title(profile), data=data)

    def _cloud(
        self,
        region: str,
        token: str | None = None,
        certificate: AppCertificate | None = None,
    ) -> BambuCloud:
        return BambuCloud(
            async_get_clientsession(self.hass),
            library_config(region),
            token,
            certificate,
        )

    def _entry_certificate_data(self) -> dict[str, str]:
        return _certificate_data(self._get_reauth_entry().data)

    @staticmethod
    def _without_secrets(user_input: Mapping[str, Any] | None) -> dict[str, Any]:
        """Refill a form after an error, but never with a secret."""
        return {
            key: value
            for key, value in (user_input or {}).items()
            if key not in (CONF_ACCESS_TOKEN, CONF_PRIVATE_KEY)
        }


def _valid_host(value: str) -> bool:
    """An IP address or host name, optionally with ":port"; linear time."""
    host, port = split_host_port(value)
    if not 0 < port < 65536:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        return 0 < len(host) <= MAX_HOSTNAME and all(
            _HOST_LABEL.fullmatch(label) for label in labels
        )
    return True


class BambuOptionsFlow(OptionsFlowWithReload):
    """The LAN address of each printer and extra printer CA certificates.

    There is no poll interval: the bind list is polled at a fixed interval
    and ``homeassistant.update_entity`` refreshes it on demand.
    """

    def __init__(self) -> None:
        """Nothing chosen yet."""
        self._serial = ""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick what to change; an account's printers only while it is loaded.

        A LAN-only entry's address is changed by reconfiguring it, so its
        only option is the certificates.
        """
        if (
            CONF_SERIAL in self.config_entry.data
            or self.config_entry.state is not ConfigEntryState.LOADED
        ):
            return await self.async_step_certificates()
        return self.async_show_menu(
            step_id="init", menu_options=["printer", "certificates"]
        )

    async def async_step_certificates(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Extra CA certificates for printers (each pinned or chaining to a pin)."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            errors = _too_long(user_input)
        if user_input is not None and not errors:
            bundle = str(user_input.get(CONF_CA_BUNDLE) or "").strip()
            try:
                if bundle:
                    pins = entry_library_config(self.config_entry.data).pins
                    await self.hass.async_add_executor_job(
                        partial(tls.validate_user_bundle, bundle, pins=pins)
                    )
            except tls.TlsBundleError as err:
                errors[CONF_CA_BUNDLE], placeholders = bundle_error(err)
            else:
                options = {**self.config_entry.options, CONF_CA_BUNDLE: bundle}
                if not bundle:
                    options.pop(CONF_CA_BUNDLE)
                return self.async_create_entry(data=options)
        schema = self.add_suggested_values_to_schema(
            vol.Schema(
                {
                    vol.Optional(CONF_CA_BUNDLE): TextSelector(
                        TextSelectorConfig(multiline=True)
                    )
                }
            ),
            user_input or self.config_entry.options,
        )
        return self.async_show_form(
            step_id="certificates",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_printer(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the printer whose LAN address to set."""
        if user_input is not None:
            self._serial = user_input[CONF_PRINTER]
            return await self.async_step_printer_host()
        entry: BambuConfigEntry = self.config_entry
        printers = entry.runtime_data.coordinator.data.printers
        schema = vol.Schema(
            {
                vol.Required(CONF_PRINTER): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=serial, label=printer.name)
                            for serial, printer in printers.items()
                        ],
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                )
            }
        )
        return self.async_show_form(step_id="printer", data_schema=schema)

    async def async_step_printer_host(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The printer's LAN link: found by itself, off, or a fixed host.

        Automatic (the default, stored as no setting) follows the address the
        printer reports or announces; a form sent without a choice (as by
        earlier versions) means fixed when it names a host, else automatic.
        """
        errors: dict[str, str] = {}
        printers: dict[str, dict[str, str]] = {
            serial: dict(settings)
            for serial, settings in self.config_entry.options.get(
                CONF_PRINTERS, {}
            ).items()
        }
        if user_input is not None:
            errors = _too_long(user_input)
            host = str(user_input.get(CONF_HOST) or "").strip()
            mode = user_input.get(CONF_LAN) or (LAN_FIXED if host else LAN_AUTO)
            if not errors and mode == LAN_FIXED:
                if not host:
                    errors[CONF_HOST] = "host_required"
                elif not _valid_host(host):
                    errors[CONF_HOST] = "invalid_host"
            if not errors:
                if mode == LAN_FIXED:
                    printers[self._serial] = {CONF_LAN: LAN_FIXED, CONF_HOST: host}
                elif mode == LAN_OFF:
                    printers[self._serial] = {CONF_LAN: LAN_OFF}
                else:
                    printers.pop(self._serial, None)
                return self.async_create_entry(
                    data={**self.config_entry.options, CONF_PRINTERS: printers}
                )
        settings = printers.get(self._serial, {})
        current = settings.get(CONF_LAN) or (
            LAN_FIXED if settings.get(CONF_HOST) else LAN_AUTO
        )
        schema = self.add_suggested_values_to_schema(
            vol.Schema(
                {
                    vol.Optional(CONF_LAN): SelectSelector(
                        SelectSelectorConfig(
                            options=list(LAN_MODES),
                            translation_key=CONF_LAN,
                            mode=SelectSelectorMode.LIST,
                        )
                    ),
                    vol.Optional(CONF_HOST): TextSelector(),
                }
            ),
            user_input or {CONF_LAN: current, CONF_HOST: settings.get(CONF_HOST)},
        )
        entry: BambuConfigEntry = self.config_entry
        learned = entry.runtime_data.learned_hosts.get(self._serial)
        return self.async_show_form(
            step_id="printer_host",
            data_schema=schema,
            errors=errors,
            description_placeholders={
                "serial": self._serial,
                "learned": learned or "-",
            },
        )

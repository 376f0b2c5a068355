"""Config flow: add a Bambu Lab account by access token or by signing in."""

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
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
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
from .bambu.const import Region
from .bambu.errors import (
    BambuAuthError,
    BambuCodeError,
    BambuConnectionError,
    BambuError,
    BambuForbiddenError,
    BambuRateLimitedError,
)
from .bambu.hub import split_host_port
from .bambu.models import LoginKind, Profile
from .const import (
    CONF_ACCESS_TOKEN,
    CONF_ACCOUNT,
    CONF_CA_BUNDLE,
    CONF_CERTIFICATE_ID,
    CONF_CODE,
    CONF_EXPIRES_AT,
    CONF_HOST,
    CONF_LAN,
    CONF_POLL_INTERVAL,
    CONF_PRINTER,
    CONF_PRINTERS,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    DEFAULT_POLL_INTERVAL,
    DOMAIN,
    LAN_AUTO,
    LAN_FIXED,
    LAN_MODES,
    LAN_OFF,
    LOGGER,
    MIN_POLL_INTERVAL,
)
from .coordinator import BambuConfigEntry
from .error_reasons import bundle_error, certificate_error_key
from .library import library_config

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
}


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
        """Start with no account chosen."""
        self._region = Region.GLOBAL.value
        self._account = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: BambuConfigEntry) -> BambuOptionsFlow:
        """Options: poll interval and per-printer LAN hosts."""
        return BambuOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose between pasting a token and signing in."""
        return self.async_show_menu(step_id="user", menu_options=["token", "sign_in"])

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The token was refused: get a new one for the same account."""
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
        reauth = self.source == SOURCE_REAUTH
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
                if result.kind is LoginKind.TFA or not result.access_token:
                    raise _FlowError("tfa_unsupported")
                return await self._async_login_with_token(
                    result.access_token, result.expires_in
                )
            except _FlowError as err:
                errors["base"] = err.key
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
                if not result.access_token:
                    raise _FlowError("invalid_code")
                return await self._async_login_with_token(
                    result.access_token, result.expires_in
                )
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

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the region or the app certificate of an account."""
        entry = self._get_reconfigure_entry()
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

    async def _async_login_with_token(
        self, token: str, expires_in: int | None
    ) -> ConfigFlowResult:
        """Finish a sign-in: check the new token like a pasted one."""
        certificate = (
            self._entry_certificate_data() if self.source == SOURCE_REAUTH else {}
        )
        profile = await self._async_profile(self._region, token, certificate)
        data = {
            CONF_REGION: self._region,
            CONF_ACCESS_TOKEN: token,
            **certificate,
            **_expiry_data(expires_in),
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
    """Poll interval and the LAN address of each printer."""

    def __init__(self) -> None:
        """Nothing chosen yet."""
        self._serial = ""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick what to change; printers only while the entry is loaded."""
        options = ["settings"]
        if self.config_entry.state is ConfigEntryState.LOADED:
            options.append("printer")
        options.append("certificates")
        return self.async_show_menu(step_id="init", menu_options=options)

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
                    pins = library_config(self.config_entry.data[CONF_REGION]).pins
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

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """How often to poll the cloud."""
        if user_input is not None:
            return self.async_create_entry(
                data={
                    **self.config_entry.options,
                    CONF_POLL_INTERVAL: int(user_input[CONF_POLL_INTERVAL]),
                }
            )
        current = self.config_entry.options.get(
            CONF_POLL_INTERVAL, int(DEFAULT_POLL_INTERVAL.total_seconds())
        )
        schema = vol.Schema(
            {
                vol.Required(CONF_POLL_INTERVAL, default=current): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_POLL_INTERVAL.total_seconds(),
                        max=3600,
                        step=1,
                        unit_of_measurement="s",
                        mode=NumberSelectorMode.BOX,
                    )
                )
            }
        )
        return self.async_show_form(step_id="settings", data_schema=schema)

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

"""Set up a router: pick its kind, connect, prove the login holds every right a poll needs."""

import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.selector import (
    BooleanSelector,
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

from .const import (
    CONF_AUTO_QUARANTINE,
    CONF_AUTO_QUARANTINE_MINUTES,
    CONF_CONNTRACK_CAP,
    CONF_FANOUT_HOSTS,
    CONF_FULL_BLOCK,
    CONF_GATEWAY,
    CONF_HOST_KEY,
    CONF_LAN_RESOLVERS,
    CONF_LEARNING_HOURS,
    CONF_LEASES_PATH,
    CONF_PROTECTED_DEVICES,
    CONF_ROUTER_KIND,
    CONF_SCAN_INTERVAL,
    CONF_SITE,
    CONF_SSH_KEY,
    CONF_STALE_DAYS,
    CONF_TRACKED_DEVICES,
    CONF_UNREPLIED_ATTEMPTS,
    CONF_WINDOW,
    DEFAULT_AUTO_QUARANTINE_MINUTES,
    DEFAULT_CONNTRACK_CAP,
    DEFAULT_FANOUT_HOSTS,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_LEARNING_HOURS,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SSH_PORT,
    DEFAULT_SSH_USERNAME,
    DEFAULT_STALE_DAYS,
    DEFAULT_UNIFI_SITE,
    DEFAULT_UNREPLIED_ATTEMPTS,
    DEFAULT_WINDOW,
    DOMAIN,
    FINDING_KINDS,
    MAX_AUTO_QUARANTINE_MINUTES,
    MAX_CONNTRACK_CAP,
    MAX_FANOUT_HOSTS,
    MAX_LEARNING_HOURS,
    MAX_SCAN_INTERVAL,
    MAX_STALE_DAYS,
    MAX_UNREPLIED_ATTEMPTS,
    MAX_WINDOW,
    MIN_CONNTRACK_CAP,
    MIN_FANOUT_HOSTS,
    MIN_LEARNING_HOURS,
    MIN_SCAN_INTERVAL,
    MIN_STALE_DAYS,
    MIN_UNREPLIED_ATTEMPTS,
    MIN_WINDOW,
    ROUTER_KIND_DEMO,
    ROUTER_KIND_LINUX_SSH,
    ROUTER_KIND_OPENWRT,
    ROUTER_KIND_UNIFI,
    ROUTER_KINDS,
)
from .core.addresses import normalize_mac
from .router_factory import create_router
from .routers.base import (
    RouterAuthError,
    RouterConnectionError,
    RouterError,
    RouterHostKeyError,
    RouterInfo,
    RouterPermissionError,
    RouterResponseError,
    RouterTLSError,
)
from .routers.linux_ssh import HostKey, LinuxSshRouter, fetch_host_key
from .routers.unifi import UniFiRouter
from .routers.unifi_api import ADMIN_HELP

_LOGGER = logging.getLogger(__name__)

README_URL: Final = "https://github.com/phonehome-guard/phonehome#openwrt-access"
SSH_README_URL: Final = "https://github.com/phonehome-guard/phonehome#linux-router-over-ssh"
UNIFI_README_URL: Final = "https://github.com/phonehome-guard/phonehome#unifi-network"
PLAIN_PATH: Final = re.compile(r"/[A-Za-z0-9._+@,:=/-]+")
"""A leases path as the form takes it: absolute, no spaces, quotes, globs or variables."""
MAX_PATH: Final = 4095
"""Longest path Linux opens (PATH_MAX, 4096 bytes with the final NUL)."""
CONNTRACK_ACLS: Final = ("getConntrackList", "nf_conntrack_count")
HOST_HINT_ACLS: Final = ("getHostHints", "getDHCPLeases")

_PORT_SELECTOR: Final = NumberSelector(
    NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX)
)


class _ValidationError(Exception):
    """The router check failed: the form's error key and its placeholders."""

    def __init__(self, error: str, acl: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.acl = acl


async def validate_router(hass: HomeAssistant, data: Mapping[str, Any]) -> RouterInfo:
    """Log in, identify the router and check its ACL; raises _ValidationError."""
    router = create_router(hass, data, {})
    try:
        info = await router.connect()
        await router.check_access()
    except RouterTLSError as err:
        raise _ValidationError("tls_error") from err
    except RouterConnectionError as err:
        raise _ValidationError("cannot_connect") from err
    except RouterAuthError as err:
        raise _ValidationError("invalid_auth") from err
    except RouterPermissionError as err:
        acl = err.acl or ""
        if any(name in acl for name in CONNTRACK_ACLS):
            raise _ValidationError("missing_acl_conntrack", acl) from err
        if any(name in acl for name in HOST_HINT_ACLS):
            raise _ValidationError("missing_acl_host_hints", acl) from err
        raise _ValidationError("missing_acl", acl or str(err)) from err
    except RouterResponseError as err:
        raise _ValidationError("not_openwrt") from err
    except Exception as err:
        _LOGGER.exception("Unexpected error while checking the router at %s", data[CONF_HOST])
        raise _ValidationError("unknown") from err
    finally:
        await router.close()
    return info


async def validate_ssh_router(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[RouterInfo, str | None]:
    """Log in with the pinned host key, identify the router, check it can read the table.

    Returns the router and, when it cannot quarantine (nft missing or not permitted),
    why; raises _ValidationError.
    """
    router = create_router(hass, data, {})
    assert isinstance(router, LinuxSshRouter)
    try:
        info = await router.connect()
        await router.check_access(quarantine=False)
        try:
            await router.check_access(quarantine=True)
        except RouterPermissionError as err:
            return info, str(err)
    except RouterHostKeyError as err:
        raise _ValidationError("host_key_changed") from err
    except RouterConnectionError as err:
        raise _ValidationError("ssh_cannot_connect") from err
    except RouterAuthError as err:
        raise _ValidationError("ssh_invalid_auth") from err
    except RouterPermissionError as err:
        raise _ValidationError("conntrack_unreadable", err.acl or "") from err
    except RouterResponseError as err:
        _LOGGER.warning("%s:%s does not answer as a Linux shell: %s", *_where(data), err)
        raise _ValidationError("ssh_not_linux") from err
    except Exception as err:
        _LOGGER.exception("Unexpected error while checking the router at %s:%s", *_where(data))
        raise _ValidationError("unknown") from err
    finally:
        await router.close()
    return info, None


async def validate_unifi_router(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[RouterInfo, str | None]:
    """Log in, identify the controller and site, check the reads a poll makes.

    Returns the site and, when this account cannot quarantine there (read-only, or
    no object-oriented network configs), why; raises _ValidationError.
    """
    router = create_router(hass, data, {})
    assert isinstance(router, UniFiRouter)
    try:
        info = await router.connect()
        await router.check_access()
    except RouterTLSError as err:
        raise _ValidationError("unifi_tls_error") from err
    except RouterConnectionError as err:
        raise _ValidationError("unifi_cannot_connect") from err
    except RouterAuthError as err:
        two_factor = "two-factor code" in str(err)
        raise _ValidationError("two_factor" if two_factor else "unifi_invalid_auth") from err
    except RouterPermissionError as err:
        raise _ValidationError("no_permission", err.acl or "") from err
    except RouterResponseError as err:
        _LOGGER.warning("%s:%s does not answer as UniFi Network: %s", *_where(data), err)
        raise _ValidationError(
            "unknown_site" if "has no site" in str(err) else "not_unifi"
        ) from err
    except Exception as err:
        _LOGGER.exception("Unexpected error while checking the controller at %s:%s", *_where(data))
        raise _ValidationError("unknown") from err
    finally:
        await router.close()
    if not router.admin:
        return info, ADMIN_HELP
    if not router.oon:
        return info, (
            "this controller has no object-oriented network configs (UniFi Network 9.4 "
            "or later): update it, or turn on Full block in the integration's options"
        )
    return info, None


async def _validate(hass: HomeAssistant, data: Mapping[str, Any]) -> RouterInfo:
    """The router of ``data`` checked by its kind's validation; raises _ValidationError."""
    kind = data.get(CONF_ROUTER_KIND)
    if kind == ROUTER_KIND_LINUX_SSH:
        return (await validate_ssh_router(hass, data))[0]
    if kind == ROUTER_KIND_UNIFI:
        return (await validate_unifi_router(hass, data))[0]
    return await validate_router(hass, data)


def _without(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in keys}


def _where(data: Mapping[str, Any]) -> tuple[str, int]:
    return data[CONF_HOST], data[CONF_PORT]


def _ssh_input(user_input: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The SSH form's input, trimmed (empty optional fields left out), and its errors.

    A login (the username's presence says there is one) needs a password or a key.
    """
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, given in user_input.items():
        value = given.strip() if isinstance(given, str) else given
        if value not in ("", None) or key == CONF_USERNAME:
            data[key] = int(value) if key == CONF_PORT else value
    if CONF_SSH_KEY in data:
        data[CONF_SSH_KEY] += "\n"
    if CONF_USERNAME in data and not (CONF_PASSWORD in data or CONF_SSH_KEY in data):
        errors["base"] = "auth_required"
    leases = data.get(CONF_LEASES_PATH)
    if leases is not None and (
        not PLAIN_PATH.fullmatch(leases)
        or ".." in leases.split("/")
        or leases.endswith("/")
        or len(leases) > MAX_PATH
    ):
        errors[CONF_LEASES_PATH] = "invalid_leases_path"
    return data, errors


def _with_port(data: Mapping[str, Any]) -> dict[str, Any]:
    """The input with a port: the one given, else 443 with HTTPS and 80 without."""
    out = dict(data)
    if out.get(CONF_PORT) is None:
        out[CONF_PORT] = DEFAULT_HTTPS_PORT if out.get(CONF_SSL) else DEFAULT_HTTP_PORT
    out[CONF_PORT] = int(out[CONF_PORT])
    return out


def _connection_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    port = defaults.get(CONF_PORT)
    return {
        vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED)): TextSelector(),
        vol.Optional(
            CONF_PORT, description={"suggested_value": port} if port is not None else None
        ): _PORT_SELECTOR,
        vol.Required(CONF_SSL, default=defaults.get(CONF_SSL, False)): BooleanSelector(),
        vol.Required(
            CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True)
        ): BooleanSelector(),
    }


def _ssh_address_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    return {
        vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED)): TextSelector(),
        vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_SSH_PORT)): _PORT_SELECTOR,
    }


def _ssh_login_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """Username, and a password or a private key; the secrets are never filled in."""
    return {
        vol.Required(
            CONF_USERNAME, default=defaults.get(CONF_USERNAME, DEFAULT_SSH_USERNAME)
        ): TextSelector(),
        vol.Optional(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
        vol.Optional(CONF_SSH_KEY): TextSelector(TextSelectorConfig(multiline=True)),
    }


def _leases_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    leases = defaults.get(CONF_LEASES_PATH)
    return {
        vol.Optional(
            CONF_LEASES_PATH, description={"suggested_value": leases} if leases else None
        ): TextSelector()
    }


def _unifi_address_schema(
    defaults: Mapping[str, Any], *, site: bool = True
) -> dict[vol.Marker, Any]:
    """Host, port, site (left out when reconfiguring: it is the entry's identity), TLS check."""
    schema: dict[vol.Marker, Any] = {
        vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED)): TextSelector(),
        vol.Required(
            CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_HTTPS_PORT)
        ): _PORT_SELECTOR,
    }
    if site:
        schema[vol.Required(CONF_SITE, default=defaults.get(CONF_SITE, DEFAULT_UNIFI_SITE))] = (
            TextSelector()
        )
    schema[vol.Required(CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True))] = (
        BooleanSelector()
    )
    return schema


def _unifi_input(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The UniFi form's input: the port as a number, host and site trimmed."""
    data = dict(user_input)
    data[CONF_PORT] = int(data[CONF_PORT])
    for key in (CONF_HOST, CONF_SITE):
        if key in data:
            data[key] = data[key].strip()
    return data


def _credentials_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    return {
        vol.Required(CONF_USERNAME, default=defaults.get(CONF_USERNAME, "hass")): TextSelector(),
        vol.Required(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
    }


class PhoneHomeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Router kind -> that kind's connection form -> one validated entry per router."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        self._ssh_data: dict[str, Any] = {}
        """The SSH router's entry data so far (the host key once confirmed)."""
        self._presented: HostKey | None = None
        """The host key the router presented, shown for confirmation."""
        self._confirmed_key: str | None = None
        """The host key the owner confirmed (or the entry pinned): the only one pinned."""
        self._unifi: tuple[RouterInfo, dict[str, Any]] | None = None
        """The checked UniFi site and its entry data, while its gateway's SSH login is asked."""
        self._pending: tuple[RouterInfo, dict[str, Any]] | None = None
        """The checked router and its entry data, waiting for the no-quarantine notice."""
        self._no_quarantine: str | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Polling and detection settings."""
        return PhoneHomeOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which kind of router."""
        if user_input is not None:
            kind = user_input[CONF_ROUTER_KIND]
            if kind == ROUTER_KIND_DEMO:
                return await self.async_step_demo()
            if kind == ROUTER_KIND_LINUX_SSH:
                return await self.async_step_linux_ssh()
            if kind == ROUTER_KIND_UNIFI:
                return await self.async_step_unifi()
            return await self.async_step_openwrt()
        schema = vol.Schema(
            {
                vol.Required(CONF_ROUTER_KIND, default=ROUTER_KIND_OPENWRT): SelectSelector(
                    SelectSelectorConfig(
                        options=list(ROUTER_KINDS),
                        translation_key=CONF_ROUTER_KIND,
                        mode=SelectSelectorMode.LIST,
                    )
                )
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema)

    async def async_step_demo(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The simulated home network: nothing to ask, one entry at most."""
        if user_input is not None:
            data = {CONF_ROUTER_KIND: ROUTER_KIND_DEMO}
            info = await create_router(self.hass, data, {}).connect()
            await self.async_set_unique_id(info.unique_id)
            self._abort_if_unique_id_configured()
            return self.async_create_entry(title=info.name, data=data)
        return self.async_show_form(step_id="demo", data_schema=vol.Schema({}))

    async def async_step_openwrt(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Address and login of an OpenWrt router; validated before the entry exists."""
        errors: dict[str, str] = {}
        acl = ""
        if user_input is not None:
            data = {CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT, **_with_port(user_input)}
            try:
                info = await validate_router(self.hass, data)
            except _ValidationError as err:
                errors["base"], acl = err.error, err.acl
            else:
                await self.async_set_unique_id(info.unique_id)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=info.name, data=data)
        defaults = user_input or {}
        schema = vol.Schema({**_connection_schema(defaults), **_credentials_schema(defaults)})
        return self.async_show_form(
            step_id="openwrt",
            data_schema=schema,
            errors=errors,
            description_placeholders={"readme_url": README_URL, "acl": acl},
        )

    async def async_step_unifi(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Address, login and site of a UniFi Network controller; validated before the entry exists."""
        errors: dict[str, str] = {}
        acl = ""
        if user_input is not None:
            data = {CONF_ROUTER_KIND: ROUTER_KIND_UNIFI, **_unifi_input(user_input)}
            try:
                info, self._no_quarantine = await validate_unifi_router(self.hass, data)
            except _ValidationError as err:
                field = CONF_SITE if err.error == "unknown_site" else "base"
                errors[field], acl = err.error, err.acl
            else:
                await self.async_set_unique_id(info.unique_id)
                self._abort_if_unique_id_configured()
                self._unifi = info, data
                return await self.async_step_unifi_gateway()
        defaults = user_input or {}
        schema = vol.Schema({**_unifi_address_schema(defaults), **_credentials_schema(defaults)})
        return self.async_show_form(
            step_id="unifi",
            data_schema=schema,
            errors=errors,
            description_placeholders={"readme_url": UNIFI_README_URL, "acl": acl},
        )

    async def async_step_unifi_gateway(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Optional: the gateway's SSH login, whose conntrack gives the connections."""
        if user_input is None:
            return self._ssh_form()
        data, errors = _ssh_input(user_input)
        if CONF_HOST not in data:
            return await self._finish_unifi(None)
        self._ssh_data = {CONF_ROUTER_KIND: ROUTER_KIND_LINUX_SSH, **data}
        if errors:
            return self._ssh_form(errors)
        return await self._fetch_host_key()

    async def _finish_unifi(self, gateway: dict[str, Any] | None) -> ConfigFlowResult:
        """The checked site's entry, with the gateway's checked login if one was given."""
        assert self._unifi is not None
        info, data = self._unifi
        if gateway is not None:
            data = {**data, CONF_GATEWAY: gateway}
        if self._no_quarantine:
            self._pending = info, data
            return await self.async_step_unifi_no_quarantine()
        return self.async_create_entry(title=info.name, data=data)

    async def async_step_unifi_no_quarantine(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The site can be read but this account cannot quarantine: say so, add it if agreed."""
        return await self._no_quarantine_step("unifi_no_quarantine", UNIFI_README_URL, user_input)

    async def async_step_linux_ssh(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Address and login of a Linux router over SSH; its host key is confirmed next."""
        if user_input is None:
            return self._ssh_form()
        data, errors = _ssh_input(user_input)
        self._ssh_data = {CONF_ROUTER_KIND: ROUTER_KIND_LINUX_SSH, **data}
        if errors:
            return self._ssh_form(errors)
        return await self._fetch_host_key()

    async def _fetch_host_key(self) -> ConfigFlowResult:
        """Ask the router for its host key: the pinned one goes on, another is confirmed first."""
        try:
            self._presented = await fetch_host_key(*_where(self._ssh_data))
        except RouterError:
            return self._ssh_form({"base": "ssh_cannot_connect"})
        if self._presented.public_key == self._confirmed_key:
            return await self._finish_ssh()
        return await self.async_step_linux_ssh_host_key()

    async def async_step_linux_ssh_host_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the presented host key; only the owner's confirmation pins it."""
        key = self._presented
        assert key is not None
        if user_input is None:
            return self.async_show_form(
                step_id="linux_ssh_host_key",
                data_schema=vol.Schema({}),
                description_placeholders={
                    "host": self._ssh_data[CONF_HOST],
                    "algorithm": key.algorithm,
                    "fingerprint": key.fingerprint,
                    "readme_url": SSH_README_URL,
                },
            )
        self._confirmed_key = key.public_key
        return await self._finish_ssh()

    async def _finish_ssh(self) -> ConfigFlowResult:
        """Log in with the confirmed key; then create the entry, or update the reconfigured one."""
        data = {**self._ssh_data, CONF_HOST_KEY: self._confirmed_key}
        try:
            info, no_quarantine = await validate_ssh_router(self.hass, data)
        except _ValidationError as err:
            return self._ssh_form({"base": err.error}, err.acl)
        if self._unifi is not None:  # the gateway only gives connections: no nft needed
            return await self._finish_unifi(_without(data, CONF_ROUTER_KIND))
        self._no_quarantine = no_quarantine
        await self.async_set_unique_id(info.unique_id)
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch()
            return self.async_update_reload_and_abort(self._get_reconfigure_entry(), data=data)
        self._abort_if_unique_id_configured()
        self._pending = info, data
        if self._no_quarantine:
            return await self.async_step_linux_ssh_no_quarantine()
        return self.async_create_entry(title=info.name, data=data)

    async def async_step_linux_ssh_no_quarantine(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The router can be read but not quarantine (no nft): say so, add it if the owner agrees."""
        return await self._no_quarantine_step("linux_ssh_no_quarantine", SSH_README_URL, user_input)

    async def _no_quarantine_step(
        self, step_id: str, readme_url: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Why quarantine will not work; submitting adds the router all the same."""
        if user_input is None:
            return self.async_show_form(
                step_id=step_id,
                data_schema=vol.Schema({}),
                description_placeholders={
                    "error": self._no_quarantine or "",
                    "readme_url": readme_url,
                },
            )
        assert self._pending is not None
        info, data = self._pending
        return self.async_create_entry(title=info.name, data=data)

    def _ssh_form(self, errors: dict[str, str] | None = None, acl: str = "") -> ConfigFlowResult:
        """The SSH router's form of this flow (setup or reconfigure), filled with its input."""
        defaults = self._ssh_data
        readme_url = SSH_README_URL
        if self._unifi is not None:
            step_id, readme_url = "unifi_gateway", UNIFI_README_URL
            host = defaults.get(CONF_HOST)
            schema = {
                vol.Optional(
                    CONF_HOST, description={"suggested_value": host} if host else None
                ): TextSelector(),
                vol.Required(
                    CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_SSH_PORT)
                ): _PORT_SELECTOR,
                **_ssh_login_schema(defaults),
            }
        elif self.source == SOURCE_RECONFIGURE:
            step_id = "reconfigure_linux_ssh"
            schema = {**_ssh_address_schema(defaults), **_leases_schema(defaults)}
        else:
            step_id = "linux_ssh"
            schema = {
                **_ssh_address_schema(defaults),
                **_ssh_login_schema(defaults),
                **_leases_schema(defaults),
            }
        return self.async_show_form(
            step_id=step_id,
            data_schema=vol.Schema(schema),
            errors=errors or {},
            description_placeholders={"readme_url": readme_url, "acl": acl},
        )

    async def async_step_reconfigure_linux_ssh(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new address or leases path; a host key other than the pinned one is confirmed first."""
        entry = self._get_reconfigure_entry()
        if user_input is None:
            self._ssh_data = dict(entry.data)
            self._confirmed_key = entry.data[CONF_HOST_KEY]
            return self._ssh_form()
        data, errors = _ssh_input(user_input)
        self._ssh_data = _without(entry.data, CONF_HOST_KEY, CONF_LEASES_PATH) | data
        if errors:
            return self._ssh_form(errors)
        return await self._fetch_host_key()

    async def async_step_reauth_linux_ssh(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new password or private key for the SSH router; its pinned host key stays."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        acl = ""
        if user_input is not None:
            login, errors = _ssh_input(user_input)
            if not errors:
                result, errors, acl = await self._update_entry(
                    entry, login, replaced=(CONF_PASSWORD, CONF_SSH_KEY)
                )
                if result is not None:
                    return result
        return self.async_show_form(
            step_id="reauth_linux_ssh",
            data_schema=vol.Schema(_ssh_login_schema(user_input or entry.data)),
            errors=errors,
            description_placeholders={
                "readme_url": SSH_README_URL,
                "acl": acl,
                "name": entry.title,
            },
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The router refused the stored login."""
        if entry_data.get(CONF_ROUTER_KIND) == ROUTER_KIND_LINUX_SSH:
            return await self.async_step_reauth_linux_ssh()
        if entry_data.get(CONF_ROUTER_KIND) == ROUTER_KIND_UNIFI:
            return await self.async_step_reauth_unifi()
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new username and password for the same router."""
        entry = self._get_reauth_entry()
        return await self._entry_form(
            "reauth_confirm",
            entry,
            user_input,
            updates=dict,
            schema=_credentials_schema,
            placeholders={"readme_url": README_URL, "name": entry.title},
        )

    async def async_step_reauth_unifi(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new username and password for the same UniFi controller and site."""
        entry = self._get_reauth_entry()
        return await self._entry_form(
            "reauth_unifi",
            entry,
            user_input,
            updates=dict,
            schema=_credentials_schema,
            placeholders={"readme_url": UNIFI_README_URL, "name": entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new address for the same router; the login stays."""
        entry = self._get_reconfigure_entry()
        if entry.data.get(CONF_ROUTER_KIND) == ROUTER_KIND_LINUX_SSH:
            return await self.async_step_reconfigure_linux_ssh()
        if entry.data.get(CONF_ROUTER_KIND) == ROUTER_KIND_UNIFI:
            return await self.async_step_reconfigure_unifi()
        return await self._entry_form(
            "reconfigure",
            entry,
            user_input,
            updates=_with_port,
            schema=_connection_schema,
            placeholders={"readme_url": README_URL},
        )

    async def async_step_reconfigure_unifi(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new address, port or TLS check for the same controller and site; the login stays."""
        return await self._entry_form(
            "reconfigure_unifi",
            self._get_reconfigure_entry(),
            user_input,
            updates=_unifi_input,
            schema=lambda defaults: _unifi_address_schema(defaults, site=False),
            placeholders={"readme_url": UNIFI_README_URL},
        )

    async def _entry_form(  # noqa: PLR0913
        self,
        step_id: str,
        entry: ConfigEntry,
        user_input: dict[str, Any] | None,
        *,
        updates: Callable[[Mapping[str, Any]], dict[str, Any]],
        schema: Callable[[Mapping[str, Any]], dict[vol.Marker, Any]],
        placeholders: dict[str, str],
    ) -> ConfigFlowResult:
        """A form that changes the entry: stored and reloaded once the router takes it."""
        errors: dict[str, str] = {}
        acl = ""
        if user_input is not None:
            result, errors, acl = await self._update_entry(entry, updates(user_input))
            if result is not None:
                return result
        return self.async_show_form(
            step_id=step_id,
            data_schema=vol.Schema(schema(user_input or entry.data)),
            errors=errors,
            description_placeholders={**placeholders, "acl": acl},
        )

    async def _update_entry(
        self, entry: ConfigEntry, updates: dict[str, Any], replaced: tuple[str, ...] = ()
    ) -> tuple[ConfigFlowResult | None, dict[str, str], str]:
        """Check the entry's router with ``updates`` applied; if it holds, store and reload.

        ``replaced`` keys are dropped from the entry first (a new login replaces both
        secrets). Returns the flow's end (None while the check fails), the form errors
        and the missing right to name.
        """
        data = _without(entry.data, *replaced) | updates
        try:
            info = await _validate(self.hass, data)
        except _ValidationError as err:
            return None, {"base": err.error}, err.acl
        await self.async_set_unique_id(info.unique_id)
        self._abort_if_unique_id_mismatch()
        return self.async_update_reload_and_abort(entry, data=data), {}, ""


def _number(low: int, high: int, unit: str) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=low, max=high, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement=unit
        )
    )


def _ip(value: str) -> str | None:
    """The address in its canonical spelling, or None if it is not one."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


class PhoneHomeOptionsFlow(OptionsFlow):
    """How often to poll, what to look at, and which devices to track."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option."""
        errors: dict[str, str] = {}
        if user_input is not None:
            macs = [normalize_mac(value) for value in user_input.get(CONF_TRACKED_DEVICES, [])]
            protected = [
                normalize_mac(value) for value in user_input.get(CONF_PROTECTED_DEVICES, [])
            ]
            resolvers = [_ip(value) for value in user_input.get(CONF_LAN_RESOLVERS, [])]
            if any(mac is None for mac in macs):
                errors[CONF_TRACKED_DEVICES] = "invalid_mac"
            if any(mac is None for mac in protected):
                errors[CONF_PROTECTED_DEVICES] = "invalid_protected_mac"
            if any(ip is None for ip in resolvers):
                errors[CONF_LAN_RESOLVERS] = "invalid_ip"
            if not errors:
                options: dict[str, Any] = {
                    key: int(user_input[key])
                    for key in (
                        CONF_SCAN_INTERVAL,
                        CONF_WINDOW,
                        CONF_STALE_DAYS,
                        CONF_CONNTRACK_CAP,
                        CONF_FANOUT_HOSTS,
                        CONF_UNREPLIED_ATTEMPTS,
                        CONF_LEARNING_HOURS,
                        CONF_AUTO_QUARANTINE_MINUTES,
                    )
                    if key in user_input
                }
                if CONF_FULL_BLOCK in user_input:
                    options[CONF_FULL_BLOCK] = bool(user_input[CONF_FULL_BLOCK])
                options[CONF_TRACKED_DEVICES] = list(dict.fromkeys(macs))
                options[CONF_LAN_RESOLVERS] = list(dict.fromkeys(resolvers))
                options[CONF_PROTECTED_DEVICES] = list(dict.fromkeys(protected))
                options[CONF_AUTO_QUARANTINE] = [
                    kind
                    for kind in FINDING_KINDS
                    if kind in user_input.get(CONF_AUTO_QUARANTINE, [])
                ]
                return self.async_create_entry(data=options)
        current = user_input or self.config_entry.options
        devices = SelectSelector(
            SelectSelectorConfig(
                options=self._known_devices(),
                multiple=True,
                custom_value=True,
                mode=SelectSelectorMode.DROPDOWN,
            )
        )
        fields: dict[vol.Marker, Any] = {
            vol.Required(
                CONF_SCAN_INTERVAL,
                default=current.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL),
            ): _number(MIN_SCAN_INTERVAL, MAX_SCAN_INTERVAL, "s"),
            vol.Required(CONF_WINDOW, default=current.get(CONF_WINDOW, DEFAULT_WINDOW)): _number(
                MIN_WINDOW, MAX_WINDOW, "min"
            ),
            vol.Required(
                CONF_STALE_DAYS, default=current.get(CONF_STALE_DAYS, DEFAULT_STALE_DAYS)
            ): _number(MIN_STALE_DAYS, MAX_STALE_DAYS, "d"),
            vol.Required(
                CONF_CONNTRACK_CAP,
                default=current.get(CONF_CONNTRACK_CAP, DEFAULT_CONNTRACK_CAP),
            ): _number(MIN_CONNTRACK_CAP, MAX_CONNTRACK_CAP, "connections"),
            vol.Required(
                CONF_FANOUT_HOSTS, default=current.get(CONF_FANOUT_HOSTS, DEFAULT_FANOUT_HOSTS)
            ): _number(MIN_FANOUT_HOSTS, MAX_FANOUT_HOSTS, "hosts"),
            vol.Required(
                CONF_UNREPLIED_ATTEMPTS,
                default=current.get(CONF_UNREPLIED_ATTEMPTS, DEFAULT_UNREPLIED_ATTEMPTS),
            ): _number(MIN_UNREPLIED_ATTEMPTS, MAX_UNREPLIED_ATTEMPTS, "attempts"),
            vol.Required(
                CONF_LEARNING_HOURS,
                default=current.get(CONF_LEARNING_HOURS, DEFAULT_LEARNING_HOURS),
            ): _number(MIN_LEARNING_HOURS, MAX_LEARNING_HOURS, "h"),
            vol.Optional(
                CONF_LAN_RESOLVERS, default=list(current.get(CONF_LAN_RESOLVERS, []))
            ): SelectSelector(
                SelectSelectorConfig(
                    options=[],
                    multiple=True,
                    custom_value=True,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Optional(
                CONF_TRACKED_DEVICES, default=list(current.get(CONF_TRACKED_DEVICES, []))
            ): devices,
            vol.Optional(
                CONF_PROTECTED_DEVICES, default=list(current.get(CONF_PROTECTED_DEVICES, []))
            ): devices,
            vol.Optional(
                CONF_AUTO_QUARANTINE, default=list(current.get(CONF_AUTO_QUARANTINE, []))
            ): SelectSelector(
                SelectSelectorConfig(
                    options=list(FINDING_KINDS),
                    multiple=True,
                    translation_key="finding_kind",
                    mode=SelectSelectorMode.LIST,
                )
            ),
            vol.Required(
                CONF_AUTO_QUARANTINE_MINUTES,
                default=current.get(CONF_AUTO_QUARANTINE_MINUTES, DEFAULT_AUTO_QUARANTINE_MINUTES),
            ): _number(0, MAX_AUTO_QUARANTINE_MINUTES, "min"),
        }
        if self.config_entry.data.get(CONF_ROUTER_KIND) == ROUTER_KIND_UNIFI:
            # The controller pages its own flow records: LuCI's table cap does not apply.
            fields = {key: value for key, value in fields.items() if key != CONF_CONNTRACK_CAP}
            fields[vol.Required(CONF_FULL_BLOCK, default=current.get(CONF_FULL_BLOCK, False))] = (
                BooleanSelector()
            )
        schema = vol.Schema(fields)
        return self.async_show_form(
            step_id="init",
            data_schema=schema,
            errors=errors,
            description_placeholders={"readme_url": README_URL},
        )

    def _known_devices(self) -> list[SelectOptionDict]:
        """The LAN devices this entry already made, by MAC, labelled with their names."""
        registry = dr.async_get(self.hass)
        found: dict[str, str] = {}
        for device in dr.async_entries_for_config_entry(registry, self.config_entry.entry_id):
            for kind, value in device.connections:
                mac = normalize_mac(value) if kind == dr.CONNECTION_NETWORK_MAC else None
                if mac is not None:
                    name = device.name_by_user or device.name or mac
                    found[mac] = f"{name} ({mac})"
        return [SelectOptionDict(value=mac, label=label) for mac, label in sorted(found.items())]

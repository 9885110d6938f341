"""Build the router client a config entry describes, on Home Assistant's shared web session."""

from collections.abc import Mapping
from typing import Any

from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import (
    CONF_CONNTRACK_CAP,
    CONF_FULL_BLOCK,
    CONF_GATEWAY,
    CONF_HOST_KEY,
    CONF_LEASES_PATH,
    CONF_ROUTER_KIND,
    CONF_SITE,
    CONF_SSH_KEY,
    DEFAULT_CONNTRACK_CAP,
    DEFAULT_UNIFI_SITE,
    ROUTER_KIND_DEMO,
    ROUTER_KIND_LINUX_SSH,
    ROUTER_KIND_OPENWRT,
    ROUTER_KIND_UNIFI,
)
from .routers.base import Router
from .routers.demo import DemoRouter
from .routers.linux_ssh import DEFAULT_LEASES_PATHS, LinuxSshRouter
from .routers.openwrt import OpenWrtRouter
from .routers.unifi import UniFiRouter


def create_router(
    hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
) -> Router:
    """The client for ``data`` (a config entry's data, or a flow's input) and ``options``."""
    kind = data.get(CONF_ROUTER_KIND, ROUTER_KIND_OPENWRT)
    if kind == ROUTER_KIND_DEMO:
        return DemoRouter()
    cap = options.get(CONF_CONNTRACK_CAP, DEFAULT_CONNTRACK_CAP)
    if kind == ROUTER_KIND_LINUX_SSH:
        return _linux_ssh_router(data, cap)
    if kind == ROUTER_KIND_UNIFI:
        gateway = data.get(CONF_GATEWAY)
        return UniFiRouter(
            async_get_clientsession(hass),
            data[CONF_HOST],
            data[CONF_USERNAME],
            data[CONF_PASSWORD],
            port=data[CONF_PORT],
            site=data.get(CONF_SITE, DEFAULT_UNIFI_SITE),
            verify_ssl=data[CONF_VERIFY_SSL],
            full_block=options.get(CONF_FULL_BLOCK, False),
            gateway=_linux_ssh_router(gateway, cap) if gateway else None,
        )
    return OpenWrtRouter(
        async_get_clientsession(hass),
        data[CONF_HOST],
        data[CONF_PORT],
        data[CONF_USERNAME],
        data[CONF_PASSWORD],
        ssl=data[CONF_SSL],
        verify_ssl=data[CONF_VERIFY_SSL],
        conntrack_cap=cap,
    )


def _linux_ssh_router(data: Mapping[str, Any], cap: int) -> LinuxSshRouter:
    """A Linux router over SSH: the router itself, or a UniFi entry's gateway."""
    leases = data.get(CONF_LEASES_PATH)
    return LinuxSshRouter(
        data[CONF_HOST],
        data[CONF_PORT],
        data[CONF_USERNAME],
        host_key=data[CONF_HOST_KEY],
        password=data.get(CONF_PASSWORD) or None,
        client_key=data.get(CONF_SSH_KEY) or None,
        leases_paths=(leases,) if leases else DEFAULT_LEASES_PATHS,
        conntrack_cap=cap,
    )

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

from .const import CONF_CONNTRACK_CAP, DEFAULT_CONNTRACK_CAP
from .routers.openwrt import OpenWrtRouter


def create_router(
    hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
) -> OpenWrtRouter:
    """The client for ``data`` (a config entry's data, or a flow's input) and ``options``."""
    return OpenWrtRouter(
        async_get_clientsession(hass),
        data[CONF_HOST],
        data[CONF_PORT],
        data[CONF_USERNAME],
        data[CONF_PASSWORD],
        ssl=data[CONF_SSL],
        verify_ssl=data[CONF_VERIFY_SSL],
        conntrack_cap=options.get(CONF_CONNTRACK_CAP, DEFAULT_CONNTRACK_CAP),
    )

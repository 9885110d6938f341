"""What a loaded config entry carries at runtime: the router client, its coordinator, its identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

if TYPE_CHECKING:
    from .coordinator import PhoneHomeCoordinator
    from .routers.base import Router, RouterInfo


@dataclass
class PhoneHomeData:
    """Runtime objects of one config entry (``entry.runtime_data``)."""

    router: Router
    coordinator: PhoneHomeCoordinator
    info: RouterInfo


type PhoneHomeConfigEntry = ConfigEntry[PhoneHomeData]

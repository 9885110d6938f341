"""Persisted state: the analyzer's baselines and findings, per-device policies, and quarantines."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.helpers.storage import Store

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
STORAGE_MINOR_VERSION: Final = 2
"""1.2 added ``quarantines``."""
POLICIES: Final = ("monitor", "learn", "local_only")
"""Device policies a stored file may name (core.analyzer.Policy)."""
SAVE_DELAY: Final = 10
"""Seconds a change waits before it is written (polls change state often)."""


def empty_data() -> dict[str, Any]:
    """What a fresh entry stores."""
    return {"analyzer": None, "policies": {}, "allow": [], "quarantines": {}}


class PhoneHomeStore(Store[dict[str, Any]]):
    """``.storage/phonehome.<entry_id>``; older minor versions migrate in ``_async_migrate_func``."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        super().__init__(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", minor_version=STORAGE_MINOR_VERSION
        )

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: object
    ) -> dict[str, Any]:
        """1.1 had no quarantines: none were ever applied."""
        if isinstance(old_data, dict):
            return {"quarantines": {}} | old_data
        return empty_data()

    async def async_load_safe(self) -> dict[str, Any]:
        """The stored data, or fresh data when the file is missing or unreadable."""
        try:
            data = await self.async_load()
        except Exception:  # a corrupt file must not break setup
            _LOGGER.warning("Cannot read %s; starting fresh", self.path, exc_info=True)
            return empty_data()
        if not isinstance(data, dict):
            return empty_data()
        fresh = empty_data()
        policies = data.get("policies")
        if isinstance(policies, dict):
            fresh["policies"] = {
                mac: policy
                for mac, policy in policies.items()
                if isinstance(mac, str) and policy in POLICIES
            }
        allow = data.get("allow")
        if isinstance(allow, list):
            fresh["allow"] = [item for item in allow if isinstance(item, dict)]
        if isinstance(data.get("analyzer"), dict):
            fresh["analyzer"] = data["analyzer"]
        quarantines = data.get("quarantines")
        if isinstance(quarantines, dict):
            fresh["quarantines"] = {
                mac: item
                for mac, item in quarantines.items()
                if isinstance(mac, str) and isinstance(item, dict)
            }
        return fresh

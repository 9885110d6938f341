"""Persisted state: the analyzer's baselines and findings, per-device policies, and quarantines."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Final

from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.json import json_loads

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
STORAGE_MINOR_VERSION: Final = 3
"""1.2 added ``quarantines``; 1.3 their ``pending`` intent (absent: settled)."""
POLICIES: Final = ("monitor", "learn", "local_only")
"""Device policies a stored file may name (core.analyzer.Policy)."""
SAVE_DELAY: Final = 10
"""Seconds a change waits before it is written (polls change state often)."""
SECTION_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "analyzer": (dict, type(None)),
    "policies": (dict,),
    "allow": (list,),
    "quarantines": (dict,),
}
"""What each section of ``data`` is when this integration wrote it (absent ones start empty)."""


def empty_data() -> dict[str, Any]:
    """What a fresh entry stores."""
    return {"analyzer": None, "policies": {}, "allow": [], "quarantines": {}}


def store_unreadable_issue_id(entry_id: str) -> str:
    """Repair issue of an entry whose Store file was unreadable and moved aside."""
    return f"store_unreadable_{entry_id}"


def unreadable_reason(raw: bytes) -> str | None:
    """Why these bytes are no Store file this integration wrote (None: they are one)."""
    try:
        envelope = json_loads(raw)
    except ValueError as err:  # invalid JSON, truncated, not UTF-8
        return f"not valid JSON ({err})"
    if not isinstance(envelope, dict):
        return "not a JSON object"
    if not isinstance(envelope.get("version"), int) or not isinstance(
        envelope.get("minor_version", 1), int
    ):
        return "no storage version"
    data = envelope.get("data")
    if not isinstance(data, dict):
        return "no data object"
    for section, types in SECTION_TYPES.items():
        if section in data and not isinstance(data[section], types):
            return f"{section} has the wrong type"
    return None


def _set_aside_if_unreadable(path: str, stamp: str) -> tuple[str, str] | None:
    """Runs in the executor: (why, where it went) for a file that is no Store file."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        reason: str | None = f"cannot be read ({err.strerror})"
    else:
        reason = unreadable_reason(raw)
    if reason is None:
        return None
    return reason, _set_aside(path, stamp)


def _set_aside(path: str, stamp: str) -> str:
    """Runs in the executor: rename the file out of the Store's way; returns where it is."""
    target = f"{path}.corrupt-{stamp}"
    try:
        os.replace(path, target)
    except OSError as err:
        _LOGGER.error("Cannot move %s aside (%s): it is overwritten at the next save", path, err)
        return path
    return target


class PhoneHomeStore(Store[dict[str, Any]]):
    """``.storage/phonehome.<entry_id>``; older minor versions migrate in ``_async_migrate_func``.

    Written atomically (flushed to disk before it replaces the old file): a quarantine's
    intent is written before the router is called and must survive a power cut.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        super().__init__(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.{entry_id}",
            minor_version=STORAGE_MINOR_VERSION,
            atomic_writes=True,
        )
        self.entry_id = entry_id

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: object
    ) -> dict[str, Any]:
        """1.1 had no quarantines: none were ever applied; 1.2 had no pending intents."""
        if isinstance(old_data, dict):
            return {"quarantines": {}} | old_data
        return empty_data()

    async def async_load_safe(self, title: str) -> dict[str, Any]:
        """The stored data; a file that is unreadable or not what we wrote is moved aside.

        Then a repair issue names the moved file and setup goes on with fresh data;
        the quarantines the router still enforces are adopted again at the first poll.
        """
        stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%SZ")
        unreadable = await self.hass.async_add_executor_job(
            _set_aside_if_unreadable, self.path, stamp
        )
        if unreadable is None:
            try:
                data = await self.async_load()
            except HomeAssistantError as err:  # the file vanished or broke between two reads
                moved = await self.hass.async_add_executor_job(_set_aside, self.path, stamp)
                unreadable = (str(err), moved)
            else:
                return _readable_parts(data)
        reason, moved = unreadable
        _LOGGER.error(
            "The stored state of %s is unreadable (%s); moved to %s, starting fresh",
            title,
            reason,
            moved,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            store_unreadable_issue_id(self.entry_id),
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="store_unreadable",
            translation_placeholders={"name": title, "error": reason, "path": moved},
        )
        return empty_data()


def _readable_parts(data: object) -> dict[str, Any]:
    """Each section that can be read (items that cannot are dropped); the rest fresh."""
    fresh = empty_data()
    if not isinstance(data, dict):
        return fresh
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

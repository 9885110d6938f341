"""Diagnostics: the redacted configuration, the router, what the last poll saw, quarantines."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME

from .const import CONF_SSH_KEY
from .coordinator import finding_data
from .quarantine import quarantine_data

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .coordinator import PhoneHomeCoordinator
    from .core.activity import DeviceActivity
    from .data import PhoneHomeConfigEntry

TO_REDACT: Final = {CONF_PASSWORD, CONF_USERNAME, CONF_SSH_KEY}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PhoneHomeConfigEntry
) -> dict[str, Any]:
    """What a bug report needs, never a credential."""
    data = entry.runtime_data
    state = data.coordinator.data
    stats = state.parse_stats
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "router": {
            "kind": data.router.kind,
            **asdict(data.info),
            "conntrack_cap": data.router.conntrack_cap,
            "country_data": data.coordinator.countries.data,
            "capabilities": {
                "byte_counters": state.byte_counters,
                "table_source": state.table_source,
                "quarantine": state.quarantine_supported,
            },
        },
        "last_poll": {
            "taken_at": state.taken_at.isoformat(),
            "last_update_success": data.coordinator.last_update_success,
            "conntrack_count": state.conntrack_count,
            "flows": state.flows,
            "table_read": state.table_read,
            "parse_stats": (
                {
                    "lines": stats.lines,
                    "flows": stats.flows,
                    "skipped": {str(reason): count for reason, count in stats.skipped.items()},
                }
                if stats is not None
                else None
            ),
            "poll_duration": state.poll_duration,
            "devices": len(state.devices),
        },
        "activity": {mac: _activity(activity) for mac, activity in sorted(state.activity.items())},
        "detection": _detection(data.coordinator),
        "bounds": await data.coordinator.async_bounds(),
        "quarantines": {
            mac: {
                **quarantine_data(quarantine),
                "enforced": (seen := state.quarantined.get(mac)) is not None and seen.enforced,
                "blocked": seen.blocked_packets if seen is not None else None,
            }
            for mac, quarantine in sorted(data.coordinator.quarantines.active.items())
        },
    }


def _detection(coordinator: PhoneHomeCoordinator) -> dict[str, Any]:
    """Active findings and the analyzer's bounded state, per device."""
    saved = coordinator.analyzer_state["devices"]
    reports = coordinator.data.analysis.devices
    return {
        "allow_entries": len(coordinator.allow),
        "devices": {
            mac: {
                "policy": coordinator.policy(mac),
                "first_seen": saved[mac]["first_seen"] if mac in saved else None,
                "baseline_keys": len(saved[mac]["baseline"]) if mac in saved else 0,
                "findings": [
                    finding_data(finding)
                    for finding in (reports[mac].findings if mac in reports else ())
                ],
            }
            for mac in sorted(saved.keys() | reports.keys())
        },
    }


def _activity(activity: DeviceActivity) -> dict[str, Any]:
    return {
        "internet_hosts": activity.internet_hosts,
        "internet_connections": activity.internet_connections,
        "last_internet_contact": (
            activity.last_internet_contact.isoformat()
            if activity.last_internet_contact is not None
            else None
        ),
        "destinations": [
            {
                "ip": destination.ip,
                "port": destination.port,
                "protocol": destination.protocol,
                "bytes": destination.bytes,
                "first_seen": destination.first_seen.isoformat(),
                "last_seen": destination.last_seen.isoformat(),
            }
            for destination in activity.destinations
        ],
    }

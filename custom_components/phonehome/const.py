"""Constants for Phone Home Guard: the domain, config keys, option keys and defaults."""

from datetime import timedelta
from typing import Final, get_args

from .core.analyzer import FindingKind

DOMAIN: Final = "phonehome"
EVENT_FINDING: Final = "phonehome_finding"
"""Bus event fired once per new finding, and when a device is quarantined or released."""

# Config entry data (host, port, username, password, ssl, verify_ssl come from
# homeassistant.const: CONF_HOST, CONF_PORT, CONF_USERNAME, CONF_PASSWORD,
# CONF_SSL, CONF_VERIFY_SSL).
CONF_ROUTER_KIND: Final = "router_kind"
ROUTER_KIND_OPENWRT: Final = "openwrt"
ROUTER_KIND_LINUX_SSH: Final = "linux_ssh"
ROUTER_KIND_UNIFI: Final = "unifi"
ROUTER_KIND_DEMO: Final = "demo"
ROUTER_KINDS: Final = (
    ROUTER_KIND_OPENWRT,
    ROUTER_KIND_UNIFI,
    ROUTER_KIND_LINUX_SSH,
    ROUTER_KIND_DEMO,
)
"""Kinds the config flow offers, in its order."""
MANUFACTURERS: Final = {
    ROUTER_KIND_OPENWRT: "OpenWrt",
    ROUTER_KIND_UNIFI: "Ubiquiti",
    ROUTER_KIND_LINUX_SSH: "Linux",
    ROUTER_KIND_DEMO: "Phone Home Guard",
}
"""The hub device's manufacturer, by router kind."""
CONF_SITE: Final = "site"
"""The UniFi Network site's name (as in /manage/<name>/...), not its description."""
DEFAULT_UNIFI_SITE: Final = "default"
CONF_GATEWAY: Final = "gateway"
"""UniFi: the gateway's SSH login (host, port, username, password or ssh_key, host_key)
whose conntrack gives the flows; absent: the controller's own sources."""
CONF_SSH_KEY: Final = "ssh_key"
"""The SSH client's private key (OpenSSH format); a password may be used instead."""
CONF_HOST_KEY: Final = "host_key"
"""The SSH server's public host key, pinned when the entry was made."""
CONF_LEASES_PATH: Final = "leases_path"
"""The router's DHCP leases file (SSH); empty: the usual dnsmasq / odhcpd / dhcpd paths."""
DEFAULT_SSH_PORT: Final = 22
DEFAULT_SSH_USERNAME: Final = "root"
DEFAULT_HTTP_PORT: Final = 80
DEFAULT_HTTPS_PORT: Final = 443

# Options.
CONF_FULL_BLOCK: Final = "full_block"
"""UniFi: quarantine also blocks the device entirely (block-sta: LAN and Wi-Fi too)."""
CONF_SCAN_INTERVAL: Final = "scan_interval"
DEFAULT_SCAN_INTERVAL: Final = 30
MIN_SCAN_INTERVAL: Final = 10
MAX_SCAN_INTERVAL: Final = 300
CONF_WINDOW: Final = "window_minutes"
"""Detection window: a remote host counts while seen within the last N minutes."""
DEFAULT_WINDOW: Final = 15
MIN_WINDOW: Final = 1
MAX_WINDOW: Final = 24 * 60
CONF_TRACKED_DEVICES: Final = "tracked_devices"
"""MACs to track; empty: every LAN device."""
CONF_STALE_DAYS: Final = "stale_days"
"""A device not seen for this many days is removed from Home Assistant."""
DEFAULT_STALE_DAYS: Final = 7
MIN_STALE_DAYS: Final = 1
MAX_STALE_DAYS: Final = 90
CONF_CONNTRACK_CAP: Final = "conntrack_cap"
"""Largest table read with LuCI's getConntrackList (above ~4,000 it kills rpcd)."""
DEFAULT_CONNTRACK_CAP: Final = 3000
MIN_CONNTRACK_CAP: Final = 100
MAX_CONNTRACK_CAP: Final = 3800
CONF_FANOUT_HOSTS: Final = "fanout_hosts"
"""Distinct hosts on one P2P port that count as a fan-out."""
DEFAULT_FANOUT_HOSTS: Final = 3
MIN_FANOUT_HOSTS: Final = 2
MAX_FANOUT_HOSTS: Final = 50
CONF_UNREPLIED_ATTEMPTS: Final = "unreplied_attempts"
"""Unanswered connection attempts within the window that raise a finding."""
DEFAULT_UNREPLIED_ATTEMPTS: Final = 20
MIN_UNREPLIED_ATTEMPTS: Final = 1
MAX_UNREPLIED_ATTEMPTS: Final = 1000
CONF_LEARNING_HOURS: Final = "learning_hours"
"""A device in learn mode learns its normal destinations for this many hours."""
DEFAULT_LEARNING_HOURS: Final = 24
MIN_LEARNING_HOURS: Final = 0
MAX_LEARNING_HOURS: Final = 720
CONF_LAN_RESOLVERS: Final = "lan_resolvers"
"""DNS resolvers the LAN sanctions; empty: any LAN address."""

CONF_PROTECTED_DEVICES: Final = "protected_devices"
"""MACs never quarantined, by hand or automatically."""
CONF_AUTO_QUARANTINE: Final = "auto_quarantine_kinds"
"""Finding kinds whose new findings quarantine the device; empty: never automatically."""
CONF_AUTO_QUARANTINE_MINUTES: Final = "auto_quarantine_minutes"
"""How long an automatic quarantine lasts; 0: until released."""
DEFAULT_AUTO_QUARANTINE_MINUTES: Final = 0
MAX_AUTO_QUARANTINE_MINUTES: Final = 7 * 24 * 60

FINDING_KINDS: Final[tuple[str, ...]] = get_args(FindingKind.__value__)
"""Every kind of finding the analyzer raises, in its order."""

TOP_DESTINATIONS: Final = 10
"""Destinations listed in the internet_hosts sensor's attributes."""
REQUEST_TIMEOUT: Final = timedelta(seconds=10)

"""The integration talks to the router and to nothing else: no telemetry, no cloud lookup.

The secrets scenarios of each router kind (config flow, setup, polls, errors, quarantine
and release, reauth, unload) run again while every socket connection and every name
lookup of the process is recorded: each one goes to an address the config entry names
(the router, or a UniFi console's gateway). The code itself holds no address to call
home to, and country data is looked up offline.
"""

import ast
import json
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.phonehome.const import CONF_GATEWAY
from tests.ha.test_secrets import (
    Watch,
    controller,
    finish,
    locked_key,
    openwrt,
    private_key,
    scenario,
    ssh,
    watch,
)

__all__ = ["controller", "locked_key", "openwrt", "private_key", "scenario", "ssh", "watch"]
"""Fixtures: the scenario asks for its router kind's."""

PACKAGE = Path(__file__).parents[2] / "custom_components" / "phonehome"
MANIFEST = json.loads((PACKAGE / "manifest.json").read_text())
DOCS = "https://github.com/phonehome-guard/phonehome"
"""The only address in the code: the README, linked from forms and repair issues."""
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S")
NETWORK_MODULES = {"aiohttp", "asyncssh", "socket", "http", "urllib", "requests", "httpx", "ssl"}


class Connections:
    """Every TCP/UDP connect and every name lookup of the process, as (host, port)."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.lookups: list[str] = []
        self.paused = False
        """The test's own requests (to Home Assistant's web server) are not recorded."""


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    seen = Connections()
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def record(address: Any) -> None:
        if isinstance(address, tuple) and not seen.paused:
            seen.connects.append((str(address[0]), int(address[1])))

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        record(address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        record(address)
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not seen.paused:
            seen.lookups.append(str(host))
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return seen


async def diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: ConfigEntry,
    connections: Connections,
) -> dict[str, Any]:
    """The entry's diagnostics, downloaded as a user would (not recorded: that is the test)."""
    connections.paused = True
    try:
        data: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        return data
    finally:
        connections.paused = False


def configured(data: dict[str, Any]) -> set[tuple[str, int]]:
    """The addresses an entry names: the router's, and a UniFi gateway's."""
    found = {(data[CONF_HOST], int(data[CONF_PORT]))}
    if gateway := data.get(CONF_GATEWAY):
        found |= configured(gateway)
    return found


def only_to(seen: Connections, data: dict[str, Any]) -> None:
    allowed = configured(data)
    assert seen.connects, "the recorder saw no connection at all"
    assert set(seen.connects) <= allowed, set(seen.connects) - allowed
    assert set(seen.lookups) <= {host for host, _ in allowed}


async def test_connects_only_to_the_addresses_the_entry_names(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
    watch: Watch,
    scenario: Callable[[], Awaitable[ConfigEntry]],
    connections: Connections,
) -> None:
    entry = await scenario()
    await finish(
        hass, watch, entry, hass_storage, await diagnostics(hass, hass_client, entry, connections)
    )
    only_to(connections, dict(entry.data))
    assert configured(dict(entry.data)) <= set(connections.connects)  # a gateway's too


def test_the_recorder_sees_a_connection_elsewhere(
    socket_enabled: None, connections: Connections
) -> None:
    """A connection to another port of the router's host is caught (the check can fail)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            pass
    with pytest.raises(AssertionError):
        only_to(connections, {CONF_HOST: "127.0.0.1", CONF_PORT: port + 1})


# ---------------------------------------------------------------- the code itself


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules a source file imports (absolute imports only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_router_clients_use_the_network() -> None:
    """aiohttp and asyncssh only in routers/ (socket only for address conversion)."""
    users: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if used := imported_modules(path) & NETWORK_MODULES:
            users[str(path.relative_to(PACKAGE))] = used
    assert all(name.startswith("routers/") or used == {"socket"} for name, used in users.items())
    assert {"aiohttp", "asyncssh"} <= set().union(*users.values())
    for name, used in users.items():
        if used == {"socket"}:  # inet_pton / inet_ntop: no connection
            source = (PACKAGE / name).read_text()
            assert "socket(" not in source
            assert "create_connection" not in source


def docstrings(tree: ast.AST) -> set[int]:
    """Ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            found.add(id(body[0].value))
    return found


def test_no_address_in_the_code_but_the_readme() -> None:
    """String constants naming a URL only point at the README (shown, never fetched).

    The router's own URL is built from the entry (``f"{scheme}://{host}:{port}"``).
    """
    urls = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        skipped = docstrings(tree)
        urls |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and URL.search(node.value)
            and id(node) not in skipped
        }
    assert urls
    assert all(url.startswith(DOCS) for url in urls), urls


def test_the_manifest_brings_no_cloud() -> None:
    assert MANIFEST["iot_class"] == "local_polling"
    assert MANIFEST["dependencies"] == []
    assert MANIFEST["after_dependencies"] == ["network"]  # local adapters: the HA host's address
    names = sorted(line.split(">")[0].split("=")[0] for line in MANIFEST["requirements"])
    assert names == ["asyncssh", "msgspec"]

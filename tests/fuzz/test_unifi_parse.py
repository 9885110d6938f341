"""Fuzz the UniFi readers with captured controller JSON, damaged node by node.

Seeds (shared/fixtures/unifi, see SOURCES.md there): stat/sta clients (aiounifi,
Home Assistant), a v2 traffic-flows page (unifi-mcp), object-oriented network
configs (aiounifi); stat/stadpi has no capture, so its entries are generated.
Every reader returns its result or raises RouterResponseError.
"""

import json
from typing import Any, Final

from hypothesis import given, strategies as st

from custom_components.phonehome.routers import unifi_parse
from custom_components.phonehome.routers.base import RouterResponseError
from tests.emulators.unifi import FIXTURES

from .conftest import FUZZ
from .invariants import MAC, check_devices, check_flow, check_traffic, outcome
from .mutate import HOSTILE_NUMBERS, JSON_VALUES, fields_mutant, json_mutant


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


CLIENTS: Final = [
    [
        load("aiounifi/wired_client.json"),
        load("aiounifi/wireless_client.json"),
        load("home-assistant/blocked_client.json"),
        load("home-assistant/unblocked_client.json"),
    ]
]
FLOW_PAGES: Final = [load("unifi-mcp/traffic_flows.json")]
CONFIGS: Final = [
    load("aiounifi/object_oriented_network_configs.json"),
    load("aiounifi/object_oriented_network_configs_id_alias_variant.json"),
]
CLIENT_KEYS: Final = ("mac", "ip", "ipv6", "hostname", "name", "oui", "is_wired", "blocked")
FLOW_KEYS: Final = ("source", "destination", "ip", "port", "protocol", "action", "traffic_data")
FLOW_KEYS += ("bytes_rx", "packets_rx", "bytes_total", "packets_total", "data", "has_next")
CONFIG_KEYS: Final = ("_id", "id", "name", "enabled", "target_type", "targets", "secure")
CONFIG_KEYS += ("internet", "mode", "schedule", "type", "value")


CLIENT_FIELDS: Final = st.lists(
    st.sampled_from(CLIENTS[0]).flatmap(lambda client: fields_mutant(client, CLIENT_KEYS)),
    max_size=4,
)


@FUZZ
@given(
    st.sampled_from(CLIENTS).flatmap(lambda clients: json_mutant(clients, CLIENT_KEYS))
    | CLIENT_FIELDS
)
def test_clients(data: object) -> None:
    devices = outcome(lambda: unifi_parse.parse_clients(data), RouterResponseError)
    if devices is not None:
        check_devices(devices)


@st.composite
def flow_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A page of one record whose fields, and those of its parts, are damaged."""
    record = draw(st.sampled_from(FLOW_PAGES[0]["data"]))
    record = draw(fields_mutant(record, ("source", "destination", "protocol", "action")))
    for part, keys in PARTS.items():
        if isinstance(record.get(part), dict):
            record[part] = draw(fields_mutant(record[part], keys))
    return {"data": [record], "has_next": draw(HOSTILE_NUMBERS | st.booleans())}


PARTS: Final = {
    "source": ("ip", "port", "mac"),
    "destination": ("ip", "port"),
    "traffic_data": ("bytes_rx", "packets_rx", "bytes_total", "packets_total"),
}


@FUZZ
@given(
    st.sampled_from(FLOW_PAGES).flatmap(lambda page: json_mutant(page, FLOW_KEYS)) | flow_fields()
)
def test_traffic_flow_page(document: object) -> None:
    page = outcome(lambda: unifi_parse.parse_flow_page(document), RouterResponseError)
    if page is not None:
        flows, more = page
        assert isinstance(more, bool)
        for flow in flows:
            check_flow(flow)


APP: Final = {"app": 5, "cat": 3, "tx_bytes": 10, "rx_bytes": 20, "tx_packets": 1, "rx_packets": 2}
DPI_ENTRY: Final = st.fixed_dictionaries(
    {
        "mac": st.sampled_from(["aa:bb:cc:dd:ee:01", "AA-BB-CC-DD-EE-02"]) | JSON_VALUES,
        "by_app": st.lists(fields_mutant(APP, tuple(APP)) | JSON_VALUES, max_size=4),
    }
)


@FUZZ
@given(
    st.lists(DPI_ENTRY, max_size=3) | json_mutant([{"mac": "aa:bb:cc:dd:ee:01", "by_app": [APP]}])
)
def test_dpi(data: object) -> None:
    traffic = outcome(lambda: unifi_parse.parse_dpi(data), RouterResponseError)
    if traffic is not None:
        check_traffic(traffic)


CONFIG_FIELDS: Final = st.lists(
    st.sampled_from(CONFIGS[0]).flatmap(lambda config: fields_mutant(config, CONFIG_KEYS)),
    max_size=3,
)


@FUZZ
@given(
    st.sampled_from(CONFIGS).flatmap(lambda configs: json_mutant(configs, CONFIG_KEYS))
    | CONFIG_FIELDS
)
def test_network_configs(data: object) -> None:
    configs = outcome(lambda: unifi_parse.records(data, "configs"), RouterResponseError)
    if configs is None:
        return
    for config in configs:
        config_id = outcome(
            lambda config=config: unifi_parse.config_id(config), RouterResponseError
        )
        assert config_id is None or (isinstance(config_id, str) and config_id)
        for mac in unifi_parse.targets(config):
            assert MAC.fullmatch(mac)
            assert isinstance(unifi_parse.enforces(config, mac), bool)
    for mac, ours in unifi_parse.ours(configs).items():
        assert MAC.fullmatch(mac)
        assert all(config in configs for config in ours)

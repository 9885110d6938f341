"""The Flow model: immutable, slotted, hashable, and out of the garbage collector's way."""

import gc

import pytest

from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.model import Flow


def _flow(**changes: object) -> Flow:
    fields: dict[str, object] = {
        "family": 4,
        "protocol": 17,
        "src": "192.168.1.20",
        "dst": "203.0.113.7",
        "sport": 40010,
        "dport": 32100,
        "src_scope": AddressScope.LAN,
        "dst_scope": AddressScope.DOCUMENTATION,
        "replied": False,
        "assured": False,
        "state": None,
        "timeout": 29,
        "total_packets": 2,
        "total_bytes": 120,
        "reply_packets": 0,
        "reply_bytes": 0,
        "offloaded": False,
        "mark": 0,
        "zone": 0,
        "secctx": None,
    }
    return Flow(**{**fields, **changes})  # type: ignore[arg-type]


def test_flow_fields_cannot_be_assigned() -> None:
    flow = _flow()
    with pytest.raises(AttributeError):
        flow.dport = 443  # type: ignore[misc]


def test_flow_is_slotted_without_instance_dict() -> None:
    assert "dport" in Flow.__slots__
    assert not hasattr(_flow(), "__dict__")


def test_equal_flows_are_one_set_member() -> None:
    assert _flow() == _flow()
    assert len({_flow(), _flow(), _flow(dport=10001)}) == 2


def test_flows_are_not_tracked_by_the_garbage_collector() -> None:
    # A poll makes 65,536 of them; holding only atoms they can never be in a cycle.
    assert not gc.is_tracked(_flow())


def test_a_flow_stands_for_one_entry_unless_told() -> None:
    assert _flow().connections == 1
    assert _flow(connections=7).connections == 7
    assert Flow.__struct_fields__[-1] == "connections"

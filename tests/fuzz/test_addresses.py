"""Fuzz address_info and normalize_mac with every text a router might hand them."""

import ipaddress
import re
from typing import Final

from hypothesis import given, strategies as st

from custom_components.phonehome.core.addresses import address_info, normalize_mac

from .conftest import FUZZ
from .invariants import IPV4_COMPATIBLE, MAC
from .mutate import HOSTILE_STRINGS, JSON_VALUES


@st.composite
def address_texts(draw: st.DrawFn) -> str:
    """An address written in one of the ways routers print them, or damaged."""
    address = draw(st.ip_addresses())
    text = draw(
        st.sampled_from(
            [
                str(address),
                address.exploded,
                address.exploded.upper(),
                f"[{address}]",
                f"{address}%eth0",
                f"{address}/64",
                f" {address}",
                f"{address}\x00",
                str(address).replace(".", ".0", 1),
            ]
        )
    )
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=2)) + text[at + draw(st.integers(0, 2)) :]
    return text


TEXTS: Final = address_texts() | HOSTILE_STRINGS | st.text(max_size=50)


@FUZZ
@given(TEXTS)
def test_address_info_is_none_or_canonical(text: str) -> None:
    info = address_info(text)
    if info is None:
        return
    parsed = ipaddress.ip_address(text)  # whatever address_info takes, ipaddress takes
    assert info.family == parsed.version
    assert ipaddress.ip_address(info.address) == parsed
    assert address_info(info.address) == info  # canonical text is a fixed point


@FUZZ
@given(st.ip_addresses())
def test_canonical_text_is_inet_ntop_of_every_valid_address(address: object) -> None:
    """Python writes IPv4-compatible ``::a.b.c.d`` as hex; inet_ntop keeps the dotted tail."""
    assert isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
    info = address_info(address.exploded)
    assert info is not None
    if address not in IPV4_COMPATIBLE or address.version == 4:
        assert info.address == str(address)


HEX_PAIRS: Final = st.lists(st.sampled_from("0123456789abcdefABCDEF"), min_size=12, max_size=12)


@st.composite
def mac_texts(draw: st.DrawFn) -> str:
    digits = "".join(draw(HEX_PAIRS))
    separator = draw(st.sampled_from([":", "-", "", ".", " "]))
    text = separator.join(digits[i : i + 2] for i in range(0, 12, 2))
    return draw(st.sampled_from([text, f" {text}\n", text[:-1], text + "0", text.upper()]))


@FUZZ
@given(mac_texts() | TEXTS | JSON_VALUES)
def test_normalize_mac_is_none_or_canonical(value: object) -> None:
    mac = normalize_mac(value)
    if mac is None:
        return
    assert MAC.fullmatch(mac)
    assert mac != "00:00:00:00:00:00"
    assert isinstance(value, str)
    assert re.sub("[^0-9a-f]", "", value.lower()) == mac.replace(":", "")
    assert normalize_mac(mac) == mac

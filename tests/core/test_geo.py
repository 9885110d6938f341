"""Country lookup: the installed RIR data when iptocc is there, unknown otherwise."""

import sys
from importlib import metadata

import pytest

from custom_components.phonehome.core.geo import load_country_source, unknown_country


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("114.114.114.114", "CN"),  # the hard-coded resolver of XMEye DVRs
        ("8.8.8.8", "US"),
        ("2001:4860:4860::8888", "US"),
        ("193.0.6.139", "NL"),  # RIPE NCC's own website
        ("198.51.100.7", None),  # documentation ranges belong to no country
        ("2001:db8::1", None),
        ("192.168.1.20", None),
        ("not an address", None),
    ],
)
def test_installed_data_names_the_country(ip: str, country: str | None) -> None:
    assert load_country_source().lookup(ip) == country


def test_the_data_source_is_named_for_diagnostics() -> None:
    assert load_country_source().data == f"iptocc {metadata.version('iptocc')}"


def test_without_the_package_every_country_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "iptocc", None)  # import now raises ImportError

    source = load_country_source()

    assert source.data is None
    assert source.lookup is unknown_country
    assert source.lookup("114.114.114.114") is None

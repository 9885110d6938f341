"""Offline country of a remote address, from the ``iptocc`` package when it is installed.

iptocc ships the five regional internet registries' delegation data inside its
wheel, so a lookup never leaves the machine. It is optional: it has no wheel for
musl (Home Assistant OS and the container image), and a requirement that cannot
install would keep the whole integration from loading. Without it every country
is unknown, which is what a lookup also says for addresses no registry assigned.
"""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module, metadata

type CountryLookup = Callable[[str], str | None]
"""Remote IP (text) -> ISO 3166 alpha-2 code, or None when unknown."""

GEO_PACKAGE = "iptocc"


def unknown_country(_ip: str) -> str | None:
    """The lookup used when no country data is available."""
    return None


@dataclass(frozen=True, slots=True)
class CountrySource:
    """A country lookup and where its data comes from (for diagnostics)."""

    lookup: CountryLookup
    data: str | None
    """``"iptocc 3.3.170"``, or None when countries are unknown."""


def load_country_source() -> CountrySource:
    """Import the country data (blocking: run it in the executor), or fall back to unknown."""
    try:
        module = import_module(GEO_PACKAGE)
    except ImportError:
        return CountrySource(unknown_country, None)
    lookup: CountryLookup = module.country_code
    return CountrySource(lookup, f"{GEO_PACKAGE} {metadata.version(GEO_PACKAGE)}")

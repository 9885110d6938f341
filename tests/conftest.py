"""Shared pytest setup for all Phone Home Guard tests.

pytest-homeassistant-custom-component is a pytest plugin: once installed it
applies to every test, not only to tests/ha. This file keeps tests/core,
tests/routers and tests/lab plain pytest:

* Home Assistant's custom integrations are enabled (which sets up ``hass``)
  only for tests under tests/ha.
* The plugin blocks sockets before every test (only 127.0.0.1 may be connected
  to). Outside tests/ha the block is lifted before any fixture is set up, so
  emulators on ::1 or "localhost" and lab tests reaching addresses inside
  network namespaces work, from fixtures of any scope too.
"""

# Import our package first: otherwise the plugin's testing_config/custom_components
# is imported as `custom_components` and HA reports "Cannot find integration phonehome".
import custom_components.phonehome  # noqa: F401  # isort: skip

import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

HA_TESTS = Path(__file__).parent / "ha"

# Captured at import, before the plugin patches them in its runtest_setup hook.
_REAL_SOCKET = socket.socket
_REAL_CONNECT = socket.socket.connect
_current = {"ha": False}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note whether the test about to be set up is a Home Assistant test."""
    _current["ha"] = item.path.is_relative_to(HA_TESTS)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None]:
    """Outside tests/ha, undo the plugin's socket block before each fixture."""
    if not _current["ha"]:
        socket.socket = _REAL_SOCKET  # type: ignore[misc]
        socket.socket.connect = _REAL_CONNECT  # type: ignore[method-assign]
    return (yield)


@pytest.fixture(autouse=True)
def _phonehome_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let Home Assistant load custom_components/phonehome in tests/ha."""
    if _current["ha"]:
        request.getfixturevalue("enable_custom_integrations")

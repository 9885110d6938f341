"""The packaging: manifest.json, hacs.json and Home Assistant's loader."""

import json
import re
from importlib.metadata import version
from pathlib import Path

from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from packaging.requirements import Requirement

from custom_components.phonehome.const import DOMAIN

ROOT = Path(__file__).parents[2]
MANIFEST = json.loads((ROOT / "custom_components/phonehome/manifest.json").read_text())
HACS = json.loads((ROOT / "hacs.json").read_text())

REQUIRED_KEYS = {
    "domain",
    "name",
    "version",
    "documentation",
    "issue_tracker",
    "codeowners",
    "config_flow",
    "iot_class",
    "integration_type",
    "requirements",
    "loggers",
}


async def test_loader_finds_integration(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)

    assert integration.domain == DOMAIN == "phonehome"
    assert integration.name == "Phone Home Guard"
    assert integration.config_flow is True
    assert integration.manifest["iot_class"] == "local_polling"
    assert integration.integration_type == "hub"
    assert not integration.is_built_in
    assert integration.file_path == ROOT / "custom_components/phonehome"


def test_manifest_has_required_keys() -> None:
    assert MANIFEST.keys() >= REQUIRED_KEYS
    assert MANIFEST["domain"] == DOMAIN


def test_manifest_requirements_are_ranges_met_by_the_test_environment() -> None:
    for line in MANIFEST["requirements"]:
        requirement = Requirement(line)
        assert "==" not in str(requirement.specifier), "a range, not a pin"
        assert requirement.specifier.contains(version(requirement.name)), line


def test_manifest_loggers_name_the_requirements() -> None:
    names = {Requirement(line).name for line in MANIFEST["requirements"]}
    assert set(MANIFEST["loggers"]) == names


def test_manifest_key_order_is_hassfest_order() -> None:
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_version_is_semver() -> None:
    version = AwesomeVersion(MANIFEST["version"])
    assert version.valid
    assert version.strategy in {
        AwesomeVersionStrategy.SEMVER,
        AwesomeVersionStrategy.SIMPLEVER,
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])


def test_hacs_minimum_version_is_installed() -> None:
    assert HACS["name"] == "Phone Home Guard"
    assert set(HACS) <= {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
        "render_readme",
    }
    minimum = AwesomeVersion(HACS["homeassistant"])
    assert minimum.valid
    assert minimum.strategy == AwesomeVersionStrategy.CALVER
    assert minimum <= AwesomeVersion(ha_version)

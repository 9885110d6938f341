"""The house rule: core/ and routers/ never import Home Assistant."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "custom_components" / "phonehome"
PURE_MODULES = sorted([*PACKAGE.glob("core/*.py"), *PACKAGE.glob("routers/*.py")])


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of what a module imports (relative imports resolved)."""
    package = ["custom_components", "phonehome", path.parent.name]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            names.add(".".join([*base, *([node.module] if node.module else [])]))
    return names


def test_there_are_pure_modules_to_check() -> None:
    assert len(PURE_MODULES) >= 10


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_pure_module_does_not_import_home_assistant(path: Path) -> None:
    imported = _imported_modules(path)
    assert not {name for name in imported if name.split(".")[0] == "homeassistant"}
    ours = {name for name in imported if name.startswith("custom_components.phonehome")}
    outside = {name for name in ours if name.split(".")[2] not in {"core", "routers"}}
    assert not outside, "Home Assistant glue imported from a pure module"

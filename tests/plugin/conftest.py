"""Fixtures of the plugin tests: a shell with its tools, a scratch directory, the lab table."""

import os
import shutil
from pathlib import Path

import pytest

from tests.lab.conftest import lab_capture  # noqa: F401 - the real router's table

from .tools import SHELLS, Plugin, tool_dir


def _need(program: str) -> None:
    if shutil.which(program) is None:
        message = f"'{program}' is not installed (Debian package {program})"
        if os.environ.get("PHONEHOME_REQUIRE_LAB") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    """busybox sh with busybox applets, or dash with the system's tools."""
    _need(request.param)
    return str(request.param)


@pytest.fixture
def plugin(shell: str, tmp_path: Path) -> Plugin:
    """The plugin under `shell`, every test hook pointing into `tmp_path`.

    PHONEHOME_PROC is tmp_path/nf_conntrack (write it first), PHONEHOME_TMP the
    empty tmp_path/tmp, PHONEHOME_SYS tmp_path/sys, PHONEHOME_FLUSH_TARGET
    tmp_path/flush. PATH holds no `conntrack`.
    """
    (tmp_path / "tmp").mkdir()
    (tmp_path / "sys").mkdir()
    env = {
        "PHONEHOME_PROC": str(tmp_path / "nf_conntrack"),
        "PHONEHOME_TMP": str(tmp_path / "tmp"),
        "PHONEHOME_SYS": str(tmp_path / "sys"),
        "PHONEHOME_FLUSH_TARGET": str(tmp_path / "flush"),
    }
    return Plugin(shell, tool_dir(shell, tmp_path / "bin"), env)

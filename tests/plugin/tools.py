"""Run the rpcd plugin the way rpcd does, with busybox applets only or under dash."""

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

PLUGIN: Final = Path(__file__).parents[2] / "router" / "openwrt" / "phonehome"
MAX_REPLY: Final = 262144
"""Largest reply the plugin may print, in bytes."""
COLUMNS: Final = (
    "family",
    "protocol",
    "src",
    "dst",
    "dport",
    "connections",
    "unreplied",
    "orig_packets",
    "orig_bytes",
    "reply_packets",
    "reply_bytes",
    "min_timeout",
)
"""Columns of one row of the plugin's `conntrack` reply, in order."""
TOOLS: Final = ("awk", "sed", "sort", "cut", "tr", "date", "mv", "rm", "cat", "tail", "wc")
"""External commands the plugin runs (busybox applets on OpenWrt)."""
SHELLS: Final = ("busybox", "dash")


def tool_dir(shell: str, directory: Path) -> Path:
    """A PATH directory holding only the tools the plugin may use.

    busybox: every tool is a link to busybox, so the script runs with busybox applets
    exactly; dash: links to the system's tools (catches bashisms). Neither holds
    `conntrack`, so a flush writes to the table file unless a test adds one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    for tool in TOOLS:
        target = busybox if shell == "busybox" else shutil.which(tool)
        if target is None:
            raise FileNotFoundError(tool)
        (directory / tool).symlink_to(target)
    return directory


def shell_argv(shell: str) -> list[str]:
    """The shell command that runs the plugin."""
    if shell == "busybox":
        busybox = shutil.which("busybox")
        if busybox is None:
            raise FileNotFoundError("busybox")
        return [busybox, "sh"]
    dash = shutil.which("dash")
    if dash is None:
        raise FileNotFoundError("dash")
    return [dash]


@dataclass(frozen=True)
class Plugin:
    """The plugin under one shell, with its PATH and its test hooks (environment)."""

    shell: str
    path: Path
    """The only PATH directory."""
    env: dict[str, str] = field(default_factory=dict)

    def with_env(self, **env: str) -> "Plugin":
        """The same plugin with more (or other) environment variables."""
        return replace(self, env={**self.env, **env})

    def run(self, args: list[str], stdin: str = "", cwd: Path | None = None) -> tuple[bytes, float]:
        """Run the plugin; return its stdout and its run time in seconds."""
        started = time.perf_counter()
        done = subprocess.run(
            [*shell_argv(self.shell), str(PLUGIN), *args],
            input=stdin.encode(),
            capture_output=True,
            env={"PATH": str(self.path), **self.env},
            cwd=cwd,
            timeout=120,
            check=True,
        )
        return done.stdout, time.perf_counter() - started

    def call(self, method: str, arguments: Any, cwd: Path | None = None) -> dict[str, Any]:
        """`phonehome call METHOD` with `arguments` (JSON, or raw text) on stdin."""
        stdin = arguments if isinstance(arguments, str) else json.dumps(arguments)
        out, _ = self.run(["call", method], stdin, cwd)
        assert len(out) <= MAX_REPLY
        reply = json.loads(out)
        assert isinstance(reply, dict)
        return reply


def time_awk_pass(shell: str = "busybox", entries: int = 65536) -> float:
    """Seconds the plugin takes to read a synthetic table into a snapshot (first page).

    The bench hook for scripts/bench: `python -m tests.plugin.tools [busybox|dash]`.
    """
    import tempfile

    from tests.bench.synthetic import proc_text

    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        table = root / "nf_conntrack"
        table.write_text(proc_text(entries))
        path = tool_dir(shell, root / "bin")
        env = {"PHONEHOME_PROC": str(table), "PHONEHOME_TMP": temp}
        _, seconds = Plugin(shell, path, env).run(["call", "conntrack"], '{"limit":1}')
    return seconds


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or SHELLS:
        print(f"{name}: {time_awk_pass(name):.2f} s for 65,536 entries")

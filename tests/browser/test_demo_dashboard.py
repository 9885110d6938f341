"""The front door in a real browser: scripts/develop, log in, the dashboard, quarantine.

Runs the README's own command (scripts/develop) on a free port and a temporary
config folder, then drives Debian's headless Chromium with Playwright. Skips when
Chromium or Playwright is missing, unless PHONEHOME_REQUIRE_BROWSER=1 (CI) turns
the skip into a failure. PHONEHOME_SCREENSHOT=path keeps the screenshot there
(that is how docs/demo-dashboard.png is made).
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

REPO: Final = Path(__file__).parents[2]
CHROMIUM: Final = Path("/usr/bin/chromium")
READY: Final = "demo is ready"
START_TIMEOUT: Final = 600.0
USERNAME, PASSWORD = "demo", "phonehome-demo"
CAMERA: Final = "Front door camera"


def _unavailable(reason: str) -> None:
    message = f"browser test unavailable: {reason}"
    if os.environ.get("PHONEHOME_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message} (PHONEHOME_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[str]) -> None:
    """End scripts/develop by its PID (it stops Home Assistant on SIGTERM)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def demo_url(tmp_path: Path, socket_enabled: None) -> Iterator[str]:
    """scripts/develop running on a free port; yields the dashboard URL."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright  # noqa: F401 - optional
    except ImportError:
        _unavailable("playwright is not installed")
    port = _free_port()
    log = tmp_path / "develop.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(REPO / "scripts" / "develop"),
                "--port",
                str(port),
                "--config",
                str(tmp_path / "config"),
            ],
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        assert process.stdout is not None
        for line in process.stdout:
            if READY in line:
                break
            if time.monotonic() > deadline:
                pytest.fail("scripts/develop did not get ready in time")
        else:
            pytest.fail(f"scripts/develop ended: {log.read_text()[-2000:]}")
        yield f"http://localhost:{port}/phonehome-demo/devices"
    finally:
        _stop(process)


async def test_the_demo_dashboard_shows_the_camera_and_quarantines_it(
    demo_url: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1400})
            await page.goto(demo_url)
            await page.get_by_label("Username").fill(USERNAME)
            await page.locator("input[type=password]").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url("**/phonehome-demo/devices*")

            # the camera's card: phoning home, and the P2P finding that says why
            tile = page.locator("hui-tile-card", has_text=f"{CAMERA} phoning home")
            await expect(tile).to_contain_text("Problem", timeout=60_000)
            finding = page.get_by_text("the Foscam P2P cloud").first
            await expect(finding).to_be_visible(timeout=60_000)

            card = page.locator("hui-vertical-stack-card", has=tile)
            row = card.locator("hui-toggle-entity-row", has_text="Quarantine")
            switch = row.get_by_role("switch")
            await expect(switch).not_to_be_checked()
            await switch.click()
            await expect(switch).to_be_checked(timeout=30_000)
            blocked = card.locator("hui-sensor-entity-row", has_text="Blocked attempts")
            await expect(blocked).not_to_contain_text("Unavailable", timeout=90_000)

            screenshot = tmp_path / "demo-dashboard.png"
            await page.screenshot(path=str(screenshot))
            if target := os.environ.get("PHONEHOME_SCREENSHOT"):
                shutil.copy(screenshot, target)
        finally:
            await browser.close()

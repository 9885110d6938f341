"""Start Home Assistant with Phone Home Guard on the demo network (run by scripts/develop).

Makes the config folder (idempotent), starts ``hass`` as a child process, finishes
onboarding through Home Assistant's onboarding API with the demo user (or logs in
as that user when onboarding is done), adds the demo network through the config
flow API unless an entry exists, prints the URL and the login, and then waits:
Ctrl-C (or SIGTERM) stops Home Assistant. Standard library only.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
USERNAME: Final = "demo"
PASSWORD: Final = "phonehome-demo"
DASHBOARD: Final = "phonehome-demo"
START_TIMEOUT: Final = 900.0
"""The first start installs the frontend and other requirements: minutes."""
STOP_TIMEOUT: Final = 60.0

CONFIGURATION: Final = """\
# Written by scripts/develop. Not default_config: that pulls in go2rtc, which
# needs a binary a plain machine lacks; this lists what the demo needs.
homeassistant:
  name: Phone Home Guard demo
  time_zone: UTC
  unit_system: metric
  country: DE
  currency: EUR

http:
  server_host: 127.0.0.1
  server_port: {port}

frontend:
automation: !include automations.yaml
script:
person:
history:
logbook:
notify:

logger:
  default: warning
  logs:
    custom_components.phonehome: info
    homeassistant.setup: info

lovelace:
  mode: storage
  dashboards:
    {dashboard}:
      mode: yaml
      title: Phone Home Guard
      icon: mdi:shield-home
      show_in_sidebar: true
      filename: phonehome_dashboard.yaml
"""


def prepare(config: Path, port: int) -> None:
    """Write the configuration and link the integration, dashboard and blueprint in."""
    config.mkdir(parents=True, exist_ok=True)
    (config / "configuration.yaml").write_text(CONFIGURATION.format(port=port, dashboard=DASHBOARD))
    automations = config / "automations.yaml"
    if not automations.exists():
        automations.write_text("[]\n")
    links = {
        config / "custom_components" / "phonehome": REPO / "custom_components" / "phonehome",
        config / "phonehome_dashboard.yaml": REPO / "dashboards" / "phonehome.yaml",
        config / "blueprints" / "automation" / "phonehome": REPO
        / "blueprints"
        / "automation"
        / "phonehome",
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.resolve() == target.resolve():
                continue
            link.unlink()
        link.symlink_to(target)


class Api:
    """Home Assistant's HTTP API on localhost."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.client_id = f"http://localhost:{port}/"
        self.token: str | None = None

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, form: bool = False
    ) -> tuple[int, Any]:
        """One request; returns (HTTP status, decoded JSON or None)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def expect(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:  # noqa: ANN401 - JSON
        """A request that must succeed."""
        status, payload = self.call(method, path, body)
        if status != 200:  # noqa: PLR2004
            raise SystemExit(f"scripts/develop: {method} {path} answered {status}: {payload}")
        return payload

    def use_code(self, code: str) -> None:
        """Trade an authorization code for an access token."""
        status, payload = self.call(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            form=True,
        )
        if status != 200 or not isinstance(payload, dict):  # noqa: PLR2004
            raise SystemExit(f"scripts/develop: no token ({status}): {payload}")
        self.token = payload["access_token"]


def wait_until_up(api: Api, hass: subprocess.Popen[bytes]) -> None:
    """Wait for the HTTP server to answer at all (the first start installs requirements)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if hass.poll() is not None:
            raise SystemExit(f"scripts/develop: Home Assistant exited ({hass.returncode})")
        try:
            status, _ = api.call("GET", "/auth/providers")
        except OSError:
            status = 0
        if status:
            return
        time.sleep(1)
    raise SystemExit("scripts/develop: Home Assistant did not start in time")


def log_in(api: Api) -> None:
    """Onboard with the demo user, or log in as it when onboarding is done."""
    status, steps = api.call("GET", "/api/onboarding")
    done = {step["step"] for step in steps if step["done"]} if status == 200 else None  # noqa: PLR2004
    if done is not None and "user" not in done:
        created = api.expect(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": api.client_id,
                "name": "Demo",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )
        api.use_code(created["auth_code"])
    else:
        flow = api.expect(
            "POST",
            "/auth/login_flow",
            {
                "client_id": api.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": api.client_id,
            },
        )
        result = api.expect(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": api.client_id, "username": USERNAME, "password": PASSWORD},
        )
        if result.get("type") != "create_entry":
            raise SystemExit(
                f"scripts/develop: the config folder has another owner; log in as "
                f"{USERNAME} failed ({result.get('errors')}). Use --config with a new folder."
            )
        api.use_code(result["result"])
    for step, body in (
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": api.client_id, "redirect_uri": api.client_id}),
    ):
        if done is not None and step not in done:
            api.expect("POST", f"/api/onboarding/{step}", body)


def wait_until_running(api: Api) -> None:
    """Wait for Home Assistant to finish starting (integrations set up)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if api.expect("GET", "/api/config").get("state") == "RUNNING":
            return
        time.sleep(1)
    raise SystemExit("scripts/develop: Home Assistant did not finish starting")


def add_demo_entry(api: Api) -> None:
    """Add the demo network through the config flow, unless an entry exists."""
    entries = api.expect("GET", "/api/config/config_entries/entry?domain=phonehome")
    if entries:
        return
    step = api.expect("POST", "/api/config/config_entries/flow", {"handler": "phonehome"})
    for _ in range(5):
        if step["type"] == "create_entry":
            return
        path = f"/api/config/config_entries/flow/{step['flow_id']}"
        if step["type"] == "form" and step["step_id"] == "user":
            step = api.expect("POST", path, {"router_kind": "demo"})
        elif step["type"] == "form" and step["step_id"] == "demo":
            step = api.expect("POST", path, {})
        else:
            break
    raise SystemExit(f"scripts/develop: the config flow did not add the demo: {step}")


def stop(hass: subprocess.Popen[bytes]) -> int:
    """Stop Home Assistant by its PID, politely first."""
    if hass.poll() is None:
        hass.send_signal(signal.SIGTERM)
        try:
            hass.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            hass.kill()
            hass.wait()
    return hass.returncode or 0


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM ends the wait like Ctrl-C; ``main`` then stops Home Assistant."""
    raise KeyboardInterrupt


def main() -> int:
    """Prepare, start, set up, print, wait."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--config", type=Path, default=REPO / ".develop" / "config")
    args = parser.parse_args()
    config = args.config.resolve()
    prepare(config, args.port)

    hass_bin = Path(sys.executable).parent / "hass"
    hass = subprocess.Popen([str(hass_bin), "--config", str(config)])
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        api = Api(args.port)
        wait_until_up(api, hass)
        log_in(api)
        wait_until_running(api)
        add_demo_entry(api)
        print(
            f"\nPhone Home Guard demo is ready: http://localhost:{args.port}/{DASHBOARD}\n"
            f"Log in as {USERNAME} / {PASSWORD}. Config folder: {config}\n"
            "Ctrl-C stops Home Assistant.",
            flush=True,
        )
        return hass.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(hass)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())

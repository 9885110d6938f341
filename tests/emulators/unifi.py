"""A UniFi Network controller as an aiohttp app: a UniFi OS console or a legacy controller.

Payloads come from shared/fixtures/unifi/ (see its SOURCES.md): clients of
``stat/sta`` (aiounifi and Home Assistant test literals), ``stat/sysinfo``,
``/api/self/sites``, the UniFi OS login answer, the object-oriented network
configs, and the v2 traffic-flows page (synthetic values in the real shape), cut
into pages of the asked ``pageSize``. ``stat/stadpi`` has no fixture: its answer is
built here in the by_app shape (``mac``, ``by_app[]`` of ``app``, ``cat``,
``rx_bytes``, ``tx_bytes``, ``rx_packets``, ``tx_packets``).

What the emulator enforces, as the controllers do:

- UniFi OS: ``GET /`` answers 200; ``POST /api/auth/login`` sets the TOKEN cookie and
  answers an ``x-csrf-token`` header; Network paths live under ``/proxy/network``;
  a request without the cookie answers 401; a write (any method but GET) without
  the session's CSRF token answers 403. 2FA: HTTP 499.
- legacy: ``GET /`` redirects to /manage; ``POST /api/login`` sets ``unifises`` and
  ``csrf_token`` cookies; errors are ``{"meta": {"rc": "error", "msg": "api.err.*"}}``
  (Invalid, LoginRequired, NoPermission, Ubic2faTokenRequired); writes need the
  ``X-Csrf-Token`` header equal to the csrf_token cookie.
- v2 errors are ``{"errorCode": 403, "message": "api.err.NoPermission"}``.

Failure switches (``fail[key] = mode``, key "login", "stat/sta", "traffic-flows",
"oon", ...): "drop" (connection closed), "delay" (longer than any test timeout),
"garbage", "shape" (valid JSON of the wrong shape), "huge" (past 16 MiB), "stream" (past 16 MiB, chunked, no length), "object" (a JSON
object where a list belongs), "404", "429", "error" (HTTP 500).
A write on UniFi OS renews the CSRF token (``x-updated-csrf-token``).

Shared faults (``faults``, tests/emulators/faults.py) by ``METHOD path``: delay,
cut, 100 MiB, wrong shape, actions on a request's arrival; ``reboot()`` (sessions
gone, the configs kept: the controller stores them) and ``stop()`` / ``start()``
(the same port again).
"""

import asyncio
import contextlib
import copy
import json
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from tests.emulators.faults import Fault, Faults

FIXTURES: Final = Path(__file__).parents[2].parent / "shared" / "fixtures" / "unifi"
SITE: Final = "default"
NETWORK: Final = "/proxy/network"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_clients() -> list[dict[str, Any]]:
    """The four stat/sta clients of the fixtures (a wired camera, a wireless phone,
    a blocked and an unblocked Home Assistant test client)."""
    return [
        fixture("aiounifi/wired_client.json"),
        fixture("aiounifi/wireless_client.json"),
        fixture("home-assistant/blocked_client.json"),
        fixture("home-assistant/unblocked_client.json"),
    ]


@dataclass
class User:
    password: str
    role: str = "admin"
    """Site role: "admin" or "readonly"."""
    two_factor: bool = False


@dataclass
class Session:
    user: str
    csrf: str


@dataclass
class UniFiEmulator:
    """One controller with one site ("default"); state a test reads and changes."""

    unifi_os: bool = True
    users: dict[str, User] = field(default_factory=lambda: {"admin": User("secret")})
    clients: list[dict[str, Any]] = field(default_factory=fixture_clients)
    flows: list[dict[str, Any]] = field(
        default_factory=lambda: fixture("unifi-mcp/traffic_flows.json")["data"]
    )
    configs: list[dict[str, Any]] = field(
        default_factory=lambda: fixture("aiounifi/object_oriented_network_configs.json")
    )
    traffic_flows: bool = True
    dpi: bool = True
    oon: bool = True
    hide_configs: bool = False
    """The OON list leaves out every phonehome_ config (a read-back that fails)."""
    ignore_block: bool = False
    """block-sta is answered ok but not applied."""
    store_disabled: bool = False
    """A created OON config is stored disabled (a read-back that shows it not in force)."""
    token_prefix: str = ""
    """Start of every session cookie and CSRF token handed out, so tests can look for them."""
    answer_created: bool = True
    """Creating an OON config answers the config (with its _id); else {}."""
    fail: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    """(method, path, JSON body) of every request, login included."""
    port: int = 0
    faults: Faults = field(default_factory=Faults)
    _runner: web.AppRunner | None = None
    _ssl: ssl.SSLContext | None = None
    _current: web.Request | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    # ------------------------------------------------------------ lifecycle

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        """Listen on 127.0.0.1: a free port the first time, the same one after ``stop``."""
        self._ssl = ssl_context or self._ssl
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._ssl)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening and close every connection (unreachable); ``start`` again later."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reboot(self) -> None:
        """The console restarts: every session is gone; configs and clients are stored."""
        self.sessions.clear()

    async def close(self) -> None:
        self._closing.set()
        await self.stop()

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def calls(self, method: str, suffix: str) -> list[Any]:
        """Bodies of the requests with this method whose path ends with ``suffix``."""
        return [body for m, path, body in self.requests if m == method and path.endswith(suffix)]

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.configs if str(c.get("name", "")).startswith("phonehome_")]

    # ------------------------------------------------------------ dispatch

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        path = request.path
        self._current = request
        self.requests.append((request.method, path, body))
        name = f"{request.method} {path}"
        self.faults.arrived(name)
        if (fault := self.faults.answer_with()) is not None and (
            faulty := await self._fault(request, fault)
        ) is not None:
            return faulty
        return await self._route(request, path, body)

    async def _route(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        if path == "/":
            if self.unifi_os:
                return web.Response(text="<html></html>", content_type="text/html")
            raise web.HTTPFound("/manage")
        if path in {"/api/auth/login", "/api/login"}:
            return await self._login(request, body)
        if path in {"/api/auth/logout", "/api/logout"}:
            if (failure := await self._failure("logout")) is not None:
                return failure
            self.sessions.pop(self._token(request) or "", None)
            return self._ok([])
        prefix = NETWORK if self.unifi_os else ""
        if not path.startswith(prefix):
            return web.json_response({"error": "not found"}, status=404)
        return await self._network(request, path.removeprefix(prefix), body)

    def _token(self, request: web.Request) -> str | None:
        return request.cookies.get("TOKEN" if self.unifi_os else "unifises")

    async def _login(self, request: web.Request, body: Any) -> web.StreamResponse:  # noqa: PLR0911
        if (failure := await self._failure("login")) is not None:
            return failure
        expected = "/api/auth/login" if self.unifi_os else "/api/login"
        if request.path != expected:
            return web.json_response({"error": "not found"}, status=404)
        user = self.users.get(str(body.get("username"))) if isinstance(body, dict) else None
        if user is None or user.password != body.get("password"):
            if self.unifi_os:
                return web.json_response(
                    {"code": "AUTHENTICATION_FAILED_INVALID_CREDENTIALS", "message": "Invalid"},
                    status=401,
                )
            return self._v1_error("api.err.Invalid", 400)
        if user.two_factor:
            if self.unifi_os:
                return web.json_response(
                    {"code": "MFA_AUTH_REQUIRED", "data": {"mfaCookie": "UBIC_2FA=x"}},
                    status=499,
                )
            return self._v1_error("api.err.Ubic2faTokenRequired", 400)
        token = self.token_prefix + secrets.token_hex(16)
        csrf = self.token_prefix + secrets.token_hex(8)
        self.sessions[token] = Session(body["username"], csrf)
        if self.unifi_os:
            response = web.json_response(fixture("aiounifi/login_unifios_response.json"))
            response.headers["x-csrf-token"] = csrf
            response.set_cookie("TOKEN", token, path="/", secure=True, httponly=True)
        else:
            response = self._ok([])
            response.set_cookie("unifises", token, path="/", secure=True, httponly=True)
            response.set_cookie("csrf_token", csrf, path="/", secure=True)
        return response

    async def _network(self, request: web.Request, path: str, body: Any) -> web.StreamResponse:
        session = self.sessions.get(self._token(request) or "")
        if session is None:
            if self.unifi_os:
                return web.json_response({"error": {"code": 401}}, status=401)
            return self._v1_error("api.err.LoginRequired", 401)
        if request.method != "GET" and request.headers.get("x-csrf-token") != session.csrf:
            return web.json_response({"error": "CSRF token missing or wrong"}, status=403)
        writes = request.method in {"PUT", "DELETE"} or path.endswith(
            ("cmd/stamgr", "object-oriented-network-config")
        )
        readonly = self.users[session.user].role != "admin"
        v2 = path.startswith(f"/v2/api/site/{SITE}/")
        if writes and readonly:
            if v2:
                return web.json_response(
                    {"errorCode": 403, "message": "api.err.NoPermission"}, status=403
                )
            return self._v1_error("api.err.NoPermission", 403)
        if v2:
            response = await self._v2(
                request.method, path.removeprefix(f"/v2/api/site/{SITE}/"), body
            )
        elif path == "/api/self/sites":
            response = web.json_response(self._sites(self.users[session.user].role))
        else:
            response = await self._v1(path, body)
        if self.unifi_os and request.method != "GET":
            session.csrf = self.token_prefix + secrets.token_hex(8)  # renewed on writes
            response.headers["x-updated-csrf-token"] = session.csrf
        return response

    # ------------------------------------------------------------ classic API

    async def _v1(self, path: str, body: Any) -> web.StreamResponse:  # noqa: PLR0911
        site = f"/api/s/{SITE}/"
        if not path.startswith(site):
            return self._v1_error("api.err.NoSiteContext", 400)
        path = path.removeprefix(site)
        if (failure := await self._failure(path)) is not None:
            return failure
        if path == "stat/sysinfo":
            return self._ok([fixture("aiounifi/system_information.json")])
        if path == "stat/sta":
            return self._ok(self.clients)
        if path.startswith("stat/user/"):
            mac = path.removeprefix("stat/user/")
            return self._ok([c for c in self.clients if c.get("mac") == mac])
        if path == "stat/stadpi" and self.dpi:
            return self._ok(self._dpi_data())
        if path == "cmd/stamgr":
            return self._stamgr(body)
        return self._v1_error("api.err.NotFound", 404)

    @staticmethod
    def _sites(role: str) -> dict[str, Any]:
        sites: dict[str, Any] = fixture("aiounifi/site_response.json")
        for site in sites["data"]:
            site["role"] = role
        return sites

    def _dpi_data(self) -> list[dict[str, Any]]:
        return [
            {
                "mac": client["mac"],
                "by_app": [
                    {
                        "app": 5,
                        "cat": 3,
                        "rx_bytes": 1000,
                        "tx_bytes": 200,
                        "rx_packets": 10,
                        "tx_packets": 4,
                    },
                    {
                        "app": 94,
                        "cat": 13,
                        "rx_bytes": 500,
                        "tx_bytes": 50,
                        "rx_packets": 5,
                        "tx_packets": 1,
                    },
                ],
            }
            for client in self.clients
        ]

    def _stamgr(self, body: Any) -> web.StreamResponse:
        command, mac = body.get("cmd"), body.get("mac")
        if command not in {"block-sta", "unblock-sta"}:
            return self._v1_error("api.err.InvalidCommand", 400)
        for client in self.clients:
            if client.get("mac") == mac and not self.ignore_block:
                client["blocked"] = command == "block-sta"
        return self._ok([{"mac": mac, "blocked": command == "block-sta"}])

    # ------------------------------------------------------------ v2 API

    async def _v2(self, method: str, path: str, body: Any) -> web.StreamResponse:
        key = "oon" if path.startswith("object-oriented-network-config") else path
        if (failure := await self._failure(key)) is not None:
            return failure
        if path == "traffic-flows" and self.traffic_flows:
            if method != "POST":
                return web.json_response({"error": "Method Not Allowed"}, status=405)
            return web.json_response(self._flow_page(body))
        if key == "oon" and self.oon:
            return self._oon(method, path, body)
        return web.json_response({"errorCode": 404, "message": "api.err.NotFound"}, status=404)

    def _flow_page(self, body: dict[str, Any]) -> dict[str, Any]:
        number, size = int(body["pageNumber"]), int(body["pageSize"])
        pages = max(1, -(-len(self.flows) // size))
        return {
            "data": self.flows[number * size : (number + 1) * size],
            "page_number": number,
            "total_element_count": len(self.flows),
            "total_page_count": pages,
            "has_next": number + 1 < pages,
            "or_more": False,
        }

    def _oon(self, method: str, path: str, body: Any) -> web.StreamResponse:
        if path == "object-oriented-network-configs" and method == "GET":
            shown = [c for c in self.configs if not (self.hide_configs and c in self.ours())]
            return web.json_response(shown)
        if path == "object-oriented-network-config" and method == "POST":
            config = {"_id": secrets.token_hex(12), **copy.deepcopy(body)}
            if self.store_disabled:
                config["enabled"] = False
            self.configs.append(config)
            return web.json_response(config if self.answer_created else {})
        _, _, identifier = path.partition("/")
        found = [c for c in self.configs if identifier and c["_id"] == identifier]
        if not found:
            return web.json_response(
                {"errorCode": 404, "message": "api.err.ObjectNotFound"}, status=404
            )
        if method == "PUT":
            found[0].clear()
            found[0].update({**copy.deepcopy(body), "_id": identifier})
            return web.json_response(found[0])
        if method == "DELETE":
            self.configs.remove(found[0])
            return web.Response(status=204)
        return web.json_response({"error": "Method Not Allowed"}, status=405)

    # ------------------------------------------------------------ helpers

    async def _failure(self, key: str) -> web.StreamResponse | None:  # noqa: PLR0911
        mode = self.fail.get(key)
        if mode is None:
            return None
        if mode == "drop":
            assert self._current is not None
            assert self._current.transport is not None
            self._current.transport.close()
            return web.Response()
        if mode == "delay":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), 30)
        if mode == "garbage":
            return web.Response(body=b"<html>\x00\xff not json", content_type="application/json")
        if mode == "shape":
            return web.json_response({"meta": {"rc": "ok"}, "data": {"not": "a list"}})
        if mode == "error":
            return self._v1_error("api.err.ServerError", 500)
        if mode == "429":
            return web.json_response({"code": "AUTHENTICATION_FAILED_LIMIT_REACHED"}, status=429)
        if mode == "object":
            return web.json_response({"unexpected": True})
        if mode == "stream":
            assert self._current is not None
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(self._current)
            for _ in range(17):
                await response.write(b" " * (1024 * 1024))
            return response
        if mode == "huge":
            return web.Response(body=b" " * (17 * 1024 * 1024), content_type="application/json")
        return web.json_response({"errorCode": 404, "message": "api.err.NotFound"}, status=404)

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """The shared fault's answer; None (after the delay) to answer normally."""
        if fault is Fault.DELAY:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.faults.delay)
            return None
        if fault is Fault.WRONG_SHAPE:
            if "/v2/" in request.path:
                return web.json_response({"data": ["not", "the", "shape"], "count": 3})
            return web.json_response({"meta": {"rc": "ok"}, "data": {"not": "a list"}})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if fault is Fault.CUT:
            body = json.dumps({"meta": {"rc": "ok"}, "data": self.clients}).encode()
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        response.enable_chunked_encoding()  # HUGE
        await response.prepare(request)
        for chunk in self.faults.huge(b'{"meta": {"rc": "ok"}, "data": [', b"]}"):
            await response.write(chunk)
        await response.write_eof()
        return response

    @staticmethod
    def _ok(data: list[Any]) -> web.Response:
        return web.json_response({"meta": {"rc": "ok"}, "data": data})

    @staticmethod
    def _v1_error(message: str, status: int) -> web.Response:
        return web.json_response(
            {"meta": {"rc": "error", "msg": message}, "data": []}, status=status
        )

"""OpenWrt 24.10's ``/ubus`` (uhttpd-mod-ubus + rpcd + rpcd-mod-luci), as an aiohttp app.

Every answer is built from the real captures in shared/fixtures/openwrt-24.10.8
(the ``body`` of each file, with the request's id and this emulator's data put in),
so the shapes are exactly the router's. What the emulator adds is state a test
controls: users, passwords and ACLs, sessions (a test can expire them), the
conntrack table (``proc_text``: served through LuCI's own conversion, with the
matching ``nf_conntrack_count``), host hints and DHCP leases, failure switches, and
rpcd's death when a reply passes ubus's 1 MiB message limit.

``plugin_installed`` adds the phonehome rpcd plugin: ``list phonehome`` answers its
signatures, and its methods run the real script (router/openwrt/phonehome) in a
worker thread, on a temporary copy of ``proc_text``, as rpcd runs it.

Batches (a JSON array of requests) are answered as uhttpd does: one response per
request, in order, computed one after another.

Quarantine (tests/emulators/ubus_firewall.py): rpcd's ``uci`` object over
``uci`` (committed configs, OpenWrt's default fw4 firewall) with changes staged
per session, ``file write`` of /proc/net/nf_conntrack (the kernel's flush
patch), ``file exec`` of ``nft --terse --json list ruleset`` (a fw4-shaped
ruleset, or ``nft_ruleset``), and ``statuses`` to fail any method. The "hass"
login holds exactly the rights of router/openwrt/phonehome.json.
"""

import asyncio
import contextlib
import copy
import fnmatch
import json
import shutil
import ssl
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from tests.emulators.faults import Fault, Faults
from tests.emulators.luci_conntrack import conntrack_list
from tests.emulators.ubus_firewall import (
    CONNTRACK_PROC,
    NFT,
    FirewallState,
    UciStore,
    delete_conntrack,
)
from tests.plugin.tools import Plugin, tool_dir

FIXTURES: Final = Path(__file__).parents[2].parent / "shared" / "fixtures" / "openwrt-24.10.8"
NULL_SESSION: Final = "0" * 32
UBUS_MESSAGE_LIMIT: Final = 1024 * 1024
"""ubus's UBUS_MAX_MSGLEN: a reply larger than this never reaches uhttpd."""
FIREWALL_CONFIG: Final = "firewall"
COUNT_PATH: Final = "/proc/sys/net/netfilter/nf_conntrack_count"
ACCT_PATH: Final = "/proc/sys/net/netfilter/nf_conntrack_acct"
ACL_FILE: Final = Path(__file__).parents[2] / "router" / "openwrt" / "phonehome.json"
OBJECTS: Final = {
    "session": {"login", "destroy", "access"},
    "system": {"board", "info"},
    "file": {"read", "write", "exec", "list", "stat"},
    "uci": {"get", "add", "set", "delete", "commit", "revert", "changes"},
    "luci": {"getConntrackList", "getVersion"},
    "luci-rpc": {
        "getNetworkDevices",
        "getWirelessDevices",
        "getHostHints",
        "getDUIDHints",
        "getBoardJSON",
        "getDHCPLeases",
    },
}
PLUGIN_METHODS: Final = {"summary", "conntrack", "flush"}
PLUGIN_SIGNATURES: Final = {
    "summary": {},
    "conntrack": {"offset": "number", "limit": "number", "snapshot": "string"},
    "flush": {"ip": "string"},
}
"""What uhttpd's ``list phonehome`` shows of the plugin's ``list`` output."""


def fixture(name: str) -> dict[str, Any]:
    """A capture file, decoded: ``{source, request, http_status, body}``."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fixture_body(name: str) -> Any:
    """The decoded ``body`` of a capture: the JSON-RPC response the router sent."""
    return json.loads(fixture(name)["body"])


def dumps(value: object) -> str:
    """JSON as uhttpd writes it (blobmsg_format_json): compact."""
    return json.dumps(value, separators=(",", ":"))


class Failure(StrEnum):
    """Whole-response failure switches."""

    DROP = "drop"
    """Close the connection without an answer."""
    DELAY = "delay"
    """Answer after ``failure_delay`` seconds (past the client's timeout)."""
    HTTP_500 = "http_500"
    TRUNCATED = "truncated"
    """A 200 whose JSON stops half way (with a matching Content-Length)."""
    NOT_JSON = "not_json"
    HUGE = "huge"
    """A valid JSON-RPC reply of ``huge_size`` bytes."""
    HUGE_CHUNKED = "huge_chunked"
    """The same, streamed without Content-Length."""
    WRONG_SHAPE = "wrong_shape"
    """``"result"`` is a string, not ``[status, payload]``."""
    CUT = "cut"
    """Half of a valid reply, then the connection closes (Content-Length says more)."""


FAULTS: Final = {
    Fault.DELAY: Failure.DELAY,
    Fault.CUT: Failure.CUT,
    Fault.HUGE: Failure.HUGE_CHUNKED,
    Fault.WRONG_SHAPE: Failure.WRONG_SHAPE,
}
"""The shared faults (tests/emulators/faults.py) as this emulator's failure switches."""


@dataclass
class User:
    """An rpcd login: password and ACL (None: everything, as root has)."""

    password: str
    ubus: set[str] | None = None
    """Allowed ``object.method`` (``object.*`` for all of an object)."""
    files: set[str] | None = None
    """Paths ``file read`` may read."""
    grants: set[tuple[str, str, str]] = field(default_factory=set)
    """Other rights as rpcd keeps them: (scope, object pattern, function), e.g.
    ("uci", "firewall", "write"), ("file", "/proc/net/nf_conntrack", "write")."""

    def may_call(self, obj: str, method: str) -> bool:
        return self.ubus is None or f"{obj}.{method}" in self.ubus or f"{obj}.*" in self.ubus

    def may_read(self, path: str) -> bool:
        return self.files is None or path in self.files

    def may(self, scope: str, obj: str, function: str) -> bool:
        """rpcd's rpc_session_acl_allowed: fnmatch on object and function."""
        if scope == "ubus":
            return self.may_call(obj, function)
        if self.ubus is None or (scope == "file" and function == "read" and self.may_read(obj)):
            return True
        return any(
            granted_scope == scope
            and fnmatch.fnmatchcase(obj, pattern)
            and fnmatch.fnmatchcase(function, granted)
            for granted_scope, pattern, granted in self.grants
        )

    @classmethod
    def from_acl(cls, password: str, path: Path = ACL_FILE) -> "User":
        """A login granted an rpcd ACL file's read and write sections (rpcd's setup_acl_scope)."""
        ubus: set[str] = set()
        files: set[str] = set()
        grants: set[tuple[str, str, str]] = set()
        for group in json.loads(path.read_text()).values():
            for perm in ("read", "write"):
                for scope, objects in group.get(perm, {}).items():
                    if isinstance(objects, list):  # array notation: the perm is the function
                        grants |= {(scope, obj, perm) for obj in objects}
                        continue
                    for obj, functions in objects.items():
                        for function in functions:
                            if scope == "ubus":
                                ubus.add(f"{obj}.{function}")
                            elif scope == "file" and function == "read":
                                files.add(obj)
                            else:
                                grants.add((scope, obj, function))
        return cls(password, ubus, files, grants)


HASS_UBUS: Final = set(User.from_acl("").ubus or ())
"""The ubus methods router/openwrt/phonehome.json grants."""


def _default_network_devices() -> dict[str, Any]:
    def device(name: str, mac: str, ifindex: int, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "wireless": False,
            "up": True,
            "mtu": 1500,
            "qlen": 1000,
            "ipaddrs": [],
            "ip6addrs": [],
            "mac": mac,
            "type": 1,
            "ifindex": ifindex,
            **extra,
        }

    return {
        "lo": device("lo", "00:00:00:00:00:00", 1, type=772),
        "eth0": device("eth0", "94:83:C4:00:00:01", 2, master="br-lan"),
        "eth1": device("eth1", "94:83:C4:00:00:02", 3),
        "br-lan": device(
            "br-lan",
            "94:83:C4:00:00:01",
            5,
            bridge=True,
            ports=["eth0"],
            ipaddrs=[
                {"address": "192.168.1.1", "netmask": "255.255.255.0", "broadcast": "192.168.1.255"}
            ],
        ),
    }


@dataclass
class UbusEmulator:
    """The router's ``/ubus``; start it with ``await emulator.start()``."""

    users: dict[str, User] = field(
        default_factory=lambda: {
            "root": User("secret"),
            "hass": User.from_acl("hasspw"),
        }
    )
    hang: float = 0.2
    """How long a call whose reply passes 1 MiB hangs before -32003 (uhttpd: 60 s)."""
    message_limit: int = UBUS_MESSAGE_LIMIT
    anonymous_login: bool = True
    """False: ``session login`` is refused with -32002 (no 'unauthenticated' ACL)."""
    host_hints: dict[str, Any] = field(
        default_factory=lambda: copy.deepcopy(fixture_body("luci_getHostHints")["result"][1])
    )
    dhcp_leases: dict[str, Any] = field(
        default_factory=lambda: copy.deepcopy(fixture_body("luci_getDHCPLeases")["result"][1])
    )
    board: dict[str, Any] = field(
        default_factory=lambda: copy.deepcopy(fixture_body("system_board")["result"][1])
    )
    network_devices: dict[str, Any] = field(default_factory=_default_network_devices)
    files: dict[str, str] = field(default_factory=lambda: {ACCT_PATH: "1\n"})
    failure: Failure | None = None
    failure_on: str | None = None
    """Only requests holding this ``object.method`` fail; None: every request."""
    failure_delay: float = 1.0
    huge_size: int = 2048
    calls: Counter[str] = field(default_factory=Counter)
    """Requested ``object.method`` (counted when received, whatever the answer)."""
    rpcd_alive: bool = True
    session_prefix: str = ""
    """Start of every session id rpcd hands out (the rest: hex), so tests can look for it."""
    url: str = ""
    plugin_installed: bool = False
    """The phonehome rpcd plugin is in /usr/libexec/rpcd (and rpcd was restarted)."""
    requests: int = 0
    """HTTP requests received."""
    plugin_hook: Callable[[Path, dict[str, Any]], None] | None = None
    """Called with the plugin's directory (nf_conntrack, tmp/...) and the arguments
    before each ``phonehome`` call runs: tests remove snapshots or the table there."""
    reply_sizes: list[tuple[str, int]] = field(default_factory=list)
    """(``object.method``, bytes of its payload) of every call answered with data."""
    call_log: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """Every call in order: (object, method, args without ubus_rpc_session)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """``object.method`` -> ubus status answered instead (after the ACL check)."""
    firewall_applier: Callable[[dict[str, dict[str, Any]]], None] | None = None
    """Called with the committed firewall sections after each ``uci commit firewall``."""
    conntrack_writer: Callable[[str], None] | None = None
    """Called with what is written to /proc/net/nf_conntrack (``file write``, plugin
    flush); None: the kernel patch's deletion is applied to ``proc_text``."""
    nft_ruleset: Callable[[], str] | None = None
    """stdout of ``nft --terse --json list ruleset``; None: fw4-shaped, from the config."""
    firewall_reload_lag: int = 0
    """Ruleset reads after a firewall commit that still show the previous ruleset."""
    rule_counters: dict[str, int] = field(default_factory=dict)
    """Firewall section name -> packets its rule's counter shows."""
    proc_write_status: int = 2
    """Status of a ``file write`` to /proc/net/nf_conntrack that the kernel took:
    rpcd fsyncs after writing, and /proc refuses fsync (EINVAL -> status 2)."""
    faults: Faults = field(default_factory=Faults)
    """Shared fault injection, by ``object.method``; ``failure`` (when set) goes first."""
    boot_lag: int = 2
    """Ruleset reads after a reboot before fw4 has loaded the firewall again."""

    def __post_init__(self) -> None:
        self.sessions: dict[str, str] = {}
        self._next_session = 0
        self._entries: list[dict[str, Any]] | None = None
        self.proc_text = ""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._plugin_dir: Path | None = None
        self._plugin: Plugin | None = None
        self._proc_written = False
        self.uci_store = UciStore()
        self.fw = FirewallState(self.uci_store.committed[FIREWALL_CONFIG])
        self.app = web.Application()
        self.app.router.add_post("/ubus", self._handle)

    # ------------------------------------------------------------------ control

    @property
    def uci(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Committed configs: config -> section -> values with rpcd's meta keys."""
        return self.uci_store.committed

    @property
    def proc_text(self) -> str:
        return self._proc_text

    @proc_text.setter
    def proc_text(self, text: str) -> None:
        """Set the kernel's /proc/net/nf_conntrack; the count follows (every line)."""
        self._proc_text = text
        self._entries = None  # converted on first getConntrackList only
        self._proc_written = False
        self.files[COUNT_PATH] = f"{text.count(chr(10))}\n"

    def expire_sessions(self) -> None:
        """Every session times out (as after 300 s without a call)."""
        self.sessions.clear()
        self.uci_store.staged.clear()

    def restart_rpcd(self) -> None:
        """``/etc/init.d/rpcd restart``: objects back, sessions gone."""
        self.rpcd_alive = True
        self.sessions.clear()
        self.uci_store.staged.clear()

    def reboot(self) -> None:
        """The router restarts: sessions and staged changes gone, the conntrack table empty,
        fw4 loading the committed firewall again (``boot_lag`` ruleset reads late)."""
        self.restart_rpcd()
        self.fw.loaded = {}
        self.fw.committed(copy.deepcopy(self.uci[FIREWALL_CONFIG]), self.boot_lag)
        self.proc_text = ""

    async def stop(self) -> None:
        """Stop listening and close every connection (unreachable); ``start`` again later."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def start(self, ssl_context: ssl.SSLContext | None = None, port: int = 0) -> str:
        """Listen on 127.0.0.1, ``port`` (0: a free one); returns the /ubus URL."""
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=ssl_context)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = int(port)
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{host}:{port}/ubus"
        return self.url

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short when the emulator closes (so teardown does not wait)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._plugin_dir is not None:
            shutil.rmtree(self._plugin_dir, ignore_errors=True)
            self._plugin_dir = None
            self._plugin = None

    def _plugin_of(self) -> Plugin:
        """The plugin under busybox sh (else dash), its hooks in a temporary directory."""
        if self._plugin is None or self._plugin_dir is None:
            self._plugin_dir = Path(tempfile.mkdtemp(prefix="phonehome-emulator-"))
            shell = "busybox" if shutil.which("busybox") else "dash"
            for name in ("tmp", "sys"):
                (self._plugin_dir / name).mkdir()
            self._plugin = Plugin(
                shell,
                tool_dir(shell, self._plugin_dir / "bin"),
                {
                    "PHONEHOME_PROC": str(self._plugin_dir / "nf_conntrack"),
                    "PHONEHOME_SYS": str(self._plugin_dir / "sys"),
                    "PHONEHOME_TMP": str(self._plugin_dir / "tmp"),
                    "PHONEHOME_FLUSH_TARGET": str(self._plugin_dir / "flush"),
                },
            )
        if not self._proc_written:
            (self._plugin_dir / "nf_conntrack").write_text(self._proc_text)
            sysctl = self._plugin_dir / "sys"
            (sysctl / "nf_conntrack_count").write_text(self.files[COUNT_PATH])
            (sysctl / "nf_conntrack_acct").write_text(self.files.get(ACCT_PATH, "0\n"))
            (sysctl / "nf_conntrack_max").write_text("65536\n")
            self._proc_written = True
        return self._plugin

    async def _run_plugin(self, method: str, args: dict[str, Any]) -> object:
        """``phonehome call METHOD`` with the args on stdin, in a worker thread."""
        plugin = self._plugin_of()
        arguments = {k: v for k, v in args.items() if k != "ubus_rpc_session"}
        if self.plugin_hook is not None:
            assert self._plugin_dir is not None
            self.plugin_hook(self._plugin_dir, arguments)
        out, _ = await asyncio.to_thread(plugin.run, ["call", method], dumps(arguments))
        flushed = self._plugin_dir / "flush"  # PHONEHOME_FLUSH_TARGET
        if flushed.exists():
            self._write_conntrack(flushed.read_text())
            flushed.unlink()
        return json.loads(out)

    def _write_conntrack(self, data: str) -> bool:
        """A write to /proc/net/nf_conntrack; False when the kernel refuses it (EINVAL)."""
        if self.conntrack_writer is not None:
            self.conntrack_writer(data)
            return True
        text = delete_conntrack(self._proc_text, data)
        if text is None:
            return False
        self.proc_text = text
        return True

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        raw = await request.read()
        try:
            document = json.loads(raw)
        except ValueError:
            body = fixture_body("malformed_request_json")
            return web.Response(text=dumps(body), content_type="application/json")
        items = document if isinstance(document, list) else [document]
        names = [self._name(item) for item in items]
        self.calls.update(name for name in names if name)
        self.call_log += [
            self._logged(item) for item, name in zip(items, names, strict=True) if name
        ]
        for name in filter(None, names):
            self.faults.arrived(name)
        failure = self.failure
        if failure is not None and self.failure_on is not None and self.failure_on not in names:
            failure = None
        if failure is None and any(names) and (fault := self.faults.answer_with()) is not None:
            failure = FAULTS[fault]
        if failure is not None:
            failed = await self._fail(request, items, failure)
            if failed is not None:
                return failed
        answers = [await self._answer(item) for item in items]
        out = answers if isinstance(document, list) else answers[0]
        return web.Response(text=dumps(out), content_type="application/json")

    @staticmethod
    def _name(item: object) -> str | None:
        if not isinstance(item, dict) or item.get("method") != "call":
            return None
        params = item.get("params")
        if not isinstance(params, list) or len(params) < 3:
            return None
        return f"{params[1]}.{params[2]}"

    @staticmethod
    def _logged(item: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        _, obj, method, *rest = item["params"]
        args = rest[0] if rest and isinstance(rest[0], dict) else {}
        return obj, method, {k: v for k, v in args.items() if k != "ubus_rpc_session"}

    async def _fail(  # noqa: PLR0911
        self, request: web.Request, items: list[Any], failure: Failure
    ) -> web.StreamResponse | None:
        request_id = items[0].get("id") if items and isinstance(items[0], dict) else None
        match failure:
            case Failure.DROP:
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=200)
            case Failure.DELAY:
                await self._sleep(self.faults.delay if self.failure is None else self.failure_delay)
                return None
            case Failure.CUT:
                return await self._cut(request, request_id)
            case Failure.HTTP_500:
                return web.Response(status=500, text="Internal Server Error")
            case Failure.TRUNCATED:
                text = dumps({"jsonrpc": "2.0", "id": request_id, "result": [0, self.board]})
                return web.Response(text=text[: len(text) // 2], content_type="application/json")
            case Failure.NOT_JSON:
                return web.Response(text="<html><body>LuCI</body></html>", content_type="text/html")
            case Failure.HUGE:
                return web.Response(text=self._huge(request_id), content_type="application/json")
            case Failure.HUGE_CHUNKED:
                response = web.StreamResponse()
                response.enable_chunked_encoding()
                await response.prepare(request)
                if self.failure is None:  # the shared fault: 100 MiB, never held whole
                    head = dumps({"jsonrpc": "2.0", "id": request_id, "result": [0]})[:-2]
                    chunks = self.faults.huge(head.encode() + b",", b"{}]}")
                else:
                    body = self._huge(request_id).encode()
                    chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
                for chunk in chunks:
                    await response.write(chunk)
                await response.write_eof()
                return response
            case _:  # WRONG_SHAPE
                text = dumps({"jsonrpc": "2.0", "id": request_id, "result": "surprise"})
                return web.Response(text=text, content_type="application/json")

    async def _cut(self, request: web.Request, request_id: object) -> web.StreamResponse:
        """A valid reply's headers and first half, then the connection closes."""
        text = dumps({"jsonrpc": "2.0", "id": request_id, "result": [0, self.board]}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(text)
        await response.prepare(request)
        await response.write(text[: len(text) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    def _huge(self, request_id: object) -> str:
        head = dumps({"jsonrpc": "2.0", "id": request_id, "result": [0, {"pad": ""}]})
        return head.replace('"pad":""', '"pad":"' + "x" * self.huge_size + '"')

    # ------------------------------------------------------------------ JSON-RPC

    @staticmethod
    def _with_id(body: dict[str, Any], request_id: object) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            **{k: v for k, v in body.items() if k not in {"jsonrpc", "id"}},
        }

    def _error(self, name: str, request_id: object) -> dict[str, Any]:
        return self._with_id(fixture_body(name), request_id)

    @staticmethod
    def _status(status: int, request_id: object) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "result": [status]}

    @staticmethod
    def _ok(payload: object, request_id: object) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "result": [0, payload]}

    def _reply(self, status: int, payload: object, request_id: object) -> dict[str, Any]:
        """A payload when there is one (status 0), else the bare status."""
        return (
            self._status(status, request_id) if payload is None else self._ok(payload, request_id)
        )

    async def _answer(self, item: object) -> dict[str, Any]:  # noqa: PLR0911
        if not isinstance(item, dict):
            return self._error("malformed_request_json", None)
        request_id = item.get("id")
        params = item.get("params")
        if item.get("jsonrpc") == "2.0" and item.get("method") == "list":
            return self._list(params, request_id)
        if (
            item.get("jsonrpc") != "2.0"
            or item.get("method") != "call"
            or not isinstance(params, list)
            or len(params) != 4
            or not isinstance(params[3], dict)
        ):
            return self._error("malformed_request_json", request_id)
        sid, obj, method, args = params
        if not self.rpcd_alive or obj not in self._objects():
            return self._error("object_not_found", request_id)
        if obj == "session" and method == "login":
            if not self.anonymous_login:
                return self._error("call_null_session", request_id)
            return self._login(args, request_id)
        user = self.users.get(self.sessions.get(sid, ""))
        if user is None or not (
            user.may_call(obj, method) or (obj == "session" and method == "destroy")
        ):
            return self._error(
                "call_expired_session" if user is None else "acl_denied_object", request_id
            )
        if method not in self._objects()[obj]:
            return self._with_id(fixture_body("method_not_found"), request_id)
        if f"{obj}.{method}" in self.statuses:
            return self._status(self.statuses[f"{obj}.{method}"], request_id)
        return await self._dispatch(sid, user, obj, method, args, request_id)

    def _objects(self) -> dict[str, set[str]]:
        """The ubus objects rpcd registers now."""
        if self.plugin_installed:
            return {**OBJECTS, "phonehome": PLUGIN_METHODS}
        return OBJECTS

    def _list(self, params: object, request_id: object) -> dict[str, Any]:
        """uhttpd's uh_ubus_send_list: no session, no ACL; names, or signatures per pattern."""
        objects = self._objects() if self.rpcd_alive else {}
        if not isinstance(params, list):
            return {"jsonrpc": "2.0", "id": request_id, "result": sorted(objects)}
        result: dict[str, Any] = {}
        for pattern in params:
            if pattern == "phonehome" and "phonehome" in objects:
                result["phonehome"] = PLUGIN_SIGNATURES
            elif isinstance(pattern, str) and pattern in objects:
                result[pattern] = {method: {} for method in sorted(objects[pattern])}
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def _login(self, args: dict[str, Any], request_id: object) -> dict[str, Any]:
        username, password = args.get("username"), args.get("password")
        user = self.users.get(username) if isinstance(username, str) else None
        if user is None:
            return self._with_id(fixture_body("login_unknown_user"), request_id)
        if password != user.password:
            return self._with_id(fixture_body("login_wrong_password"), request_id)
        self._next_session += 1
        digits = 32 - len(self.session_prefix)
        sid = f"{self.session_prefix}{self._next_session:0{digits}x}"
        self.sessions[sid] = username  # type: ignore[assignment]
        body = fixture_body("acl_login" if user.ubus is not None else "login_ok")
        payload = body["result"][1]
        payload["ubus_rpc_session"] = sid
        payload["data"] = {"username": username}
        return self._ok(payload, request_id)

    def _access(self, args: dict[str, Any], request_id: object) -> dict[str, Any]:
        """rpcd's rpc_handle_access: may session ``ubus_rpc_session`` use scope/object/function?"""
        sid, obj, function = args.get("ubus_rpc_session"), args.get("object"), args.get("function")
        scope = args.get("scope", "ubus")
        if not all(isinstance(value, str) for value in (sid, obj, function, scope)):
            return self._with_id(fixture_body("invalid_argument"), request_id)
        target = self.users.get(self.sessions.get(sid, ""))  # type: ignore[arg-type]
        if target is None:
            return self._status(4, request_id)  # UBUS_STATUS_NOT_FOUND: no such session
        allowed = target.may(scope, obj, function)  # type: ignore[arg-type]
        return self._ok({"access": allowed}, request_id)

    async def _dispatch(  # noqa: PLR0911, PLR0912, PLR0913, PLR0917
        self, sid: str, user: User, obj: str, method: str, args: dict[str, Any], request_id: object
    ) -> dict[str, Any]:
        key = f"{obj}.{method}"
        if key == "session.destroy":
            self.sessions.pop(sid, None)
            self.uci_store.staged.pop(sid, None)
            return self._with_id(fixture_body("call_no_payload_uci_revert"), request_id)
        if key == "session.access":
            return self._access(args, request_id)
        if key == "file.read":
            path = args.get("path")
            if not isinstance(path, str):
                return self._with_id(fixture_body("invalid_argument"), request_id)
            if not user.may_read(path):
                return self._with_id(fixture_body("acl_file_read_denied_path"), request_id)
            if path not in self.files:
                return self._status(4, request_id)
            return self._ok({"data": self.files[path]}, request_id)
        if obj == "uci":
            status, answer = self.uci_store.call(sid, user, method, args)
            if status == 0 and method == "commit" and args.get("config") == FIREWALL_CONFIG:
                self._firewall_committed()
            return self._reply(status, answer, request_id)
        if key == "file.write":
            return self._status(self._file_write(user, args), request_id)
        if key == "file.exec":
            return self._reply(*self._file_exec(user, args), request_id)
        payload: object
        if key == "system.board":
            payload = self.board
        elif key == "luci-rpc.getHostHints":
            payload = self.host_hints
        elif key == "luci-rpc.getDHCPLeases":
            payload = self.dhcp_leases
        elif key == "luci-rpc.getNetworkDevices":
            payload = self.network_devices
        elif key == "luci.getConntrackList":
            if self._entries is None:
                self._entries = conntrack_list(self._proc_text)
            payload = {"result": self._entries}
        elif obj == "phonehome":
            payload = await self._run_plugin(method, args)
        else:
            return self._status(5, request_id)
        size = len(dumps(payload))
        self.reply_sizes.append((key, size))
        if size > self.message_limit:
            # rpcd cannot send it: uhttpd waits out its script timeout, then rpcd is gone
            await self._sleep(self.hang)
            self.rpcd_alive = False
            self.sessions.clear()
            return self._with_id(
                {"error": {"code": -32003, "message": "ubus request timed out"}}, request_id
            )
        return self._ok(payload, request_id)

    # ------------------------------------------------------------------ quarantine

    def _firewall_committed(self) -> None:
        sections = copy.deepcopy(self.uci_store.committed[FIREWALL_CONFIG])
        self.fw.committed(sections, self.firewall_reload_lag)
        if self.firewall_applier is not None:
            self.firewall_applier(sections)

    def _file_write(self, user: User, args: dict[str, Any]) -> int:
        """rpcd's rpc_file_write: ACL (file, path, write), then the write."""
        path, data = args.get("path"), args.get("data")
        if not isinstance(path, str) or not isinstance(data, str):
            return 2
        if not user.may("file", path, "write"):
            return 6
        if path != CONNTRACK_PROC:
            self.files[path] = data
            return 0
        return self.proc_write_status if self._write_conntrack(data) else 2

    def _file_exec(self, user: User, args: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """rpcd's rpc_file_exec_run: ACL on the command, else on "command params..."."""
        command, params = args.get("command"), args.get("params") or []
        if not isinstance(command, str) or not isinstance(params, list):
            return 2, None
        line = " ".join([command, *map(str, params)])
        if not (user.may("file", command, "exec") or user.may("file", line, "exec")):
            return 6, None
        if command != NFT:
            return 4, None
        if params != ["--terse", "--json", "list", "ruleset"]:
            return 0, {"code": 1, "stderr": "Error: syntax error\n"}
        stdout = (
            self.nft_ruleset()
            if self.nft_ruleset is not None
            else self.fw.ruleset(self.rule_counters)
        )
        return 0, {"code": 0, "stdout": stdout}

"""UniFiRouter against the controller emulator (tests/emulators/unifi.py), both flavours."""

import dataclasses
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.routers import unifi as unifi_module
from custom_components.phonehome.routers.base import (
    Capabilities,
    LanDevice,
    QuarantineRecord,
    RouterAuthError,
    RouterConnectionError,
    RouterInfo,
    RouterPermissionError,
    RouterResponseError,
    RouterTLSError,
    RouterVerificationError,
    Snapshot,
)
from custom_components.phonehome.routers.unifi import UniFiRouter
from tests.emulators.unifi import UniFiEmulator, User
from tests.routers.conftest import self_signed

CAMERA = "ac:cc:de:12:34:56"
CAMERA_DEVICE = LanDevice(mac=CAMERA, ipv4=("192.168.0.2",))
CAMERA_CONFIG = "phonehome_acccde123456"
PASSWORD = "secret"

Factory = Callable[..., UniFiRouter]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return self_signed(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(params=[True, False], ids=["unifi_os", "legacy"])
async def emulator(
    request: pytest.FixtureRequest, tls: ssl.SSLContext
) -> AsyncIterator[UniFiEmulator]:
    emu = UniFiEmulator(unifi_os=request.param)
    await emu.start(tls)
    yield emu
    await emu.close()


@pytest.fixture
async def unifi_os(tls: ssl.SSLContext) -> AsyncIterator[UniFiEmulator]:
    emu = UniFiEmulator()
    await emu.start(tls)
    yield emu
    await emu.close()


def _factory(http: aiohttp.ClientSession, emu: UniFiEmulator) -> Factory:
    def make(**kwargs: Any) -> UniFiRouter:
        options: dict[str, Any] = {"username": "admin", "password": PASSWORD}
        options.update(kwargs)
        return UniFiRouter(
            http,
            "127.0.0.1",
            options.pop("username"),
            options.pop("password"),
            port=emu.port,
            verify_ssl=options.pop("verify_ssl", False),
            timeout=options.pop("timeout", 2.0),
            **options,
        )

    return make


@pytest.fixture
def router_for(http: aiohttp.ClientSession, emulator: UniFiEmulator) -> Factory:
    return _factory(http, emulator)


@pytest.fixture
def os_router_for(http: aiohttp.ClientSession, unifi_os: UniFiEmulator) -> Factory:
    return _factory(http, unifi_os)


async def connected(factory: Factory, **kwargs: Any) -> UniFiRouter:
    router = factory(**kwargs)
    await router.connect()
    return router


# ------------------------------------------------------------------ login


async def test_connect_identifies_controller_and_site(
    emulator: UniFiEmulator, router_for: Factory, http: aiohttp.ClientSession
) -> None:
    router = router_for()
    info = await router.connect()
    assert info == RouterInfo(
        unique_id="24f81231-a456-4c32-abcd-f5612345385f_default",
        name="UDMP",
        model="UDMPRO",
        firmware="7.4.162",
    )
    assert router.api.unifi_os is emulator.unifi_os
    login = "/api/auth/login" if emulator.unifi_os else "/api/login"
    assert emulator.calls("POST", login) == [
        {"username": "admin", "password": PASSWORD, "rememberMe": True}
    ]
    prefix = "/proxy/network" if emulator.unifi_os else ""
    assert [path for _, path, _ in emulator.requests[2:4]] == [
        f"{prefix}/api/self/sites",
        f"{prefix}/api/s/default/stat/sysinfo",
    ]
    assert router.admin
    assert router.oon
    assert router.source == "traffic_flows"
    # The shared session's jar (aiohttp's default, like Home Assistant's) keeps no
    # cookie of an IP-address host: the client sends the login's cookies itself.
    assert len(http.cookie_jar) == 0
    await router.close()
    assert emulator.sessions == {}


async def test_wrong_password(router_for: Factory) -> None:
    with pytest.raises(RouterAuthError, match="wrong username or password"):
        await router_for(password="wrong").connect()


async def test_two_factor_account_is_refused_with_advice(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.users["admin"].two_factor = True
    with pytest.raises(RouterAuthError, match="local admin account without two-factor"):
        await router_for().connect()


async def test_expired_session_logs_in_once_more(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    router = await connected(router_for)
    emulator.expire_sessions()
    snapshot = await router.snapshot()
    assert len(snapshot.devices) == 4
    assert router.api.logins == 2


async def test_session_refused_after_a_fresh_login(
    emulator: UniFiEmulator, router_for: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = await connected(router_for)
    monkeypatch.setattr(emulator, "sessions", _Forgetful())
    with pytest.raises(RouterAuthError, match="refused the session right after a fresh login"):
        await router.snapshot()
    assert router.api.logins == 2


class _Forgetful(dict[str, Any]):
    """A session store that forgets every session at once."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


async def test_write_without_csrf_token_is_refused(
    unifi_os: UniFiEmulator, os_router_for: Factory
) -> None:
    router = await connected(os_router_for)
    router.api._csrf = None
    with pytest.raises(RouterPermissionError, match="HTTP 403"):
        await router.quarantine(CAMERA_DEVICE)
    assert unifi_os.ours() == []


async def test_renewed_csrf_token_is_used(unifi_os: UniFiEmulator, os_router_for: Factory) -> None:
    router = await connected(os_router_for)
    first = router.api._csrf
    record = await router.quarantine(CAMERA_DEVICE)
    await router.release(record)  # DELETE: with the token the POST renewed
    assert router.api._csrf != first
    assert unifi_os.ours() == []


async def test_certificate_is_verified_by_default(os_router_for: Factory) -> None:
    with pytest.raises(RouterTLSError, match="turn certificate verification off"):
        await os_router_for(verify_ssl=True).connect()


async def test_unknown_site_lists_the_sites(router_for: Factory) -> None:
    with pytest.raises(RouterResponseError, match=r"no site 'lab'.*default \(Default\)"):
        await router_for(site="lab").connect()


async def test_login_rate_limited(emulator: UniFiEmulator, router_for: Factory) -> None:
    emulator.fail["login"] = "429"
    with pytest.raises(RouterConnectionError, match="too many attempts"):
        await router_for().connect()


async def test_nothing_listening(http: aiohttp.ClientSession) -> None:
    router = UniFiRouter(http, "127.0.0.1", "admin", PASSWORD, port=1, timeout=2.0)
    with pytest.raises(RouterConnectionError, match="cannot connect"):
        await router.connect()


# ------------------------------------------------------------------ rights


async def test_read_only_account_cannot_quarantine(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.users["viewer"] = User(PASSWORD, role="readonly")
    router = await connected(router_for, username="viewer")
    snapshot = await router.snapshot()
    assert snapshot.capabilities.quarantine is False
    with pytest.raises(RouterPermissionError, match="Network admin role") as caught:
        await router.quarantine(CAMERA_DEVICE)
    assert caught.value.acl == "Network admin"
    assert emulator.ours() == []


async def test_controller_refusal_of_a_write_names_the_role(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.users["viewer"] = User(PASSWORD, role="readonly")
    router = await connected(router_for, username="viewer", full_block=True)
    router.admin = True  # the site list said admin, the controller disagrees
    with pytest.raises(RouterPermissionError, match=r"api.err.NoPermission.*Network admin role"):
        await router.quarantine(CAMERA_DEVICE)
    router.oon = False
    with pytest.raises(RouterPermissionError, match=r"api.err.NoPermission"):
        await router.quarantine(CAMERA_DEVICE)


async def test_check_access_reads_what_a_poll_reads(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    router = await connected(router_for)
    await router.check_access()
    emulator.fail["oon"] = "garbage"
    with pytest.raises(RouterResponseError):
        await router.check_access()


# ------------------------------------------------------------------ snapshot


async def test_devices_from_stat_sta(router_for: Factory) -> None:
    router = await connected(router_for)
    devices = (await router.snapshot()).devices
    assert devices == {
        CAMERA: LanDevice(
            mac=CAMERA,
            ipv4=("192.168.0.2",),
            hostname="camera-acccde123456",
            vendor="Manu",
            wired=True,
            blocked=False,
        ),
        "00:00:00:00:00:01": LanDevice(
            mac="00:00:00:00:00:01",
            ipv4=("192.168.0.1",),
            hostname="client",
            name="Client 1",
            vendor="Apple",
            wired=False,
            blocked=False,
        ),
        "00:00:00:00:01:01": LanDevice(
            mac="00:00:00:00:01:01",
            ipv4=("10.0.0.1",),
            hostname="block_client_1",
            name="Block Client 1",
            vendor="Producer",
            wired=False,
            blocked=True,
        ),
        "00:00:00:00:01:02": LanDevice(
            mac="00:00:00:00:01:02",
            ipv4=("10.0.0.2",),
            hostname="block_client_2",
            name="Block Client 2",
            vendor="Producer",
            wired=True,
            blocked=False,
        ),
    }


async def test_odd_clients_are_skipped(emulator: UniFiEmulator, router_for: Factory) -> None:
    emulator.clients = [
        {"mac": "not a mac"},
        {"ip": "10.0.0.9"},
        {"mac": "AA-BB-CC-DD-EE-FF", "ip": "bogus", "ipv6": ["fe80::1"], "is_wired": "yes"},
    ]
    router = await connected(router_for)
    assert (await router.snapshot()).devices == {
        "aa:bb:cc:dd:ee:ff": LanDevice(
            mac="aa:bb:cc:dd:ee:ff", ipv6=("fe80::1",), wired=None, blocked=False
        )
    }


async def test_flows_from_traffic_flows_all_pages(
    emulator: UniFiEmulator, router_for: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unifi_module, "FLOW_PAGE_SIZE", 2)
    router = await connected(router_for)
    snapshot = await router.snapshot()
    pages = [body["pageNumber"] for body in emulator.calls("POST", "/traffic-flows")[1:]]
    assert pages == [0, 1, 2]
    assert snapshot.capabilities == Capabilities(
        byte_counters=True, quarantine=True, cut_live_flows=False, table_source="traffic_flows"
    )
    assert snapshot.table_read is True
    assert len(snapshot.flows) == 6
    assert snapshot.flows[0] == Flow(
        family=4,
        protocol=6,
        src="10.0.0.11",
        dst="203.0.113.10",
        sport=40001,
        dport=443,
        src_scope=AddressScope.LAN,
        dst_scope=AddressScope.DOCUMENTATION,
        replied=True,
        assured=None,
        state=None,
        timeout=None,
        total_packets=907,
        total_bytes=905000,
        reply_packets=901,
        reply_bytes=900000,
        offloaded=False,
        mark=0,
        zone=0,
        secctx=None,
    )
    assert [flow.protocol for flow in snapshot.flows] == [6, 17, 6, 6, 17, 6]
    assert snapshot.flows[2].replied is False  # blocked by the firewall
    assert snapshot.flows[3].src_scope is AddressScope.DOCUMENTATION  # incoming
    assert snapshot.flows[4].dst_scope is AddressScope.LAN  # local mDNS


async def test_flows_stop_at_the_cap(
    emulator: UniFiEmulator, router_for: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unifi_module, "FLOW_PAGE_SIZE", 2)
    router = await connected(router_for, conntrack_cap=3)
    assert len((await router.snapshot()).flows) == 3
    assert len(emulator.calls("POST", "/traffic-flows")) == 1 + 2


async def test_unusable_flow_records_are_skipped(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    good = emulator.flows[0]
    emulator.flows = [
        {"source": "x", "destination": {}},
        {**good, "source": {"ip": "10.0.0.1"}, "destination": {"ip": "2001:db8::1"}},
        {
            **good,
            "protocol": "ICMP",
            "traffic_data": None,
            "source": {"ip": "fd00::2"},
            "destination": {"ip": "2001:db8::1"},
        },
        {**good, "protocol": "SCTP"},
    ]
    router = await connected(router_for)
    flows = (await router.snapshot()).flows
    assert [(f.family, f.protocol, f.replied, f.total_bytes) for f in flows] == [
        (6, 58, None, None),
        (4, -1, True, 905000),
    ]


async def test_dpi_totals_when_traffic_flows_is_missing(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.traffic_flows = False
    router = await connected(router_for)
    snapshot = await router.snapshot()
    assert snapshot.flows == []
    assert snapshot.capabilities.table_source == "dpi"
    assert snapshot.capabilities.byte_counters is False
    totals = snapshot.device_traffic[CAMERA]
    assert (totals.rx_bytes, totals.tx_bytes, totals.rx_packets, totals.tx_packets) == (
        1500,
        250,
        15,
        5,
    )
    assert emulator.calls("POST", "/stat/stadpi")[-1] == {"type": "by_app"}


async def test_no_source_at_all(emulator: UniFiEmulator, router_for: Factory) -> None:
    emulator.traffic_flows = emulator.dpi = False
    router = await connected(router_for)
    snapshot = await router.snapshot()
    assert snapshot.capabilities.table_source == "none"
    assert snapshot.table_read is False
    assert snapshot.flows == []
    assert snapshot.device_traffic == {}


@dataclasses.dataclass
class FakeGateway:
    """A stand-in for LinuxSshRouter: its flows replace the controller's."""

    flow: Flow
    kind: str = "linux_ssh"
    conntrack_cap: int = 65536
    calls: list[str] = dataclasses.field(default_factory=list)

    async def connect(self) -> RouterInfo:
        self.calls.append("connect")
        return RouterInfo("gw", "gw")

    async def check_access(self) -> None:
        self.calls.append("check_access")

    async def snapshot(self) -> Snapshot:
        return Snapshot(
            taken_at=datetime.now(UTC),
            flows=[self.flow],
            devices={},
            capabilities=Capabilities(byte_counters=True, table_source="proc"),
            conntrack_count=4321,
        )

    async def quarantine(self, device: LanDevice) -> QuarantineRecord:
        raise NotImplementedError

    async def release(self, record: QuarantineRecord) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        self.calls.append("close")


async def test_gateway_conntrack_is_the_best_source(router_for: Factory) -> None:
    router = await connected(router_for)
    flow = (await router.snapshot()).flows[0]
    gateway = FakeGateway(flow)
    router = router_for(gateway=gateway)
    await router.connect()
    await router.check_access()
    snapshot = await router.snapshot()
    await router.close()
    assert snapshot.flows == [flow]
    assert snapshot.capabilities.table_source == "proc"
    assert snapshot.conntrack_count == 4321  # the gateway's kernel count
    assert len(snapshot.devices) == 4
    assert router.conntrack_cap == 65536
    assert gateway.calls == ["connect", "check_access", "close"]


# ------------------------------------------------------------------ quarantine


async def test_quarantine_creates_and_reads_back(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    router = await connected(router_for)
    record = await router.quarantine(CAMERA_DEVICE)
    assert record == QuarantineRecord(mac=CAMERA, name=CAMERA_CONFIG, addresses=("192.168.0.2",))
    assert emulator.calls("POST", "/object-oriented-network-config") == [
        {
            "name": CAMERA_CONFIG,
            "enabled": True,
            "target_type": "CLIENTS",
            "targets": [CAMERA],
            "secure": {
                "enabled": True,
                "internet": {"mode": "TURN_OFF_INTERNET", "schedule": {"mode": "ALWAYS"}},
            },
            "qos": {"enabled": False},
            "route": {"enabled": False},
        }
    ]
    quarantined = (await router.snapshot()).quarantined
    assert list(quarantined) == [CAMERA]  # the owner's own configs are not ours
    assert quarantined[CAMERA].enforced is True
    assert quarantined[CAMERA].blocked_packets is None
    assert emulator.calls("POST", "/cmd/stamgr") == []


async def test_quarantine_is_idempotent(emulator: UniFiEmulator, router_for: Factory) -> None:
    router = await connected(router_for)
    first = await router.quarantine(CAMERA_DEVICE)
    assert await router.quarantine(CAMERA_DEVICE) == first
    assert len(emulator.calls("POST", "/object-oriented-network-config")) == 1
    assert len(emulator.ours()) == 1


async def test_a_wrong_config_of_our_name_is_fixed(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.configs.append(
        {
            "_id": "0123456789abcdef01234567",
            "name": CAMERA_CONFIG,
            "enabled": False,
            "targets": [{"type": "MAC", "value": CAMERA}],
            "secure": {"enabled": True, "internet": {"mode": "TURN_OFF_INTERNET"}},
        }
    )
    router = await connected(router_for)
    assert (await router.snapshot()).quarantined[CAMERA].enforced is False
    await router.quarantine(CAMERA_DEVICE)
    assert emulator.calls("POST", "/object-oriented-network-config") == []
    (put,) = emulator.calls("PUT", "/object-oriented-network-config/0123456789abcdef01234567")
    assert put["enabled"] is True
    assert put["_id"] == "0123456789abcdef01234567"
    assert (await router.snapshot()).quarantined[CAMERA].enforced is True


async def test_release_removes_exactly_ours(emulator: UniFiEmulator, router_for: Factory) -> None:
    router = await connected(router_for)
    others = [dict(config) for config in emulator.configs]
    record = await router.quarantine(CAMERA_DEVICE)
    await router.release(record)
    assert emulator.configs == others
    assert (await router.snapshot()).quarantined == {}
    await router.release(record)  # already gone: success, nothing deleted
    assert len(emulator.calls("DELETE", "")) == 1


async def test_release_that_does_not_take(
    emulator: UniFiEmulator, router_for: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = await connected(router_for)
    record = await router.quarantine(CAMERA_DEVICE)
    emulator.fail["oon"] = "404"
    monkeypatch.setattr(router, "_configs", _configs_of(emulator))
    with pytest.raises(RouterVerificationError, match="still shows"):
        await router.release(record)


def _configs_of(emulator: UniFiEmulator) -> Callable[[], Any]:
    async def configs() -> list[dict[str, Any]]:
        return emulator.configs

    return configs


async def test_unverified_quarantine_leaves_nothing(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.hide_configs = True
    router = await connected(router_for)
    with pytest.raises(RouterVerificationError, match="does not show it in force"):
        await router.quarantine(CAMERA_DEVICE)
    assert len(emulator.calls("POST", "/object-oriented-network-config")) == 1
    emulator.hide_configs = False
    assert emulator.ours() == []


async def test_config_stored_disabled_is_found_by_name_and_removed(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.store_disabled = True
    emulator.answer_created = False
    router = await connected(router_for)
    with pytest.raises(RouterVerificationError):
        await router.quarantine(CAMERA_DEVICE)
    assert emulator.ours() == []
    assert len(emulator.calls("DELETE", "")) == 1


async def test_full_block_blocks_and_unblocks_the_station(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    router = await connected(router_for, full_block=True)
    record = await router.quarantine(CAMERA_DEVICE)
    assert record.station_blocked is True
    assert emulator.calls("POST", "/cmd/stamgr") == [{"cmd": "block-sta", "mac": CAMERA}]
    assert (await router.snapshot()).devices[CAMERA].blocked is True
    await router.release(record)
    assert emulator.calls("POST", "/cmd/stamgr")[-1] == {"cmd": "unblock-sta", "mac": CAMERA}
    assert (await router.snapshot()).devices[CAMERA].blocked is False
    assert emulator.ours() == []


async def test_full_block_of_an_already_blocked_device_is_not_ours(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    router = await connected(router_for, full_block=True)
    device = (await router.snapshot()).devices["00:00:00:00:01:01"]
    record = await router.quarantine(device)
    assert record.station_blocked is False
    await router.release(record)
    assert emulator.calls("POST", "/cmd/stamgr") == []


async def test_unverified_full_block_is_undone(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.ignore_block = True
    router = await connected(router_for, full_block=True)
    with pytest.raises(RouterVerificationError, match="does not show it blocked"):
        await router.quarantine(CAMERA_DEVICE)
    assert emulator.calls("POST", "/cmd/stamgr")[-1] == {"cmd": "unblock-sta", "mac": CAMERA}
    assert emulator.ours() == []


async def test_without_oon_only_full_block_quarantines(
    emulator: UniFiEmulator, router_for: Factory
) -> None:
    emulator.oon = False
    router = await connected(router_for)
    assert (await router.snapshot()).capabilities.quarantine is False
    with pytest.raises(RouterResponseError, match=r"9\.4 or later"):
        await router.quarantine(CAMERA_DEVICE)
    router = await connected(router_for, full_block=True)
    snapshot = await router.snapshot()
    assert snapshot.capabilities.quarantine is True
    assert snapshot.quarantined == {}
    record = await router.quarantine(CAMERA_DEVICE)
    await router.release(record)
    assert [c["cmd"] for c in emulator.calls("POST", "/cmd/stamgr")] == ["block-sta", "unblock-sta"]


# ------------------------------------------------------------------ bad answers


@pytest.mark.parametrize(
    ("mode", "error", "text"),
    [
        ("garbage", RouterResponseError, "did not answer with JSON"),
        ("shape", RouterResponseError, "holds no data list"),
        ("huge", RouterResponseError, "over 16 MiB"),
        ("stream", RouterResponseError, "over 16 MiB"),
        ("drop", RouterConnectionError, "connection"),
        ("delay", RouterConnectionError, "did not answer within"),
        ("404", RouterResponseError, "has no"),
        ("error", RouterResponseError, "HTTP 500 api.err.ServerError"),
        ("429", RouterConnectionError, "rate-limiting"),
    ],
)
async def test_bad_client_list(
    emulator: UniFiEmulator,
    router_for: Factory,
    mode: str,
    error: type[Exception],
    text: str,
) -> None:
    router = await connected(router_for, timeout=0.5)
    emulator.fail["stat/sta"] = mode
    with pytest.raises(error, match=text):
        await router.snapshot()


@pytest.mark.parametrize("mode", ["shape", "object"])
@pytest.mark.parametrize("endpoint", ["traffic-flows", "oon", "stat/sta"])
async def test_wrong_shapes(
    emulator: UniFiEmulator, router_for: Factory, endpoint: str, mode: str
) -> None:
    router = await connected(router_for)
    emulator.fail[endpoint] = mode
    with pytest.raises(RouterResponseError, match=r"no data list|not a list"):
        await router.snapshot()


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        ("garbage", "did not answer with JSON"),
        ("shape", "set no session cookie"),
        ("error", "answered HTTP 500"),
    ],
)
async def test_bad_login_answer(
    emulator: UniFiEmulator, router_for: Factory, mode: str, text: str
) -> None:
    emulator.fail["login"] = mode
    with pytest.raises(RouterResponseError, match=text):
        await router_for().connect()


async def test_logout_failure_is_ignored(emulator: UniFiEmulator, router_for: Factory) -> None:
    router = await connected(router_for)
    emulator.fail["logout"] = "drop"
    await router.close()
    await router.close()  # already logged out: no request
    assert len(emulator.calls("POST", "logout")) == 1


async def test_no_secret_in_logs(
    emulator: UniFiEmulator, router_for: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RouterAuthError) as wrong:
        await router_for(password="hunter2-wrong").connect()
    router = await connected(router_for, full_block=True)
    await router.quarantine(CAMERA_DEVICE)
    emulator.hide_configs = True
    with pytest.raises(RouterVerificationError):
        await router.quarantine(LanDevice(mac="00:00:00:00:00:01"))
    secrets = {PASSWORD, "hunter2-wrong"}
    for token, session in emulator.sessions.items():
        secrets |= {token, session.csrf}
    logged = caplog.text + str(wrong.value)
    assert caplog.records
    for secret in secrets:
        assert secret not in logged

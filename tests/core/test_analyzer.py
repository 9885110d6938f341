"""Analyzer: scenario tests over flow sequences in time, one per rule and per exception."""

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import msgspec
import pytest

from custom_components.phonehome.core import analyzer as analyzer_module
from custom_components.phonehome.core.analyzer import (
    AllowEntry,
    AnalysisResult,
    Analyzer,
    AnalyzerSettings,
    Finding,
    network_of,
    owners_from,
)
from custom_components.phonehome.core.conntrack import parse_proc
from custom_components.phonehome.core.model import Flow
from tests.bench import synthetic

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CAMERA, TV, PHONE, DVR, PLUG = (f"c0:ff:ee:00:00:0{i}" for i in range(1, 6))
OWNERS = {
    "192.168.1.20": CAMERA,
    "192.168.1.21": TV,
    "192.168.1.22": PHONE,
    "192.168.1.23": DVR,
    "192.168.1.24": PLUG,
}
FOSCAM_HOSTS = ("198.51.100.10", "198.51.100.11", "203.0.113.20", "203.0.113.21")
COUNTRY = {"198.51.100.10": "CN", "198.51.100.11": "CN", "203.0.113.20": "US"}


def udp(src: str, dst: str, dport: int, sport: int = 40010, *, replied: bool = False) -> str:
    if replied:
        return (
            f"ipv4     2 udp      17 170 src={src} dst={dst} sport={sport} dport={dport} "
            f"packets=2 bytes=120 src={dst} dst={src} sport={dport} dport={sport} packets=2 "
            f"bytes=120 [ASSURED] mark=0 zone=0 use=2\n"
        )
    return (
        f"ipv4     2 udp      17 29 src={src} dst={dst} sport={sport} dport={dport} "
        f"packets=1 bytes=60 [UNREPLIED] src={dst} dst={src} sport={dport} "
        f"dport={sport} packets=0 bytes=0 mark=0 zone=0 use=2\n"
    )


def tcp(src: str, dst: str, dport: int, sport: int = 51000) -> str:
    return (
        f"ipv4     2 tcp      6 7439 ESTABLISHED src={src} dst={dst} sport={sport} dport={dport} "
        f"packets=10 bytes=1500 src={dst} dst={src} sport={dport} dport={sport} packets=12 "
        f"bytes=9000 [ASSURED] mark=0 zone=0 use=2\n"
    )


def flows(*lines: str | Iterable[str]) -> list[Flow]:
    text = "".join(line if isinstance(line, str) else "".join(line) for line in lines)
    return list(parse_proc(text).flows)


def foscam(sports: int = 6) -> list[str]:
    """The 2016 camera: UDP 10001 to four hosts, a fresh source port per retry, unanswered."""
    return [
        udp("192.168.1.20", host, 10001, sport=40000 + n)
        for host in FOSCAM_HOSTS
        for n in range(sports)
    ]


def make(*, policies: dict[str, str] | None = None, **settings: object) -> Analyzer:
    options = AnalyzerSettings(policies=policies or {}, **settings)  # type: ignore[arg-type]
    return Analyzer(options, country_of=COUNTRY.get)


def kinds(result: AnalysisResult, mac: str) -> set[str]:
    return {finding.kind for finding in result.devices[mac].findings}


def finding(result: AnalysisResult, mac: str, kind: str) -> Finding:
    (found,) = [f for f in result.devices[mac].findings if f.kind == kind]
    return found


MONITOR = {CAMERA: "monitor", TV: "monitor", PHONE: "monitor", DVR: "monitor", PLUG: "monitor"}


# ---------------------------------------------------------------- the Foscam story


def test_foscam_camera_raises_signature_fanout_and_unreplied_in_one_update() -> None:
    result = make(policies=MONITOR).update(flows(foscam()), OWNERS, T0)
    assert kinds(result, CAMERA) == {"signature", "p2p_fanout", "unreplied_attempts"}
    assert {f.kind for f in result.new_findings} == kinds(result, CAMERA)


def test_foscam_signature_explains_port_hosts_and_countries() -> None:
    result = make(policies=MONITOR).update(flows(foscam()), OWNERS, T0)
    found = finding(result, CAMERA, "signature")
    assert found.signature == "foscam_p2p"
    assert found.severity == "high"
    assert found.explanation.startswith("UDP to port 10001 of 4 hosts in CN and US: the Foscam")
    assert {d.country for d in found.destinations} == {"CN", "US", None}


def test_foscam_unreplied_counts_every_attempt() -> None:
    result = make(policies=MONITOR).update(flows(foscam()), OWNERS, T0)
    found = finding(result, CAMERA, "unreplied_attempts")
    assert found.count == 24
    assert found.explanation.startswith("24 connection attempts without reply to 4 internet hosts")


def pppp_session(sent: int) -> list[str]:
    """A CS2/PPPP login to four servers from one source port: one entry each, answered."""
    return [
        f"ipv4     2 udp      17 170 src=192.168.1.20 dst={host} sport=40010 dport=32100 "
        f"packets={sent} bytes={sent * 48} src={host} dst=192.168.1.20 sport=32100 "
        f"dport=40010 packets={sent} bytes={sent * 48} [ASSURED] mark=0 zone=0 use=2\n"
        for host in FOSCAM_HOSTS
    ]


def test_period_is_worked_out_from_packet_counters_across_polls() -> None:
    """Polled every 30 s, a session that sends every 9 s reads as every ~9 s."""
    analyzer = make(policies=MONITOR)
    for poll in range(5):
        seconds = 30 * poll
        sent = 500 + seconds // 9  # the session began long before the first poll
        result = analyzer.update(
            flows(*pppp_session(sent)), OWNERS, T0 + timedelta(seconds=seconds)
        )
    found = finding(result, CAMERA, "signature")
    assert "every ~9 s" in found.explanation
    assert found.sends == 4 * (1 + 120 // 9)


def test_no_period_is_claimed_while_the_counters_stand_still() -> None:
    analyzer = make(policies=MONITOR)
    for step in range(4):
        result = analyzer.update(flows(foscam(1)), OWNERS, T0 + timedelta(seconds=9 * step))
    found = finding(result, CAMERA, "signature")
    assert "every" not in found.explanation
    assert found.sends == 4  # the same four entries, their counters unchanged


def test_an_entry_listed_twice_in_a_poll_counts_once() -> None:
    """Two listings of one entry (a table read in pages) count as the last one says."""
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(*pppp_session(500)), OWNERS, T0)
    twice = [*pppp_session(502), *pppp_session(503)]
    result = analyzer.update(flows(*twice), OWNERS, T0 + timedelta(seconds=30))
    assert finding(result, CAMERA, "signature").sends == 4 * (1 + 3)


# ---------------------------------------------------------------- signature


def test_single_signature_fires_on_one_flow() -> None:
    result = make(policies=MONITOR).update(
        flows(udp("192.168.1.23", "203.0.113.5", 8800)), OWNERS, T0
    )
    assert finding(result, DVR, "signature").signature == "dahua_easy4ip"


def test_fanout_signature_needs_min_hosts() -> None:
    result = make(policies=MONITOR).update(
        flows(udp("192.168.1.20", "203.0.113.5", 32100)), OWNERS, T0
    )
    assert "signature" not in kinds(result, CAMERA)


def test_fanout_signature_fires_at_min_hosts() -> None:
    lines = [udp("192.168.1.20", host, 32100) for host in ("203.0.113.5", "203.0.113.6")]
    result = make(policies=MONITOR).update(flows(lines), OWNERS, T0)
    assert finding(result, CAMERA, "signature").signature == "cs2_pppp"


def test_signature_to_a_lan_host_does_not_fire() -> None:
    result = make(policies=MONITOR).update(
        flows(udp("192.168.1.23", "192.168.1.50", 8800)), OWNERS, T0
    )
    assert kinds(result, DVR) == set()


def test_custom_signatures_replace_the_bundled_ones() -> None:
    analyzer = Analyzer(AnalyzerSettings(policies=MONITOR), signatures=())
    result = analyzer.update(flows(udp("192.168.1.23", "203.0.113.5", 8800)), OWNERS, T0)
    assert kinds(result, DVR) == set()


# ---------------------------------------------------------------- p2p_fanout


def test_udp_to_three_hosts_on_one_port_is_fanout() -> None:
    lines = [udp("192.168.1.20", f"203.0.113.{n}", 9000, replied=True) for n in (1, 2, 3)]
    result = make(policies=MONITOR).update(flows(lines), OWNERS, T0)
    assert kinds(result, CAMERA) == {"p2p_fanout"}


def test_udp_to_two_hosts_is_not_fanout() -> None:
    lines = [udp("192.168.1.20", f"203.0.113.{n}", 9000, replied=True) for n in (1, 2)]
    assert kinds(make(policies=MONITOR).update(flows(lines), OWNERS, T0), CAMERA) == set()


def test_fanout_threshold_is_an_option() -> None:
    lines = [udp("192.168.1.20", f"203.0.113.{n}", 9000, replied=True) for n in (1, 2, 3)]
    result = make(policies=MONITOR, fanout_hosts=4).update(flows(lines), OWNERS, T0)
    assert kinds(result, CAMERA) == set()


def test_fanout_counts_hosts_across_polls_in_the_window() -> None:
    analyzer = make(policies=MONITOR)
    for n in (1, 2, 3):
        line = udp("192.168.1.20", f"203.0.113.{n}", 9000, replied=True)
        result = analyzer.update(flows(line), OWNERS, T0 + timedelta(minutes=n))
    assert kinds(result, CAMERA) == {"p2p_fanout"}


def test_quic_to_many_hosts_is_not_fanout() -> None:
    lines = [udp("192.168.1.22", f"198.51.100.{n}", 443, replied=True) for n in range(1, 11)]
    assert kinds(make(policies=MONITOR).update(flows(lines), OWNERS, T0), PHONE) == set()


def test_ntp_pool_is_not_fanout() -> None:
    lines = [udp("192.168.1.22", f"198.51.100.{n}", 123, replied=True) for n in range(1, 5)]
    assert kinds(make(policies=MONITOR).update(flows(lines), OWNERS, T0), PHONE) == set()


def test_tv_with_forty_cdn_hosts_over_https_raises_nothing() -> None:
    lines = [tcp("192.168.1.21", f"198.51.100.{n}", 443) for n in range(1, 41)]
    result = make().update(flows(lines), OWNERS, T0)
    assert kinds(result, TV) == set()


# ---------------------------------------------------------------- unreplied_attempts


def unanswered(count: int, src: str = "192.168.1.24") -> list[str]:
    return [udp(src, "203.0.113.77", 5000, sport=30000 + n) for n in range(count)]


def test_twenty_unreplied_attempts_fire() -> None:
    result = make(policies=MONITOR).update(flows(unanswered(20)), OWNERS, T0)
    assert kinds(result, PLUG) == {"unreplied_attempts"}


def test_nineteen_unreplied_attempts_do_not_fire() -> None:
    result = make(policies=MONITOR).update(flows(unanswered(19)), OWNERS, T0)
    assert kinds(result, PLUG) == set()


def test_unreplied_attempts_count_flow_connections() -> None:
    (row,) = flows(unanswered(1))
    grouped = msgspec.structs.replace(row, sport=None, connections=20)
    result = make(policies=MONITOR).update([grouped], OWNERS, T0)
    assert finding(result, PLUG, "unreplied_attempts").count == 20


def test_flows_without_reply_flag_never_count_as_unreplied() -> None:
    luci_like = [msgspec.structs.replace(f, replied=None) for f in flows(unanswered(30))]
    result = make(policies=MONITOR).update(luci_like, OWNERS, T0)
    assert kinds(result, PLUG) == set()


def test_an_entry_seen_in_several_polls_counts_once() -> None:
    analyzer = make(policies=MONITOR)
    for step in range(3):
        result = analyzer.update(flows(unanswered(10)), OWNERS, T0 + timedelta(seconds=20 * step))
    assert kinds(result, PLUG) == set()


# ---------------------------------------------------------------- dns_bypass


def test_hard_coded_public_resolver_is_dns_bypass() -> None:
    result = make(policies=MONITOR).update(
        flows(udp("192.168.1.23", "114.114.114.114", 53, replied=True)), OWNERS, T0
    )
    found = finding(result, DVR, "dns_bypass")
    assert "114.114.114.114" in found.explanation


def test_dns_over_tls_is_dns_bypass() -> None:
    result = make(policies=MONITOR).update(
        flows(tcp("192.168.1.22", "198.51.100.53", 853)), OWNERS, T0
    )
    assert kinds(result, PHONE) == {"dns_bypass"}


def test_phone_using_its_lan_resolver_raises_nothing() -> None:
    result = make(policies=MONITOR).update(
        flows(udp("192.168.1.22", "192.168.1.1", 53, replied=True)), OWNERS, T0
    )
    assert kinds(result, PHONE) == set()


def test_configured_resolver_is_not_dns_bypass() -> None:
    analyzer = make(policies=MONITOR, lan_resolvers=frozenset({"198.51.100.53"}))
    result = analyzer.update(flows(tcp("192.168.1.22", "198.51.100.53", 853)), OWNERS, T0)
    assert kinds(result, PHONE) == set()


# ---------------------------------------------------------------- local_only_violation


def test_local_only_device_with_any_wan_flow_is_a_violation() -> None:
    analyzer = make(policies={TV: "local_only"})
    result = analyzer.update(flows(tcp("192.168.1.21", "198.51.100.1", 443)), OWNERS, T0)
    assert finding(result, TV, "local_only_violation").severity == "high"


def test_local_only_device_with_lan_traffic_only_is_fine() -> None:
    analyzer = make(policies={TV: "local_only"})
    result = analyzer.update(flows(tcp("192.168.1.21", "192.168.1.50", 8009)), OWNERS, T0)
    assert kinds(result, TV) == set()


def test_learning_device_with_a_wan_flow_is_not_a_violation() -> None:
    result = make().update(flows(tcp("192.168.1.21", "198.51.100.1", 443)), OWNERS, T0)
    assert kinds(result, TV) == set()


# ---------------------------------------------------------------- new_destination

LATER = T0 + timedelta(hours=25)


def learned_tv(policy: str = "learn") -> Analyzer:
    analyzer = make(policies={TV: policy})
    analyzer.update(flows(tcp("192.168.1.21", "198.51.100.1", 443)), OWNERS, T0)
    return analyzer


def test_new_network_after_learning_is_a_new_destination() -> None:
    result = learned_tv().update(flows(tcp("192.168.1.21", "203.0.113.9", 443)), OWNERS, LATER)
    found = finding(result, TV, "new_destination")
    assert [d.ip for d in found.destinations] == ["203.0.113.9"]


def test_known_network_after_learning_is_not_new() -> None:
    result = learned_tv().update(flows(tcp("192.168.1.21", "198.51.100.77", 443)), OWNERS, LATER)
    assert kinds(result, TV) == set()


def test_known_network_on_a_new_port_is_new() -> None:
    result = learned_tv().update(flows(tcp("192.168.1.21", "198.51.100.1", 8443)), OWNERS, LATER)
    assert kinds(result, TV) == {"new_destination"}


def test_new_network_during_learning_joins_the_baseline() -> None:
    analyzer = learned_tv()
    during = T0 + timedelta(hours=1)
    assert (
        kinds(analyzer.update(flows(tcp("192.168.1.21", "203.0.113.9", 443)), OWNERS, during), TV)
        == set()
    )
    result = analyzer.update(flows(tcp("192.168.1.21", "203.0.113.9", 443)), OWNERS, LATER)
    assert kinds(result, TV) == set()


def test_monitor_policy_never_reports_new_destinations() -> None:
    analyzer = learned_tv("monitor")
    result = analyzer.update(flows(tcp("192.168.1.21", "203.0.113.9", 443)), OWNERS, LATER)
    assert kinds(result, TV) == set()


def test_monitor_policy_builds_no_baseline() -> None:
    (saved,) = [d for m, d in learned_tv("monitor").export_state()["devices"].items() if m == TV]
    assert saved["baseline"] == []


def test_reset_baseline_starts_learning_again() -> None:
    analyzer = learned_tv()
    analyzer.reset_baseline(TV, LATER)
    result = analyzer.update(flows(tcp("192.168.1.21", "203.0.113.9", 443)), OWNERS, LATER)
    assert kinds(result, TV) == set()


def test_ipv6_baseline_key_is_the_48() -> None:
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("198.51.100.77") == "198.51.100.0/24"


def test_baseline_is_capped_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzer_module, "MAX_BASELINE", 3)
    analyzer = make()
    for n in range(1, 5):
        line = tcp("192.168.1.21", f"198.51.{n}.1", 443)
        analyzer.update(flows(line), OWNERS, T0 + timedelta(minutes=n))
    (saved,) = [d for m, d in analyzer.export_state()["devices"].items() if m == TV]
    assert [key[0] for key in saved["baseline"]] == [
        "198.51.2.0/24",
        "198.51.3.0/24",
        "198.51.4.0/24",
    ]


def learning(macs: Iterable[str]) -> Analyzer:
    return make(policies=dict.fromkeys(macs, "learn"))


def test_baselines_are_capped_in_total_least_recently_learned_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analyzer_module, "MAX_BASELINE_TOTAL", 3)
    analyzer = learning([TV, PHONE])
    sources = ("192.168.1.21", "192.168.1.22", "192.168.1.21", "192.168.1.22", "192.168.1.21")
    for n, source in enumerate(sources):
        line = tcp(source, f"198.51.{n}.1", 443)
        analyzer.update(flows(line), OWNERS, T0 + timedelta(seconds=n))
        if n == 2:
            assert (analyzer.baseline_entries, analyzer.baseline_dropped) == (3, 0)
    saved = analyzer.export_state()["devices"]
    assert [key[0] for key in saved[TV]["baseline"]] == ["198.51.2.0/24", "198.51.4.0/24"]
    assert [key[0] for key in saved[PHONE]["baseline"]] == ["198.51.3.0/24"]
    assert (analyzer.baseline_entries, analyzer.baseline_dropped) == (3, 2)


def test_a_key_learned_again_is_the_last_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzer_module, "MAX_BASELINE", 2)
    analyzer = learning([TV])
    first = tcp("192.168.1.21", "198.51.1.1", 443)
    analyzer.update(flows(first), OWNERS, T0)
    analyzer.update(
        flows(tcp("192.168.1.21", "198.51.2.1", 443)), OWNERS, T0 + timedelta(seconds=1)
    )
    analyzer.update(flows(first), OWNERS, T0 + timedelta(minutes=30))  # a new window record
    analyzer.update(flows(tcp("192.168.1.21", "198.51.3.1", 443)), OWNERS, T0 + timedelta(hours=1))
    (saved,) = [d for m, d in analyzer.export_state()["devices"].items() if m == TV]
    assert [key[0] for key in saved["baseline"]] == ["198.51.1.0/24", "198.51.3.0/24"]
    assert analyzer.baseline_dropped == 1


def test_a_key_the_total_cap_drops_is_new_again_after_learning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analyzer_module, "MAX_BASELINE_TOTAL", 1)
    analyzer = learning([TV, PHONE])
    tv = tcp("192.168.1.21", "198.51.1.1", 443)
    analyzer.update(flows(tv), OWNERS, T0)
    assert kinds(analyzer.update(flows(tv), OWNERS, LATER), TV) == set()
    analyzer.reset_baseline(PHONE, LATER)
    phone = tcp("192.168.1.22", "198.51.2.1", 443)
    result = analyzer.update(flows(tv, phone), OWNERS, LATER + timedelta(seconds=30))
    assert kinds(result, TV) == {"new_destination"}
    assert analyzer.baseline_dropped == 1


def test_import_keeps_the_total_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = learning([TV, PHONE])
    lines = (tcp("192.168.1.21", "198.51.1.1", 443), tcp("192.168.1.22", "198.51.2.1", 443))
    saved.update(flows(*lines), OWNERS, T0)
    monkeypatch.setattr(analyzer_module, "MAX_BASELINE_TOTAL", 1)
    restored = learning([TV, PHONE])
    restored.import_state(json.loads(json.dumps(saved.export_state())))
    assert (restored.baseline_entries, restored.baseline_dropped) == (1, 1)


def test_window_destinations_are_capped_per_device_and_in_total(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analyzer_module, "MAX_DESTINATIONS", 2)
    monkeypatch.setattr(analyzer_module, "MAX_DESTINATIONS_TOTAL", 3)
    analyzer = make(policies={TV: "local_only", PHONE: "local_only"})
    for n in range(3):
        line = tcp("192.168.1.21", f"198.51.100.{n}", 443)
        analyzer.update(flows(line), OWNERS, T0 + timedelta(seconds=n))
    assert (analyzer.destinations, analyzer.destinations_dropped) == (2, 1)
    for n in range(2):
        line = tcp("192.168.1.22", f"203.0.113.{n}", 443)
        result = analyzer.update(flows(line), OWNERS, T0 + timedelta(seconds=10 + n))
    assert (analyzer.destinations, analyzer.destinations_dropped) == (3, 2)
    tv = finding(result, TV, "local_only_violation")
    assert [d.ip for d in tv.destinations] == ["198.51.100.2"]
    phone = finding(result, PHONE, "local_only_violation")
    assert [d.ip for d in phone.destinations] == ["203.0.113.0", "203.0.113.1"]


def test_unreplied_attempts_outlive_destinations_the_total_cap_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analyzer_module, "MAX_DESTINATIONS_TOTAL", 2)
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    later = T0 + timedelta(seconds=30)
    lines = (tcp("192.168.1.21", "198.51.1.1", 443), tcp("192.168.1.21", "198.51.2.1", 443))
    result = analyzer.update(flows(*lines), OWNERS, later)
    assert analyzer.destinations_dropped == 4
    found = finding(result, CAMERA, "unreplied_attempts")
    assert (found.count, found.first_seen, found.last_seen) == (24, T0, T0)


def test_allowing_one_destination_keeps_the_others_findings() -> None:
    analyzer = make(policies={TV: "local_only"})
    lines = (tcp("192.168.1.21", "198.51.1.1", 443), tcp("192.168.1.21", "198.51.2.1", 443))
    analyzer.update(flows(*lines), OWNERS, T0)
    allow = (AllowEntry("198.51.2.0/24", mac=TV),)
    analyzer.apply_settings(replace(analyzer.settings, allow=allow))
    result = analyzer.update([], OWNERS, T0 + timedelta(seconds=30))
    found = finding(result, TV, "local_only_violation")
    assert [d.ip for d in found.destinations] == ["198.51.1.1"]


def test_export_rebuilds_only_the_devices_that_changed() -> None:
    analyzer = make(policies={CAMERA: "monitor", TV: "learn"})
    tv = tcp("192.168.1.21", "198.51.1.1", 443)
    analyzer.update(flows(foscam(), tv), OWNERS, T0)
    before = analyzer.export_state()["devices"]
    analyzer.update(flows(foscam(), tv), OWNERS, T0 + timedelta(seconds=30))
    same = analyzer.export_state()["devices"]
    assert same[CAMERA] is before[CAMERA]  # the same findings are active: nothing to store
    assert same[TV] is before[TV]
    learned = tcp("192.168.1.21", "198.51.2.1", 443)
    analyzer.update(flows(tv, learned), OWNERS, T0 + timedelta(minutes=16))
    after = analyzer.export_state()["devices"]
    assert after[CAMERA]["findings"] == []
    assert len(after[TV]["baseline"]) == 2


# ---------------------------------------------------------------- shared_p2p_server


def test_devices_sharing_a_flagged_p2p_server_are_all_told() -> None:
    lines = [*foscam(1), udp("192.168.1.24", FOSCAM_HOSTS[0], 10001, replied=True)]
    result = make(policies=MONITOR).update(flows(lines), OWNERS, T0)
    assert "shared_p2p_server" in kinds(result, CAMERA)
    found = finding(result, PLUG, "shared_p2p_server")
    assert f"{FOSCAM_HOSTS[0]}:10001" in found.explanation
    assert CAMERA in found.explanation


def test_shared_udp_server_without_p2p_finding_is_fine() -> None:
    lines = [
        udp("192.168.1.24", "203.0.113.40", 7000, replied=True),
        udp("192.168.1.23", "203.0.113.40", 7000, replied=True),
    ]
    result = make(policies=MONITOR).update(flows(lines), OWNERS, T0)
    assert kinds(result, PLUG) == set()
    assert kinds(result, DVR) == set()


# ---------------------------------------------------------------- allow-list


def test_allow_listed_network_never_fires() -> None:
    allow = (AllowEntry("198.51.100.0/24"), AllowEntry("203.0.113.0/24"))
    result = make(policies=MONITOR, allow=allow).update(flows(foscam()), OWNERS, T0)
    assert kinds(result, CAMERA) == set()


def test_allow_entry_for_another_device_does_not_apply() -> None:
    allow = (AllowEntry("0.0.0.0/0", mac=TV),)
    result = make(policies=MONITOR, allow=allow).update(flows(foscam()), OWNERS, T0)
    assert "signature" in kinds(result, CAMERA)


def test_allow_entry_with_another_port_does_not_apply() -> None:
    allow = (AllowEntry("0.0.0.0/0", port=443, protocol=17),)
    result = make(policies=MONITOR, allow=allow).update(flows(foscam()), OWNERS, T0)
    assert "signature" in kinds(result, CAMERA)


def test_allow_entry_with_port_and_protocol_applies() -> None:
    allow = (AllowEntry("114.114.114.114", port=53, protocol=17),)
    result = make(policies=MONITOR, allow=allow).update(
        flows(udp("192.168.1.23", "114.114.114.114", 53, replied=True)), OWNERS, T0
    )
    assert kinds(result, DVR) == set()


# ---------------------------------------------------------------- lifetime


def test_finding_stays_active_within_the_window() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    result = analyzer.update([], OWNERS, T0 + timedelta(minutes=14))
    assert "signature" in kinds(result, CAMERA)


def test_finding_expires_after_the_window() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    result = analyzer.update([], OWNERS, T0 + timedelta(minutes=16))
    assert kinds(result, CAMERA) == set()


def test_active_finding_is_not_announced_again() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    result = analyzer.update(flows(foscam()), OWNERS, T0 + timedelta(seconds=30))
    assert result.new_findings == ()
    assert "signature" in kinds(result, CAMERA)


def test_finding_is_announced_again_after_it_expired() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    analyzer.update([], OWNERS, T0 + timedelta(minutes=16))
    result = analyzer.update(flows(foscam()), OWNERS, T0 + timedelta(minutes=17))
    assert "signature" in {f.kind for f in result.new_findings}


def test_recurring_destination_after_expiry_starts_a_fresh_first_seen() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    later = T0 + timedelta(minutes=30)
    result = analyzer.update(flows(foscam()), OWNERS, later)
    assert finding(result, CAMERA, "signature").first_seen == later


def test_expiry_survives_the_clock_going_back() -> None:
    analyzer = make(policies={TV: "local_only"})
    analyzer.update([], OWNERS, T0 + timedelta(hours=1))  # the devices are known from then
    analyzer.update(flows(tcp("192.168.1.21", "198.51.1.1", 443)), OWNERS, T0)  # set back
    assert analyzer.update([], OWNERS, T0 + timedelta(minutes=16)).devices[TV].findings == ()
    assert analyzer.destinations == 0


def test_flows_of_unknown_sources_are_ignored() -> None:
    result = make(policies=MONITOR).update(
        flows(udp("192.168.1.99", "203.0.113.5", 8800)), OWNERS, T0
    )
    assert all(not report.findings for report in result.devices.values())


def test_forget_drops_a_device() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    analyzer.forget([CAMERA])
    assert CAMERA not in analyzer.export_state()["devices"]


# ---------------------------------------------------------------- persistence


def test_export_state_is_plain_json() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    state = analyzer.export_state()
    assert json.loads(json.dumps(state)) == state
    assert state["version"] == 1


def test_import_keeps_the_baseline_and_learning_start() -> None:
    restored = make(policies={TV: "learn"})
    restored.import_state(json.loads(json.dumps(learned_tv().export_state())))
    known = restored.update(flows(tcp("192.168.1.21", "198.51.100.9", 443)), OWNERS, LATER)
    assert kinds(known, TV) == set()
    unknown = restored.update(flows(tcp("192.168.1.21", "203.0.113.9", 443)), OWNERS, LATER)
    assert kinds(unknown, TV) == {"new_destination"}


def test_imported_active_finding_is_not_announced_again() -> None:
    analyzer = make(policies=MONITOR)
    analyzer.update(flows(foscam()), OWNERS, T0)
    restored = make(policies=MONITOR)
    restored.import_state(json.loads(json.dumps(analyzer.export_state())))
    result = restored.update(flows(foscam()), OWNERS, T0 + timedelta(seconds=30))
    assert result.new_findings == ()


def test_import_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        make().import_state({"version": 99, "devices": {}})


# ---------------------------------------------------------------- devices and speed


def test_owners_from_maps_every_address_to_its_mac() -> None:
    class Device:
        def __init__(self, mac: str, ipv4: tuple[str, ...], ipv6: tuple[str, ...]) -> None:
            self.mac, self.ipv4, self.ipv6 = mac, ipv4, ipv6

    owners = owners_from([Device(TV, ("192.168.1.21",), ("fd00::21",))])
    assert owners == {"192.168.1.21": TV, "fd00::21": TV}


def test_update_of_a_busy_router_table_finds_the_p2p_devices() -> None:
    # Correctness at full size; the time is measured by scripts/bench, not asserted here.
    table = list(parse_proc(synthetic.proc_text(synthetic.ENTRIES)).flows)
    analyzer = Analyzer()
    first = analyzer.update(table, synthetic.lan_owners(), T0)
    second = analyzer.update(table, synthetic.lan_owners(), T0 + timedelta(seconds=30))
    kinds = {finding.kind for report in first.devices.values() for finding in report.findings}
    assert {"signature", "p2p_fanout", "unreplied_attempts"} <= kinds
    assert not second.new_findings  # the same behaviour is not announced again


def test_apply_settings_drops_newly_allowed_destinations_at_once() -> None:
    analyzer = make(policies={CAMERA: "monitor"})
    assert kinds(analyzer.update(flows(foscam()), OWNERS, T0), CAMERA)
    allow = (AllowEntry("0.0.0.0/0", mac=CAMERA),)
    analyzer.apply_settings(replace(analyzer.settings, allow=allow))
    later = analyzer.update(flows(foscam()), OWNERS, T0 + timedelta(seconds=30))
    assert kinds(later, CAMERA) == set()
    analyzer.apply_settings(replace(analyzer.settings, allow=()))
    assert analyzer.update([], OWNERS, T0 + timedelta(seconds=60)).devices[CAMERA].findings == ()


def test_the_signature_file_is_read_on_first_update_not_at_construction() -> None:
    with patch("custom_components.phonehome.core.analyzer.load_signatures") as load:
        load.return_value = ()
        analyzer = Analyzer(AnalyzerSettings(policies=MONITOR))
        assert load.call_count == 0
        analyzer.update(flows(foscam()), OWNERS, T0)
        analyzer.update(flows(foscam()), OWNERS, T0 + timedelta(seconds=30))
    assert load.call_count == 1

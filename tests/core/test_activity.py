"""ActivityTracker: per-device internet destinations over a rolling window."""

from datetime import UTC, datetime, timedelta

from custom_components.phonehome.core.activity import ActivityTracker, Destination, DeviceActivity
from custom_components.phonehome.core.conntrack import parse_proc
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.routers.base import LanDevice

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
CAMERA = LanDevice("c0:ff:ee:00:00:01", ("192.168.1.20",), name="camera")
TV = LanDevice("c0:ff:ee:00:00:02", ("192.168.1.21",), ("fd00::21",), hostname="tv")
DEVICES = {CAMERA.mac: CAMERA, TV.mac: TV}


def udp(src: str, dst: str, dport: int, sport: int = 40010, packets: int = 2) -> str:
    return (
        f"ipv4     2 udp      17 29 src={src} dst={dst} sport={sport} dport={dport} "
        f"packets={packets} bytes={packets * 60} [UNREPLIED] src={dst} dst={src} sport={dport} "
        f"dport={sport} packets=0 bytes=0 mark=0 zone=0 use=2\n"
    )


def tcp(src: str, dst: str, dport: int, sport: int = 51000) -> str:
    return (
        f"ipv4     2 tcp      6 7439 ESTABLISHED src={src} dst={dst} sport={sport} dport={dport} "
        f"packets=10 bytes=1500 src={dst} dst={src} sport={dport} dport={sport} packets=12 "
        f"bytes=9000 [ASSURED] mark=0 zone=0 use=2\n"
    )


TCP6 = (
    "ipv6     10 tcp      6 7439 ESTABLISHED src=fd00:0000:0000:0000:0000:0000:0000:0021 "
    "dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=52000 dport=443 packets=3 bytes=300 "
    "src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0021 "
    "sport=443 dport=52000 packets=2 bytes=200 [ASSURED] mark=0 zone=0 use=2\n"
)
NO_ACCOUNTING = (
    "ipv4     2 udp      17 29 src=192.168.1.20 dst=203.0.113.9 sport=40010 dport=10001 "
    "[UNREPLIED] src=203.0.113.9 dst=192.168.1.20 sport=10001 dport=40010 mark=0 zone=0 use=2\n"
)


def flows(*lines: str) -> list[Flow]:
    return parse_proc("".join(lines)).flows


def test_flows_are_counted_per_device_and_destination() -> None:
    tracker = ActivityTracker(WINDOW)
    activity = tracker.update(
        flows(
            udp("192.168.1.20", "203.0.113.5", 10001, sport=40010),
            udp("192.168.1.20", "203.0.113.5", 10001, sport=40011, packets=3),
            udp("192.168.1.20", "203.0.113.6", 10001),
            tcp("192.168.1.21", "198.51.100.7", 443),
        ),
        DEVICES,
        T0,
    )
    camera = activity[CAMERA.mac]
    assert (camera.internet_hosts, camera.internet_connections) == (2, 3)
    assert camera.last_internet_contact == T0
    assert camera.destinations == (
        Destination("203.0.113.5", 10001, 17, T0, T0, 300, None),  # two flows summed
        Destination("203.0.113.6", 10001, 17, T0, T0, 120, None),
    )
    tv = activity[TV.mac]
    assert (tv.internet_hosts, tv.internet_connections) == (1, 1)
    assert tv.destinations[0].bytes == 10500


def test_ipv6_flows_belong_to_the_device_holding_the_address() -> None:
    activity = ActivityTracker(WINDOW).update(flows(TCP6), DEVICES, T0)
    assert activity[TV.mac].destinations == (Destination("2001:db8::1", 443, 6, T0, T0, 500, None),)
    assert activity[CAMERA.mac].internet_hosts == 0


def test_lan_multicast_and_unknown_sources_are_ignored() -> None:
    activity = ActivityTracker(WINDOW).update(
        flows(
            tcp("192.168.1.20", "192.168.1.21", 554),  # LAN to LAN (RTSP)
            udp("192.168.1.20", "239.255.255.250", 1900),  # SSDP multicast
            udp("192.168.1.20", "255.255.255.255", 67),  # broadcast
            udp("192.168.1.99", "203.0.113.5", 10001),  # no device holds .99
            tcp("203.0.113.50", "192.168.1.21", 8080),  # inbound port forward
        ),
        DEVICES,
        T0,
    )
    assert {mac: (a.internet_hosts, a.internet_connections) for mac, a in activity.items()} == {
        CAMERA.mac: (0, 0),
        TV.mac: (0, 0),
    }
    assert activity[CAMERA.mac].last_internet_contact is None


def test_destinations_are_kept_across_polls_until_the_window_passes() -> None:
    tracker = ActivityTracker(WINDOW)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.5", 10001)), DEVICES, T0)
    later = T0 + timedelta(minutes=10)
    activity = tracker.update(flows(udp("192.168.1.20", "203.0.113.6", 10001)), DEVICES, later)
    camera = activity[CAMERA.mac]
    assert camera.internet_hosts == 2
    assert camera.internet_connections == 1
    assert [(d.ip, d.first_seen, d.last_seen) for d in camera.destinations] == [
        ("203.0.113.6", later, later),
        ("203.0.113.5", T0, T0),
    ]

    quiet = T0 + timedelta(minutes=16)  # .5 last seen 16 min ago: out of the window
    camera = tracker.update([], DEVICES, quiet)[CAMERA.mac]
    assert [d.ip for d in camera.destinations] == ["203.0.113.6"]
    assert camera.internet_connections == 0
    assert camera.last_internet_contact == later  # kept across polls

    camera = tracker.update([], DEVICES, later + WINDOW + timedelta(seconds=1))[CAMERA.mac]
    assert camera.destinations == ()
    assert camera.internet_hosts == 0
    assert camera.last_internet_contact == later


def test_a_destination_seen_again_keeps_its_first_seen_and_takes_the_latest_bytes() -> None:
    tracker = ActivityTracker(WINDOW)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.5", 10001, packets=2)), DEVICES, T0)
    later = T0 + timedelta(minutes=14)
    line = udp("192.168.1.20", "203.0.113.5", 10001, packets=5)
    (destination,) = tracker.update(flows(line), DEVICES, later)[CAMERA.mac].destinations
    assert (destination.first_seen, destination.last_seen, destination.bytes) == (T0, later, 300)
    now = later + timedelta(minutes=14)
    (destination,) = tracker.update([], DEVICES, now)[CAMERA.mac].destinations
    assert destination.last_seen == later  # still within the window of the last sighting


def test_without_counters_bytes_are_none() -> None:
    activity = ActivityTracker(WINDOW).update(flows(NO_ACCOUNTING, NO_ACCOUNTING), DEVICES, T0)
    (destination,) = activity[CAMERA.mac].destinations
    assert destination.bytes is None
    assert activity[CAMERA.mac].internet_connections == 2


def test_same_host_on_two_ports_is_one_host_two_destinations() -> None:
    activity = ActivityTracker(WINDOW).update(
        flows(tcp("192.168.1.21", "198.51.100.7", 443), tcp("192.168.1.21", "198.51.100.7", 80)),
        DEVICES,
        T0,
    )
    tv = activity[TV.mac]
    assert tv.internet_hosts == 1
    assert [(d.port, d.bytes) for d in tv.destinations] == [(443, 10500), (80, 10500)]


def test_destinations_are_capped_oldest_first() -> None:
    tracker = ActivityTracker(WINDOW, max_destinations=3)
    for minute in range(5):
        line = udp("192.168.1.20", f"203.0.113.{minute + 1}", 10001)
        activity = tracker.update(flows(line), DEVICES, T0 + timedelta(minutes=minute))
    camera = activity[CAMERA.mac]
    assert [d.ip for d in camera.destinations] == ["203.0.113.5", "203.0.113.4", "203.0.113.3"]
    assert camera.internet_hosts == 3


def test_over_the_cap_the_destinations_known_longest_stay() -> None:
    """All seen in the same poll: the ones that came last go, so the rest stay put."""
    tracker = ActivityTracker(WINDOW, max_destinations=3)
    lines = [udp("192.168.1.20", f"203.0.113.{host}", 10001) for host in range(1, 4)]
    tracker.update(flows(*lines), DEVICES, T0)
    more = [*lines, udp("192.168.1.20", "203.0.113.9", 10001)]
    for minute in (1, 2):
        activity = tracker.update(flows(*more), DEVICES, T0 + timedelta(minutes=minute))
        camera = activity[CAMERA.mac]
        assert {d.ip for d in camera.destinations} == {f"203.0.113.{host}" for host in (1, 2, 3)}
        assert {d.first_seen for d in camera.destinations} == {T0}


def test_recent_lists_the_newest_destinations_ready_made() -> None:
    tracker = ActivityTracker(WINDOW, recent=2)
    for minute in range(4):
        line = udp("192.168.1.20", f"203.0.113.{minute + 1}", 10001)
        activity = tracker.update(flows(line), DEVICES, T0 + timedelta(minutes=minute))
    camera = activity[CAMERA.mac]
    assert camera.recent == camera.destinations[:2]
    assert [d.ip for d in camera.recent] == ["203.0.113.4", "203.0.113.3"]
    assert activity[TV.mac].recent == ()


def test_ties_on_last_seen_are_ordered_by_bytes() -> None:
    activity = ActivityTracker(WINDOW).update(
        flows(
            udp("192.168.1.20", "203.0.113.1", 10001, packets=1),
            udp("192.168.1.20", "203.0.113.2", 10001, packets=9),
            NO_ACCOUNTING,
        ),
        DEVICES,
        T0,
    )
    assert [d.ip for d in activity[CAMERA.mac].destinations] == [
        "203.0.113.2",
        "203.0.113.1",
        "203.0.113.9",
    ]


def test_forgotten_devices_lose_their_history() -> None:
    tracker = ActivityTracker(WINDOW)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.5", 10001)), DEVICES, T0)
    tracker.forget([CAMERA.mac, "00:11:22:33:44:55"])
    assert tracker.update([], {}, T0) == {}


def test_a_device_gone_from_the_router_keeps_its_window() -> None:
    tracker = ActivityTracker(WINDOW)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.5", 10001)), DEVICES, T0)
    activity = tracker.update([], {TV.mac: TV}, T0 + timedelta(minutes=1))
    assert activity[CAMERA.mac].internet_hosts == 1
    assert activity[CAMERA.mac].internet_connections == 0


def test_a_full_table_of_fifty_devices() -> None:
    count = 3000
    devices = {
        f"c0:ff:ee:00:{i // 256:02x}:{i % 256:02x}": LanDevice(
            f"c0:ff:ee:00:{i // 256:02x}:{i % 256:02x}", (f"192.168.{i // 250}.{i % 250 + 2}",)
        )
        for i in range(50)
    }
    table = flows(
        *(
            udp(f"192.168.0.{i % 50 + 2}", f"203.0.113.{i % 200}", 10000 + i % 7, sport=i + 1024)
            for i in range(count)
        )
    )
    tracker = ActivityTracker(WINDOW)
    activity = tracker.update(table, devices, T0)
    assert sum(a.internet_connections for a in activity.values()) == count
    assert max(a.internet_hosts for a in activity.values()) <= 200


def test_a_counted_flow_and_an_uncounted_one_to_the_same_destination() -> None:
    counted = udp("192.168.1.20", "203.0.113.9", 10001, sport=40011)
    for lines in ((NO_ACCOUNTING, counted), (counted, NO_ACCOUNTING)):
        (destination,) = (
            ActivityTracker(WINDOW).update(flows(*lines), DEVICES, T0)[CAMERA.mac].destinations
        )
        assert destination.bytes == 120


def test_country_is_looked_up_once_per_new_destination() -> None:
    asked: list[str] = []

    def country_of(ip: str) -> str | None:
        asked.append(ip)
        return {"203.0.113.5": "CN"}.get(ip)

    tracker = ActivityTracker(WINDOW, country_of=country_of)
    lines = (udp("192.168.1.20", "203.0.113.5", 10001), udp("192.168.1.20", "203.0.113.6", 10001))
    tracker.update(flows(*lines), DEVICES, T0)
    activity = tracker.update(flows(*lines), DEVICES, T0 + timedelta(seconds=30))

    countries = {d.ip: d.country for d in activity[CAMERA.mac].destinations}
    assert countries == {"203.0.113.5": "CN", "203.0.113.6": None}
    assert sorted(asked) == ["203.0.113.5", "203.0.113.6"]


def test_destinations_are_capped_in_total_oldest_first() -> None:
    tracker = ActivityTracker(WINDOW, max_total=3)
    sources = ("192.168.1.20", "192.168.1.21", "192.168.1.20", "192.168.1.21")
    for n, source in enumerate(sources):
        line = udp(source, f"203.0.113.{n + 1}", 10001)
        activity = tracker.update(flows(line), DEVICES, T0 + timedelta(seconds=n))
    assert [d.ip for d in activity[CAMERA.mac].destinations] == ["203.0.113.3"]
    assert [d.ip for d in activity[TV.mac].destinations] == ["203.0.113.4", "203.0.113.2"]
    assert (tracker.destinations, tracker.destinations_dropped) == (3, 1)


def test_the_total_cap_can_empty_a_device() -> None:
    tracker = ActivityTracker(WINDOW, max_total=1)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.1", 10001)), DEVICES, T0)
    later = T0 + timedelta(seconds=10)
    activity = tracker.update(flows(tcp("192.168.1.21", "198.51.100.7", 443)), DEVICES, later)
    assert activity[CAMERA.mac].destinations == ()
    assert activity[CAMERA.mac].last_internet_contact == T0
    assert [d.ip for d in activity[TV.mac].destinations] == ["198.51.100.7"]
    assert tracker.destinations_dropped == 1


def test_the_per_device_cap_counts_what_it_drops() -> None:
    tracker = ActivityTracker(WINDOW, max_destinations=2)
    lines = [udp("192.168.1.20", f"203.0.113.{n}", 10001) for n in range(1, 5)]
    activity = tracker.update(flows(*lines), DEVICES, T0)
    assert activity[CAMERA.mac].internet_hosts == 2
    assert (tracker.destinations, tracker.destinations_dropped) == (2, 2)


def test_a_poll_s_activity_keeps_its_values_after_the_next_poll() -> None:
    tracker = ActivityTracker(WINDOW)
    line = udp("192.168.1.20", "203.0.113.5", 10001, packets=2)
    before = tracker.update(flows(line), DEVICES, T0)[CAMERA.mac]
    later = T0 + timedelta(minutes=1)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.5", 10001, packets=5)), DEVICES, later)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.6", 10001)), DEVICES, later)
    assert before.destinations == (Destination("203.0.113.5", 10001, 17, T0, T0, 120, None),)
    assert before.internet_hosts == 1


def test_device_activity_compares_and_prints_like_a_dataclass() -> None:
    activity = ActivityTracker(WINDOW).update(flows(TCP6), DEVICES, T0)[TV.mac]
    same = DeviceActivity(TV.mac, 1, 1, T0, activity.destinations)
    assert activity == same
    assert activity != DeviceActivity(TV.mac, 1, 1, None, activity.destinations)
    assert activity != "tv"
    assert repr(same) == (
        "DeviceActivity(mac='c0:ff:ee:00:00:02', internet_hosts=1, internet_connections=1, "
        f"last_internet_contact={T0!r}, destinations={activity.destinations!r})"
    )


def test_expiry_survives_the_clock_going_back() -> None:
    tracker = ActivityTracker(WINDOW)
    ahead = T0 + timedelta(hours=1)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.1", 10001)), DEVICES, ahead)
    tracker.update(flows(udp("192.168.1.20", "203.0.113.2", 10001)), DEVICES, T0)  # set back
    camera = tracker.update([], DEVICES, T0 + timedelta(minutes=16))[CAMERA.mac]
    assert [d.ip for d in camera.destinations] == ["203.0.113.1"]

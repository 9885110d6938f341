"""signatures.json: schema validation with errors naming the entry, and flow matching."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.phonehome.core.conntrack import parse_proc
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.core.signatures import (
    DEFAULT_PATH,
    SignatureError,
    SignatureIndex,
    load_signatures,
    match,
    parse_signatures,
)

BUNDLED: dict[str, Any] = json.loads(DEFAULT_PATH.read_text())
REQUIRED_IDS = {
    "cs2_pppp",
    "foscam_p2p",
    "dahua_easy4ip",
    "xiongmai_xmeye",
    "tuya_cloud",
    "throughtek_kalay",
}


def udp(src: str, dst: str, dport: int) -> str:
    return (
        f"ipv4     2 udp      17 29 src={src} dst={dst} sport=40010 dport={dport} "
        f"packets=2 bytes=120 [UNREPLIED] src={dst} dst={src} sport={dport} "
        f"dport=40010 packets=0 bytes=0 mark=0 zone=0 use=2\n"
    )


def tcp(src: str, dst: str, dport: int) -> str:
    return (
        f"ipv4     2 tcp      6 7439 ESTABLISHED src={src} dst={dst} sport=51000 dport={dport} "
        f"packets=10 bytes=1500 src={dst} dst={src} sport={dport} dport=51000 packets=12 "
        f"bytes=9000 [ASSURED] mark=0 zone=0 use=2\n"
    )


def flow(line: str) -> Flow:
    (result,) = parse_proc(line).flows
    return result


def broken(index: int, **changes: Any) -> str:
    document = copy.deepcopy(BUNDLED)
    document["signatures"][index].update(changes)
    return json.dumps(document)


def test_bundled_file_loads_with_the_required_protocols() -> None:
    assert {signature.id for signature in load_signatures()} >= REQUIRED_IDS


def test_every_bundled_entry_has_a_reference_or_a_note() -> None:
    assert all(signature.references or signature.note for signature in load_signatures())


def test_entries_without_known_addresses_say_so_in_a_note() -> None:
    for signature in load_signatures():
        if not signature.remote_hosts:
            assert signature.note, signature.id


def test_port_out_of_range_names_entry_and_field() -> None:
    with pytest.raises(SignatureError, match=r"#1 \(id 'foscam_p2p'\).*remote_ports\[0\]"):
        parse_signatures(broken(1, remote_ports=[70000]))


def test_wrong_type_names_entry_and_field() -> None:
    with pytest.raises(SignatureError, match=r"#0 \(id 'cs2_pppp'\).*vendors"):
        parse_signatures(broken(0, vendors="Foscam"))


def test_duplicate_id_names_the_second_entry() -> None:
    with pytest.raises(SignatureError, match=r"#2 \(id 'cs2_pppp'\).*duplicate"):
        parse_signatures(broken(2, id="cs2_pppp"))


def test_unknown_severity_names_entry_and_field() -> None:
    with pytest.raises(SignatureError, match=r"#3 \(id 'xiongmai_xmeye'\).*severity"):
        parse_signatures(broken(3, severity="critical"))


def test_fanout_with_one_host_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"#0 \(id 'cs2_pppp'\).*min_hosts"):
        parse_signatures(broken(0, pattern={"kind": "fanout", "min_hosts": 1}))


def test_unknown_pattern_kind_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"#0 .*pattern"):
        parse_signatures(broken(0, pattern={"kind": "burst"}))


def test_bad_remote_host_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"#1 .*remote_hosts"):
        parse_signatures(broken(1, remote_hosts=["camera.example"]))


def test_unknown_template_placeholder_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"#1 .*explanation"):
        parse_signatures(broken(1, explanation="to {server}"))


def test_unknown_field_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"#4 .*colour"):
        parse_signatures(broken(4, colour="red"))


def test_not_json_is_a_signature_error() -> None:
    with pytest.raises(SignatureError, match="not valid JSON"):
        parse_signatures(b"{")


def test_missing_file_is_a_signature_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="cannot read"):
        load_signatures(tmp_path / "missing.json")


def test_matches_by_protocol_and_port() -> None:
    ids = [s.id for s in match(flow(udp("192.168.1.20", "203.0.113.9", 32100)))]
    assert ids == ["cs2_pppp"]


def test_same_port_other_protocol_does_not_match() -> None:
    assert match(flow(tcp("192.168.1.20", "203.0.113.9", 32100))) == []


def test_lan_destination_never_matches() -> None:
    assert match(flow(udp("192.168.1.20", "192.168.1.30", 32100))) == []


def test_remote_hosts_restrict_the_match() -> None:
    document = copy.deepcopy(BUNDLED)
    document["signatures"][2]["remote_hosts"] = ["198.51.100.0/24"]
    index = SignatureIndex(parse_signatures(json.dumps(document)))
    assert [s.id for s in index.match(flow(udp("192.168.1.20", "198.51.100.7", 8800)))] == [
        "dahua_easy4ip"
    ]
    assert index.match(flow(udp("192.168.1.20", "203.0.113.7", 8800))) == []


def test_fanout_signature_exposes_min_hosts() -> None:
    by_id = {signature.id: signature for signature in load_signatures()}
    assert by_id["cs2_pppp"].min_hosts == 2
    assert by_id["dahua_easy4ip"].min_hosts == 1


def test_explanation_fills_the_template() -> None:
    by_id = {signature.id: signature for signature in load_signatures()}
    text = by_id["cs2_pppp"].explain(32100, 4, " in CN and US", " every ~9 s")
    assert text.startswith("UDP to port 32100 of 4 hosts in CN and US every ~9 s: the CS2/PPPP")

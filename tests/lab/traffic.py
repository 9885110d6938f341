"""Lab traffic: internet-side servers and a device-side client that plays a fixed plan.

Run inside a namespace, standard library only:
  traffic.py serve ADDR...    UDP echo, silent UDP sinks and a TCP server on each address;
                              answers each stdin line with the datagrams echoed so far
  traffic.py play PLAN_JSON   play every probe, print the results as one JSON line,
                              then hold the open TCP connections until stdin closes
  traffic.py stream SRC DST   a long-lived UDP stream to DST's echo port: one datagram
                              every STREAM_INTERVAL, at most STREAM_DATAGRAMS
  traffic.py connect SRC DST  one TCP connection attempt to DST; prints how it ended
All but `connect` exit when stdin closes, or after MAX_LIFETIME seconds if nobody closes it.
Imported (as a module) for `Probe`, `ProbeResult` and `home_plan`.
"""

import contextlib
import errno
import json
import select
import selectors
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from typing import Final

UDP_ECHO_PORT: Final = 7
"""Answers every datagram with the same bytes."""
UDP_SINK_PORTS: Final = (32100, 10001)
"""Swallow datagrams without answering, like P2P servers behind a silent firewall."""
TCP_PORT: Final = 443
"""Answers each request with one response and keeps the connection open until the peer closes."""
TCP_REQUEST: Final = b"GET / lab\n"
TCP_RESPONSE: Final = b"lab ok\n"
REPLY_TIMEOUT: Final = 2.0
"""Seconds the client waits for each expected answer."""
SETTLE_TIME: Final = 0.2
"""Seconds the client waits after the last probe, so delayed ACKs are out and counters final."""
MAX_LIFETIME: Final = 120.0
"""Seconds after which a forgotten helper exits on its own."""
STREAM_INTERVAL: Final = 0.05
STREAM_DATAGRAMS: Final = 600
"""30 seconds of stream."""

IPPROTO_ICMP: Final = 1
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_ICMPV6: Final = 58
_ECHO_TYPES: Final = {4: (8, 0), 6: (128, 129)}
"""Family -> (echo request type, echo reply type)."""


@dataclass(frozen=True)
class Probe:
    """One flow to create: `count` UDP or ICMP echo datagrams, or one TCP exchange."""

    family: int
    protocol: int
    src: str
    dst: str
    sport: int | None
    dport: int | None
    reply_expected: bool
    count: int = 1
    payload: int = 32
    icmp_id: int | None = None
    hold: bool = True
    """TCP only: keep the connection open (ESTABLISHED) or close it (TIME_WAIT)."""

    @property
    def key(self) -> tuple[int, int, str, str, int | None, int | None, bool]:
        """The flow a conntrack entry must show: its original tuple and whether it was replied."""
        return (
            self.family,
            self.protocol,
            self.src,
            self.dst,
            self.sport,
            self.dport,
            self.reply_expected,
        )

    @property
    def datagram_bytes(self) -> int:
        """IP length of one UDP or ICMP echo datagram (both have an 8-byte header)."""
        return (20 if self.family == 4 else 40) + 8 + self.payload

    @property
    def tcp_state(self) -> str | None:
        """The conntrack TCP state once the probe is played; None for other protocols."""
        if self.protocol != IPPROTO_TCP:
            return None
        return "ESTABLISHED" if self.hold else "TIME_WAIT"


@dataclass(frozen=True)
class ProbeResult:
    """What the client saw for one probe: datagrams (or TCP requests) sent, answers received."""

    sent: int
    replies: int


def home_plan(
    device_v4: str, device_v6: str, internet_v4: tuple[str, ...], internet_v6: tuple[str, ...]
) -> list[Probe]:
    """A P2P camera's unanswered UDP, plus answered UDP, TCP and ping, over IPv4 and IPv6."""
    d4, d6, i4, i6 = device_v4, device_v6, internet_v4, internet_v6
    udp, tcp = IPPROTO_UDP, IPPROTO_TCP
    return [
        Probe(4, udp, d4, i4[0], 40001, UDP_ECHO_PORT, True, count=2),
        *(Probe(4, udp, d4, host, 40010, 32100, False, count=2) for host in i4[1:4]),
        *(Probe(4, udp, d4, host, 40020, 10001, False, count=3) for host in i4[1:3]),
        Probe(4, tcp, d4, i4[0], 40030, TCP_PORT, True),
        Probe(4, tcp, d4, i4[4], 40031, TCP_PORT, True),
        Probe(4, tcp, d4, i4[0], 40032, TCP_PORT, True, hold=False),
        Probe(4, IPPROTO_ICMP, d4, i4[0], None, None, True, count=2, icmp_id=0x1234),
        Probe(6, udp, d6, i6[0], 40001, UDP_ECHO_PORT, True, count=2),
        Probe(6, udp, d6, i6[1], 40010, 32100, False, count=2),
        Probe(6, tcp, d6, i6[0], 40030, TCP_PORT, True),
        Probe(6, IPPROTO_ICMPV6, d6, i6[0], None, None, True, count=2, icmp_id=0x1235),
    ]


def _family(family: int) -> socket.AddressFamily:
    return socket.AF_INET if family == 4 else socket.AF_INET6


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo_request(probe: Probe, sequence: int) -> bytes:
    """An ICMP echo request; the kernel fills in the ICMPv6 checksum itself."""
    kind = _ECHO_TYPES[probe.family][0]
    body = struct.pack("!HH", probe.icmp_id or 0, sequence) + bytes(probe.payload)
    checksum = _checksum(struct.pack("!BBH", kind, 0, 0) + body) if probe.family == 4 else 0
    return struct.pack("!BBH", kind, 0, checksum) + body


def _is_answer(probe: Probe, data: bytes) -> bool:
    """Whether a received datagram answers the probe (raw ICMPv4 comes with its IP header)."""
    if probe.icmp_id is None:
        return True
    if probe.family == 4:
        data = data[(data[0] & 0x0F) * 4 :]
    kind: int = data[0]
    ident: int = struct.unpack("!H", data[4:6])[0]
    return kind == _ECHO_TYPES[probe.family][1] and ident == probe.icmp_id


def _play_datagrams(probe: Probe) -> ProbeResult:
    """Send `count` datagrams from a bound socket, each followed by a wait for its answer."""
    if probe.protocol == IPPROTO_UDP:
        sock = socket.socket(_family(probe.family), socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    else:
        sock = socket.socket(_family(probe.family), socket.SOCK_RAW, probe.protocol)
    replies = 0
    with sock:
        sock.bind((probe.src, probe.sport or 0))
        for sequence in range(probe.count):
            is_echo = probe.icmp_id is not None
            packet = _echo_request(probe, sequence) if is_echo else bytes(probe.payload)
            sock.sendto(packet, (probe.dst, probe.dport or 0))
            deadline = time.monotonic() + REPLY_TIMEOUT
            while probe.reply_expected and (remaining := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], remaining)[0]:
                    break
                if _is_answer(probe, sock.recv(65535)):
                    replies += 1
                    break
    return ProbeResult(sent=probe.count, replies=replies)


def _play_tcp(probe: Probe) -> tuple[ProbeResult, socket.socket | None]:
    """Connect, send one request, read the response; close it gracefully unless held."""
    sock = socket.socket(_family(probe.family), socket.SOCK_STREAM)
    sock.settimeout(REPLY_TIMEOUT)
    sock.bind((probe.src, probe.sport or 0))
    sock.connect((probe.dst, probe.dport or 0))
    sock.sendall(TCP_REQUEST)
    answer = b""
    while not answer.endswith(b"\n") and (chunk := sock.recv(1024)):
        answer += chunk
    result = ProbeResult(sent=1, replies=int(answer == TCP_RESPONSE))
    if probe.hold:
        return result, sock
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(1024):  # until the server's FIN: both sides closed in order
        pass
    sock.close()
    return result, None


def play(plan: list[Probe]) -> tuple[list[ProbeResult], list[socket.socket]]:
    """Play every probe in order; return the results and the TCP connections held open."""
    results, held = [], []
    for probe in plan:
        if probe.protocol == IPPROTO_TCP:
            result, sock = _play_tcp(probe)
            held += [sock] if sock else []
        else:
            result = _play_datagrams(probe)
        results.append(result)
    return results, held


def _listen(selector: selectors.BaseSelector, addresses: list[str]) -> None:
    """Bind every service on every address, so each answer leaves from the address asked."""
    services = [(socket.SOCK_DGRAM, UDP_ECHO_PORT), (socket.SOCK_STREAM, TCP_PORT)]
    services += [(socket.SOCK_DGRAM, port) for port in UDP_SINK_PORTS]
    for address in addresses:
        for kind, port in services:
            sock = socket.socket(_family(6 if ":" in address else 4), kind)
            sock.bind((address, port))
            if kind == socket.SOCK_STREAM:
                sock.listen()
            selector.register(sock, selectors.EVENT_READ, "listen" if port == TCP_PORT else port)


def _serve_one(selector: selectors.BaseSelector, sock: socket.socket, role: object) -> int:
    """Handle one readable socket; 1 when it echoed a datagram, else 0."""
    if role == "listen":
        selector.register(sock.accept()[0], selectors.EVENT_READ, "connection")
    elif role == "connection":
        if sock.recv(1024):
            sock.sendall(TCP_RESPONSE)
        else:
            selector.unregister(sock)
            sock.close()
    else:
        data, peer = sock.recvfrom(65535)
        if role == UDP_ECHO_PORT:
            sock.sendto(data, peer)
            return 1
    return 0


def serve(addresses: list[str]) -> None:
    """Answer the lab's clients until stdin closes; tell the echo count on each stdin line."""
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ, "stdin")
    _listen(selector, addresses)
    print("ready", flush=True)
    echoed = 0
    deadline = time.monotonic() + MAX_LIFETIME
    while (remaining := deadline - time.monotonic()) > 0:
        for key, _events in selector.select(remaining):
            if key.data == "stdin":
                if not sys.stdin.readline():
                    return
                print(echoed, flush=True)
            elif isinstance(key.fileobj, socket.socket):
                echoed += _serve_one(selector, key.fileobj, key.data)


def stream(src: str, dst: str) -> None:
    """Send STREAM_DATAGRAMS numbered datagrams to DST's echo port, draining the echoes.

    Stops early when stdin closes. The socket is not connected, so the ICMP errors
    of a reject do not stop it.
    """
    selector = selectors.DefaultSelector()
    with socket.socket(_family(6 if ":" in dst else 4), socket.SOCK_DGRAM) as sock:
        sock.bind((src, 0))
        selector.register(sock, selectors.EVENT_READ)
        selector.register(sys.stdin, selectors.EVENT_READ)
        next_send = time.monotonic()
        for number in range(STREAM_DATAGRAMS):
            with contextlib.suppress(OSError):
                sock.sendto(number.to_bytes(4, "big"), (dst, UDP_ECHO_PORT))
            next_send += STREAM_INTERVAL
            while (remaining := next_send - time.monotonic()) > 0:
                for key, _events in selector.select(remaining):
                    if key.fileobj is not sock:
                        return
                    sock.recv(65535)


def connect(src: str, dst: str) -> str:
    """One TCP connection attempt to DST: connected, refused, timeout or the error's name."""
    try:
        socket.create_connection((dst, TCP_PORT), REPLY_TIMEOUT, (src, 0)).close()
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as err:
        return errno.errorcode.get(err.errno or 0, str(err))
    return "connected"


def main(argv: list[str]) -> int:
    """Entry point inside a namespace."""
    if argv[:1] == ["serve"] and len(argv) > 1:
        serve(argv[1:])
        return 0
    if argv[:1] == ["play"] and len(argv) == 2:
        results, held = play([Probe(**fields) for fields in json.loads(argv[1])])
        time.sleep(SETTLE_TIME)
        print(json.dumps([asdict(result) for result in results]), flush=True)
        select.select([sys.stdin], [], [], MAX_LIFETIME)
        for sock in held:
            sock.close()
        return 0
    if argv[:1] == ["stream"] and len(argv) == 3:
        stream(argv[1], argv[2])
        return 0
    if argv[:1] == ["connect"] and len(argv) == 3:
        print(connect(argv[1], argv[2]), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

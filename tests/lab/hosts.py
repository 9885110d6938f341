"""The network lab's hosts: internet servers that count, and devices that play beacons.

Run inside a namespace, standard library only:
  hosts.py serve LIFETIME ADDR...   on each address: UDP sinks and answers (SERVICES) and
                                    TCP 443; counts datagrams and requests per
                                    "src dst port"; answers each stdin line with the counts
                                    as one JSON line
  hosts.py play LIFETIME BEACONS    plays a device's beacons (JSON, see `Beacon`) until every
                                    one has played its rounds
Both print "ready" when they run, and exit when stdin closes, after LIFETIME seconds, or
on SIGTERM. LIFETIME 0 with stdin from /dev/null (scripts/lab) means "until SIGTERM or
MAX_DETACHED seconds". Imported as a module for `Beacon` and the ports.
"""

import contextlib
import json
import selectors
import signal
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Final

ECHO: Final = 7
NTP: Final = 123
DNS: Final = 53
HTTPS: Final = 443
FOSCAM: Final = 10001
PPPP: Final = 32100
RTP: Final = 5004
"""A camera's local stream to the Home Assistant host."""
SINKS: Final = (FOSCAM, PPPP, RTP)
"""UDP ports that swallow datagrams without answering, like P2P servers that stay silent."""
SERVICES: Final = (ECHO, NTP, DNS, *SINKS)
"""UDP ports served on every address; ECHO, NTP and DNS answer."""
BURST_PORTS: Final = 20000
"""A burst's datagrams leave from BURST_PORTS, BURST_PORTS + 1, ...: one flow each."""
MAX_DETACHED: Final = 12 * 3600.0
"""Seconds a detached (scripts/lab) host runs at most."""
ANSWER_TIMEOUT: Final = 0.5
"""Seconds a device waits for an answer it expects (TCP connect, DNS, NTP)."""
DNS_ANSWER: Final = "203.0.113.80"
"""Every name resolves to this address."""


@dataclass(frozen=True)
class Beacon:
    """What a device sends, `rounds` times every `every` seconds, to each of `dsts`.

    `kind`: "udp" (one datagram), "dns" (a query, waits for the answer), "ntp" (a client
    request, waits), "tcp" (connect, one request, read the answer, close), "burst"
    (`count` datagrams to each dst, each from its own source port: `count` flows each).
    `new_port`: each round from a new socket (a new source port), as a device retrying
    does; else one socket for all rounds.
    """

    kind: str
    src: str
    dsts: tuple[str, ...]
    port: int
    every: float = 1.0
    rounds: int = 1
    new_port: bool = True
    count: int = 1
    start: float = 0.0
    """Seconds after `play` starts before the first round."""


@dataclass
class _Playing:
    beacon: Beacon
    due: float
    done: int = 0
    sock: socket.socket | None = field(default=None, repr=False)


def _udp(src: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, port))
    return sock


def _dns_query(ident: int) -> bytes:
    question = b"".join(bytes([len(part)]) + part for part in (b"p2p", b"example", b"com"))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + b"\0" + b"\0\1\0\1"


def _dns_answer(query: bytes) -> bytes:
    """The query with an A record of DNS_ANSWER (TTL 60)."""
    header = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8180, 1, 1, 0, 0)
    record = b"\xc0\x0c\0\1\0\1" + struct.pack("!IH", 60, 4) + socket.inet_aton(DNS_ANSWER)
    return header + query[12:] + record


def _ntp_request() -> bytes:
    return bytes([0x23]) + bytes(47)  # LI 0, version 4, mode 3 (client)


def _ntp_answer(request: bytes) -> bytes:
    return bytes([0x24, 2]) + bytes(38) + request[40:48] if len(request) >= 48 else b""


def _ask(sock: socket.socket, dst: str, port: int, data: bytes) -> None:
    """Send, then wait up to ANSWER_TIMEOUT for the answer (none is fine)."""
    sock.sendto(data, (dst, port))
    sock.settimeout(ANSWER_TIMEOUT)
    with contextlib.suppress(OSError):
        sock.recv(2048)


def _tcp(src: str, dst: str, port: int) -> None:
    with (
        contextlib.suppress(OSError),
        socket.create_connection((dst, port), ANSWER_TIMEOUT, (src, 0)) as sock,
    ):
        sock.sendall(b"GET / lab\n")
        sock.recv(1024)


def _round(playing: _Playing, number: int) -> None:
    """One round of a beacon: every dst once (a burst: `count` sockets per dst)."""
    beacon = playing.beacon
    if beacon.kind == "burst":
        for dst in beacon.dsts:
            for index in range(beacon.count):
                with _udp(beacon.src, BURST_PORTS + index) as sock:
                    sock.sendto(index.to_bytes(4, "big"), (dst, beacon.port))
                if index % 200 == 199:  # paced, so the server's buffer keeps up
                    time.sleep(0.01)
        return
    if beacon.kind == "tcp":
        for dst in beacon.dsts:
            _tcp(beacon.src, dst, beacon.port)
        return
    if playing.sock is None or beacon.new_port:
        if playing.sock is not None:
            playing.sock.close()
        playing.sock = _udp(beacon.src)
    sock = playing.sock
    for dst in beacon.dsts:
        with contextlib.suppress(OSError):  # a quarantine's reject answers with ICMP errors
            if beacon.kind == "dns":
                _ask(sock, dst, beacon.port, _dns_query(number & 0xFFFF))
            elif beacon.kind == "ntp":
                _ask(sock, dst, beacon.port, _ntp_request())
            else:
                sock.sendto(number.to_bytes(4, "big"), (dst, beacon.port))


def play(beacons: list[Beacon], stopped: "_Stop") -> None:
    """Play every beacon's rounds on its schedule, until all are done or `stopped`."""
    now = time.monotonic()
    playing = [_Playing(beacon, now + beacon.start) for beacon in beacons]
    try:
        while (active := [p for p in playing if p.done < p.beacon.rounds]) and not stopped():
            current = min(active, key=lambda p: p.due)
            if (wait := current.due - time.monotonic()) > 0:
                if stopped(wait):
                    return
                continue
            _round(current, current.done)
            current.done += 1
            current.due += current.beacon.every
    finally:
        for item in playing:
            if item.sock is not None:
                item.sock.close()


def _listen(selector: selectors.BaseSelector, addresses: list[str]) -> None:
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in SERVICES:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((address, port))
            selector.register(sock, selectors.EVENT_READ, port)
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((address, HTTPS))
        server.listen(64)
        selector.register(server, selectors.EVENT_READ, "listen")


def _answer(port: int, data: bytes) -> bytes | None:
    if port == ECHO:
        return data
    if port == NTP:
        return _ntp_answer(data)
    if port == DNS and len(data) > 12:
        return _dns_answer(data)
    return None


def _serve_one(
    selector: selectors.BaseSelector, key: selectors.SelectorKey, counts: Counter[str]
) -> None:
    sock = key.fileobj
    assert isinstance(sock, socket.socket)
    if key.data == "listen":
        connection, _ = sock.accept()
        connection.settimeout(ANSWER_TIMEOUT)
        with connection, contextlib.suppress(OSError):
            peer, local = connection.getpeername()[0], connection.getsockname()[0]
            if connection.recv(1024):
                counts[f"{peer} {local} {HTTPS}"] += 1
                connection.sendall(b"lab ok\n")
        return
    data, peer = sock.recvfrom(65535)
    counts[f"{peer[0]} {sock.getsockname()[0]} {key.data}"] += 1
    if (answer := _answer(key.data, data)) is not None:
        with contextlib.suppress(OSError):
            sock.sendto(answer, peer)


class _Stop:
    """Whether to stop: stdin closed (when watched), SIGTERM, or the lifetime is over."""

    def __init__(self, lifetime: float, selector: selectors.BaseSelector) -> None:
        self.detached = lifetime == 0
        self.deadline = time.monotonic() + (MAX_DETACHED if self.detached else lifetime)
        self.selector = selector
        self.terminated = False
        self.lines: list[str] = []
        signal.signal(signal.SIGTERM, self._terminate)
        if not self.detached:
            selector.register(sys.stdin, selectors.EVENT_READ, "stdin")

    def _terminate(self, *_: object) -> None:
        self.terminated = True

    def __call__(self, wait: float = 0.0) -> bool:
        """Wait up to `wait` seconds for stdin; True when it is time to stop."""
        if self.terminated or time.monotonic() >= self.deadline:
            return True
        if self.detached:
            time.sleep(min(wait, self.deadline - time.monotonic()))
            return self.terminated
        for key, _ in self.selector.select(min(wait, self.deadline - time.monotonic())):
            if key.data == "stdin":
                line = sys.stdin.readline()
                if not line:
                    return True
                self.lines.append(line)
        return False


def serve(addresses: list[str], lifetime: float) -> None:
    """Serve and count until stopped; each stdin line is answered with the counts."""
    selector = selectors.DefaultSelector()
    stopped = _Stop(lifetime, selector)
    _listen(selector, addresses)
    counts: Counter[str] = Counter()
    print("ready", flush=True)
    while not stopped.terminated and (remaining := stopped.deadline - time.monotonic()) > 0:
        for key, _ in selector.select(min(remaining, 1.0)):
            if key.data != "stdin":
                _serve_one(selector, key, counts)
            elif not sys.stdin.readline():
                return
            else:
                print(json.dumps(counts), flush=True)


def main(argv: list[str]) -> int:
    """Entry point inside a namespace."""
    if len(argv) >= 3 and argv[0] == "serve":
        serve(argv[2:], float(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "play":
        beacons = [
            Beacon(**{**fields, "dsts": tuple(fields["dsts"])}) for fields in json.loads(argv[2])
        ]
        stopped = _Stop(float(argv[1]), selectors.DefaultSelector())
        print("ready", flush=True)
        play(beacons, stopped)
        print("done", flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


def beacons_json(beacons: list[Beacon]) -> str:
    """The `play` argument for these beacons."""
    return json.dumps([asdict(beacon) for beacon in beacons])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The faults every router emulator can inject, behind one small interface.

An emulator holds a ``Faults`` and asks it, for each request it receives (by the
name the emulator gives requests: ``object.method`` for ubus, ``METHOD path`` for
UniFi, ``poll`` / ``nft -f -`` / ... for SSH):

- ``arrived(name)``: runs the actions a test queued with ``on(name, action)``
  (once each, before the request is answered): expire the sessions, reboot;
- ``answer_with()``: the fault to answer the request with, if any:

  - ``DELAY``: answer after ``delay`` seconds (tests set the client's timeout below
    it; with a frozen clock, a test moves time on once ``held`` counts the request);
  - ``CUT``: announce the whole body, send half of it, close the connection;
  - ``HUGE``: a body of ``huge_size`` bytes (100 MiB), generated while it streams;
  - ``WRONG_SHAPE``: valid JSON that is not the shape the request promises.

Nothing is injected by default: an emulator without a fault answers as before.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

HUGE_SIZE: Final = 100 * 1024 * 1024
CHUNK: Final = 1024 * 1024


class Fault(StrEnum):
    """How a request is answered wrong."""

    DELAY = "delay"
    CUT = "cut"
    HUGE = "huge"
    WRONG_SHAPE = "wrong_shape"


@dataclass
class Faults:
    """What an emulator injects now; a test sets ``fault`` and queues actions with ``on``."""

    fault: Fault | None = None
    """Injected into every request while set."""
    delay: float = 1.0
    huge_size: int = HUGE_SIZE
    held: int = 0
    """Requests that a ``DELAY`` holds (counted when they arrive)."""
    huge_sent: int = 0
    """Bytes of huge bodies handed to the transport so far."""
    _actions: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def on(self, name: str, action: Callable[[], object]) -> None:
        """Run ``action`` once, when the next request whose name contains ``name`` arrives."""
        self._actions.append((name, action))

    def arrived(self, name: str) -> None:
        """A request arrived: run (and forget) the actions queued for it, in order."""
        due = [item for item in self._actions if item[0] in name]
        self._actions = [item for item in self._actions if item not in due]
        for _, action in due:
            action()

    @property
    def pending(self) -> bool:
        """Some queued action has not run yet."""
        return bool(self._actions)

    def answer_with(self) -> Fault | None:
        """The fault the arriving request gets, if any (a ``DELAY`` counts it in ``held``)."""
        if self.fault is None:
            return None
        self.held += self.fault is Fault.DELAY
        return self.fault

    def clear(self) -> None:
        """No fault and no queued action any more."""
        self.fault = None
        self._actions.clear()

    def huge(self, head: bytes, tail: bytes) -> Iterator[bytes]:
        """``head``, blanks up to ``huge_size`` bytes in all, ``tail``: 1 MiB at a time,
        never whole; ``huge_sent`` counts what was taken."""
        left = max(0, self.huge_size - len(head) - len(tail))
        blank = b" " * CHUNK
        for chunk in (
            head,
            *(blank[: min(left - done, CHUNK)] for done in range(0, left, CHUNK)),
            tail,
        ):
            yield chunk
            self.huge_sent += len(chunk)

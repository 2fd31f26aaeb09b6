"""Many boards' update sessions at once over one UDP socket on the field's access point.

A board on the access point gets its messages straight (its backbone address, port 4345). A
radio-only board gets them in a RELAY through an agent: first through every agent on the
access point (only an agent that relays the board's log knows its MAC and sends it on), then
through the one whose answer came back, until that one stops answering.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hosttools.firmware import update_wire
from hosttools.fleet import FIELD_PORT
from hosttools.ota.session import Session

W = update_wire()
AGENT_RATE = 80.0  # messages a second the laptop relays through one agent (the agent takes
AGENT_BURST = 8.0  # 100: fieldlog/backbone.py RELAY_RATE), so the cell's radio keeps its data
RELEASE_WAIT = 3.0  # s the boards on the access point wait for the radio-only ones' COMMIT


class Pace:
    """A token bucket per agent: what the laptop may relay through it now."""

    def __init__(self, agents: list[str], now: float) -> None:
        self.tokens = {a: AGENT_BURST for a in agents}
        self.at = now

    def refill(self, now: float) -> None:
        d = now - self.at
        self.at = now
        for a in self.tokens:
            self.tokens[a] = min(AGENT_BURST, self.tokens[a] + d * AGENT_RATE)

    def allowance(self, via: list[str]) -> int:
        return int(min((self.tokens.get(a, AGENT_BURST) for a in via), default=AGENT_BURST))

    def take(self, via: list[str]) -> None:
        for a in via:
            if a in self.tokens:
                self.tokens[a] -= 1


@dataclass
class Board:
    """One board's session and how to reach it."""

    name: str
    session: Session
    ip: str | None  # its backbone address; None: radio only, through an agent
    address: bytes  # its IPv4 home address (what a RELAY names)
    relay: bool = False  # an agent: radio-only boards' messages go through it
    via: str | None = None  # the agent whose last relayed answer came back
    timeouts: int = 0  # the session's timeouts in a row, as last seen
    sent: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def run(
    boards: list[Board],
    transport: Any,
    agents: list[str],
    on_progress: Callable[[Board], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run every session to its end (done or failed)."""
    by_node = {b.session.node: b for b in boards}

    def send(b: Board, msg: bytes) -> None:
        b.sent += 1
        if b.ip is not None:
            transport.sendto(msg, (b.ip, FIELD_PORT))
            return
        wrapped = W.relay(b.session.node, b.address, msg)
        for ip in [b.via] if b.via else agents:
            transport.sendto(wrapped, (ip, FIELD_PORT))

    pace = Pace(agents, clock())

    def poll(b: Board, now: float) -> None:
        if b.ip is not None:
            for msg in b.session.poll(now):
                send(b, msg)
            return
        s = b.session
        if b.via and (s.timeouts > b.timeouts or s.hellos >= 2):
            b.via = None  # that agent no longer reaches the board: ask every agent again
        b.timeouts = s.timeouts
        via = [b.via] if b.via else agents
        for msg in s.poll(now, pace.allowance(via)):
            send(b, msg)
            pace.take(via)
        if b.via and s.timeouts > b.timeouts:
            b.via = None
        b.timeouts = s.timeouts

    last_report = 0.0
    release_at: float | None = None
    while True:
        now = clock()
        pace.refill(now)
        live = [b for b in boards if not b.session.finished]
        staged = [b for b in live if b.session.state == "staged"]
        holding = [b for b in live if b.session.hold]
        if staged and len(staged) == len(holding):
            # every board that is to switch has its set: they switch in two waves. First every
            # board but the agents: the radio-only ones' COMMIT goes through an agent, which
            # must not be restarting, and a home agent or router that restarts after the agents
            # would forget the bindings the nodes make with the agents that came back. Then
            # the agents, once the first wave took its COMMIT (or RELEASE_WAIT later).
            first = [b for b in staged if not b.relay]
            if first:
                for b in first:
                    b.session.release(now)
                release_at = now + RELEASE_WAIT
            elif (
                release_at is None
                or now >= release_at
                or not any(not b.relay and b.session.state == "commit" for b in live)
            ):
                for b in staged:
                    b.session.release(now)
                release_at = None
        for b in live:
            poll(b, now)
        if on_progress and (now - last_report > 0.1 or not live):
            last_report = now
            for b in boards:
                on_progress(b)
        if not live:
            return
        wait = max(0.0, min(0.02, min(b.session.wake() for b in live) - clock()))
        r, _, _ = select.select([transport], [], [], wait)
        if not r:
            continue
        while True:
            got = transport.recv()
            if got is None:
                break
            data, addr = got
            if len(data) < W.HEAD + W.TAG:
                continue
            hit = by_node.get(int.from_bytes(data[2:4], "big"))
            if hit is None or not hit.session.on_message(clock(), data):
                continue
            if hit.ip is None:
                hit.via = addr[0]
            poll(hit, clock())

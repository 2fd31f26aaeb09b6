"""A mobile node's solicitor (docs/CORE.md "Mobile node": no agent, knowing the neighbours).

Unbound, it asks for service: routing first, then (after ``downgrade_after`` unanswered
attempts, never in the Mobile IPv4 baseline) host-to-host; one solicitation per
``sol_interval_ms`` for the first ``sol_fast`` attempts, then doubling up to ``sol_max_ms``
(RFC 5944 2.4: never more than one a second). The owner also sends single solicitations through
it (to hear every agent in range before choosing, to probe an agent it does not know yet).

Each solicitation carries a fresh challenge: an advertisement or host reply that echoes one of
the last two counts as an answer (``fresh``), which a recording cannot be.
"""

import struct

from mobility import advert, ipv4, ticks
from mobility.actions import BROADCAST, IF_RADIO
from mobility.compat import const
from mobility.errors import check_uint

_DEFAULT_INTERVAL_MS = const(1000)  # RFC 5944 2.4: at most one solicitation per second ...
_DEFAULT_FAST = const(3)  # ... for the first attempts, then exponential back-off ...
_DEFAULT_MAX_MS = const(8000)  # ... up to this spacing
_DEFAULT_DOWNGRADE_AFTER = const(1)  # unanswered routing solicitations before asking for hosts
_CHALLENGE_MS = const(2000)  # answers to a solicitation count as fresh this long after it
_PROBE_BOUND_MS = const(3000)  # bound: at most one solicitation per this for a better agent


class Solicitor:
    """``node``: the mobile node it solicits for (its address, cell key, randomness, action
    buffer and policy are read there: one reference, not five copies). ``next``: when the next
    solicitation of the search goes (ticks), None while the search is stopped (bound, or a
    registration in flight)."""

    def __init__(self, config, node, now):
        from mobility import settings

        self.interval_ms = settings.cfg_int(
            config, "sol_interval_ms", _DEFAULT_INTERVAL_MS, 1000, 600000
        )
        self.fast = settings.cfg_int(config, "sol_fast", _DEFAULT_FAST, 1, 1000)
        self.max_ms = settings.cfg_int(
            config, "sol_max_ms", _DEFAULT_MAX_MS, self.interval_ms, 3600000
        )
        self.downgrade_after = settings.cfg_int(
            config, "downgrade_after", _DEFAULT_DOWNGRADE_AFTER, 0, 255
        )
        self.node = node
        self.level = advert.LEVEL_ROUTING
        self.attempt = 0
        self.gap = self.interval_ms
        self.next = ticks.add(now, node.rand(8) % 32)  # boot: ask soon, not in step with others
        self.last = None  # when the last solicitation of any kind went
        self.challenge = 0  # of the last solicitation (0: none), and of the one before
        self.challenge_prev = 0

    def quiet(self, now, ms):
        """True when no solicitation went in the last ``ms``."""
        return self.last is None or ticks.diff(now, self.last) >= ms

    def soon(self, now):
        """(Re)start the search: now, or as soon as the 1/s limit allows."""
        if self.last is not None and ticks.diff(now, self.last) < self.interval_ms:
            self.next = ticks.add(self.last, self.interval_ms)
        else:
            self.next = now

    def stop(self):
        """Bound: the search is over; the next one starts again from routing, at full pace."""
        self.level = advert.LEVEL_ROUTING
        self.attempt = 0
        self.gap = self.interval_ms
        self.next = None

    def ask(self, now):
        """Unbound, an agent was heard: one routing solicitation (within the 1/s limit), so
        that every agent in range answers and the node chooses among them."""
        if self.quiet(now, self.interval_ms):
            self.send(now, advert.LEVEL_ROUTING)

    def probe(self, now, iface, mac, addr):
        """Bound, an agent not in the table was heard: a solicitation to that agent alone, so
        that it answers with our challenge (which takes it into the table). In a dense field a
        broadcast one is answered by every agent in range at once, and those answers (most
        from agents the node would never choose) collide."""
        if self.quiet(now, _PROBE_BOUND_MS):
            self.send(now, advert.LEVEL_ROUTING, iface, mac, addr)

    def check(self, now, info):
        """Bound, the serving agent ``info``'s advertisement is overdue: a solicitation to it
        alone. A live agent acknowledges it at the link layer (and answers); a dead one does
        not, and the failed send tells the owner at once (docs/CORE.md "Loss detection"). It
        does not count against the pace of the other solicitations."""
        last = self.last
        self.send(now, advert.LEVEL_ROUTING, info.iface, info.mac, info.addr)
        if last is not None:
            self.last = last

    def solicit(self, now):
        """The search's next solicitation is due."""
        sol = self.send(now, self.level)
        self.attempt += 1
        if self.attempt >= self.fast:
            self.gap = min(self.gap * 2, self.max_ms)  # exponential back-off
        self.next = ticks.add(now, self.gap)
        self.node.log("solicit", {"level": sol.level, "attempt": sol.attempt, "next_ms": self.gap})
        if (
            self.node.roam  # the Mobile IPv4 baseline never falls back to host-to-host
            and self.level == advert.LEVEL_ROUTING
            and self.attempt >= self.downgrade_after
        ):
            self.level = advert.LEVEL_HOST
            self.node.log(
                "downgrade",
                {
                    "from": advert.LEVEL_ROUTING,
                    "to": advert.LEVEL_HOST,
                    "attempts": self.attempt,
                },
            )
            self.next = ticks.add(now, self.interval_ms)

    def send(self, now, level, iface=IF_RADIO, mac=BROADCAST, dst=ipv4.BCAST_ADDR):
        """One solicitation at ``level`` (broadcast, or to one agent), under a new challenge."""
        node = self.node
        self.challenge_prev = self.challenge
        self.challenge = node.rand(32) | 1  # never 0 ("no challenge")
        sol = advert.Solicitation(
            src=node.address,
            level=level,
            attempt=min(self.attempt, 255),
            dst=dst,
            challenge=self.challenge,
        )
        node.out.send(iface, mac, encode_solicitation(sol, node.cell_key))
        self.last = now
        return sol

    def fresh(self, now, adv):
        """True for an answer to one of our last two solicitations, sent within _CHALLENGE_MS:
        it echoes a challenge that did not exist before, so it cannot be a recording."""
        c = adv.challenge
        return (
            c != 0
            and adv.dst == self.node.address
            and (c == self.challenge or c == self.challenge_prev)
            and ticks.diff(now, self.last) <= _CHALLENGE_MS
        )


def encode_solicitation(sol, key):
    """The IPv4 packet of ``sol`` signed with ``key``; key None leaves out the authentication.
    (Here, not in advert.py, which agents load too: only nodes and hosts solicit.)"""
    ipv4.check_addr(sol.src, "src")
    ipv4.check_addr(sol.dst, "dst")
    n = 8 + 4 + (0 if key is None else advert.AUTH_EXT_LEN)
    buf = bytearray(n)
    buf[0] = advert.ICMP_SOLICIT
    struct.pack_into(">I", buf, 4, check_uint(sol.challenge, 32, "challenge"))  # the reserved word
    buf[8] = advert.EXT_SOLICIT
    buf[9] = 2
    buf[10] = check_uint(sol.level, 8, "level")
    buf[11] = check_uint(sol.attempt, 8, "attempt")
    return advert.finish(buf, key, sol.spi, 12, sol.src, sol.dst)

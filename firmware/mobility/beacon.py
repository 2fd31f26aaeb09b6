"""What a foreign agent announces in its cell (docs/CORE.md "Agent"): an advertisement every
interval with +-10 % jitter (so agents do not stay in step), and an answer to each authentic
solicitation, unicast to the solicitor's MAC and rate-limited per solicitor. Each carries the
agent's services, capacity and load (its visitor list), its planned outage and its boot nonce.
"""

from mobility import advert, ipv4, ticks

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


ANSWERS_HELD = const(32)  # solicitors remembered for the rate limit
SEQ_WRAP_TO = const(256)  # RFC 5944 2.1.1: after 0xffff the sequence continues at 256
_BCAST_MAC = b"\xff" * 6


class Beacon:
    """The advertisements of ``agent`` (its address, cell key, log, randomness, ``visitors``
    and planned outage): every ``interval_ms`` on interface ``iface``, valid ``lifetime_s``;
    at most one answer per solicitor per ``answer_gap_ms``."""

    def __init__(self, agent, now, interval_ms, lifetime_s, services, iface, answer_gap_ms):
        self.agent = agent
        self.interval_ms = interval_ms
        self.lifetime_s = lifetime_s
        self.services = services
        self.iface = iface
        self.answer_gap_ms = answer_gap_ms
        self.seq = 0
        self.next_at = ticks.add(now, agent.rand(16) % (interval_ms // 4 + 1))
        self._answers = {}  # addr_key(solicitor) -> when we last answered it

    def on_timer(self, now):
        """Advertise when the next advertisement is due."""
        if ticks.diff(now, self.next_at) >= 0:
            self._advertise(now, ipv4.BCAST_ADDR, _BCAST_MAC, self.iface)
            j = self.interval_ms // 10  # +-10 % jitter: agents do not stay in step
            self.next_at = ticks.add(now, self.interval_ms - j + self.agent.rand(16) % (2 * j + 1))

    def on_solicitation(self, now, iface, src_mac, sol):
        if not self.agent.check_solicitation(sol, src_mac):
            return
        k = ipv4.addr_key(sol.src, 0)
        last = self._answers.get(k)
        if last is not None and ticks.diff(now, last) < self.answer_gap_ms:
            return  # rate limit (a replayed burst): the solicitor asks again later
        if len(self._answers) >= ANSWERS_HELD:
            self._answers.clear()
        self._answers[k] = now
        # Unicast back to the MAC and interface the solicitation came from: no route needed.
        self._advertise(now, sol.src, src_mac, iface, sol.challenge)

    def _advertise(self, now, dst, mac, iface, challenge=0):
        a = self.agent
        v = a.visitors
        load = len(v.bindings)
        flags = advert.FLAG_R | advert.FLAG_F
        if load >= v.capacity:
            flags |= advert.FLAG_B
        outage_in = advert.OUTAGE_NONE
        outage_for = 0
        if a.outage_start is not None:
            outage_in = max(0, (ticks.diff(a.outage_start, now) + 999) // 1000)
            if outage_in >= advert.OUTAGE_NONE:
                outage_in = advert.OUTAGE_NONE - 1
            outage_for = a.outage_for_s
        adv = advert.Advertisement(
            src=a.address,
            dst=dst,
            adv_lifetime=self.lifetime_s,
            seq=self.seq,
            reg_lifetime=v.reg_lifetime_s,
            flags=flags,
            services=self.services,
            capacity=v.capacity,
            load=min(load, 255),
            outage_in=outage_in,
            outage_for=outage_for,
            nonce=a.nonce,
            challenge=challenge,
        )
        a.out.send(iface, mac, advert.encode_advertisement(adv, a.cell_key))
        self.seq = self.seq + 1 if self.seq < 0xFFFF else SEQ_WRAP_TO

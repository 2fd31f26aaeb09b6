"""A mobile node's direct table (docs/CORE.md "Mobile node": no agent).

Without an agent, the hosts that answered its host-level solicitation, each with the MAC that
reaches it directly: datagrams to them go there, and nowhere else (nodes never forward for
others). An entry lasts the reply's lifetime, refreshed by later replies, and goes on silence
or after the owner's limit of failed sends in a row. Host replies are replay-checked per host
(``window``, which outlives the entries: a recording of a host's reply stays refused).
"""

from mobility import advert, advreplay, ipv4, ticks
from mobility.compat import const
from mobility.node import due, fmt_mac, soonest

# an entry: [address, MAC, interface, expiry (ticks), failed sends in a row]
_H_ADDR = const(0)
_H_MAC = const(1)
_H_IFACE = const(2)
_H_EXPIRY = const(3)
_H_FAILS = const(4)

_DEFAULT_MAX_HOSTS = const(16)

# what take() made of a host reply: the first four are rejections, logged as REJECTED[it]
FORGED = const(0)
STALE = const(1)
REPLAYED = const(2)
RELAYED = const(3)  # sent on by a station other than the host its signed MAC names
IGNORED = const(4)  # bound (everything goes through the agent), or a new host and no room
_KEPT = const(5)  # the host as held: its lifetime starts again
NEW = const(6)  # a host (or a host at a new MAC) entered
REJECTED = ("auth", "stale", "replay", "relayed")


class HostTable:
    def __init__(self, config, out, keys):
        from mobility import settings

        self.capacity = settings.cfg_int(config, "max_hosts", _DEFAULT_MAX_HOSTS, 0, 255)
        self.out = out
        self.keys = keys
        self.table = {}  # addr_key -> entry (H_*)
        self.window = advreplay.AdvWindow()
        self.next_silence = None  # a lower bound of the expiries, kept without scans

    def take(self, now, iface, mac, adv, fresh, bound):
        """A host reply: what it made of it (FORGED ... NEW). ``fresh``: it answers our
        solicitation; a host reply only ever does, so without our current challenge it is a
        recording (perhaps of a reply we never received). ``bound``: we have an agent."""
        if not adv.verify(self.keys):
            return FORGED
        if advert.relayed(adv, mac):
            return RELAYED  # a copy sent on by a third station (agenttable.take)
        if not fresh:
            return STALE
        k = ipv4.addr_key(adv.src, 0)
        # nonce field: the host's epoch (16) || its reply sequence (16)
        seq = adv.nonce & 0xFFFF
        if self.window.accept(k, seq, adv.nonce - seq, now) == advreplay.REPLAY:
            return REPLAYED
        if bound:
            return IGNORED
        h = self.table.get(k)
        expiry = ticks.add(now, adv.adv_lifetime * 1000)
        if h is None or h[_H_ADDR] != adv.src or h[_H_MAC] != mac:
            if h is None and len(self.table) >= self.capacity:
                return IGNORED
            self.table[k] = [bytes(adv.src), bytes(mac), iface, expiry, 0]
            done = NEW
        else:
            h[_H_EXPIRY] = expiry
            h[_H_FAILS] = 0
            done = _KEPT
        if self.next_silence is None or ticks.diff(expiry, self.next_silence) < 0:
            self.next_silence = expiry
        if done == NEW:
            self.out.log("host_up", {"host": ipv4.ntoa(adv.src), "mac": fmt_mac(mac)})
        return done

    def send(self, dst, pkt):
        """Send ``pkt`` straight to host ``dst``; False when it is not in the table."""
        h = self.table.get(ipv4.addr_key(dst, 0))
        if h is None or h[_H_ADDR] != dst:
            return False
        self.out.send(h[_H_IFACE], h[_H_MAC], pkt)
        return True

    def lost(self, k, cause):
        h = self.table.pop(k)
        self.out.log("host_lost", {"host": ipv4.ntoa(h[_H_ADDR]), "cause": cause})

    def expire(self, now):
        """Drop the hosts whose lifetime ran out; the silence bound becomes the first expiry
        left."""
        t = self.table
        for k in [k for k in t if due(now, t[k][_H_EXPIRY])]:
            self.lost(k, "silence")
        nxt = None
        for k in t:
            nxt = soonest(now, nxt, t[k][_H_EXPIRY])
        self.next_silence = nxt

    def link_failure(self, mac, limit):
        """A unicast to ``mac`` failed: the host there is lost after ``limit`` in a row."""
        t = self.table
        for k in t:
            h = t[k]
            if h[_H_MAC] == mac:
                h[_H_FAILS] += 1
                if h[_H_FAILS] >= limit:
                    self.lost(k, "link")
                break

    def heard(self, mac):
        """A frame from ``mac``: the link to a host there works. True while some host still has
        failed sends counted."""
        failing = False
        t = self.table
        for k in t:
            h = t[k]
            if h[_H_MAC] == mac:
                h[_H_FAILS] = 0
            elif h[_H_FAILS]:
                failing = True
        return failing

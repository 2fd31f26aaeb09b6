"""A mobile node's direct table (docs/CORE.md "Mobile node": no agent).

Without an agent, the hosts that answered its host-level solicitation, each with the MAC that
reaches it directly: datagrams to them go there, and nowhere else (nodes never forward for
others). An entry lasts the reply's lifetime, refreshed by later replies, and goes on silence
or after the owner's limit of failed sends in a row. Host replies are replay-checked per host
(``window``, which outlives the entries: a recording of a host's reply stays refused).
"""

from mobility import ipv4, replay
from mobility.node import due, fmt_mac, soonest

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


# an entry: [address, MAC, interface, expiry (ticks), failed sends in a row]
H_ADDR = const(0)
H_MAC = const(1)
H_IFACE = const(2)
H_EXPIRY = const(3)
H_FAILS = const(4)

# what put() did
FULL = const(0)  # a new host, no room: not taken
KEPT = const(1)  # the host as held: its lifetime starts again
NEW = const(2)  # a host (or a host at a new MAC) entered


class HostTable:
    def __init__(self, out, capacity):
        self.out = out
        self.capacity = capacity
        self.table = {}  # addr_key -> entry (H_*)
        self.window = replay.AdvWindow()

    def accept(self, now, k, adv):
        """Replay check of an authentic host reply; the nonce field holds the host's epoch (16)
        || its reply sequence (16)."""
        seq = adv.nonce & 0xFFFF
        return self.window.accept(k, seq, adv.nonce - seq, now) != replay.REPLAY

    def put(self, k, addr, mac, iface, expiry):
        h = self.table.get(k)
        if h is None or h[H_ADDR] != addr or h[H_MAC] != mac:
            if h is None and len(self.table) >= self.capacity:
                return FULL
            self.table[k] = [bytes(addr), bytes(mac), iface, expiry, 0]
            self.out.log("host_up", {"host": ipv4.ntoa(addr), "mac": fmt_mac(mac)})
            return NEW
        h[H_EXPIRY] = expiry
        h[H_FAILS] = 0
        return KEPT

    def send(self, dst, pkt):
        """Send ``pkt`` straight to host ``dst``; False when it is not in the table."""
        h = self.table.get(ipv4.addr_key(dst, 0))
        if h is None or h[H_ADDR] != dst:
            return False
        self.out.send(h[H_IFACE], h[H_MAC], pkt)
        return True

    def lost(self, k, cause):
        h = self.table.pop(k)
        self.out.log("host_lost", {"host": ipv4.ntoa(h[H_ADDR]), "cause": cause})

    def expire(self, now, nxt):
        """Drop the hosts whose lifetime ran out; the earlier of ``nxt`` and the first expiry
        left."""
        t = self.table
        for k in [k for k in t if due(now, t[k][H_EXPIRY])]:
            self.lost(k, "silence")
        for k in t:
            nxt = soonest(now, nxt, t[k][H_EXPIRY])
        return nxt

    def link_failure(self, mac, limit):
        """A unicast to ``mac`` failed: the host there is lost after ``limit`` in a row."""
        t = self.table
        for k in t:
            h = t[k]
            if h[H_MAC] == mac:
                h[H_FAILS] += 1
                if h[H_FAILS] >= limit:
                    self.lost(k, "link")
                break

    def heard(self, mac):
        """A frame from ``mac``: the link to a host there works. True while some host still has
        failed sends counted."""
        failing = False
        t = self.table
        for k in t:
            h = t[k]
            if h[H_MAC] == mac:
                h[H_FAILS] = 0
            elif h[H_FAILS]:
                failing = True
        return failing

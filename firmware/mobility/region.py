"""Mobility region: publication of local bindings by flooding, the published-binding table, and
tunnelling across the region's backbone.

A ``Region`` is a component owned by a region member (a foreign agent, or a router that has no
cell). It shares its owner's action buffer and is fed by it:

* the owner's local bindings: ``local_up`` (made or refreshed) and ``local_down`` (ended);
* publications that arrived (UDP 4344): ``on_publication``;
* IP-in-IP packets that arrived: ``on_tunnel`` (forwarded on, or de-tunnelled for the owner);
* its timer: ``on_timer`` / ``next_wake``.

Flooding (docs/REGION.md): an origin signs each publication with the region key; a member
accepts it only when it is new for that origin, by ``(epoch, seq)`` with RFC 1982 comparison,
and then re-sends the *same payload bytes* to every neighbour but the one it came from. So each
member transmits a given publication at most once and the flood ends by itself. The neighbour
the first copy came from is the next hop toward the origin (reverse path of the flood), which is
how tunnels find their way across a multi-hop backbone.

The region coordinates four components, one role each: ``Backbone`` (backbone.py: members,
peers, routes, next hops; sending and flooding), ``Publisher`` (publisher.py: this member as an
origin), ``Origins`` (published.py: what was taken from each origin) and ``Published``
(published.py: the published-binding table, preallocated).
"""

from mobility import auth, ipv4, publication, ticks, tunnel
from mobility.backbone import Backbone
from mobility.compat import const
from mobility.errors import DecodeError, FrameTooLarge
from mobility.published import REFUSED, RESTARTED, REVERTED, Origins, Published
from mobility.publisher import IDLE, Publisher
from mobility.reliable import Reliable

_DEFAULT_HOLD_OFF_MS = const(2000)  # changes are batched this long before they are published
_DEFAULT_REPUBLISH_MS = const(30000)  # period of the full snapshot
_DEFAULT_DUP_HOLD_MS = const(400)  # how long a late (reordered) part of a batch is accepted
_SWEEP_MS = const(5000)  # how often expired published bindings are removed
# publish, tunnel by published bindings, correspondent and proxy bindings (the other policy,
# "mip4", the baseline: no publication, everything through the home agent; settings.policy)
POLICY_ROAM = "roam"
TUNNEL_TTL = const(64)


class Region:
    """Publication flooding, the published-binding table and backbone routing of one member.

    ``config`` is the region dict of docs/REGION.md; ``own`` the member's address (it must be a
    member); ``keys`` its ``auth.Keys`` (the region key, SPI 0x200, signs publications); ``out``
    the owner's action buffer; ``epoch`` the owner's boot counter (kept in flash, +1 per boot).
    """

    def __init__(self, config, own, keys, out, epoch=0):
        from mobility import settings

        self.policy = settings.region_config(config, keys)
        self.name = config.get("name", "region")
        self.own = settings.region_addr(own, "own")
        self._own_key = ipv4.addr_key(self.own, 0)
        self.keys = keys
        self.out = out
        self.backbone = Backbone(config, self.own, out)
        self.publishing = self.policy == POLICY_ROAM
        hold_off, republish, dup_hold, max_published = settings.region_periods(
            config, _DEFAULT_HOLD_OFF_MS, _DEFAULT_REPUBLISH_MS, _DEFAULT_DUP_HOLD_MS
        )
        key = keys.get(auth.SPI_REGION)
        # acknowledgement and retransmission per neighbour (reliable.py): every flood goes
        # through it, the origin's own publications and the relayed ones
        self.reliable = Reliable(self.backbone, keys, key, out)
        self.publisher = Publisher(
            self.own, epoch, key, self.reliable, out, hold_off, republish, dup_hold + 1
        )
        # what is held of an origin silent for a snapshot period (and a hold-off) no longer judges
        # its publications: a lock-out that nothing else undid ends then (Origins)
        self.origins = Origins(self.backbone.n_members, dup_hold, republish + hold_off)
        self.table = Published(max_published, config.get("_table"))
        # the owner's word when another member's binding of a home was taken: (now, home,
        # that member's address), or None (an agent ends its own binding of a node that
        # registered there since: Agent._bound_elsewhere)
        self.bound_elsewhere = None
        self._sweep_at = 0
        # counters (read by tests, benchmarks and the simulator's metrics)
        self.forwarded = 0  # publications accepted from a neighbour (each re-sent once)
        self.duplicates = 0
        self.rejected = 0
        self.refused_tunnels = 0  # tunnels not admitted (Region.admits)

    def _log(self, name, fields):
        self.out.log(name, fields)

    def start(self, now):
        """Begin publishing: the first publication after a boot is a full snapshot (so the
        others recognise the new epoch), one hold-off from now."""
        if self.publisher.state != IDLE:
            return
        self.publisher.start(now)
        self._sweep_at = ticks.add(now, _SWEEP_MS)
        self._log("region_start", {"region": self.name, "epoch": self.publisher.epoch})

    # ---- this member's local bindings ------------------------------------------------------

    def local_up(self, now, home, lifetime_ms, urgent=False):
        """A local binding was made or refreshed (Publisher.up); ``urgent``: a new one of a
        node that came bound nowhere else (it lost its agent: no forwarding pointer)."""
        self.start(now)
        if self.publishing:
            # the others hold the node at another member: it came back to us while our binding
            # still ran (it had left by losing us, without a deregistration), so what is a
            # refresh here is news to them (held as a refresh, it waited for the snapshot while
            # the one it had left forwarded, then dropped, its traffic)
            oi = self.table.origin(now, home, 0)
            news = oi >= 0 and oi != self.backbone.me
            if news:
                # what we hold of another member for the node is older than this
                # registration: kept, it would be our route once our binding ends, to where
                # the node was before (and that member, holding ours, tunnels back: a loop
                # until the TTL ran out: docs/REGION.md "Our own binding supersedes"). A
                # member that publishes the node after this registration is where it went.
                self.table.withdraw(home, oi)
            self.publisher.up(
                now, home, lifetime_ms, self.origins.dup_hold + 1 if urgent else 0, news
            )

    def local_down(self, now, home):
        """A local binding ended (released, expired, or the node moved away): withdraw it."""
        self.start(now)
        if self.publishing:
            self.publisher.down(now, home)

    def local_moved(self, now, home, coa):
        """Our local binding for ``home`` ended because the node registered with member
        ``coa`` (its deregistration named that agent; docs/REGION.md "Forwarding pointer").
        The new agent publishes after its hold-off, which may still run for up to
        ``hold_off_ms``; meanwhile the others still tunnel to us. So instead of withdrawing
        at once, we keep a short-lived entry pointing at ``coa`` (replaced by coa's own
        publication when it arrives) and tunnel what still reaches us there; the withdrawal
        of our binding rides on our next snapshot. Not a member: withdrawn as usual."""
        self.start(now)
        oi = self.backbone.member(coa, 0)
        if not self.publishing or oi < 0 or coa == self.own:
            self.local_down(now, home)
            return
        self.publisher.handed_over(home)
        if self.table.origin(now, home, 0) == oi:
            return  # coa's publication is already here
        if not self.table.bind(now, home, 2 * self.publisher.hold_off, oi, 2):
            self.local_down(now, home)

    # ---- timer ---------------------------------------------------------------------------

    def next_wake(self):
        """When ``on_timer`` must run next (ticks ms), or None before ``start``."""
        t = self.publisher.next_wake()
        if t is None or not self.publishing:
            return None
        if ticks.diff(self._sweep_at, t) < 0:
            t = self._sweep_at
        return self.reliable.next_wake(t)

    def on_timer(self, now):
        self.start(now)
        if not self.publishing:
            return
        self.publisher.on_timer(now)
        self.reliable.on_timer(now)
        if ticks.diff(now, self._sweep_at) >= 0:
            dead = self.table.sweep(now)
            if dead:
                self._log("published_expired", {"count": dead})
            self.publisher.expire(now)
            self.origins.age(now)
            self._sweep_at = ticks.add(now, _SWEEP_MS)

    # ---- receiving publications ----------------------------------------------------------

    def on_publication(self, now, src, payload, iface, src_mac):
        """A publication (UDP 4344 ``payload``) arrived from the neighbour whose address is
        ``src``, over ``iface`` from link address ``src_mac``. Accepted once per origin (epoch,
        seq), applied, and re-sent byte for byte to every other neighbour. Returns True when it
        was accepted. The IP source must be a member neighbour, the frame must have come over
        that neighbour's own link, and a new one must end with the hop tag that neighbour
        computed for us: the neighbour it names becomes the next hop toward the origin, and
        neither an IP source nor a link address is signed."""
        self.start(now)
        if not self.publishing:
            self._log("region_ignored", {"reason": "policy_mip4", "src": ipv4.ntoa(src)})
            return False
        nb = self.backbone.member_neighbour(src, 0)
        if nb < 0 or not self.backbone.via(nb, iface, src_mac):
            self.rejected += 1
            self._log(
                "region_ignored",
                {"reason": "not_neighbour" if nb < 0 else "wrong_link", "src": ipv4.ntoa(src)},
            )
            return False
        if len(payload) > 1 and payload[0] == publication.MSG_ACK:
            c = self.reliable.on_ack(now, nb, payload)
            if c < 0:
                self.rejected += 1
                self._log(
                    "drop",
                    {
                        "reason": "auth" if c == -2 else "decode",
                        "what": "ack",
                        "src": ipv4.ntoa(src),
                    },
                )
            return False
        if self._taken(now, payload, 0):
            # a copy of one already taken (most copies of a flood are): dropped before it is
            # decoded and its HMAC checked, which changes nothing, as after it (anything that
            # could be new is decoded and its tag checked first); acknowledged all the same (it
            # may be a retransmission whose acknowledgement was lost)
            self.duplicates += 1
            self.reliable.copy_from(now, nb, payload, 0, len(payload))
            return False
        # the hop tag: the neighbour the IP source names sent this copy to us (it teaches the
        # next hop toward the origin, and neither an IP source nor a link address is signed)
        n = publication.hop_checked(self.keys, payload, src, self.own)
        if n < 0:
            self.rejected += 1
            self._log("drop", {"reason": "hop", "what": "publication", "src": ipv4.ntoa(src)})
            return False
        payload = memoryview(payload)[0:n]
        try:
            pub = publication.decode_publication(payload)
        except DecodeError as e:
            self.rejected += 1
            self._log("drop", {"reason": "decode", "what": "publication", "error": str(e)})
            return False
        oi = self.backbone.member(pub.origin, 0)
        if pub.spi != auth.SPI_REGION or not pub.verify(self.keys):
            self.rejected += 1
            self._log("drop", {"reason": "auth", "what": "publication", "src": ipv4.ntoa(src)})
            return False
        # authentic: acknowledged whatever becomes of it (retransmitting it would not change
        # that)
        self.reliable.ack_later(now, nb, payload, 0)
        if oi < 0:
            self.rejected += 1
            self._log("region_ignored", {"reason": "not_member", "origin": ipv4.ntoa(pub.origin)})
            return False
        first = self.origins.epoch[oi] < 0
        taken = self.origins.accept(now, oi, pub.epoch, pub.seq)
        if taken == REFUSED:
            self.duplicates += 1
            return False
        if taken == RESTARTED:
            self.table.drop_origin(oi)  # what it published before the restart was in its RAM
            self._log(
                "origin_restart",
                {"origin": ipv4.ntoa(pub.origin), "epoch": pub.epoch, "was": self.origins.was},
            )
        elif taken == REVERTED:
            # the origin's own line went on under a jump nothing continued: the jump was not
            # the origin's (a forgery by a region-key holder); its next snapshot repairs the rest
            self._log(
                "origin_revert",
                {"origin": ipv4.ntoa(pub.origin), "epoch": pub.epoch, "was": self.origins.was},
            )
        if first or taken == RESTARTED:
            # a member new to us, or back with an empty memory, missed what we published
            self.publisher.resync(now)
        self.backbone.hop[oi] = nb  # the first copy came this way: the next hop toward it
        self._apply(now, oi, pub)
        self.forwarded += 1
        self.reliable.flood(now, payload, nb)
        return True

    def stale_copy(self, now, frame, iface, src_mac):
        """True when ``frame``, an IPv4 packet for this member not decoded yet that came over
        ``iface`` from ``src_mac``, is a copy of a publication already taken, from a region
        neighbour (counted as a duplicate), or a publication under a neighbour's address that
        did not come over that neighbour's link (counted as rejected, not logged: an outsider's
        flood of those costs a few microseconds each, no decoding). The owner drops it then
        without computing its checksums or decoding it: that changes nothing a full decode
        would change, since either is dropped there too, damaged or not. Anything else (False)
        goes the normal way: decoded, checked, on_publication."""
        if (
            not self.publishing
            or not publication.is_publication(frame)
            or ipv4.addr_key(frame, ipv4.DST_AT) != self._own_key
            or frame[ipv4.DST_AT] != self.own[0]  # (the two bits the key leaves out)
        ):
            return False
        nb = self.backbone.member_neighbour(frame, ipv4.SRC_AT)
        if nb < 0:
            return False
        if not self.backbone.via(nb, iface, src_mac):
            self.rejected += 1
            return True
        if not self._taken(now, frame, publication.PAYLOAD_AT):
            return False
        self.duplicates += 1
        # the payload ends where the IPv4 total length says (a link may pad the frame), and
        # within the frame whatever it says
        end = (frame[2] << 8) | frame[3]
        if end > len(frame):
            end = len(frame)
        self.reliable.copy_from(
            now, nb, frame, publication.PAYLOAD_AT, end - publication.PAYLOAD_AT
        )
        return True

    def _taken(self, now, buf, off):
        """True when the publication payload at buf[off:] is one already taken (or our own), as
        far as its origin, epoch and sequence go; changes nothing."""
        if not publication.is_copy_candidate(buf, off):
            return False
        oi = self.backbone.member(buf, off + publication.ORIGIN_AT)
        return oi >= 0 and (
            oi == self.backbone.me
            or self.origins.stale(
                now, oi, publication.epoch_at(buf, off), publication.seq_at(buf, off)
            )
        )

    def _apply(self, now, oi, pub):
        table = self.table
        # a full snapshot's parts tell which of the origin's bindings it no longer has
        # (Origins.snapshot_begin); any other publication only adds and withdraws
        left = None
        if pub.full:
            if pub.part == 0:
                left = self.origins.snapshot_begin(oi, table.origin_homes(oi))
            else:
                left = self.origins.snapshot_part(oi, pub.part)
        for home, life_s in pub.bindings:
            if left is not None:
                left.discard(home)
            if life_s == 0:
                table.withdraw(home, oi)
                continue
            if not table.bind(now, home, life_s * 1000, oi, 1):
                self._log("drop", {"reason": "region_full", "home": ipv4.ntoa(home)})
            elif self.bound_elsewhere is not None:
                self.bound_elsewhere(now, home, pub.origin)
        for home in pub.withdrawals:
            table.withdraw(home, oi)
        if left is not None and pub.last:
            self.origins.snapshot_done(oi)
            n = 0
            for home in left:
                if table.withdraw(home, oi):
                    n += 1
            if n:
                self._log("snapshot_removed", {"origin": ipv4.ntoa(pub.origin), "count": n})

    # ---- lookups -------------------------------------------------------------------------

    def published(self, now, buf, off=0):
        """The member index of the agent that published a binding for the address at
        ``buf[off:off+4]``, or -1. No allocation (a forwarding-path lookup)."""
        return self.table.origin(now, buf, off)

    def newer_elsewhere(self, now, home, expiry):
        """True when another member published a binding for ``home`` that expires at least
        two units (about 2 s) after ``expiry``, our local binding's: the node registered there
        after it last registered here (agents grant the same lifetimes). A stale binding of
        the other agent (the node left it without deregistering) expires earlier than ours
        and does not count, so two agents that both fail to reach the node never both give
        it up."""
        return self.table.outlasts(now, home, expiry)

    def bindings(self, now):
        """{home address: origin address} of every unexpired published binding (for tests,
        reports and the CLI; allocates)."""
        t = self.table
        found = {}
        for i in range(t.size):
            if t.value_at(i):
                home = t.address(i)
                oi = t.origin(now, home, 0)
                if oi >= 0:
                    found[home] = self.backbone.address(oi)
        return found

    def published_addr(self, now, home):
        """The address of the agent holding ``home``'s published binding, or None."""
        oi = self.table.origin(now, home, 0)
        return self.backbone.address(oi) if oi >= 0 else None

    # ---- tunnelling ----------------------------------------------------------------------

    def tunnel(self, now, datagram, oi):
        """Tunnel ``datagram`` (an IPv4 packet) IP-in-IP to member ``oi`` over the backbone.
        Returns True when sent; every refusal is logged as a drop with its reason."""
        if publication.is_publication(datagram):
            self._log("drop", {"reason": "publication_in_tunnel"})
            return False
        dst = self.backbone.address(oi)
        nb = self.backbone.next_hop(dst)
        if nb < 0:
            self._log("drop", {"reason": "no_route", "to": ipv4.ntoa(dst)})
            return False
        inner = bytearray(datagram)
        if not ipv4.dec_ttl(inner):
            self._log("drop", {"reason": "ttl", "what": "tunnel entry"})
            return False
        try:
            outer = tunnel.encapsulate(self.own, dst, inner, TUNNEL_TTL)
        except FrameTooLarge:
            self._log("drop", {"reason": "mtu", "len": len(inner)})
            return False
        self.backbone.send(nb, outer)
        return True

    def admits(self, header, iface, src_mac):
        """The peer a tunnel (``header``: its decoded outer header) came from over ``iface``
        from link address ``src_mac``, when it may be taken, else -1 (logged). Tunnels come
        only over the link of a configured backbone peer: a member neighbour (which admitted
        it by this same rule, or is its entry), or a host (a home agent, a correspondent)
        with a tunnel of its own (outer source = that host). Anything else, e.g. a frame from
        a cell or a spoofed source on the access point, is not decapsulated or forwarded."""
        bb = self.backbone
        nb = bb.link_peer(iface, src_mac)
        if nb >= 0 and (bb.is_member[nb] or bb.addr[nb] == header.src):
            return nb
        self.refused_tunnels += 1
        self._log("drop", {"reason": "tunnel_source", "src": ipv4.ntoa(header.src)})
        return -1

    def on_tunnel(self, now, frame, header, iface, src_mac):
        """An IP-in-IP packet arrived on the backbone (``header`` = its decoded outer header)
        over ``iface`` from ``src_mac``; taken only as ``admits`` says. Not for this member:
        forwarded toward the outer destination (outer TTL decremented; a packet that runs out
        of TTL was looping or lost its way, and is logged), never back over the link it came
        by (the two ends disagree on the way: it would bounce until its TTL ran out). For this
        member: returns the inner datagram (bytes) for the owner to deliver, else None."""
        came = self.admits(header, iface, src_mac)
        if came < 0:
            return None
        if header.dst != self.own:
            nb = self.backbone.next_hop(header.dst)
            if nb < 0:
                self._log("drop", {"reason": "no_route", "to": ipv4.ntoa(header.dst)})
                return None
            if nb == came:
                self._log("drop", {"reason": "loop", "to": ipv4.ntoa(header.dst)})
                return None
            buf = bytearray(frame[: header.length])
            if not ipv4.dec_ttl(buf):
                self._log("drop", {"reason": "ttl", "what": "tunnel", "to": ipv4.ntoa(header.dst)})
                return None
            self.backbone.send(nb, buf)
            return None
        try:
            inner = tunnel.decapsulate(header)
        except DecodeError as e:
            self._log("drop", {"reason": "decode", "what": "tunnel", "error": str(e)})
            return None
        if publication.is_publication(inner):
            self._log("drop", {"reason": "publication_in_tunnel"})
            return None
        return inner

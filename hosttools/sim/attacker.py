"""The attacker of the `attacker` scenario: a node that attacks the routing state of the field.

It listens to everything in radio range (promiscuous, unicast too) and on the backbone, may
forge the link-layer source of what it sends (a radio MAC, a backbone link address: the world's
``Spoofed``), and attacks with the kinds its config lists (``attacks``, default ``["forge",
"replay"]``), each a way issue 15 found to change routing state without a wrong key or a
byte-for-byte replay into the receiver's state (docs/SIMULATOR.md "The attacker" lists them
with the finding and the core test each one comes from):

=================  ========  ================================================================
kind               class     every ``attack_interval_ms``, one kind drawn at random does
=================  ========  ================================================================
forge              forged    a forged advertisement, local or remote binding, or publication
                             (a key it guessed)
replay             replayed  a byte copy of a captured advertisement, registration or
                             publication (at least ``replay_delay_ms`` old)
relay              relayed   (all the time, not drawn) finding 1: every control frame it hears
                             on the radio (advertisements, solicitations, registrations),
                             passed on from its own MAC, never data
dereg              insider   finding 3: a deregistration of a victim's home address with
                             counter 0xffffffff (the agent's nonce read from its broadcasts),
                             under the cell key, or its own binding key K_X naming its own MAC
                             or (sent from it) the victim's
steal              insider   finding 4: a registration of a victim's or a home agent's address,
                             the same three ways
fill               insider   finding 11: registrations of invented addresses (capacity, counter
                             table)
epoch_jump         insider   finding 2: a publication "from origin O" (the region key) with an
                             epoch 17..0x7fff or a sequence 2049..0x7fff beyond O's last one
                             heard, as a neighbour of the receiver over that neighbour's link
                             (a compromised member): an empty snapshot, or victims' bindings
replay_request     spoofed   finding 6: the next registration request heard is followed by
                             four copies of an older one of that node, from the node's MAC
solicit_flood      flood     findings 10, 11: ``flood`` (40) solicitations at once, each
                             from a random MAC: recordings of the nodes', and fresh ones made
                             with the cell key (agent- and host-level)
proxy_replay       spoofed   finding 7: recorded proxy requests replayed to their
                             correspondent under random IP sources
spoof_proxy        spoofed   finding 8: datagrams for victims to a proxy router under random
                             sources or a correspondent's address, from its own link
spoof_tunnel       spoofed   finding 11: IP-in-IP under a member's address from its own link,
                             or eleven tunnels nested in one frame
wrong_link         spoofed   finding 9: the next publication heard is sent on at once to
                             other members under a neighbour's address of theirs, from its own
                             link and from that neighbour's (forged) link address
=================  ========  ================================================================

Each frame is logged as an ``attack`` event (kind = its class, attack = its kind, msg) and
registered with the metrics collector, which decides, from the receiver's state before and
after, whether the frame was accepted or changed routing state (docs/METRICS.md "The
attacker's counters").

It is a sans-I/O role like the core's (on_frame / on_timer / next_wake / out) so the world runs
it the same way; it is a simulator tool, never firmware. What it knows of the field beyond what
it hears: the nodes' addresses and backbone links, and the region's members and links (as any
member's config tells), and the keys an insider holds: the cell key and its own K_X (a mobile
node's), the region keys (a member's config).
"""

from mobility import advert, auth, ipv4, publication, registration, request, solicit, ticks, tunnel
from mobility.actions import BROADCAST, IF_BACKBONE, IF_RADIO, Actions

FAKE_AGENT = b"\x0a\xfa\x00\x01"  # 10.250.0.1: no such agent

# kind -> class (the summary's <class>_sent / <class>_accepted)
KINDS = {
    "forge": "forged",
    "replay": "replayed",
    "relay": "relayed",
    "dereg": "insider",
    "steal": "insider",
    "fill": "insider",
    "epoch_jump": "insider",
    "replay_request": "spoofed",
    "solicit_flood": "flood",
    "proxy_replay": "spoofed",
    "spoof_proxy": "spoofed",
    "spoof_tunnel": "spoofed",
    "wrong_link": "spoofed",
}
CLASSES = ("forged", "replayed", "relayed", "insider", "spoofed", "flood")
DEFAULT_KINDS = ("forge", "replay")
CAPTURED_MAX = 256
FLOOD = 40  # solicitations per solicit_flood (more than twice an agent's 16 answers a second)
REPLAY_COPIES = 4  # old requests after a new one (finding 6)


def check_kinds(kinds):
    """The attack kinds of an attacker's config, checked (ValueError names a wrong one)."""
    if isinstance(kinds, str) or not isinstance(kinds, (list, tuple)) or not kinds:
        raise ValueError("attacker config 'attacks' must be a non-empty list of kinds")
    for k in kinds:
        if k not in KINDS:
            raise ValueError(
                "attacker config 'attacks': no kind %r (kinds: %s)" % (k, ", ".join(KINDS))
            )
    return tuple(kinds)


class Attacker:
    def __init__(self, config, rand, now, world, nd):
        self.rand = rand
        self.out = Actions()
        self.address = nd.addr
        self.mac = nd.mac
        self.bb = nd.bb
        self.world = world
        self.interval = int(config.get("attack_interval_ms", 500))
        self.replay_delay = int(config.get("replay_delay_ms", 5000))
        self.start_ms = int(config.get("attack_start_s", 10)) * 1000
        self.flood = int(config.get("flood", FLOOD))
        kinds = check_kinds(config.get("attacks", DEFAULT_KINDS))
        self.relaying = "relay" in kinds
        self.kinds = tuple(k for k in kinds if k != "relay")
        self.born = now
        self.started = False
        self.wake = ticks.add(now, self.start_ms)
        self.turn = 0
        self.agents = {}  # agent addr -> radio MAC (from the advertisements it hears)
        self.nonces = {}  # agent addr -> its boot nonce (from its advertisements)
        self.seqs = {}  # agent address -> sequence of its newest advertisement heard (echoed)
        self.homes = []  # victims' home addresses (from registrations it hears)
        self.node_mac = {}  # home address -> the MAC its requests came from
        self.macs = {}  # IPv4 source -> radio MAC, from control frames (whom to relay to)
        self.captured = []  # (ticks, kind, iface, frame, dst addr) to replay
        self.requests = {}  # home -> [(ticks, frame, agent MAC)] its recorded requests
        self.solicitations = []  # recorded solicitations (frames)
        self.proxy_requests = []  # (frame, correspondent link) recorded proxy requests
        self.heard_pub = {}  # origin -> (epoch, seq) of its newest publication heard
        self.armed = set()  # reactive kinds waiting for their frame
        layout = world.layout
        self.cell_key = layout.cell_key
        self.own_key = auth.node_key(layout.binding_secret, nd.addr)
        nodes = world.nodes
        by_id = world.sc.by_id
        self.peers = [
            (o.addr, o.bb)
            for o in nodes
            if o.bb is not None and o is not nd and o.kind in ("agent", "router", "home")
        ]
        self.home_agents = [(o.addr, o.bb) for o in nodes if o.kind == "home"]
        self.routers = [(o.addr, o.bb) for o in nodes if o.kind == "router" and o.bb is not None]
        # the other attackers' MACs (their frames are attacks of their own: not relayed)
        self.attackers = {o.mac for o in nodes if o.sniffer}
        self.bb_hosts = [o.addr for o in nodes if o.kind in ("home", "host") and o.bb is not None]
        # the regions: (key, [(member addr, link)], {member addr: [(neighbour addr, link)]})
        self.regions = []
        for r in world.sc.regions:
            members = [nodes[by_id[m].index] for m in r.members]
            members = [(m.addr, m.bb) for m in members if m.bb is not None]
            nbrs = {}
            for a, b in r.links:
                na, nb_ = nodes[by_id[a].index], nodes[by_id[b].index]
                if na.bb is not None and nb_.bb is not None:
                    nbrs.setdefault(na.addr, []).append((nb_.addr, nb_.bb))
                    nbrs.setdefault(nb_.addr, []).append((na.addr, na.bb))
            if members:
                self.regions.append((layout.region_keys[r.id], members, nbrs))
        self.member_link = {a: bb for _k, ms, _n in self.regions for a, bb in ms}

    def next_wake(self):
        return self.wake

    def on_link_failure(self, now, iface, mac, frame=None):
        pass

    def on_send(self, now, dst, payload):
        pass

    def _key(self):
        return bytes(self.rand(8) for _ in range(16))

    def _pick(self, seq):
        return seq[self.rand(16) % len(seq)]

    # -- listening ---------------------------------------------------------------------------

    def on_frame(self, now, iface, src_mac, rssi, frame):
        if len(frame) < 28 or frame[0] != 0x45 or self._attack_frame(src_mac, frame):
            return  # (another attacker's frames teach nothing and are not relayed)
        proto = frame[9]
        src = bytes(frame[12:16])
        dst = bytes(frame[16:20])
        kind = None
        control = False
        if proto == 1 and iface == IF_RADIO:
            control = True
            if frame[20] == 9:
                kind = "advertisement"
                if len(frame) > 40 and frame[36] == 16:  # an agent's (mobility extension)
                    self._learn_agent(src, src_mac, frame)
            elif frame[20] == 10:
                if len(self.solicitations) < 16 and frame not in self.solicitations:
                    self.solicitations.append(bytes(frame))
        elif proto == 17:
            dport = (frame[22] << 8) | frame[23]
            if dport == 434:
                control = iface == IF_RADIO
                if frame[28] == 1:
                    kind = "registration"
                    home = bytes(frame[32:36])
                    if iface == IF_RADIO:
                        self._learn_request(now, home, src_mac, frame, dst)
                    elif src in [a for a, _ in self.routers] and len(self.proxy_requests) < 16:
                        link = self.world.by_addr[dst].bb if dst in self.world.by_addr else None
                        if link is not None:
                            self.proxy_requests.append((bytes(frame), link))
            elif dport == 4344:
                kind = "publication"
                if len(frame) >= 38:
                    self.heard_pub[bytes(frame[30:34])] = (
                        (frame[34] << 8) | frame[35],
                        (frame[36] << 8) | frame[37],
                    )
                if "wrong_link" in self.armed and iface == IF_BACKBONE:
                    self.armed.discard("wrong_link")
                    self._race_copy(src, dst, frame)
        if control:
            if src not in self.macs and len(self.macs) < 64:
                self.macs[src] = bytes(src_mac)
            if self.relaying and self.started:
                self._relay(src_mac, dst, frame)
        if kind is not None and len(self.captured) < CAPTURED_MAX:
            self.captured.append((now, kind, iface, bytes(frame), dst))

    def _attack_frame(self, src_mac, frame):
        """True for a frame of another attacker's (an attack of its own: not relayed)."""
        return bytes(src_mac) in self.attackers or bytes(frame) in self.world.col.attack_kind

    def _learn_agent(self, addr, mac, frame):
        if addr not in self.agents:
            self.agents[addr] = bytes(mac)
        try:
            adv = advert.decode_icmp(ipv4.decode(frame))
        except Exception:  # noqa: BLE001 (the attacker hears whatever is on the air)
            return
        if isinstance(adv, advert.Advertisement) and not adv.is_host_reply:
            self.nonces[addr] = adv.nonce
            self.seqs[addr] = adv.seq

    def _learn_request(self, now, home, mac, frame, agent):
        if home not in self.homes and len(self.homes) < 32:
            self.homes.append(home)
        self.node_mac.setdefault(home, bytes(mac))
        amac = self.agents.get(agent)
        if amac is None:
            return
        if "replay_request" in self.armed:
            old = [
                r
                for r in self.requests.get(home, ())
                if ticks.diff(now, r[0]) >= self.replay_delay and r[2] == amac
            ]
            if old:
                self.armed.discard("replay_request")
                f = old[self.rand(16) % len(old)][1]
                for _ in range(REPLAY_COPIES):
                    self._emit("replay_request", "request", IF_RADIO, amac + bytes(mac), f)
        recs = self.requests.setdefault(home, [])
        if len(recs) < 8:
            recs.append((now, bytes(frame), amac))

    # -- attacking ---------------------------------------------------------------------------

    def on_timer(self, now):
        self.started = True
        if self.kinds:
            kind = self.kinds[self.rand(16) % len(self.kinds)]
            self.turn += 1
            getattr(self, "_" + kind)(now)
        self.wake = ticks.add(now, self.interval)

    def _emit(self, kind, msg, iface, mac, frame):
        """Send ``frame`` as attack ``kind`` to ``mac`` on ``iface`` (12 bytes: destination,
        then the forged source)."""
        cls = KINDS[kind]
        self.world.col.note_attack_frame(frame, cls, kind)
        self.out.log("attack", {"kind": cls, "attack": kind, "msg": msg})
        self.out.send(iface, mac, frame)

    # finding 1
    def _relay(self, src_mac, dst, frame):
        if dst == ipv4.BCAST_ADDR:
            to = BROADCAST
        else:
            to = self.macs.get(dst)
            if to is None or to == src_mac:
                return
        self._emit("relay", "control", IF_RADIO, to, bytes(frame))

    # the forgeries and replays of before issue 15
    def _forge(self, now):
        step = self.rand(8) % 3
        if step == 0:
            self._forge_advert()
        elif step == 1:
            self._forge_registration()
        else:
            self._forge_publication()

    def _forge_advert(self):
        adv = advert.Advertisement(
            src=FAKE_AGENT,
            dst=ipv4.BCAST_ADDR,
            adv_lifetime=30,
            seq=self.rand(16),
            reg_lifetime=600,
            flags=advert.FLAG_R | advert.FLAG_F,
            services=advert.SVC_ROUTING | advert.SVC_REVERSE | advert.SVC_REGION,
            capacity=255,
            load=0,
            nonce=self.rand(32),
        )
        self._emit(
            "forge",
            "advertisement",
            IF_RADIO,
            BROADCAST,
            advert.encode_advertisement(adv, self._key()),
        )

    def _forge_registration(self):
        if not self.homes:
            return
        home = self._pick(self.homes)
        if self.agents:
            agent = self._pick(sorted(self.agents))
            req = registration.RegRequest(
                src=home,
                dst=agent,
                lifetime=600,
                home=home,
                coa=agent,
                ident=(self.rand(32) << 32) | self.rand(32),
                node_mac=self.mac,
                agent_mac=self.agents[agent],
                agent_seq=self.seqs.get(agent, 0),
            )
            self._emit(
                "forge",
                "registration",
                IF_RADIO,
                self.agents[agent],
                request.encode_request(req, self._key()),
            )
        for ha, bb in self.home_agents:
            req = registration.RegRequest(
                src=home,
                dst=ha,
                lifetime=600,
                home=home,
                home_agent=ha,
                coa=self.address,
                ident=(self.rand(32) << 32) | self.rand(32),
                ext_type=registration.EXT_MH_AUTH,
                spi=auth.spi_home(1 + self.rand(4)),
            )
            self._emit(
                "forge",
                "remote_binding",
                IF_BACKBONE,
                bb,
                request.encode_request(req, self._key()),
            )

    def _forge_publication(self):
        if not self.peers or not self.homes:
            return
        origin = self._pick(self.peers)[0]
        pub = publication.Publication(
            origin=origin,
            epoch=self.rand(16),
            seq=self.rand(16),
            full=False,
            bindings=[(h, 600) for h in self.homes[:8]],
        )
        key = self._key()
        payload = publication.encode_payload(pub, key)
        keys = auth.Keys({auth.SPI_REGION: key})
        for addr, bb in self.peers:
            if addr != origin:
                self._emit(
                    "forge",
                    "publication",
                    IF_BACKBONE,
                    bb,
                    publication.hop_packet(keys, self.address, addr, payload),
                )

    def _replay(self, now):
        old = [c for c in self.captured if ticks.diff(now, c[0]) >= self.replay_delay]
        if not old:
            return
        t, kind, iface, frame, dst = self._pick(old)
        if kind == "advertisement":
            self._emit("replay", kind, IF_RADIO, BROADCAST, frame)
        elif kind == "registration":
            mac = self.agents.get(dst)
            if mac is not None and iface == IF_RADIO:
                self._emit("replay", kind, IF_RADIO, mac, frame)
            for addr, bb in self.peers:
                if addr == dst:
                    self._emit("replay", kind, IF_BACKBONE, bb, frame)
        else:
            for addr, bb in self.peers:
                if addr == dst:
                    self._emit("replay", kind, IF_BACKBONE, bb, frame)

    # findings 3, 4, 11: a mobile-node insider (the cell key and its own K_X)
    def _insider_request(self, kind, home, lifetime, counter):
        """A request for ``home`` at an agent it heard, signed one of three ways an insider
        can: the cell key (no MACs), its own K_X naming its own MAC, or its own K_X naming the
        victim's MAC and sent from it."""
        if not self.nonces:
            return
        agent = self._pick(sorted(self.nonces))
        amac = self.agents[agent]
        how = self.rand(8) % 3
        victim_mac = self.node_mac.get(home)
        if how == 2 and victim_mac is None:
            how = 1
        req = registration.RegRequest(
            src=home,
            dst=agent,
            lifetime=lifetime,
            home=home,
            coa=agent,
            ident=request.make_ident(self.nonces[agent], counter),
        )
        mac = amac
        if how == 0:
            req.spi = auth.SPI_CELL
            key = self.cell_key
        else:
            key = self.own_key
            req.node_mac = self.mac if how == 1 else victim_mac
            req.agent_mac = amac
            req.agent_seq = self.seqs[agent]  # it hears the agent: a fresh echo
            if how == 2:
                mac = amac + victim_mac
        msg = "deregistration" if lifetime == 0 else "registration"
        self._emit(kind, msg, IF_RADIO, mac, request.encode_request(req, key))

    def _dereg(self, now):
        if self.homes:
            self._insider_request("dereg", self._pick(self.homes), 0, 0xFFFFFFFF)

    def _steal(self, now):
        targets = self.homes + [a for a, _ in self.home_agents]
        if targets:
            self._insider_request("steal", self._pick(targets), 600, self.rand(32))

    def _fill(self, now):
        for _ in range(4):
            home = bytes((10, 1, 1 + self.rand(8) % 250, 1 + self.rand(8) % 250))
            self._insider_request("fill", home, 600, 1 + self.rand(16))

    # finding 2: a region-member insider (the region key), as a neighbour of the receiver
    def _epoch_jump(self, now):
        if not self.regions:
            return
        key, members, nbrs = self._pick(self.regions)
        origin = self._pick(members)[0]
        receivers = [m for m in members if m[0] != origin and nbrs.get(m[0])]
        if not receivers:
            return
        dst, _dst_link = self._pick(receivers)
        via, via_link = self._pick(nbrs[dst])
        epoch, seq = self.heard_pub.get(origin, (self.rand(16), self.rand(16)))
        if self.rand(1):
            epoch = (epoch + 17 + self.rand(16) % (0x7FFF - 16)) & 0xFFFF
            seq = self.rand(16) % 4
        else:
            seq = (seq + 2049 + self.rand(16) % (0x7FFF - 2048)) & 0xFFFF
        if self.rand(1) or not self.homes:
            pub = publication.Publication(origin, epoch, seq, True, [], [])  # an empty snapshot
        else:
            pub = publication.Publication(
                origin, epoch, seq, False, [(h, 600) for h in self.homes[:8]], []
            )
        payload = publication.encode_payload(pub, key)
        link = self.member_link.get(dst)
        if link is not None:
            self._emit(
                "epoch_jump",
                "publication",
                IF_BACKBONE,
                link + via_link,
                # (it holds the region key: the hop tag is a true one)
                publication.hop_packet(auth.Keys({auth.SPI_REGION: key}), via, dst, payload),
            )

    # finding 6
    def _replay_request(self, now):
        self.armed.add("replay_request")

    # findings 10, 11
    def _solicit_flood(self, now):
        """``flood`` solicitations (config, default FLOOD) at once, each from a random MAC: a
        quarter recordings of the nodes' (replays), the rest made afresh with the cell key (an
        insider's: new challenges, for agents and, host-level, for hosts and unbound
        nodes)."""
        for i in range(self.flood):
            src = b"\x02\xee" + bytes(self.rand(8) for _ in range(4))
            if i % 4 == 0 and self.solicitations:
                frame = self._pick(self.solicitations)
                msg = "recorded"
            else:
                level = advert.LEVEL_HOST if i % 2 else advert.LEVEL_ROUTING
                sol = advert.Solicitation(self.address, level, 0, challenge=1 + self.rand(31))
                frame = solicit.encode_solicitation(sol, self.cell_key)
                msg = "fresh"
            self._emit("solicit_flood", msg, IF_RADIO, BROADCAST + src, frame)

    # finding 7: an outsider on the access point
    def _proxy_replay(self, now):
        if not self.proxy_requests:
            return
        for _ in range(4):
            frame, link = self._pick(self.proxy_requests)
            src = bytes((10, 77, self.rand(8), 1 + self.rand(8) % 250))
            h = ipv4.decode(frame)
            sport, dport, payload = ipv4.decode_udp(h)
            self._emit(
                "proxy_replay",
                "proxy_request",
                IF_BACKBONE,
                link,
                ipv4.udp(src, h.dst, sport, dport, payload),
            )

    # finding 8
    def _spoof_proxy(self, now):
        if not self.routers or not self.homes:
            return
        for _ in range(4):
            addr, link = self._pick(self.routers)
            if self.rand(1) and self.bb_hosts:
                src = self._pick(self.bb_hosts)
            else:
                src = bytes((10, 77, self.rand(8), 1 + self.rand(8) % 250))
            d = ipv4.udp(src, self._pick(self.homes), 5000, 5000, b"spoof")
            self._emit("spoof_proxy", "datagram", IF_BACKBONE, link, d)

    # finding 11 (tunnels)
    def _spoof_tunnel(self, now):
        members = [m for _k, ms, _n in self.regions for m in ms]
        if len(members) < 2:
            return
        (a, a_link), (b, _b) = self._pick(members), self._pick(members)
        home = self._pick(self.homes) if self.homes else b"\x0a\x09\x00\x01"
        if self.rand(1):
            # a member's (spoofed) tunnel to another member, from the attacker's link
            inner = ipv4.udp(self.address, home, 5000, 5000, b"tunnel")
            pkt = tunnel.encapsulate(b, a if a != b else self.address, inner)
            self._emit("spoof_tunnel", "tunnel", IF_BACKBONE, a_link, pkt)
        else:
            # eleven tunnels in one frame, each level to another member
            src = self._pick(self.bb_hosts) if self.bb_hosts else self.address
            pkt = ipv4.encode(src, home, ipv4.PROTO_UDP, b"")
            for k in range(10):
                pkt = tunnel.encapsulate(src, (a, b)[k % 2], pkt)
            self._emit(
                "spoof_tunnel", "nested", IF_BACKBONE, a_link, tunnel.encapsulate(src, a, pkt)
            )

    # finding 9, the part the core fixes: a copy under a neighbour's address from another link
    def _wrong_link(self, now):
        self.armed.add("wrong_link")

    def _race_copy(self, src, dst, frame):
        payload = bytes(frame[28:])
        for _key, members, nbrs in self.regions:
            for addr, link in members:
                if addr in (src, dst):
                    continue
                for nb, nb_link in nbrs.get(addr, ()):
                    pkt = publication.packet(nb, addr, payload)
                    self._emit("wrong_link", "publication", IF_BACKBONE, link, pkt)
                    # and from the neighbour's own link address (its hop tag is another hop's)
                    self._emit("wrong_link", "publication", IF_BACKBONE, link + nb_link, pkt)
                    break

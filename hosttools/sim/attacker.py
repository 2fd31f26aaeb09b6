"""The attacker of the `attacker` scenario: a node that forges and replays routing messages.

It listens to everything in radio range (promiscuous, unicast too) and on the backbone, and
every ``attack_interval_ms`` sends one of, in turn:

* a forged advertisement from an agent that does not exist (a tag under a key it guessed);
* a forged local binding (registration request) to a real agent, claiming a victim's home
  address, and a forged remote binding to the home agent;
* a forged publication, claiming an agent's origin with a newer epoch/sequence and bindings
  for victims;
* a replay, byte for byte, of an advertisement, registration or publication it captured
  earlier (at least ``replay_delay_ms`` before).

Each frame is logged as an ``attack`` event (kind forged/replayed, msg) and registered with the
metrics collector, which counts it as accepted when the node that processed it changed routing
state because of it (docs/METRICS.md: forged_accepted, replayed_accepted).

It is a sans-I/O role like the core's (on_frame / on_timer / next_wake / out) so the world runs
it the same way; it is a simulator tool, never firmware.
"""

from mobility import advert, auth, ipv4, publication, registration, ticks
from mobility.actions import BROADCAST, IF_BACKBONE, IF_RADIO, Actions

FAKE_AGENT = b"\x0a\xfa\x00\x01"  # 10.250.0.1: no such agent


class Attacker:
    def __init__(self, config, rand, now, world, nd):
        self.rand = rand
        self.out = Actions()
        self.address = nd.addr
        self.world = world
        self.interval = int(config.get("attack_interval_ms", 500))
        self.replay_delay = int(config.get("replay_delay_ms", 5000))
        self.start_ms = int(config.get("attack_start_s", 10)) * 1000
        self.born = now
        self.wake = ticks.add(now, self.start_ms)
        self.turn = 0
        self.agents = {}  # agent addr -> radio MAC (from the advertisements it hears)
        self.homes = []  # victims' home addresses (from registrations it hears)
        self.captured = []  # (ticks, kind, iface, frame, dst link) to replay
        self.peers = [
            (o.addr, o.bb)
            for o in world.nodes
            if o.bb is not None and o is not nd and o.kind in ("agent", "router", "home")
        ]
        self.home_agents = [(o.addr, o.bb) for o in world.nodes if o.kind == "home"]

    def next_wake(self):
        return self.wake

    def on_link_failure(self, now, iface, mac, frame=None):
        pass

    def on_send(self, now, dst, payload):
        pass

    def _key(self):
        return bytes(self.rand(8) for _ in range(16))

    def on_frame(self, now, iface, src_mac, rssi, frame):
        if len(frame) < 28 or frame[0] != 0x45:
            return
        proto = frame[9]
        src = bytes(frame[12:16])
        kind = None
        if proto == 1 and frame[20] == 9 and iface == IF_RADIO:
            kind = "advertisement"
            if src not in self.agents and len(frame) > 40 and frame[36] == 16:
                self.agents[src] = bytes(src_mac)
        elif proto == 17:
            dport = (frame[22] << 8) | frame[23]
            if dport == 434 and frame[28] == 1:
                kind = "registration"
                home = bytes(frame[32:36])
                if home not in self.homes and len(self.homes) < 32:
                    self.homes.append(home)
            elif dport == 4344:
                kind = "publication"
        if kind is not None and len(self.captured) < 256:
            self.captured.append((now, kind, iface, bytes(frame), bytes(frame[16:20])))

    def on_timer(self, now):
        step = self.turn % 5
        self.turn += 1
        if step == 0:
            self._forge_advert()
        elif step == 1:
            self._forge_registration()
        elif step == 2:
            self._forge_publication()
        else:
            self._replay(now)
        self.wake = ticks.add(now, self.interval)

    # -- forging -----------------------------------------------------------------------------

    def _emit(self, kind, msg, iface, mac, frame):
        self.world.col.note_attack_frame(frame, kind)
        self.out.log("attack", {"kind": kind, "msg": msg})
        self.out.send(iface, mac, frame)

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
            "forged",
            "advertisement",
            IF_RADIO,
            BROADCAST,
            advert.encode_advertisement(adv, self._key()),
        )

    def _forge_registration(self):
        if not self.homes:
            return
        home = self.homes[self.rand(8) % len(self.homes)]
        if self.agents:
            agent = sorted(self.agents)[self.rand(8) % len(self.agents)]
            req = registration.RegRequest(
                src=home,
                dst=agent,
                lifetime=600,
                home=home,
                coa=agent,
                ident=(self.rand(32) << 32) | self.rand(32),
            )
            self._emit(
                "forged",
                "registration",
                IF_RADIO,
                self.agents[agent],
                registration.encode_request(req, self._key()),
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
                "forged",
                "remote_binding",
                IF_BACKBONE,
                bb,
                registration.encode_request(req, self._key()),
            )

    def _forge_publication(self):
        if not self.peers or not self.homes:
            return
        origin = self.peers[self.rand(8) % len(self.peers)][0]
        pub = publication.Publication(
            origin=origin,
            epoch=self.rand(16),
            seq=self.rand(16),
            full=False,
            bindings=[(h, 600) for h in self.homes[:8]],
        )
        payload = publication.encode_payload(pub, self._key())
        for addr, bb in self.peers:
            if addr != origin:
                self._emit(
                    "forged",
                    "publication",
                    IF_BACKBONE,
                    bb,
                    publication.packet(self.address, addr, payload),
                )

    # -- replaying ---------------------------------------------------------------------------

    def _replay(self, now):
        old = [c for c in self.captured if ticks.diff(now, c[0]) >= self.replay_delay]
        if not old:
            return
        t, kind, iface, frame, dst = old[self.rand(16) % len(old)]
        if kind == "advertisement":
            self._emit("replayed", kind, IF_RADIO, BROADCAST, frame)
        elif kind == "registration":
            mac = self.agents.get(dst)
            if mac is not None and iface == IF_RADIO:
                self._emit("replayed", kind, IF_RADIO, mac, frame)
            for addr, bb in self.peers:
                if addr == dst:
                    self._emit("replayed", kind, IF_BACKBONE, bb, frame)
        else:
            for addr, bb in self.peers:
                if addr == dst:
                    self._emit("replayed", kind, IF_BACKBONE, bb, frame)

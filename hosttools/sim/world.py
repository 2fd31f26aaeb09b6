"""The simulated field: nodes running the protocol core, the air, the backbone, faults, traffic.

The world owns the engine and feeds every role exactly as a board's driver would
(docs/DESIGN.md, "The sans-I/O contract"): on_frame / on_timer / on_send / on_link_failure with
the node's own ticks (each node's clock starts at a different, seeded offset, some just before
the 2**30 wrap), then runs the role's SEND / DELIVER / LOG actions:

* SEND on the radio goes through the node's transmit queue, carrier sense and backoff
  (hosttools.radio.Medium: the air), takes its airtime, and at its end is received by every node
  on the channel within range that decodes it (loss, collisions). A unicast frame is
  acknowledged and retried; after the last retry the sender gets on_link_failure. ESP-NOW hands
  a receiver only broadcasts and frames addressed to its MAC; the attacker listens to everything,
  and may forge the link-layer source of what it sends (``Spoofed``).
* SEND on the backbone (Wi-Fi UDP) reaches the node with that link address after the backbone
  latency, unless either end is off, its backbone is cut, or a partition separates them.
* DELIVER is an application datagram reaching the node: traffic counts it.
* LOG is a core event: recorded with the node id and the virtual time.

Who hears whom is a vectorised distance test over all nodes (numpy), positions being linear in
time along each node's current leg (hosttools.sim.movement). Who each node is (node id, address,
MAC, backbone link address, channel) and how it moves come from the field's layout
(hosttools.sim.layout), as in the lab.
"""

import gc
import random
import struct
from collections import deque

import numpy as np

from hosttools import radio as radio_mod
from hosttools import radio_kernels
from hosttools.sim import cores, movement
from hosttools.sim.engine import Engine
from hosttools.sim.layout import Layout
from hosttools.sim.metrics import is_publication
from hosttools.sim.scenario import crash_schedule
from mobility.actions import BROADCAST, IF_BACKBONE, IF_RADIO, LOG, SEND
from mobility.ticks import MASK as TICKS_MASK

# a sender's levels at every node (rx_means) are computed again at most this often: its retries
# and back-to-back frames reuse them (in 20 ms a node moves at most 16 cm at 8 m/s, against a
# 10 m shadowing correlation distance); about half of the city's transmissions do
RX_REUSE_US = 20000
TXQ_MAX = 32  # frames waiting for the air at one node; more are dropped (ESP-NOW would block)
APP_MAGIC = b"RM"
_APP = struct.Struct(">2sHI")  # magic, flow index, sequence number


# the cores' work per node, roughly, by role (to split it between processes; the result does
# not depend on the split): an agent handles its cell and the region's publications
CORE_COST = {"agent": 60, "router": 60, "home": 20, "host": 5, "mobile": 4}
REMOTE_SHARE = 0.85  # of the cores' work, to the worker (this process also runs the air)
PIPELINE_DEPTH = 4  # windows per processing latency (hosttools.sim.cores)
STREAM_BATCH = 8  # the worker's inputs are handed over in parts of this many within a window
# The collector's thresholds while a world runs (both processes). A run makes millions of
# short-lived tuples and keeps a large heap that has next to no cycles (events, the cores' memo
# tables): with the default (700, 10, 10), full passes over that heap took 5 % of a city's time
# and freed a few hundred objects a minute. Rarer passes; the previous thresholds after.
GC_THRESHOLDS = (20000, 20, 100)


def classify(frame):
    """'data' for application datagrams (also tunnelled), else 'control'."""
    if len(frame) >= 20:
        proto = frame[9]
        off = 0
        if proto == 4 and len(frame) >= 40:  # IP-in-IP: look at the inner packet
            off = 20
            proto = frame[29]
        if proto == 17 and len(frame) >= off + 24:
            dport = (frame[off + 22] << 8) | frame[off + 23]
            if dport == 5000:
                return "data"
    return "control"


def app_datagram(frame):
    """(flow, seq) of an application datagram (also tunnelled), else None."""
    if classify(frame) != "data":
        return None
    off = 48 if frame[9] == 4 else 28
    if len(frame) < off + _APP.size:
        return None
    magic, flow, seq = _APP.unpack_from(bytes(frame[off : off + _APP.size]))
    return (flow, seq) if magic == APP_MAGIC else None


class Spoofed(bytes):
    """A frame of the attacker's whose link-layer source is forged (``src``: the MAC or
    backbone link address its receivers see). The attacker asks for one with a SEND whose
    link address is 12 bytes, destination then source (hosttools/sim/attacker.py); only the
    attacker's frames are ever looked at for it."""

    src = b""


def _spoofed(mac, frame):
    """(destination, frame) of an attacker's SEND: a 12-byte link address forges the source."""
    if len(mac) == 12:
        f = Spoofed(frame)
        f.src = bytes(mac[6:])
        return bytes(mac[:6]), f
    return mac, frame


class SimNode:
    __slots__ = (
        "idx",
        "spec",
        "id",
        "kind",
        "role",
        "on",
        "boot",
        "addr",
        "mac",
        "bb",
        "bb_up",
        "channel",
        "clock",
        "wake_at",
        "txq",
        "tx_busy",
        "legs",
        "sniffer",
        "region",
    )


class World:
    """Build with a checked Scenario, a role factory and a seed; then run().

    The factory builds each node's role when it powers on: ``prepare(world)`` once, then
    ``make(world, node, now)`` (hosttools.sim.roles.RoleFactory: the protocol core's roles)."""

    def __init__(self, scenario, factory, seed, pcap=None, collector=None, jobs=1):
        self.sc = scenario
        self.factory = factory
        self.seed = int(seed)
        self.eng = Engine()
        self.rng = random.Random(self.seed * 7919 + 17)  # air: backoff, latency
        self.nrng = np.random.default_rng(self.seed * 7919 + 18)  # air: fading, loss
        self.radio = radio_mod.Radio(scenario.radio, seed=self.seed)
        self.pcap = pcap
        self.col = collector
        bb = scenario.backbone
        self.bb_latency = int(bb["latency_ms"] * 1000)
        self.bb_jitter = int(bb["jitter_ms"] * 1000)
        self.partition = {}  # node idx -> part number while a partition stands
        self.events = []  # (t_ms, node id, name, fields)
        self.stats = {
            "frames": 0,
            "radio_frames": 0,
            "backbone_frames": 0,
            "control_frames": 0,
            "control_bytes": 0,
            "data_frames": 0,
            "retries": 0,
            "link_failures": 0,
            "txq_drops": 0,
            "lost_noise": 0,
            "collisions": 0,
            "deferrals": 0,
        }
        self.flow_next = []
        # agents that crash (power off, no goodbye) and come back: [(off_s, id, on_s | None)]
        self.crashes = crash_schedule(scenario, self.seed)
        n = len(scenario.nodes)
        self.X0 = np.zeros(n)
        self.Y0 = np.zeros(n)
        self.VX = np.zeros(n)
        self.VY = np.zeros(n)
        self.T0 = np.zeros(n)
        self.ON = np.zeros(n, dtype=bool)
        self.CH = np.zeros(n, dtype=np.int16)
        self.nodes = []
        self.by_mac = {}
        self.by_bb = {}
        self.by_addr = {}
        self.layout = Layout(scenario, self.seed)
        for fn in self.layout.nodes:
            self._add_node(fn)
        # RSSI samples for the report (a board could log the same); too many for a city
        self.rssi_log = n <= 200
        self.rssi_last = {}
        # the air: carrier sense, receptions, collisions (reads ON and CH as they change)
        sniffers = np.array([nd.sniffer for nd in self.nodes], dtype=bool)
        self.medium = radio_mod.Medium(self.radio, self.ON, self.CH, sniffers, self.nrng)
        self.X = np.zeros(n)  # positions now (radio_kernels.positions fills them per sender)
        self.Y = np.zeros(n)
        self._rx_last = [None] * n  # per sender: (time, levels) of its last Medium.levels
        self.bb_sniffers = [nd for nd in self.nodes if nd.sniffer and nd.bb is not None]
        self.factory.prepare(self)
        # the cores (hosttools.sim.cores): their answers take effect latency_us after the
        # input; the world exchanges inputs and results with the core hosts every window_us
        self.depth = PIPELINE_DEPTH
        self.latency_us = max(self.depth, int(round(scenario.processing_ms * 1000)))
        self.window_us = self.latency_us // self.depth
        self.latency_us = self.window_us * self.depth
        self.jobs = jobs
        self.local = None
        self.remote = None
        self.owner = []  # per node: 0 = in this process, 1 = in the worker
        self.inbox = ([], [])  # inputs of the current window, per host (not yet handed over)
        self.streamed = False  # part of the current window's inputs went to the worker already

    # -- set-up ------------------------------------------------------------------------------

    def _add_node(self, fn):
        """Node fn of the layout (hosttools.sim.layout.FieldNode), switched off."""
        i = fn.index
        spec = fn.spec
        nd = SimNode()
        nd.idx = i
        nd.spec = spec
        nd.id = fn.id
        nd.kind = fn.role
        nd.role = None
        nd.on = False
        nd.boot = 0
        nd.addr = fn.addr
        nd.mac = fn.mac
        nd.bb = fn.bb
        nd.bb_up = bool(spec.backbone)
        nd.channel = fn.channel
        # each board's ticks_ms starts somewhere else; every eighth node just before the wrap
        r = random.Random(self.seed * 1000003 + i)
        nd.clock = (TICKS_MASK - r.randrange(1000, 60000)) if i % 8 == 0 else r.randrange(1 << 30)
        nd.wake_at = None
        nd.txq = []
        nd.tx_busy = False
        nd.sniffer = fn.role == "attacker"
        nd.region = fn.region
        nd.legs = self.layout.legs(i)
        self.nodes.append(nd)
        self.by_mac[nd.mac] = nd
        self.by_addr[nd.addr] = nd
        if nd.bb is not None:
            self.by_bb[nd.bb] = nd
        self.CH[i] = nd.channel
        self._next_leg(nd)

    def _next_leg(self, nd):
        t0, x0, y0, t1, x1, y1 = next(nd.legs)
        i = nd.idx
        dt = t1 - t0
        self.X0[i] = x0
        self.Y0[i] = y0
        self.T0[i] = t0
        self.VX[i] = (x1 - x0) / dt if dt > 0 else 0.0
        self.VY[i] = (y1 - y0) / dt if dt > 0 else 0.0
        if t1 < movement.FOREVER:
            self.eng.at(int(t1 * 1e6), self._next_leg, nd)

    def pos(self, i, t_us=None):
        t = (self.eng.now if t_us is None else t_us) / 1e6
        dt = t - self.T0[i]
        return float(self.X0[i] + self.VX[i] * dt), float(self.Y0[i] + self.VY[i] * dt)

    def now_ticks(self, nd):
        return (self.eng.now // 1000 + nd.clock) & TICKS_MASK

    # -- running -----------------------------------------------------------------------------

    def start(self):
        for nd in self.nodes:
            self.eng.at(0, self.power_on, nd)
        for at, kind, ids, groups in self.sc.faults:
            self.eng.at(int(at * 1e6), self._fault, kind, ids, groups)
        for off, nid, on in self.crashes:
            nd = self.nodes[self.sc.by_id[nid].index]
            self.eng.at(int(off * 1e6), self._crash, nd, False)
            if on is not None:
                self.eng.at(int(on * 1e6), self._crash, nd, True)
        for fl in self.sc.flows:
            # a seeded phase so that flows with the same interval do not send in lockstep
            phase = self.rng.randrange(int(fl.interval_ms * 1000))
            self.eng.at(int(fl.start_s * 1e6) + phase, self._flow_send, fl, 0)

    def run(self, progress=None):
        remote = self._partition()
        local = set(range(len(self.nodes))) - remote
        self.local = cores.LocalCores(self, local, self.col)
        was = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()  # what exists now lives for the run: never scanned, not copied by the fork
        try:
            # the worker is forked now: before any role exists, with the world as built
            self.remote = cores.RemoteCores(self, remote) if remote else None
            self.start()
            self._run_windows(int(self.sc.duration_s * 1e6), progress)
        finally:
            gc.unfreeze()
            gc.set_threshold(*was)
            if self.remote is not None:
                self.remote.close()
        self.stats["collisions"] = self.medium.collisions
        self.stats["lost_noise"] = self.medium.lost

    def _run_windows(self, end_us, progress):
        """Window by window: simulate window k, hand its inputs to the hosts; the results of
        window k take effect from window k + DEPTH on (latency = DEPTH windows), so they are
        merged after window k + DEPTH - 1 has been simulated. Meanwhile the worker runs them:
        it has DEPTH - 1 windows of this process's time to do so, which absorbs the bursts (a
        broadcast heard by a hundred nodes is a hundred inputs in one window).

        This process's own cores run a window's inputs at the latest when it is merged, and
        earlier while the worker's results are not there yet: waiting is filled with work that
        was due anyway (a core's answers depend only on its inputs, never on when it runs)."""
        eng, local, remote = self.eng, self.local, self.remote
        step = self.window_us
        depth = self.depth
        # per window since the oldest not yet merged: [inputs for this process's cores (None
        # once run), window end, their results, handed to the worker]
        held = deque()
        pending = deque()  # the same windows whose local inputs have not run yet, in order
        flying = 0  # windows handed to the worker whose results are still to be collected
        remote_next = None  # the worker's earliest timer, as of its last results
        k = 0

        def run_local():
            w = pending.popleft()
            inputs, t_end = w[0], w[1]
            w[0] = None
            if inputs or (local.timers and local.timers[0][0] < t_end):
                w[2] = local.run(inputs, t_end)

        while True:
            t_end = (k + 1) * step
            eng.run_to(min(t_end, end_us + 1) - 1, progress)
            mine, theirs = self.inbox
            self.inbox = ([], [])
            sent = False
            if remote is not None:
                # an idle worker window (no input, no timer due, nothing in flight) is skipped
                if (
                    theirs
                    or self.streamed
                    or flying
                    or (remote_next is not None and remote_next < t_end)
                ):
                    remote.submit(theirs, t_end)
                    self.streamed = False
                    sent = True
                    flying += 1
            w = [mine, t_end, None, sent]
            held.append(w)
            pending.append(w)
            # merge window k + 1 - depth: its results fall in window k + 1 at the earliest
            if len(held) >= depth:
                oldest = held.popleft()
                while oldest[0] is not None:
                    run_local()
                results = list(oldest[2]) if oldest[2] else []
                if oldest[3]:
                    while pending and not remote.ready():
                        run_local()
                    res, remote_next = remote.collect()
                    flying -= 1
                    results += res
                if results:
                    self._apply(results)
            if t_end > end_us:
                break
            k += 1
        # what the last windows logged (their actions would take effect after the end)
        last = []
        while held:
            w = held.popleft()
            while w[0] is not None:
                run_local()
            last += w[2] or []
            if w[3]:
                last += remote.collect()[0]
        self._apply([r for r in last if r[cores.RES_KIND] == LOG])

    # -- power and faults --------------------------------------------------------------------

    def power_on(self, nd):
        if nd.on:
            return
        nd.on = True
        nd.boot += 1
        self.ON[nd.idx] = True
        nd.txq = []
        nd.tx_busy = False
        self.log(nd, "sim_power", {"on": True, "boot": nd.boot})
        self._submit(nd, cores.ON)

    def power_off(self, nd):
        if not nd.on:
            return
        nd.on = False
        nd.boot += 1  # stale events of the previous life are ignored by their boot number
        self.ON[nd.idx] = False
        nd.txq = []
        nd.tx_busy = False
        self.log(nd, "sim_power", {"on": False})
        self._submit(nd, cores.OFF)

    def _crash(self, nd, on):
        """A crash of the scenario's [crashes] (off: no goodbye, its RAM gone), or its return."""
        self.log(nd, "sim_crash", {"on": on})
        if on:
            self.power_on(nd)
        else:
            self.power_off(nd)
        if self.col is not None:
            self.col.on_crash(self.eng.now, nd, on)

    def _fault(self, kind, ids, groups):
        nodes = [self.nodes[self.sc.by_id[i].index] for i in ids]
        if kind == "node_off":
            for nd in nodes:
                self.power_off(nd)
        elif kind == "node_on":
            for nd in nodes:
                self.power_on(nd)
        elif kind in ("backbone_cut", "backbone_heal"):
            for nd in nodes:
                nd.bb_up = kind == "backbone_heal"
                self.log(nd, "sim_backbone", {"up": nd.bb_up})
        elif kind == "partition":
            self.partition = {}
            for part, g in enumerate(groups):
                for nid in g:
                    self.partition[self.sc.by_id[nid].index] = part
            self.log(None, "sim_partition", {"groups": groups})
        elif kind == "heal":
            self.partition = {}
            self.log(None, "sim_partition", {"groups": []})

    # -- feeding the cores ----------------------------------------------------------------

    def _submit(self, nd, op, iface=None, peer=None, rssi=None, data=None):
        """Hand an input for nd's core to the host that runs it (hosttools.sim.cores: the
        layout of an input), with the time and the node's boot number (results of an earlier
        life are dropped). The worker gets a window's inputs in parts of STREAM_BATCH as they
        come (it starts on a broadcast's hearers while this process simulates the rest of the
        window), the rest at the window's end."""
        box = self.inbox[self.owner[nd.idx]]
        box.append((self.eng.now, nd.idx, op, nd.boot, iface, peer, rssi, data))
        if len(box) >= STREAM_BATCH and box is self.inbox[1]:
            self.remote.stream(box)
            self.streamed = True
            self.inbox = (self.inbox[0], [])

    def _submit_frames(self, idx, rssi, mac, frame):
        """_submit of one frame (from link address mac) to the nodes idx, at levels rssi."""
        now, owner, nodes = self.eng.now, self.owner, self.nodes
        mine, theirs = self.inbox
        for j, level in zip(idx, rssi, strict=True):
            (theirs if owner[j] else mine).append(
                (now, j, cores.FRAME, nodes[j].boot, IF_RADIO, mac, level, frame)
            )
        if len(theirs) >= STREAM_BATCH:
            self.remote.stream(theirs)
            self.streamed = True
            self.inbox = (mine, [])

    def _partition(self):
        """Which nodes run in the worker process (jobs=2): REMOTE_SHARE of the cores' work,
        counted by a rough cost per role (heaviest first). With an attacker every node stays
        here: its metrics look into the receivers' state."""
        n = len(self.nodes)
        self.owner = [0] * n
        if self.jobs < 2 or any(nd.sniffer for nd in self.nodes):
            return set()
        cost = [CORE_COST.get(nd.kind, 1) for nd in self.nodes]
        goal = REMOTE_SHARE * sum(cost)
        remote, got = set(), 0
        for nd in sorted(self.nodes, key=lambda x: (-cost[x.idx], x.idx)):
            if got >= goal:
                break
            remote.add(nd.idx)
            self.owner[nd.idx] = 1
            got += cost[nd.idx]
        return remote

    def _apply(self, results):
        """Results of the cores for one window, merged in a fixed order: LOG events now (with
        their own time), SEND and DELIVER as events at their time."""
        results.sort(key=cores.result_order)
        nodes = self.nodes
        at = self.eng.at
        for t, i, _seq, boot, kind, iface, mac, data in results:
            nd = nodes[i]
            if kind == LOG:
                self.log_at(t, nd, data[0], data[1])
            elif kind == SEND:
                at(t, self._do_send, nd, boot, iface, mac, data)
            else:
                at(t, self._do_deliver, nd, boot, data)

    def _do_send(self, nd, boot, iface, mac, data):
        if nd.boot != boot:
            return  # switched off since
        if iface == IF_RADIO:
            self.radio_send(nd, mac, data)
        else:
            self.backbone_send(nd, mac, data)

    def _do_deliver(self, nd, boot, data):
        if nd.boot == boot:
            self.app_deliver(nd, data)

    def log(self, nd, name, fields):
        self.log_at(self.eng.now, nd, name, fields)

    def log_at(self, t_us, nd, name, fields):
        self.events.append((t_us // 1000, nd.id if nd is not None else None, name, fields))
        if self.col is not None:
            self.col.on_event(t_us, nd, name, fields)

    # -- the air -----------------------------------------------------------------------------

    def _count(self, frame, nd=None, mac=None):
        st = self.stats
        st["frames"] += 1
        if classify(frame) == "data":
            st["data_frames"] += 1
        else:
            st["control_frames"] += 1
            st["control_bytes"] += len(frame)
        if self.pcap is not None:
            self.pcap.write(self.eng.now, frame)
        if self.col is not None:
            self.col.on_frame(self.eng.now, frame)
            if self.col.dead and mac in self.col.dead:
                self.col.to_dead(self.eng.now, nd, mac, frame)

    def radio_send(self, nd, mac, frame):
        if nd.sniffer:
            mac, frame = _spoofed(mac, frame)
        if len(nd.txq) >= TXQ_MAX:
            self.stats["txq_drops"] += 1
            self._radio_loss(nd, mac, frame, "txq")
            if mac != BROADCAST:
                self.eng.after(0, self._link_failure, nd, nd.boot, mac)
            return
        self._count(frame, nd, mac)
        self.stats["radio_frames"] += 1
        nd.txq.append([mac, frame, 0])
        if not nd.tx_busy:
            nd.tx_busy = True
            self._access(nd, 0)

    def _access(self, nd, attempt):
        eng = self.eng
        busy = self.medium.busy_until(nd.idx, eng.now)
        wait = busy - eng.now if busy > eng.now else 0
        eng.at(
            eng.now + wait + self.radio.backoff_us(self.rng, attempt), self._tx_start, nd, nd.boot
        )

    def _tx_start(self, nd, boot):
        if nd.boot != boot:
            return
        eng = self.eng
        busy = self.medium.busy_until(nd.idx, eng.now)
        entry = nd.txq[0]
        if busy > eng.now:  # someone started during our backoff: defer again
            self.stats["deferrals"] += 1
            eng.at(busy + self.radio.backoff_us(self.rng, entry[2]), self._tx_start, nd, boot)
            return
        air = self.radio.airtime_us(len(entry[1]))
        last = self._rx_last[nd.idx]
        if last is not None and eng.now - last[0] < RX_REUSE_US:
            rx = last[1]
        else:
            # levels from the positions at the frame's start: a frame lasts a few milliseconds,
            # in which nobody moves more than a few centimetres
            x, y = self.pos(nd.idx)
            X, Y = self.X, self.Y
            radio_kernels.positions(
                eng.now / 1e6, self.X0, self.Y0, self.VX, self.VY, self.T0, X, Y
            )
            rx = self.medium.levels(nd.idx, x, y, X, Y, eng.now)
            self._rx_last[nd.idx] = (eng.now, rx)
        end = eng.now + air
        eng.at(end, self._tx_end, nd, boot, self.medium.start(nd.idx, nd.channel, eng.now, end, rx))

    def _tx_end(self, nd, boot, slot):
        if nd.boot != boot:
            return
        entry = nd.txq[0]
        mac, frame, attempt = entry
        bcast = mac == BROADCAST
        target = None
        if bcast:
            to = -2
        else:
            target = self.by_mac.get(mac)
            to = target.idx if target is not None and target.channel == nd.channel else -1
        nodes = self.nodes
        acked = False
        idx, rssi = self.medium.receptions(slot, len(frame), self.eng.now, to, attempt == 0)
        if idx:
            acked = target is not None and target.idx in idx
            if self.rssi_log or nd.sniffer or is_publication(frame):
                for j, level in zip(idx, rssi, strict=True):
                    self._deliver_radio(nodes[j], nd, level, frame)
            else:  # what _deliver_radio does when nothing looks at single receptions
                self._submit_frames(idx, rssi, nd.mac, frame)
        if bcast or acked:
            nd.txq.pop(0)
            wait = 0 if bcast else self.radio.sifs_us + self.radio.ack_us
            self.eng.at(self.eng.now + wait, self._next_frame, nd, boot)
        elif attempt < self.radio.retries:
            self.stats["retries"] += 1
            entry[2] = attempt + 1
            self.eng.at(
                self.eng.now + self.radio.sifs_us + self.radio.ack_us,
                self._access_b,
                nd,
                boot,
                attempt + 1,
            )
        else:
            nd.txq.pop(0)
            self._radio_loss(nd, mac, frame, "retries")
            self._link_failure(nd, boot, mac, frame)
            self._next_frame(nd, boot)

    def _radio_loss(self, nd, mac, frame, why):
        """An application datagram the radio did not get across (its unicast frame's retries
        ran out, or the transmit queue was full): a ``sim_radio_loss`` event naming it, for the
        losses' causes (metrics.attribute_losses). Only on these failures, never per frame; the
        sender's core may still route it again (on_link_failure)."""
        app = app_datagram(frame)
        if app is not None:
            self.log(
                nd, "sim_radio_loss", {"why": why, "mac": mac.hex(), "flow": app[0], "seq": app[1]}
            )

    def _access_b(self, nd, boot, attempt):
        if nd.boot == boot:
            self._access(nd, attempt)

    def _next_frame(self, nd, boot):
        if nd.boot != boot:
            return
        if nd.txq:
            self._access(nd, nd.txq[0][2])
        else:
            nd.tx_busy = False

    def _link_failure(self, nd, boot, mac, frame=None):
        if nd.boot != boot or not nd.on:
            return
        self.stats["link_failures"] += 1
        self._submit(nd, cores.FAIL, IF_RADIO, mac, None, frame)

    def _deliver_radio(self, r, s, rssi, frame):
        if self.rssi_log and r.kind == "mobile" and s.kind == "agent":
            key = (r.idx, s.idx)
            last = self.rssi_last.get(key)
            if last is None or self.eng.now - last >= 1000000:  # one sample a second
                self.rssi_last[key] = self.eng.now
                self.log(r, "sim_rssi", {"agent": "%d.%d.%d.%d" % tuple(s.addr), "rssi": rssi})
        if s.sniffer:  # the attacker's: its receivers' state is looked at, its source may be forged
            op = cores.ATTACKED if self.col is not None else cores.FRAME
            self._submit(r, op, IF_RADIO, getattr(frame, "src", None) or s.mac, rssi, frame)
        else:
            self._submit(r, cores.FRAME, IF_RADIO, s.mac, rssi, frame)
        if self.col is not None:
            self.col.on_rx(self.eng.now, r, frame)

    # -- the backbone ------------------------------------------------------------------------

    def reachable(self, a, b):
        if not (a.bb_up and b.bb_up and b.on):
            return False
        part = self.partition
        if part:
            pa = part.get(a.idx)
            pb = part.get(b.idx)
            if pa is not None and pb is not None and pa != pb:
                return False
        return True

    def backbone_send(self, nd, mac, frame):
        if nd.sniffer:
            mac, frame = _spoofed(mac, frame)
        self._count(frame, nd, mac)
        self.stats["backbone_frames"] += 1
        if nd.bb is None or not nd.bb_up:
            return
        if mac == BROADCAST:
            targets = [t for t in self.by_bb.values() if t is not nd]
        else:
            t = self.by_bb.get(mac)
            targets = [t] if t is not None else []
        if self.bb_sniffers and not nd.sniffer:
            for t in self.bb_sniffers:
                if t not in targets:
                    targets.append(t)
        for t in targets:
            if self.reachable(nd, t):
                delay = self.bb_latency + (
                    self.rng.randrange(self.bb_jitter) if self.bb_jitter else 0
                )
                self.eng.at(self.eng.now + delay, self._bb_deliver, t, t.boot, nd, frame)

    def _bb_deliver(self, r, boot, s, frame):
        if r.boot != boot or not r.on or not self.reachable(s, r):
            return  # cut while in flight
        if s.sniffer:
            op = cores.ATTACKED if self.col is not None else cores.FRAME
            self._submit(r, op, IF_BACKBONE, getattr(frame, "src", None) or s.bb, 0, frame)
        else:
            self._submit(r, cores.FRAME, IF_BACKBONE, s.bb, 0, frame)
        if self.col is not None:
            self.col.on_rx(self.eng.now, r, frame)

    # -- traffic -----------------------------------------------------------------------------

    def _flow_send(self, fl, seq):
        eng = self.eng
        if eng.now > fl.stop_s * 1e6:
            return
        src = self.nodes[self.sc.by_id[fl.src].index]
        dst = self.nodes[self.sc.by_id[fl.dst].index]
        if src.on:
            payload = _APP.pack(APP_MAGIC, fl.index, seq) + bytes(max(0, fl.size - 8))
            if self.col is not None:
                self.col.on_app_send(eng.now, fl, seq)
            self._submit(src, cores.APP_SEND, None, dst.addr, None, payload)
        eng.at(eng.now + int(fl.interval_ms * 1000), self._flow_send, fl, seq + 1)

    def app_deliver(self, nd, datagram):
        b = bytes(datagram)
        if len(b) < 36 or b[9] != 17 or ((b[22] << 8) | b[23]) != 5000:
            return
        magic, flow, seq = _APP.unpack_from(b, 28)
        if magic != APP_MAGIC or flow >= len(self.sc.flows):
            return
        if self.col is not None:
            self.col.on_app_deliver(self.eng.now, nd, self.sc.flows[flow], seq)

"""Where the nodes' protocol cores run during a simulation, and how their work reaches the air.

A board does not answer a frame in no time: its driver hands the frame to the core, the core
decodes, verifies and decides, and only then does the answer go out. The simulator models that
as a processing latency (the scenario's ``processing_ms``): every action a core takes in
response to an input at virtual time t (a SEND, a DELIVER to the application) takes effect at
t + latency; its LOG events keep the time t.

That latency is also what lets a run use two processor cores with exactly the same results as
one. The world (air, backbone, traffic, faults) hands every core input to a CoreHost with its
time; virtual time is cut into windows of 1/DEPTH of the latency (world.PIPELINE_DEPTH). While
the world simulates the next windows, the hosts run the inputs of window k (and the timers of
their nodes that fall in it), and after window k + DEPTH - 1 their results are merged in a fixed
order (time, node, sequence) into the world. Whatever a core does in window k takes effect at
the earliest in window k + DEPTH, so no host ever needs anything from the future, and a node
gives the same answers wherever it runs: in the world's process (LocalCores) or in a forked
worker process (RemoteCores). Each node's inputs and timers run in time order; nodes never
touch each other's state.
"""

import heapq
import marshal
import multiprocessing
import os
import pickle
import platform
import resource
import signal
from operator import itemgetter

from hosttools.errors import ctrl_c_held
from hosttools.sim import ring
from mobility.actions import DELIVER, LOG, SEND
from mobility.ticks import MASK as TICKS_MASK

# -- the messages between the world and the core hosts ------------------------------------------
# Flat tuples of one fixed layout each way (one per frame a node hears: a class per message
# would cost more than the hand-over itself), unpacked whole where they are read.
#
# An input, world -> core host: (t_us, node index, op, boot, iface, peer, rssi, data): the time,
# the node, what happens, the node's boot number when it happened (the results of an earlier
# life are dropped), and the arguments of the sans-I/O call it becomes (docs/DESIGN.md), None
# where the op has none:
#   FRAME     on_frame(iface, peer: the sender's link address, rssi, data: the frame)
#   ATTACKED  the same, a frame from the attacker (the metrics look at the receiver's state
#             around it: only where the collector is)
#   APP_SEND  on_send(peer: the destination address, data: the payload)
#   FAIL      on_link_failure(iface, peer: the MAC not reached, data: the frame or None)
#   ON, OFF   power on (the role is built) and off (it is dropped)
FRAME, APP_SEND, FAIL, ON, OFF, ATTACKED = 0, 1, 2, 3, 4, 5
# A result, core host -> world: (t_us, node index, seq, boot, kind, iface, mac, data), one action
# of the node's role as its out buffer holds it (firmware/mobility/actions.py): kind SEND
# (data to mac on iface), DELIVER (data to the application) or LOG (data = (name, fields)); t_us
# is when it takes effect (a LOG keeps the input's time), seq numbers a host's results in order.
RES_T, RES_NODE, RES_SEQ, RES_BOOT, RES_KIND, RES_IFACE, RES_MAC, RES_DATA = range(8)
# the order in which the world merges a window's results
result_order = itemgetter(RES_T, RES_NODE, RES_SEQ)
# Between the world's process and its worker (RemoteCores), marshalled: to the worker
# (t_end, inputs) for the inputs of the window that ends at t_end (t_end None: part of the
# window, more follow), None to stop; back (results, the worker's next timer or None) for each
# window end, and its peak RSS (KiB) after None.


class LocalCores:
    """Runs the cores of the nodes ``owned`` (indices) of ``world`` in this process."""

    def __init__(self, world, owned, collector=None):
        self.world = world
        self.factory = world.factory
        self.nodes = world.nodes
        self.clock = [nd.clock for nd in world.nodes]  # each node's ticks offset (fixed)
        self.latency = world.latency_us
        self.owned = set(owned)
        self.col = collector  # only in the world's process (the attacker's probes)
        self.roles = {}
        self.wake = {}
        self.timers = []  # heap of (t_us, node index)
        self.out = []  # results of the current window so far
        self.seq = 0

    # one window: its inputs in time order, and the timers that fall before t_end
    def run(self, inputs, t_end):
        self.feed(inputs)
        return self.finish(t_end)

    def finish(self, t_end):
        """The end of a window: the timers that fall before t_end; returns the window's results
        (of every input fed since the last finish)."""
        timers = self.timers
        pop = heapq.heappop
        while timers and timers[0][0] < t_end:
            self._timer(*pop(timers))
        out = self.out
        self.out = []
        return out

    def feed(self, inputs):
        """Inputs of the current window in time order (the timers before each run first); a
        window's inputs may come in several parts."""
        timers = self.timers
        pop = heapq.heappop
        roles, clock = self.roles, self.clock
        for t, i, op, boot, iface, peer, rssi, data in inputs:
            while timers and timers[0][0] < t:
                self._timer(*pop(timers))
            if op == FRAME:  # most inputs: a frame for a node that is on
                role = roles.get(i)
                if role is not None:
                    # the frame as the air has it, bytes (docs/DESIGN.md: bytes, bytearray or
                    # memoryview): a core copies before it changes one, and every hearer of a
                    # broadcast shares the one object (and its hash, for the shared decoding)
                    role.on_frame((t // 1000 + clock[i]) & TICKS_MASK, iface, peer, rssi, data)
                    self._after(t, i, role, boot)
            else:
                self._input(t, i, op, boot, iface, peer, rssi, data)

    def next_timer(self):
        """When the earliest armed timer falls (None: none); some may be stale."""
        return self.timers[0][0] if self.timers else None

    def _ticks(self, i, t):
        return (t // 1000 + self.clock[i]) & TICKS_MASK

    def _input(self, t, i, op, boot, iface, peer, rssi, data):
        if op == ON:
            nd = self.nodes[i]
            nd.boot = boot  # (the factory seeds the role with it; a worker's copy is stale)
            role = self.factory.make(self.world, nd, self._ticks(i, t))
            self.roles[i] = role
            nd.role = role
            self._after(t, i, role, boot)
            return
        if op == OFF:
            self.roles.pop(i, None)
            self.wake[i] = None
            self.nodes[i].role = None
            return
        role = self.roles.get(i)
        if role is None:
            return
        now = self._ticks(i, t)
        if op == ATTACKED:  # was it accepted? the collector compares before and after
            nd = self.nodes[i]
            probe = self.col.attack_probe(nd, data)
            role.on_frame(now, iface, peer, rssi, data)
            self.col.after_attack_rx(t, nd, data, role, probe)
        elif op == APP_SEND:
            role.on_send(now, peer, data)
        elif op == FAIL:
            role.on_link_failure(now, iface, peer, data)
        self._after(t, i, role, boot)

    def _timer(self, t, i):
        role = self.roles.get(i)
        if role is None or self.wake.get(i) != t:
            return  # superseded by a later arming, or the node is off
        self.wake[i] = None
        role.on_timer(self._ticks(i, t))
        self._after(t, i, role, self.nodes[i].boot)
        w = self.wake.get(i)
        if w is not None and w <= t:
            # the role still wants the same instant: move it to the next millisecond
            w = (t // 1000 + 1) * 1000
            self.wake[i] = w
            heapq.heappush(self.timers, (w, i))

    def _after(self, t, i, role, boot):
        """Collect the role's actions, then (re)arm its timer."""
        out = role.out
        if out.n:
            res = self.out
            kinds, ifaces, macs, datas = out.kind, out.iface, out.mac, out.data
            due = t + self.latency
            for k in range(out.n):
                kind = kinds[k]
                self.seq += 1
                if kind == SEND:
                    res.append(
                        (due, i, self.seq, boot, SEND, ifaces[k], bytes(macs[k]), bytes(datas[k]))
                    )
                elif kind == DELIVER:
                    res.append((due, i, self.seq, boot, DELIVER, None, None, bytes(datas[k])))
                else:  # LOG: (name, fields)
                    res.append((t, i, self.seq, boot, LOG, None, None, datas[k]))
            out.clear()
        w = role.next_wake()
        if w is None:
            self.wake[i] = None
            return
        now_ms = t // 1000
        d = (w - now_ms - self.clock[i]) & TICKS_MASK
        if d >= 1 << 29:
            d -= 1 << 30
        tw = (now_ms + d) * 1000 if d > 0 else t
        if tw != self.wake.get(i):
            self.wake[i] = tw
            heapq.heappush(self.timers, (tw, i))


def _dumps(obj):
    try:
        return marshal.dumps(obj)
    except ValueError:  # a LOG field marshal does not know (rare): pickle says so with a tag
        return b"P" + pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)


def _loads(data):
    if data[:1] == b"P":
        return pickle.loads(data[1:])
    return marshal.loads(data)


def _worker(world, owned, link):
    cores = LocalCores(world, owned)
    while True:
        msg = _loads(link.recv())
        if msg is None:
            link.send(_dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
            break
        t_end, inputs = msg
        cores.feed(inputs)
        if t_end is not None:  # (None: more of this window's inputs follow)
            link.send(_dumps((cores.finish(t_end), cores.next_timer())))
    link.close()


class RingLink:
    """Both directions between the world and its worker as shared-memory rings (ring.py):
    no system call per message. Where stores may be seen out of order (not x86-64), PipeLink."""

    def __init__(self):
        self.out = ring.Ring()
        self.back = ring.Ring()
        self.parent = os.getpid()  # the world's process, made before the fork

    def child_side(self):
        parent = self.parent
        self.out, self.back = self.back, self.out  # the child writes back, reads out
        self.back.alive = self.out.alive = lambda: os.getppid() == parent
        return self

    def parent_side(self, proc):
        self.back.alive = self.out.alive = proc.is_alive
        return self

    def send(self, data):
        try:
            self.out.send(data)
        except ring.RingClosed:
            raise EOFError from None

    def recv(self):
        try:
            return self.back.recv()
        except ring.RingClosed:
            raise EOFError from None

    def ready(self):
        return self.back.ready()

    def close(self):
        pass  # the mappings go with the process


class PipeLink:
    """The same over a pipe (a system call and, mostly, a wake-up of the other side each)."""

    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self.conn, self.child = ctx.Pipe()

    def child_side(self):
        self.conn.close()
        self.conn = self.child
        return self

    def parent_side(self, proc):
        self.child.close()
        return self

    def send(self, data):
        self.conn.send_bytes(data)

    def recv(self):
        return self.conn.recv_bytes()

    def ready(self):
        return self.conn.poll(0)

    def close(self):
        self.conn.close()


def _child(world, owned, link):
    # Ctrl-C reaches every process of the terminal's group: the world's process stops the run
    # and says so in one line (roam: error: aborted); the worker (daemonic: ended with the
    # world's process, or when its link's other side is gone) keeps quiet, no traceback. (Until
    # here it held Ctrl-C as its parent did: _start_holding_ctrl_c.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _worker(world, owned, link.child_side())
    except EOFError:
        pass  # the world's process is gone (interrupted, or failed and said so itself)


def _start_holding_ctrl_c(proc):
    """Start (fork) ``proc`` with Ctrl-C held. One that arrived during the fork would raise
    KeyboardInterrupt inside an at-fork callback (logging's, threading's) in either process,
    where Python reports it as ignored and goes on: the run went on as if never interrupted,
    or the worker printed a traceback. Held, it is delivered again once the fork is done, in
    this process only; the worker ignores Ctrl-C from its first line (_child)."""
    with ctrl_c_held():
        proc.start()


def make_link():
    """The fastest link this machine runs safely."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        return RingLink()
    return PipeLink()


class RemoteCores:
    """The same as LocalCores for the nodes ``owned``, in a worker process forked from the
    world's (it inherits the scenario, the role factory and the nodes as they are now). A
    window's results come back one window later: submit() then collect() gives them and the
    worker's next timer."""

    def __init__(self, world, owned, link=None):
        ctx = multiprocessing.get_context("fork")
        link = link if link is not None else make_link()
        self.proc = ctx.Process(target=_child, args=(world, sorted(owned), link), daemon=True)
        _start_holding_ctrl_c(self.proc)
        self.link = link.parent_side(self.proc)
        self.owned = set(owned)
        self.pending = 0
        self.peak_rss_kib = None  # the worker's, when it has finished

    def submit(self, inputs, t_end):
        """The (rest of the) inputs of the window that ends at t_end: its results are to be
        collected."""
        self.stream(inputs, t_end)
        self.pending += 1

    def stream(self, inputs, t_end=None):
        """Part of the current window's inputs (t_end None), for the worker to start on."""
        try:
            self.link.send(_dumps((t_end, inputs)))
        except EOFError:
            raise RuntimeError("the simulator's worker process died") from None

    def ready(self):
        """True when collect() would not wait."""
        return self.link.ready()

    def collect(self):
        self.pending -= 1
        try:
            return _loads(self.link.recv())
        except EOFError:
            raise RuntimeError("the simulator's worker process died") from None

    def close(self):
        try:
            while self.pending:
                self.collect()
            self.link.send(_dumps(None))
            self.peak_rss_kib = _loads(self.link.recv())
        except (OSError, EOFError, RuntimeError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
        self.link.close()

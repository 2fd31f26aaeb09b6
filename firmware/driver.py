"""The asyncio loop that runs a role of the sans-I/O core on a board.

It feeds the role its events (frames from the links, due timers, the application's sends) with
the time from ``time.ticks_ms`` and carries out the actions the role answers with: SEND on a
link (a unicast ESP-NOW send that is not acknowledged is reported back as a link failure),
DELIVER to the application (logged as ``app_rx``), LOG as one JSON line on the console.

It measures timer lateness (how long after the wake-up time the role actually ran) into a
preallocated histogram and logs it every ``lateness_every_ms`` as a ``lateness`` event with
timers (count), p50, p99 and max in ms: the lab benchmark reads those lines.
"""

import array
import asyncio
import gc
import sys
import time

from fieldlog.wire import is_field
from mobility import ipv4, ticks
from mobility.actions import DELIVER, IF_BACKBONE, IF_RADIO, LOG, SEND
from mobility.compat import const

_LATE_BUCKETS = const(256)  # ms; later than that counts in the last bucket

# asyncio loads its event and funcs parts on their first use, which came late in a board's
# start (the field log's stream, then the driver), when a plain ESP32 router's heap was full
# and in pieces: no 592-byte block for them, a crash at every start. They are resident in
# any case: loaded with the driver, ahead of the role's modules.
asyncio.Event, asyncio.gather  # noqa: B018


class Driver:
    def __init__(
        self,
        role,
        radio,
        log,
        backbone=None,
        clock=time.ticks_ms,
        wdt=None,
        lateness_every_ms=10000,
        field=None,
        net=None,
    ):
        self.role = role
        self.field = field  # fieldlog.stream.Stream: the log store and its stream (or None)
        self.net = net  # fieldlog.backbone.Backbone: the field socket, on a backbone board
        # the update service (update/service.py): loaded by the first update message, dropped
        # after a quiet minute; what it needs is set by run()
        self.update = None
        self.update_key = None
        self.node = 0
        self.address = b"\x00\x00\x00\x00"
        self.rand = None
        self.radio = radio
        self.backbone = backbone
        self.log = log
        self.clock = clock
        self.wdt = wdt
        # timers per ms of lateness, 16 bits each (a count stops at 65535): 512 bytes whatever
        # the word (a list of ints was 1 KB on a board and one of the boot's biggest blocks)
        self.late = array.array("H", bytes(2 * _LATE_BUCKETS))
        self.late_n = 0
        self.late_max = 0
        self.lateness_every_ms = lateness_every_ms
        self.kick = asyncio.Event()
        self._fail = []
        self.delivered = 0
        self.started = clock()  # flows start and stop relative to this (about the boot)

    # -- actions ----------------------------------------------------------------------------

    def run_actions(self, now):
        out = self.role.out
        fail = self._fail
        for i in range(out.n):
            k = out.kind[i]
            if k == SEND:
                link = self.radio if out.iface[i] == IF_RADIO else self.backbone
                if link is None:
                    continue
                try:
                    if not link.send(out.mac[i], out.data[i]):
                        # the frame may be a reused buffer: the core routes it again at once
                        fail.append((out.iface[i], out.mac[i], out.data[i]))
                except (OSError, ValueError) as e:
                    self.log.event("send_error", {"error": str(e)}, now)
            elif k == DELIVER:
                self.deliver(now, out.data[i])
            elif k == LOG:
                ev = out.data[i]
                self.log.event(ev[0], ev[1], now)
        out.clear()
        while fail:
            iface, mac, frame = fail.pop(0)
            self._unacknowledged(now, iface, mac, frame)

    def _unacknowledged(self, now, iface, mac, frame):
        """A unicast send of ``frame`` (maybe the reused receive buffer) was not acknowledged:
        the core routes it again at once."""
        self.role.on_link_failure(now, iface, mac, frame)
        self.run_actions(now)

    def deliver(self, now, data):
        self.delivered += 1
        try:
            h = ipv4.decode(data)
            sport, dport, payload = ipv4.decode_udp(h)
            seq = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else -1
            fields = {"src": ipv4.ntoa(h.src), "seq": seq, "len": len(payload)}
            self.log.event("app_rx", fields, now)
        except ValueError as e:
            self.log.event("app_rx", {"error": str(e)}, now)

    # -- tasks ------------------------------------------------------------------------------

    def _record_lateness(self, late):
        if late < 0:
            late = 0
        if late > self.late_max:
            self.late_max = late
        i = late if late < _LATE_BUCKETS else _LATE_BUCKETS - 1
        if self.late[i] < 0xFFFF:
            self.late[i] += 1
        self.late_n += 1

    def lateness(self):
        """(n, p50, p99, max) in ms since the last report."""
        n = self.late_n
        if n == 0:
            return (0, 0, 0, 0)
        p50 = p99 = -1
        acc = 0
        for ms in range(_LATE_BUCKETS):
            acc += self.late[ms]
            if p50 < 0 and acc * 2 >= n:
                p50 = ms
            if acc * 100 >= n * 99:
                p99 = ms
                break
        return (n, p50, p99, self.late_max)

    def _report_lateness(self, now):
        n, p50, p99, mx = self.lateness()
        self.log.event("lateness", {"timers": n, "p50": p50, "p99": p99, "max": mx}, now)
        for i in range(_LATE_BUCKETS):
            self.late[i] = 0
        self.late_n = 0
        self.late_max = 0

    async def timers(self):
        report_at = ticks.add(self.clock(), self.lateness_every_ms)
        while True:
            wake = self.role.next_wake()
            now = self.clock()
            wait = ticks.diff(wake, now) if wake is not None else 1000
            if ticks.diff(report_at, now) < wait:
                wait = ticks.diff(report_at, now)
            if wait > 0:
                self.kick.clear()
                try:
                    await asyncio.wait_for_ms(self.kick.wait(), wait)
                    continue  # a frame changed the plan: recompute the wake-up time
                except asyncio.TimeoutError:
                    pass
            now = self.clock()
            if self.wdt is not None:
                self.wdt.feed()
            if ticks.diff(now, report_at) >= 0:
                self._report_lateness(now)
                report_at = ticks.add(now, self.lateness_every_ms)
                if self.update is not None:
                    from update import board

                    board.idle(self, now)  # a quiet minute: the service goes
            wake = self.role.next_wake()
            if wake is not None and ticks.diff(now, wake) >= 0:
                self._record_lateness(ticks.diff(now, wake))
                self.role.on_timer(now)
                self.run_actions(now)

    async def radio_rx(self):
        radio = self.radio
        role = self.role
        while True:
            mac, msg = await radio.arecv()  # msg: the link's reused receive buffer
            if mac is None:
                continue
            # An agent's hot path first: a datagram for a local binding goes on in the same
            # buffer at once, without the action buffer (Agent.forward_in_cell; b[1], b[2]: the
            # binding's MAC and interface, cell.B_MAC and B_IFACE), whatever its port: the field
            # service's frames are addressed beyond the cell (the collector, the laptop).
            # Written out here rather than in a method: MicroPython puts the state of a call
            # with a try block on the heap (144 bytes and more per datagram), this coroutine's
            # state was allocated once.
            b = role.forward_in_cell(msg)
            if b is None:
                if is_field(msg):
                    self._field_frame(self.clock(), mac, msg)
                else:
                    self._core_frame(self.clock(), mac, msg)
                continue
            link = radio if b[2] == IF_RADIO else self.backbone
            if link is None:
                continue
            try:
                if not link.send(b[1], msg):
                    self._unacknowledged(self.clock(), b[2], b[1], msg)
            except (OSError, ValueError) as e:
                self.log.event("send_error", {"error": str(e)}, self.clock())

    def _core_frame(self, now, mac, msg):
        rssi = self.radio.rssi(mac)
        self.role.on_frame(now, IF_RADIO, mac, rssi, msg)
        self.run_actions(now)
        self.kick.set()  # the frame may have changed the role's plan: timers() looks again

    def _field_frame(self, now, mac, msg):
        """The field service's frame, not the core's: a backbone board relays another board's
        log or update answer; a radio-only board takes an update message for itself."""
        if self.net is not None:
            self.net.relay(now, mac, msg)
        elif 0x10 <= msg[28] < 0x1F:
            from update import board

            board.handle(self, bytes(msg[28:]), board.radio_reply(self, mac, msg))

    # -- updates (update/board.py: loaded by the first update message) -----------------------

    def on_update(self, msg, send):
        """An update message for this board (update/wire.py); the answer goes by ``send``."""
        from update import board

        board.handle(self, msg, send)

    async def backbone_rx(self):
        link = self.backbone
        role = self.role
        while True:
            src, msg = await link.arecv()
            now = self.clock()
            role.on_frame(now, IF_BACKBONE, src, 0, msg)
            self.run_actions(now)
            self.kick.set()

    async def run(self, flows=()):
        """Run the role; `flows` is a list of {"to", "every_ms", "size", "start_ms",
        "stop_ms"} (application traffic this node sends)."""
        tasks = [asyncio.create_task(self.timers()), asyncio.create_task(self.radio_rx())]
        if self.backbone is not None:
            tasks.append(asyncio.create_task(self.backbone_rx()))
        if self.field is not None:
            tasks.append(asyncio.create_task(self.field.run(self.clock)))
        if self.net is not None:
            tasks.append(asyncio.create_task(self.net.serve()))
        if flows:
            import traffic  # (only a board with flows loads it)

            for f in flows:
                flow = traffic.flow(
                    self,
                    f["to"],
                    f.get("every_ms", 1000),
                    f.get("size", 16),
                    f.get("start_ms", 0),
                    f.get("stop_ms", 0),
                )
                tasks.append(asyncio.create_task(flow))
        await asyncio.gather(*tasks)

    async def run_board(self, flows, healthy_ms, version, pending=False):
        """A board's job (start.py builds it): run() and, ``healthy_ms`` after the start, the
        running version's proof of health (``version``: its set and slot, for the log;
        ``pending``: it booted on probation, a change an update switched to)."""
        asyncio.create_task(self._healthy_later(healthy_ms, version, pending))
        await self.run(flows)

    async def _healthy_later(self, healthy_ms, version, pending):
        await asyncio.sleep_ms(healthy_ms)
        import safemode

        safemode.healthy()  # the crash count starts again
        if not pending:
            # nothing to prove: the update slots' code (slots.py and romimage.py, some KB
            # while loaded) stays out of a running board's heap; loaded here it was the
            # moment a plain ESP32 agent, tight on heap, ran out (docs/LAB.md "Heap")
            return
        import slots

        done = slots.healthy()
        slots.drop()  # boot-time code again (heap), with romimage, which it imports
        if done:  # a version an update switched to has proved itself
            self.log.event("ota_healthy", version)


def main(boot=None):
    """Build the board from config.json (start.py) and run it forever (called by main.py;
    ``boot``: the version slots.select() chose)."""
    import start

    job, log = start.build(boot)
    # start.py is boot-time code, heap on a board: freed before the role's tables fill up
    del start
    sys.modules.pop("start", None)
    gc.collect()
    if job is None:
        return  # no config: the REPL (start.build logged why and closed the log)
    try:
        serve(job, log)
    finally:
        log.close()  # the batch in RAM goes to flash: at the REPL, before a reset


def serve(job, log):
    """Run the board's tasks for ever; a crash is logged and the board resets."""
    try:
        asyncio.run(job)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a field board must come back by itself
        sys.print_exception(e)  # (where: on the console, as main.py's crash at the start)
        try:
            import crashsite  # (only now: a running board's heap does not hold its code)

            at = crashsite.where(e)
        except MemoryError:  # no heap even for that: the line says what, not where
            at = None
        log.event("crash", {"error": repr(e), "at": at})
        log.close()
        time.sleep_ms(1000)
        import machine

        machine.reset()

"""The laptop's update session (hosttools/ota/session.py) against the board's update service
(firmware/update) in-process: a real Session, a real Service, the board's flash in a scratch
directory (the current directory, as on a board), a simulated link that delays and loses
messages, and virtual time (no sleeping, no sockets).

A board reboot (after the reply to a COMMIT or RESET, or a crash) runs ``slots.select()`` as
boot.py does, bumps the boot number and starts a new Service (a new session); the board is
deaf while it boots. A version on probation is marked healthy (``slots.healthy()``) once it ran
``healthy_after`` virtual seconds; a power cut restarts the board without any slots change.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import struct
import sys
from collections.abc import Callable

import pytest
import slots

from fieldlog import relay
from hosttools.ota import plan
from hosttools.ota.session import Session
from update import service, wire

SECRET = b"\x5a" * 16
NODE = 7
KEY = relay.node_key(SECRET, wire.PURPOSE_UPDATE, NODE)
OTHER_KEY = relay.node_key(SECRET, wire.PURPOSE_UPDATE, 8)  # another board's key
CFG = {"role": "mobile", "node_id": 7, "address": "10.0.0.7", "keys": {"256": "00" * 16}}
MPY = 0x306
STEP = 0.005  # s of virtual time per step while messages are on the link
DELAY = 0.01  # s a message takes one way
UP, DOWN = "up", "down"


def make_payload(seed: int) -> plan.Payload:
    """A firmware set of three files, one of them an empty package __init__."""
    rng = random.Random(1000 + seed)
    return plan.firmware(
        [
            plan.File("roamx/__init__.py", b""),
            plan.File("driver.mpy", rng.randbytes(9000)),
            plan.File("roamx/agent.mpy", rng.randbytes(30000)),
        ]
    )


BIG = 2  # index of the payload's largest file


class Link:
    """Messages in flight both ways: each arrives DELAY later, unless it is lost."""

    def __init__(self, rng: random.Random, loss_up: float = 0.0, loss_down: float = 0.0):
        self.rng = rng
        self.loss = {UP: loss_up, DOWN: loss_down}
        self.queue: list[tuple[float, int, str, bytes]] = []
        self.seq = 0
        self.lost = {UP: 0, DOWN: 0}

    def send(self, now: float, direction: str, msg: bytes) -> None:
        if self.rng.random() < self.loss[direction]:
            self.lost[direction] += 1
            return
        self.seq += 1
        heapq.heappush(self.queue, (now + DELAY, self.seq, direction, msg))

    def due(self, now: float) -> list[tuple[str, bytes]]:
        out = []
        while self.queue and self.queue[0][0] <= now + 1e-9:
            _, _, direction, msg = heapq.heappop(self.queue)
            out.append((direction, msg))
        return out


class Board:
    """The board as its driver runs the update service, with reboots, probation and crashes."""

    def __init__(
        self,
        rng: random.Random,
        healthy_after: float | None = 3.0,
        boot_s: float = 1.0,
        crash_every: float | None = None,
    ) -> None:
        self.rng = rng
        self.healthy_after = healthy_after  # None: the new version never gets healthy
        self.boot_s = boot_s  # deaf for this long after a reset
        self.crash_every = crash_every  # a version on probation crashes after this long
        self.boot = 1
        self.now = 0.0
        self.booted_at = 0.0
        self.up_at = 0.0
        self.health_at: float | None = None
        self.crash_at: float | None = None
        self.selected: list[dict] = []  # what slots.select() returned at each reboot
        self.crashes = 0
        self.commands: list[tuple[int, int, bytes]] = []  # (boot, type, body) of each taken
        self.mute: dict[int, int] = {}  # command type -> how many of its ACKs get lost
        self.path = list(sys.path)  # sys.path as a fresh boot has it
        self.deaf_to_commands = False
        self.svc = self._service()

    def _service(self) -> service.Service:
        return service.Service(NODE, KEY, self.info, self.rng.getrandbits, int(self.now * 1000))

    def info(self) -> tuple[bytes, int, int, int]:
        with open("config.json", "rb") as f:
            cfg_hash = hashlib.sha256(f.read()).digest()
        return cfg_hash, self.boot, int(self.now - self.booted_at), MPY

    def handle(self, now: float, msg: bytes) -> bytes | None:
        self.now = now
        if now < self.up_at:
            return None  # still booting: nobody listens
        if self.deaf_to_commands and msg[0] != wire.HELLO:
            return None  # as a board whose heap cannot take a command: dropped, unanswered
        taken = self.svc.taken
        reply = self.svc.handle(int(now * 1000), msg)
        if self.svc.taken > taken:
            self.commands.append((self.boot, msg[0], bytes(wire.body(msg))))
            if self.mute.get(msg[0]):
                self.mute[msg[0]] -= 1
                return None  # taken, but its ACK is lost on the air
        return reply

    def reboot(self, now: float, select: bool = True) -> None:
        if select:
            sys.path[:] = self.path  # a new interpreter: select() puts the slot first again
            self.selected.append(slots.select())
        self.boot += 1
        self.now = self.booted_at = now
        self.up_at = now + self.boot_s
        self.svc = self._service()
        probation = slots.read().get("pending")
        self.health_at = None
        self.crash_at = None
        if probation and self.healthy_after is not None:
            self.health_at = now + self.healthy_after
        if probation and self.crash_every is not None:
            self.crash_at = now + self.crash_every

    def power_cut(self, now: float) -> None:
        """Restart without a COMMIT: a new boot, a new service, the flash as it was."""
        self.reboot(now, select=False)

    def tick(self, now: float) -> None:
        self.now = now
        if self.health_at is not None and now >= self.health_at:
            self.health_at = None
            slots.healthy()
        if self.crash_at is not None and now >= self.crash_at:
            self.crashes += 1
            self.reboot(now)

    def next_event(self) -> float:
        return min(t for t in (self.health_at, self.crash_at, math.inf) if t is not None)

    def data_taken(self, boot: int, index: int) -> list[tuple[int, int]]:
        """(offset, length) of the DATA of file ``index`` the service took in boot ``boot``."""
        out = []
        for b, t, body in self.commands:
            if b == boot and t == wire.DATA and body[0] == index:
                out.append((struct.unpack_from(">I", body, 1)[0], len(body) - 5))
        return out


class Sim:
    def __init__(
        self,
        seed: int,
        loss_up: float = 0.0,
        loss_down: float = 0.0,
        **board: float | None,
    ) -> None:
        self.rng = random.Random(seed)
        self.board = Board(self.rng, **board)  # type: ignore[arg-type]
        self.link = Link(self.rng, loss_up, loss_down)
        self.now = 0.0
        self.data_sent = 0  # DATA bytes the laptop sent, retries included
        self.data_at: set[tuple[int, int]] = set()  # (file, offset) of the DATA sent
        self.data_again = 0  # DATA messages sent again (the same file and offset)

    def session(self, op: str = "firmware", payload: plan.Payload | None = None, **kw) -> Session:
        return Session(NODE, KEY, op, payload, now=self.now, rand=self.rng.randbytes, **kw)

    def _to_board(self, msg: bytes) -> None:
        reply = self.board.handle(self.now, msg)
        if reply is not None:
            self.link.send(self.now, DOWN, reply)
        if self.board.svc.after:  # replied; now the board resets
            self.board.reboot(self.now)

    def poll(self, session: Session) -> None:
        """Send what the session has to send now."""
        for msg in session.poll(self.now):
            if msg[0] == wire.DATA:
                self.data_sent += len(msg) - wire.HEAD - 5 - wire.TAG
                at = (msg[wire.HEAD], struct.unpack_from(">I", msg, wire.HEAD + 1)[0])
                self.data_again += at in self.data_at
                self.data_at.add(at)
            self.link.send(self.now, UP, msg)

    def run(
        self,
        session: Session | None,
        until: float = 60.0,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Run until the session ends, ``stop()`` says so or ``until`` virtual seconds passed
        (None: no laptop, the link and the board go on by themselves)."""
        end = self.now + until
        while self.now < end:
            for direction, msg in self.link.due(self.now):
                if direction == UP:
                    self._to_board(msg)
                elif session is not None:
                    session.on_message(self.now, msg)
            self.board.tick(self.now)
            if session is not None and (session.finished or (stop is not None and stop())):
                return
            wake = math.inf
            if session is not None:
                self.poll(session)
                wake = session.wake()
            if self.link.queue:
                self.now += STEP
            else:  # idle: on to the next thing that happens
                self.now = max(self.now + STEP, min(wake, self.board.next_event(), end))


@pytest.fixture(autouse=True)
def flash(tmp_path, monkeypatch):
    """The board's flash: the current directory, with a valid config. slots.select() puts the
    active slot on sys.path: it is put back afterwards."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(CFG))
    path = list(sys.path)
    yield tmp_path
    sys.path[:] = path


def slot_files(slot: str) -> dict[str, bytes]:
    out = {}
    base = "fw/" + slot
    for d, _, names in os.walk(base):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, base).replace(os.sep, "/")] = f.read()
    return out


def assert_installed(payload: plan.Payload, slot: str = "a") -> None:
    st = slots.read()
    assert (st["active"], st["previous"], st["pending"]) == (slot, "root", None)
    assert st["set"] == payload.set_hash.hex()
    assert slot_files(slot) == {f.path: f.data for f in payload.files}


# -- 1. a clean update -----------------------------------------------------------------------------


def test_a_clean_update_installs_the_set_and_waits_for_its_health_mark():
    payload = make_payload(0)
    assert [len(f.data) for f in payload.files][0] == 0  # an empty package __init__
    sim = Sim(seed=0)
    s = sim.session(payload=payload)
    sim.run(s)
    assert s.state == "done", s.error
    assert "healthy" in s.result and payload.short in s.result
    assert_installed(payload)
    assert slots.read().get("rollback") is None
    # the path it took: every state of an update, the health mark after the reboot
    for state in ("hello", "begin", "file", "data", "commit", "rebooting", "probation"):
        assert state in s.entered, state
    assert s.entered["done"] >= s.entered["rebooting"] + sim.board.healthy_after
    assert sim.board.boot == 2 and len(sim.board.selected) == 1
    assert sim.board.selected[0]["active"] == "a" and sim.board.selected[0]["tries"] == 1
    assert s.retries == 0 and s.sent_bytes == sim.data_sent == payload.size
    assert sys.path[0] == "/fw/a"  # what select() did; the fixture puts it back


# -- 2. a lossy link -------------------------------------------------------------------------------


def lossy(seed: int) -> Sim:
    rng = random.Random(seed)
    return Sim(seed, loss_up=rng.uniform(0.1, 0.2), loss_down=rng.uniform(0.1, 0.2))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_an_update_over_a_lossy_link_completes(seed):
    payload = make_payload(seed)
    sim = lossy(seed)
    s = sim.session(payload=payload)
    sim.run(s, until=120.0)
    assert s.state == "done", s.error
    assert sim.link.lost[UP] > 0 and sim.link.lost[DOWN] > 0
    # what was lost was sent again: commands after a timeout, DATA from where the board is
    assert s.retries + sim.data_again > 0
    assert s.sent_bytes == sim.data_sent > payload.size
    assert_installed(payload)


def test_data_sent_again_counts_as_retries():
    payload = make_payload(4)
    sim = lossy(4)
    s = sim.session(payload=payload)
    sim.run(s, until=120.0)
    assert s.state == "done", s.error
    assert sim.data_again > 0 and s.sent_bytes > payload.size  # 21 KB of 39 KB sent again
    assert s.retries > 0


# -- 3. a power cut in the data phase --------------------------------------------------------------


def test_a_power_cut_in_the_data_phase_resumes_where_the_board_stopped():
    payload = make_payload(3)
    big = payload.files[BIG]
    sim = Sim(seed=3)
    s = sim.session(payload=payload)

    def half_way() -> bool:
        return s.state == "data" and s.file_i == BIG and s.acked >= len(big.data) // 2

    sim.run(s, stop=half_way)
    assert not s.finished
    have = os.stat("fw/a/roamx/agent.mpy.part").st_size
    assert have >= len(big.data) // 2
    sim.board.power_cut(sim.now)
    sim.run(s)
    assert s.state == "done", s.error
    assert_installed(payload)
    # boot 1: the cut; boot 2: the transfer resumed; boot 3: the new version
    assert sim.board.boot == 3 and len(sim.board.selected) == 1
    resumed = sim.board.data_taken(2, BIG)
    assert resumed and min(off for off, _ in resumed) >= have  # not from byte 0
    assert not sim.board.data_taken(2, 1)  # the file done before the cut: not sent again
    assert s.sent_bytes == sim.data_sent < 2 * payload.size


def test_a_board_that_restarts_before_it_takes_the_commit_is_committed_again():
    # an agent short of heap crashed (MemoryError) as the COMMIT was on its way: it came back
    # on its old version with the new set staged, and the deploy failed ("restarted without
    # switching"); the set is on its flash, so the session begins again and commits
    payload = make_payload(4)
    sim = Sim(seed=4)
    s = sim.session(payload=payload)
    sim.run(s, stop=lambda: s.state == "commit")
    assert not s.finished
    sim.link.loss[UP] = 1.0  # the COMMIT (and its resends) never arrive ...
    sim.run(s, until=0.5)
    sim.board.power_cut(sim.now)  # ... and the board restarts on the old version
    sim.link.loss[UP] = 0.0
    sim.run(s)
    assert s.state == "done", s.error
    assert_installed(payload)
    assert s.unswitched == 1
    # the files staged before the restart were not sent again
    assert s.sent_bytes == sim.data_sent == payload.size


# -- 4. a version that never gets healthy ----------------------------------------------------------


def test_a_version_that_never_gets_healthy_is_rolled_back_and_the_session_fails():
    payload = make_payload(4)
    sim = Sim(seed=4, healthy_after=None, crash_every=2.0)
    s = sim.session(payload=payload)
    sim.run(s)
    assert s.state == "failed"
    assert "rolled back" in s.error
    st = slots.read()
    assert (st["active"], st["pending"]) == ("root", None)
    rb = st["rollback"]
    assert rb["what"] == "firmware" and rb["from"] == payload.set_hash.hex()
    assert rb["slot"] == "a" and rb["tries"] == slots.MAX_TRIES
    assert sim.board.selected[-1].get("rolled_back")
    # one boot after the COMMIT, then a crash per try: MAX_TRIES + 1 boots of the new version
    assert sim.board.crashes == slots.MAX_TRIES
    assert sum(1 for _, t, _ in sim.board.commands if t == wire.COMMIT) == 1
    assert sys.path[0] != "/fw/a"  # the root runs again


def test_a_rollback_is_recognised_when_the_commit_ack_was_lost():
    payload = make_payload(4)
    sim = Sim(seed=4, healthy_after=None, crash_every=2.0)
    sim.board.mute[wire.COMMIT] = 1  # the COMMIT is taken, its ACK lost
    s = sim.session(payload=payload)
    sim.run(s)
    assert s.state == "failed" and "rolled back" in s.error
    # the version that was rolled back is not installed a second time
    assert sum(1 for _, t, _ in sim.board.commands if t == wire.COMMIT) == 1
    assert sim.board.crashes == slots.MAX_TRIES


def test_a_config_update_is_switched_then_kept_or_rolled_back():
    new = json.dumps(dict(CFG, adv_interval_ms=500)).encode()
    payload = plan.config(new)
    sim = Sim(seed=9)
    s = sim.session("config", payload)
    sim.run(s)
    assert s.state == "done", s.error
    assert "healthy" in s.result
    with open("config.json", "rb") as f:
        assert f.read() == new
    st = slots.read()
    assert (st["active"], st["pending"], st.get("rollback")) == ("root", None, None)
    # a config the board never gets healthy with: the one before comes back
    newer = json.dumps(dict(CFG, adv_interval_ms=700)).encode()
    sim.board.healthy_after, sim.board.crash_every = None, 2.0
    s = sim.session("config", plan.config(newer))
    sim.run(s)
    assert s.state == "failed" and "rolled back" in s.error and "config" in s.error
    with open("config.json", "rb") as f:
        assert f.read() == new
    assert slots.read()["rollback"]["what"] == "config"


# -- 5. status and reset ---------------------------------------------------------------------------


def test_status_reads_the_board_and_changes_nothing(flash):
    sim = Sim(seed=5)
    s = sim.session("status")
    sim.run(s)
    assert (s.state, s.result) == ("done", "status")
    st = s.status
    assert st is not None
    assert (st["slot"], st["boot"], st["pending"], st["fw"]) == ("root", 1, None, None)
    cfg = (flash / "config.json").read_bytes()
    assert st["config"] == hashlib.sha256(cfg).digest()[:8].hex()
    assert st["mpy"] == MPY
    assert sorted(p.name for p in flash.iterdir()) == ["config.json"]
    assert sim.board.boot == 1 and sim.board.svc.taken == 0


def test_reset_restarts_the_board():
    sim = Sim(seed=6)
    s = sim.session("reset")
    svc = sim.board.svc
    sim.run(s)
    assert svc.after == "soft"
    assert s.state == "done", s.error
    assert "reset" in s.result and "boot 2" in s.result
    assert sim.board.boot == 2 and len(sim.board.selected) == 1
    assert slots.read()["active"] == "root"


# -- 6. no answer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("silent_from", ["start", "data"])
def test_a_board_that_says_nothing_for_give_up_s_fails_the_session(silent_from):
    payload = make_payload(6)
    sim = Sim(seed=6)
    s = sim.session(payload=payload, give_up_s=5.0)
    if silent_from == "data":
        sim.run(s, stop=lambda: s.state == "data" and s.acked > 0)
        assert not s.finished
    sim.link.loss[UP] = 1.0  # from now on nothing reaches the board
    silent = sim.now
    sim.run(s)
    assert s.state == "failed"
    assert "no answer" in s.error
    assert 5.0 <= sim.now - silent <= 5.5
    assert s.poll(sim.now) == []  # finished: nothing more to send


def test_a_board_that_answers_hello_but_takes_no_command_fails_the_session():
    # an agent whose heap could not load the staging code answered every HELLO and dropped
    # every BEGIN: the session started over for ever and `roam deploy --ota` never ended
    payload = make_payload(6)
    sim = Sim(seed=6)
    sim.board.deaf_to_commands = True
    s = sim.session(payload=payload)
    sim.run(s, until=300.0)
    assert s.state == "failed", s.state
    assert "takes no command" in s.error, s.error
    assert sim.now < 120.0, sim.now


# -- 7. the laptop killed mid-transfer -------------------------------------------------------------


def test_a_new_session_after_the_laptop_died_resumes_the_transfer():
    payload = make_payload(7)
    big = payload.files[BIG]
    sim = Sim(seed=7)
    first = sim.session(payload=payload)
    sim.run(first, stop=lambda: first.file_i == BIG and first.acked >= len(big.data) // 2)
    assert first.state == "data"
    sim.poll(first)  # a window of DATA on its way
    assert len(first.inflight) == first.window
    sent_before = first.sent_bytes
    # the laptop is gone (``first`` is never polled again); what it had sent still arrives
    sim.run(None, until=1.0)
    have = os.stat("fw/a/roamx/agent.mpy.part").st_size
    assert have > first.acked  # the board took the window the dead laptop sent
    second = sim.session(payload=payload)
    sim.run(second)
    assert second.state == "done", second.error
    assert_installed(payload)
    assert second.sent_bytes < payload.size  # not the whole payload again
    assert second.sent_bytes <= payload.size - have
    assert sent_before + second.sent_bytes < 2 * payload.size
    # the same board session (no reboot before the COMMIT): it carried on above its counter
    assert sim.board.boot == 2 and len(sim.board.selected) == 1
    resumed = sim.board.data_taken(1, BIG)
    assert sum(n for _, n in resumed) == len(big.data)  # every byte taken once


# -- 8. forged and foreign replies -----------------------------------------------------------------


def test_replies_under_another_key_or_with_a_forged_tag_are_ignored():
    sim = Sim(seed=8)
    s = sim.session("firmware", make_payload(8))
    (hello,) = s.poll(0.0)
    _, _, _, nonce = wire.head(hello)
    genuine = sim.board.handle(0.0, hello)
    assert genuine is not None
    session = sim.board.svc.session
    body = bytes(wire.body(genuine))
    forged = [
        wire.sign(OTHER_KEY, wire.STATUS, NODE, session, nonce, body),  # another board's key
        wire.sign(OTHER_KEY, wire.STATUS, 8, session, nonce, body),  # another board, its key
        wire.sign(KEY, wire.STATUS, 8, session, nonce, body),  # another node number
        genuine[:-1] + bytes([genuine[-1] ^ 1]),  # a forged tag
        genuine[:20] + bytes([genuine[20] ^ 1]) + genuine[21:],  # a changed body
        genuine[: wire.HEAD + wire.TAG - 1],  # too short
        b"",
    ]
    for msg in forged:
        assert s.on_message(0.01, msg) is False
    assert s.state == "hello" and s.status is None
    assert s.on_message(0.01, genuine) is True
    assert s.state == "begin"
    # an ACK to the BEGIN in flight, forged: ignored, the BEGIN stays in flight
    (begin,) = s.poll(0.02)
    _, _, sess, counter = wire.head(begin)
    assert sess == session
    for key in (OTHER_KEY, b"\x00" * 16):
        assert s.on_message(0.03, wire.ack(key, NODE, session, counter, wire.OK)) is False
    ack = wire.ack(KEY, NODE, session, counter, wire.OK)
    assert s.on_message(0.03, ack[:-1] + bytes([ack[-1] ^ 0x80])) is False
    assert s.state == "begin" and counter in s.inflight
    assert s.on_message(0.03, ack) is True
    assert s.state == "file"

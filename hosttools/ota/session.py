"""One board's update, as the laptop runs it: a sans-I/O state machine (no sockets, no clock).

``poll(now)`` returns the messages to send now (first sends, retries after a timeout),
``on_message(now, msg)`` takes what the board answered, ``wake()`` says when to poll again.
The runner (runner.py) does the I/O for many sessions at once.

States (``state``)::

    hello ──STATUS──> begin ─> file/data (one file after the other) ─> commit ─> rebooting
      │                 ^                                                          │
      │                 └──── the board rebooted or stopped answering: hello ──────┤
      ├─ "status": done                                   STATUS running the set ──┤
      ├─ "reset": reset ─> rebooting ─> done                 on probation: probation
      └─ already running the set: done                     healthy: done; rolled back: failed

Every command gets a fresh counter, also a retry (the board drops a counter it has seen, so a
retry of a command that did arrive is answered by nothing; the commands are idempotent: FILE
answers what the board has, DATA at an offset it has answers OFFSET). A file streams with
``window`` DATA messages in flight, go-back-N from what the board says it has.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from hosttools.firmware import update_wire
from hosttools.ota.plan import Payload

W = update_wire()

HELLO_EVERY = 0.5  # s between HELLOs while a board does not answer (or reboots)
PROBATION_EVERY = 1.0  # s between HELLOs while a new version proves itself
LOST_AFTER = 4  # timeouts in a row: the board rebooted or is out of reach, start over
STALLS = 4  # starts over in a row without a byte more on the board: it answers HELLO but does
# not take the transfer (short of heap, see its log_stats rx_oom); the session fails
CODE_TEXT = {
    W.BUSY: "the last change is still on probation",
    W.BAD: "the board refused the command",
    W.MISMATCH: "a file did not arrive intact",
    W.NO_SPACE: "no room on the board's flash",
    W.MISSING: "files missing at commit",
    W.BAD_CONFIG: "the board refused the config",
    W.NO_BEGIN: "the board lost the transfer",
}


class Session:
    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        self.entered.setdefault(value, self._now - self.started)

    def __init__(
        self,
        node: int,
        key: bytes,
        op: str,  # "status", "firmware", "config", "reset"
        payload: Payload | None = None,
        radio: bool = False,
        now: float = 0.0,
        give_up_s: float = 30.0,
        wait_healthy: bool = True,
        rand: Callable[[int], bytes] = os.urandom,
        hold: bool = False,
    ) -> None:
        self.node = node
        self.key = key
        self.op = op
        self.payload = payload
        self.radio = radio
        self.chunk = W.DATA_RADIO if radio else W.DATA_UDP
        self.window = 4
        self.give_up_s = give_up_s
        self.wait_healthy = wait_healthy
        # hold: once every file is staged, wait in "staged" for release() before the COMMIT
        # (the runner switches the whole fleet together)
        self.hold = hold
        self.rand = rand
        self.started = now
        self.entered: dict[str, float] = {}  # state -> when first entered (s after start)
        self._now = now
        self.state = "hello"
        self.status: dict[str, Any] | None = None  # the last STATUS
        self.first: dict[str, Any] | None = None  # the first STATUS (before any change)
        self.error = ""
        self.result = ""  # what happened, for the summary line
        self.session = 0
        self.counter = 0
        self.nonces: list[int] = []
        self.inflight: dict[int, tuple[str, Any, float]] = {}  # counter -> (what, arg, sent)
        self.timeouts = 0
        self.rto = 0.8 if radio else 0.4
        self.srtt: float | None = None
        self.heard = now  # the last authentic answer
        self.next_hello = now
        self.file_i = 0
        self.acked = 0  # bytes of the current file the board has
        self.next_off = 0
        self.done_bytes = 0  # bytes of finished files
        self.sent_bytes = 0  # DATA bytes sent (retries included)
        self.retries = 0
        self.commit_boot: int | None = None
        self.busy_until = 0.0
        self.outbox: list[bytes] = []  # to send with the next poll()
        self.hellos = 0
        self.stalls = 0  # starts over since the transfer last advanced
        self.unswitched = 0  # restarts before the board took the COMMIT
        self.mark: tuple[str, int, int] | None = None  # (state, file, bytes) at the last one

    # -- what the runner sees ----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def progress(self) -> tuple[float, str]:
        if self.state in ("file", "data") and self.payload:
            total = self.payload.size or 1
            f = self.payload.files[self.file_i] if self.file_i < len(self.payload.files) else None
            return (
                0.05 + 0.8 * (self.done_bytes + self.acked) / total,
                "sending %s" % (f.path if f else ""),
            )
        text = {
            "hello": "asking",
            "begin": "starting",
            "staged": "staged, waiting for the others",
            "commit": "switching",
            "rebooting": "rebooting",
            "probation": "on probation",
            "reset": "resetting",
            "done": self.result or "done",
            "failed": self.error,
        }.get(self.state, self.state)
        frac = {
            "hello": 0.02,
            "begin": 0.05,
            "staged": 0.85,
            "commit": 0.86,
            "rebooting": 0.9,
            "probation": 0.95,
        }
        return (1.0 if self.finished else frac.get(self.state, 0.5)), text

    def wake(self) -> float:
        """When poll() has something to do next (absolute time)."""
        times = [sent + self.rto for (_, _, sent) in self.inflight.values()]
        if self.state in ("hello", "rebooting", "probation"):
            times.append(self.next_hello)
        if self.state == "begin" and not self.inflight:
            times.append(self.busy_until)
        times.append(self.heard + self.give_up_s)
        return min(times)

    # -- sending -----------------------------------------------------------------------------

    def _command(self, now: float, t: int, what: str, arg: Any, body: bytes = b"") -> None:
        self.counter += 1
        self.inflight[self.counter] = (what, arg, now)
        self.outbox.append(W.sign(self.key, t, self.node, self.session, self.counter, body))

    def _hello(self, now: float) -> None:
        nonce = int.from_bytes(self.rand(4), "big") or 1
        self.nonces = (self.nonces + [nonce])[-8:]
        self.next_hello = now + (PROBATION_EVERY if self.state == "probation" else HELLO_EVERY)
        self.outbox.append(W.sign(self.key, W.HELLO, self.node, 0, nonce))
        self.hellos += 1  # unanswered HELLOs in a row

    def poll(self, now: float, allowance: int | None = None) -> list[bytes]:
        """The messages to send now; at most ``allowance`` DATA messages (None: the window's
        worth; the runner paces the radio)."""
        self._now = now
        if not self.finished and now - self.heard > self.give_up_s:
            self._fail("no answer for %ds (%s)" % (self.give_up_s, self.progress()[1]))
        if self.finished:
            self.outbox.clear()
            return []
        expired = [c for c, (_, _, sent) in self.inflight.items() if now - sent >= self.rto]
        if expired:
            self.timeouts += 1
            self.retries += len(expired)
            self.rto = min(self.rto * 1.5, 3.0)
            for c in expired:
                del self.inflight[c]
            if self.timeouts >= LOST_AFTER or self.state == "reset":
                self._restart(now)
            elif self.state == "data":
                self.inflight.clear()
                self.next_off = self.acked  # go back to what the board surely has
            else:
                self._resend_state(now)
        if self.state == "staged":
            self.heard = now  # waiting for the others is not the board's silence
        elif self.state in ("hello", "rebooting", "probation") and now >= self.next_hello:
            self._hello(now)
        elif self.state == "begin" and not self.inflight and now >= self.busy_until:
            self._send_begin(now)
        elif self.state == "data":
            self._fill_window(now, self.window if allowance is None else allowance)
        out, self.outbox = self.outbox, []
        return out

    def _restart(self, now: float) -> None:
        """Lost the board (a reboot, or out of reach), or a RESET unanswered: HELLO again,
        then resume (after a RESET: see whether it rebooted)."""
        self.inflight.clear()
        self.timeouts = 0
        if self.commit_boot is None:
            # a board that answers HELLO (so it is heard) but drops every command would have
            # this session start over for ever: give up after STALLS without progress
            mark = (self.state, self.file_i, self.done_bytes + self.acked)
            self.stalls = self.stalls + 1 if mark == self.mark else 0
            self.mark = mark
            if self.stalls >= STALLS:
                self._fail("the board answers but takes no command (%s)" % self.progress()[1])
                return
        # after a COMMIT or RESET was sent: whether it was taken shows in the next STATUS
        self.state = "rebooting" if self.commit_boot is not None else "hello"
        self.next_hello = now

    def _resend_state(self, now: float) -> None:
        if self.state == "begin":
            self._send_begin(now)
        elif self.state == "file":
            self._send_file(now)
        elif self.state == "commit":
            self._command(now, W.COMMIT, "commit", None)
        elif self.state == "reset":
            self._command(now, W.RESET, "reset", None)

    def _send_begin(self, now: float) -> None:
        p = self.payload
        assert p is not None
        body = struct.pack(">BB", p.kind, len(p.files)) + p.set_hash
        self._command(now, W.BEGIN, "begin", None, body)

    def _send_file(self, now: float) -> None:
        assert self.payload is not None
        f = self.payload.files[self.file_i]
        body = struct.pack(">BI", self.file_i, len(f.data)) + f.sha + f.path.encode()
        self._command(now, W.FILE, "file", self.file_i, body)

    def _fill_window(self, now: float, allowance: int) -> None:
        assert self.payload is not None
        data = self.payload.files[self.file_i].data
        while len(self.inflight) < self.window and self.next_off < len(data) and allowance > 0:
            allowance -= 1
            off = self.next_off
            piece = data[off : off + self.chunk]
            body = struct.pack(">BI", self.file_i, off) + piece
            self._command(now, W.DATA, "data", off, body)
            self.next_off += len(piece)
            self.sent_bytes += len(piece)

    # -- receiving ---------------------------------------------------------------------------

    def on_message(self, now: float, msg: bytes) -> bool:
        """Take an answer; True when it was this board's (authentic)."""
        self._now = now
        if self.finished:
            return False
        try:
            t, node, session, counter = W.head(msg)
        except ValueError:
            return False
        if node != self.node or not W.verify(self.key, msg):
            return False
        if t == W.STATUS and counter in self.nonces:
            self.nonces.remove(counter)
            self._on_status(now, session, W.unpack_status(W.body(msg)))
        elif t == W.ACK and session == self.session and counter in self.inflight:
            what, arg, sent = self.inflight.pop(counter)
            rtt = now - sent
            self.srtt = rtt if self.srtt is None else 0.8 * self.srtt + 0.2 * rtt
            self.rto = max(0.25 if not self.radio else 0.4, min(3.0, 3 * self.srtt))
            self.heard = now
            self.timeouts = 0
            b = bytes(W.body(msg))
            code, value = struct.unpack_from(">BI", b, 0)
            self._on_ack(now, what, arg, code, value, b[5:].decode("utf-8", "replace"))
        return True

    def _on_status(self, now: float, session: int, st: dict[str, Any]) -> None:
        self.heard = now
        self.hellos = 0
        self.timeouts = 0
        self.status = st
        if self.first is None:
            self.first = st
        self.counter = max(self.counter if session == self.session else 0, st["counter"])
        self.session = session
        self.inflight.clear()
        if self.state == "hello":
            self._start(now, st)
        elif self.state in ("rebooting", "probation"):
            self._after_switch(now, st)

    @property
    def target(self) -> str:
        """The version this session installs, as STATUS names it."""
        return self.payload.short if self.payload is not None else ""

    def _running_target(self, st: dict[str, Any]) -> bool:
        return (st["config"] if self.op == "config" else st["fw"]) == self.target

    def _start(self, now: float, st: dict[str, Any]) -> None:
        if self.op == "status":
            return self._done("status")
        if self.op == "reset":
            self.state = "reset"
            self.commit_boot = st["boot"]
            self._resend_state(now)
            return
        if self._running_target(st):
            if st["pending"] and self.wait_healthy:
                self.state = "probation"
                return
            return self._done("already running %s" % self.target)
        if st["pending"]:
            self.state = "probation"  # wait for the last change's health mark, then go on
            return
        self.state = "begin"
        self.busy_until = now

    def _after_switch(self, now: float, st: dict[str, Any]) -> None:
        if self.op == "reset":
            if st["boot"] != self.commit_boot:
                return self._done("reset (boot %d)" % st["boot"])
            self.state = "reset"  # the RESET did not arrive: again
            return self._resend_state(now)
        if self._running_target(st):
            if st["pending"] and self.wait_healthy:
                self.state = "probation"
            else:
                self._done("running %s%s" % (self.target, "" if st["pending"] else ", healthy"))
            return
        target = self.target
        if self.commit_boot is not None and st["boot"] == self.commit_boot and not st["pending"]:
            # the same boot, not switched: the COMMIT did not arrive (or its answer was lost
            # with the reset not yet done): again
            self.state = "commit"
            self._command(now, W.COMMIT, "commit", None)
            return
        if self.commit_boot is not None and st["boot"] != self.commit_boot:
            # rebooted after our commit, not running it: rolled back, or it never switched
            rb = st.get("rollback") or {}
            if rb.get("what") == ("config" if self.op == "config" else "firmware") and (
                self.op == "config" or rb.get("from") == target
            ):
                return self._fail(
                    "rolled back after %d boots: the new %s did not reach its health mark"
                    % (rb.get("tries", 0), rb["what"])
                )
            if self.unswitched < 2:
                # it restarted before it took the COMMIT (a crash, a power cut): what it staged
                # is on its flash, so begin again (the files it has are not sent twice)
                self.unswitched += 1
                self.commit_boot = None
                self.state = "begin"
                self.busy_until = now
                return
            return self._fail("the board restarted without switching to %s" % target)
        if self.state == "probation" and not st["pending"]:
            # an earlier change became healthy: now ours
            self.state = "begin"
            self.busy_until = now

    def _on_ack(self, now: float, what: str, arg: Any, code: int, value: int, text: str) -> None:
        if what == "begin":
            if code == W.OK:
                self.state, self.file_i, self.done_bytes = "file", 0, 0
                self._send_file(now)
            elif code == W.BUSY:
                self.busy_until = now + PROBATION_EVERY
            else:
                self._fail_code(code, text, what, arg)
        elif what == "file":
            if arg != self.file_i or self.state != "file":
                return
            if code != W.OK:
                return self._fail_code(code, text, what, arg)
            self.acked = self.next_off = value
            self.state = "data"
            self._file_progress(now)
        elif what == "data":
            if self.state != "data":
                return
            if code == W.OK:
                self.acked = max(self.acked, value)
                self._file_progress(now)
            elif code == W.OFFSET:
                self.acked = value
                self.next_off = value
                # what was in flight after the gap is refused anyway: sent again
                self.retries += sum(1 for w in self.inflight.values() if w[0] == "data")
                self.inflight.clear()
            elif code == W.MISMATCH:
                self.acked = self.next_off = 0
                self.inflight.clear()
            else:
                self._fail_code(code, text, what, arg)
        elif what == "commit":
            if code != W.OK:
                return self._fail_code(code, text, what, arg)
            self.state = "rebooting"
            self.next_hello = now + HELLO_EVERY
        elif what == "reset":
            if code != W.OK:
                return self._fail_code(code, text, what, arg)
            self.state = "rebooting"
            self.next_hello = now + HELLO_EVERY

    def _file_progress(self, now: float) -> None:
        assert self.payload is not None
        f = self.payload.files[self.file_i]
        if self.acked < len(f.data):
            return
        self.inflight.clear()
        self.done_bytes += len(f.data)
        self.acked = self.next_off = 0
        self.file_i += 1
        if self.file_i < len(self.payload.files):
            self.state = "file"
            self._send_file(now)
        elif self.hold:
            self.state = "staged"
        else:
            self.release(now)

    def release(self, now: float) -> None:
        """Switch: the COMMIT of a staged set."""
        self.hold = False
        self.state = "commit"
        assert self.status is not None
        self.commit_boot = self.status["boot"]  # from now on, a reboot may be the switch
        self._command(now, W.COMMIT, "commit", None)

    def _done(self, result: str) -> None:
        self.state = "done"
        self.result = result
        self.inflight.clear()

    def _fail(self, error: str) -> None:
        self.state = "failed"
        self.error = error
        self.inflight.clear()

    def _fail_code(self, code: int, text: str, what: str = "", arg: Any = None) -> None:
        about = what.upper()
        if what == "file" and self.payload is not None:
            about = "FILE %s" % self.payload.files[arg].path
        elif what == "data" and self.payload is not None:
            about = "DATA of %s at %s" % (self.payload.files[self.file_i].path, arg)
        self._fail(
            CODE_TEXT.get(code, "error %d" % code)
            + (" (%s)" % about if about else "")
            + (": " + text if text else "")
        )

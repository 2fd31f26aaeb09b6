"""`roam logs` against pseudo terminals: lines, host timestamps, JSON Lines, 20 unplug/replug
cycles without losing a line that reached the host, each gap marked, clean stop on SIGTERM."""

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

import pytest
from ptyboard import talking

from hosttools.errors import RoamError
from hosttools.logs import collect

REPO = Path(__file__).resolve().parents[2]


class Plug:
    """A 'USB port' whose device path is a symlink to the current pty: unplug closes the pty,
    replug makes a new one and re-points the link (like /dev/serial/by-id/...)."""

    def __init__(self, path):
        self.path = str(path)
        self.master = None
        self.slave = None

    def plug(self):
        m, s = os.openpty()
        tty.setraw(s)
        tmp = self.path + ".new"
        os.symlink(os.ttyname(s), tmp)
        os.replace(tmp, self.path)
        self.master, self.slave = m, s

    def unplug(self):
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = None
        os.unlink(self.path)

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def pending(self):
        """Bytes written but not yet read by the reader (still in the slave's input queue)."""
        buf = fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0]

    def wait_drained(self, timeout=5.0):
        # The kernel moves written bytes to the slave's queue asynchronously (the tty flip
        # buffer): an empty queue counts only when it stays empty a little while.
        end = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:
            assert time.monotonic() < end, "the reader does not read"
            time.sleep(0.01)
            quiet = quiet + 1 if self.pending() == 0 else 0


def wait_connected(stats_holder, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if stats_holder() == "connected":
            return
        time.sleep(0.005)
    raise AssertionError("logger did not (re)connect")


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def run_collect(boards, out, stop):
    result = {}

    def go():
        result["stats"] = collect(boards, out, stop=stop, install_signals=False)

    th = threading.Thread(target=go)
    th.start()
    return th, result


def test_lines_are_stamped_and_parsed(tmp_path):
    plug = Plug(tmp_path / "ttyA")
    plug.plug()
    stop = threading.Event()
    out = tmp_path / "logs"
    th, res = run_collect([("fa1", plug.path)], out, stop)
    time.sleep(0.2)
    t0 = time.time()
    plug.write(b'{"t":100,"node":1,"event":"agent_up"}\r\nhello board\n{broken json\n')
    plug.wait_drained()
    time.sleep(0.1)
    t1 = time.time()
    stop.set()
    th.join(5)
    recs = read_jsonl(out / "fa1.jsonl")
    assert [r.get("json", r.get("text")) for r in recs] == [
        {"t": 100, "node": 1, "event": "agent_up"},
        "hello board",
        "{broken json",
    ]
    assert all(t0 <= r["host"] <= t1 for r in recs)
    raw = (out / "fa1.raw.txt").read_text().splitlines()
    assert raw[1].split("\t", 1)[1] == "hello board"
    meta = json.loads((out / "logs.json").read_text())
    assert meta["kind"] == "roam-logs" and meta["boards"]["fa1"]["lines"] == 3
    assert res["stats"][0].events == 1


def test_twenty_unplug_replug_cycles_lose_nothing(tmp_path):
    plugs = [Plug(tmp_path / "ttyA"), Plug(tmp_path / "ttyB")]
    for p in plugs:
        p.plug()
    stop = threading.Event()
    out = tmp_path / "logs"
    boards = [("a", plugs[0].path), ("b", plugs[1].path)]
    th, res = run_collect(boards, out, stop)
    time.sleep(0.2)
    sent = {"a": [], "b": []}
    n = 0
    cycles = 20
    for cycle in range(cycles):
        for name, p in zip(("a", "b"), plugs, strict=False):
            lines = []
            for _ in range(25):
                n += 1
                lines.append('{"t":%d,"event":"tick","c":%d}' % (n, cycle))
            # The last line of board a is cut short by the unplug: a partial line that did
            # reach the host must still be kept.
            tail = "partial-%d" % cycle if name == "a" else ""
            p.write(("\n".join(lines) + "\n" + tail).encode())
            sent[name].extend(lines + ([tail] if tail else []))
        for p in plugs:
            p.wait_drained()
        # Only board a is unplugged each cycle; b keeps running.
        plugs[0].unplug()
        time.sleep(0.02)
        plugs[0].plug()
        deadline = time.monotonic() + 5
        while True:
            recs = read_jsonl(out / "a.jsonl") if (out / "a.jsonl").exists() else []
            if sum(1 for r in recs if "gap" in r) == cycle + 1:
                break
            assert time.monotonic() < deadline, "gap %d not marked" % (cycle + 1)
            time.sleep(0.01)
    for p in plugs:
        p.wait_drained()
    time.sleep(0.1)
    stop.set()
    th.join(10)
    assert not th.is_alive()
    for name in ("a", "b"):
        recs = read_jsonl(out / (name + ".jsonl"))
        got = [
            json.dumps(r["json"], separators=(",", ":")) if "json" in r else r["text"]
            for r in recs
            if "gap" not in r
        ]
        assert got == sent[name]
        gaps = [r["gap"] for r in recs if "gap" in r]
        assert len(gaps) == (cycles if name == "a" else 0)
        for g in gaps:
            assert g["from"] <= g["to"]
        # Host times never go backwards within a board.
        hosts = [r["host"] for r in recs]
        assert hosts == sorted(hosts)
    partial = [r for r in read_jsonl(out / "a.jsonl") if r.get("partial")]
    assert len(partial) == cycles


def test_missing_port_is_one_clear_error(tmp_path):
    with pytest.raises(RoamError, match="does not exist"):
        collect(
            [("x", str(tmp_path / "nope"))], tmp_path / "logs", duration=0.1, install_signals=False
        )
    assert not (tmp_path / "logs").exists()


def test_sigterm_stops_cleanly_and_flushes(tmp_path):
    plug = Plug(tmp_path / "ttyA")
    plug.plug()
    out = tmp_path / "logs"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "roam"),
            "logs",
            "--port",
            plug.path,
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not (out / "logs.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        lines = ['{"t":%d,"event":"e"}' % i for i in range(500)]
        plug.write(("\n".join(lines) + "\nno newline yet").encode())
        plug.wait_drained()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr  # stopped by a signal, as said
    recs = read_jsonl(out / (os.path.basename(plug.path) + ".jsonl"))
    assert [r["json"]["t"] for r in recs if "json" in r] == list(range(500))
    assert recs[-1]["text"] == "no newline yet" and recs[-1]["partial"]
    assert json.loads((out / "logs.json").read_text())["stopped"] is not None


def test_an_earlier_log_is_never_appended_to(tmp_path):
    """A second `roam logs --out DIR` into a directory with a log is refused (one line, status
    2, the old log untouched); with --force the directory holds the new run only."""
    m, s = os.openpty()
    tty.setraw(s)
    port = os.ttyname(s)
    name = os.path.basename(port)
    out = tmp_path / "logs"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [str(Path(sys.executable).parent / "roam"), "logs", "--port", port, "--out", str(out)]

    def run(*extra, tag=None):
        """Run `roam logs`; with a tag, the board prints lines carrying it until roam ends."""
        termios.tcflush(s, termios.TCIFLUSH)  # nothing left over from an earlier run
        p = subprocess.Popen(
            [*cmd, "--quiet", "--duration", "3", *extra],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if tag:
            with talking(m, b'{"t":1,"event":"%s"}\n' % tag.encode()):
                o, e = p.communicate(timeout=30)
        else:
            o, e = p.communicate(timeout=30)
        return p.returncode, o, e

    def events():
        lines = (out / (name + ".jsonl")).read_text().splitlines()
        return [json.loads(line)["json"]["event"] for line in lines]

    try:
        code, o, e = run(tag="first")
        assert code == 0, e
        before = (out / (name + ".jsonl")).read_bytes()
        assert events() and set(events()) == {"first"}
        code, o, e = run()
        assert code == 2 and e.count("\n") == 1, e
        assert "holds an earlier log: choose a new --out, or --force to replace it" in e
        assert (out / (name + ".jsonl")).read_bytes() == before
        (out / "report.html").write_text("old report")
        code, o, e = run("--force", tag="second")
        assert code == 0, e
        assert events() and set(events()) == {"second"}
        assert not (out / "report.html").exists()
        assert json.loads((out / "logs.json").read_text())["boards"][name]["lines"] == len(events())
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        p = subprocess.run(
            [*cmd[:-1], str(tmp_path / "other"), "--force"], env=env, capture_output=True, text=True
        )
        assert p.returncode == 2 and "holds no earlier `roam logs` run" in p.stderr, p.stderr
        assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    finally:
        os.close(m)
        os.close(s)

"""The firmware on virtual boards: mpremote deploys it, soft reset restarts it, a role runs and
logs JSON lines on the console; safe mode with a held boot button; config writes survive a
power cut at any moment."""

from __future__ import annotations

import ast
import json
import os
import random
import time
from pathlib import Path

import pytest
import serial

from tests.host._vboards import Lab

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
KEYS = {"256": "11" * 16}


_BUILD: list = []


def build() -> list:
    """The firmware as `roam deploy` sends it: modules compiled to .mpy (mpy-cross), boot.py and
    main.py as source. Compiled once per test session."""
    if not _BUILD:
        from hosttools.deploy import plan

        _BUILD.extend(plan(FIRMWARE, True))
    return _BUILD


def install(root: Path, cfg: dict | None) -> None:
    """Put the firmware on a board's filesystem directory (what `roam deploy` does). A virtual
    board has its chip's heap budget (hosttools/vboard.py board_heap_kb; the tests' boards are
    ESP32-S3s, tests/host/_vboards.py): the roles fit as .mpy, as on a real board, not compiled
    from source at import."""
    root.mkdir(parents=True, exist_ok=True)
    for it in build():
        p = root / it.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(it.data)
    if cfg is not None:
        (root / "config.json").write_text(json.dumps(cfg))


def console(board, seconds: float, until: bytes | None = None) -> bytes:
    """Read what the board prints for `seconds` (or until `until` appears)."""
    s = serial.Serial(board.pty, timeout=0.1)
    buf = b""
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            buf += s.read(4096)
            if until is not None and until in buf:
                break
    finally:
        s.close()
    return buf


def json_lines(buf: bytes) -> list[dict]:
    out = []
    for ln in buf.decode("utf-8", "replace").splitlines():
        if ln.startswith('{"t":'):
            out.append(json.loads(ln))
    return out


@pytest.fixture
def lab(tmp_path):
    with Lab(tmp_path) as lab:
        yield lab


def test_mpremote_deploys_and_the_role_logs_json(lab, tmp_path):
    b = lab.board("a1", "02:52:4f:00:00:01")
    cfg = {
        "role": "agent",
        "node_id": 1,
        "address": "10.0.0.1",
        "keys": KEYS,
        "lateness_every_ms": 1000,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    # the .mpy build in a directory, copied with the real mpremote
    src = tmp_path / "build"
    install(src, None)
    for pkg in ("mobility", "fieldlog"):
        lab.mpremote(b, "fs", "cp", "-r", str(src / pkg), ":", timeout=60)
    files = [str(f) for f in sorted(src.iterdir()) if f.is_file()]
    lab.mpremote(
        b,
        "fs",
        "cp",
        *files,
        ":",
        "+",
        "fs",
        "cp",
        str(tmp_path / "cfg.json"),
        ":config.json",
        timeout=60,
    )
    out = lab.mpremote(b, "exec", "import os; print(sorted(os.listdir()))")
    assert "'config.json'" in out and "'main.py'" in out and "'mobility'" in out
    assert "'driver.mpy'" in out
    # a hard reset boots into main.py: the role starts and logs
    b.reset()
    evs = json_lines(console(b, 8, until=b'"ev":"lateness"'))
    names = [e["ev"] for e in evs]
    assert "start" in names, names
    assert all(e["n"] == 1 and isinstance(e["t"], int) for e in evs)
    assert "lateness" in names
    # the air saw the agent's advertisements (broadcasts)
    assert lab.air.by_name["a1"].frames_out >= 1
    # the boot-time modules are gone from the running board (their code is heap on a board),
    # the running ones are there (interrupted into the REPL: the interpreter as it ran)
    out = lab.mpremote(b, "resume", "exec", "import sys; print(sorted(sys.modules))")
    loaded = set(ast.literal_eval(out.strip().splitlines()[-1]))
    assert {"driver", "mobility.agent", "logsink"} <= loaded, loaded
    assert not {"start", "config", "fieldlog.setup", "mobility.settings"} & loaded, loaded


def test_soft_reset_prints_soft_reboot_and_reruns_main(lab):
    b = lab.board("x", "02:52:4f:00:00:09")
    (b.root / "main.py").write_text("print('main ran')\n")
    s = serial.Serial(b.pty, timeout=0.2)
    try:
        s.write(b"\r\x03\x02")  # friendly REPL
        time.sleep(0.3)
        s.read(4096)
        s.write(b"\x04")  # Ctrl-D: soft reset
        buf = b""
        end = time.monotonic() + 5
        while b">>> " not in buf.split(b"main ran")[-1] and time.monotonic() < end:
            buf += s.read(4096)
    finally:
        s.close()
    assert b"MPY: soft reboot\r\n" in buf
    assert b"main ran\r\n" in buf
    assert b">>> " in buf


def test_unique_ids_and_macs(lab):
    a = lab.board("u1", "02:52:4f:00:00:11")
    b = lab.board("u2", "02:52:4f:00:00:12")
    code = (
        "import machine, network\n"
        "print(machine.unique_id().hex(), network.WLAN().config('mac').hex())"
    )
    assert lab.mpremote(a, "exec", code).split() == ["02524f000011"] * 2
    assert lab.mpremote(b, "exec", code).split() == ["02524f000012"] * 2


def test_held_boot_button_starts_safe_mode(tmp_path):
    with Lab(tmp_path) as lab:
        b = lab.board("s", "02:52:4f:00:00:21", pins="0=0")
        install(b.root, {"role": "agent", "node_id": 5, "address": "10.0.0.5", "keys": KEYS})
        b.reset()
        evs = json_lines(console(b, 5, until=b"safe_mode"))
        assert evs and evs[-1]["ev"] == "safe_mode"
        assert evs[-1]["reason"] == "boot button held"
        assert lab.mpremote(b, "exec", "print(6*7)").strip() == "42"  # the REPL works


# A region agent's config as the lab writes it (hosttools/lab.py): the backbone over Wi-Fi, a
# region of three members, a route to the nodes' home network through a host.
REGION_AGENT = {
    "role": "agent",
    "node_id": 1,
    "address": "10.0.0.1",
    "keys": {"256": "11" * 16, "258": "22" * 16, "512": "33" * 16, "768": "44" * 16},
    "wifi": {"ssid": "roam-backbone", "ip": "10.0.0.1", "port": 4344},
    "region": {
        "members": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "neighbours": [{"addr": "10.0.0.2", "iface": 1, "mac": "0a:00:00:02:10:f8"}],
        "hosts": [{"addr": "10.0.0.6", "iface": 1, "mac": "0a:00:00:06:10:f8"}],
        "routes": [{"dst": "10.64.0.0/16", "via": "10.0.0.6"}],
    },
}


def test_boards_without_a_romfs_start_their_roles(lab):
    """As micropython.org's images run them (no ROMFS: every module's code in the heap): a region
    agent streaming its log on an ESP32-C3, a router and a mobile node on plain ESP32s start and
    keep running. (On a plain ESP32 the agent starts at the edge: docs/LAB.md "Heap".)
    Before the published table was allocated ahead of the role's modules, the agent found no
    5.4 KB block for it; before the boot-time code was dropped after the driver's buffers, the
    mobile node found 32 KB free and no 2 KB block; before the firmware's .mpy went without
    line numbers, the router ran out at start, and then, with 20 KB free in pieces, found no
    block for asyncio's event module nor the driver until both were loaded or reserved ahead
    of the role (docs/LAB.md "Heap"; since the router loads its proxies' code only to make
    proxy bindings, 7 KB less, it would start without those two as well)."""
    lab.air.add_access_point("roam-backbone")
    agent = lab.board("a", "02:52:4f:00:00:51", chip="esp32c3", romfs_kb=0)
    agent_cfg = dict(REGION_AGENT, lateness_every_ms=1000, collector="10.77.0.2:4345")
    agent_cfg["keys"] = dict(REGION_AGENT["keys"], **{"768": "33" * 16, "769": "5a" * 16})
    install(agent.root, agent_cfg)
    router = lab.board("r", "02:52:4f:00:00:53", pos=(0, 5), chip="esp32", romfs_kb=0)
    # a router as the lab's walk field has it: its field log streamed to a collector
    region = dict(REGION_AGENT["region"], members=["10.0.0.%d" % i for i in range(1, 6)])
    region["neighbours"] = [
        {"addr": "10.0.0.%d" % i, "iface": 1, "mac": "0a:00:00:%02x:10:f8" % i} for i in (2, 3)
    ]
    region["hosts"] = [
        {"addr": "10.0.0.%d" % i, "iface": 1, "mac": "0a:00:00:%02x:10:f8" % i} for i in (6, 7)
    ]
    router_cfg = {"role": "router", "node_id": 5, "address": "10.0.0.5", "region": region}
    router_cfg["wifi"] = dict(REGION_AGENT["wifi"], ip="10.0.0.5")
    router_cfg["collector"] = "10.77.0.2:4345"
    router_cfg["keys"] = {k: "%02x" % (int(k) % 251) * 16 for k in ("256", "512", "768", "1024")}
    install(router.root, dict(REGION_AGENT, lateness_every_ms=1000, **router_cfg))
    mobile = lab.board("m", "02:52:4f:00:00:52", pos=(5, 0), chip="esp32", romfs_kb=0)
    install(
        mobile.root,
        {
            "role": "mobile",
            "node_id": 9,
            "address": "10.64.0.9",
            "home_agent": "10.0.0.3",
            "keys": {"256": "11" * 16, "257": "55" * 16},
            "lateness_every_ms": 1000,
        },
    )
    for b in (agent, router, mobile):
        b.reset()
        buf = console(b, 15, until=b'"ev":"lateness"')
        names = [e["ev"] for e in json_lines(buf)]
        assert "start" in names and "lateness" in names, buf[-600:]
        assert b"MemoryError" not in buf, buf[-600:]


def test_config_error_is_one_clear_line(lab):
    b = lab.board("c", "02:52:4f:00:00:31")
    install(b.root, {"role": "pilot", "node_id": 5, "address": "10.0.0.5", "keys": KEYS})
    b.reset()
    evs = json_lines(console(b, 5, until=b"config_error"))
    assert evs[-1]["ev"] == "config_error"
    assert "role 'pilot'" in evs[-1]["error"]


def kill_during_config_writes(tmp_path: Path, rounds: int, seed: int = 1) -> dict:
    """Pull the plug at random moments while the board rewrites its config; after every cut the
    board must boot into its role or into safe mode with a clear line, and config.json (or its
    completed .tmp) must be valid. Returns counts for the bench."""
    rng = random.Random(seed)
    with Lab(tmp_path, with_air=False) as lab:
        outcomes = {"role": 0, "safe_mode": 0, "rounds": 0}
        b = lab.board("k", "02:52:4f:00:00:41")
        cfg = {"role": "host", "node_id": 9, "address": "10.0.0.9", "keys": KEYS, "healthy_ms": 100}
        install(b.root, cfg)
        writer = (
            "import config\n"
            "c = config.load()\n"
            "i = 0\n"
            "while True:\n"
            "    i += 1\n"
            "    c['node_id'] = i % 60000\n"
            "    c['pad'] = 'x' * (i % 900)\n"
            "    config.save(c)\n"
        )
        (b.root / "writer.py").write_text(writer)
        (b.root / "main.py.role").write_text((FIRMWARE / "main.py").read_text())
        for _ in range(rounds):
            # run the writer as main.py, cut power at a random moment
            (b.root / "main.py").write_text(writer)
            b.reset()
            time.sleep(rng.uniform(0.05, 0.25))
            b.power_off()
            # what is on "flash" now must load
            names = os.listdir(b.root)
            assert "config.json" in names or "config.json.tmp" in names
            # boot the real firmware: role or safe mode, always with a clear line
            (b.root / "main.py").write_text((FIRMWARE / "main.py").read_text())
            b.power_on()
            buf = console(b, 5, until=b'"ev":"start"')
            evs = [e["ev"] for e in json_lines(buf)]
            assert "start" in evs or "safe_mode" in evs, buf[-400:]
            outcomes["role" if "start" in evs else "safe_mode"] += 1
            outcomes["rounds"] += 1
            b.power_off()
            loaded = json.loads((b.root / "config.json").read_text())
            assert loaded["role"] == "host" and loaded["address"] == "10.0.0.9"
    return outcomes


def test_power_cut_during_config_writes_never_corrupts(tmp_path):
    rounds = int(os.environ.get("ROAM_KILL_ROUNDS", "8"))
    out = kill_during_config_writes(tmp_path, rounds)
    assert out["rounds"] == rounds


LOG_WRITER = """
from fieldlog import setup
log = setup.boot_log({"node_id": 7, "log_store_kb": 24, "log_files": 3})
i = 0
while True:
    i += 1
    log.event("x", {"i": i, "pad": "p" * (i % 70)})
    if i % 9 == 0:
        log.store.flush()
        print("FLUSHED %d %d" % (log.boot, log.seq - 1))
"""


def _flash_lines(root: Path) -> list[bytes]:
    out: list[bytes] = []
    d = root / "logs"
    for p in sorted(d.glob("*.jl")):
        out.extend(ln for ln in p.read_bytes().split(b"\n") if ln)
    return out


def cut_during_log_writes(tmp_path: Path, rounds: int, seed: int = 2) -> dict:
    """Pull the plug at random moments while the board logs and flushes its batches. After
    every cut, what the board had flushed before it (the last FLUSHED line it printed) is on
    flash intact, line by line, and at most the one batch being written is damaged: one line
    that is not JSON, ended by the next boot. Returns counts for the bench."""
    rng = random.Random(seed)
    with Lab(tmp_path, with_air=False) as lab:
        outcome = {"rounds": 0, "damaged": 0, "lines": 0}
        b = lab.board("w", "02:52:4f:00:00:51")
        install(b.root, None)
        (b.root / "main.py").write_text(LOG_WRITER)
        printed = bytearray()
        b.on_output = printed.extend  # what the board prints, as the lab's console capture
        flushed: dict[int, int] = {}  # boot -> last sequence number flushed before a cut
        for _ in range(rounds):
            del printed[:]
            b.reset()
            time.sleep(rng.uniform(0.3, 1.2))
            b.power_off()
            buf = bytes(printed)
            for text in buf.decode("utf-8", "replace").splitlines():
                if text.startswith("FLUSHED "):
                    _f, b_text, s_text = text.split()
                    flushed[int(b_text)] = int(s_text)
            lines = _flash_lines(b.root)
            seen: dict[int, set[int]] = {}
            bad = 0
            for ln in lines:
                try:
                    rec = json.loads(ln)
                except ValueError:
                    bad += 1  # a batch the power cut in the middle (ended at the next boot)
                    continue
                seen.setdefault(rec["b"], set()).add(rec["s"])
            for boot, last in flushed.items():
                got = seen.get(boot, set())
                # the ring holds 24 KiB: a boot's oldest lines may have been turned over
                if not got:
                    continue
                lo = min(got)
                assert set(range(lo, last + 1)) <= got, (boot, lo, last, sorted(got)[-5:])
            assert bad <= outcome["rounds"] + 1, bad  # never more than one per cut
            outcome["damaged"] = bad
            outcome["lines"] = len(lines)
            outcome["rounds"] += 1
    return outcome


def test_power_cuts_during_log_writes_keep_what_was_written(tmp_path):
    rounds = int(os.environ.get("ROAM_LOG_CUT_ROUNDS", "20"))
    out = cut_during_log_writes(tmp_path, rounds)
    assert out["rounds"] == rounds and out["lines"] > 100  # the 24 KiB ring is full

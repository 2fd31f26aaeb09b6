"""What a field test on virtual boards is measured against: the lab's own records.

* the console capture (``<lab>/console/<board>.jsonl``): every line each board printed, with the
  host time it was printed, whether or not its cable was plugged in;
* the air's captures (``air.pcap``: every IPv4 frame put on the air; ``air-rx.pcap``: every
  frame the air delivered, with the receiving board's MAC as Ethernet destination), decoded
  with the firmware's own decoders.

Used by bench/field_walk.py and tests/host/test_field_e2e.py.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hosttools.firmware import use as use_firmware
from hosttools.pcap import read_pcap

Line = tuple[int, int]  # (boot, sequence)


def console_lines(console: Path, t0: float, t1: float) -> dict[str, dict[Line, float]]:
    """Per board, the lines it printed between host times t0 and t1: {(b, s): time}."""
    out: dict[str, dict[Line, float]] = {}
    for path in sorted(console.glob("*.jsonl")):
        got: dict[Line, float] = {}
        for text in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(text)
            obj = rec.get("json")
            if isinstance(obj, dict) and isinstance(obj.get("b"), int) and t0 <= rec["host"] <= t1:
                got[(obj["b"], obj["s"])] = rec["host"]
        out[path.stem] = got
    return out


def run_lines(run: Path) -> dict[str, tuple[set[Line], set[Line]]]:
    """Per board of a run directory: (lines that arrived live, every line it holds)."""
    out = {}
    for path in sorted(run.glob("*.jsonl")):
        if path.stem in ("events",):
            continue
        live: set[Line] = set()
        every: set[Line] = set()
        for text in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(text)
            obj = rec.get("json")
            if not isinstance(obj, dict) or not isinstance(obj.get("b"), int):
                continue
            key = (obj["b"], obj["s"])
            every.add(key)
            if "host" in rec:
                live.add(key)
        out[path.stem] = (live, every)
    return out


def coverage(ref: dict[str, dict[Line, float]], run: dict[str, tuple[set[Line], set[Line]]]):
    """(printed, arrived live, in the run at all, {board: lines missing})."""
    printed = live = every = 0
    missing: dict[str, list[Line]] = {}
    for board, lines in ref.items():
        got_live, got_all = run.get(board, (set(), set()))
        printed += len(lines)
        live += len(lines.keys() & got_live)
        every += len(lines.keys() & got_all)
        gone = sorted(lines.keys() - got_all)
        if gone:
            missing[board] = gone
    return printed, live, every, missing


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def latencies(ref: dict[str, dict[Line, float]], arrivals: Iterable[dict[str, Any]]) -> list[float]:
    """Milliseconds from a line being printed (console) to its arrival in the page."""
    out = []
    for a in arrivals:
        printed = ref.get(a["board"], {}).get((a["b"], a["s"]))
        if printed is not None:
            out.append(a["recv_ms"] - printed * 1000.0)
    return out


def summary_of(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "median": statistics.median(values) if values else None,
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


# -- the air ------------------------------------------------------------------------------------


def _app_seq(h, ipv4, tunnel, src, dst):
    """The sequence number of an application datagram src -> dst in decoded packet h (looking
    inside an IP-in-IP tunnel), or None."""
    if h.proto == ipv4.PROTO_IPIP:
        h = ipv4.decode(tunnel.decapsulate(h))
    if h.proto != ipv4.PROTO_UDP or h.src != src or h.dst != dst:
        return None
    _sport, dport, payload = ipv4.decode_udp(h)
    if dport != ipv4.APP_PORT or len(payload) < 4:
        return None
    return int.from_bytes(payload[:4], "big")


def air_flow(lab: Path, src_addr: str, dst_addr: str, dst_mac: str, t0: float, t1: float):
    """What the air recorded between host times t0 and t1 for the flow src -> dst (dst a board
    on the radio): (sequence numbers sent anywhere on the air, those delivered to dst's MAC)."""
    use_firmware()
    from mobility import ipv4, tunnel
    from mobility.errors import DecodeError

    src, dst = ipv4.aton(src_addr), ipv4.aton(dst_addr)
    lo, hi = int(t0 * 1e6), int(t1 * 1e6)
    sent, delivered = set(), set()
    for t_us, frame in read_pcap(str(lab / "air.pcap")):
        if lo <= t_us <= hi:
            try:
                seq = _app_seq(ipv4.decode(frame), ipv4, tunnel, src, dst)
            except DecodeError:
                continue
            if seq is not None:
                sent.add(seq)
    mac = bytes.fromhex(dst_mac.replace(":", ""))
    for t_us, frame in read_pcap(str(lab / "air-rx.pcap")):
        if not lo <= t_us <= hi or frame[0:6] != mac or frame[12:14] != b"\x08\x00":
            continue
        try:
            seq = _app_seq(ipv4.decode(frame[14:]), ipv4, tunnel, src, dst)
        except DecodeError:
            continue
        if seq is not None:
            delivered.add(seq)
    return sent, delivered


def air_handoffs(lab: Path, mobile_addr: str, mobile_mac: str, agents: set[str], t0, t1) -> int:
    """Changes of the agent that accepted the mobile node's registration, from the accepted
    registration replies the air delivered to its MAC (the first binding is none)."""
    use_firmware()
    from mobility import ipv4, registration
    from mobility.errors import DecodeError

    home = ipv4.aton(mobile_addr)
    mac = bytes.fromhex(mobile_mac.replace(":", ""))
    lo, hi = int(t0 * 1e6), int(t1 * 1e6)
    replies = []
    for t_us, frame in read_pcap(str(lab / "air-rx.pcap")):
        if not lo <= t_us <= hi or frame[0:6] != mac or frame[12:14] != b"\x08\x00":
            continue
        try:
            h = ipv4.decode(frame[14:])
            if h.proto != ipv4.PROTO_UDP or ipv4.decode_udp(h)[1] != ipv4.REG_PORT:
                continue
            msg = registration.decode_registration(h)
        except DecodeError:
            continue
        if (
            isinstance(msg, registration.RegReply)
            and msg.code == registration.ACCEPTED
            and msg.lifetime > 0
            and msg.home == home
            and ipv4.ntoa(msg.src) in agents
        ):
            replies.append((t_us, ipv4.ntoa(msg.src)))
    n = 0
    last = None
    for _t, agent in sorted(replies):
        if last is not None and agent != last:
            n += 1
        last = agent
    return n


# -- the dashboard in a browser -----------------------------------------------------------------


def headless_chromium(chromium: str, chromedriver: str, *args: str, logs: bool = False) -> Any:
    """A selenium driver of headless ``chromium`` (through ``chromedriver``), quiet (no first-run
    pages, background networking, updates or sync), with the extra command-line ``args`` (the
    window's size, ...); with ``logs``, the page's console kept (``get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        *args,
    ):
        opts.add_argument(arg)
    if logs:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=opts)

"""`roam field`'s dashboard in a real browser: a FieldServer (real Collector and FieldState on a
small fleet) on a free port, headless Chromium driven by selenium through Debian's chromedriver.

The boards' lines go in through the collector (``Collector.take``, the path a verified frame's
lines take), in the server's own loop: a mobile node bound to one agent, RSSI reports, a
hand-off to a second agent, the agents' bindings, a flow c1 -> m1, a router in safe mode, an
agent heard long ago (silent), a home agent never heard, a host that rebooted. The page must
draw the map, the mobile node's panel, the flags and the flow; a line fed while it is open must
be in the feed (and in ``window.roamLatency``) within a second. The screenshot is kept in
out/test-artifacts/dashboard.png.

Without chromium or chromedriver the test skips, unless ROAM_REQUIRE_CHROMIUM=1 (.ci/run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from bench.field_common import headless_chromium
from hosttools.field.collector import Collector
from hosttools.field.server import FieldServer
from hosttools.field.state import FieldState
from hosttools.fleet import load_fleet, load_keys

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "test-artifacts"
CHROMIUM = os.environ.get("ROAM_CHROMIUM") or shutil.which("chromium") or ""
CHROMEDRIVER = os.environ.get("ROAM_CHROMEDRIVER") or shutil.which("chromedriver") or ""

FLEET = """
board = [
  { name = "a1", role = "agent", node_id = 1, address = "10.0.0.1", pos = [0, 0] },
  { name = "a2", role = "agent", node_id = 2, address = "10.0.0.2", pos = [60, 0] },
  { name = "a3", role = "agent", node_id = 3, address = "10.0.0.3", pos = [120, 15] },
  { name = "r1", role = "router", node_id = 4, address = "10.0.0.4", pos = [60, 45] },
  { name = "c1", role = "host", node_id = 5, address = "10.0.0.5", pos = [20, 60] },
  { name = "ha", role = "home", node_id = 6, address = "10.0.0.6" },
  { name = "m1", role = "mobile", node_id = 9, address = "10.0.0.9" },
]

[defaults]
board = "esp32"
"""

CRASH_AT = "mobility.advert:__init__ < mobility.cell:_advertise"

KEYS = """
[default]
cell = "00112233445566778899aabbccddeeff"
log = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
"""


def _need_browser():
    missing = [n for n, p in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not p]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e .[test])")
    if missing:
        if os.environ.get("ROAM_REQUIRE_CHROMIUM") == "1":
            pytest.fail(
                "ROAM_REQUIRE_CHROMIUM=1 but %s is not installed" % ", ".join(missing),
                pytrace=False,
            )
        pytest.skip(
            "%s not installed (apt-get install chromium chromium-driver, or run .ci/run)"
            % ", ".join(missing)
        )


class _Transport:
    """What FieldServer needs of the laptop's UDP: a descriptor to watch and nothing to read."""

    def __init__(self):
        self.a, self.b = socket.socketpair()

    def fileno(self):
        return self.a.fileno()

    def recv(self):
        return None

    def sendto(self, data, addr):
        pass

    def close(self):
        self.a.close()
        self.b.close()


class Field:
    """A FieldServer on a free port, its loop in a thread; lines fed in that loop."""

    def __init__(self, tmp_path, port=0):
        (tmp_path / "fleet.toml").write_text(FLEET)
        (tmp_path / "keys.toml").write_text(KEYS)
        fleet = load_fleet(tmp_path / "fleet.toml")
        keys = load_keys(tmp_path / "keys.toml", fleet)
        self.skew = 0.0  # the collector's clock: lines "arrive" this many seconds from now
        self.collector = Collector(fleet, keys, tmp_path / "run", clock=self._clock)
        self.state = FieldState(fleet)
        self.transport = _Transport()
        self.server = FieldServer(self.collector, self.state, self.transport)
        self.logs = {bl.name: bl for bl in self.collector.boards.values()}
        self.seq: dict[tuple[str, int], int] = {}  # (board, boot) -> next sequence number
        self.loop = asyncio.new_event_loop()
        self.want_port = port
        self.port: int | None = None
        self._closed = False
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._started.wait(20), "the field server did not start"
        assert self.port, "the field server did not start"

    def _clock(self):
        return time.time() + self.skew

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self._stop = asyncio.Event()

            def ready(addrs):
                self.port = addrs[0][1]
                self._started.set()

            await self.server.run("127.0.0.1", self.want_port, self._stop, ready)

        try:
            self.loop.run_until_complete(main())
        finally:
            self._started.set()
            self.loop.close()

    def call(self, fn, *args):
        """fn(*args) in the server's loop (the collector and the event queues live there)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed back to the test thread
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return fut.result(timeout=10)

    def lines(self, *items, via=None, ago=0.0):
        """Feed (board, boot, event, fields) lines, arrived ``ago`` seconds before now."""

        def feed():
            self.skew = -ago
            try:
                for board, boot, ev, fields in items:
                    s = self.seq.get((board, boot), 0)
                    self.seq[board, boot] = s + 1
                    obj = dict({"t": 1000 + s, "n": self.logs[board].node, "b": boot}, s=s)
                    obj.update(ev=ev, **fields)
                    self.collector.take(self.logs[board], [(0, 0, json.dumps(obj))], via)
            finally:
                self.skew = 0.0

        self.call(feed)

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(15)
        self.collector.close()
        self.transport.close()


def _populate(f: Field):
    A1, A2, HOME = "10.0.0.1", "10.0.0.2", "10.0.0.9"
    # heard long ago: a3 is silent; a flow c1 -> m1 whose sends are all counted by now
    f.lines(
        ("a3", 1, "start", {"role": "agent"}), ("a3", 1, "log_stats", {"heap_free": 9000}), ago=90
    )
    f.lines(("c1", 1, "start", {"role": "host"}), ago=60)
    f.lines(
        *[("c1", 1, "app_tx", {"dst": HOME, "seq": i, "len": 16}) for i in range(1, 21)], ago=30
    )
    f.lines(("m1", 1, "start", {"role": "mobile"}), ("m1", 1, "bound", {"agent": A1}), ago=30)
    f.lines(
        *[
            ("m1", 1, "app_rx", {"src": "10.0.0.5", "seq": i, "len": 16})
            for i in range(1, 21)
            if i not in (11, 12)
        ],
        via="a1",
        ago=29,
    )
    f.lines(
        ("a1", 1, "start", {"role": "agent"}),
        ("a1", 1, "binding_up", {"home": HOME, "load": 1}),
        ("a2", 1, "start", {"role": "agent"}),
        ("r1", 1, "start", {"role": "router"}),
        ("r1", 1, "safe_mode", {"reason": "crash loop"}),
        ("c1", 2, "start", {"role": "host"}),  # a new boot: c1 rebooted just now
    )
    f.lines(
        ("m1", 1, "rssi", {"serving": A1, "agents": {A1: -58, A2: -77}}),
        ("m1", 1, "handoff", {"old": A1, "new": A2, "old_score": 3, "new_score": 7}),
        ("m1", 1, "bound", {"agent": A2, "lifetime": 60}),
        ("m1", 1, "rssi", {"serving": A2, "agents": {A1: -71, A2: -52, "10.0.0.3": -88}}),
        via="a2",
    )
    f.lines(
        ("a2", 1, "crash", {"error": "MemoryError()", "at": CRASH_AT}),
        ("a2", 1, "binding_up", {"home": HOME, "load": 1}),
        ("a1", 1, "binding_down", {"home": HOME, "load": 0}),
        ("a2", 1, "log_stats", {"heap_free": 61000, "behind": 0, "relayed": 42}),
    )
    # a gap: two of m1's lines never arrive
    f.seq["m1", 1] += 2
    f.lines(("m1", 1, "log_stats", {"heap_free": 50000, "behind": 3}), via="a2")


@pytest.fixture
def fields(tmp_path):
    """Field servers on tmp_path (a second one resumes the first one's run), all closed."""
    made: list[Field] = []

    def make(port=0):
        made.append(Field(tmp_path, port))
        return made[-1]

    try:
        yield make
    finally:
        for f in made:
            f.close()


def _wait(what, cond, timeout=15.0, every=0.05):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = cond()
        except Exception as e:  # noqa: BLE001 - a page element mid-update: try again
            last = e
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def _browser(tmp_path):
    profile = "--user-data-dir=%s" % (tmp_path / "profile")
    return headless_chromium(CHROMIUM, CHROMEDRIVER, "--window-size=1280,800", profile, logs=True)


TOP_LINE = """const li = document.querySelector('#feed li');
return li && li.dataset.lineBoard === arguments[0] && li.dataset.s === String(arguments[1])
    && li.textContent;"""


def test_dashboard_live_in_headless_chromium(fields, tmp_path):
    _need_browser()

    t_begin = time.monotonic()
    field = fields()
    _populate(field)
    st = json.loads(_fetch(field.url("/api/state")))
    assert st["boards"]["m1"]["agent"] == "a2" and st["boards"]["r1"]["mode"] == "safe_mode"
    assert st["boards"]["a3"]["mode"] == "silent" and st["boards"]["ha"]["mode"] == "never"
    assert st["boards"]["a2"]["last_crash"] == {"error": "MemoryError()", "at": CRASH_AT}
    assert st["flows"][0]["flow"] == "c1>m1" and st["flows"][0]["sent"] == 20, st["flows"]
    gap = field.seq["m1", 1] - 3
    assert st["gaps"] == {"m1": [{"boot": 1, "from": gap, "to": gap + 1, "lines": 2}]}, st["gaps"]

    driver = _browser(tmp_path)

    def js(script, *args):
        return driver.execute_script(script, *args)

    # Every read is one script, so it sees one drawing: the page redraws on every state, and an
    # element found in one WebDriver call may be gone (stale) by the next.
    def text(css):
        return js("const e = document.querySelector(arguments[0]); return e && e.innerText", css)

    def attr(css, name):
        return js(
            "const e = document.querySelector(arguments[0]);"
            "return e && e.getAttribute(arguments[1])",
            css,
            name,
        )

    def by_attr(css, name):
        return dict(
            js(
                "return [...document.querySelectorAll(arguments[0])]"
                ".map(e => [e.getAttribute(arguments[1]), e.innerText])",
                css,
                name,
            )
        )

    try:
        driver.set_page_load_timeout(30)
        driver.get(field.url())
        _wait("the first state drawn", lambda: js("return document.body.dataset.ready"), 20)

        # the map: Plotly's svg with the fixed boards and m1's estimate as points
        points = _wait(
            "the map's points",
            lambda: (
                js("return !!document.querySelector('#map .main-svg')")
                and js("return document.querySelectorAll('#map .scatterlayer .point').length")
            ),
        )
        assert points >= 6, points  # a1 a2 a3 r1 c1, m1 (its marker and its spread)
        labels = js(
            "return [...document.querySelectorAll('#map .textpoint')].map(e => e.textContent)"
        )
        assert {"a1", "a2", "a3 ⚠", "r1 ⚠", "c1 ⚠"} <= set(labels), labels
        assert "m1" in labels, labels

        # the mobile node: serving agent, the RSSI it hears, the last hand-off
        m1 = '#mobiles [data-board="m1"]'
        assert text(m1 + " .serving") == "a2"
        assert "a1 → a2" in text(m1 + " .handoff")
        rssi = by_attr(m1 + " .rssi [data-agent]", "data-agent")
        assert set(rssi) == {"a1", "a2", "a3"}, rssi
        assert "-52" in rssi["a2"] and "-71" in rssi["a1"] and "-88" in rssi["a3"], rssi

        # the flags: silent, never heard, safe mode, rebooted; the running boards are not there
        flags = by_attr("#flags [data-flag]", "data-flag")
        assert set(flags) == {"a3", "ha", "r1", "c1"}, flags
        assert "silent" in flags["a3"] and "never" in flags["ha"], flags
        assert "safe mode" in flags["r1"] and "rebooted" in flags["c1"], flags
        assert text('#boards [data-board="r1"] .badge') == "safe mode"
        # a crash: counted on the board's panel, its error and where in the badge's title
        assert text('#agents [data-board="a2"] .badge.crash') == "1 crash"
        assert attr('#agents [data-board="a2"] .badge.crash', "title") == (
            "MemoryError() at " + CRASH_AT
        )
        assert "flagged" in attr('#agents [data-board="a3"]', "class")

        # the flow, the agents' bindings and load, the gap and the collector's counts
        cells = js(
            "return [...document.querySelectorAll('#flows tr[data-flow=\"c1>m1\"] td')]"
            ".map(e => e.innerText)"
        )
        assert cells[:4] == ["c1 → m1", "20", "18", "90.0 %"], cells
        assert text('#agents [data-board="a2"] .bindings') == "m1"
        assert text('#agents [data-board="a2"] .load') == "1"
        assert "m1 boot 1 seq %d–%d" % (gap, gap + 1) in text("#gaps")
        assert "frames" in text("#collector")

        # a line while the page is open: in the feed and in roamLatency within a second
        sent_ms = int(time.time() * 1000)  # whole milliseconds, as the page's Date.now()
        t0 = time.monotonic()
        field.lines(("m1", 1, "handoff", {"old": "10.0.0.2", "new": "10.0.0.1"}), via="a1")
        s = field.seq["m1", 1] - 1
        top = _wait("the new line in the feed", lambda: js(TOP_LINE, "m1", s), 5, every=0.02)
        shown_s = time.monotonic() - t0
        assert shown_s < 1.0, "the line took %.2f s to reach the feed" % shown_s
        assert "handoff" in top and "old=a2 new=a1" in top, top
        lat = js("return roamLatency.filter(x => x.board === 'm1' && x.s === arguments[0])", s)
        assert len(lat) == 1 and lat[0]["b"] == 1, lat
        assert 0 <= lat[0]["recv_ms"] - sent_ms < 1000, lat[0]["recv_ms"] - sent_ms
        # and the next state has m1 served by a1
        _wait("m1 served by a1", lambda: text(m1 + " .serving") == "a1", 5)

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        assert driver.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, len(data)

        # the collector stops: the page says so; it starts again (resuming the run, on the same
        # port): the page reconnects by itself and shows the new lines
        port, seq = field.port, dict(field.seq)
        field.close()
        _wait("the page to see the stop", lambda: "conn-down" in (attr("#conn", "class") or ""))
        field = fields(port)
        field.seq = seq
        _wait("the page live again", lambda: text("#conn") == "live", 20, every=0.1)
        s = seq["a2", 1]
        field.lines(("a2", 1, "binding_down", {"home": "10.0.0.9", "load": 0}))
        _wait("a line after the reconnect", lambda: js(TOP_LINE, "a2", s), 5)
        _wait("a2's binding gone", lambda: text('#agents [data-board="a2"] .bindings') == "none", 5)
    finally:
        driver.quit()
    assert time.monotonic() - t_begin < 60


def _fetch(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()

"""`roam field`'s process: the collector on UDP and the dashboard on HTTP, in one asyncio loop
(aiohttp).

* ``GET /`` the dashboard (hosttools/field/web: its page, script and style ship with the
  package; the plots are Plotly's, served from the `plotly` package's own offline copy: no
  internet needed);
* ``GET /api/state`` the field now (hosttools/field/state.py ``snapshot()``, plus the
  collector's counts and the gaps);
* ``GET /api/events`` server-sent events: every log line as it arrives (``event: line``) and
  the whole state once a second (``event: state``).

A datagram is handled as soon as the loop sees it: its lines go to the run directory and to
every open event stream at once (the page shows a board's event within a second).
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from hosttools.field.collector import Collector
from hosttools.field.state import FieldState

WEB = Path(__file__).resolve().parent / "web"
STATE_EVERY_S = 1.0
FLUSH_EVERY_S = 0.5
QUEUE_MAX = 5000  # lines waiting for one slow page; beyond that its lines are dropped (counted)
RECENT = 50  # lines a page gets when it opens, marked "replay" (the feed is not empty)


def plotly_js() -> bytes:
    """Plotly's JavaScript bundle from the installed `plotly` package (offline copy)."""
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()


class FieldServer:
    def __init__(self, collector: Collector, state: FieldState, transport: Any) -> None:
        self.collector = collector
        self.state = state
        self.transport = transport
        self.clients: set[asyncio.Queue[tuple[str, str]]] = set()
        self.lines_in = 0
        self.page_drops = 0  # lines a slow page did not get
        self.recent: list[dict[str, Any]] = []
        self._plotly: bytes | None = None
        collector.on_line = self._on_line
        for board, rec in collector.resumed:
            obj = rec.get("json")
            if isinstance(obj, dict) and isinstance(rec.get("host"), (int, float)):
                state.apply(board, obj, rec["host"])

    # -- the collector side ------------------------------------------------------------------

    def _on_line(self, board: str, obj: dict[str, Any], t: float, via: str | None) -> None:
        self.lines_in += 1
        self.state.apply(board, obj, t)
        rec = {"board": board, "host": t, "via": via, "line": obj}
        self.recent.append(rec)
        if len(self.recent) > RECENT:
            del self.recent[0]
        if self.clients:
            msg = json.dumps(rec)
            for q in list(self.clients):
                if q.qsize() < QUEUE_MAX:
                    q.put_nowait(("line", msg))
                else:
                    self.page_drops += 1

    def _readable(self) -> None:
        for _ in range(256):
            got = self.transport.recv()
            if got is None:
                return
            data, src = got
            self.collector.on_datagram(data, src)

    def full_state(self) -> dict[str, Any]:
        st = self.state.snapshot()
        st["collector"] = {
            "frames": self.collector.frames,
            "lines": self.lines_in,
            "refused": dict(self.collector.refused),
            "out": str(self.collector.out),
            "page_drops": self.page_drops,
        }
        st["gaps"] = self.collector.gaps()
        return st

    # -- HTTP --------------------------------------------------------------------------------

    async def index(self, _req: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB / "index.html", headers=NO_CACHE)

    async def static(self, req: web.Request) -> web.StreamResponse:
        name = req.match_info["name"]
        if name == "plotly.min.js":
            if self._plotly is None:
                self._plotly = plotly_js()
            return web.Response(body=self._plotly, content_type="application/javascript")
        path = WEB / name
        if "/" in name or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=NO_CACHE)  # a new roam: a new page at once

    async def api_state(self, _req: web.Request) -> web.Response:
        return web.json_response(self.full_state())

    async def api_events(self, req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(req)
        q: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.clients.add(q)
        try:
            await resp.write(_sse("state", json.dumps(self.full_state())))
            for rec in list(self.recent):  # what came just before, for the feed
                await resp.write(_sse("line", json.dumps(dict(rec, replay=True))))
            while True:
                kind, data = await q.get()
                await resp.write(_sse(kind, data))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.clients.discard(q)
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/state", self.api_state)
        app.router.add_get("/api/events", self.api_events)
        return app

    # -- running -----------------------------------------------------------------------------

    async def _ticker(self) -> None:
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(STATE_EVERY_S)
            if self.clients:
                msg = json.dumps(self.full_state())
                for q in list(self.clients):
                    q.put_nowait(("state", msg))
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                self.collector.flush()
                last_flush = time.monotonic()

    async def run(self, host: str, port: int, stop: asyncio.Event, ready: Any = None) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.transport.fileno(), self._readable)
        runner = web.AppRunner(
            self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        if ready is not None:
            ready(runner.addresses)
        ticker = asyncio.create_task(self._ticker())
        try:
            await stop.wait()
        finally:
            ticker.cancel()
            loop.remove_reader(self.transport.fileno())
            self._readable()  # what arrived in the last moment
            await runner.cleanup()


NO_CACHE = {"Cache-Control": "no-cache"}


def _sse(kind: str, data: str) -> bytes:
    return ("event: %s\ndata: %s\n\n" % (kind, data)).encode()

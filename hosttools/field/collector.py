"""The collector: the boards' log frames in, the run directory out.

Every LOG frame (firmware/fieldlog/wire.py) is checked with the sending board's log key
(derived from the fleet's log secret in the keys file); a frame from a node the fleet does
not name, with a wrong tag or malformed, is counted and dropped, and never reaches a file. A
line cut across frames is put together again (firmware/fieldlog/reader.py). Lines are kept
once per (board, boot, sequence): a line that arrives twice (a relay's retried copy, a
replayed frame, the stored log sent again for ``roam logs --pull``) is written once.

The run directory is a log directory in `roam logs`'s format, so `roam report DIR` reads it:

* ``<board>.jsonl``: ``{"host": t, "n": k, "json": {...line...}, "via": name}`` per line, in
  arrival order (``via``: the agent that relayed it, for radio-only boards; a line pulled from
  a board's flash after the walk has ``"pulled": true`` and no arrival time);
* ``logs.json``: ``{"kind": "roam-field", "boards": {name: {node, addr, role}}, "started",
  "stopped"}``;
* ``gaps.json`` (on stop): per board and boot, the sequence ranges still missing.

A collector started on a directory that holds an earlier run of `roam field` resumes it: what
is there counts as received (the stop shows as a gap until `roam logs --pull`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hosttools.errors import RoamError
from hosttools.firmware import fieldlog_reader, fieldlog_wire, log_key
from hosttools.fleet import Fleet, Keys

LOGS_META = "logs.json"
GAPS = "gaps.json"
KIND = "roam-field"


class BoardLog:
    """One board's log in the run directory and what of it has arrived."""

    def __init__(self, out: Path, name: str, node: int, key: bytes | None) -> None:
        self.name = name
        self.node = node
        self.key = key
        self.path = out / (name + ".jsonl")
        self.have: dict[int, set[int]] = {}  # boot -> sequence numbers received
        self.lines = fieldlog_reader().Lines()  # puts lines cut across frames together
        self.n = 0
        self.frames = 0
        self._f: Any = None

    def load(self) -> list[dict[str, Any]]:
        """Read what an earlier run left in the file; returns its records."""
        recs: list[dict[str, Any]] = []
        if not self.path.is_file():
            return recs
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash of the collector
                obj = rec.get("json")
                if isinstance(obj, dict) and isinstance(obj.get("b"), int):
                    if isinstance(obj.get("s"), int):
                        self.have.setdefault(obj["b"], set()).add(obj["s"])
                self.n = max(self.n, rec.get("n") or 0)
                recs.append(rec)
        return recs

    def write(self, rec: dict[str, Any]) -> None:
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")
        self.n += 1
        rec["n"] = self.n
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def gaps(self) -> list[dict[str, int]]:
        """Missing sequence ranges per boot, below the highest one received."""
        return missing(self.have)


def missing(have: dict[int, set[int]]) -> list[dict[str, int]]:
    """Per boot, the sequence ranges below the highest one received that are not there."""
    out = []
    for boot, seqs in sorted(have.items()):
        seqs = {s for s in seqs if isinstance(s, int)}
        if not seqs:
            continue
        start = None
        for s in range(0, max(seqs) + 1):
            if s not in seqs:
                if start is None:
                    start = s
            elif start is not None:
                out.append({"boot": boot, "from": start, "to": s - 1, "lines": s - start})
                start = None
    return out


class Collector:
    """Takes field datagrams, writes the run directory, tells a listener about every line."""

    def __init__(
        self,
        fleet: Fleet,
        keys: Keys,
        out: str | os.PathLike[str],
        on_line: Callable[[str, dict[str, Any], float, str | None], None] | None = None,
        clock: Callable[[], float] = time.time,
        resume: bool = True,
        live: bool = True,
    ) -> None:
        self.wire = fieldlog_wire()
        self.reader = fieldlog_reader()
        self.fleet = fleet
        self.out = Path(out)
        self.clock = clock
        self.on_line = on_line
        self.boards: dict[int, BoardLog] = {}
        self.by_ip: dict[str, str] = {}
        self.refused = {"unknown": 0, "auth": 0, "malformed": 0, "duplicate": 0}
        self.frames = 0
        # called with (board, line) for every new line, live or pulled (a pull watches for the
        # line that ends a board's stored log)
        self.watch: Callable[[str, dict[str, Any]], None] | None = None
        self._check_out_dir(resume)
        self.out.mkdir(parents=True, exist_ok=True)
        for b in fleet:
            secret = keys.for_board(b.name).get("log")
            key = log_key(bytes.fromhex(secret.reveal()), b.node) if secret else None
            self.boards[b.node] = BoardLog(self.out, b.name, b.node, key)
            if b.backbone_ip:
                self.by_ip[b.backbone_ip] = b.name
        if not any(bl.key for bl in self.boards.values()):
            raise RoamError(
                "the keys file has no 'log' key: boards sign their log lines with keys "
                'derived from it (add log = "<32 hex digits>" to [default], then roam provision)'
            )
        # the run's window is the live collector's: a pull after the walk fills it, never moves it
        self.live = live
        self.started = self.clock()
        self.stopped: float | None = None
        meta = self._read_meta()
        if isinstance(meta.get("started"), (int, float)):
            self.started = meta["started"]
        if not live and isinstance(meta.get("stopped"), (int, float)):
            self.stopped = meta["stopped"]
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        for bl in self.boards.values():
            for rec in bl.load():
                self.resumed.append((bl.name, rec))
        self.write_meta(stopped=None if live else self.stopped)

    def _read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads((self.out / LOGS_META).read_text())
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def _check_out_dir(self, resume: bool) -> None:
        meta = self.out / LOGS_META
        if meta.is_file():
            kind = self._read_meta().get("kind")
            if kind != KIND:
                raise RoamError(
                    "%s holds another kind of log directory (%s): choose a new --out"
                    % (self.out, kind)
                )
            if not resume:
                raise RoamError("%s holds an earlier run: choose a new --out" % self.out)
        elif self.out.is_dir() and any(self.out.iterdir()):
            raise RoamError(
                "%s is not empty and not a roam field run: choose a new --out" % self.out
            )

    def write_meta(self, stopped: float | None) -> None:
        meta = {
            "kind": KIND,
            "started": self.started,
            "stopped": stopped,
            "boards": {
                b.name: {"node": b.node, "addr": b.addr, "role": b.role} for b in self.fleet
            },
        }
        tmp = self.out / (LOGS_META + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.out / LOGS_META)

    # -- frames ------------------------------------------------------------------------------

    def on_datagram(self, data: bytes, src: tuple[str, int], pulled: bool = False) -> int:
        """One UDP datagram from the field; returns how many new lines it brought. ``pulled``:
        the lines come from a board's flash after the walk (``roam logs --pull``): they get no
        arrival time."""
        w = self.wire
        if len(data) < w.LOG_HEAD + w.TAG or data[0] != w.LOG:
            self.refused["malformed"] += 1
            return 0
        node = (data[2] << 8) | data[3]
        bl = self.boards.get(node)
        if bl is None or bl.key is None:
            self.refused["unknown"] += 1
            return 0
        if not w.verify(bl.key, data):
            self.refused["auth"] += 1
            return 0
        try:
            frame = self.reader.decode_log(data)
        except w.FieldError:
            self.refused["malformed"] += 1
            return 0
        self.frames += 1
        bl.frames += 1
        via = self.by_ip.get(src[0])
        return self.take(bl, bl.lines.add(frame), via if via != bl.name else None, pulled)

    def take(
        self, bl: BoardLog, lines: list[Any], via: str | None = None, pulled: bool = False
    ) -> int:
        """Write the new ones of a board's lines (file, offset, bytes); returns how many."""
        now = self.clock()
        new = 0
        for _num, _off, line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                self.refused["malformed"] += 1  # a line a power cut damaged on flash
                continue
            if not (isinstance(obj, dict) and isinstance(obj.get("b"), int)):
                continue
            seq = obj.get("s")
            if not isinstance(seq, int):
                continue
            have = bl.have.setdefault(obj["b"], set())
            if seq in have:
                self.refused["duplicate"] += 1
                continue
            have.add(seq)
            rec: dict[str, Any] = {"json": obj}
            if pulled:
                rec["pulled"] = True
            else:
                rec["host"] = round(now, 6)
            if via:
                rec["via"] = via
            bl.write(rec)
            new += 1
            if self.on_line is not None and not pulled:
                self.on_line(bl.name, obj, now, via)
            if self.watch is not None:
                self.watch(bl.name, obj)
        return new

    def flush(self) -> None:
        for bl in self.boards.values():
            bl.flush()

    def gaps(self) -> dict[str, list[dict[str, int]]]:
        return {bl.name: g for bl in self.boards.values() if (g := bl.gaps())}

    def close(self) -> None:
        for bl in self.boards.values():
            bl.close()
        self.write_meta(stopped=self.clock() if self.live or self.stopped is None else self.stopped)
        tmp = self.out / (GAPS + ".tmp")
        tmp.write_text(json.dumps(self.gaps(), indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.out / GAPS)

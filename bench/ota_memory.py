"""The heap the over-the-air update service takes on a board, at 32 bits (issue "Over-the-air
deploy": idle, the service adds <= 4 KiB of live heap), while an update runs, and after it.

The firmware as `roam deploy` sends it (.mpy: on a board its code lives in the heap too) runs
bench/ota_memory_mpy.py on the 32-bit MicroPython (the WebAssembly port, tools/mpy32.mjs, as
bench/field_memory.py does), for a radio-only board (``mobile``: the driver) and a backbone
board (``agent``: the driver and fieldlog/backbone.py). Every figure comes from RUNS pairs of
fresh processes, given as min / median / max; the claim is judged on the median. The port is
deterministic (the same run gives the same figure to the byte), so the runs differ in what
differs between boards: run i has a heap of 128 + 48 i KB (an ESP32 without PSRAM has 100-160
KB) and 37 i more names interned before the first reading. The names matter most: interned
names (qstrs) live in pools in the heap, never freed, and when one fills the next is allocated
at twice its size (4-5 KB here), paid by whichever module interns the name that filled it. So
a figure is the module's own cost, or that plus a new pool when its names happened to cross the
boundary: the ``*_qstr`` figures show which. (Within a run the collector is conservative: a
stale word can pin a dead block, so the script reads the least of several collections in three
chunks in a row, bench/ota_memory_mpy.py.)

* ``idle``: what the update hooks that stay loaded on every board cost. The live heap of the
  resident modules (driver imported, a Driver built and wired as start.py does, its tasks'
  coroutines made; on a backbone board also the Backbone, built by fieldlog/setup.py) minus the
  same with the hooks cut out of the source. The cut is made here, at bench time, by an ``ast``
  transform of the current firmware (``strip``), so the figure follows the code:

  - driver.py: the method ``Driver.on_update``; the attributes ``update``, ``update_key``,
    ``node``, ``address``, ``rand`` (set in ``__init__`` and by start.py); any branch that tests
    one of them (such as an ``if self.update is not None:`` in ``timers``) or that imports the
    update modules (``radio_rx``'s branch for a radio-only board's own update messages);
  - start.py (boot-time, dropped): what ``_build`` wires for the service (``net.on_update``,
    ``net.clock``, the update key);
  - fieldlog/backbone.py: the methods ``relay_update`` and ``_token``; the attributes ``radio``,
    ``address``, ``on_update``, ``clock``, ``askers``, ``u_tokens``, ``u_at``, ``u_relayed``,
    ``u_refused``, ``u_lost``, ``oom``; the branches that use them or the ``U_*`` types (in
    ``relay``, ``serve``, ``stats``) and the ``except MemoryError`` that counts ``oom`` (it came
    with the 560-byte update datagrams); the constants ``U_*``, ``RX_MAX``, ``RELAY_RATE``,
    ``HEARD_MS``, ``MAX_ASKERS`` and the imports nothing uses any more; ``serve`` receives
    ``RX_FIELD_ONLY`` bytes (what the field log took before the update service: a REWIND is 24);
  - fieldlog/setup.py (boot-time, dropped) no longer sets ``net.radio``;
  - a local of a function that only removed code read (``key`` in ``start._build``) goes too.

  Both variants go through ``ast.unparse`` (comments and layout do not reach an .mpy, but line
  numbers do: the same treatment for both), then mpy-cross. The stripped variant must compile
  and import, must have lost every listed method, attribute and constant, and must name none of
  them any more (the bench fails otherwise: a new hook needs a rule here). ``idle_qstr`` is the
  part of ``idle`` that is interned names (micropython.qstr_info()), ``hooks_mpy_*`` the hooks'
  share of each module's .mpy.
* ``active``: the same boards with the firmware as it is, taking the update messages the laptop
  would send (signed with the board's update key, built here with firmware/update/wire.py) for
  this checkout's firmware set (40 files): HELLO, BEGIN, then every FILE and its DATA (chunks of
  ``DATA_UDP`` bytes on the backbone, ``DATA_RADIO`` by radio), the last file half sent, all
  through ``Driver.on_update`` (a radio-only board's radio_rx calls the same update/board.py).
  The real service stages them on the port's file system (every answer must be OK). Readings,
  above the idle reading of the same run: with the update modules imported and no message yet
  (``active_code``), and with the Service and its Stage holding the set in progress
  (``active``).
* ``after_drop``: update/board.py ``idle`` run as the driver is meant to run it after a quiet
  minute (the modules popped from sys.modules), then the live heap again, above idle; and
  ``after_drop_all`` with what ``idle`` leaves loaded (the ``update`` package, ``slots``) popped
  as well. What is left then is mostly the names the update interned (``after_drop_qstr``: never
  freed) and sys.modules' grown table.

    python -m bench.ota_memory [--runs 5]      # writes out/bench/ota_memory.json; exits 1 when
                                               # the idle median is over 4 KiB on a role
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import BenchError, figure, write_result  # noqa: E402
from bench.field_memory import build, on32  # noqa: E402

SCRIPT = REPO / "bench" / "ota_memory_mpy.py"
FIRMWARE = REPO / "firmware"
ROLES = ("mobile", "agent")
GOAL = 4 * 1024
RUNS = 5
HEAP_KB = 128  # run i: a heap of HEAP_KB + 48 * i KB (an ESP32 without PSRAM has 100-160 KB)
PAD = 37  # run i: PAD * i more names interned before the first reading

# -- the update hooks: what stays loaded on a board when no update runs -------------------------
DRIVER_ATTRS = ("update", "update_key", "node", "address", "rand")
DRIVER_METHODS = ("on_update",)
BACKBONE_ATTRS = (
    "radio",
    "address",
    "on_update",
    "clock",
    "askers",
    "u_tokens",
    "u_at",
    "u_relayed",
    "u_refused",
    "u_lost",
    "oom",
)
BACKBONE_METHODS = ("relay_update", "_token")
BACKBONE_CONSTS = (
    "U_FIRST",
    "U_STATUS",
    "U_ACK",
    "U_RELAY",
    "RX_MAX",
    "RELAY_RATE",
    "HEARD_MS",
    "MAX_ASKERS",
)
RX_FIELD_ONLY = 64  # serve's receive size without updates (a REWIND is 24 bytes)
ATTRS = {"Driver": DRIVER_ATTRS, "Backbone": BACKBONE_ATTRS}
METHODS = {"Driver": DRIVER_METHODS, "Backbone": BACKBONE_METHODS}
# the names start.py and fieldlog/setup.py give those objects (``self`` inside the class)
OBJECTS = {"drv": "Driver", "net": "Backbone"}
STRIPPED = ("driver.py", "start.py", "fieldlog/backbone.py", "fieldlog/setup.py")
BOOT_TIME = ("start.py", "fieldlog/setup.py")  # dropped once the role runs

# -- the board the update is for (bench/ota_memory_mpy.py) -------------------------------------
NODE = 9
UPDATE_KEY = bytes(range(0x40, 0x50))
SESSION = 0x5EED  # what the bench's rand() draws: the service's session number


class _Strip:
    """Cuts the update hooks out of one module's tree; ``notes`` says what went."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.cls: str | None = None
        self.notes: list[str] = []
        self.gone_methods: set[tuple[str, str]] = set()
        self.gone_init: set[tuple[str, str]] = set()  # (class, attr) assignments in __init__
        self.gone_consts: set[str] = set()

    # what counts as a hook
    def owner(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = node.value.id
            return self.cls if name == "self" else OBJECTS.get(name)
        return None

    def hook(self, node: ast.AST) -> bool:
        owner = self.owner(node)
        if owner is not None and isinstance(node, ast.Attribute):
            return node.attr in ATTRS.get(owner, ()) or node.attr in METHODS.get(owner, ())
        return (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in BACKBONE_CONSTS
        )

    def touches(self, node: ast.AST) -> bool:
        return any(self.hook(n) for n in ast.walk(node))

    @staticmethod
    def imports_update(stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.ImportFrom):
            return (stmt.module or "").split(".")[0] == "update"
        if isinstance(stmt, ast.Import):
            return any(a.name.split(".")[0] == "update" for a in stmt.names)
        return False

    def note(self, where: str, what: str) -> None:
        self.notes.append("%s: %s" % (where, what))

    def assigns_hook(self, s: ast.stmt) -> bool:
        targets = _targets(s)
        hit = [t for t in targets if self.hook(t)]
        if hit and len(hit) != len(targets):
            raise BenchError("%s: cannot strip %s" % (self.module, ast.unparse(s)))
        return bool(hit)

    # the walk
    def block(self, body: list[ast.stmt], where: str) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in body:
            out.extend(self.stmt(s, where))
        return out

    def stmt(self, s: ast.stmt, where: str) -> list[ast.stmt]:
        if isinstance(s, ast.ClassDef):
            outer, self.cls = self.cls, s.name
            s.body = self.block(s.body, "%s.%s" % (where, s.name)) or [ast.Pass()]
            self.cls = outer
            return [s]
        if isinstance(s, _DEF):
            if self.cls is not None and s.name in METHODS.get(self.cls, ()):
                self.gone_methods.add((self.cls, s.name))
                self.note(where, "method %s" % s.name)
                return []
            inner = "%s.%s" % (where, s.name)
            read = _loads(s)
            s.body = self.block(s.body, inner)
            # a local only removed code read goes too
            now_read = _loads(s)
            body = []
            for b in s.body:
                if (
                    isinstance(b, ast.Assign)
                    and len(b.targets) == 1
                    and isinstance(b.targets[0], ast.Name)
                    and b.targets[0].id in read - now_read
                ):
                    self.note(inner, ast.unparse(b))
                    continue
                body.append(b)
            s.body = body or [ast.Pass()]
            return [s]
        if self.assigns_hook(s):
            if where.endswith(".__init__") and self.cls is not None:
                for t in _targets(s):
                    if isinstance(t, ast.Attribute):
                        self.gone_init.add((self.cls, t.attr))
            self.note(where, ast.unparse(s))
            return []
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and self.hook(s.value.func):
            self.note(where, ast.unparse(s))
            return []
        if isinstance(s, ast.If):
            if self.touches(s.test) or any(self.imports_update(b) for b in s.body):
                self.note(where, "branch `if %s`" % ast.unparse(s.test))
                return self.block(s.orelse, where)
            body = self.block(s.body, where)
            orelse = self.block(s.orelse, where)
            if not body:
                if orelse:
                    raise BenchError("%s: cannot strip `if %s`" % (where, ast.unparse(s.test)))
                self.note(where, "`if %s` (all of it)" % ast.unparse(s.test))
                return []
            s.body, s.orelse = body, orelse
            return [s]
        if isinstance(s, ast.Try):
            s.body = self.block(s.body, where)
            handlers = []
            for h in s.handlers:
                if any(self.assigns_hook(b) for b in h.body):
                    what = ast.unparse(h.type) if h.type is not None else ""
                    self.note(where, "`except %s`" % what)
                    continue
                h.body = self.block(h.body, where)
                handlers.append(h)
            s.handlers = handlers
            s.orelse = self.block(s.orelse, where)
            s.finalbody = self.block(s.finalbody, where)
            if not handlers and not s.finalbody:
                return s.body + s.orelse
            return [s]
        if isinstance(s, ast.For | ast.AsyncFor | ast.While):
            s.body = self.block(s.body, where) or [ast.Pass()]
            s.orelse = self.block(s.orelse, where)
            return [s]
        if isinstance(s, ast.With | ast.AsyncWith):
            s.body = self.block(s.body, where) or [ast.Pass()]
            return [s]
        return [s]

    def run(self, tree: ast.Module) -> ast.Module:
        read = _loads(tree)
        # serve() receives what the field log alone needs
        if any(isinstance(n, ast.Name) and n.id == "RX_MAX" for n in ast.walk(tree)):
            tree = _ReadAs("RX_MAX", RX_FIELD_ONLY).visit(tree)
            self.note(self.module, "RX_MAX read as %d" % RX_FIELD_ONLY)
        tree.body = self.block(tree.body, self.module)
        now_read = _loads(tree)
        body: list[ast.stmt] = []
        for s in tree.body:
            if isinstance(s, ast.Assign) and len(s.targets) == 1:
                t = s.targets[0]
                if isinstance(t, ast.Name) and t.id in BACKBONE_CONSTS and t.id not in now_read:
                    self.gone_consts.add(t.id)
                    self.note(self.module, "constant %s" % t.id)
                    continue
            if isinstance(s, ast.Import | ast.ImportFrom):
                keep = [
                    a for a in s.names if (a.asname or a.name).split(".")[0] not in read - now_read
                ]
                if len(keep) != len(s.names):
                    self.note(self.module, "unused now: %s" % ast.unparse(s))
                if not keep:
                    continue
                s.names = keep
            body.append(s)
        tree.body = body
        return tree

    def check(self, tree: ast.Module) -> None:
        """No hook left anywhere (the stripped module would fail where the bench does not go)."""

        def walk(node: ast.AST, cls: str | None) -> None:
            for child in ast.iter_child_nodes(node):
                self.cls = cls
                if self.hook(child) or (isinstance(child, ast.stmt) and self.imports_update(child)):
                    raise BenchError(
                        "%s: the stripped source still uses an update hook (%s): the bench's "
                        "strip rules need updating" % (self.module, ast.unparse(child))
                    )
                walk(child, child.name if isinstance(child, ast.ClassDef) else cls)

        walk(tree, None)
        self.cls = None


_DEF = ast.FunctionDef | ast.AsyncFunctionDef


def _targets(s: ast.stmt) -> list[ast.expr]:
    if isinstance(s, ast.Assign):
        return s.targets
    if isinstance(s, ast.AugAssign | ast.AnnAssign):
        return [s.target]
    return []


class _ReadAs(ast.NodeTransformer):
    """Every read of a name replaced by a constant."""

    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == self.name and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.Constant(self.value), node)
        return node


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def strip(src: str, module: str) -> tuple[str, str, list[str], _Strip]:
    """(the source as is, the source without the update hooks, what went, the stripper) for
    one of STRIPPED: both through ast.unparse."""
    full = ast.unparse(ast.parse(src))
    s = _Strip(module)
    tree = s.run(ast.parse(src))
    s.check(tree)
    ast.fix_missing_locations(tree)
    stripped = ast.unparse(tree)
    compile(stripped, module, "exec")
    return full, stripped, s.notes, s


def strip_firmware(fw: Path = FIRMWARE) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """{module path: (full, stripped) source} for STRIPPED, and what went; raises BenchError
    when a listed method, attribute or constant was not found (the list is out of date)."""
    out: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    methods: set[tuple[str, str]] = set()
    init: set[tuple[str, str]] = set()
    consts: set[str] = set()
    for rel in STRIPPED:
        full, stripped, n, s = strip((fw / rel).read_text(), rel)
        out[rel] = (full, stripped)
        notes += n
        methods |= s.gone_methods
        init |= s.gone_init
        consts |= s.gone_consts
    want_methods = {(c, m) for c in METHODS for m in METHODS[c]}
    want_init = {(c, a) for c in ATTRS for a in ATTRS[c]}
    missing = sorted(
        ["%s.%s()" % m for m in want_methods - methods]
        + ["%s.__init__: self.%s" % a for a in want_init - init]
        + sorted(set(BACKBONE_CONSTS) - consts)
    )
    if missing:
        raise BenchError("update hooks not found (the bench's list is out of date): %s" % missing)
    return out, notes


_WIRING_ENDS = ast.Expr | ast.Delete | ast.Import | ast.ImportFrom | ast.Try | ast.Return | _DEF


def wiring(start_src: str) -> str:
    """What start._build does to the driver right after building it (the assignments and
    conditions after ``drv = Driver(...)``, up to the next call, del, import, def, try or
    return: the drop of the boot-time code that follows), for the bench to run likewise."""
    tree = ast.parse(start_src)
    run = next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "_build")
    lines: list[str] = []
    after = False
    for s in run.body:
        if after:
            if isinstance(s, _WIRING_ENDS):
                break
            lines.append(ast.unparse(s))
        elif (
            isinstance(s, ast.Assign)
            and isinstance(s.targets[0], ast.Name)
            and s.targets[0].id == "drv"
        ):
            after = True
    if not after:
        raise BenchError("start._build builds no `drv = Driver(...)`: the bench needs updating")
    return "\n".join(lines) + "\n"


# -- the firmware, both ways, and what the boards get -------------------------------------------


def variants(tmp: Path) -> tuple[dict[str, Path], dict[str, str], dict[str, int], list[str]]:
    """The two firmware trees (.mpy), their start._build wiring, the .mpy bytes of the stripped
    modules, and what the strip removed."""
    sources, notes = strip_firmware()
    trees = {"full": tmp / "full", "stripped": tmp / "stripped"}
    wires: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for i, name in enumerate(trees):
        # bench/field_memory.py: the firmware as `roam deploy` sends it (constants folded
        # over the whole set: the stripped modules with the rest)
        build(trees[name], {rel: pair[i] for rel, pair in sources.items()})
        for rel in sources:
            if rel not in BOOT_TIME:
                sizes["%s/%s" % (name, rel)] = (trees[name] / (rel[:-3] + ".mpy")).stat().st_size
        wires[name] = wiring(sources["start.py"][i])
    return trees, wires, sizes, notes


def board_config(role: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "role": role,
        "node_id": NODE,
        "address": "10.0.0.9",
        "keys": {"256": "11" * 16, "768": "33" * 16, "1024": UPDATE_KEY.hex()},
        "collector": "10.77.0.2:4345",
    }
    if role == "agent":
        cfg["keys"]["769"] = "5a" * 16  # the log secret: an agent relays
    return cfg


def updates(role: str, payload: Any) -> tuple[bytes, int, int]:
    """The laptop's messages for ``payload`` (hosttools/ota/plan.py Payload), each as 2-byte
    length + message: HELLO, BEGIN, every FILE with its DATA (in chunks of the role's link), the
    last file half sent. (bytes, files, messages)"""
    from hosttools.firmware import update_wire

    w = update_wire()
    chunk = w.DATA_RADIO if role == "mobile" else w.DATA_UDP
    out = bytearray()
    n = 0

    def put(t: int, counter: int, body: bytes, session: int = SESSION) -> None:
        nonlocal n
        m = w.sign(UPDATE_KEY, t, NODE, session, counter, body)
        out.extend(struct.pack(">H", len(m)) + m)
        n += 1

    put(w.HELLO, 1, b"", session=0)  # counter: the laptop's nonce
    files = payload.files
    counter = 1
    put(w.BEGIN, counter, bytes([w.KIND_FIRMWARE, len(files)]) + payload.set_hash)
    for i, f in enumerate(files):
        counter += 1
        put(w.FILE, counter, bytes([i]) + struct.pack(">I", len(f.data)) + f.sha + f.path.encode())
        end = len(f.data) if i < len(files) - 1 else len(f.data) // 2
        for off in range(0, end, chunk):
            counter += 1
            put(
                w.DATA,
                counter,
                bytes([i]) + struct.pack(">I", off) + f.data[off : min(off + chunk, end)],
            )
    return bytes(out), len(files), n


def run32(
    fw: Path, role: str, mode: str, work: Path, heap_kb: int = HEAP_KB, pad: int = 0
) -> dict[str, Any]:
    """One run of bench/ota_memory_mpy.py (as bench/field_memory.py run32, with this bench's
    script and work directory), every JSON line it prints merged. ``mode`` is what ``work``
    makes of the run (``active`` with an updates.bin, else ``idle``): checked."""
    what = "%s %s (%s)" % (role, mode, fw.name)
    script = common.against_deployed(SCRIPT)
    done = on32(script, fw, work, role, str(pad), heap=heap_kb * 1000, what=what)
    out: dict[str, Any] = {}
    at = None
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            at = d.pop("qstr_at", at)
            out.update(d)
        elif line.startswith("qstr pool:") and at is not None:
            # micropython.qstr_info(): "qstr pool: n_pool=.., ..., n_total_bytes=N"
            out["qstr_" + at] = int(line.rsplit("n_total_bytes=", 1)[1].split(",")[0])
    if out.get("mode") != mode or "qstr_idle" not in out:
        raise BenchError("32-bit %s %s: no idle reading in %r" % (role, mode, done.stdout[-500:]))
    if mode == "active" and "qstr_after_all" not in out:
        raise BenchError("32-bit %s %s: no readings in %r" % (role, mode, done.stdout[-500:]))
    return out


# -- figures ------------------------------------------------------------------------------------


def spread(figures: dict[str, Any], name: str, values: list[int], note: str, whole: bool) -> Any:
    """figures[name]: the median of ``values``; with ``whole``, also name_min and name_max."""
    med = statistics.median(values)
    value = int(med) if med == int(med) else med
    figures[name] = dict(figure(value, "bytes"), note=note)
    if whole:
        figures[name + "_min"] = figure(min(values), "bytes")
        figures[name + "_max"] = figure(max(values), "bytes")
    return value


def role_figures(figures: dict[str, Any], role: str, full: list[dict], stripped: list[dict]) -> Any:
    """The figures of one role from its runs (run i of each variant: the same heap); the idle
    median."""

    def put(name: str, values: list[int], note: str, whole: bool = False) -> Any:
        return spread(figures, "%s_%s" % (role, name), values, note, whole)

    pairs = list(zip(full, stripped, strict=True))
    idle = put(
        "idle",
        [f["idle"] - s["idle"] for f, s in pairs],
        "live heap of the resident modules with the update hooks minus without (32-bit)",
        True,
    )
    put(
        "idle_qstr",
        [f["qstr_idle"] - s["qstr_idle"] for f, s in pairs],
        "of which interned names (their pools)",
        True,
    )
    put("resident", [f["idle"] for f in full], "the resident modules and objects, as they are")
    put("resident_stripped", [s["idle"] for s in stripped], "the same without the update hooks")
    put(
        "active_code",
        [f["code"] - f["idle"] for f in full],
        "update.board/service/stage/wire imported (and slots), no message yet; above idle",
    )
    put(
        "active",
        [f["active"] - f["idle"] for f in full],
        "a Service with a Stage holding a %d-file set in progress; above idle"
        % full[0]["set_files"],
        True,
    )
    put(
        "after_drop",
        [f["after"] - f["idle"] for f in full],
        "after update/board.py idle() (a quiet minute); above idle",
        True,
    )
    put(
        "after_drop_all",
        [f["after_all"] - f["idle"] for f in full],
        "also what idle() leaves loaded popped (%s); above idle" % ", ".join(full[0]["left"]),
    )
    put(
        "after_drop_qstr",
        [f["qstr_after_all"] - f["qstr_idle"] for f in full],
        "names the update interned (their pools: never freed)",
        True,
    )
    return idle


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=RUNS, help="fresh processes per figure")
    args = ap.parse_args(argv)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    info: dict[str, Any] = {}
    from hosttools.deploy import plan
    from hosttools.ota.plan import firmware

    payload = firmware(plan(FIRMWARE, True))  # this checkout's set, as `roam deploy --ota` sends
    with tempfile.TemporaryDirectory() as tmp:
        trees, wires, sizes, notes = variants(Path(tmp))
        print("cut out of the firmware for the idle baseline:")
        for n in notes:
            print("  " + n)
        for role in ROLES:
            data, files, count = updates(role, payload)
            info[role] = {"files": files, "messages": count, "message_bytes": len(data)}
            works = {}
            for name in trees:
                work = Path(tmp) / "work" / role / name
                work.mkdir(parents=True)
                (work / "cfg.json").write_text(json.dumps(board_config(role)))
                (work / "wiring.py").write_text(wires[name])
                if name == "full":
                    (work / "updates.bin").write_bytes(data)
                works[name] = work
            runs[role] = {"full": [], "stripped": []}
            for i in range(args.runs):
                heap, pad = HEAP_KB + 48 * i, PAD * i
                for name, mode in (("stripped", "idle"), ("full", "active")):
                    r = run32(trees[name], role, mode, works[name], heap, pad)
                    r["heap_kb"], r["pad"] = heap, pad
                    r.pop("modules", None)
                    runs[role][name].append(r)
    print(json.dumps({"updates": info, "runs": runs}, indent=1))
    figures: dict[str, Any] = {}
    over = []
    for role in ROLES:
        full = runs[role]["full"]
        for r in full:
            # every message answered OK, the whole set declared: the service did the work
            if r["bad"] or r["replies"] != info[role]["messages"]:
                raise BenchError("%s: the service refused messages: %r" % (role, r))
            if r["declared"] != info[role]["files"]:
                raise BenchError(
                    "%s: %d of %d files declared" % (role, r["declared"], info[role]["files"])
                )
        if role_figures(figures, role, full, runs[role]["stripped"]) > GOAL:
            over.append(role)
    for rel in ("driver.py", "fieldlog/backbone.py"):
        figures["hooks_mpy_%s" % rel.split("/")[-1][:-3]] = dict(
            figure(sizes["full/%s" % rel] - sizes["stripped/%s" % rel], "bytes"),
            note="the hooks' share of the module's .mpy (its code, in the heap on a board)",
        )
    write_result("ota_memory", figures)
    print("idle update hooks over 4 KiB at 32 bits (median): %s" % (", ".join(over) or "none"))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

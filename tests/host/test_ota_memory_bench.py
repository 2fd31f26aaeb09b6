"""bench/ota_memory.py's cut of the update hooks (the idle baseline): on the current firmware,
on small made-up modules, and its refusals when the firmware moved on (no MicroPython needed)."""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path

import pytest

from bench import ota_memory as om
from bench.common import BenchError

REPO = Path(__file__).resolve().parents[2]


def _names(src: str) -> set[str]:
    out = set()
    for n in ast.walk(ast.parse(src)):
        if isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            out.add(n.name)
    return out


def test_the_current_firmware_loses_every_hook_and_still_compiles() -> None:
    sources, notes = om.strip_firmware()
    assert set(sources) == set(om.STRIPPED)
    for rel, (full, stripped) in sources.items():
        assert full == ast.unparse(ast.parse((REPO / "firmware" / rel).read_text()))
        compile(stripped, rel, "exec")
        assert "from update" not in stripped and "import update" not in stripped
    backbone = _names(sources["fieldlog/backbone.py"][1])
    for gone in om.BACKBONE_METHODS + om.BACKBONE_CONSTS + om.BACKBONE_ATTRS:
        assert gone not in backbone, gone
    assert "ticks" not in backbone  # only the update code used it
    driver = _names(sources["driver.py"][1])
    for gone in ("on_update", "update_key", "update"):
        assert gone not in driver, gone
    for gone in ("self.rand", "self.node"):
        assert gone not in sources["driver.py"][1], gone
    for gone in ("drv.rand", "drv.address", "drv.update_key", "net.on_update"):
        assert gone not in sources["start.py"][1], gone
    assert "net.radio" not in sources["fieldlog/setup.py"][1]
    assert any("method relay_update" in n for n in notes)
    # what start._build wires for the service, and nothing without it
    wired = om.wiring(sources["start.py"][0])
    assert "drv.update_key" in wired and "net.on_update = drv.on_update" in wired
    assert om.wiring(sources["start.py"][1]).strip() == ""


def test_branches_handlers_constants_and_dead_locals() -> None:
    src = textwrap.dedent(
        """
        from mobility import ticks
        from fieldlog import wire
        U_RELAY = const(31)
        RX_MAX = const(560)
        HEARD_MS = const(15000)

        class Backbone:
            def __init__(self):
                self.sock = None
                self.askers = {}
                self.oom = 0

            def serve(self):
                try:
                    msg = self.sock.recv(RX_MAX)
                except OSError:
                    pass
                except MemoryError:
                    self.oom += 1
                    return
                t = msg[0]
                if t == wire.REWIND:
                    self.on_request(msg)
                elif t == U_RELAY:
                    self.relay_update(msg)
                elif t == 2:
                    pass

            def relay_update(self, msg):
                return ticks.diff(1, 2) < HEARD_MS

        def run(net):
            key = net.sock
            net.clock = key
            return net
        """
    )
    full, stripped, notes, _ = om.strip(src, "fieldlog/backbone.py")
    out = ast.unparse(ast.parse(stripped))
    assert "recv(64)" in out
    assert "MemoryError" not in out and "oom" not in out and "askers" not in out
    assert "U_RELAY" not in out and "relay_update" not in out and "HEARD_MS" not in out
    assert "ticks" not in out and "from fieldlog import wire" in out
    assert "if t == wire.REWIND" in out and "elif t == 2" in out  # the chain goes on
    assert "key" not in out  # a local only the removed line read
    assert len(notes) >= 8


def test_a_hook_no_rule_covers_fails_the_bench() -> None:
    src = textwrap.dedent(
        """
        class Driver:
            def __init__(self):
                self.update = None

            def peek(self):
                return [self.update]
        """
    )
    with pytest.raises(BenchError, match="still uses an update hook"):
        om.strip(src, "driver.py")


def test_a_listed_hook_that_is_gone_fails_the_bench(tmp_path: Path) -> None:
    for rel in om.STRIPPED:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "firmware" / rel, tmp_path / rel)
    p = tmp_path / "fieldlog" / "backbone.py"
    p.write_text(
        p.read_text()
        .replace("def _token(", "def _token_renamed(")
        .replace("self._token(", "self._token_renamed(")
    )
    with pytest.raises(BenchError, match=r"Backbone\._token\(\)"):
        om.strip_firmware(tmp_path)

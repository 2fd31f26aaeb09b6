"""One field layout (hosttools/sim/layout.py) for the simulator and the lab: a node has the same
identity, config and place in both, and the lab needs none of the simulator's machinery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hosttools import lab
from hosttools.sim import layout as layout_mod
from hosttools.sim import run, scenario
from hosttools.sim.world import World

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# what `roam lab up` and its daemon do with a scenario, short of starting processes
_LAB = r"""
import json, sys
from hosttools import air, lab, vboard
sc = lab.load_scenario("walk", None, 2.0)
configs = lab.build_configs(sc, 1, 2.0)
where = lab.positions(sc, 1)
lab.fleet_text(configs, {c.name: c.name for c in configs}, "127.0.0.1:1",
               {c.name: where.at(c.name, 0.0) for c in configs})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("hosttools"))))
"""


def test_the_lab_uses_none_of_the_simulators_machinery():
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(
        [sys.executable, "-c", _LAB], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "hosttools.sim.layout" in loaded  # (the test does what the lab does)
    for internal in ("world", "cores", "engine", "roles", "metrics", "kernels", "ring", "run"):
        assert "hosttools.sim." + internal not in loaded


def test_a_board_is_configured_placed_and_named_as_its_simulated_node():
    sc = scenario.load("walk")
    seed = 3
    factory = run.make_factory("roam")
    world = World(sc, factory, seed)
    boards = lab.build_configs(sc, seed)
    where = lab.positions(sc, seed)
    assert [b.name for b in boards] == [nd.id for nd in world.nodes]
    for nd, board in zip(world.nodes, boards, strict=True):
        factory.make(world, nd, 0)  # the role builds from it (a bad config raises)
        # the board's config.json is the role's config (in JSON), with what a board adds
        cfg = dict(board.config)
        assert cfg.pop("role") == nd.kind
        assert cfg.pop("channel") == nd.channel
        wifi = cfg.pop("wifi", None)
        assert (wifi is not None) == (nd.bb is not None)
        if wifi is not None:
            ip = bytes(int(x) for x in wifi["ip"].split("."))
            assert ip + wifi["port"].to_bytes(2, "big") == nd.bb and wifi["ssid"] == lab.SSID
            assert cfg.pop("collector") == lab.COLLECTOR
        cfg.pop("flows", None)
        sim = layout_mod._jsonable(world.layout.config(nd.idx, nd.boot, factory.policy))
        sim.pop("epoch")
        assert sim.pop("mac") == board.mac  # (a board's driver takes it from its radio)
        assert cfg == sim
        assert board.mac == ":".join("%02x" % x for x in nd.mac)
        assert board.node_id == nd.idx + 1 and board.address == "%d.%d.%d.%d" % tuple(nd.addr)
        assert where.at(nd.id, 0.0) == world.pos(nd.idx, 0)


def test_flows_become_the_senders_traffic():
    sc = scenario.load("walk")
    layout = layout_mod.Layout(sc)
    for f in sc.flows:
        src = layout.by_id[f.src]
        flows = layout.board_config(src.index)["flows"]
        assert {
            "to": layout_mod.ntoa(layout.by_id[f.dst].addr),
            "every_ms": round(f.interval_ms),
            "size": f.size,
            "start_ms": round(f.start_s * 1000),
            "stop_ms": round(f.stop_s * 1000),
        } in flows


def test_roles_come_from_the_firmware():
    from hosttools import firmware, fleet

    assert fleet.ROLES == firmware.roles() == ("agent", "mobile", "host", "home", "router")
    assert scenario.ROLES == firmware.roles() + ("attacker",)

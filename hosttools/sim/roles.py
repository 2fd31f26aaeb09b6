"""Building the protocol core's roles for the simulated nodes.

Each node's role is the class the firmware's role map names for it (firmware/config.py
ROLE_CLASSES, what a board's driver builds), made from the config the field's layout gives the
node in that boot (hosttools/sim/layout.py: addresses, keys, region, home agent, gateway,
epoch, policy), with a seeded ``rand``. The attacker (a simulator tool, never firmware) is the
one role outside the map (hosttools/sim/attacker.py).
"""

import random

from hosttools import firmware


class RoleFactory:
    def __init__(self, policy="roam"):
        self.policy = policy
        self.world = None

    def prepare(self, world):
        self.world = world
        col = world.col
        if col is not None:  # region membership for the metrics (convergence)
            by_id = world.sc.by_id
            nodes = world.nodes
            for r in world.sc.regions:
                idx = [by_id[m].index for m in r.members]
                for m in r.members:
                    col.regions[nodes[by_id[m].index].addr] = idx

    def make(self, world, nd, now):
        r = random.Random((world.seed << 20) ^ (nd.idx << 4) ^ nd.boot)
        cfg = world.layout.config(nd.idx, nd.boot, self.policy)
        if nd.kind == "attacker":
            from hosttools.sim.attacker import Attacker

            return Attacker(cfg, r.getrandbits, now, world, nd)
        return firmware.config().role_class(nd.kind, "node %r" % nd.id)(cfg, r.getrandbits, now)

"""The attacker's counters in summary.json (docs/METRICS.md "The attacker's counters"): per
class of attack frame (hosttools/sim/attacker.py CLASSES) what was sent and accepted, then how
many of the accepted frames changed each sort of state.

A module of its own, importing nothing: the metrics (hosttools/sim/metrics.py) count them, and
the claims (hosttools/sim/claims.py) name them, which the scenario loader imports before the
simulator has chosen its compiled or Python core (metrics imports the core).
"""

ATTACK_CLASSES = ("forged", "replayed", "relayed", "insider", "spoofed", "flood")
ATTACK_EFFECTS = (
    "mac_hijacks",
    "agent_macs_planted",
    "bindings_changed",
    "origins_moved",
    "routes_moved",
    "sequence_moved",
    "proxies_made",
    "remote_moved",
    "tunnels_forwarded",
    "answers_over_limit",
    "tables_over_cap",
)
ATTACK_COUNTERS = (
    tuple(c + "_sent" for c in ATTACK_CLASSES)
    + tuple(c + "_accepted" for c in ATTACK_CLASSES)
    + ATTACK_EFFECTS
)

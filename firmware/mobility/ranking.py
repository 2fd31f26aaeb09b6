"""How a mobile node ranks the agents it hears (docs/CORE.md "Ranking").

    score = w_rssi * (rssi - rssi_floor)                  signal, smoothed dBm above the floor
          + w_service * (number of extra services)        reverse tunnelling, region publication
          - w_load * load // capacity                     0 .. w_load as the agent fills up
          - outage_penalty                                if a planned outage starts within
                                                          outage_horizon_s (or is under way)

An agent is no candidate (score None) when it offers no routing service, has capacity 0, is
full (load >= capacity) unless it already serves the node, or refused the node recently.
Integers only: floats allocate on MicroPython.
"""

from mobility import advert, ticks

DEFAULTS = {
    "w_rssi": 1,  # points per dB
    "w_service": 5,  # points per extra service (reverse tunnelling, region publication)
    "w_load": 20,  # points taken by a full agent relative to an empty one
    "rssi_floor": -100,  # dBm counted as zero signal
    "outage_horizon_s": 10,  # an outage starting this soon counts as imminent
    "outage_penalty": 1000,  # larger than any signal difference: leave before the outage
    "margin": 6,  # hysteresis: a better agent must lead by this many points ...
    "dwell_ms": 3000,  # ... for this long before the node moves
    "edge_rssi": -85,  # serving agent this weak (edge of its cell): move without dwell
    "miss_rssi": -95,  # dBm counted for a missed advertisement (below a receiver's sensitivity)
}


def weights(config):
    """DEFAULTS overridden by config (a dict of the same names, ints); ValueError on others."""
    w = dict(DEFAULTS)
    if config is None:
        return w
    if not isinstance(config, dict):
        raise ValueError("config 'rank' must be a dict, not %r" % (config,))
    for name in config:
        if name not in DEFAULTS:
            raise ValueError(
                "unknown ranking weight %r (known: %s)" % (name, ", ".join(sorted(DEFAULTS)))
            )
        v = config[name]
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError("ranking weight %r must be an int, not %r" % (name, v))
        if name in ("margin", "dwell_ms", "outage_horizon_s", "outage_penalty", "w_load") and v < 0:
            raise ValueError("ranking weight %r must be >= 0, not %r" % (name, v))
        w[name] = v
    return w


def _extra_services(services):
    n = 0
    if services & advert.SVC_REVERSE:
        n += 1
    if services & advert.SVC_REGION:
        n += 1
    return n


def outage_imminent(info, now, w):
    """True when the agent announced an outage that starts within the horizon or is under way."""
    if info.outage_start is None:
        return False
    return ticks.diff(info.outage_start, now) <= w["outage_horizon_s"] * 1000


def score(info, now, w, serving=False):
    """The agent's score (an int, higher is better) or None when it is no candidate."""
    if not info.services & advert.SVC_ROUTING or info.capacity == 0:
        return None
    if not serving:
        if info.load >= info.capacity:
            return None
        if info.blocked_until is not None and ticks.diff(info.blocked_until, now) > 0:
            return None
    s = w["w_rssi"] * (info.rssi - w["rssi_floor"])
    s += w["w_service"] * _extra_services(info.services)
    s -= w["w_load"] * min(info.load, info.capacity) // info.capacity
    if outage_imminent(info, now, w):
        s -= w["outage_penalty"]
    return s

"""How nodes move: a node's movement is a sequence of straight legs.

(The scenario calls it a node's ``mobility``; this module is ``movement`` so that it is never
confused with the protocol core's package ``mobility``, firmware/mobility.)

A leg is (t0, x0, y0, t1, x1, y1) in seconds and metres: the node goes from (x0, y0) at t0 to
(x1, y1) at t1 at constant speed (a pause is a leg that does not move). Each model below is a
generator of legs; the world asks for the next leg when the current one ends, so a random
waypoint walk of ten minutes costs a handful of legs, not a position update per tick.

Models (the `mobility` table of a scenario node):
* ``{kind = "static"}`` (the default; `pos` gives the place),
* ``{kind = "waypoints", points = [[x, y], ...], speed = m/s, pause_s = 0,
  repeat = "none" | "loop" | "pingpong", start_s = 0}``,
* ``{kind = "random_waypoint", area = [x0, y0, x1, y1], speed = [min, max], pause_s = [min, max]}``,
* ``{kind = "trace", file = "path.csv"}``: lines ``t_s,x,y`` (sorted by time; ``#`` comments);
  the node holds its last position after the trace ends.
"""

import math
import os

FOREVER = 1e12


class MovementError(ValueError):
    pass


def _num(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise MovementError("%s must be a number, got %r" % (what, v))
    return float(v)


def _point(p, what):
    if not isinstance(p, (list, tuple)) or len(p) != 2:
        raise MovementError("%s must be [x, y], got %r" % (what, p))
    return (_num(p[0], what + " x"), _num(p[1], what + " y"))


def static_legs(x, y):
    yield (0.0, x, y, FOREVER, x, y)


def waypoint_legs(points, speed, pause_s=0.0, repeat="none", start_s=0.0):
    t = 0.0
    x, y = points[0]
    if start_s > 0:
        yield (0.0, x, y, start_s, x, y)
        t = start_s
    order = list(points)
    while True:
        for nx, ny in order[1:]:
            dur = math.hypot(nx - x, ny - y) / speed
            if dur > 0:
                yield (t, x, y, t + dur, nx, ny)
                t += dur
            x, y = nx, ny
            if pause_s > 0:
                yield (t, x, y, t + pause_s, x, y)
                t += pause_s
        if repeat == "loop":
            order = [order[-1]] + list(points)
        elif repeat == "pingpong":
            order = list(reversed(order))
        else:
            yield (t, x, y, FOREVER, x, y)
            return


def random_waypoint_legs(rng, area, speed, pause_s, start=None):
    x0, y0, x1, y1 = area
    if start is None:
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
    else:
        x, y = start
    t = 0.0
    while True:
        nx, ny = rng.uniform(x0, x1), rng.uniform(y0, y1)
        v = rng.uniform(speed[0], speed[1])
        dur = math.hypot(nx - x, ny - y) / v
        yield (t, x, y, t + dur, nx, ny)
        t += dur
        x, y = nx, ny
        p = rng.uniform(pause_s[0], pause_s[1])
        if p > 0:
            yield (t, x, y, t + p, x, y)
            t += p


def load_trace(path):
    """Read a `t_s,x,y` trace; returns a list of (t, x, y) sorted by time."""
    if not os.path.exists(path):
        raise MovementError("trace file %s does not exist" % path)
    pts = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(",")
            if len(parts) != 3:
                raise MovementError("%s:%d: expected t_s,x,y, got %r" % (path, lineno, line))
            try:
                t, x, y = (float(p) for p in parts)
            except ValueError:
                raise MovementError("%s:%d: not numbers: %r" % (path, lineno, line)) from None
            if pts and t < pts[-1][0]:
                raise MovementError("%s:%d: time goes backwards" % (path, lineno))
            pts.append((t, x, y))
    if not pts:
        raise MovementError("trace file %s has no points" % path)
    return pts


def trace_legs(pts):
    t0, x0, y0 = pts[0]
    if t0 > 0:
        yield (0.0, x0, y0, t0, x0, y0)
    for t1, x1, y1 in pts[1:]:
        if t1 > t0:
            yield (t0, x0, y0, t1, x1, y1)
        t0, x0, y0 = t1, x1, y1
    yield (t0, x0, y0, FOREVER, x0, y0)


def legs_for(spec, pos, rng, base_dir="."):
    """The leg generator and start position for a node's `mobility` spec."""
    spec = dict(spec or {"kind": "static"})
    kind = spec.pop("kind", "static")
    if kind == "static":
        if pos is None:
            raise MovementError("a static node needs pos = [x, y]")
        x, y = pos
        known = ()
        gen = static_legs(x, y)
    elif kind == "waypoints":
        known = ("points", "speed", "pause_s", "repeat", "start_s")
        pts = spec.get("points")
        if not isinstance(pts, list) or len(pts) < 2:
            raise MovementError("waypoints need points = [[x, y], ...] with 2 or more points")
        pts = [_point(p, "waypoint") for p in pts]
        speed = _num(spec.get("speed", 1.4), "speed")
        if speed <= 0:
            raise MovementError("speed must be positive")
        repeat = spec.get("repeat", "none")
        if repeat not in ("none", "loop", "pingpong"):
            raise MovementError("repeat must be none, loop or pingpong, got %r" % repeat)
        gen = waypoint_legs(
            pts,
            speed,
            _num(spec.get("pause_s", 0), "pause_s"),
            repeat,
            _num(spec.get("start_s", 0), "start_s"),
        )
    elif kind == "random_waypoint":
        known = ("area", "speed", "pause_s")
        area = spec.get("area")
        if not isinstance(area, list) or len(area) != 4:
            raise MovementError("random_waypoint needs area = [x0, y0, x1, y1]")
        area = [_num(a, "area") for a in area]
        if area[2] <= area[0] or area[3] <= area[1]:
            raise MovementError("random_waypoint area must have x1 > x0 and y1 > y0")
        speed = spec.get("speed", [0.5, 1.5])
        pause = spec.get("pause_s", [0, 10])
        for name, v in (("speed", speed), ("pause_s", pause)):
            if not isinstance(v, list) or len(v) != 2 or _num(v[0], name) > _num(v[1], name):
                raise MovementError("%s must be [min, max]" % name)
        if speed[0] <= 0:
            raise MovementError("random_waypoint speed must be positive")
        gen = random_waypoint_legs(
            rng, area, [float(s) for s in speed], [float(p) for p in pause], pos
        )
    elif kind == "trace":
        known = ("file",)
        fname = spec.get("file")
        if not isinstance(fname, str):
            raise MovementError('trace needs file = "path.csv"')
        if not os.path.isabs(fname):
            fname = os.path.join(base_dir, fname)
        gen = trace_legs(load_trace(fname))
    else:
        raise MovementError(
            "unknown mobility kind %r (static, waypoints, random_waypoint, trace)" % kind
        )
    extra = sorted(set(spec) - set(known))
    if extra:
        raise MovementError("unknown %s mobility setting(s): %s" % (kind, ", ".join(extra)))
    return gen

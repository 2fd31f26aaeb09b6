"""The radio model's fast back end: hosttools.radio for every node at once, compiled (numba).

A transmission in the simulator needs the mean RSSI at every node within reach (about 1,000
nodes in the city) and, at its end, the fast fading and packet error rate at every candidate
hearer. As numpy expressions that was some eighty array operations per frame on small arrays,
where the cost is numpy's per-call overhead, not the arithmetic; one compiled loop per step
does the arithmetic element by element in a few microseconds.

These functions compute the formulas of hosttools.radio.Radio for one link (mean_rssi with
shadow_db, fading_db, p_loss), link after link; tests/host/test_sim_kernels.py compares them
with those (transcendental functions may differ in the last bit). hosttools.radio.Medium calls
them; the lab's air does not: it sends a frame at a time (Radio's own methods). `positions`
gives them every node's position along the simulator's linear legs.
"""

import numpy as np
from numba import njit

from hosttools import radio as radio_mod

SHADOW_CLIP = radio_mod.SHADOW_CLIP
LATTICE_Q = radio_mod.LATTICE_Q  # the lattice's int8 step (a compile-time constant here)
FADING_CLIP = radio_mod.FADING_CLIP
_IH_SCALE = radio_mod._IH_SCALE
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_MASK16 = np.uint64(0xFFFF)
_S16 = np.uint64(16)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S48 = np.uint64(48)


@njit(cache=True)
def positions(now_s, X0, Y0, VX, VY, T0, X, Y):
    """Every node's position at now_s (seconds) into X, Y (as World.pos computes one)."""
    for i in range(X0.shape[0]):
        dt = now_s - T0[i]
        X[i] = X0[i] + VX[i] * dt
        Y[i] = Y0[i] + VY[i] * dt


def pair_rows(vals):
    """The shadowing lattice (ni, nj) laid out as (ni - 1, nj, 2): [i, j] holds the values at
    (i, j) and (i + 1, j), so the four corners of a bilinear lookup are 16 adjacent bytes (one
    cache line, mostly) instead of two rows ~4 kB apart. The same values, copied."""
    return np.ascontiguousarray(np.stack((vals[:-1], vals[1:]), axis=-1))


def spatial_order(X, Y, cell_m=8.0):
    """The node indices in Z order (Morton) of the cell_m grid cells they are in: nodes next
    to each other in this order are near each other in the plane, so the midpoints of their
    links with one sender are too, and rx_means reads the lattice where it just read."""
    xi = np.clip(((X - X.min()) / cell_m).astype(np.int64), 0, 0xFFFF)
    yi = np.clip(((Y - Y.min()) / cell_m).astype(np.int64), 0, 0xFFFF)
    return np.argsort(_spread16(xi) | (_spread16(yi) << 1), kind="stable")


def _spread16(v):
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    return (v | (v << 1)) & 0x55555555


@njit(cache=True)
def rx_means(X, Y, x, y, sender, reach2, base, half_ten_n, pairs, i0, j0, inv2h, sigma, out, order):
    """Mean RSSI (Radio.mean_rssi) of a transmission from (x, y) at every node into out (-inf
    beyond reach2 and at the sender); `pairs` is the lattice from pair_rows(), `order` every
    node index once (spatial_order: any order gives the same values, a spatial one is faster).
    Returns False, leaving out incomplete, when a link's midpoint falls outside the shadowing
    lattice (the caller grows it and calls again)."""
    ni = pairs.shape[0]
    nj = pairs.shape[1] - 1
    for k in range(order.shape[0]):
        b = order[k]
        dx = X[b] - x
        dy = Y[b] - y
        d2 = dx * dx + dy * dy
        if d2 > reach2 or b == sender:
            out[b] = -np.inf
            continue
        fx = (X[b] + x) * inv2h
        fy = (Y[b] + y) * inv2h
        fi = np.floor(fx)
        fj = np.floor(fy)
        ii = int(fi) - i0
        jj = int(fj) - j0
        if ii < 0 or jj < 0 or ii >= ni or jj >= nj:
            return False
        u = fx - fi
        v = fy - fj
        z = (
            (1 - u) * ((1 - v) * pairs[ii, jj, 0] + v * pairs[ii, jj + 1, 0])
            + u * ((1 - v) * pairs[ii, jj, 1] + v * pairs[ii, jj + 1, 1])
        ) * LATTICE_Q
        if z < -SHADOW_CLIP:
            z = -SHADOW_CLIP
        elif z > SHADOW_CLIP:
            z = SHADOW_CLIP
        if d2 < 1.0:
            d2 = 1.0
        out[b] = base - half_ten_n * np.log10(d2) - z * sigma
    return True


@njit(cache=True)
def carrier_sense(rx, CH, channel, threshold, end, now, BUSY, BUSY_PREV, BUSY_START):
    """Mark the medium busy until `end` at every node on `channel` that senses rx."""
    for i in range(rx.shape[0]):
        if rx[i] >= threshold and CH[i] == channel:
            b = BUSY[i]
            BUSY_PREV[i] = b
            if end > b:
                BUSY[i] = end
            BUSY_START[i] = now


@njit(cache=True)
def _mix(x):
    x = (x ^ (x >> _S30)) * _C1
    x = (x ^ (x >> _S27)) * _C2
    return x ^ (x >> _S31)


@njit(cache=True)
def _hnorm(base, key):
    h = _mix(base + key)
    s = (h & _MASK16) + ((h >> _S16) & _MASK16) + ((h >> _S32) & _MASK16) + (h >> _S48)
    return (np.float64(s) + 2.0) * (_IH_SCALE / 65536.0) - 2.0 * _IH_SCALE


@njit(cache=True)
def _level_and_loss(lv, a, b, b0, b1, w0, w1, fading, g0, sensitivity, hearing_floor, bits):
    """(frame RSSI, loss probability) of a frame of `bits` bits from node a at node b whose
    mean RSSI is lv: plus the link's fast fading (Radio.fading_db with the two bin bases b0, b1
    and weights w0, w1), then the DBPSK packet error rate (Radio.p_loss)."""
    lo = a if a < b else b
    hi = b if a < b else a
    key = (lo << _S32) | hi
    if fading != 0.0:
        f = w0 * _hnorm(b0, key) + w1 * _hnorm(b1, key)
        if f < -FADING_CLIP:
            f = -FADING_CLIP
        elif f > FADING_CLIP:
            f = FADING_CLIP
        lv = lv + f * fading
    g = g0 * np.power(10.0, (lv - sensitivity) / 10.0)
    if g > 700.0:
        g = 700.0
    q = -np.expm1(bits * np.log1p(-0.5 * np.exp(-g)))
    return lv, (1.0 if lv < hearing_floor else q)


@njit(cache=True)
def receptions(
    RX, START, END, CHAN, SENDER, slot, floor, ON, CH, unicast_to, SEEN, sniff,
    b0, b1, w0, w1, fading, g0, sensitivity, hearing_floor, bits, U, u, capture,
    out_idx, out_rssi,
):  # fmt: skip
    """Who receives the transmission in `slot` at its end. The transmissions in the air are
    rows of slots: RX[s] the mean RSSI at every node, START, END, CHAN, SENDER (an unused slot
    ends before anything starts).

    Candidates, in index order: on, on the channel, mean RSSI at least `floor`; for a unicast
    frame (unicast_to >= -1; -1: the addressee is not on the channel) only the addressee and
    the sniffers (SEEN). Each takes the next uniform U[u] against its loss probability
    (_level_and_loss): below it the frame is lost to noise. Of the rest, a broadcast
    (unicast_to == -2) reaches everyone, a unicast frame its addressee and, when `sniff` (the
    first attempt), the sniffers. A receiver then loses it in a collision when it was sending
    itself during the frame (half duplex) or when another transmission on the channel that
    overlaps it in time reaches it less than `capture` dB weaker than this frame's RSSI rounded
    to a dBm. Writes the receivers and their RSSI (dBm, rounded) to out_idx, out_rssi; returns
    (receivers, lost to noise, collisions, the next unused uniform)."""
    start = START[slot]
    end = END[slot]
    channel = CHAN[slot]
    a = np.uint64(SENDER[slot])
    # the overlapping transmissions (few: at most the slots)
    over = np.empty(START.shape[0], dtype=np.int64)
    n_over = 0
    for s in range(START.shape[0]):
        if s != slot and CHAN[s] == channel and END[s] > start and START[s] < end:
            over[n_over] = s
            n_over += 1
    n = 0
    lost = 0
    collided = 0
    rx = RX[slot]
    for j in range(rx.shape[0]):
        mean = rx[j]
        if mean < floor or not ON[j] or CH[j] != channel:
            continue
        if unicast_to >= -1 and not (SEEN[j] or j == unicast_to):
            continue
        lv, p = _level_and_loss(
            mean, a, np.uint64(j), b0, b1, w0, w1, fading, g0, sensitivity, hearing_floor, bits
        )
        draw = U[u]
        u += 1
        if draw < p:
            lost += 1
            continue
        if not (unicast_to == -2 or j == unicast_to or (SEEN[j] and sniff)):
            continue
        level = np.rint(lv)
        hit = False
        for k in range(n_over):
            o = over[k]
            if SENDER[o] == j or RX[o, j] > level - capture:
                hit = True
                break
        if hit:
            collided += 1
            continue
        out_idx[n] = j
        out_rssi[n] = int(level)
        n += 1
    return n, lost, collided, u


def _first_call_with_ctrl_c_held(name):
    """The kernel ``name`` as a module attribute that, on its first call, compiles it (or loads
    it from numba's cache) with Ctrl-C held (hosttools/errors.py ``ctrl_c_held``: numba's
    compiler cut in the middle corrupts llvmlite's heap), then puts the kernel itself in its
    place: every later call goes straight to it. Only the kernels called from Python: the
    ones they call are compiled with them."""
    from hosttools.errors import ctrl_c_held

    kernel = globals()[name]

    def first_call(*args):
        with ctrl_c_held():
            out = kernel(*args)
        globals()[name] = kernel
        return out

    globals()[name] = first_call


for _name in ("positions", "rx_means", "carrier_sense", "receptions"):
    _first_call_with_ctrl_c_held(_name)
del _name

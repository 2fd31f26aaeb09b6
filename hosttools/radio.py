"""The radio model shared by the simulator and the virtual-board air.

Everything here is physics and bookkeeping of the shared medium, with no notion of an event
loop: callers pass positions, times (integer microseconds) and a seeded random generator, so the
simulator (virtual time) and the air (real time) use the same numbers. docs/SIMULATOR.md states
the model, its parameters and their sources; in short, per frame and receiver:

* **Path loss** (log-distance): ``PL(d) = pl0_db + 10 * exponent * log10(d / 1 m)``.
* **Shadowing** (slow fading, obstacles): log-normal, *correlated in space*. One seeded smooth
  Gaussian random field G over the plane (unit variance, exponential autocorrelation, built as
  a sum of random sinusoids and sampled on a lattice, bilinear in between) read at the link's
  midpoint: the link a-b sees ``shadowing_db * G((pos_a + pos_b) / 2)``. Symmetric (the ACK sees
  what the frame saw), the same at the same places, and Gudmundson's model for a moving end:
  G's correlation distance is half of ``shadow_corr_m``, so after one end moved d metres the
  link's shadowing has correlation ``exp(-d / shadow_corr_m)``; nearby receivers of one sender
  see correlated shadowing, receivers in other directions independent values. Clipped to
  +-2.5 sigma so the range is bounded.
* **Fast fading** (multipath): a Gaussian term in dB per link that is correlated over
  ``coherence_ms`` (hashed from the seed, the pair and the time, interpolated), so a MAC retry
  a millisecond later meets the same fade while frames a second apart are independent.
* **RSSI** = tx_power - PL - shadowing - fast fading (dBm, rounded to an int as ESP-NOW reports).
* **Frame loss**: the packet error rate of DBPSK (802.11b at 1 Mbps) over the frame's bits,
  ``PER = 1 - (1 - 0.5 * exp(-g))**bits`` with g proportional to the received power and
  calibrated so that a 1,024-byte frame has 8 % PER at ``sensitivity_dbm`` (how IEEE 802.11
  defines receiver sensitivity). The curve is steep: a 100-byte frame goes from ~100 % to ~0 %
  loss within about 4 dB. Below ``sensitivity - 5 dB`` nothing is decoded.
* **Channel**: only nodes on the same channel hear or disturb each other.
* **Airtime**: an ESP-NOW frame is an 802.11 vendor-specific action frame (43 bytes of MAC
  header, ESP-NOW header and FCS around the payload) sent at the configured PHY rate.
* **Contention and collisions** (:class:`Medium`, the simulator's air: every node at once): a
  sender defers while it senses a transmission at least ``cs_threshold_dbm`` strong (carrier
  sense; one that began less than a slot ago cannot be sensed yet) and then waits DIFS plus a
  random backoff; a receiver loses a frame when another frame on its channel overlaps it in time
  and arrives less than ``capture_db`` weaker than the frame (no capture), or when it was sending
  itself (half duplex). So a flooding storm costs airtime, deferrals and collisions as it would.
* **Unicast** frames are acknowledged and retried by the MAC (ESP-NOW does this in hardware):
  each attempt costs airtime plus SIFS and the ACK; the sender learns of a failure only after
  the last retry.

:class:`Radio` computes one link at a time (the lab's air, hosttools/air.py, sends a frame at a
time); :class:`Medium` the same formulas for every node at once through the compiled loops of
hosttools/radio_kernels.py (tests/host/test_sim_kernels.py compares the two).
"""

import math
import random

import numpy as np

ESPNOW_OVERHEAD_BYTES = 43  # MAC header 24, category 1, OUI 3, random 4, vendor element 7, FCS 4
MAX_PAYLOAD = 250
ACK_BYTES = 14
DSSS_RATES = (1.0, 2.0, 5.5, 11.0)
OFDM_RATES = (6.0, 9.0, 12.0, 18.0, 24.0, 36.0, 48.0, 54.0)
SHADOW_CLIP = 2.5  # shadowing is clipped to +-2.5 sigma so the range is finite
# the lattice holds G clipped to +-SHADOW_CLIP in steps of this (int8): 0.02 sigma, 0.12 dB at
# the default 6 dB, against a 2 dB fast fading. A city's lattice is read at ~1,000 scattered
# places per frame, one cache miss each: a quarter of float32's bytes halved that time.
LATTICE_Q = SHADOW_CLIP / 127.0
HEARING_FLOOR_DB = 5.0  # below sensitivity - 5 dB a frame is never decoded (PER ~ 100 %)
FADING_CLIP = 3.0  # fast fading is clipped to +-3 sigma
FIELD_TERMS = 48  # sinusoids in the shadowing field: a Gaussian marginal (CLT)
FIELD_MIN_WAVELENGTH_M = 4.0  # finer structure than this is fast fading's business
LATTICE_PER_CORR = 10  # lattice points per shadow_corr_m (1 m at the default 10 m)
LATTICE_MARGIN_M = 200.0  # cover() grows the lattice by this much beyond what it must cover
SENS_REF_BYTES = 1024  # IEEE 802.11 defines sensitivity as 8 % PER of a 1,024-byte frame
SENS_REF_PER = 0.08
# Medium (the simulator's air). The shadowing lattice is grown by this much beyond the midpoints
# it must hold: little, so that it stays small enough for the CPU cache (a city's lattice is read
# ~1,000 times a frame at scattered places); values do not depend on the extent (Radio.cover)
MEDIUM_LATTICE_MARGIN_M = 20.0
# how often the nodes' spatial order for radio_kernels.rx_means is renewed (it only makes it
# faster; a node moves at most a few metres meanwhile)
ORDER_EVERY_US = 1000000
HORIZON_US = 3000  # a transmission is kept in the air this long after its end
TX_SLOTS = 64  # rows for transmissions in the air (more are added when needed)
_NEVER = -(1 << 62)  # the start and end of an unused row
UNIFORMS = 1 << 15  # loss draws made ahead at a time

DEFAULTS = {
    "tx_power_dbm": 10.0,  # ESP32 default is higher; 10 dBm gives ~100-150 m cells outdoors
    "pl0_db": 40.05,  # free-space loss at 1 m, 2.4 GHz
    "exponent": 2.8,  # outdoor with some clutter
    "shadowing_db": 4.0,  # sigma of the log-normal shadowing (3GPP TR 38.901 UMi LOS: 4 dB)
    "shadow_corr_m": 10.0,  # its decorrelation distance (TR 38.901 UMi LOS: 10 m)
    "fading_db": 2.0,  # sigma of the fast fading in dB (Rician, K ~ 10 dB)
    "coherence_ms": 40.0,  # fast fading coherence time (Clarke: 0.423 / f_d, 1.4 m/s, 2.4 GHz)
    "sensitivity_dbm": -90.0,  # 8 % PER at 1,024 bytes (ESP32 datasheet -98 dBm, 8 dB margin)
    "capture_db": 10.0,  # a frame survives an overlapping one that is this much weaker
    "cs_threshold_dbm": -92.0,  # carrier sense: a transmission this strong makes the medium busy
    "rate_mbps": 1.0,  # ESP-NOW default PHY rate
    "channel": 1,
    "retries": 3,  # unicast MAC retransmissions after the first attempt
}


class RadioConfigError(ValueError):
    """A radio parameter is unknown or out of range."""


def check_config(cfg):
    """Return a complete radio config dict from `cfg` (defaults for what is missing)."""
    out = dict(DEFAULTS)
    for key, value in (cfg or {}).items():
        if key not in DEFAULTS:
            raise RadioConfigError(
                "unknown radio parameter %r (known: %s)" % (key, ", ".join(sorted(DEFAULTS)))
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RadioConfigError("radio parameter %r must be a number, got %r" % (key, value))
        out[key] = value
    rate = float(out["rate_mbps"])
    if rate not in DSSS_RATES and rate not in OFDM_RATES:
        raise RadioConfigError(
            "radio rate_mbps %r is not an 802.11b/g rate (%s)"
            % (out["rate_mbps"], ", ".join("%g" % r for r in DSSS_RATES + OFDM_RATES))
        )
    if out["exponent"] <= 0:
        raise RadioConfigError("radio exponent must be positive")
    if out["shadowing_db"] < 0 or out["fading_db"] < 0:
        raise RadioConfigError("radio shadowing_db and fading_db must not be negative")
    if out["shadow_corr_m"] <= 0 or out["coherence_ms"] <= 0:
        raise RadioConfigError("radio shadow_corr_m and coherence_ms must be positive")
    if not 1 <= int(out["channel"]) <= 14:
        raise RadioConfigError("radio channel must be 1..14, got %r" % out["channel"])
    if int(out["retries"]) < 0:
        raise RadioConfigError("radio retries must not be negative")
    return out


_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x):
    """splitmix64 finaliser: a well-spread 64-bit hash of an int (seeded draws)."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash_normal(base, key):
    """A (nearly) standard normal value fixed by (base, key) (64-bit ints): the sum of the four
    16-bit uniforms of one hash (Irwin-Hall, bounded to +-3.46 sigma), rescaled to unit
    variance. (radio_kernels._hnorm computes the same numbers.)"""
    h = _mix64((base + key) & _M64)
    s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48) + 2.0
    return (s / 65536.0 - 2.0) * _IH_SCALE


_IH_SCALE = math.sqrt(3.0)  # the sum of 4 uniforms has variance 4/12


def _pair_key(a, b):
    if a > b:
        a, b = b, a
    return ((a << 32) | b) & _M64


def _fading_weights(t_us, coh_us):
    """Bin number and interpolation weights (w0, w1) of the fast-fading process at t_us:
    linear interpolation between independent normals one coherence time apart, scaled back to
    unit variance."""
    k = t_us // coh_us
    w = (t_us - k * coh_us) / coh_us
    norm = math.sqrt((1.0 - w) ** 2 + w * w)
    return int(k), (1.0 - w) / norm, w / norm


class Radio:
    """Link budget, loss, timing for one deployment. `seed` fixes the shadowing fields of every
    node and the fast fading of every link."""

    def __init__(self, cfg=None, seed=0):
        self.cfg = check_config(cfg)
        c = self.cfg
        self.seed = int(seed)
        self.tx_power = float(c["tx_power_dbm"])
        self.pl0 = float(c["pl0_db"])
        self.ten_n = 10.0 * float(c["exponent"])
        self.shadow_sigma = float(c["shadowing_db"])
        self.corr_m = float(c["shadow_corr_m"])
        self.fading = float(c["fading_db"])
        self.coh_us = max(1, int(float(c["coherence_ms"]) * 1000))
        self.sensitivity = float(c["sensitivity_dbm"])
        self.capture_db = float(c["capture_db"])
        self.cs_threshold = float(c["cs_threshold_dbm"])
        self.rate = float(c["rate_mbps"])
        self.channel = int(c["channel"])
        self.retries = int(c["retries"])
        self.hearing_floor = self.sensitivity - HEARING_FLOOR_DB
        # DBPSK: BER = 0.5 exp(-g); g at the sensitivity gives SENS_REF_PER for SENS_REF_BYTES
        ber0 = 1.0 - (1.0 - SENS_REF_PER) ** (1.0 / (8 * SENS_REF_BYTES))
        self.g0 = math.log(0.5 / ber0)
        self._base_shadow = _mix64(self.seed * _GOLDEN + 0x5AD0)
        self._base_fade = _mix64(self.seed * _GOLDEN + 0xFADE)
        self._field = self._field_params()
        self.lattice_step = self.corr_m / LATTICE_PER_CORR
        self._lattice = None  # (i0, j0, values): G on lattice points, grown by cover()
        dsss = self.rate in DSSS_RATES
        self.slot_us = 20 if dsss else 9
        self.sifs_us = 10 if dsss else 16
        self.difs_us = self.sifs_us + 2 * self.slot_us
        self.cw_min = 31 if dsss else 15
        self.ack_us = self.airtime_us(ACK_BYTES - ESPNOW_OVERHEAD_BYTES, raw=ACK_BYTES)

    # -- the shadowing field -----------------------------------------------------------------

    def _field_params(self):
        """Wave vectors (1/m) and phases of the shadowing field G, from the seed.

        Spectral method: G(p) = sqrt(2/K) sum_j cos(k_j . p + phi_j) with uniform phases and
        wave vectors drawn from the spectrum of exp(-r / d) in 2-D (d = shadow_corr_m / 2, the
        midpoint moves half as far as the end), whose radial CDF is 1 - (1 + (k d)^2)^(-1/2);
        truncated at FIELD_MIN_WAVELENGTH_M."""
        g = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x5AD0])
        d = self.corr_m / 2.0
        kmax = 2.0 * math.pi / FIELD_MIN_WAVELENGTH_M
        umax = 1.0 - 1.0 / math.sqrt(1.0 + (kmax * d) ** 2)
        u = g.random(FIELD_TERMS) * umax
        k = np.sqrt(1.0 / (1.0 - u) ** 2 - 1.0) / d
        th = g.random(FIELD_TERMS) * (2.0 * math.pi)
        ph = g.random(FIELD_TERMS) * (2.0 * math.pi)
        return k * np.cos(th), k * np.sin(th), ph

    def _lattice_values(self, i0, j0, ni, nj):
        """G at the lattice points (i0 .. i0+ni-1, j0 .. j0+nj-1) * step, shape (ni, nj)."""
        kx, ky, ph = self._field
        h = self.lattice_step
        xs = np.arange(i0, i0 + ni) * h
        ys = np.arange(j0, j0 + nj) * h
        out = np.zeros((ni, nj))
        for t in range(FIELD_TERMS):
            # cos(a + b) = cos a cos b - sin a sin b: two outer products, no 2-D cosine
            a = xs * kx[t]
            b = ys * ky[t] + ph[t]
            out += np.outer(np.cos(a), np.cos(b))
            out -= np.outer(np.sin(a), np.sin(b))
        # kept as int8 multiples of LATTICE_Q (clipped as every reader clips anyway)
        q = np.rint(out * (math.sqrt(2.0 / FIELD_TERMS) / LATTICE_Q))
        return np.clip(q, -127, 127).astype(np.int8)

    def cover(self, x0, y0, x1, y1, margin_m=LATTICE_MARGIN_M):
        """Make the cached lattice cover the rectangle (metres; midpoints of links), growing it
        by `margin_m` when needed. Values do not depend on the lattice's extent."""
        h = self.lattice_step
        i0, j0 = int(math.floor(x0 / h)), int(math.floor(y0 / h))
        i1, j1 = int(math.floor(x1 / h)) + 1, int(math.floor(y1 / h)) + 1
        lat = self._lattice
        if lat is not None:
            li0, lj0, vals = lat
            if i0 >= li0 and j0 >= lj0 and i1 < li0 + vals.shape[0] and j1 < lj0 + vals.shape[1]:
                return
            i0, j0 = min(i0, li0), min(j0, lj0)
            i1, j1 = max(i1, li0 + vals.shape[0] - 1), max(j1, lj0 + vals.shape[1] - 1)
        m = int(margin_m / h)
        i0, j0, i1, j1 = i0 - m, j0 - m, i1 + m, j1 + m
        self._lattice = (i0, j0, self._lattice_values(i0, j0, i1 - i0 + 1, j1 - j0 + 1))

    def field_value(self, x, y):
        """G(x, y): the unit-variance shadowing field, bilinear between lattice points."""
        h = self.lattice_step
        fx, fy = x / h, y / h
        i, j = int(math.floor(fx)), int(math.floor(fy))
        u, v = fx - i, fy - j
        lat = self._lattice
        if (
            lat is not None
            and lat[0] <= i < lat[0] + lat[2].shape[0] - 1
            and (lat[1] <= j < lat[1] + lat[2].shape[1] - 1)
        ):
            c = lat[2][i - lat[0] : i - lat[0] + 2, j - lat[1] : j - lat[1] + 2]
        else:
            c = self._lattice_values(i, j, 2, 2)
        c = c.astype(np.float64)  # (the arithmetic in double, as everywhere)
        return float(
            ((1 - u) * ((1 - v) * c[0, 0] + v * c[0, 1]) + u * ((1 - v) * c[1, 0] + v * c[1, 1]))
            * LATTICE_Q
        )

    def shadow_db(self, a, b, pos_a=(0.0, 0.0), pos_b=(0.0, 0.0)):
        """Shadowing of the link a-b in dB (positive = more loss) with a at pos_a and b at pos_b
        (metres): symmetric, fixed by the seed and the two positions. (a and b are not used:
        the field belongs to the place, not to the nodes.)"""
        z = self.field_value((pos_a[0] + pos_b[0]) * 0.5, (pos_a[1] + pos_b[1]) * 0.5)
        z = SHADOW_CLIP if z > SHADOW_CLIP else (-SHADOW_CLIP if z < -SHADOW_CLIP else z)
        return z * self.shadow_sigma

    # -- link budget -------------------------------------------------------------------------

    def mean_rssi(self, a, b, dist_m, pos_a=(0.0, 0.0), pos_b=(0.0, 0.0)):
        """Expected RSSI (dBm, float) between nodes a and b (ints) at `dist_m` metres, a at pos_a
        and b at pos_b."""
        d = dist_m if dist_m > 1.0 else 1.0
        return (
            self.tx_power
            - self.pl0
            - self.ten_n * math.log10(d)
            - self.shadow_db(a, b, pos_a, pos_b)
        )

    def fading_db(self, a, b, t_us):
        """Fast fading of link a-b at t_us (dB, positive = stronger), correlated over the
        coherence time, symmetric."""
        if not self.fading:
            return 0.0
        k, w0, w1 = _fading_weights(t_us, self.coh_us)
        key = _pair_key(a, b)
        base = self._base_fade
        n0 = _hash_normal((base + _mix64(k)) & _M64, key)
        n1 = _hash_normal((base + _mix64(k + 1)) & _M64, key)
        f = w0 * n0 + w1 * n1
        f = FADING_CLIP if f > FADING_CLIP else (-FADING_CLIP if f < -FADING_CLIP else f)
        return f * self.fading

    def frame_rssi(self, mean, rng):
        """One frame's RSSI (int dBm as a board reports it) around the mean, with an independent
        fast-fading draw (for callers that do not track time per link)."""
        if self.fading:
            f = rng.gauss(0.0, 1.0)
            f = FADING_CLIP if f > FADING_CLIP else (-FADING_CLIP if f < -FADING_CLIP else f)
            mean += f * self.fading
        return int(round(mean))

    def p_loss(self, rssi, payload_len=100):
        """Probability that a frame carrying `payload_len` bytes received at `rssi` is not
        decoded (noise alone): the DBPSK packet error rate."""
        if rssi < self.hearing_floor:
            return 1.0
        g = self.g0 * 10.0 ** ((rssi - self.sensitivity) / 10.0)
        if g > 700:
            return 0.0
        bits = 8 * (payload_len + ESPNOW_OVERHEAD_BYTES)
        return -math.expm1(bits * math.log1p(-0.5 * math.exp(-g)))

    def audible_floor(self):
        """A mean RSSI below this is never decoded, whatever the fading."""
        return self.hearing_floor - FADING_CLIP * self.fading

    def max_range_m(self):
        """No frame is ever decoded beyond this distance (best-case shadowing and fading)."""
        budget = (
            self.tx_power
            - self.pl0
            - self.hearing_floor
            + SHADOW_CLIP * self.shadow_sigma
            + FADING_CLIP * self.fading
        )
        return 10 ** (budget / self.ten_n)

    def nominal_range_m(self):
        """Distance at which the mean RSSI (no shadowing) equals the sensitivity."""
        return 10 ** ((self.tx_power - self.pl0 - self.sensitivity) / self.ten_n)

    # -- timing ------------------------------------------------------------------------------

    def airtime_us(self, payload_len, raw=None):
        """Airtime in microseconds of an ESP-NOW frame carrying `payload_len` bytes."""
        nbytes = raw if raw is not None else payload_len + ESPNOW_OVERHEAD_BYTES
        rate = self.rate
        if rate in DSSS_RATES:
            preamble = 192 if rate == 1.0 else 96  # long preamble at 1 Mbps, short above
            return preamble + int(math.ceil(nbytes * 8 / rate))
        bits_per_symbol = 4 * rate
        symbols = int(math.ceil((16 + 8 * nbytes + 6) / bits_per_symbol))
        return 20 + 4 * symbols

    def unicast_attempt_us(self, payload_len):
        """One unicast attempt: the frame, SIFS and the ACK."""
        return self.airtime_us(payload_len) + self.sifs_us + self.ack_us

    def backoff_us(self, rng, attempt=0):
        """DIFS plus a random backoff; the contention window doubles per retry (max 1023)."""
        cw = min(1023, ((self.cw_min + 1) << attempt) - 1)
        return self.difs_us + rng.randint(0, cw) * self.slot_us


class Medium:
    """The air of a whole deployment at once (the simulator's): the transmissions in it, carrier
    sense, and who receives a frame at its end. The formulas are Radio's, computed for every node
    by the compiled loops of hosttools/radio_kernels.py.

    Nodes are the indices 0 .. n-1 of the caller's arrays, which it keeps up to date and the
    medium only reads: `on` (bool: switched on), `channels` (int16) and `sniffers` (bool: they
    also hear unicast frames addressed to others, as the attacker does). `draws`, a numpy
    generator, gives the loss draws: one uniform per candidate hearer, in index order.

    A transmission's mean RSSI at every node is computed once (levels(), out to where it can
    still be decoded or sensed); carrier sense, reception and interference read that array.
    The transmissions in the air are rows of slot arrays (mean RSSI at every node, start, end,
    channel, sender), so receptions() finds the overlapping ones itself; a row is reused once
    its frame ended more than `horizon_us` ago (no ESP-NOW frame lasts that long: 2.5 ms at
    1 Mbps).
    """

    def __init__(self, radio, on, channels, sniffers, draws, horizon_us=HORIZON_US):
        from hosttools import radio_kernels  # numba: imported by the simulator only, not the lab

        self.k = radio_kernels
        self.radio = radio
        self.on = on
        self.channels = channels
        self.sniffers = sniffers
        self.draws = draws
        self.horizon = horizon_us
        self.collisions = 0  # receptions lost to another transmission (or to half duplex)
        self.lost = 0  # receptions lost to noise
        n = len(on)
        # a transmission's levels are computed out to where it can still be decoded or sensed:
        # beyond this distance no transmission can make the medium busy
        budget = radio.tx_power - radio.pl0 - radio.cs_threshold + SHADOW_CLIP * radio.shadow_sigma
        self.cs_range2 = (10 ** (budget / radio.ten_n)) ** 2
        self.reach2 = max(radio.max_range_m() ** 2, self.cs_range2)
        self.floor = radio.audible_floor()
        self._lat_src = None  # the radio's shadowing lattice, and it as radio_kernels.pair_rows
        self._lat_pairs = None
        self._order = np.arange(n)  # nodes in spatial order (radio_kernels.spatial_order) ...
        self._order_at = -ORDER_EVERY_US  # ... as of this time
        # carrier sense per node, kept up to date when a transmission starts: until when the
        # medium is busy, the value before the latest transmission, and when that latest one
        # began (a transmission younger than a slot cannot be sensed yet)
        self.BUSY = np.zeros(n, dtype=np.int64)
        self.BUSY_PREV = np.zeros(n, dtype=np.int64)
        self.BUSY_START = np.full(n, -(1 << 40), dtype=np.int64)
        # the transmissions in the air as rows (_slot, radio_kernels.receptions): mean RSSI at
        # every node, start, end, channel, sender
        self.TX_RX = np.full((TX_SLOTS, n), -np.inf)
        self.TX_START = np.full(TX_SLOTS, _NEVER, dtype=np.int64)
        self.TX_END = np.full(TX_SLOTS, _NEVER, dtype=np.int64)
        self.TX_CH = np.full(TX_SLOTS, -1, dtype=np.int16)
        self.TX_SENDER = np.full(TX_SLOTS, -1, dtype=np.int64)
        self._slot_next = 0
        self._rx_idx = np.empty(n, dtype=np.int64)  # a transmission's receivers
        self._rx_rssi = np.empty(n, dtype=np.int64)
        self._uniforms = np.empty(0)  # drawn ahead from `draws` (the loss draws), and the next
        self._u = 0

    def busy_until(self, i, now):
        """When the medium as node i senses it becomes idle (<= now when idle)."""
        if self.BUSY_START[i] > now - self.radio.slot_us:
            return int(self.BUSY_PREV[i])
        return int(self.BUSY[i])

    def levels(self, sender, x, y, X, Y, now):
        """Mean RSSI (Radio.mean_rssi) of a transmission by node `sender` at (x, y) at every node,
        X and Y (numpy) being their positions: -inf beyond where it can be decoded or sensed,
        and at the sender itself."""
        k = self.k
        if now - self._order_at >= ORDER_EVERY_US:
            self._order = k.spatial_order(X, Y)
            self._order_at = now
        radio = self.radio
        rx = np.empty(len(X))
        while True:
            lat = radio._lattice
            if lat is not None and lat is not self._lat_src:
                self._lat_src = lat
                self._lat_pairs = k.pair_rows(lat[2])
            if lat is not None and k.rx_means(
                X,
                Y,
                x,
                y,
                sender,
                self.reach2,
                radio.tx_power - radio.pl0,
                radio.ten_n / 2.0,
                self._lat_pairs,
                lat[0],
                lat[1],
                0.5 / radio.lattice_step,
                radio.shadow_sigma,
                rx,
                self._order,
            ):
                return rx
            # a link's midpoint is off the shadowing lattice: grow it to cover every midpoint
            # of this transmission
            d2 = (X - x) ** 2 + (Y - y) ** 2
            near = d2 <= self.reach2
            near[sender] = False
            mx = (X[near] + x) * 0.5
            my = (Y[near] + y) * 0.5
            radio.cover(
                float(mx.min()),
                float(my.min()),
                float(mx.max()),
                float(my.max()),
                MEDIUM_LATTICE_MARGIN_M,
            )

    def start(self, sender, channel, start, end, rx):
        """`sender`'s transmission on `channel` from start to end, with levels rx (levels()), is
        in the air: every node on the channel that senses it finds the medium busy until its
        end. Returns its slot, for receptions()."""
        self.k.carrier_sense(
            rx,
            self.channels,
            channel,
            self.radio.cs_threshold,
            end,
            start,
            self.BUSY,
            self.BUSY_PREV,
            self.BUSY_START,
        )
        slot = self._slot(start)
        self.TX_RX[slot] = rx
        self.TX_START[slot] = start
        self.TX_END[slot] = end
        self.TX_CH[slot] = channel
        self.TX_SENDER[slot] = sender
        return slot

    def _slot(self, now):
        """A row for a new transmission in the slot arrays: the oldest, which ended more than the
        horizon ago (longer than any frame lasts, so no transmission that can still be received
        overlaps it); more rows when none has."""
        S = self.TX_END.shape[0]
        slot = self._slot_next % S
        if self.TX_END[slot] >= now - self.horizon:
            grow = S
            self.TX_RX = np.concatenate((self.TX_RX, np.full((grow, self.TX_RX.shape[1]), -np.inf)))
            self.TX_START = np.concatenate((self.TX_START, np.full(grow, _NEVER, dtype=np.int64)))
            self.TX_END = np.concatenate((self.TX_END, np.full(grow, _NEVER, dtype=np.int64)))
            self.TX_CH = np.concatenate((self.TX_CH, np.full(grow, -1, dtype=np.int16)))
            self.TX_SENDER = np.concatenate((self.TX_SENDER, np.full(grow, -1, dtype=np.int64)))
            slot = S
            self._slot_next = S
        self._slot_next += 1
        return slot

    def receptions(self, slot, payload_len, now, unicast_to, sniff):
        """(indices, RSSIs) of the nodes that receive the transmission in `slot`, carrying
        `payload_len` bytes, at its end `now`: noise (its mean RSSI plus the link's fast fading
        now, Radio.fading_db, then the packet error rate for the frame's length, Radio.p_loss),
        then collisions with the overlapping transmissions and half duplex
        (radio_kernels.receptions). unicast_to: -2 for a broadcast, else the addressee's index
        (-1: not on the channel); sniff: the sniffers hear this unicast attempt too."""
        radio = self.radio
        k, w0, w1 = _fading_weights(now, radio.coh_us)
        base = radio._base_fade
        if self._u + len(self.on) > len(self._uniforms):
            # one uniform per candidate, in order: the same stream as a draw per frame
            self._uniforms = np.concatenate(
                (self._uniforms[self._u :], self.draws.random(UNIFORMS))
            )
            self._u = 0
        n, lost, collided, self._u = self.k.receptions(
            self.TX_RX,
            self.TX_START,
            self.TX_END,
            self.TX_CH,
            self.TX_SENDER,
            slot,
            self.floor,
            self.on,
            self.channels,
            unicast_to,
            self.sniffers,
            sniff,
            np.uint64((base + _mix64(k)) & _M64),
            np.uint64((base + _mix64(k + 1)) & _M64),
            w0,
            w1,
            radio.fading,
            radio.g0,
            radio.sensitivity,
            radio.hearing_floor,
            8 * (payload_len + ESPNOW_OVERHEAD_BYTES),
            self._uniforms,
            self._u,
            radio.capture_db,
            self._rx_idx,
            self._rx_rssi,
        )
        self.lost += lost
        self.collisions += collided
        return self._rx_idx[:n].tolist(), self._rx_rssi[:n].tolist()


def make_rng(seed):
    """The seeded generator used for per-frame draws (fading, loss, backoff)."""
    return random.Random(seed)

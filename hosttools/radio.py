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
* **Contention and collisions**: a :class:`Medium` keeps the transmissions in the air. A sender
  defers while it hears a transmission (carrier sense) and then waits DIFS plus a random backoff;
  a receiver loses a frame when another frame on its channel overlaps it in time and arrives
  less than ``capture_db`` weaker (no capture). So a flooding storm costs airtime, deferrals and
  collisions as it would.
* **Unicast** frames are acknowledged and retried by the MAC (ESP-NOW does this in hardware):
  each attempt costs airtime plus SIFS and the ACK; the sender learns of a failure only after
  the last retry.
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
LATTICE_MARGIN_M = 200.0  # the world's lattice is grown by this much beyond what it must cover
SENS_REF_BYTES = 1024  # IEEE 802.11 defines sensitivity as 8 % PER of a 1,024-byte frame
SENS_REF_PER = 0.08

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
_U64 = np.uint64


def _mix64(x):
    """splitmix64 finaliser: a well-spread 64-bit hash of an int (seeded draws)."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash_normal(base, key):
    """A (nearly) standard normal value fixed by (base, key) (64-bit ints): the sum of the four
    16-bit uniforms of one hash (Irwin-Hall, bounded to +-3.46 sigma), rescaled to unit
    variance. ``_hash_normal_many`` computes the same numbers vectorised."""
    h = _mix64((base + key) & _M64)
    s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48) + 2.0
    return (s / 65536.0 - 2.0) * _IH_SCALE


_IH_SCALE = math.sqrt(3.0)  # the sum of 4 uniforms has variance 4/12


def _np_mix64(x):
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _hash_normal_many(base, keys):
    """_hash_normal(base, k) for every k in the uint64 array keys."""
    with np.errstate(over="ignore"):
        h = _np_mix64(_U64(base & _M64) + keys)
    m = _U64(0xFFFF)
    s = (h & m) + ((h >> _U64(16)) & m) + ((h >> _U64(32)) & m) + (h >> _U64(48))
    return (s.astype(np.float64) + 2.0) * (_IH_SCALE / 65536.0) - 2.0 * _IH_SCALE


def _pair_key(a, b):
    if a > b:
        a, b = b, a
    return ((a << 32) | b) & _M64


def _pair_keys(a, bs):
    bs = bs.astype(np.uint64)
    av = _U64(a)
    return (np.minimum(bs, av) << _U64(32)) | np.maximum(bs, av)


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

    def shadow_db_many(self, xa, ya, xb, yb):
        """shadow_db for one end at (xa, ya) and arrays of other ends at (xb, yb): bilinear
        lookups in the lattice (grown with cover() when a midpoint falls outside it)."""
        h = self.lattice_step
        fx = (xb + xa) * (0.5 / h)
        fy = (yb + ya) * (0.5 / h)
        fi = np.floor(fx)
        fj = np.floor(fy)
        i0, j0, vals = self._lattice if self._lattice is not None else (0, 0, np.zeros((0, 0)))
        ii = fi.astype(np.intp) - i0
        jj = fj.astype(np.intp) - j0
        if len(ii) and (
            ii.min() < 0
            or jj.min() < 0
            or ii.max() >= vals.shape[0] - 1
            or jj.max() >= vals.shape[1] - 1
        ):
            self.cover(
                float(fx.min() * h), float(fy.min() * h), float(fx.max() * h), float(fy.max() * h)
            )
            i0, j0, vals = self._lattice
            ii = fi.astype(np.intp) - i0
            jj = fj.astype(np.intp) - j0
        u = fx - fi
        v = fy - fj
        flat = vals.ravel()
        w = vals.shape[1]
        k = ii * w + jj
        z = (
            (1 - u) * ((1 - v) * flat[k] + v * flat[k + 1])
            + u * ((1 - v) * flat[k + w] + v * flat[k + w + 1])
        ) * LATTICE_Q
        np.clip(z, -SHADOW_CLIP, SHADOW_CLIP, out=z)
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

    def mean_rssi_many(self, xa, ya, xb, yb, d2):
        """mean_rssi from one end at (xa, ya) to arrays of ends at (xb, yb), squared distances
        d2 (numpy)."""
        d2 = np.maximum(d2, 1.0)
        return (
            (self.tx_power - self.pl0)
            - (self.ten_n / 2.0) * np.log10(d2)
            - self.shadow_db_many(xa, ya, xb, yb)
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

    def fading_db_many(self, a, bs, t_us):
        """fading_db(a, b, t_us) for the node array bs."""
        if not self.fading:
            return np.zeros(len(bs))
        k, w0, w1 = _fading_weights(t_us, self.coh_us)
        keys = _pair_keys(a, bs)
        base = self._base_fade
        n0 = _hash_normal_many((base + _mix64(k)) & _M64, keys)
        n1 = _hash_normal_many((base + _mix64(k + 1)) & _M64, keys)
        f = w0 * n0 + w1 * n1
        np.clip(f, -FADING_CLIP, FADING_CLIP, out=f)
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

    def p_loss_many(self, rssi, payload_len):
        """p_loss for an array of RSSIs, one frame length."""
        g = self.g0 * np.power(10.0, (rssi - self.sensitivity) / 10.0)
        bits = 8 * (payload_len + ESPNOW_OVERHEAD_BYTES)
        p = -np.expm1(bits * np.log1p(-0.5 * np.exp(-np.minimum(g, 700.0))))
        p[rssi < self.hearing_floor] = 1.0
        return p

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


class Transmission:
    """One frame in the air. `rx`, when the caller computed it, is the mean RSSI of this
    transmission at every node (a numpy array indexed by node, -inf out of range): carrier
    sense and interference then read it instead of recomputing the link budget."""

    __slots__ = ("sender", "channel", "start", "end", "x", "y", "rx")

    def __init__(self, sender, channel, start, end, x, y, rx=None):
        self.sender = sender
        self.channel = channel
        self.start = start
        self.end = end
        self.x = x
        self.y = y
        self.rx = rx


class Medium:
    """The transmissions in the air, for carrier sense and collisions.

    Positions are passed in (x, y metres); the caller keeps them. Transmissions older than
    `horizon_us` before the current time are forgotten (no ESP-NOW frame lasts that long: 2.5 ms
    at 1 Mbps).
    """

    def __init__(self, radio, horizon_us=3000):
        self.radio = radio
        self.active = []
        self.horizon = horizon_us
        self.collisions = 0
        self.deferrals = 0
        # beyond this distance no transmission can make the medium busy
        budget = radio.tx_power - radio.pl0 - radio.cs_threshold + SHADOW_CLIP * radio.shadow_sigma
        self.cs_range2 = (10 ** (budget / radio.ten_n)) ** 2

    @property
    def active_count(self):
        return len(self.active)

    def _prune(self, now):
        act = self.active
        if act and act[0].end + self.horizon < now:
            cut = now - self.horizon
            self.active = [t for t in act if t.end >= cut]

    def _mean_at(self, t, node, x, y):
        """Mean RSSI of transmission t at node (at x, y)."""
        if t.rx is not None:
            return t.rx[node]
        d2 = (t.x - x) ** 2 + (t.y - y) ** 2
        if d2 > self.cs_range2:
            return -math.inf  # too far to be sensed even with the best shadowing
        return self.radio.mean_rssi(node, t.sender, math.sqrt(d2), (x, y), (t.x, t.y))

    def busy_until(self, node, channel, x, y, now):
        """The time the medium as heard by `node` at (x, y) becomes idle (<= now when idle)."""
        self._prune(now)
        until = now
        cs = self.radio.cs_threshold
        # a transmission that began less than a slot ago cannot be sensed yet (CCA time and
        # rx/tx turnaround): two senders whose backoffs end in the same slot collide
        sensed_from = now - self.radio.slot_us
        for t in self.active:
            if t.end <= until or t.channel != channel or t.start > sensed_from or t.sender == node:
                continue
            if self._mean_at(t, node, x, y) >= cs:
                until = t.end
        return until

    def overlapping(self, tx):
        """The other transmissions on tx's channel that overlap it in time."""
        return [
            o
            for o in self.active
            if o is not tx and o.channel == tx.channel and o.end > tx.start and o.start < tx.end
        ]

    def start(self, sender, channel, start, end, x, y, rx=None):
        self._prune(start)
        tx = Transmission(sender, channel, start, end, x, y, rx)
        self.active.append(tx)
        return tx

    def collided(self, tx, receiver, rx_x, rx_y, rssi):
        """True when another transmission overlapping `tx` drowns it at the receiver."""
        limit = rssi - self.radio.capture_db
        for o in self.active:
            if o is tx or o.channel != tx.channel or o.end <= tx.start or o.start >= tx.end:
                continue
            if o.sender == receiver:
                return True  # half duplex: the receiver was transmitting itself
            if self._mean_at(o, receiver, rx_x, rx_y) > limit:
                self.collisions += 1
                return True
        return False


def make_rng(seed):
    """The seeded generator used for per-frame draws (fading, loss, backoff)."""
    return random.Random(seed)

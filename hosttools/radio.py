"""The radio model shared by the simulator and the virtual-board air.

Everything here is physics and bookkeeping of the shared medium, with no notion of an event
loop: callers pass positions, times (integer microseconds) and a seeded random generator, so the
simulator (virtual time) and the air (real time) use the same numbers.

Model, per frame and receiver:

* **Path loss** (log-distance): ``PL(d) = pl0_db + 10 * exponent * log10(d / 1 m)``.
* **Shadowing**: a log-normal term per *pair* of nodes, drawn from the model's seed (the same pair
  always sees the same obstacles; the matrix is symmetric), clipped to +-2.5 sigma so the range
  is bounded.
* **Fading**: a small Gaussian term per frame (from the caller's generator) so that RSSI readings
  jitter the way a board's do.
* **RSSI** = tx_power - PL - shadowing - fading (dBm, rounded to an int like ESP-NOW reports it).
* **Frame loss** rises with distance: a logistic curve in the margin above the sensitivity,
  ``p_loss = 1 / (1 + exp(margin / loss_slope_db))`` (50 % at the sensitivity, ~0.1 % at 10 dB
  above it with the defaults); below ``sensitivity - 6 dB`` nothing is heard.
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

ESPNOW_OVERHEAD_BYTES = 43  # MAC header 24, category 1, OUI 3, random 4, vendor element 7, FCS 4
MAX_PAYLOAD = 250
ACK_BYTES = 14
DSSS_RATES = (1.0, 2.0, 5.5, 11.0)
OFDM_RATES = (6.0, 9.0, 12.0, 18.0, 24.0, 36.0, 48.0, 54.0)
SHADOW_CLIP = 2.5  # shadowing is clipped to +-2.5 sigma so the range is finite
HEARING_FLOOR_DB = 5.0  # below sensitivity - 5 dB a frame is never decoded (p_loss > 96 %)
FADING_CLIP = 3.0  # per-frame fading is clipped to +-3 sigma

DEFAULTS = {
    "tx_power_dbm": 10.0,  # ESP32 default is higher; 10 dBm gives ~100-150 m cells outdoors
    "pl0_db": 40.05,  # free-space loss at 1 m, 2.4 GHz
    "exponent": 2.8,  # outdoor with some clutter
    "shadowing_db": 4.0,  # sigma of the per-pair log-normal shadowing
    "fading_db": 1.5,  # sigma of the per-frame jitter
    "sensitivity_dbm": -90.0,  # ESP32 at 1 Mbps DSSS
    "loss_slope_db": 1.5,
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
    if out["exponent"] <= 0 or out["loss_slope_db"] <= 0:
        raise RadioConfigError("radio exponent and loss_slope_db must be positive")
    if out["shadowing_db"] < 0 or out["fading_db"] < 0:
        raise RadioConfigError("radio shadowing_db and fading_db must not be negative")
    if not 1 <= int(out["channel"]) <= 14:
        raise RadioConfigError("radio channel must be 1..14, got %r" % out["channel"])
    if int(out["retries"]) < 0:
        raise RadioConfigError("radio retries must not be negative")
    return out


_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x):
    """splitmix64 finaliser: a well-spread 64-bit hash of an int (seeded shadowing)."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _pair_normal(seed, a, b):
    """A standard normal value fixed by (seed, unordered pair a, b): Box-Muller over two hashed
    uniforms. ``_pair_normal_many`` computes the same numbers vectorised."""
    if a > b:
        a, b = b, a
    key = ((a << 32) | b) & _M64
    h1 = _mix64(_mix64((seed * _GOLDEN + key) & _M64))
    h2 = _mix64(h1 ^ _GOLDEN)
    u1 = ((h1 >> 11) + 0.5) / 9007199254740992.0
    u2 = (h2 >> 11) / 9007199254740992.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _np_mix64(np, x):
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _pair_normal_many(seed, a, bs):
    """_pair_normal(seed, a, b) for every b in the int array bs (numpy)."""
    import numpy as np

    bs = bs.astype(np.uint64)
    av = np.uint64(a)
    lo = np.minimum(bs, av)
    hi = np.maximum(bs, av)
    key = (lo << np.uint64(32)) | hi
    with np.errstate(over="ignore"):
        base = np.uint64((seed * _GOLDEN) & _M64)
        h1 = _np_mix64(np, _np_mix64(np, base + key))
        h2 = _np_mix64(np, h1 ^ np.uint64(_GOLDEN))
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0
    u2 = (h2 >> np.uint64(11)).astype(np.float64) / 9007199254740992.0
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


class Radio:
    """Link budget, loss, timing for one deployment. `seed` fixes the shadowing of every pair."""

    def __init__(self, cfg=None, seed=0):
        self.cfg = check_config(cfg)
        c = self.cfg
        self.seed = int(seed)
        self.tx_power = float(c["tx_power_dbm"])
        self.pl0 = float(c["pl0_db"])
        self.ten_n = 10.0 * float(c["exponent"])
        self.shadow_sigma = float(c["shadowing_db"])
        self.fading = float(c["fading_db"])
        self.sensitivity = float(c["sensitivity_dbm"])
        self.slope = float(c["loss_slope_db"])
        self.capture_db = float(c["capture_db"])
        self.cs_threshold = float(c["cs_threshold_dbm"])
        self.rate = float(c["rate_mbps"])
        self.channel = int(c["channel"])
        self.retries = int(c["retries"])
        self.hearing_floor = self.sensitivity - HEARING_FLOOR_DB
        self._shadow = {}
        dsss = self.rate in DSSS_RATES
        self.slot_us = 20 if dsss else 9
        self.sifs_us = 10 if dsss else 16
        self.difs_us = self.sifs_us + 2 * self.slot_us
        self.cw_min = 31 if dsss else 15
        self.ack_us = self.airtime_us(ACK_BYTES - ESPNOW_OVERHEAD_BYTES, raw=ACK_BYTES)

    # -- link budget -------------------------------------------------------------------------

    def shadow_db(self, a, b):
        """Per-pair shadowing in dB (positive = more loss), symmetric, fixed by the seed."""
        if a > b:
            a, b = b, a
        key = (a << 32) | b
        s = self._shadow.get(key)
        if s is None:
            z = max(-SHADOW_CLIP, min(SHADOW_CLIP, _pair_normal(self.seed, a, b)))
            s = z * self.shadow_sigma
            if len(self._shadow) > 1000000:
                self._shadow.clear()
            self._shadow[key] = s
        return s

    def mean_rssi(self, a, b, dist_m):
        """Expected RSSI (dBm, float) between nodes a and b (ints) at `dist_m` metres."""
        d = dist_m if dist_m > 1.0 else 1.0
        return self.tx_power - self.pl0 - self.ten_n * math.log10(d) - self.shadow_db(a, b)

    def mean_rssi_many(self, a, bs, d2):
        """mean_rssi(a, b, sqrt(d2)) for arrays of node numbers bs and squared distances d2
        (numpy; the same values as the scalar form)."""
        import numpy as np

        z = np.clip(_pair_normal_many(self.seed, a, bs), -SHADOW_CLIP, SHADOW_CLIP)
        d2 = np.maximum(d2, 1.0)
        return self.tx_power - self.pl0 - (self.ten_n / 2.0) * np.log10(d2) - z * self.shadow_sigma

    def frame_rssi(self, mean, rng):
        """One frame's RSSI (int dBm as a board reports it) around the mean."""
        if self.fading:
            f = rng.gauss(0.0, 1.0)
            f = FADING_CLIP if f > FADING_CLIP else (-FADING_CLIP if f < -FADING_CLIP else f)
            mean += f * self.fading
        return int(round(mean))

    def p_loss(self, rssi):
        """Probability that a frame received at `rssi` is not decoded (noise alone)."""
        if rssi < self.hearing_floor:
            return 1.0
        m = (rssi - self.sensitivity) / self.slope
        if m > 40:
            return 0.0
        return 1.0 / (1.0 + math.exp(m))

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
    """One frame in the air."""

    __slots__ = ("sender", "channel", "start", "end", "x", "y")

    def __init__(self, sender, channel, start, end, x, y):
        self.sender = sender
        self.channel = channel
        self.start = start
        self.end = end
        self.x = x
        self.y = y


class Medium:
    """The transmissions in the air, for carrier sense and collisions.

    Positions are passed in (x, y metres); the caller keeps them. Transmissions older than
    `horizon_us` before the current time are forgotten (no frame lasts that long).
    """

    def __init__(self, radio, horizon_us=20000):
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

    def busy_until(self, node, channel, x, y, now):
        """The time the medium as heard by `node` at (x, y) becomes idle (<= now when idle)."""
        self._prune(now)
        until = now
        radio = self.radio
        cs2 = self.cs_range2
        for t in self.active:
            if t.end <= until or t.channel != channel or t.start > now or t.sender == node:
                continue
            d2 = (t.x - x) ** 2 + (t.y - y) ** 2
            if d2 > cs2:
                continue  # too far to be sensed even with the best shadowing
            if radio.mean_rssi(node, t.sender, math.sqrt(d2)) >= radio.cs_threshold:
                until = t.end
        return until

    def overlapping(self, tx):
        """The other transmissions on tx's channel that overlap it in time."""
        return [
            o
            for o in self.active
            if o is not tx and o.channel == tx.channel and o.end > tx.start and o.start < tx.end
        ]

    def start(self, sender, channel, start, end, x, y):
        tx = Transmission(sender, channel, start, end, x, y)
        self.active.append(tx)
        return tx

    def collided(self, tx, receiver, rx_x, rx_y, rssi):
        """True when another transmission overlapping `tx` drowns it at the receiver."""
        radio = self.radio
        limit = rssi - radio.capture_db
        for o in self.active:
            if o is tx or o.channel != tx.channel or o.end <= tx.start or o.start >= tx.end:
                continue
            if o.sender == receiver:
                return True  # half duplex: the receiver was transmitting itself
            d = math.hypot(o.x - rx_x, o.y - rx_y)
            if radio.mean_rssi(receiver, o.sender, d) > limit:
                self.collisions += 1
                return True
        return False


def make_rng(seed):
    """The seeded generator used for per-frame draws (fading, loss, backoff)."""
    return random.Random(seed)

"""Simulator engine, radio model, scenarios and outputs, with a tiny test-only role family
(tests/host/sim_toy.py) so that these tests do not depend on the protocol core's behaviour."""

import json
import os
import random
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from sim_toy import ToyFactory  # noqa: E402

from hosttools import radio  # noqa: E402
from hosttools.pcap import read_pcap  # noqa: E402
from hosttools.sim import engine, run, scenario  # noqa: E402

TOY = {
    "duration_s": 20,
    "node": [
        {"id": "a1", "role": "agent", "pos": [0, 0]},
        {"id": "h1", "role": "host", "pos": [30, 0]},
        {"id": "h2", "role": "host", "pos": [60, 0]},
        {
            "id": "m1",
            "role": "mobile",
            "mobility": {"kind": "waypoints", "points": [[0, 0], [600, 0]], "speed": 30},
        },
    ],
    "flow": [
        {"src": "h1", "dst": "h2", "interval_ms": 50, "start_s": 0},
        {"src": "h1", "dst": "m1", "interval_ms": 50, "start_s": 0},
    ],
}


def toy_run(tmp_path, seed, data=TOY, write=True):
    sc = scenario.from_dict(json.loads(json.dumps(data)))
    return run.run(sc, seed, str(tmp_path), factory=ToyFactory(), write=write)


def test_engine_orders_by_time_then_insertion():
    e = engine.Engine()
    seen = []
    e.at(20, seen.append, "c")
    e.at(10, seen.append, "a")
    e.at(10, seen.append, "b")
    e.run(100)
    assert seen == ["a", "b", "c"] and e.now == 100


def test_same_seed_same_summary_different_seed_differs(tmp_path):
    s1, s2, s3 = (
        run.run_figures(toy_run(tmp_path / d, seed)[0])
        for d, seed in (("1", 7), ("2", 7), ("3", 8))
    )
    assert s1 == s2
    assert s1 != s3
    assert (
        open(tmp_path / "1" / "events.jsonl").read() == open(tmp_path / "2" / "events.jsonl").read()
    )


def test_delivery_falls_with_distance(tmp_path):
    s, world = toy_run(tmp_path, 1)
    col = world.collector
    near = [k for k in col.sent if k[0] == 0]
    far = [k for k in col.sent if k[0] == 1]
    near_ratio = sum(k in col.deliv for k in near) / len(near)
    # m1 leaves at 30 m/s: received early, lost once it is several hundred metres away
    far_early = [k for k in far if col.sent[k] < 2e6]
    far_late = [k for k in far if col.sent[k] > 15e6]
    assert near_ratio > 0.98
    assert sum(k in col.deliv for k in far_early) / len(far_early) > 0.9
    assert sum(k in col.deliv for k in far_late) == 0
    # an undelivered datagram sent within its flow's longest delivery time (at most 1 s) of
    # the end may be on its way: counted neither way; every other one counts
    bound = {}
    for k, t in col.deliv.items():
        bound[k[0]] = min(max(bound.get(k[0], 0), t - col.sent[k]), 1000000)
    tail = [k for k, t in col.sent.items() if k not in col.deliv and t > 20e6 - bound[k[0]]]
    assert s["in_flight"] == len(tail) == s["lost_by_cause"]["in_flight_at_end"]
    assert s["sent"] == len(col.sent) - len(tail)
    assert s["delivered"] == len(col.deliv)
    assert (
        sum(s["lost_by_cause"].values())
        == s["undelivered"]
        == s["sent"] - s["delivered"] + len(tail)
    )


def test_outputs_pcap_and_events(tmp_path):
    s, world = toy_run(tmp_path, 3)
    recs = list(read_pcap(str(tmp_path / "capture.pcap")))
    assert len(recs) == world.stats["frames"]
    assert all(r[1][0] == 0x45 for r in recs)
    assert [r[0] for r in recs] == sorted(r[0] for r in recs)
    lines = [json.loads(x) for x in open(tmp_path / "events.jsonl")]
    assert {"t", "node", "event"} <= set(lines[0])
    sent = {(e["flow"], e["seq"]) for e in lines if e["event"] == "app_send"}
    got = {(e["flow"], e["seq"]) for e in lines if e["event"] == "app_deliver"}
    assert len(sent & got) == s["delivered"]
    assert len(sent - got) == s["undelivered"]
    assert sum(1 for e in lines if e["event"] == "beacon") == 200  # 10 beacons/s for 20 s


@pytest.mark.tshark
def test_capture_decodes_with_tshark(tmp_path, tshark):
    toy_run(tmp_path, 2)
    out = subprocess.run(
        [tshark, "-r", str(tmp_path / "capture.pcap"), "-T", "fields", "-e", "udp.dstport"],
        capture_output=True,
        text=True,
        check=True,
    )
    ports = set(out.stdout.split())
    assert ports == {"9", "5000"}


def test_radio_airtime_and_loss_curve():
    r = radio.Radio({"rate_mbps": 1})
    # 1 Mbps DSSS, long preamble: 192 us + 8 us per byte of (payload + 43 bytes of framing)
    assert r.airtime_us(250) == 192 + (250 + 43) * 8
    assert radio.Radio({"rate_mbps": 54}).airtime_us(250) < r.airtime_us(250) / 10
    losses = [r.p_loss(x) for x in range(-100, -60, 2)]
    assert losses == sorted(losses, reverse=True)
    # sensitivity: 8 % PER for a 1,024-byte frame (1,024 - 43 bytes of payload)
    assert r.p_loss(-90, 1024 - 43) == pytest.approx(0.08)
    # steep: a 100-byte frame goes from mostly lost to almost always through within ~4 dB
    assert r.p_loss(-93, 100) > 0.8 and r.p_loss(-89, 100) < 0.005
    assert r.p_loss(-90, 20) < r.p_loss(-90, 250)  # long frames suffer more
    assert r.p_loss(-70) < 1e-9 and r.p_loss(-96) == 1.0


def test_radio_shadowing_is_symmetric_seeded_and_correlated_in_space():
    r = radio.Radio({"shadowing_db": 4.0, "shadow_corr_m": 10.0}, seed=1)
    a, b = (0.0, 0.0), (50.0, 3.0)
    assert r.shadow_db(3, 9, a, b) == pytest.approx(r.shadow_db(9, 3, b, a))
    assert radio.Radio(seed=1).shadow_db(3, 9, a, b) != radio.Radio(seed=2).shadow_db(3, 9, a, b)
    # statistics over many links and places: sigma as configured, correlation exp(-d / d_c)
    rng = random.Random(5)
    samples = {0.5: [], 10.0: [], 60.0: []}
    values = []
    for _ in range(2000):
        b = rng.randrange(10, 1000)
        x, y = rng.uniform(-500, 500), rng.uniform(-500, 500)
        s0 = r.shadow_db(0, b, (0.0, 0.0), (x, y))
        values.append(s0)
        for step in samples:
            samples[step].append((s0, r.shadow_db(0, b, (0.0, 0.0), (x + step, y))))
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    assert 3.4 < sd < 4.4 and abs(mean) < 0.4

    def corr(pairs):
        n = len(pairs)
        ma = sum(p for p, _ in pairs) / n
        mb = sum(q for _, q in pairs) / n
        cov = sum((p - ma) * (q - mb) for p, q in pairs) / n
        va = sum((p - ma) ** 2 for p, _ in pairs) / n
        vb = sum((q - mb) ** 2 for _, q in pairs) / n
        return cov / (va * vb) ** 0.5

    # one end moves d metres: Gudmundson's exp(-d / d_c)
    assert corr(samples[0.5]) > 0.9
    assert 0.25 < corr(samples[10.0]) < 0.5
    assert abs(corr(samples[60.0])) < 0.15
    # a cached lattice (cover: what the simulator reads) gives the numbers computed in place
    places = [(10.0, 0.0), (20.0, 5.0), (30.0, -5.0), (2500.0, -900.0)]
    fresh = [r.shadow_db(3, 7, (1.0, 2.0), p) for p in places]
    r.cover(-10.0, -10.0, 40.0, 40.0)
    assert [r.shadow_db(3, 7, (1.0, 2.0), p) for p in places] == pytest.approx(fresh)
    assert radio.Radio({"shadowing_db": 4.0}, seed=1).shadow_db(0, 1, (1, 2), (30, -5)) == (
        pytest.approx(fresh[2])
    )


def test_radio_fast_fading_is_correlated_over_the_coherence_time():
    import numpy as np

    r = radio.Radio({"fading_db": 2.0, "coherence_ms": 40}, seed=3)
    # a retry 2 ms later meets nearly the same fade; a frame a second later an independent one
    near, far = [], []
    for b in range(1, 2001):
        t = 1000 * b * 37
        f0 = r.fading_db(0, b, t)
        near.append((f0, r.fading_db(b, 0, t + 2000)))
        far.append((f0, r.fading_db(0, b, t + 1000000)))

    def rho(pairs):
        return float(np.corrcoef(np.array(pairs).T)[0, 1])

    assert rho(near) > 0.9 and abs(rho(far)) < 0.1
    sd = float(np.std([p for p, _ in far]))
    assert 1.7 < sd < 2.2
    assert r.fading_db(0, 4, 123456) == r.fading_db(4, 0, 123456)  # symmetric


def test_radio_rejects_bad_config():
    with pytest.raises(radio.RadioConfigError, match="rate_mbps"):
        radio.Radio({"rate_mbps": 3})
    with pytest.raises(radio.RadioConfigError, match="unknown radio parameter"):
        radio.Radio({"power": 3})


def test_collisions_and_carrier_sense_on_the_medium():
    """radio.Medium, the simulator's air: two senders 40 m apart whose frames overlap."""
    import numpy as np

    r = radio.Radio({"shadowing_db": 0, "fading_db": 0})
    # senders 0 and 1; node 2 midway; node 3 next to 0; node 4 10 m from 0
    X, Y = np.array([0.0, 40.0, 20.0, 1.0, 10.0]), np.zeros(5)
    on, ch = np.ones(5, dtype=bool), np.ones(5, dtype=np.int16)
    m = radio.Medium(r, on, ch, np.zeros(5, dtype=bool), np.random.default_rng(1))
    a = m.start(0, 1, 0, 2000, m.levels(0, 0.0, 0.0, X, Y, 0))
    m.start(1, 1, 1000, 3000, m.levels(1, 40.0, 0.0, X, Y, 1000))
    idx, rssi = m.receptions(a, 60, 2000, -2, False)
    # node 2 hears both about equally strong: a's frame is lost; node 1 was sending (half
    # duplex); node 3 and 4 capture it over the farther sender (more than capture_db stronger)
    assert idx == [3, 4] and m.collisions == 2 and m.lost == 0
    assert rssi == [round(r.mean_rssi(0, j, X[j], (0, 0), (X[j], 0))) for j in idx]
    # carrier sense: node 4 senses the medium busy until the later frame ends, but not within
    # a slot of its start (CCA time)
    assert m.busy_until(4, 1500) == 3000 and m.busy_until(4, 1010) == 2000
    # another channel hears nothing of it
    ch[3] = 6
    assert m.receptions(a, 60, 2000, -2, False)[0] == [4]


def test_flooding_storm_costs_deferrals_and_collisions(tmp_path):
    nodes = [{"id": "a%d" % i, "role": "agent", "pos": [i * 3.0, 0]} for i in range(30)]
    s, world = toy_run(tmp_path, 1, {"duration_s": 5, "node": nodes}, write=False)
    assert world.stats["deferrals"] > 0
    assert world.stats["collisions"] > 0 or world.stats["lost_noise"] > 0


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"node": [{"id": "x", "role": "agent", "pos": [0, 0]}]}, "duration_s is missing"),
        ({"duration_s": 1, "node": [{"id": "x", "role": "king", "pos": [0, 0]}]}, "role must be"),
        ({"duration_s": 1, "node": [{"id": "x", "role": "agent"}]}, "needs pos"),
        (
            {
                "duration_s": 1,
                "node": [
                    {"id": "x", "role": "agent", "pos": [0, 0]},
                    {"id": "x", "role": "agent", "pos": [0, 0]},
                ],
            },
            "duplicate",
        ),
        ({"duration_s": 1, "nodes": []}, "unknown key"),
        (
            {
                "duration_s": 1,
                "node": [{"id": "x", "role": "mobile", "mobility": {"kind": "teleport"}}],
            },
            "unknown mobility kind",
        ),
        (
            {
                "duration_s": 1,
                "node": [{"id": "x", "role": "host", "pos": [0, 0]}],
                "flow": [{"src": "x", "dst": "y"}],
            },
            "dst 'y' is not a node",
        ),
        (
            {
                "duration_s": 1,
                "node": [{"id": "x", "role": "host", "pos": [0, 0]}],
                "fault": [{"at_s": 1, "kind": "meteor", "nodes": ["x"]}],
            },
            "kind must be one of",
        ),
        ({"duration_s": 1, "radio": {"rate_mbps": 7}, "node": []}, "rate_mbps"),
        (
            {
                "duration_s": 1,
                "node": [{"id": "x", "role": "agent", "pos": [0, 0]}],
                "crashes": {"nodes": ["a*"]},
            },
            r"\[crashes\]: 'a\*' matches no node",
        ),
        (
            {
                "duration_s": 1,
                "node": [{"id": "x", "role": "agent", "pos": [0, 0]}],
                "crashes": {"nodes": ["x"], "down_s": [30, 10]},
            },
            "down_s must be",
        ),
    ],
)
def test_bad_scenarios_get_clear_errors(bad, message):
    with pytest.raises(scenario.ScenarioError, match=message):
        scenario.from_dict(bad, "bad.toml")


def test_bad_toml_file(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("duration_s = = 3\n")
    with pytest.raises(scenario.ScenarioError, match="broken.toml: not valid TOML"):
        scenario.load(str(p))
    with pytest.raises(scenario.ScenarioError, match="no scenario 'nope'"):
        scenario.load("nope")


def test_builtin_scenarios_load_and_have_the_claimed_shape():
    names = scenario.builtin_names()
    assert set(names) >= {
        "walk",
        "ha-down",
        "isolated-agent",
        "no-agent",
        "partition",
        "attacker",
        "city",
        "agent-crash",
    }
    for n in names:
        scenario.load(n)
    city = scenario.load("city")
    roles = [x.role for x in city.nodes]
    assert roles.count("agent") == 100 and roles.count("mobile") == 1000
    assert city.duration_s == 600
    walk = scenario.load("walk")
    assert sum(x.role == "agent" for x in walk.nodes) >= 3


def test_movement_models(tmp_path):
    from hosttools.sim import movement

    legs = movement.legs_for(
        {"kind": "waypoints", "points": [[0, 0], [10, 0]], "speed": 2, "repeat": "pingpong"},
        None,
        random.Random(1),
    )
    a, b = next(legs), next(legs)
    assert a == (0.0, 0.0, 0.0, 5.0, 10.0, 0.0) and b[3] == 10.0 and b[4] == 0.0
    tr = tmp_path / "t.csv"
    tr.write_text("# t,x,y\n0,0,0\n10,100,0\n")
    legs = movement.legs_for({"kind": "trace", "file": str(tr)}, None, random.Random(1))
    assert next(legs) == (0.0, 0.0, 0.0, 10.0, 100.0, 0.0)
    assert next(legs)[3] == movement.FOREVER
    tr.write_text("0,0,0\n5,1\n")
    with pytest.raises(movement.MovementError, match="t.csv:2"):
        movement.legs_for({"kind": "trace", "file": str(tr)}, None, random.Random(1))


def test_processing_latency_delays_every_answer(tmp_path):
    # a datagram passes two cores (the sender's on_send, the receiver's DELIVER): each adds
    # processing_ms between its input and its action
    def one_way_ms(processing_ms):
        data = json.loads(json.dumps(TOY))
        data["processing_ms"] = processing_ms
        data["flow"] = data["flow"][:1]  # h1 -> h2, 30 m apart
        sc = scenario.from_dict(data)
        _s, world = run.run(sc, 3, str(tmp_path), factory=ToyFactory(), write=False)
        col = world.collector
        return min(col.deliv[k] - col.sent[k] for k in col.deliv) / 1000.0

    fast, slow = one_way_ms(1.0), one_way_ms(25.0)
    assert fast >= 2.0
    assert 47.0 <= slow - fast <= 49.5  # 2 x 24 ms, give or take a backoff


@pytest.mark.parametrize("link", ["ring", "pipe"])
def test_two_processes_give_exactly_the_run_of_one(tmp_path, monkeypatch, link):
    # the nodes' cores split between this process and a forked worker (jobs=2): the same
    # events, the same frames on the air, the same figures as all in one process, over the
    # shared-memory rings (x86-64) and over the pipe (elsewhere)
    from hosttools.sim import cores
    from hosttools.sim import world as world_mod

    monkeypatch.setattr(world_mod, "REMOTE_SHARE", 0.5)  # some cores here, some there
    monkeypatch.setattr(cores, "make_link", cores.RingLink if link == "ring" else cores.PipeLink)
    # the worker's inputs also go over in parts within a window (World._submit): often here
    monkeypatch.setattr(world_mod, "STREAM_BATCH", 1)
    parts = []
    real_stream = cores.RemoteCores.stream

    def stream(self, inputs, t_end=None):
        parts.append(t_end)
        return real_stream(self, inputs, t_end)

    monkeypatch.setattr(cores.RemoteCores, "stream", stream)
    sc = scenario.load("ha-down", duration_s=25)
    outs = {}
    for jobs in (1, 2):
        d = tmp_path / str(jobs)
        s, world = run.run(sc, 4, str(d), jobs=jobs)
        assert s["jobs"] == jobs
        outs[jobs] = (s, world)
    (s1, w1), (s2, w2) = outs[1], outs[2]
    assert 0 < sum(w2.owner) < len(w2.nodes)  # cores ran in both processes
    assert parts.count(None) > 100  # parts of windows, before their ends
    assert sum(w1.owner) == 0
    s1, s2 = run.run_figures(s1), run.run_figures(s2)
    assert s1 == s2
    assert s1["delivered"] > 100
    for name in ("events.jsonl", "capture.pcap"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_bad_processing_latency_and_jobs(tmp_path):
    with pytest.raises(scenario.ScenarioError, match="processing_ms must be >= 0.01"):
        scenario.from_dict({"duration_s": 1, "processing_ms": 0, "node": []})
    sc = scenario.from_dict({"duration_s": 1, "node": [{"id": "x", "role": "host", "pos": [0, 0]}]})
    with pytest.raises(scenario.ScenarioError, match="jobs must be 1 or 2"):
        run.run(sc, 1, str(tmp_path), factory=ToyFactory(), jobs=3)


def test_a_sender_levels_are_reused_only_within_the_reuse_time(tmp_path, monkeypatch):
    """Retries and back-to-back frames of one sender reuse its levels at every node (computed
    at most every RX_REUSE_US), later frames get fresh ones."""
    from hosttools.sim import world as world_mod

    computed = []  # (time, sender) of every Medium.levels
    starts = []  # (time, sender) of every transmission start that reached the air
    real_levels, real_start = radio.Medium.levels, radio.Medium.start

    def levels(self, sender, x, y, X, Y, now):
        computed.append((now, sender))
        return real_levels(self, sender, x, y, X, Y, now)

    def start(self, sender, channel, t0, t1, rx):
        starts.append((t0, sender))
        return real_start(self, sender, channel, t0, t1, rx)

    monkeypatch.setattr(radio.Medium, "levels", levels)
    monkeypatch.setattr(radio.Medium, "start", start)
    sc = scenario.load("walk")
    sc.duration_s = 15
    _, world = run.run(sc, 1, str(tmp_path), write=False, jobs=1)
    assert world.stats["retries"] > 0
    assert len(computed) < len(starts)  # the retries at least reused their levels
    last = {}
    fresh = set(computed)
    for t, s in starts:
        if (t, s) in fresh:
            last[s] = t
        else:
            assert t - last[s] < world_mod.RX_REUSE_US  # reused: computed recently
    for t, s in computed:
        prev = [u for u, z in computed if z == s and u < t]
        assert not prev or t - max(prev) >= world_mod.RX_REUSE_US


def test_crash_schedule_is_seeded_and_one_at_a_time():
    sc = scenario.load("agent-crash")
    a = scenario.crash_schedule(sc, 3)
    assert a == scenario.crash_schedule(sc, 3) and a != scenario.crash_schedule(sc, 4)
    assert len(a) >= 5
    for (off, nid, on), nxt in zip(a, a[1:], strict=False):
        assert on is not None and off < on < nxt[0] and nid != nxt[1]  # back before the next
    assert a[-1][2] is None  # stay_off: the last one never comes back
    assert all(20 <= off <= 280 for off, _n, _on in a)
    assert scenario.crash_schedule(scenario.load("walk"), 3) == []

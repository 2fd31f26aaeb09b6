"""tshark decodes a capture of every roam message type, and the shipped Lua dissector decodes
our own extensions and the region publication, with the values that were sent.

The capture comes from tools/make_sample_pcap.py (real encoders, LINKTYPE_RAW). Three tshark
runs: the standard decode (no plugin, IPv4/UDP checksum validation switched on), the decode
with tools/wireshark/roam.lua, and `-z expert,warn` with the plugin as a second opinion on
malformed packets and warnings.
"""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from mobility import advert, registration

REPO_DIR = Path(__file__).resolve().parent.parent.parent
LUA = REPO_DIR / "tools" / "wireshark" / "roam.lua"
SEVERITY_WARN = 0x00600000  # Wireshark's PI_WARN; PI_ERROR is 0x00800000, PI_NOTE 0x00400000
CHECKSUMS = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]

pytestmark = pytest.mark.tshark


def _load_sample_tool():
    spec = importlib.util.spec_from_file_location(
        "make_sample_pcap", REPO_DIR / "tools" / "make_sample_pcap.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keep_duplicates(pairs):
    """json object hook: tshark repeats keys (two `ip` layers in a tunnel, two withdrawals in
    one publication); keep every value in a list instead of the last one."""
    out = {}
    for key, value in pairs:
        if key in out:
            if not isinstance(out[key], _Dup):
                out[key] = _Dup([out[key]])
            out[key].append(value)
        else:
            out[key] = value
    return out


class _Dup(list):
    """The values of a key that tshark repeated in one object."""


def _values(tree, key):
    """Every value of ``key`` anywhere below ``tree``, in document order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                items = v if isinstance(v, _Dup) else [v]
                for item in items:
                    if k == key:
                        found.append(item)
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(tree)
    return found


def _one(tree, key):
    vals = _values(tree, key)
    assert len(vals) == 1, f"{key}: expected one value, got {vals}"
    return vals[0]


def _int(tree, key):
    return int(_one(tree, key), 0)


def _hexbytes(text):
    return bytes.fromhex(text.replace(":", ""))


def _addr(a):
    return "%d.%d.%d.%d" % tuple(a)


def _run(tshark, *args):
    done = subprocess.run([tshark, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # tshark reports a Lua script that fails to load on stderr and carries on
    assert "lua" not in done.stderr.lower(), done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    tool = _load_sample_tool()
    path = tmp_path_factory.mktemp("tshark") / "sample.pcap"
    samples = tool.write(path)
    return path, samples


def _decode(tshark, path, *extra):
    out = _run(tshark, "-r", str(path), "-T", "json", "-x", *CHECKSUMS, *extra)
    packets = json.loads(out, object_pairs_hook=_keep_duplicates)
    return [p["_source"]["layers"] for p in packets]


@pytest.fixture(scope="module")
def standard(tshark_module, capture):
    path, samples = capture
    layers = _decode(tshark_module, path)
    assert len(layers) == len(samples)
    return layers


@pytest.fixture(scope="module")
def with_lua(tshark_module, capture):
    path, samples = capture
    layers = _decode(tshark_module, path, "-X", "lua_script:" + str(LUA))
    assert len(layers) == len(samples)
    return layers


@pytest.fixture(scope="module")
def tshark_module():
    """The `tshark` fixture of tests/conftest.py for module-scoped fixtures (the skip, or the
    failure in CI, when tshark is missing is the conftest's)."""
    import conftest

    return conftest._tshark_or_skip()


def _no_warnings(layers):
    assert not _values(layers, "_ws.malformed"), "malformed packet"
    assert not _values(layers, "_ws.lua.error"), _values(layers, "_ws.expert.message")
    severe = [
        (msg, sev)
        for exp in _values(layers, "_ws.expert")
        for msg, sev in [(exp.get("_ws.expert.message"), int(exp["_ws.expert.severity"]))]
        if sev >= SEVERITY_WARN
    ]
    assert not severe


def _tag(frame):
    return frame[-16:]


def test_no_malformed_packets_or_warnings(standard, with_lua, capture):
    for name_layers in (standard, with_lua):
        for (name, _msg, _frame), layers in zip(capture[1], name_layers, strict=True):
            assert "_ws.malformed" not in layers, name
            _no_warnings(layers)
            # our checksums are right (validation is switched on for IPv4 and UDP)
            for key in ("ip.checksum.status", "udp.checksum.status", "icmp.checksum.status"):
                assert set(_values(layers, key)) <= {"1"}, (name, key)


def test_expert_summary_lists_nothing_above_a_note(tshark_module, capture):
    out = _run(
        tshark_module,
        "-r",
        str(capture[0]),
        "-X",
        "lua_script:" + str(LUA),
        *CHECKSUMS,
        "-q",
        "-z",
        "expert,warn",
    )
    assert "Errors" not in out and "Warnings" not in out and "Malformed" not in out, out


def _by_name(capture, layers_list):
    return {
        name: (msg, frame, layers)
        for (name, msg, frame), layers in zip(capture[1], layers_list, strict=True)
    }


def test_standard_decode_of_the_icmp_messages(standard, capture):
    got = _by_name(capture, standard)
    for name in ("advertisement", "host_reply"):
        adv, frame, layers = got[name]
        icmp = layers["icmp"]
        assert _int(icmp, "icmp.type") == 9 and _int(icmp, "icmp.code") == 0
        assert _int(icmp, "icmp.checksum.status") == 1
        assert _int(icmp, "icmp.num_addrs") == 1 and _int(icmp, "icmp.addr_entry_size") == 2
        assert _int(icmp, "icmp.lifetime") == adv.adv_lifetime
        assert _one(icmp, "icmp.router_address") == _addr(adv.src)
        assert _one(layers["ip"], "ip.dst") == _addr(adv.dst)
        # Wireshark lists our extensions as unknown ones, walked by their length
        assert [int(t) for t in _values(icmp, "icmp.mip.type")] == (
            [150, 151] if adv.is_host_reply else [16, 150, 151]
        )
    adv, frame, layers = got["advertisement"]
    icmp = layers["icmp"]
    assert _int(icmp, "icmp.mip.seq") == adv.seq
    assert _int(icmp, "icmp.mip.life") == adv.reg_lifetime
    assert _int(icmp, "icmp.mip.flags") == adv.flags << 8  # Wireshark shows flags + reserved
    assert _int(icmp, "icmp.mip.r") == 1 and _int(icmp, "icmp.mip.f") == 1
    assert _int(icmp, "icmp.mip.rt") == 1 and _int(icmp, "icmp.mip.h") == 0
    assert _one(icmp, "icmp.mip.coa") == _addr(adv.src)
    for name in ("solicitation_level_2", "solicitation_level_1"):
        _sol, frame, layers = got[name]
        assert _int(layers["icmp"], "icmp.type") == 10
        assert _int(layers["icmp"], "icmp.checksum.status") == 1


def test_standard_decode_of_the_registrations(standard, capture):
    got = _by_name(capture, standard)
    for name in ("request_local", "request_remote", "reply_0", "reply_66", "reply_133"):
        msg, frame, layers = got[name]
        assert (
            _int(layers["udp"], "udp.srcport") == 434 and _int(layers["udp"], "udp.dstport") == 434
        )
        mip = layers["mip"]
        is_request = isinstance(msg, registration.RegRequest)
        assert _int(mip, "mip.type") == (1 if is_request else 3)
        assert _int(mip, "mip.life") == msg.lifetime
        assert _one(mip, "mip.homeaddr") == _addr(msg.home)
        assert _one(mip, "mip.haaddr") == _addr(msg.home_agent)
        # the Identification is shown as an NTP time stamp; compare its raw bytes
        assert int(_one(mip, "mip.ident_raw")[0], 16) == msg.ident
        assert _int(mip, "mip.ext.type") == msg.ext_type
        assert _int(mip, "mip.ext.len") == 20
        assert _int(mip, "mip.auth.spi") == msg.spi
        assert _hexbytes(_one(mip, "mip.auth.auth")) == _tag(frame)
        if is_request:
            assert _int(mip, "mip.flags") == msg.flags
            assert _one(mip, "mip.coa") == _addr(msg.coa)
        else:
            assert _int(mip, "mip.code") == msg.code
    assert _int(got["request_local"][2]["mip"], "mip.ext.type") == registration.EXT_MF_AUTH
    assert _int(got["request_remote"][2]["mip"], "mip.ext.type") == registration.EXT_MH_AUTH
    assert [_int(got[n][2]["mip"], "mip.code") for n in ("reply_0", "reply_66", "reply_133")] == [
        0,
        66,
        133,
    ]


def test_standard_decode_of_datagrams_and_the_tunnel(standard, capture):
    got = _by_name(capture, standard)
    sent, _frame, layers = got["app_datagram"]
    assert _one(layers["ip"], "ip.src") == _addr(sent["src"])
    assert _int(layers["udp"], "udp.dstport") == sent["port"]
    assert _hexbytes(_one(layers, "data.data")) == sent["payload"]
    sent, _frame, layers = got["tunnel"]
    outer, inner = layers["ip"]  # two IPv4 layers
    assert _int(outer, "ip.proto") == 4
    assert (_one(outer, "ip.src"), _one(outer, "ip.dst")) == (
        _addr(sent["src"]),
        _addr(sent["dst"]),
    )
    assert (_one(inner, "ip.src"), _one(inner, "ip.dst")) == (
        _addr(sent["inner_src"]),
        _addr(sent["inner_dst"]),
    )
    assert _int(layers["udp"], "udp.dstport") == sent["port"]
    assert _hexbytes(_one(layers, "data.data")) == sent["payload"]
    # without the plugin the publication is plain UDP data on port 4344
    _pub, frame, layers = got["publication"]
    assert _int(layers["udp"], "udp.dstport") == 4344 and "roam" not in layers


def test_lua_decodes_agent_info_auth_and_solicitation(with_lua, capture):
    got = _by_name(capture, with_lua)
    for name in ("advertisement", "host_reply"):
        adv, frame, layers = got[name]
        roam = layers["roam"]
        assert [int(t) for t in _values(roam, "roam.ext.type")] == [150, 151]
        assert [int(n) for n in _values(roam, "roam.ext.length")] == [11, 20]
        assert _int(roam, "roam.agent.services") == adv.services
        assert _int(roam, "roam.agent.services.routing") == (1 if adv.services & 1 else 0)
        assert _int(roam, "roam.agent.services.host_only") == (1 if adv.services & 8 else 0)
        assert _int(roam, "roam.agent.capacity") == adv.capacity
        assert _int(roam, "roam.agent.load") == adv.load
        assert _int(roam, "roam.agent.outage_in") == adv.outage_in
        assert _int(roam, "roam.agent.outage_for") == adv.outage_for
        assert _int(roam, "roam.agent.nonce") == adv.nonce
        assert _int(roam, "roam.agent.host_reply") == (1 if adv.is_host_reply else 0)
        assert _int(roam, "roam.auth.spi") == adv.spi
        assert _hexbytes(_one(roam, "roam.auth.tag")) == _tag(frame)
    for name in ("solicitation_level_2", "solicitation_level_1"):
        sol, frame, layers = got[name]
        roam = layers["roam"]
        assert isinstance(sol, advert.Solicitation)
        assert [int(t) for t in _values(roam, "roam.ext.type")] == [152, 151]
        assert _int(roam, "roam.sol.level") == sol.level
        assert _int(roam, "roam.sol.attempt") == sol.attempt
        assert _int(roam, "roam.auth.spi") == sol.spi
        assert _hexbytes(_one(roam, "roam.auth.tag")) == _tag(frame)
    assert [_int(got[n][2]["roam"], "roam.sol.level") for n in got if n.startswith("sol")] == [
        2,
        1,
    ]
    # the registrations are Wireshark's own (mip): the plugin adds nothing there
    assert "roam" not in got["request_local"][2]


def test_lua_decodes_the_publications(with_lua, capture):
    got = _by_name(capture, with_lua)
    for name in ("publication", "publication_snapshot"):
        pub, frame, layers = got[name]
        roam = layers["roam"]
        assert _int(layers["udp"], "udp.dstport") == 4344
        assert _int(roam, "roam.pub.type") == 0x52
        assert _one(roam, "roam.pub.origin") == _addr(pub.origin)
        assert _int(roam, "roam.pub.epoch") == pub.epoch
        assert _int(roam, "roam.pub.seq") == pub.seq
        assert _int(roam, "roam.pub.flags.full") == (1 if pub.full else 0)
        assert _int(roam, "roam.pub.bindings") == len(pub.bindings)
        assert _int(roam, "roam.pub.withdrawals") == len(pub.withdrawals)
        homes = _values(roam, "roam.pub.binding.home")
        lifetimes = [int(v) for v in _values(roam, "roam.pub.binding.lifetime")]
        assert list(zip(homes, lifetimes, strict=True)) == [
            (_addr(h), life) for h, life in pub.bindings
        ]
        assert _values(roam, "roam.pub.withdrawal.home") == [_addr(h) for h in pub.withdrawals]
        assert _int(roam, "roam.auth.spi") == pub.spi
        assert _hexbytes(_one(roam, "roam.auth.tag")) == _tag(frame)
    snap, _frame, layers = got["publication_snapshot"]
    assert _int(layers["roam"], "roam.pub.flags.part") == snap.part
    assert _int(layers["roam"], "roam.pub.flags.last") == 1


def test_lua_decodes_the_field_service(with_lua, capture):
    got = _by_name(capture, with_lua)
    msg, frame, layers = got["field_log"]
    f = layers["roamfield"]
    assert _int(layers["udp"], "udp.dstport") == 4345
    assert _int(f, "roamfield.type") == 1
    assert (_int(f, "roamfield.node"), _int(f, "roamfield.boot")) == (msg["node"], msg["boot"])
    assert (_int(f, "roamfield.file"), _int(f, "roamfield.offset")) == (msg["file"], msg["off"])
    assert _int(f, "roamfield.flags.more") == 1 and _int(f, "roamfield.flags.cont") == 0
    assert _values(f, "roamfield.line") == [ln.decode() for ln in msg["lines"].split(b"\n") if ln]
    assert _hexbytes(_one(f, "roamfield.tag")) == _tag(frame)
    msg, frame, layers = got["field_rewind"]
    f = layers["roamfield"]
    assert (_int(f, "roamfield.type"), _int(f, "roamfield.counter")) == (2, msg["counter"])
    assert _hexbytes(_one(f, "roamfield.tag")) == _tag(frame)


def test_lua_plugin_survives_mutated_frames(tshark_module, tmp_path):
    """The plugin must flag bad input with expert info, never fail with a Lua error."""
    spec = importlib.util.spec_from_file_location(
        "fuzz_wire_mpy", REPO_DIR / "bench" / "fuzz_wire_mpy.py"
    )
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    from hosttools.pcap import PcapWriter

    rng = fuzz.XorShift32(11)
    templates = [(n, f, fuzz._length_offsets(f)) for n, f in fuzz.templates()]
    path = tmp_path / "mutated.pcap"
    with PcapWriter(path) as w:
        for i in range(5000):
            tmpl = templates[rng.below(len(templates))]
            data = bytearray(tmpl[1])
            for _ in range(1 + rng.below(3)):
                data = fuzz.mutate(rng, data, tmpl, templates)
            if rng.below(4):
                fuzz.repair(data)
            w.write(i, bytes(data))
    out = _run(tshark_module, "-r", str(path), "-X", "lua_script:" + str(LUA), "-q", "-z", "expert")
    assert "Lua Error" not in out, out
    assert "ROAM" in out  # the plugin did see (and flag) broken roam messages

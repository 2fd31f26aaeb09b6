"""tshark decodes a capture of every roam message type, and the shipped Lua dissector decodes
our own extensions, the region publication and the field service (log lines, REWIND, the
over-the-air update messages), with the values that were sent.

The capture comes from tools/make_sample_pcap.py (real encoders, LINKTYPE_RAW). Three tshark
runs: the standard decode (no plugin, IPv4/UDP checksum validation switched on), the decode
with tools/wireshark/roam.lua, and `-z expert,warn` with the plugin as a second opinion on
malformed packets and warnings. The update messages are read back with `-T fields` (the way
one looks at them from a shell); the ones the tool cuts short on purpose (TRUNCATED) must be
flagged malformed, and they are the only frames that may be.
"""

import importlib.util
import json
import struct
import subprocess
from pathlib import Path

import pytest

from mobility import advert, publication, registration
from update import wire as uwire

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
    done = subprocess.run(
        [tshark, *args], capture_output=True, encoding="utf-8", errors="replace", timeout=120
    )
    assert done.returncode == 0, done.stderr
    # tshark reports a Lua script that fails to load on stderr and carries on
    assert "lua" not in done.stderr.lower(), done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def sample_tool():
    return _load_sample_tool()


@pytest.fixture(scope="module")
def capture(tmp_path_factory, sample_tool):
    path = tmp_path_factory.mktemp("tshark") / "sample.pcap"
    samples = sample_tool.write(path)
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


def test_no_malformed_packets_or_warnings(standard, with_lua, capture, sample_tool):
    for name_layers in (standard, with_lua):
        for (name, _msg, _frame), layers in zip(capture[1], name_layers, strict=True):
            if name in sample_tool.TRUNCATED and name_layers is with_lua:
                continue  # cut short on purpose: test_lua_flags_truncated_update_messages
            assert "_ws.malformed" not in layers, name
            _no_warnings(layers)
            # our checksums are right (validation is switched on for IPv4 and UDP)
            for key in ("ip.checksum.status", "udp.checksum.status", "icmp.checksum.status"):
                assert set(_values(layers, key)) <= {"1"}, (name, key)


def test_expert_summary_lists_nothing_above_a_note(tshark_module, capture, sample_tool):
    """Nothing but the update messages cut short on purpose: one malformed error each."""
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
    assert "Warnings" not in out and f"Errors ({len(sample_tool.TRUNCATED)})" in out, out
    rows = [ln.split(None, 3) for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [(int(f), g, p) for f, g, p, _summary in rows] == [
        (1, "Malformed", "ROAMFIELD") for _ in sample_tool.TRUNCATED
    ], out


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
        # (a local binding's link extension, 153, comes before the authentication)
        types = [int(t) for t in _values(mip, "mip.ext.type")]
        assert types[-1] == msg.ext_type
        assert types[:-1] == ([registration.EXT_LINK] if msg.node_mac is not None else [])
        assert int(_values(mip, "mip.ext.len")[-1]) == 20
        assert _int(mip, "mip.auth.spi") == msg.spi
        assert _hexbytes(_one(mip, "mip.auth.auth")) == _tag(frame)
        if is_request:
            assert _int(mip, "mip.flags") == msg.flags
            assert _one(mip, "mip.coa") == _addr(msg.coa)
        else:
            assert _int(mip, "mip.code") == msg.code
    assert int(_values(got["request_local"][2]["mip"], "mip.ext.type")[-1]) == 33
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
        assert [int(n) for n in _values(roam, "roam.ext.length")] == [17, 20]
        assert _int(roam, "roam.agent.services") == adv.services
        assert _int(roam, "roam.agent.services.routing") == (1 if adv.services & 1 else 0)
        assert _int(roam, "roam.agent.services.host_only") == (1 if adv.services & 8 else 0)
        assert _int(roam, "roam.agent.capacity") == adv.capacity
        assert _int(roam, "roam.agent.load") == adv.load
        assert _int(roam, "roam.agent.outage_in") == adv.outage_in
        assert _int(roam, "roam.agent.outage_for") == adv.outage_for
        assert _int(roam, "roam.agent.nonce") == adv.nonce
        mac = adv.mac or bytes(6)
        assert _one(roam, "roam.agent.mac") == ":".join("%02x" % b for b in mac)
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
    # the registrations are Wireshark's own (mip): the plugin adds the link extension (153)
    for name in ("request_local", "reply_0", "reply_66"):
        msg, frame, layers = got[name]
        roam = layers["roam"]
        assert [int(t) for t in _values(roam, "roam.ext.type")] == [153]
        assert _hexbytes(_one(roam, "roam.link.node_mac")) == msg.node_mac
        assert _hexbytes(_one(roam, "roam.link.agent_mac")) == msg.agent_mac
        if isinstance(msg, registration.RegReply):
            assert int(_one(roam, "roam.link.request_ident"), 0) == msg.req_ident
        else:
            assert _int(roam, "roam.link.agent_seq") == msg.agent_seq == 0x1234
    assert "roam" not in got["request_remote"][2]


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
        hop = publication.HOP_LEN
        assert _hexbytes(_one(roam, "roam.auth.tag")) == frame[-16 - hop : -hop]
        assert _hexbytes(_one(roam, "roam.hop.tag")) == frame[-8:]
        assert 155 in [int(t) for t in _values(roam, "roam.ext.type")]
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


# -- the update messages on the field port (firmware/update/wire.py), read with -T fields -----

U_STATUS_FIELDS = [
    "fw",
    "previous_fw",
    "config",
    "rollback.from",
    "boot",
    "uptime",
    "mpy",
    "counter",
    "slot",
    "previous_slot",
    "pending",
    "tries",
    "rollback.what",
    "rollback.tries",
    "romfs_kb",
]  # in STATUS_FMT's order
U_FIELDS = [
    "frame.number",
    "_ws.col.Info",
    "ip.src",
    "ip.dst",
    "udp.srcport",
    "udp.dstport",
    "_ws.malformed",
    "_ws.lua.error",
    "_ws.expert.severity",
    "roamfield.update.short",
    "roamfield.update",
    *(
        "roamfield.update." + f
        for f in ("type", "flags", "node", "session", "counter", "body", "extra", "tag")
    ),
    *("roamfield.update.status." + f for f in U_STATUS_FIELDS),
    *("roamfield.update.begin." + f for f in ("kind", "files", "set")),
    *("roamfield.update.file." + f for f in ("index", "size", "sha256", "path")),
    *("roamfield.update.data." + f for f in ("index", "offset", "len", "bytes")),
    *("roamfield.update.ack." + f for f in ("code", "value", "text")),
    "roamfield.update.relay.address",
]
U_HEAD_FIELDS = ("type", "flags", "node", "session", "counter", "tag")
U_BODY_FIELDS = [
    f
    for f in U_FIELDS
    if f.startswith("roamfield.update.") and f.split(".")[2] not in U_HEAD_FIELDS
]
U_NAMES = {
    uwire.HELLO: "HELLO",
    uwire.STATUS: "STATUS",
    uwire.BEGIN: "BEGIN",
    uwire.FILE: "FILE",
    uwire.DATA: "DATA",
    uwire.COMMIT: "COMMIT",
    uwire.RESET: "RESET",
    uwire.ACK: "ACK",
    uwire.RELAY: "RELAY",
}
ACK_NAMES = (
    "OK",
    "BUSY",
    "BAD",
    "MISMATCH",
    "NO_SPACE",
    "MISSING",
    "BAD_CONFIG",
    "OFFSET",
    "NO_BEGIN",
)
SEVERITY_ERROR = 0x00800000


def _fields(tshark, path, display_filter, fields=U_FIELDS):
    """`tshark -T fields`: {frame number: {field: text}}, every occurrence of a field kept
    ('|' apart: a RELAY holds a second update message)."""
    args = ["-r", str(path), "-X", "lua_script:" + str(LUA), *CHECKSUMS, "-Y", display_filter]
    args += ["-T", "fields", "-E", "separator=/t", "-E", "aggregator=|", "-E", "occurrence=a"]
    for f in fields:
        args += ["-e", f]
    rows = {}
    for line in _run(tshark, *args).splitlines():
        cols = line.split("\t")
        assert len(cols) == len(fields), line
        row = dict(zip(fields, cols, strict=True))
        rows[int(row["frame.number"])] = row
    return rows


def _all(row, field):
    return row[field].split("|") if row[field] else []


def _ints(row, field):
    return [int(v, 0) for v in _all(row, field)]


def _u(row, field):
    """The one value of roamfield.update.<field> as an int."""
    (v,) = _ints(row, "roamfield.update." + field)
    return v


def _ubytes(row, field):
    return _hexbytes(row["roamfield.update." + field])


@pytest.fixture(scope="module")
def updates(tshark_module, capture):
    """name -> (sent, frame, row) for every update sample, from `-Y roamfield`."""
    path, samples = capture
    rows = _fields(tshark_module, path, "roamfield")
    # the field service's frames and nothing else
    assert set(rows) == {
        i for i, (name, _m, _f) in enumerate(samples, 1) if name.startswith(("field_", "update_"))
    }
    return {
        name: (sent, frame, rows[i])
        for i, (name, sent, frame) in enumerate(samples, 1)
        if name.startswith("update_")
    }


def test_lua_decodes_the_update_heads(updates, sample_tool):
    seen = set()
    for name, (sent, frame, row) in updates.items():
        if name in sample_tool.TRUNCATED:
            continue
        msg = frame[28:]  # after the IPv4 and UDP headers
        assert not row["_ws.malformed"] and not row["_ws.lua.error"], name
        assert not row["_ws.expert.severity"], (name, row["_ws.col.Info"])
        types = _ints(row, "roamfield.update.type")
        seen.update(types)
        if types[0] == uwire.RELAY:
            continue  # test_lua_decodes_the_relay
        assert types == [sent["type"]], name
        assert _u(row, "flags") == 0 and _u(row, "node") == sent["node"], name
        assert (_u(row, "session"), _u(row, "counter")) == (sent["session"], sent["counter"])
        assert _ubytes(row, "tag") == msg[-16:] == _tag(frame), name
        assert row["_ws.col.Info"].startswith(f"UPDATE {U_NAMES[sent['type']]} node {sent['node']}")
        # laptop (4346) <-> board (4345); by radio 4345 both ways
        to_board = sent["type"] not in (uwire.STATUS, uwire.ACK)
        ports = (int(row["udp.srcport"]), int(row["udp.dstport"]))
        if name == "update_radio":
            assert ports == (4345, 4345)
        else:
            assert ports == ((4346, 4345) if to_board else (4345, 4346)), name
        # what has no body shows none
        if sent["type"] in (uwire.HELLO, uwire.COMMIT, uwire.RESET):
            assert len(msg) == 12 + 16, name
            assert [f for f in U_BODY_FIELDS if row[f]] == [], name
    assert seen == set(U_NAMES)  # every update type


def test_lua_decodes_hello_and_status(updates):
    sent, _frame, row = updates["update_hello"]
    assert (_u(row, "session"), _u(row, "counter")) == (0, sent["counter"])
    assert row["_ws.col.Info"] == f"UPDATE HELLO node 9 nonce {sent['counter']}"

    sent, frame, row = updates["update_status"]
    raw = struct.unpack(uwire.STATUS_FMT, bytes(uwire.body(frame[28:])))
    for field, value in zip(U_STATUS_FIELDS, raw, strict=True):
        got = row["roamfield.update.status." + field]
        if isinstance(value, bytes):
            assert _hexbytes(got) == value, field
        else:
            assert int(got, 0) == value, field
    st = sent["status"]  # the board's encoder's view, through the laptop's decoder
    assert _ubytes(row, "status.fw").hex() == st["fw"]
    assert _ubytes(row, "status.previous_fw").hex() == st["previous_fw"]
    assert _ubytes(row, "status.config").hex() == st["config"]
    assert _ubytes(row, "status.rollback.from").hex() == st["rollback"]["from"]
    assert (_u(row, "status.boot"), _u(row, "status.uptime")) == (st["boot"], st["uptime_s"])
    assert (_u(row, "status.mpy"), _u(row, "status.counter")) == (st["mpy"], st["counter"])
    assert uwire.SLOT_NAMES[_u(row, "status.slot")] == st["slot"] == "a"
    assert uwire.SLOT_NAMES[_u(row, "status.previous_slot")] == st["previous_slot"] == "root"
    assert uwire.PENDING_NAMES[_u(row, "status.pending")] == st["pending"] == "fw"
    assert _u(row, "status.tries") == st["tries"]
    assert uwire.WHAT_NAMES[_u(row, "status.rollback.what")] == st["rollback"]["what"]
    assert _u(row, "status.rollback.tries") == st["rollback"]["tries"]
    assert _u(row, "status.romfs_kb") == st["romfs_kb"] == 256
    assert row["_ws.col.Info"] == (
        f"UPDATE STATUS node 9 session 0x{sent['session']:08x} fw {st['fw']} slot a boot "
        f"{st['boot']} pending fw"
    )


def test_lua_decodes_the_commands(updates):
    sent, _frame, row = updates["update_begin"]
    assert (_u(row, "begin.kind"), _u(row, "begin.files")) == (sent["kind"], sent["files"])
    assert _ubytes(row, "begin.set") == sent["set"]
    assert row["_ws.col.Info"] == (
        f"UPDATE BEGIN node 9 firmware, 3 files, set {sent['set'][:8].hex()}"
    )

    sent, _frame, row = updates["update_file"]
    assert (_u(row, "file.index"), _u(row, "file.size")) == (sent["index"], sent["size"])
    assert _ubytes(row, "file.sha256") == sent["sha256"]
    assert row["roamfield.update.file.path"] == sent["path"]  # UTF-8
    assert row["_ws.col.Info"] == (
        f"UPDATE FILE node 9 file {sent['index']} {sent['path']} ({sent['size']} bytes)"
    )

    sent, _frame, row = updates["update_data"]
    assert (_u(row, "data.index"), _u(row, "data.offset")) == (sent["index"], sent["offset"])
    assert _u(row, "data.len") == len(sent["data"]) and _ubytes(row, "data.bytes") == sent["data"]
    assert row["_ws.col.Info"] == (
        f"UPDATE DATA node 9 file {sent['index']} @{sent['offset']} ({len(sent['data'])} bytes)"
    )

    for name in ("update_commit", "update_reset"):
        sent, _frame, row = updates[name]
        assert row["_ws.col.Info"] == f"UPDATE {U_NAMES[sent['type']]} node 9"


def test_lua_decodes_the_acks(updates):
    for name in ("update_ack", "update_ack_text"):
        sent, _frame, row = updates[name]
        assert (_u(row, "ack.code"), _u(row, "ack.value")) == (sent["code"], sent["value"])
        assert row["roamfield.update.ack.text"] == sent["text"]
    assert updates["update_ack"][2]["_ws.col.Info"] == "UPDATE ACK node 9 OFFSET %d" % (
        uwire.DATA_UDP
    )
    assert updates["update_ack_text"][2]["_ws.col.Info"] == (
        'UPDATE ACK node 9 BAD_CONFIG 0 "cell: key, 32 bytes"'
    )


def test_lua_decodes_the_relay(updates):
    """A RELAY (laptop -> agent) holds a whole update message, dissected as one; the same
    message then goes by radio (IPv4/UDP to the board's port 4345)."""
    sent, frame, row = updates["update_relay"]
    inner = sent["inner"]
    assert _ints(row, "roamfield.update.type") == [uwire.RELAY, uwire.DATA]
    assert _ints(row, "roamfield.update.node") == [sent["node"], inner["node"]]
    assert _ints(row, "roamfield.update.flags") == [0, 0]
    assert row["roamfield.update.relay.address"] == _addr(sent["address"])
    assert (_u(row, "session"), _u(row, "counter")) == (inner["session"], inner["counter"])
    assert (_u(row, "data.index"), _u(row, "data.offset")) == (inner["index"], inner["offset"])
    assert _ubytes(row, "data.bytes") == inner["data"]
    assert _ubytes(row, "tag") == sent["inner_tag"] == _tag(frame)  # a RELAY has no tag
    assert _ints(row, "udp.dstport") == [4345] and row["ip.dst"] != _addr(sent["address"])
    assert row["_ws.col.Info"] == (
        f"UPDATE RELAY node 7 to {_addr(sent['address'])}: DATA node 7 file 0 @0 "
        f"({len(inner['data'])} bytes)"
    )
    radio, frame, row = updates["update_radio"]
    assert radio == inner and row["ip.dst"] == _addr(sent["address"])
    assert row["_ws.col.Info"] == "UPDATE DATA node 7 file 0 @0 (%d bytes)" % len(inner["data"])


def test_lua_flags_truncated_update_messages(updates, sample_tool):
    assert sample_tool.TRUNCATED
    for name in sample_tool.TRUNCATED:
        sent, _frame, row = updates[name]
        assert row["_ws.malformed"], name
        assert not row["_ws.lua.error"], name
        assert _ints(row, "_ws.expert.severity") == [SEVERITY_ERROR], name
        assert _ints(row, "roamfield.update.short") == [1], name
        assert _ints(row, "roamfield.update.type")[-1] == sent["type"], name
        assert row["_ws.col.Info"].endswith(
            f"{U_NAMES[sent['type']]} node {sent['node']} [truncated]"
        )
        assert not row["roamfield.update.data.offset"] and not row["roamfield.update.begin.set"]
    # a DATA cut inside its head: the head fields that fit are shown
    sent, frame, row = updates["update_data_truncated"]
    assert len(frame) == 28 + 24 and _u(row, "counter") > 0 and not row["roamfield.update.tag"]
    assert row["_ws.col.Info"] == "UPDATE DATA node 9 [truncated]"
    # a RELAY's BEGIN without its end: the RELAY decodes, its BEGIN is flagged
    sent, _frame, row = updates["update_relay_begin_truncated"]
    assert row["roamfield.update.relay.address"] == _addr(sent["address"])
    assert (
        row["_ws.col.Info"]
        == f"UPDATE RELAY node 7 to {_addr(sent['address'])}: BEGIN node 7 [truncated]"
    )


def test_lua_names_every_ack_code_and_decodes_the_laptops_port(
    tshark_module, tmp_path, sample_tool
):
    """ACK codes by wire.py's names; a board with no state; the laptop's port 4346 alone (the
    other end not 4345, as behind a NAT)."""
    from hosttools.pcap import PcapWriter

    k, node, board, laptop = b"k", 9, sample_tool.UPDATE_BOARD, sample_tool.LAPTOP
    msgs = [
        uwire.ack(k, node, 1, 2, getattr(uwire, name), 40 + i) for i, name in enumerate(ACK_NAMES)
    ]
    msgs.append(
        uwire.sign(k, uwire.STATUS, node, 1, 2, uwire.pack_status({}, bytes(8), 1, 2, 6, 0))
    )
    path = tmp_path / "acks.pcap"
    with PcapWriter(path) as w:
        for i, m in enumerate(msgs):
            w.write(i, sample_tool.backbone_udp(board, laptop, 4345, 4346, m))
        w.write(len(msgs), sample_tool.backbone_udp(board, laptop, 40000, 4346, msgs[0]))
    rows = _fields(tshark_module, path, "roamfield.update")
    assert sorted(rows) == list(range(1, len(msgs) + 2))
    for i, name in enumerate(ACK_NAMES):
        assert rows[i + 1]["_ws.col.Info"] == f"UPDATE ACK node 9 {name} {40 + i}"
    status = rows[len(msgs)]
    assert _u(status, "status.slot") == _u(status, "status.previous_slot") == uwire.NONE
    assert (
        status["_ws.col.Info"]
        == "UPDATE STATUS node 9 session 0x00000001 fw 0000000000000000 slot none boot 1"
    )
    assert rows[len(msgs) + 1]["_ws.col.Info"] == "UPDATE ACK node 9 OK 40"

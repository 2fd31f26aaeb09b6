"""Write a pcap (LINKTYPE_RAW) holding one frame of every roam message type (and, named in
``TRUNCATED``, update messages cut short on purpose: the dissector must flag them).

    .venv/bin/python tools/make_sample_pcap.py [out.pcap]       # default: out/sample.pcap
    tshark -r out/sample.pcap -X lua_script:tools/wireshark/roam.lua -V

Every frame is built by the real encoders in firmware/ (mobility, fieldlog, update) and signed
with the demo keys below, so the capture is what a deployment would put on the air.
tests/host/test_tshark.py uses ``samples()`` to check what tshark decodes against what was sent.
"""

import hashlib
import struct
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
for _p in (REPO_DIR / "firmware", REPO_DIR):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench import wire_mpy as msgs  # noqa: E402
from bench.wire_mpy import AGENT, AGENT2, HOME_AGENT, MOBILE, PEER  # noqa: E402
from fieldlog import reader, wire  # noqa: E402
from hosttools.pcap import PcapWriter  # noqa: E402
from mobility import advert, auth, ipv4, publication, registration, request, solicit, tunnel  # noqa: E402
from update import wire as uwire  # noqa: E402

CELL_KEY = b"demo cell key, not for deployment"
LOG_KEY = b"demo log key of node 7 for demo"  # a board's own log key (fieldlog)
REGION_KEY = b"demo region key, not for deployment"
HOME_NODE = 7
HOME_KEY = b"demo home key of node 7"
NODE_KEY = b"demo binding key of the mobile node"  # K_X (SPI 0x101): its local bindings
NODE_MAC = b"\x02\x00\x00\x00\x00\x07"
AGENT_MAC = b"\x02\x00\x00\x00\x00\x01"
HOME_SPI = auth.spi_home(HOME_NODE)

NONCE = 0x5EED1234

# over-the-air updates: the laptop (port 4346) and a backbone board (node 9) straight, a
# radio-only board (node 7) through an agent's RELAY and by ESP-NOW (IPv4/UDP to port 4345)
LAPTOP = ipv4.aton("10.77.0.2")
LAPTOP_PORT = 4346
UPDATE_BOARD = ipv4.aton("10.0.0.9")
UPDATE_NODE = 9
UPDATE_KEY = b"demo update key of node 9, demo"  # derived per board from the fleet's secret
RADIO_UPDATE_KEY = b"demo update key of node 7, demo"
UPDATE_NONCE = 0x1234ABCD
UPDATE_SESSION = 0x6A3F0C11
UPDATE_FILES = [
    ("lib/mobility/advert.mpy", b"advert " * 180),
    ("lib/mobility/ipv4.mpy", b"ipv4 " * 243),
    ("lib/fieldlog/journal_é.py", "import driver  # é\n".encode()),
]
# samples cut short on purpose: tshark must flag them malformed (and nothing else)
TRUNCATED = ("update_data_truncated", "update_relay_begin_truncated")


def samples():
    """[(name, message, frame)]: message is the object encoded (Advertisement, Solicitation,
    RegRequest, RegReply, Publication) or, for datagrams and tunnels, a dict of what was sent."""
    out = []
    adv = msgs.advertisement(1234, 12, 5, NONCE, outage_in=3600, outage_for=120)
    adv.mac = b"\x02\x52\x4d\x00\x00\x01"  # the agent's radio (signed)
    out.append(("advertisement", adv, advert.encode_advertisement(adv, CELL_KEY)))
    reply = advert.Advertisement(
        src=PEER,
        dst=MOBILE,
        adv_lifetime=20,
        services=advert.SVC_HOST,
        capacity=0,
        load=0,
        nonce=0x0BADCAFE,
        is_host_reply=True,
        mac=b"\x02\x52\x4d\x00\x00\x07",
    )
    out.append(("host_reply", reply, advert.encode_advertisement(reply, CELL_KEY)))
    for level, attempt in ((advert.LEVEL_ROUTING, 0), (advert.LEVEL_HOST, 4)):
        sol = advert.Solicitation(src=MOBILE, level=level, attempt=attempt)
        out.append((f"solicitation_level_{level}", sol, solicit.encode_solicitation(sol, CELL_KEY)))
    local = msgs.local_request(
        request.make_ident(NONCE, 17), node_mac=NODE_MAC, agent_mac=AGENT_MAC, agent_seq=0x1234
    )
    out.append(("request_local", local, request.encode_request(local, NODE_KEY)))
    remote = msgs.remote_request(900, request.make_ident(0x0A0B0C0D, 3), HOME_SPI)
    out.append(("request_remote", remote, request.encode_request(remote, HOME_KEY)))
    for code, ext, spi, key, lifetime, src, ident in (
        (0, registration.EXT_MF_AUTH, auth.SPI_NODE, NODE_KEY, 300, AGENT, local.ident),
        (66, registration.EXT_MF_AUTH, auth.SPI_NODE, NODE_KEY, 0, AGENT, local.ident),
        (
            133,
            registration.EXT_MH_AUTH,
            HOME_SPI,
            HOME_KEY,
            0,
            HOME_AGENT,
            request.make_ident(0x7777AAAA, 41),
        ),
    ):
        rep = msgs.reply(src, code, lifetime, ident, ext, spi)
        if ext == registration.EXT_MF_AUTH:  # a local binding's reply names both MACs
            rep.node_mac, rep.agent_mac, rep.req_ident = NODE_MAC, AGENT_MAC, local.ident
        out.append((f"reply_{code}", rep, registration.encode_reply(rep, key)))
    pub = publication.Publication(
        origin=AGENT,
        epoch=9,
        seq=65535,
        full=False,
        bindings=[(MOBILE, 300), (ipv4.aton("10.1.0.8"), 45)],
        withdrawals=[ipv4.aton("10.1.0.3"), ipv4.aton("10.1.0.4")],
    )
    out.append(("publication", pub, msgs.publication_frame(pub, AGENT2, REGION_KEY)))
    snapshot = publication.Publication(
        origin=AGENT2,
        epoch=10,
        seq=1,
        full=True,
        bindings=[(ipv4.aton("10.1.1.%d" % i), 100 + i) for i in range(1, 4)],
        part=1,
        last=True,
    )
    out.append(
        ("publication_snapshot", snapshot, msgs.publication_frame(snapshot, AGENT, REGION_KEY))
    )
    payload = b"hello from a correspondent"
    app = ipv4.udp(PEER, MOBILE, ipv4.APP_PORT, ipv4.APP_PORT, payload)
    out.append(
        (
            "app_datagram",
            {"src": PEER, "dst": MOBILE, "port": ipv4.APP_PORT, "payload": payload},
            app,
        )
    )
    out.append(
        (
            "tunnel",
            {
                "src": HOME_AGENT,
                "dst": AGENT,
                "inner_src": PEER,
                "inner_dst": MOBILE,
                "port": ipv4.APP_PORT,
                "payload": payload,
            },
            tunnel.encapsulate(HOME_AGENT, AGENT, app),
        )
    )
    # the field service: a mobile node's log lines to its agent (as on the radio), the last one
    # cut, and a REWIND from the collector (as the backbone carries it)
    lines = b'{"t":1200,"n":7,"b":3,"s":0,"ev":"start","role":"mobile"}\n{"t":1210,"n":7'
    log = reader.encode_log(LOG_KEY, HOME_NODE, 3, 0, wire.FLAG_MORE, 1, 0, lines)
    out.append(
        (
            "field_log",
            {"node": HOME_NODE, "boot": 3, "frame": 0, "file": 1, "off": 0, "lines": lines},
            ipv4.udp(MOBILE, AGENT, wire.FIELD_PORT, wire.FIELD_PORT, log),
        )
    )
    rewind = reader.encode_rewind(LOG_KEY, HOME_NODE, 4242)
    out.append(
        (
            "field_rewind",
            {"node": HOME_NODE, "counter": 4242},
            ipv4.udp(ipv4.aton("10.77.0.2"), AGENT, wire.FIELD_PORT, wire.FIELD_PORT, rewind),
        )
    )
    out.extend(update_samples())
    return out


def backbone_udp(src, dst, sport, dport, payload):
    """IPv4/UDP as the laptop's or a backbone board's stack sends it on Wi-Fi, where datagrams
    may be larger than an ESP-NOW frame (ipv4.udp's limit): the headers by ipv4.udp_head, the
    UDP checksum computed (with the pseudo header) as those stacks do."""
    n = len(payload)
    frame = bytearray(ipv4.HEADER_LEN + ipv4.UDP_LEN + n)
    ipv4.udp_head(frame, src, dst, sport, dport, n)
    frame[ipv4.HEADER_LEN + ipv4.UDP_LEN :] = payload
    seg = frame[ipv4.HEADER_LEN :]
    pseudo = bytes(src) + bytes(dst) + struct.pack(">BBH", 0, ipv4.PROTO_UDP, len(seg))
    c = ipv4.checksum(pseudo + seg) or 0xFFFF  # RFC 768: a computed 0 is sent as all ones
    struct.pack_into(">H", frame, ipv4.HEADER_LEN + 6, c)
    return bytes(frame)


def update_samples():
    """One of each update message (firmware/update/wire.py), then the TRUNCATED ones."""
    out = []
    port = wire.FIELD_PORT

    def to_board(name, sent, msg):
        out.append((name, sent, backbone_udp(LAPTOP, UPDATE_BOARD, LAPTOP_PORT, port, msg)))

    def to_laptop(name, sent, msg):
        out.append((name, sent, backbone_udp(UPDATE_BOARD, LAPTOP, port, LAPTOP_PORT, msg)))

    def command(t, counter, body=b"", key=UPDATE_KEY, node=UPDATE_NODE):
        sent = {"type": t, "node": node, "session": UPDATE_SESSION, "counter": counter}
        return sent, uwire.sign(key, t, node, UPDATE_SESSION, counter, body)

    k, n = UPDATE_KEY, UPDATE_NODE
    hello = uwire.sign(k, uwire.HELLO, n, 0, UPDATE_NONCE)
    to_board(
        "update_hello",
        {"type": uwire.HELLO, "node": n, "session": 0, "counter": UPDATE_NONCE},
        hello,
    )
    digests = [(p, hashlib.sha256(d).hexdigest()) for p, d in UPDATE_FILES]
    fw = uwire.set_hash(digests).hex()
    state = {
        "set": fw,
        "prev_set": "00f1e2d3c4b5a697",
        "active": "a",
        "previous": "root",
        "pending": "fw",
        "tries": 1,
        "rollback": {"what": "config", "from": "8899aabbccddeeff", "tries": 3},
    }
    body = uwire.pack_status(state, hashlib.sha256(b"config").digest(), 12, 3600, 6, 0, 256)
    status = uwire.sign(k, uwire.STATUS, n, UPDATE_SESSION, UPDATE_NONCE, body)
    to_laptop(
        "update_status",
        {
            "type": uwire.STATUS,
            "node": n,
            "session": UPDATE_SESSION,
            "counter": UPDATE_NONCE,
            "status": uwire.unpack_status(uwire.body(status)),
        },
        status,
    )
    set_hash = uwire.set_hash(digests)
    sent, msg = command(
        uwire.BEGIN,
        1,
        struct.pack(">BB", uwire.KIND_FIRMWARE, len(UPDATE_FILES)) + set_hash,
    )
    to_board("update_begin", dict(sent, kind=uwire.KIND_FIRMWARE, files=3, set=set_hash), msg)
    path, data = UPDATE_FILES[2]
    sha = hashlib.sha256(data).digest()
    sent, msg = command(uwire.FILE, 2, struct.pack(">BI", 2, len(data)) + sha + path.encode())
    to_board("update_file", dict(sent, index=2, size=len(data), sha256=sha, path=path), msg)
    path, data = UPDATE_FILES[1]
    piece = data[uwire.DATA_UDP :]
    sent, msg = command(uwire.DATA, 3, struct.pack(">BI", 1, uwire.DATA_UDP) + piece)
    to_board("update_data", dict(sent, index=1, offset=uwire.DATA_UDP, data=piece), msg)
    data_msg = msg
    sent, msg = command(uwire.COMMIT, 4)
    to_board("update_commit", sent, msg)
    sent, msg = command(uwire.RESET, 5)
    to_board("update_reset", sent, msg)
    for name, counter, code, value, text in (
        ("update_ack", 3, uwire.OFFSET, uwire.DATA_UDP, ""),
        ("update_ack_text", 4, uwire.BAD_CONFIG, 0, "cell: key, 32 bytes"),
    ):
        msg = uwire.ack(k, n, UPDATE_SESSION, counter, code, value, text)
        to_laptop(
            name,
            {
                "type": uwire.ACK,
                "node": n,
                "session": UPDATE_SESSION,
                "counter": counter,
                "code": code,
                "value": value,
                "text": text,
            },
            msg,
        )
    # a radio-only board: the laptop's RELAY to an agent, which sends the message inside on by
    # ESP-NOW as IPv4/UDP to the board's port 4345 (what the capture sees of the radio frame)
    radio_node = HOME_NODE
    sent, inner = command(
        uwire.DATA,
        7,
        struct.pack(">BI", 0, 0) + UPDATE_FILES[0][1][: uwire.DATA_RADIO],
        key=RADIO_UPDATE_KEY,
        node=radio_node,
    )
    sent = dict(sent, index=0, offset=0, data=UPDATE_FILES[0][1][: uwire.DATA_RADIO])
    relay = uwire.relay(radio_node, MOBILE, inner)
    out.append(
        (
            "update_relay",
            {"node": radio_node, "address": MOBILE, "inner": sent, "inner_tag": inner[-16:]},
            backbone_udp(LAPTOP, AGENT, LAPTOP_PORT, port, relay),
        )
    )
    out.append(("update_radio", sent, ipv4.udp(LAPTOP, MOBILE, port, port, inner)))
    # cut short: a DATA's first 24 bytes (less than a head and a tag), and a RELAY whose BEGIN
    # lost its last 10 bytes (the body then looks 8 bytes long)
    out.append(
        (
            "update_data_truncated",
            {"type": uwire.DATA, "node": n, "length": 24},
            backbone_udp(LAPTOP, UPDATE_BOARD, LAPTOP_PORT, port, data_msg[:24]),
        )
    )
    begin = uwire.sign(
        RADIO_UPDATE_KEY,
        uwire.BEGIN,
        radio_node,
        UPDATE_SESSION,
        1,
        struct.pack(">BB", uwire.KIND_CONFIG, 1) + set_hash,
    )
    out.append(
        (
            "update_relay_begin_truncated",
            {"type": uwire.BEGIN, "node": radio_node, "address": MOBILE},
            backbone_udp(
                LAPTOP, AGENT, LAPTOP_PORT, port, uwire.relay(radio_node, MOBILE, begin[:-10])
            ),
        )
    )
    return out


def write(path, start_us=1_700_000_000_000_000, step_us=1000):
    """Write every sample to ``path``; returns the samples written (in frame order)."""
    items = samples()
    with PcapWriter(path) as w:
        for i, (_name, _msg, frame) in enumerate(items):
            w.write(start_us + i * step_us, frame)
    return items


def main(argv):
    if len(argv) > 2:
        sys.exit("usage: make_sample_pcap.py [out.pcap]")
    path = Path(argv[1]) if len(argv) == 2 else REPO_DIR / "out" / "sample.pcap"
    path.parent.mkdir(parents=True, exist_ok=True)
    items = write(path)
    for i, (name, _msg, frame) in enumerate(items, 1):
        print(f"{i:3d}  {len(frame):3d} bytes  {name}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv)

"""Write a pcap (LINKTYPE_RAW) holding one frame of every roam message type.

    .venv/bin/python tools/make_sample_pcap.py [out.pcap]       # default: out/sample.pcap
    tshark -r out/sample.pcap -X lua_script:tools/wireshark/roam.lua -V

Every frame is built by the real encoders in firmware/mobility/ and signed with the demo keys
below, so the capture is what a deployment would put on the air. tests/host/test_tshark.py uses
``samples()`` to check what tshark decodes against what was sent.
"""

import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
for _p in (REPO_DIR / "firmware", REPO_DIR):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from fieldlog import reader, wire  # noqa: E402
from hosttools.pcap import PcapWriter  # noqa: E402
from mobility import advert, auth, ipv4, publication, registration, tunnel  # noqa: E402

CELL_KEY = b"demo cell key, not for deployment"
LOG_KEY = b"demo log key of node 7 for demo"  # a board's own log key (fieldlog)
REGION_KEY = b"demo region key, not for deployment"
HOME_NODE = 7
HOME_KEY = b"demo home key of node 7"
HOME_SPI = auth.spi_home(HOME_NODE)

AGENT = ipv4.aton("10.0.0.1")
AGENT2 = ipv4.aton("10.0.0.2")
HOME_AGENT = ipv4.aton("10.9.0.1")
MOBILE = ipv4.aton("10.1.0.7")
PEER = ipv4.aton("10.1.0.9")
NONCE = 0x5EED1234


def samples():
    """[(name, message, frame)]: message is the object encoded (Advertisement, Solicitation,
    RegRequest, RegReply, Publication) or, for datagrams and tunnels, a dict of what was sent."""
    out = []
    adv = advert.Advertisement(
        src=AGENT,
        adv_lifetime=30,
        seq=1234,
        reg_lifetime=600,
        flags=advert.FLAG_R | advert.FLAG_F | advert.FLAG_T,
        services=advert.SVC_ROUTING | advert.SVC_REVERSE | advert.SVC_REGION,
        capacity=12,
        load=5,
        outage_in=3600,
        outage_for=120,
        nonce=NONCE,
    )
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
    )
    out.append(("host_reply", reply, advert.encode_advertisement(reply, CELL_KEY)))
    for level, attempt in ((advert.LEVEL_ROUTING, 0), (advert.LEVEL_HOST, 4)):
        sol = advert.Solicitation(src=MOBILE, level=level, attempt=attempt)
        out.append((f"solicitation_level_{level}", sol, advert.encode_solicitation(sol, CELL_KEY)))
    local = registration.RegRequest(
        src=MOBILE,
        dst=AGENT,
        flags=registration.FLAG_S,
        lifetime=300,
        home=MOBILE,
        home_agent=HOME_AGENT,
        coa=AGENT,
        ident=registration.make_ident(NONCE, 17),
        ext_type=registration.EXT_MF_AUTH,
        spi=auth.SPI_CELL,
    )
    out.append(("request_local", local, registration.encode_request(local, CELL_KEY)))
    remote = registration.RegRequest(
        src=MOBILE,
        dst=HOME_AGENT,
        lifetime=900,
        home=MOBILE,
        home_agent=HOME_AGENT,
        coa=AGENT,
        ident=registration.make_ident(0x0A0B0C0D, 3),
        ext_type=registration.EXT_MH_AUTH,
        spi=HOME_SPI,
    )
    out.append(("request_remote", remote, registration.encode_request(remote, HOME_KEY)))
    for code, ext, spi, key, lifetime, src, ident in (
        (0, registration.EXT_MF_AUTH, auth.SPI_CELL, CELL_KEY, 300, AGENT, local.ident),
        (66, registration.EXT_MF_AUTH, auth.SPI_CELL, CELL_KEY, 0, AGENT, local.ident),
        (
            133,
            registration.EXT_MH_AUTH,
            HOME_SPI,
            HOME_KEY,
            0,
            HOME_AGENT,
            registration.make_ident(0x7777AAAA, 41),
        ),
    ):
        rep = registration.RegReply(
            src=src,
            dst=MOBILE,
            code=code,
            lifetime=lifetime,
            home=MOBILE,
            home_agent=HOME_AGENT,
            ident=ident,
            ext_type=ext,
            spi=spi,
        )
        out.append((f"reply_{code}", rep, registration.encode_reply(rep, key)))
    pub = publication.Publication(
        origin=AGENT,
        epoch=9,
        seq=65535,
        full=False,
        bindings=[(MOBILE, 300), (ipv4.aton("10.1.0.8"), 45)],
        withdrawals=[ipv4.aton("10.1.0.3"), ipv4.aton("10.1.0.4")],
    )
    out.append(
        (
            "publication",
            pub,
            publication.packet(AGENT, AGENT2, publication.encode_payload(pub, REGION_KEY)),
        )
    )
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
        (
            "publication_snapshot",
            snapshot,
            publication.packet(AGENT2, AGENT, publication.encode_payload(snapshot, REGION_KEY)),
        )
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

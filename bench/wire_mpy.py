"""The addresses and the messages that the wire benchmarks (bench/fuzz_wire_mpy.py,
bench/wire_cost_mpy.py) and the sample capture (tools/make_sample_pcap.py) build their frames
from: one builder a message type, what the fixed roles make the same (a mobile node MOBILE at
home behind HOME_AGENT, visiting AGENT) built in, what each user varies given by it.

And the clock they time with: ``now_us()``, then ``us_since(t0)`` (microseconds, an int on
MicroPython, a float on CPython). Runs unchanged on MicroPython and CPython (firmware/ on the
path).
"""

from mobility import advert, auth, publication, registration
from mobility.registration import EXT_MF_AUTH, EXT_MH_AUTH

try:
    from time import ticks_diff, ticks_us

    now_us = ticks_us

    def us_since(t0):
        return ticks_diff(ticks_us(), t0)

except ImportError:  # CPython
    from time import perf_counter  # type: ignore[attr-defined]

    now_us = perf_counter  # (seconds: us_since makes microseconds of them)

    def us_since(t0):
        return (perf_counter() - t0) * 1000000


AGENT = bytes((10, 0, 0, 1))
AGENT2 = bytes((10, 0, 0, 2))
HOME_AGENT = bytes((10, 9, 0, 1))
MOBILE = bytes((10, 1, 0, 7))
PEER = bytes((10, 1, 0, 9))

# what an agent offers: routing, reverse tunnels, the region (with the flags that go with them)
FLAGS = advert.FLAG_R | advert.FLAG_F | advert.FLAG_T
SERVICES = advert.SVC_ROUTING | advert.SVC_REVERSE | advert.SVC_REGION


def advertisement(seq, capacity, load, nonce, **more):
    """AGENT's broadcast (lifetimes 30 s and 600 s); ``more``: other Advertisement fields."""
    offer = {"flags": FLAGS, "services": SERVICES}
    offer.update(more)
    return advert.Advertisement(
        src=AGENT,
        adv_lifetime=30,
        seq=seq,
        reg_lifetime=600,
        capacity=capacity,
        load=load,
        nonce=nonce,
        **offer,
    )


def local_request(ident, **more):
    """MOBILE's request to AGENT for a local binding (300 s, S set); ``more``: the auth."""
    return registration.RegRequest(
        src=MOBILE,
        dst=AGENT,
        flags=registration.FLAG_S,
        lifetime=300,
        home=MOBILE,
        home_agent=HOME_AGENT,
        coa=AGENT,
        ident=ident,
        **more,
    )


def remote_request(lifetime, ident, spi):
    """MOBILE's request to HOME_AGENT, AGENT its care-of address, signed with its home key."""
    # src, dst, flags, lifetime, home, home_agent, coa, ident, ext_type, spi
    return registration.RegRequest(
        MOBILE, HOME_AGENT, 0, lifetime, MOBILE, HOME_AGENT, AGENT, ident, EXT_MH_AUTH, spi
    )


def reply(src, code, lifetime, ident, ext_type=EXT_MF_AUTH, spi=auth.SPI_NODE):
    """The answer from ``src`` (AGENT or HOME_AGENT) to one of MOBILE's requests."""
    # src, dst, code, lifetime, home, home_agent, ident, ext_type, spi
    return registration.RegReply(
        src, MOBILE, code, lifetime, MOBILE, HOME_AGENT, ident, ext_type, spi
    )


def publication_frame(pub, dst, key):
    """The frame that carries Publication ``pub`` from its origin to agent ``dst``, ended by
    the hop tag for that hop (as every copy on the wire)."""
    keys = auth.Keys({auth.SPI_REGION: key})
    return publication.hop_packet(keys, pub.origin, dst, publication.encode_payload(pub, key))

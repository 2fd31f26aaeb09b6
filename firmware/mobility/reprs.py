"""Readable reprs of the protocol's messages: ``Name(field=value, ...)``, addresses as dotted
quads, for tests, the host's tools and a REPL; and each message's fields (``fields``: what the
wire tests compare). ``install()`` gives the message classes their ``__repr__``;
tests/conftest.py and tests/run_mpy.py call it.

No role imports this module: a board never prints a message, and on a board every byte of code
and every tuple of names is heap (the field lists and the method took an agent 0.6 KB at 32
bits when each class carried them).
"""

from mobility import advert, ipv4, publication, registration

_FIELDS = {
    ipv4.Header: ("src", "dst", "proto", "ttl", "ident", "length", "payload"),
    advert.Advertisement: (
        "src",
        "dst",
        "adv_lifetime",
        "seq",
        "reg_lifetime",
        "flags",
        "coa",
        "services",
        "capacity",
        "load",
        "outage_in",
        "outage_for",
        "nonce",
        "spi",
        "is_host_reply",
        "challenge",
        "mac",
    ),
    advert.Solicitation: ("src", "level", "attempt", "spi", "dst", "challenge"),
    publication.Publication: (
        "origin",
        "epoch",
        "seq",
        "full",
        "bindings",
        "withdrawals",
        "spi",
        "part",
        "last",
    ),
    registration.RegRequest: (
        "src",
        "dst",
        "flags",
        "lifetime",
        "home",
        "home_agent",
        "coa",
        "ident",
        "ext_type",
        "spi",
        "node_mac",
        "agent_mac",
        "agent_seq",
    ),
    registration.RegReply: (
        "src",
        "dst",
        "code",
        "lifetime",
        "home",
        "home_agent",
        "ident",
        "ext_type",
        "spi",
        "node_mac",
        "agent_mac",
        "req_ident",
    ),
}


def _names(msg):
    names = _FIELDS.get(type(msg))
    if names is None:  # a subclass (the simulator's read-only shared messages)
        for cls in _FIELDS:
            if isinstance(msg, cls):
                return _FIELDS[cls]
        raise TypeError("not a message: %r" % (type(msg),))
    return names


def fields(msg):
    """The values of ``msg``'s fields, in order: what the repr shows, and what a message's
    round trip through the wire must keep (the wire tests compare them)."""
    return [getattr(msg, name) for name in _names(msg)]


def message_repr(msg):
    parts = []
    for name in _names(msg):
        v = getattr(msg, name)
        if isinstance(v, (bytes, bytearray)) and len(v) == 4:
            v = ipv4.ntoa(v)
        parts.append("%s=%r" % (name, v))
    return "%s(%s)" % (type(msg).__name__, ", ".join(parts))


def install():
    for cls in _FIELDS:
        cls.__repr__ = message_repr

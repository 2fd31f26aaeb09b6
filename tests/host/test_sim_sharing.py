"""The simulator's sharing of decodings and verdicts (hosttools/sim/sharing.py) changes no
result: CPython's checksum sum against the board's loop, runs with and without the sharing,
shared messages read-only, verdicts per key, and nothing of it in the core itself."""

import copy
import random
import tomllib
from pathlib import Path

import pytest

from hosttools.sim import run, scenario, sharing
from mobility import advert, auth, ipv4
from mobility.errors import DecodeError

CORE_DIR = Path(__file__).resolve().parents[2] / "firmware" / "mobility"


@pytest.fixture
def shared():
    sharing.install()
    yield
    sharing.uninstall()


@pytest.fixture
def plain():
    was = sharing.installed()
    sharing.uninstall()
    yield
    if was:
        sharing.install()


def test_bigint_sum_folds_as_the_word_loop(plain):
    rnd = random.Random(12345)
    bufs = [bytes(0), bytes(1), bytes(20), b"\xff" * 20, b"\xff" * 21, b"\x00\x01" * 9]
    for n in (1, 2, 3, 19, 20, 21, 83, 250):
        bufs += [rnd.randbytes(n) for _ in range(20)]
    for b in bufs:
        for start in (0, 1, 2):
            if start > len(b):
                continue
            for init in (0, 1, 0xFFFF, 0x2345F):
                w = ipv4._fold(ipv4._sum(b, start, len(b), init))
                g = ipv4._fold(sharing.sum_bigint(bytearray(b), start, len(b), init))
                assert w == g, (b, start, init)


def _short(name, duration_s):
    with open(scenario.builtin_path(name), "rb") as f:
        data = tomllib.load(f)
    data["duration_s"] = duration_s
    return scenario.from_dict(copy.deepcopy(data), name + ".toml", scenario.BUILTIN_DIR)


def _summary(sc, share, monkeypatch):
    with monkeypatch.context() as m:
        if not share:  # run.run installs the sharing: here it installs nothing
            m.setattr(sharing, "install", lambda: None)
            sharing.uninstall()
        s, _w = run.run(sc, 1, "/nonexistent", write=False)
    assert sharing.installed() == share
    return run.run_figures(s)


@pytest.mark.parametrize("name,duration_s", [("walk", 40), ("attacker", 30)])
def test_sharing_changes_no_result(name, duration_s, monkeypatch):
    sc = _short(name, duration_s)
    assert _summary(sc, False, monkeypatch) == _summary(sc, True, monkeypatch)


def test_shared_decoded_messages_are_read_only(shared):
    key = b"k" * 16
    adv = advert.Advertisement(src=b"\x0a\x00\x00\x01", seq=5, nonce=9)
    pkt = advert.encode_advertisement(adv, key)
    h1 = ipv4.decode(bytearray(pkt))
    h2 = ipv4.decode(bytearray(pkt))
    assert h1 is h2  # the second receiver shares the first one's decoding
    m = advert.decode_icmp(h1)
    assert advert.decode_icmp(h2) is m and isinstance(m, advert.Advertisement)
    for obj, field in ((h1, "ttl"), (m, "seq")):
        with pytest.raises(AttributeError):
            setattr(obj, field, 0)
    keys = auth.Keys({auth.SPI_CELL: key})
    other = auth.Keys({auth.SPI_CELL: b"x" * 16})
    assert m.verify(keys) and m.verify(keys)
    assert not m.verify(other)  # the verdict is per key, not per message
    assert keys.check(auth.SPI_CELL, keys.tag(auth.SPI_CELL, b"abc"), b"abc")
    assert not other.check(auth.SPI_CELL, keys.tag(auth.SPI_CELL, b"abc"), b"abc")


def test_errors_are_not_shared(shared):
    bad = bytearray(advert.encode_advertisement(advert.Advertisement(src=b"\x0a\0\0\1"), b"k" * 16))
    bad[10] ^= 0xFF  # the header checksum
    for _ in range(2):  # each receiver meets its own error
        with pytest.raises(DecodeError):
            ipv4.decode(bad)
    with pytest.raises(DecodeError):
        ipv4.decode("not bytes")


def test_plain_core_decodes_mutable_copies(plain):
    pkt = advert.encode_advertisement(advert.Advertisement(src=b"\x0a\0\0\1"), b"k" * 16)
    h1, h2 = ipv4.decode(pkt), ipv4.decode(pkt)
    assert h1 is not h2
    h1.ttl = 3  # a board's decoded message is its own
    assert h2.ttl != 3


def test_the_core_has_no_interpreter_switch():
    for path in sorted(CORE_DIR.glob("*.py")):
        text = path.read_text()
        assert "sys.implementation" not in text, path.name
        assert "set_memo" not in text, path.name

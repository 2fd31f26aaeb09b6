"""The shared-memory ring between the world and its worker (hosttools/sim/ring.py)."""

import hashlib
import multiprocessing
import os
import random

import pytest

from hosttools.sim import ring


def _echo_digests(inbound, outbound):
    while True:
        m = inbound.recv()
        if not m:
            break
        outbound.send(hashlib.sha256(m).digest() + m[:3])


def test_messages_cross_in_order_through_many_wraps():
    out, back = ring.Ring(1 << 15), ring.Ring(1 << 15)
    proc = multiprocessing.get_context("fork").Process(target=_echo_digests, args=(out, back))
    proc.start()
    out.alive = back.alive = proc.is_alive
    rnd = random.Random(5)
    try:
        sent = 0
        for i in range(3000):
            m = os.urandom(rnd.choice([1, 7, 8, 9, 100, 4000, 9000, rnd.randrange(1, 16000)]))
            out.send(m)
            sent += len(m)
            assert back.recv() == hashlib.sha256(m).digest() + m[:3], i
        assert sent > 20 * out.cap  # the ring wrapped many times
        out.send(b"")
    finally:
        proc.join(10)
    assert proc.exitcode == 0


def test_a_burst_fills_the_ring_and_waits_for_room():
    out, back = ring.Ring(1 << 14), ring.Ring(1 << 14)
    proc = multiprocessing.get_context("fork").Process(target=_echo_digests, args=(out, back))
    proc.start()
    out.alive = back.alive = proc.is_alive
    msgs = [bytes([i]) * 3000 for i in range(40)]  # 120 kB into 16 kB: the writer must wait
    got = []
    try:
        for m in msgs[:4]:
            out.send(m)
        for m in msgs[4:]:
            got.append(back.recv())
            out.send(m)
        got += [back.recv() for _ in range(4)]
        out.send(b"")
    finally:
        proc.join(10)
    assert got == [hashlib.sha256(m).digest() + m[:3] for m in msgs]


def test_too_big_a_message_is_refused():
    r = ring.Ring(1 << 12)
    with pytest.raises(ValueError, match="does not fit"):
        r.send(b"x" * 3000)


def _exit_at_once():
    os._exit(3)


def test_a_dead_peer_ends_the_wait(monkeypatch):
    monkeypatch.setattr(ring, "SPINS", 10)
    monkeypatch.setattr(ring, "ALIVE_EVERY", 10)
    r = ring.Ring(1 << 12)
    proc = multiprocessing.get_context("fork").Process(target=_exit_at_once)
    proc.start()
    r.alive = proc.is_alive
    with pytest.raises(ring.RingClosed):
        r.recv()  # nothing will ever come
    proc.join()

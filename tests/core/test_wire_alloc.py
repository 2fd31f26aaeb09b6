"""The forwarding hot path allocates nothing on MicroPython (measured with micropython.mem_total,
which the unix port has). Skipped on CPython, where allocation is not observable this way."""

import gc
import sys
import unittest

from mobility import advert, advreplay, ipv4, publication, registration, request

IS_MPY = sys.implementation.name == "micropython"


def allocated(fn, arg, rounds=200):
    import micropython

    fn(arg)  # warm up (first call may intern/cache)
    gc.collect()
    before = micropython.mem_total()
    for _ in range(rounds):
        fn(arg)
    return micropython.mem_total() - before


@unittest.skipUnless(IS_MPY, "allocation is measured on MicroPython only")
class TestNoAllocation(unittest.TestCase):
    def setUp(self):
        import micropython

        self.assertTrue(hasattr(micropython, "mem_total"), "this build lacks micropython.mem_total")
        self.buf = bytearray(
            ipv4.udp(b"\x0a\x00\x00\x01", b"\xc0\xa8\x01\x07", 5000, 5000, bytes(100))
        )

    def test_baseline_measures_allocation(self):
        # the measurement itself must see an allocation when there is one
        self.assertGreater(allocated(lambda b: b[0:8], self.buf), 0)

    def test_dec_ttl(self):
        buf = self.buf

        def hop(b):
            if not ipv4.dec_ttl(b):
                b[8] = 255  # reset TTL (checksum no longer matters for the measurement)

        self.assertEqual(allocated(hop, buf), 0)

    def test_addr_key(self):
        buf = self.buf
        mv = memoryview(buf)
        self.assertEqual(allocated(lambda b: ipv4.addr_key(b, 16), buf), 0)
        self.assertEqual(allocated(lambda b: ipv4.addr_key(b, 12), mv), 0)

    def test_read_in_place(self):
        pkt = bytearray(publication.packet(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", bytes(40)))

        def read(b):
            ipv4.plain(b)
            publication.is_publication(b)
            publication.epoch_at(b, publication.PAYLOAD_AT)
            publication.seq_at(b, publication.PAYLOAD_AT)

        self.assertEqual(allocated(read, pkt), 0)

    def test_replay_windows_steady_state(self):
        # (the advertisements' window: a mobile node checks several a second. A region's
        # publications are judged by published.Origins, whose calls have more than 11 words of
        # locals, so MicroPython takes their frames from the heap and frees them at return:
        # a few hundred bytes a publication, on the control path, no garbage)
        a = advreplay.AdvWindow()
        a.accept(5, 1, 7)
        a.accept(6, 1, 7, 1)
        state = [1]

        def step(_):
            state[0] = (state[0] + 1) & 0xFFFF
            a.accept(5, state[0], 7)

        def step_timed(_):
            # with the time (the hold check); few names: closed-over names take frame slots
            state[0] = (state[0] + 1) & 0xFFFF
            a.accept(6, state[0], 7, state[0])

        self.assertEqual(allocated(step, None), 0)
        self.assertEqual(allocated(step_timed, None), 0)

    def test_control_messages_decoded_into_the_agents_own(self):
        # An agent decodes each advertisement, solicitation and registration it hears into
        # messages it keeps (advert.decode_icmp, registration.decode_registration ``into``): a
        # new message object grows its attribute table step by step to ~20 entries, the largest
        # block an agent allocated per frame (a plain ESP32 agent ran out there, its heap in
        # pieces). What is left is the slices of the frame the fields are and the checks'
        # frames; a new message's table is over 1 KB on this 64-bit port (half on a board).
        key = bytes(range(16))
        a, b = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
        adv = ipv4.decode(
            advert.encode_advertisement(
                advert.Advertisement(src=a, seq=3, mac=b"\x02\x00\x00\x00\x00\x01"), key
            )
        )
        req = ipv4.decode(
            request.encode_request(
                registration.RegRequest(
                    src=b, dst=a, lifetime=30, home=b, coa=a, node_mac=bytes(6), agent_mac=bytes(6)
                ),
                key,
            )
        )
        icmp_rx = (advert.Advertisement(), advert.Solicitation())
        reg_rx = (registration.RegRequest(), registration.RegReply())
        for h, fresh, into in (
            (adv, lambda h: advert.decode_icmp(h), lambda h: advert.decode_icmp(h, icmp_rx)),
            (
                req,
                lambda h: registration.decode_registration(h),
                lambda h: registration.decode_registration(h, reg_rx),
            ),
        ):
            self.assertIs(into(h), into(h))
            saved = (allocated(fresh, h) - allocated(into, h)) // 200
            self.assertGreater(saved, 800)

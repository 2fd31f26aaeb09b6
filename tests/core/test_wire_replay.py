import unittest

from mobility import advreplay, published, replay, request, ticks


class TestIdentCheck(unittest.TestCase):
    def setUp(self):
        self.check = replay.IdentCheck(0xA1B2C3D4)

    def test_counter_must_grow(self):
        c = self.check
        self.assertEqual(c.accept(7, request.make_ident(0xA1B2C3D4, 1)), replay.ACCEPTED)
        self.assertEqual(c.accept(7, request.make_ident(0xA1B2C3D4, 1)), replay.IDENT_MISMATCH)
        self.assertEqual(c.accept(7, request.make_ident(0xA1B2C3D4, 5)), replay.ACCEPTED)
        self.assertEqual(c.accept(7, request.make_ident(0xA1B2C3D4, 4)), replay.IDENT_MISMATCH)
        self.assertEqual(c.reply_ident(7), request.make_ident(0xA1B2C3D4, 5))
        # another home address has its own counter
        self.assertEqual(c.accept(8, request.make_ident(0xA1B2C3D4, 2)), replay.ACCEPTED)

    def test_counter_zero_and_wrong_nonce(self):
        c = self.check
        self.assertEqual(c.accept(7, request.make_ident(0xA1B2C3D4, 0)), 133)
        self.assertEqual(c.accept(7, request.make_ident(0x11111111, 9)), 133)
        self.assertEqual(c.reply_ident(7), request.make_ident(0xA1B2C3D4, 0))

    def test_sender_recovers_after_receiver_restart(self):
        sender = request.IdentCounter()
        first = replay.IdentCheck(0x1000)
        self.assertEqual(first.accept(1, sender.next(0x1000)), 0)
        self.assertEqual(first.accept(1, sender.next(0x1000)), 0)
        old = sender.next(0x1000)
        self.assertEqual(first.accept(1, old), 0)
        restarted = replay.IdentCheck(0x2000)  # new boot nonce, no memory
        self.assertEqual(restarted.accept(1, old), 133)  # the old request is a replay now
        nonce = sender.adopt(restarted.reply_ident(1))
        self.assertEqual(nonce, 0x2000)
        self.assertEqual(restarted.accept(1, sender.next(nonce)), 0)

    def test_adopt_moves_counter_up_only(self):
        s = request.IdentCounter(10)
        self.assertEqual(s.adopt(request.make_ident(5, 50)), 5)
        self.assertEqual(s.next(5) & 0xFFFFFFFF, 51)
        s.adopt(request.make_ident(5, 3))
        self.assertEqual(s.next(5) & 0xFFFFFFFF, 52)

    def test_forget(self):
        c = self.check
        c.accept(7, request.make_ident(0xA1B2C3D4, 9))
        c.forget(7)
        self.assertEqual(c.accept(7, request.make_ident(0xA1B2C3D4, 1)), 0)


class TestPublicationOrigins(unittest.TestCase):
    """A region's publications are judged per origin by published.Origins (region.py); the
    rules a replay meets. Times are past the late parts' hold unless said."""

    def setUp(self):
        self.o = published.Origins(2, 1000, 90000)

    def test_publication_rules(self):
        o = self.o
        self.assertNotEqual(o.accept(0, 1, 5, 100), published.REFUSED)  # first heard
        self.assertNotEqual(o.accept(10, 1, 5, 101), published.REFUSED)
        self.assertEqual(o.accept(20, 1, 5, 101), published.REFUSED)  # duplicate, while late
        self.assertEqual(o.accept(5000, 1, 5, 101), published.REFUSED)  # duplicate
        self.assertEqual(o.accept(5000, 1, 5, 90), published.REFUSED)  # old sequence
        self.assertEqual(o.accept(5000, 1, 4, 500), published.REFUSED)  # old epoch
        self.assertEqual(o.accept(6000, 1, 6, 0), published.RESTARTED)  # origin rebooted
        self.assertEqual(o.was, 5)
        self.assertNotEqual(o.accept(6010, 1, 6, 1), published.REFUSED)  # its new line goes on
        self.assertEqual(o.accept(9000, 1, 5, 102), published.REFUSED)  # the old line is over
        self.assertEqual(o.epoch[1], 6)
        self.assertEqual(o.epoch[0], -1)  # the other origin: nothing taken

    def test_wraps(self):
        o = self.o
        o.accept(0, 1, 0xFFFF, 0xFFFE)
        self.assertNotEqual(o.accept(10, 1, 0xFFFF, 0xFFFF), published.REFUSED)
        self.assertNotEqual(o.accept(20, 1, 0xFFFF, 0), published.REFUSED)  # sequence wrapped
        self.assertEqual(o.accept(5000, 1, 0xFFFF, 0xFFFF), published.REFUSED)
        self.assertEqual(o.accept(5010, 1, 0, 0), published.RESTARTED)  # epoch wrapped


def boot(epoch, low=0x1234):
    """An agent's boot nonce: epoch (16 bits) || random (16 bits)."""
    return (epoch << 16) | low


class TestAdvWindow(unittest.TestCase):
    def test_advertisement_rules(self):
        w = advreplay.AdvWindow()
        a, b = boot(7, 0xAAAA), boot(8, 0x0001)
        self.assertEqual(w.accept(3, 1000, a), advreplay.RESTARTED)
        self.assertEqual(w.accept(3, 1001, a), advreplay.NEWER)
        self.assertEqual(w.accept(3, 1001, a), advreplay.REPLAY)
        self.assertEqual(w.accept(3, 999, a), advreplay.REPLAY)
        self.assertEqual(w.accept(3, 0, a), advreplay.REPLAY)  # low seq, same nonce: not a reboot
        self.assertEqual(w.accept(3, 2, b), advreplay.RESTARTED)  # reboot: a later epoch
        self.assertEqual(w.accept(3, 1002, a), advreplay.REPLAY)  # the old boot replayed
        self.assertEqual(w.accept(3, 3, b), advreplay.NEWER)

    def test_reboot_with_high_sequence_is_accepted_when_the_epoch_is_newer(self):
        # the agent rebooted out of earshot and advertised for a while before we hear it
        w = advreplay.AdvWindow()
        w.accept(3, 10, boot(1))
        self.assertEqual(w.accept(3, 5000, boot(2)), advreplay.RESTARTED)
        self.assertEqual(w.held(3), (5000, boot(2)))
        self.assertEqual(len(w), 1)

    def test_earlier_or_same_epoch_under_another_nonce_is_a_replay(self):
        w = advreplay.AdvWindow()
        w.accept(3, 100, boot(5, 0xAAAA))
        self.assertEqual(w.accept(3, 0, boot(4, 0xBBBB)), advreplay.REPLAY)  # an earlier boot
        self.assertEqual(w.accept(3, 0, boot(5, 0xCCCC)), advreplay.REPLAY)  # same epoch
        self.assertEqual(w.accept(3, 60000, boot(3)), advreplay.REPLAY)
        self.assertEqual(w.held(3), (100, boot(5, 0xAAAA)))  # nothing moved

    def test_every_earlier_boot_stays_refused(self):
        # (the old rule refused only the boot the last reboot replaced)
        w = advreplay.AdvWindow()
        w.accept(3, 100, boot(1))
        self.assertEqual(w.accept(3, 0, boot(2)), advreplay.RESTARTED)
        self.assertEqual(w.accept(3, 0, boot(3)), advreplay.RESTARTED)
        for e in (1, 2):
            self.assertEqual(w.accept(3, 0, boot(e)), advreplay.REPLAY)
            self.assertEqual(w.accept(3, 200, boot(e)), advreplay.REPLAY)

    def test_epoch_wraps(self):
        w = advreplay.AdvWindow()
        w.accept(3, 5, boot(0xFFFF))
        self.assertEqual(w.accept(3, 0, boot(0)), advreplay.RESTARTED)
        self.assertEqual(w.accept(3, 9, boot(0xFFFF)), advreplay.REPLAY)

    def test_sequence_wrap_same_boot(self):
        w = advreplay.AdvWindow()
        w.accept(3, 0xFFFF, 9)
        self.assertEqual(w.accept(3, 0, 9), advreplay.NEWER)


class TestAdvWindowCache(unittest.TestCase):
    def test_bounded_the_longest_unheard_makes_room(self):
        w = advreplay.AdvWindow(size=3)
        w.accept(1, 10, boot(1), 1000)
        w.accept(2, 10, boot(1), 2000)
        w.accept(3, 10, boot(1), 3000)
        w.accept(1, 11, boot(1), 4000)  # agent 1 heard again: agent 2 is now the oldest
        self.assertEqual(w.accept(4, 10, boot(1), 5000), advreplay.RESTARTED)
        self.assertEqual(len(w), 3)
        self.assertIsNone(w.held(2))
        self.assertEqual(w.held(1), (11, boot(1)))
        self.assertEqual(w.accept(1, 11, boot(1), 6000), advreplay.REPLAY)
        self.assertEqual(w.accept(3, 10, boot(1), 6000), advreplay.REPLAY)

    def test_entry_too_old_to_compare_starts_again(self):
        w = advreplay.AdvWindow(hold_ms=60000)
        w.accept(1, 100, boot(1), 0)
        self.assertEqual(w.accept(1, 50, boot(1), 60000), advreplay.REPLAY)  # within the hold
        # after the hold (no frame accepted meanwhile) a 16-bit sequence says nothing
        self.assertEqual(w.accept(1, 50, boot(1), 60001), advreplay.RESTARTED)
        self.assertEqual(w.accept(1, 50, boot(1), 60002), advreplay.REPLAY)

    def test_hold_is_wrap_safe(self):
        w = advreplay.AdvWindow(hold_ms=60000)
        t0 = ticks.add(0, -1000)  # just before the ticks wrap
        w.accept(1, 100, boot(1), t0)
        self.assertEqual(w.accept(1, 99, boot(1), ticks.add(t0, 30000)), advreplay.REPLAY)
        self.assertEqual(w.accept(1, 101, boot(1), ticks.add(t0, 50000)), advreplay.NEWER)

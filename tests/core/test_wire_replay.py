import unittest

from mobility import registration as reg
from mobility import replay


class TestIdentCheck(unittest.TestCase):
    def setUp(self):
        self.check = replay.IdentCheck(0xA1B2C3D4)

    def test_counter_must_grow(self):
        c = self.check
        self.assertEqual(c.accept(7, reg.make_ident(0xA1B2C3D4, 1)), replay.ACCEPTED)
        self.assertEqual(c.accept(7, reg.make_ident(0xA1B2C3D4, 1)), replay.IDENT_MISMATCH)
        self.assertEqual(c.accept(7, reg.make_ident(0xA1B2C3D4, 5)), replay.ACCEPTED)
        self.assertEqual(c.accept(7, reg.make_ident(0xA1B2C3D4, 4)), replay.IDENT_MISMATCH)
        self.assertEqual(c.reply_ident(7), reg.make_ident(0xA1B2C3D4, 5))
        # another home address has its own counter
        self.assertEqual(c.accept(8, reg.make_ident(0xA1B2C3D4, 2)), replay.ACCEPTED)

    def test_counter_zero_and_wrong_nonce(self):
        c = self.check
        self.assertEqual(c.accept(7, reg.make_ident(0xA1B2C3D4, 0)), 133)
        self.assertEqual(c.accept(7, reg.make_ident(0x11111111, 9)), 133)
        self.assertEqual(c.reply_ident(7), reg.make_ident(0xA1B2C3D4, 0))

    def test_sender_recovers_after_receiver_restart(self):
        sender = replay.IdentCounter()
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
        s = replay.IdentCounter(10)
        self.assertEqual(s.adopt(reg.make_ident(5, 50)), 5)
        self.assertEqual(reg.ident_counter(s.next(5)), 51)
        s.adopt(reg.make_ident(5, 3))
        self.assertEqual(reg.ident_counter(s.next(5)), 52)

    def test_forget(self):
        c = self.check
        c.accept(7, reg.make_ident(0xA1B2C3D4, 9))
        c.forget(7)
        self.assertEqual(c.accept(7, reg.make_ident(0xA1B2C3D4, 1)), 0)


class TestSeqWindow(unittest.TestCase):
    def test_publication_rules(self):
        w = replay.SeqWindow()
        self.assertEqual(w.accept(1, 5, 100), replay.RESTARTED)  # first heard
        self.assertEqual(w.accept(1, 5, 101), replay.NEWER)
        self.assertEqual(w.accept(1, 5, 101), replay.REPLAY)  # duplicate
        self.assertEqual(w.accept(1, 5, 90), replay.REPLAY)  # old sequence
        self.assertEqual(w.accept(1, 4, 500), replay.REPLAY)  # old epoch
        self.assertEqual(w.accept(1, 6, 0), replay.RESTARTED)  # origin rebooted
        self.assertEqual(w.accept(1, 5, 102), replay.REPLAY)
        self.assertEqual(w.get(1), (6, 0))
        self.assertIsNone(w.get(2))
        self.assertEqual(len(w), 1)

    def test_wraps(self):
        w = replay.SeqWindow()
        w.accept(1, 0xFFFF, 0xFFFE)
        self.assertEqual(w.accept(1, 0xFFFF, 0xFFFF), replay.NEWER)
        self.assertEqual(w.accept(1, 0xFFFF, 0), replay.NEWER)
        self.assertEqual(w.accept(1, 0xFFFF, 0xFFFF), replay.REPLAY)
        self.assertEqual(w.accept(1, 0, 0), replay.RESTARTED)  # epoch wrapped
        w.forget(1)
        self.assertEqual(w.accept(1, 0xFFFF, 1), replay.RESTARTED)


class TestAdvWindow(unittest.TestCase):
    def test_advertisement_rules(self):
        w = replay.AdvWindow()
        self.assertEqual(w.accept(3, 1000, 0xAAAA), replay.RESTARTED)
        self.assertEqual(w.accept(3, 1001, 0xAAAA), replay.NEWER)
        self.assertEqual(w.accept(3, 1001, 0xAAAA), replay.REPLAY)
        self.assertEqual(w.accept(3, 999, 0xAAAA), replay.REPLAY)
        self.assertEqual(w.accept(3, 0, 0xAAAA), replay.REPLAY)  # low seq, same nonce: not a reboot
        self.assertEqual(w.accept(3, 2, 0xBBBB), replay.RESTARTED)  # reboot: new nonce, low seq
        self.assertEqual(w.accept(3, 1002, 0xAAAA), replay.REPLAY)  # the old boot replayed
        self.assertEqual(w.accept(3, 3, 0xBBBB), replay.NEWER)

    def test_new_nonce_with_high_seq_needs_forget(self):
        w = replay.AdvWindow()
        w.accept(3, 10, 1)
        self.assertEqual(w.accept(3, 5000, 2), replay.REPLAY)
        w.forget(3)
        self.assertEqual(w.accept(3, 5000, 2), replay.RESTARTED)
        self.assertEqual(len(w), 1)

    def test_sequence_wrap_same_boot(self):
        w = replay.AdvWindow()
        w.accept(3, 0xFFFF, 9)
        self.assertEqual(w.accept(3, 0, 9), replay.NEWER)


class TestAdvWindowPreviousBoot(unittest.TestCase):
    def test_reboot_back_to_the_replaced_nonce_is_a_replay(self):
        w = replay.AdvWindow()
        w.accept(3, 100, 0xAAAA)
        self.assertEqual(w.accept(3, 0, 0xBBBB), replay.RESTARTED)
        self.assertEqual(w.accept(3, 101, 0xAAAA), replay.REPLAY)
        self.assertEqual(w.accept(3, 5, 0xAAAA), replay.REPLAY)  # low seq of the previous boot
        self.assertEqual(w.accept(3, 0, 0xCCCC), replay.RESTARTED)  # a further real reboot
        self.assertEqual(w.accept(3, 1, 0xBBBB), replay.REPLAY)

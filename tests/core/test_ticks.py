import unittest

from mobility import ticks


class TestTicks(unittest.TestCase):
    def test_period_is_2_pow_30(self):
        self.assertEqual(ticks.PERIOD, 1 << 30)

    def test_add_wraps(self):
        self.assertEqual(ticks.add(ticks.PERIOD - 10, 25), 15)
        self.assertEqual(ticks.add(5, -10), ticks.PERIOD - 5)
        self.assertEqual(ticks.add(100, 0), 100)

    def test_diff_across_the_wrap(self):
        before = ticks.PERIOD - 100
        after = ticks.add(before, 250)
        self.assertEqual(after, 150)
        self.assertEqual(ticks.diff(after, before), 250)
        self.assertEqual(ticks.diff(before, after), -250)

    def test_diff_plain(self):
        self.assertEqual(ticks.diff(1000, 400), 600)
        self.assertEqual(ticks.diff(400, 1000), -600)
        self.assertEqual(ticks.diff(7, 7), 0)

    def test_diff_inverts_add_at_many_points(self):
        for start in (0, 1, ticks.HALF - 1, ticks.HALF, ticks.PERIOD - 1, 123456789):
            for ms in (0, 1, -1, 1000, -1000, ticks.HALF - 1, -ticks.HALF):
                t = ticks.add(start, ms)
                self.assertTrue(0 <= t < ticks.PERIOD)
                self.assertEqual(ticks.diff(t, start), ms)

    def test_diff_range_is_signed_half_period(self):
        self.assertEqual(ticks.diff(ticks.HALF, 0), -ticks.HALF)
        self.assertEqual(ticks.diff(ticks.HALF - 1, 0), ticks.HALF - 1)

    def test_timer_due_check_across_wrap(self):
        now = ticks.PERIOD - 5
        due = ticks.add(now, 10)  # wrapped: a small number
        self.assertLess(due, now)  # raw comparison would be wrong ...
        self.assertTrue(ticks.diff(now, due) < 0)  # ... diff says not due yet
        self.assertTrue(ticks.diff(ticks.add(now, 10), due) >= 0)

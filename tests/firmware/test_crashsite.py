"""crashsite.py: the crash line's ``at``, where the exception was raised (MicroPython only:
it reads sys.print_exception's traceback)."""

import sys
import unittest

IS_MPY = sys.implementation.name == "micropython"


@unittest.skipUnless(IS_MPY, "sys.print_exception is MicroPython's")
class CrashSiteTest(unittest.TestCase):
    def test_a_crash_line_names_where_it_was_raised(self):
        # (the crash event of driver.serve: a field board's log has no console)
        from crashsite import where

        def inner():
            raise MemoryError("memory allocation failed, allocating 368 bytes")

        def outer():
            inner()

        try:
            outer()
        except MemoryError as e:
            site, one = where(e), where(e, 1)
        frames = site.split(" < ")
        self.assertTrue(frames[0].endswith(":inner"), site)
        self.assertTrue(frames[1].endswith(":outer"), site)
        self.assertIn("test_crashsite", frames[0])
        self.assertEqual(one, frames[0])


if __name__ == "__main__":
    unittest.main()

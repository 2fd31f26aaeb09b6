"""The published-binding table: a preallocated open-addressing hash table, checked against a
dict under random insertions and removals (collisions, wrap at the end of the array, removal
with backward shift)."""

import unittest

from backbone import Rand, line, node_config, region_config

from mobility import settings, ticks
from mobility.published import BindingTable, Published, table_bytes
from mobility.router import Router


def addr(n):
    return bytes((10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


class BindingTableTest(unittest.TestCase):
    def check(self, t, model):
        self.assertEqual(len(t), len(model))
        for a in model:
            self.assertEqual(t.get(a) & 0x7FFFFF, model[a])
        seen = {}
        for i in range(t.size):
            v = t.value_at(i)
            if v:
                seen[t.address(i)] = v & 0x7FFFFF
        self.assertEqual(seen, model)

    def test_random_operations_match_a_dict(self):
        rand = Rand(5)
        t = BindingTable(48)  # 65 slots: many collisions and probes across the end
        model = {}
        for step in range(3000):
            # addresses that collide: few distinct values in the hashed bits
            a = addr((rand(6) << 10) | rand(3))
            if rand(2) == 0 and a in model:
                i = t.find(a)
                self.assertGreaterEqual(i, 0)
                t.remove(i)
                del model[a]
            else:
                v = 1 + rand(20)
                if a in model or len(model) < 48:
                    self.assertTrue(t.put(a, v))
                    model[a] = v
                else:
                    self.assertFalse(t.put(a, v))  # full: refused, nothing changed
            if step % 100 == 0:
                self.check(t, model)
        self.check(t, model)

    def test_missing_address_and_capacity(self):
        t = BindingTable(500)
        self.assertEqual(t.size, 668)  # more than 4/3 of the capacity: never over 3/4 full
        self.assertEqual(len(t.buf), 7 * 668)  # 4.6 KiB for 500 bindings, allocated once
        self.assertEqual(t.get(addr(1)), 0)
        self.assertLess(t.find(addr(1)), 0)
        for n in range(500):
            self.assertTrue(t.put(addr(n), n + 1))
        self.assertFalse(t.put(addr(999), 1))
        self.assertEqual(t.get(addr(499)) & 0xFFFF, 500)


class PublishedExpiryTest(unittest.TestCase):
    """A published binding's expiry is held in 15 bits of 1024 ms (its slot is 7 bytes): it
    wraps every 9.3 hours, with the ticks, so a longer lifetime is held for 4 hours."""

    HOUR = 3600 * 1000

    def test_a_binding_runs_out_when_its_lifetime_does(self):
        for now in (0, 1000, ticks.PERIOD - 5000):  # (the last: across the ticks' wrap)
            t = Published(10)
            t.bind(now, addr(1), 600 * 1000, 3, 1)
            self.assertEqual(t.origin(ticks.add(now, 590 * 1000), addr(1)), 3)
            self.assertEqual(t.origin(ticks.add(now, 603 * 1000), addr(1)), -1)

    def test_a_lifetime_of_many_hours_is_held_four(self):
        t = Published(10)
        now = ticks.PERIOD - 3 * self.HOUR  # the units and the ticks wrap in between
        t.bind(now, addr(1), 18 * self.HOUR, 5, 1)
        self.assertEqual(t.origin(ticks.add(now, 3 * self.HOUR), addr(1)), 5)
        self.assertEqual(t.origin(ticks.add(now, 4 * self.HOUR - 60000), addr(1)), 5)
        self.assertEqual(t.origin(ticks.add(now, 4 * self.HOUR + 60000), addr(1)), -1)
        # (an expiry read more than 4.7 hours late would wrap: the region's sweep, every 5 s,
        # removes what ran out long before)
        self.assertEqual(t.sweep(ticks.add(now, 4 * self.HOUR + 60000)), 1)
        self.assertEqual(len(t), 0)


class ReservedTableTest(unittest.TestCase):
    """A board's start allocates the published table before the role's modules load
    (start.py, settings.published_table_bytes): the region takes that memory and no other."""

    def test_the_region_takes_the_table_reserved_for_it(self):
        members, edges = line(3)
        cfg = region_config(members, edges, members[0], max_published=100)
        n = settings.published_table_bytes(cfg)
        self.assertEqual(n, table_bytes(100))
        buf = cfg["_table"] = bytearray(n)
        r = Router(node_config(1, members[0], region=cfg), Rand(1), 0)
        self.assertIs(r.region.table.buf, buf)
        self.assertEqual(r.region.table.capacity, 100)

    def test_a_buffer_of_another_size_is_not_taken(self):
        buf = bytearray(table_bytes(10))
        t = BindingTable(20, buf)
        self.assertIsNot(t.buf, buf)
        self.assertEqual(len(t.buf), table_bytes(20))
        self.assertIs(BindingTable(10, buf).buf, buf)

    def test_no_size_from_an_unusable_config(self):
        for bad in (0, -1, "512", None):
            self.assertIsNone(settings.published_table_bytes({"max_published": bad}))
        self.assertIsNone(settings.published_table_bytes("not a dict"))
        self.assertEqual(settings.published_table_bytes({}), table_bytes(512))


class RegionConfigErrorTest(unittest.TestCase):
    """A bad region config stops the role's construction with one ValueError naming what is
    wrong (the checks live in settings.py, which a board drops after its start)."""

    def error(self, region=None, keys=None):
        members, edges = line(3)
        cfg = node_config(1, members[0], region=region)
        if region is None:
            cfg["region"] = region_config(members, edges, members[0])
        if keys is not None:
            cfg["keys"] = keys
        with self.assertRaises(ValueError) as got:
            Router(cfg, Rand(1), 0)
        return str(got.exception)

    def test_each_bad_region_config_is_named(self):
        members, edges = line(3)
        good = region_config(members, edges, members[0])
        self.assertIn("must be a dict", self.error(region=["10.0.0.1"]))
        self.assertIn("'policy'", self.error(region=dict(good, policy="fast")))
        self.assertIn("'members'", self.error(region=dict(good, members=[])))
        self.assertIn("at most 255", self.error(region=dict(good, members=["10.0.0.1"] * 256)))
        self.assertIn("not a member", self.error(region=dict(good, members=members[1:])))
        keys = node_config(1, members[0])["keys"]
        del keys[0x200]
        self.assertIn("region key", self.error(keys=keys))


if __name__ == "__main__":
    unittest.main()

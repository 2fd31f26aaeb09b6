"""config.py: validation messages and the atomic write (runs on MicroPython and CPython)."""

import os
import sys
import unittest

import config
from scratch import fresh, rmtree

GOOD = {
    "role": "agent",
    "node_id": 1,
    "address": "10.0.0.1",
    "keys": {"256": "00" * 16},
    "channel": 6,
}
DIR = "_test_config_dir"


class _InScratch(unittest.TestCase):
    """self.path: the file NAME in an empty scratch directory."""

    NAME = ""

    def setUp(self):
        fresh(DIR)
        self.path = DIR + "/" + self.NAME

    def tearDown(self):
        rmtree(DIR)


class ConfigTest(_InScratch):
    NAME = "config.json"

    def test_save_then_load_round_trips(self):
        config.save(GOOD, self.path)
        self.assertEqual(config.load(self.path), GOOD)
        self.assertRaises(OSError, os.stat, self.path + ".tmp")

    def test_save_replaces_an_existing_config(self):
        config.save(GOOD, self.path)
        new = dict(GOOD)
        new["node_id"] = 2
        config.save(new, self.path)
        self.assertEqual(config.load(self.path)["node_id"], 2)

    def test_missing_config_says_so(self):
        try:
            config.load(self.path)
        except config.ConfigError as e:
            self.assertIn("no " + self.path, str(e))
        else:
            self.fail("no ConfigError")

    def test_bad_fields_are_named(self):
        for field, value, words in (
            ("role", "pilot", "role 'pilot'"),
            ("node_id", -1, "node_id"),
            ("address", "10.0.0", "address"),
            ("channel", 15, "channel"),
            ("keys", {}, "keys"),
            ("collector", "10.77.0.2:port", "collector"),
            ("collector", "laptop", "collector"),
            ("log_store_kb", 0, "log_store_kb"),
            ("log_files", 1, "log_files"),
            ("log_rate", "fast", "log_rate"),
        ):
            cfg = dict(GOOD)
            cfg[field] = value
            try:
                config.validate(cfg)
            except config.ConfigError as e:
                self.assertIn(words, str(e))
            else:
                self.fail("accepted %s=%r" % (field, value))

    def test_every_role_has_its_class_and_no_other_role_runs(self):
        names = {
            "agent": "Agent",
            "mobile": "MobileNode",
            "host": "Host",
            "home": "HomeAgent",
            "router": "Router",
        }
        self.assertEqual(sorted(r[0] for r in config.ROLE_CLASSES), sorted(names))
        # every role's module on CPython; on a board the lookup for each and one import: the
        # names a module interns stay in the heap after it is dropped, and all five roles' do
        # not fit a board's heap (a board runs one role)
        on_board = sys.implementation.name == "micropython"
        for role in names:
            self.assertEqual(config._class_name(role, "test"), names[role])
            if not on_board or role == "host":
                self.assertEqual(config.role_class(role).__name__, names[role])
        try:
            config.role_class("home_agent")
        except config.ConfigError as e:
            self.assertIn("role 'home_agent' is not one of agent, mobile", str(e))
        else:
            self.fail("no ConfigError")

    def test_the_role_class_builds_the_role_the_driver_runs(self):
        # driver.main takes the class from here before it drops config.py from the heap
        cfg = dict(GOOD)
        cfg["keys"] = {256: b"k" * 16}
        self.assertEqual(
            type(config.role_class(cfg["role"])(cfg, lambda bits: 0, 0)).__name__, "Agent"
        )
        self.assertRaises(config.ConfigError, config.role_class, "pilot")

    def test_the_field_log_keys_are_accepted(self):
        cfg = dict(GOOD)
        cfg.update(collector="10.77.0.2:4345", log_store_kb=64, log_files=4, log_rate=10)
        self.assertEqual(config.validate(cfg), cfg)
        cfg["collector"] = {"ip": "10.77.0.2", "port": 4345}
        self.assertEqual(config.validate(cfg), cfg)

    def test_bad_config_is_never_written(self):
        config.save(GOOD, self.path)
        bad = dict(GOOD)
        bad["role"] = "pilot"
        self.assertRaises(config.ConfigError, config.save, bad, self.path)
        self.assertEqual(config.load(self.path), GOOD)

    def test_interrupted_write_keeps_the_old_config(self):
        config.save(GOOD, self.path)
        with open(self.path + ".tmp", "w") as f:
            f.write('{"role": "ag')  # power cut in the middle of the new file
        self.assertEqual(config.load(self.path), GOOD)
        self.assertRaises(OSError, os.stat, self.path + ".tmp")

    def test_complete_tmp_without_config_is_finished(self):
        # power cut between remove and rename on a filesystem without atomic replace
        with open(self.path + ".tmp", "w") as f:
            f.write('{"role": "host", "node_id": 3, "address": "10.0.0.3", "keys": {"256": "00"}}')
        self.assertEqual(config.load(self.path)["node_id"], 3)
        self.assertEqual(config.load(self.path)["role"], "host")

    def test_invalid_json_is_reported(self):
        with open(self.path, "w") as f:
            f.write("{not json")
        try:
            config.load(self.path)
        except config.ConfigError as e:
            self.assertIn("not valid JSON", str(e))
        else:
            self.fail("no ConfigError")


class EpochTest(_InScratch):
    NAME = "epoch"

    def test_every_boot_counts_one_more(self):
        first = config.next_epoch(self.path)
        self.assertEqual(config.next_epoch(self.path), (first + 1) & 0xFFFF)
        self.assertEqual(config.next_epoch(self.path), (first + 2) & 0xFFFF)
        self.assertRaises(OSError, os.stat, self.path + ".tmp")

    def test_wraps_at_16_bits(self):
        with open(self.path, "w") as f:
            f.write("65535")
        self.assertEqual(config.next_epoch(self.path), 0)

    def test_interrupted_write_is_finished_from_the_temp_file(self):
        with open(self.path + ".tmp", "w") as f:
            f.write("41")  # power cut after the temp write, before the rename
        self.assertEqual(config.next_epoch(self.path), 42)

    def test_damaged_counter_does_not_restart_at_a_fixed_value(self):
        with open(self.path, "w") as f:
            f.write("garbage")
        n = config.next_epoch(self.path)
        self.assertTrue(0 <= n <= 0xFFFF)
        self.assertEqual(config.next_epoch(self.path), (n + 1) & 0xFFFF)

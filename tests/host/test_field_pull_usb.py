"""`roam logs --pull` over USB on a board whose heap the interrupted program still holds."""

from __future__ import annotations

import json
import time

import serial
from vbhelp import virtual_board, write_fleet, write_keys

from hosttools.field.pull import pull
from hosttools.fleet import load_fleet, load_keys

# A program that keeps nearly all of the heap (as a role's tables do once it has run a while:
# interrupted, their tasks keep them alive) and a stored log of three lines, as the field log
# writes them (firmware/fieldlog/store.py: one JSON object per line, boot b, sequence s).
HOG = """
import gc, os, time
try:
    os.mkdir('logs')
except OSError:
    pass
with open('logs/00000001.jl', 'w') as f:
    for s in range(3):
        f.write('{"t":%d,"n":9,"b":1,"s":%d,"ev":"tick"}\\n' % (1000 + s, s))
with open('epoch', 'w') as f:
    f.write('1')
hog = []
try:
    while True:
        hog.append(bytearray(512))
except MemoryError:
    pass
del hog[-4:]  # room to say so and to wait
gc.collect()
print('holding')
while True:
    time.sleep_ms(10)
"""


def test_a_pull_gets_the_whole_heap(tmp_path):
    """The pull soft-resets the board in the raw REPL before it lists and reads the log: the
    program's objects are gone, and a file is read in 1 KB pieces even when the program left
    no such block (a plain ESP32's mobile node did: MemoryError, allocating 1280 bytes)."""
    with virtual_board(tmp_path / "root", romfs_kb=0) as vb:
        (tmp_path / "root" / "main.py").write_text(HOG)
        port = serial.Serial(vb.pty, timeout=0.1)
        try:
            port.write(b"\r\x03\x03\x04")  # at the REPL, Ctrl-D: a soft reset runs main.py
            heard = b""
            deadline = time.monotonic() + 20
            while b"holding" not in heard and time.monotonic() < deadline:
                heard += port.read(256)
        finally:
            port.close()
        assert b"holding" in heard, heard[-300:]
        fleet = load_fleet(
            write_fleet(tmp_path / "fleet.toml", vb.pty, "m1", "mobile", 9, "10.64.0.9")
        )
        keys = load_keys(write_keys(tmp_path / "keys.toml", log="33" * 16), fleet)
        said: list[str] = []
        res = pull(fleet, keys, tmp_path / "run", list(fleet), lambda b: vb.pty, said.append)
    assert res["failed"] == {}, (res, said)
    assert res["pulled"] == {"m1": 3}, (res, said)
    lines = [json.loads(x) for x in (tmp_path / "run" / "m1.jsonl").read_text().splitlines()]
    assert [r["json"]["s"] for r in lines if "json" in r] == [0, 1, 2]

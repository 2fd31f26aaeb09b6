"""A virtual board (hosttools/vboard.py) for the CLI tests: real MicroPython behind a pty."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class _Board:
    def __init__(self, pty, root):
        self.pty = pty
        self.root = Path(root)


@contextlib.contextmanager
def virtual_board(root, name="vb1", link=None, heap_kb=None, romfs_kb=None):
    """The board runs in its own process (`python -m hosttools.vboard`), as a real board is
    another device and the lab's boards are in the lab daemon. In this process it would fork
    each new MicroPython (at every soft reset) while the test holds the port: the child holds a
    copy of the test's descriptor, and with it the port's exclusive lock, until it executes
    MicroPython, and the next exclusive open in that moment finds the port busy."""
    Path(root).mkdir(parents=True, exist_ok=True)
    # the lab's chip (hosttools/lab.py BOARD_TYPE: an agent run from the filesystem does not fit
    # an ESP32's calibrated heap)
    cmd = [sys.executable, "-m", "hosttools.vboard", "--root", str(root), "--name", name]
    cmd += ["--chip", "esp32s3"]
    if link:
        cmd += ["--link", str(link)]
    if heap_kb:
        cmd += ["--heap-kb", str(heap_kb)]
    if romfs_kb is not None:  # 0: no romfs partition, as micropython.org's partition table
        cmd += ["--romfs-kb", str(romfs_kb)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=str(REPO),
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        start_new_session=True,  # its MicroPython processes go with it
    )
    try:
        pty = proc.stdout.readline().decode().strip()
        assert pty.startswith("/dev/"), "the virtual board did not start: %r" % pty
        yield _Board(pty, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of its group is left
        except ProcessLookupError:
            pass
        proc.wait()
        proc.stdout.close()


def write_fleet(
    path, port, name="fa1", role="agent", node_id=1, address="10.0.0.1", board="esp32", extra=""
):
    path.write_text(
        '[[board]]\nname = "%s"\nport = "%s"\nboard = "%s"\nrole = "%s"\n'
        'node_id = %d\naddress = "%s"\nchannel = 1\n%s'
        % (name, port, board, role, node_id, address, extra)
    )
    return path


def write_keys(path, cell="11" * 16, log=None):
    """A keys file: the cell and region keys, and the log key when ``log`` is given."""
    text = '[default]\ncell = "%s"\nregion = "%s"\n' % (cell, "22" * 16)
    path.write_text(text + ('log = "%s"\n' % log if log else ""))
    return path


def write_boards(d):
    d.mkdir(exist_ok=True)
    (d / "esp32.toml").write_text('chip = "esp32"\nflash_offset = 0x1000\n')
    return d

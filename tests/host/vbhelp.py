"""A virtual board (hosttools/vboard.py) for the CLI tests: real MicroPython behind a pty."""

import contextlib

from hosttools.vboard import BoardHost, VirtualBoard


@contextlib.contextmanager
def virtual_board(root, name="vb1", link=None):
    host = BoardHost()
    board = host.add(VirtualBoard(root, name=name, link=link))
    host.start_thread()
    try:
        yield board
    finally:
        host.close()


def write_fleet(
    path, port, name="fa1", role="agent", node_id=1, address="10.0.0.1", board="esp32", extra=""
):
    path.write_text(
        '[[board]]\nname = "%s"\nport = "%s"\nboard = "%s"\nrole = "%s"\n'
        'node_id = %d\naddress = "%s"\nchannel = 1\n%s'
        % (name, port, board, role, node_id, address, extra)
    )
    return path


def write_keys(path, cell="11" * 16):
    path.write_text('[default]\ncell = "%s"\nregion = "%s"\n' % (cell, "22" * 16))
    return path


def write_boards(d):
    d.mkdir(exist_ok=True)
    (d / "esp32.toml").write_text('chip = "esp32"\nflash_offset = 0x1000\n')
    return d

# Stand-in for a board's `machine` module (C on a board) for bench/role_memory32.py.
def reset():
    pass

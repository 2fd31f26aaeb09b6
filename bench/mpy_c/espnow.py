# Stand-in for a board's `espnow` module (C on a board) for bench/role_memory32.py.
class ESPNow:
    pass

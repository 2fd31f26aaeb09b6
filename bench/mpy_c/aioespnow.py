# Stand-in for a board's frozen `aioespnow` module for bench/role_memory32.py.
class AIOESPNow:
    pass

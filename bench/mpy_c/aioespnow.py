# Stand-in for a board's frozen `aioespnow` module for bench/role_memory32.py.
from espnow import ESPNow as AIOESPNow  # noqa: F401

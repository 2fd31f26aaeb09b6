# Stand-in for a board's `network` module (C on a board: none of its code is heap) for
# bench/role_memory32.py: only what the firmware's modules need to import.
STA_IF = 0
AP_IF = 1


class WLAN:
    PM_NONE = 0

    def __init__(self, i=0):
        pass

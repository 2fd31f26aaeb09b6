"""Over-the-air updates from the laptop (`roam deploy/provision/reset --ota`, `roam devices
--ota`): what goes to a board (plan.py), one board's session as a sans-I/O state machine
(session.py), many sessions at once over the field's access point (runner.py), and the
commands (cli.py). The board's side is firmware/update; the messages are firmware/update/wire.py.
"""

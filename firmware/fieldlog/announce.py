"""Safe mode's one line to the collector (only a board in safe mode with Wi-Fi loads this):
join the access point, send the line in one LOG frame from port 4345, so that the field's
dashboard shows the board at the REPL."""

import socket

import link_wifi

from fieldlog import wire


def announce(cfg, boot, at, line):
    key = cfg["keys"].get(str(wire.SPI_LOG))
    c = cfg.get("collector")
    if not key or not c:
        return
    wifi = cfg["wifi"]
    link_wifi.WifiLink(
        wifi["ssid"], wifi.get("key"), cfg.get("channel", 1), ip=wifi.get("ip"), timeout_ms=5000
    )
    ip, _, port = c.partition(":") if isinstance(c, str) else (c["ip"], "", c.get("port"))
    frame = bytearray(wire.LOG_HEAD + len(line) + wire.TAG)
    frame[wire.LOG_HEAD : wire.LOG_HEAD + len(line)] = line
    wire.sign_log(frame, bytes.fromhex(key), cfg["node_id"], boot, 0, 0, at[0], at[1], len(line))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(socket.getaddrinfo("0.0.0.0", wire.FIELD_PORT)[0][-1])
        s.sendto(frame, socket.getaddrinfo(ip, int(port or wire.FIELD_PORT))[0][-1])
    finally:
        s.close()

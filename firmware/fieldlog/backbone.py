"""A backbone board's side of the log in the field (only boards on the access point load it):
the field socket (UDP port 4345), the collector's address, on an agent the relay of the log
frames of the radio-only boards it serves (fieldlog/relay.py), and the collector's REWIND
(fieldlog/wire.py): send the stored log again."""

import socket

from fieldlog import wire


class Backbone:
    def __init__(self, cfg, log, now, sock=None):
        self.log = log
        self.node = cfg["node_id"]
        self.collector = None
        self.relayer = None
        self.up = None  # the board's stream (fieldio sets it): what a REWIND rewinds
        self.counter = 0  # the last REWIND counter taken in this boot
        self.relay_off = 0  # log frames heard on the radio with no relay to pass them on
        c = cfg.get("collector")  # checked by config.py: "a.b.c.d[:port]" or {"ip", "port"}
        if c:
            if isinstance(c, dict):
                ip, port = c["ip"], c.get("port")
            else:
                ip, _, port = c.partition(":")
            self.collector = socket.getaddrinfo(ip, int(port or wire.FIELD_PORT))[0][-1]
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(socket.getaddrinfo("0.0.0.0", wire.FIELD_PORT)[0][-1])
            sock.setblocking(False)
        self.sock = sock
        key = cfg["keys"].get(str(wire.SPI_LOG))
        self.key = bytes.fromhex(key) if key else None
        secret = cfg["keys"].get(str(wire.SPI_LOG_SECRET))
        if secret and self.collector and cfg["role"] == "agent":
            from fieldlog import relay

            self.relayer = relay.Relay(bytes.fromhex(secret), now=now)

    def send(self, frame):
        """A LOG frame to the collector: True once the stack took it."""
        try:
            self.sock.sendto(frame, self.collector)
            return True
        except OSError:
            return False

    def relay(self, now, msg):
        """A radio frame to port 4345 (another board's log): passed on when it checks out."""
        if self.relayer is None:
            self.relay_off += 1
            return
        payload = memoryview(msg)[28:]
        if self.relayer.check(now, payload):
            self.send(payload)

    async def serve(self):
        """The collector's REWIND: the stored log once more (roam logs --pull)."""
        import link_wifi

        sock = self.sock
        while True:
            try:
                msg = sock.recv(64)
            except OSError:
                await link_wifi._wait_readable(sock)
                continue
            self.on_request(msg)

    def on_request(self, msg):
        """A REWIND for this board with a fresh counter and its key: the stream goes back."""
        if len(msg) != 24 or msg[0] != wire.REWIND or self.up is None:
            return
        counter = int.from_bytes(msg[4:8], "big")
        if (
            int.from_bytes(msg[2:4], "big") == self.node
            and counter > self.counter
            and wire.verify(self.key, msg)
        ):
            self.counter = counter
            self.up.rewind()
            self.log.event("log_rewind", {"counter": counter})

    def stats(self, f):
        r = self.relayer
        if r is not None:
            f["relayed"] = r.passed
            f["refused"] = r.refused
        if self.relay_off:
            f["relay_off"] = self.relay_off

"""A backbone board's side of the log in the field (only boards on the access point load it):
the field socket (UDP port 4345), the collector's address, on an agent the relay of the log
frames of the radio-only boards it serves (fieldlog/relay.py), and the collector's REWIND
(fieldlog/wire.py): send the stored log again. fieldlog/setup.py builds it at boot."""

from fieldlog import wire


class Backbone:
    def __init__(self, log, node, key, sock, collector, relayer):
        self.log = log
        self.node = node
        self.key = key  # this board's log key: a REWIND must carry its tag
        self.sock = sock  # bound to port 4345
        self.collector = collector  # its address, or None
        self.relayer = relayer  # fieldlog.relay.Relay on an agent, else None
        self.stream = None  # the board's stream: what a REWIND rewinds
        self.counter = 0  # the last REWIND counter taken in this boot
        self.relay_off = 0  # log frames heard on the radio with no relay to pass them on

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
        if len(msg) != 24 or msg[0] != wire.REWIND or self.stream is None:
            return
        counter = int.from_bytes(msg[4:8], "big")
        if (
            int.from_bytes(msg[2:4], "big") == self.node
            and counter > self.counter
            and wire.verify(self.key, msg)
        ):
            self.counter = counter
            # the stream starts again from the ring's oldest line (after a frame in flight),
            # four times as fast and without jumping ahead until it has caught up
            st = self.stream
            start = (st.store.nums[0], 0, False)
            if st.size:
                st.after = start
            else:
                st.num, st.off, st.cont = start
            st.rewound = True
            self.log.event("log_rewind", {"counter": counter})

    def stats(self, f):
        r = self.relayer
        if r is not None:
            f["relayed"] = r.passed
            f["refused"] = r.refused
        if self.relay_off:
            f["relay_off"] = self.relay_off

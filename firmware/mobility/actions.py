"""The action buffer a role writes into and its driver empties (docs/DESIGN.md "The sans-I/O
contract").

The buffer is preallocated lists, so emitting an action on the forwarding hot path only stores
references into existing slots: no allocation. ``n`` is the number of pending actions; the
driver runs ``kind[i]``, ``iface[i]``, ``mac[i]``, ``data[i]`` for ``i < n`` in order, then calls
``clear()``. A burst larger than the preallocated size grows the lists once (rare: control
traffic only) rather than losing an action.
"""

from mobility.compat import const

SEND = const(0)  # send data (an IPv4 packet) on iface to mac (BROADCAST for everyone in range)
DELIVER = const(1)  # data is an IPv4 datagram for the application
LOG = const(2)  # data is an event (name, fields dict); the driver adds node id and time

IF_RADIO = const(0)  # ESP-NOW
IF_BACKBONE = const(1)  # Wi-Fi UDP
BROADCAST = b"\xff\xff\xff\xff\xff\xff"

_DEFAULT_SIZE = const(16)


class Actions:
    def __init__(self, size=_DEFAULT_SIZE):
        if size < 1:
            raise ValueError("actions", size)  # at least 1
        self.n = 0
        self.kind = [0] * size
        self.iface = [0] * size
        self.mac = [None] * size
        self.data = [None] * size

    def _slot(self):
        i = self.n
        if i == len(self.kind):
            self.kind.append(0)
            self.iface.append(0)
            self.mac.append(None)
            self.data.append(None)
        self.n = i + 1
        return i

    def send(self, iface, mac, data):
        i = self.n
        if i == len(self.kind):
            i = self._slot()
        else:
            self.n = i + 1
        self.kind[i] = SEND
        self.iface[i] = iface
        self.mac[i] = mac
        self.data[i] = data

    def deliver(self, data):
        i = self._slot()
        self.kind[i] = DELIVER
        self.iface[i] = 0
        self.mac[i] = None
        self.data[i] = data

    def log(self, name, fields):
        i = self._slot()
        self.kind[i] = LOG
        self.iface[i] = 0
        self.mac[i] = None
        self.data[i] = (name, fields)

    def clear(self):
        """Forget the pending actions (drops the references so buffers can be reused/freed)."""
        data = self.data
        mac = self.mac
        for i in range(self.n):
            data[i] = None
            mac[i] = None
        self.n = 0

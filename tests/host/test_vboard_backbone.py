"""The Wi-Fi backbone between virtual boards: stations that joined the air's access point
exchange UDP datagrams through the air (boards/shims/socket.py), the radio follows the access
point's channel, a cut backbone drops datagrams until it is healed, and a station that has
not joined gets lwIP's "host unreachable"."""

from __future__ import annotations

import pytest

from tests.host._vboards import Lab, read_until

JOIN = """
import network, socket
w = network.WLAN(network.STA_IF)
w.active(True)
w.ifconfig(('%s', '255.255.255.0', '10.0.0.254', '10.0.0.254'))
w.connect('lan')
print('joined', w.isconnected(), w.ifconfig()[0], w.config('channel'))
"""

ECHO = (
    JOIN
    + """
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(socket.getaddrinfo('0.0.0.0', 4344)[0][-1])
print('ready')
while True:
    d, addr = s.recvfrom(200)
    s.sendto(b'echo:' + d, addr)
"""
)

PING = (
    JOIN
    + """
import time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for i in range(%d):
    s.sendto(b'ping%%d' %% i, ('10.0.0.2', 4344))
    try:
        print('got', s.recvfrom(200))
    except OSError as e:
        print('timeout', e.errno)
"""
)


@pytest.fixture
def lab(tmp_path):
    with Lab(tmp_path) as lab:
        lab.air.add_access_point("lan", channel=6)
        yield lab


def test_udp_through_the_air_with_cut_and_heal(lab):
    a = lab.board("a", "02:00:00:00:00:0a", pos=(0, 0))
    b = lab.board("b", "02:00:00:00:00:0b", pos=(5000, 0))  # far out of radio range: LAN only
    echo = lab.spawn(b, "exec", ECHO % "10.0.0.2")
    out = read_until(echo, b"ready").decode()
    assert "joined True 10.0.0.2 6" in out  # static address kept; channel of the access point

    out = lab.mpremote(a, "exec", PING % ("10.0.0.1", 3))
    assert "joined True 10.0.0.1 6" in out
    for i in range(3):
        assert "got (b'echo:ping%d', ('10.0.0.2', 4344))" % i in out, out

    lab.air.cut_backbone("b")
    out = lab.mpremote(a, "exec", PING % ("10.0.0.1", 2))
    assert out.count("timeout") == 2 and "got" not in out, out
    assert lab.air.udp_dropped >= 2

    lab.air.cut_backbone("b", False)
    out = lab.mpremote(a, "exec", PING % ("10.0.0.1", 2))
    assert out.count("got (b'echo:ping") == 2, out

    lab.air.set_partition([["a"], ["b"]])
    out = lab.mpremote(a, "exec", PING % ("10.0.0.1", 1))
    assert "timeout" in out, out
    lab.air.set_partition([])
    out = lab.mpremote(a, "exec", PING % ("10.0.0.1", 1))
    assert "got (b'echo:ping0'" in out, out


def test_not_joined_is_host_unreachable_and_tcp_is_refused(lab):
    a = lab.board("a", "02:00:00:00:00:0a")
    code = (
        "import socket, errno\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n s.sendto(b'x', ('10.0.0.2', 4344))\nexcept OSError as e:\n"
        " print('send', e.errno == errno.EHOSTUNREACH)\n"
        "try:\n socket.socket(socket.AF_INET, socket.SOCK_STREAM)\nexcept OSError as e:\n"
        " print('tcp', e.errno == errno.EOPNOTSUPP)\n"
    )
    out = lab.mpremote(a, "exec", code)
    assert "send True" in out and "tcp True" in out, out

"""What a role loads decides its heap on a board whose firmware is in its heap (no romfs):
the code of every module it imports stays there. A router loads the proxies' machinery (the
sender of signed requests and the registration codec, some 7 KB at 32 bits) only when it is
configured to make proxy bindings."""

import json
import subprocess

from bench.common import MICROPYTHON
from hosttools.deploy import FIRMWARE_DIR

_ROUTER = """
import sys, json
sys.path.insert(0, %r)
from mobility import router
cfg = {"node_id": 2, "address": "10.0.0.2", "keys": {"256": "11" * 16, "512": "22" * 16},
       "proxy": %s,
       "region": {"members": ["10.0.0.1", "10.0.0.2"],
                  "neighbours": [{"addr": "10.0.0.1", "iface": 1, "mac": "0a:00:00:01:10:f8"}]}}
r = router.Router(cfg, lambda bits: 7, 1000)
r.on_timer(2000)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("mobility"))))
"""


def router_modules(proxy: bool) -> set[str]:
    done = subprocess.run(
        [MICROPYTHON, "-c", _ROUTER % (str(FIRMWARE_DIR), proxy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_router_loads_the_proxies_machinery_only_to_make_proxies():
    proxies = {"mobility.remoteclient", "mobility.registration"}
    plain = router_modules(False)
    assert "mobility.region" in plain and not proxies & plain, plain
    assert proxies <= router_modules(True)

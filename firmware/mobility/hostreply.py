"""A mobile node's or a host's answer to a host-to-host solicitation (docs/CORE.md "Host-to-host
mode"): a host reply, unicast to the solicitor's MAC and address with no route installed (the
solicitor is not reachable by normal routing). Agents and routers do not send one (an agent's
answer is its advertisement, cell.py), so only the roles that do load this module.
"""

from mobility import advert, ipv4
from mobility.compat import const
from mobility.node import fmt_mac

_DEFAULT_LIFETIME_S = const(30)  # how long a host reply keeps us in a solicitor's table


class HostReplies:
    """The host replies of ``node`` (a Node): config ``host_lifetime_s`` (1..3600, default 30)."""

    def __init__(self, node, config):
        from mobility import settings

        self.node = node
        self.lifetime_s = settings.cfg_int(config, "host_lifetime_s", _DEFAULT_LIFETIME_S, 1, 3600)
        # epoch (16 bits) || sequence (16 bits) in the nonce field, so that a solicitor can
        # refuse a replayed host reply (docs/CORE.md "Security")
        self.boot = node.epoch
        self.seq = 0

    def send(self, iface, mac, sol):
        """Answer the solicitation ``sol`` (checked: Node.check_solicitation) from ``mac``."""
        n = self.node
        self.seq = (self.seq + 1) & 0xFFFF
        adv = advert.Advertisement(
            src=n.address,
            dst=sol.src,
            adv_lifetime=self.lifetime_s,
            services=advert.SVC_HOST,
            nonce=(self.boot << 16) | self.seq,
            is_host_reply=True,
            challenge=sol.challenge,  # proves the reply fresh to the solicitor
            mac=n.mac,
        )
        n.out.send(iface, mac, advert.encode_advertisement(adv, n.cell_key))
        n.log("host_reply", {"to": ipv4.ntoa(sol.src), "mac": fmt_mac(mac)})

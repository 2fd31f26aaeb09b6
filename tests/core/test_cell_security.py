"""Forged (wrong key) and replayed (the identical frame re-sent later) advertisements,
registrations, replies, solicitations and host replies change nothing."""

import unittest

from medium import Medium, addr, config, make_rand

from mobility import advert, ipv4, registration, request, solicit
from mobility.agent import Agent
from mobility.mobile import MobileNode

ATTACKER = b"\x0e\x0e\x0e\x0e\x0e\x0e"
WRONG_KEY = b"not the cell key"


def agent_state(a):
    return sorted((k, tuple(v)) for k, v in a.bindings.items())


def mobile_state(mn):
    agents = sorted(
        (k, i.addr, i.mac, i.services, i.capacity, i.load, i.nonce, i.outage_start)
        for k, i in mn.agents.table.items()
    )
    hosts = sorted((k, tuple(v[:3])) for k, v in mn.direct.table.items())
    serving = None if mn.serving is None else mn.serving.addr
    return (agents, hosts, serving, mn.bound_until, mn.mode)


def join(m, name, node_id, rssi):
    """Mobile node ``name`` (node ``node_id``) started, hearing agent A at ``rssi``: its role,
    three seconds later."""
    m.add(name, MobileNode(config(node_id), make_rand(node_id), m.now))
    m.hear("A", name, rssi)
    m.run(3000)
    return m.stations[name].role


def cell():
    m = Medium()
    m.capture = []
    m.add("A", Agent(config(1), make_rand(1), m.now))
    join(m, "M", 11, -50)
    return m


def frames(m, node, kind):
    """Captured frames sent by node: kind 'adv', 'sol', 'req', 'rep'."""
    found = []
    for _t, name, _iface, _mac, data in m.capture:
        if name != node:
            continue
        h = ipv4.decode(data)
        if h.proto == ipv4.PROTO_ICMP:
            msg = advert.decode_icmp(h)
            k = (
                "sol"
                if isinstance(msg, advert.Solicitation)
                else ("host" if msg.is_host_reply else "adv")
            )
        elif h.proto == ipv4.PROTO_UDP and data[23] == 0xB2:
            msg = registration.decode_registration(h)
            k = "req" if isinstance(msg, registration.RegRequest) else "rep"
        else:
            continue
        if k == kind:
            found.append(data)
    return found


class ForgedTest(unittest.TestCase):
    def test_forged_advertisement_is_ignored(self):
        m = cell()
        mn = m.stations["M"].role
        before = mobile_state(mn)
        fake = advert.Advertisement(
            src=addr(66),
            adv_lifetime=3,
            seq=1,
            reg_lifetime=60,
            flags=0x90,
            services=7,
            capacity=50,
            nonce=1234,
        )
        m.inject("M", ATTACKER, advert.encode_advertisement(fake, WRONG_KEY), rssi=-20)
        # and one that claims to be the serving agent, with a better sequence number
        fake.src = addr(1)
        fake.seq = 60000
        m.inject("M", ATTACKER, advert.encode_advertisement(fake, WRONG_KEY), rssi=-20)
        m.inject("M", ATTACKER, advert.encode_advertisement(fake, None), rssi=-20)  # unsigned
        self.assertEqual(mobile_state(mn), before)
        self.assertEqual(len([e for e in m.logged("reject", "M") if e[3]["reason"] == "auth"]), 3)

    def test_forged_registration_installs_nothing_and_gets_no_reply(self):
        m = cell()
        a = m.stations["A"].role
        before = agent_state(a)
        n = len(m.capture)
        for home in (addr(11), addr(77)):  # steal a bound node, or bind a new one
            req = registration.RegRequest(
                src=home,
                dst=addr(1),
                lifetime=30,
                home=home,
                coa=addr(1),
                ident=(a.nonce << 32) | 999,
            )
            m.inject("A", ATTACKER, request.encode_request(req, WRONG_KEY))
        self.assertEqual(agent_state(a), before)
        self.assertEqual(len(m.capture), n)  # not even a refusal goes out

    def test_forged_solicitation_gets_no_answer(self):
        m = cell()
        n = len(m.capture)
        sol = advert.Solicitation(src=addr(77), level=2)
        m.inject("A", ATTACKER, solicit.encode_solicitation(sol, WRONG_KEY))
        self.assertEqual(len(m.capture), n)

    def test_forged_registration_reply_is_ignored(self):
        m = cell()
        mn = m.stations["M"].role
        before = mobile_state(mn)
        rep = registration.RegReply(
            src=addr(1), dst=addr(11), code=66, home=addr(11), ident=mn.reg.ident
        )
        m.inject("M", ATTACKER, registration.encode_reply(rep, WRONG_KEY))
        self.assertEqual(mobile_state(mn), before)


class ReplayTest(unittest.TestCase):
    def test_replayed_advertisement_changes_nothing(self):
        m = cell()
        old = frames(m, "A", "adv")[0]
        m.run(2000)
        mn = m.stations["M"].role
        before = mobile_state(mn)
        m.inject("M", ATTACKER, old, rssi=-20)
        self.assertEqual(mobile_state(mn), before)
        # it names the agent's MAC, signed: from another station it is a relayed copy
        self.assertEqual(m.logged("reject", "M")[-1][3]["reason"], "relayed")
        m.inject("M", m.stations["A"].mac, old, rssi=-20)  # under the agent's MAC (forged)
        self.assertEqual(mobile_state(mn), before)
        self.assertEqual(m.logged("reject", "M")[-1][3]["reason"], "replay")

    def test_replayed_registration_cannot_move_or_revive_a_binding(self):
        m = cell()
        a = m.stations["A"].role
        req = frames(m, "M", "req")[0]
        m.run(2000)
        before = agent_state(a)
        m.inject("A", ATTACKER, req)  # while bound: the route must not turn to the attacker
        self.assertEqual(agent_state(a), before)
        self.assertEqual(m.logged("reject", "A")[-1][3]["reason"], "mac")
        m.inject("A", m.stations["M"].mac, req)  # under the node's own MAC (spoofed)
        self.assertEqual(agent_state(a), before)
        self.assertEqual(m.logged("reject", "A")[-1][3]["reason"], "ident")
        # after the node left (deregistered), a replay must not bring the binding back
        mn = m.stations["M"].role
        mn.reg.deregister(m.now, mn.serving)
        m._drain(m.stations["M"])
        m.run(10)
        self.assertEqual(a.bindings, {})
        m.inject("A", ATTACKER, req)
        self.assertEqual(a.bindings, {})

    def test_replayed_registration_after_agent_restart_is_refused(self):
        m = cell()
        req = frames(m, "M", "req")[0]
        m.add("A2", Agent(config(1), make_rand(42), m.now))  # the agent rebooted: new nonce
        a2 = m.stations["A2"].role
        m.inject("A2", ATTACKER, req)
        self.assertEqual(a2.bindings, {})

    def test_replayed_reply_and_solicitation_change_nothing(self):
        m = cell()
        rep = frames(m, "A", "rep")[0]
        sol = frames(m, "M", "sol")[0]
        m.run(20000)  # a refresh has happened since
        mn = m.stations["M"].role
        a = m.stations["A"].role
        before_m = mobile_state(mn)
        before_a = agent_state(a)
        m.inject("M", ATTACKER, rep)
        m.inject("A", ATTACKER, sol)
        m.run(5)
        self.assertEqual(mobile_state(mn), before_m)
        self.assertEqual(agent_state(a), before_a)

    def test_replayed_host_reply_changes_nothing(self):
        m = Medium()
        m.capture = []
        for name, n in (("M1", 11), ("M2", 12)):
            m.add(name, MobileNode(config(n), make_rand(n), m.now))
        m.hear("M1", "M2", -60)
        m.run(3000)
        old = frames(m, "M2", "host")[0]
        m.run(20000)
        mn = m.stations["M1"].role
        before = mobile_state(mn)
        m.inject("M1", ATTACKER, old)
        self.assertEqual(mobile_state(mn), before)
        self.assertEqual(m.logged("reject", "M1")[-1][3]["reason"], "relayed")  # not M2's MAC
        m.inject("M1", m.stations["M2"].mac, old)  # under M2's MAC (forged)
        self.assertEqual(mobile_state(mn), before)
        self.assertEqual(
            m.stations["M1"].role.direct.table[ipv4.addr_key(addr(12), 0)][1], m.stations["M2"].mac
        )
        # refused as stale (it echoes an old challenge) before its sequence is looked at
        self.assertEqual(m.logged("reject", "M1")[-1][3]["reason"], "stale")


class IdentificationTest(unittest.TestCase):
    def test_node_restart_recovers_through_code_133(self):
        m = cell()
        # The node reboots: its counter starts again below what the agent accepted.
        mn = join(m, "M", 11, -50)
        self.assertIsNotNone(mn.serving)
        self.assertIn(133, [e[3]["code"] for e in m.logged("reg_refused", "M")])


if __name__ == "__main__":
    unittest.main()

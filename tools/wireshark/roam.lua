-- roam.lua: Wireshark/tshark dissector for the roam mobility protocol (docs/PROTOCOL.md).
--
-- Wireshark already decodes the standard parts of the protocol: ICMP router advertisements
-- with the Mobile IPv4 agent advertisement extension (type 16), router solicitations,
-- Mobile IP registration request/reply on UDP 434 with their authentication extensions
-- (types 32 and 33) and IP-in-IP tunnels. This plugin adds what is ours:
--
--   * the ICMP extensions 150 (agent info), 151 (authentication) and 152 (solicitation level)
--     that follow the standard part of a router advertisement or solicitation. Wireshark's ICMP
--     dissector shows them only as "Unknown ext" (and not at all after a solicitation), so a
--     post-dissector finds every ICMP message in the frame and walks its extensions;
--   * the link extension 153 of a local binding's registration request/reply (the MACs it
--     signs), after Wireshark's own Mobile IP dissector, by a second post-dissector;
--   * the region publication on UDP port 4344;
--   * the field service on UDP port 4345 (and 4346, the laptop's end of an update): log lines,
--     REWIND and the over-the-air update messages, as protocol `roamfield`.
--
-- Every field lives under `roam.` (`roamfield.` for the field service) so that one display
-- filter `roam` (`roamfield`, `roamfield.update`) selects all of it.
-- Use:   tshark -X lua_script:tools/wireshark/roam.lua -r capture.pcap -V
-- or copy this file into Wireshark's personal plugins folder.

local ICMP_RTRADVERT = 9
local ICMP_RTRSOLICIT = 10

local EXT_PAD = 0
local EXT_AGENT_INFO = 150
local EXT_AUTH = 151
local EXT_HOP = 155 -- publications: the per-hop tag that ends every copy
local HOP_LEN = 10
local EXT_SOL_LEVEL = 152
local EXT_LINK = 153 -- registrations: the MACs of a local binding, signed

local PUB_PORT = 4344
local PUB_TYPE = 0x52
local ACK_TYPE = 0x41
local PUB_HEADER = 12
local AUTH_LEN = 20 -- SPI (4) + truncated HMAC-SHA256 tag (16)

local ext_names = {
    [0] = "Pad",
    [16] = "Mobility Agent Advertisement (RFC 5944)",
    [19] = "Prefix-Lengths (RFC 5944)",
    [24] = "Challenge (RFC 4721)",
    [EXT_AGENT_INFO] = "roam agent info",
    [EXT_AUTH] = "roam authentication",
    [EXT_HOP] = "roam hop tag",
    [EXT_SOL_LEVEL] = "roam solicitation level",
    [EXT_LINK] = "roam link (signed MACs)",
}

local level_names = { [1] = "host-to-host contact", [2] = "routing service" }

local outage_names = { [0xFFFF] = "none planned" }

local function spi_name(spi)
    if spi == 0x100 then
        return "cell key"
    elseif spi == 0x101 then
        return "binding key of the home address"
    elseif spi == 0x200 then
        return "region key"
    elseif spi >= 0x10000 and spi < 0x20000 then
        return string.format("home key of node %d", spi - 0x10000)
    end
    return "unknown key"
end

local roam = Proto("roam", "roam mobility protocol")

local pf = {
    ext_type = ProtoField.uint8("roam.ext.type", "Extension type", base.DEC, ext_names),
    ext_length = ProtoField.uint8("roam.ext.length", "Extension length", base.DEC),

    services = ProtoField.uint8("roam.agent.services", "Services", base.HEX),
    svc_routing = ProtoField.bool("roam.agent.services.routing", "Routing", 8, nil, 0x01),
    svc_reverse = ProtoField.bool("roam.agent.services.reverse_tunnel", "Reverse tunnelling", 8, nil, 0x02),
    svc_region = ProtoField.bool("roam.agent.services.region", "Region publication", 8, nil, 0x04),
    svc_host = ProtoField.bool("roam.agent.services.host_only", "Host-to-host contact only", 8, nil, 0x08),
    capacity = ProtoField.uint8("roam.agent.capacity", "Capacity (max local bindings)", base.DEC),
    load = ProtoField.uint8("roam.agent.load", "Load (current local bindings)", base.DEC),
    outage_in = ProtoField.uint16("roam.agent.outage_in", "Planned outage starts in (s)", base.DEC, outage_names),
    outage_for = ProtoField.uint16("roam.agent.outage_for", "Planned outage lasts (s)", base.DEC),
    nonce = ProtoField.uint32("roam.agent.nonce", "Boot nonce", base.HEX),
    agent_mac = ProtoField.ether("roam.agent.mac", "Sender MAC (signed; 0: not known to it)"),
    host_reply = ProtoField.bool("roam.agent.host_reply", "Host reply (no agent advertisement extension)"),

    sol_level = ProtoField.uint8("roam.sol.level", "Requested service level", base.DEC, level_names),
    sol_attempt = ProtoField.uint8("roam.sol.attempt", "Attempt", base.DEC),

    link_node = ProtoField.ether("roam.link.node_mac", "Node MAC (the binding's)"),
    link_agent = ProtoField.ether("roam.link.agent_mac", "Agent MAC (addressed)"),
    link_ident = ProtoField.uint64("roam.link.request_ident", "Identification of the request", base.HEX),
    hop_tag = ProtoField.bytes("roam.hop.tag", "Hop tag (HMAC-SHA256 of src, dst and the publication, first 8 bytes)"),
    link_seq = ProtoField.uint16("roam.link.agent_seq", "Agent's advertisement sequence (echoed)"),

    auth_spi = ProtoField.uint32("roam.auth.spi", "SPI", base.HEX),
    auth_tag = ProtoField.bytes("roam.auth.tag", "HMAC-SHA256-128 tag"),

    pub_type = ProtoField.uint8("roam.pub.type", "Message type", base.HEX,
        { [PUB_TYPE] = "Publication", [ACK_TYPE] = "Acknowledgement" }),
    ack_count = ProtoField.uint8("roam.ack.count", "Publications acknowledged", base.DEC),
    ack_from = ProtoField.ipv4("roam.ack.from", "Acknowledging member"),
    ack_origin = ProtoField.ipv4("roam.ack.origin", "Origin agent"),
    ack_epoch = ProtoField.uint16("roam.ack.epoch", "Origin epoch", base.DEC),
    ack_seq = ProtoField.uint16("roam.ack.seq", "Sequence number", base.DEC),
    pub_flags = ProtoField.uint8("roam.pub.flags", "Flags", base.HEX),
    pub_full = ProtoField.bool("roam.pub.flags.full", "Full snapshot", 8, nil, 0x80),
    pub_last = ProtoField.bool("roam.pub.flags.last", "Last part of the snapshot", 8, nil, 0x40),
    pub_part = ProtoField.uint8("roam.pub.flags.part", "Snapshot part index", base.DEC, nil, 0x3F),
    pub_origin = ProtoField.ipv4("roam.pub.origin", "Origin agent"),
    pub_epoch = ProtoField.uint16("roam.pub.epoch", "Origin epoch", base.DEC),
    pub_seq = ProtoField.uint16("roam.pub.seq", "Sequence number", base.DEC),
    pub_nbind = ProtoField.uint8("roam.pub.bindings", "Number of bindings", base.DEC),
    pub_nwdr = ProtoField.uint8("roam.pub.withdrawals", "Number of withdrawals", base.DEC),
    binding_home = ProtoField.ipv4("roam.pub.binding.home", "Home address"),
    binding_life = ProtoField.uint16("roam.pub.binding.lifetime", "Remaining lifetime (s)", base.DEC),
    withdrawal_home = ProtoField.ipv4("roam.pub.withdrawal.home", "Withdrawn home address"),
}
roam.fields = pf

local ef = {
    truncated = ProtoExpert.new("roam.truncated", "roam message truncated or length overruns it",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_length = ProtoExpert.new("roam.bad_length", "roam extension has the wrong length",
        expert.group.MALFORMED, expert.severity.ERROR),
    auth_not_last = ProtoExpert.new("roam.auth_not_last", "roam authentication extension is not last",
        expert.group.PROTOCOL, expert.severity.WARN),
    bad_type = ProtoExpert.new("roam.bad_type", "unknown roam message type",
        expert.group.MALFORMED, expert.severity.ERROR),
    trailing = ProtoExpert.new("roam.trailing", "bytes after the roam authentication",
        expert.group.MALFORMED, expert.severity.WARN),
    no_auth = ProtoExpert.new("roam.no_auth", "roam publication without authentication (receivers drop it)",
        expert.group.SECURITY, expert.severity.WARN),
}
roam.experts = ef

-- Adds an authentication block (SPI + tag) at `r` (a TvbRange of AUTH_LEN bytes).
local function add_auth(tree, r)
    local spi = r:range(0, 4):uint()
    tree:add(pf.auth_spi, r:range(0, 4)):append_text(" (" .. spi_name(spi) .. ")")
    tree:add(pf.auth_tag, r:range(4, 16))
end

-- The data length each of our ICMP extensions must have.
local ext_data_len = { [EXT_AGENT_INFO] = 17, [EXT_AUTH] = AUTH_LEN, [EXT_SOL_LEVEL] = 2 }

local function add_icmp_extension(tree, t, elen, etype, has_agent_adv)
    -- t: TvbRange of the whole extension (type, length, elen bytes of data)
    local sub = tree:add(roam, t, "roam extension: " .. ext_names[etype])
    sub:add(pf.ext_type, t:range(0, 1))
    sub:add(pf.ext_length, t:range(1, 1))
    if elen ~= ext_data_len[etype] then
        sub:add_proto_expert_info(ef.bad_length, string.format(
            "extension %d has length %d, expected %d", etype, elen, ext_data_len[etype]))
        return
    end
    local d = t:range(2, elen)
    if etype == EXT_AGENT_INFO then
        local s = sub:add(pf.services, d:range(0, 1))
        s:add(pf.svc_routing, d:range(0, 1))
        s:add(pf.svc_reverse, d:range(0, 1))
        s:add(pf.svc_region, d:range(0, 1))
        s:add(pf.svc_host, d:range(0, 1))
        sub:add(pf.capacity, d:range(1, 1))
        sub:add(pf.load, d:range(2, 1))
        sub:add(pf.outage_in, d:range(3, 2))
        sub:add(pf.outage_for, d:range(5, 2))
        sub:add(pf.nonce, d:range(7, 4))
        sub:add(pf.agent_mac, d:range(11, 6))
        sub:add(pf.host_reply, not has_agent_adv):set_generated()
    elseif etype == EXT_AUTH then
        add_auth(sub, d)
    else
        sub:add(pf.sol_level, d:range(0, 1))
        sub:add(pf.sol_attempt, d:range(1, 1))
    end
end

-- Walks the extensions of one ICMP router advertisement/solicitation (`icmp` = its TvbRange).
local function dissect_icmp_extensions(icmp, tree)
    local n = icmp:len()
    if n < 8 then
        return
    end
    local icmp_type = icmp:range(0, 1):uint()
    local off
    if icmp_type == ICMP_RTRADVERT then
        -- after the router entries: number of addresses x entry size (in 32-bit words)
        off = 8 + icmp:range(4, 1):uint() * icmp:range(5, 1):uint() * 4
    elseif icmp_type == ICMP_RTRSOLICIT then
        off = 8
    else
        return
    end
    local has_agent_adv = false
    local ours = {}
    while off < n do
        local etype = icmp:range(off, 1):uint()
        if etype == EXT_PAD then
            off = off + 1
        else
            if off + 2 > n then
                tree:add(roam, icmp:range(off), "roam ICMP extensions"):add_proto_expert_info(
                    ef.truncated, "extension header cut short")
                return
            end
            local elen = icmp:range(off + 1, 1):uint()
            if off + 2 + elen > n then
                tree:add(roam, icmp:range(off), "roam ICMP extensions"):add_proto_expert_info(
                    ef.truncated, string.format("extension %d of length %d overruns the message", etype, elen))
                return
            end
            if etype == 16 then
                has_agent_adv = true
            end
            if ext_data_len[etype] then
                ours[#ours + 1] = { off, elen, etype, off + 2 + elen == n }
            end
            off = off + 2 + elen
        end
    end
    for _, e in ipairs(ours) do
        local eoff, elen, etype, last = e[1], e[2], e[3], e[4]
        add_icmp_extension(tree, icmp:range(eoff, 2 + elen), elen, etype, has_agent_adv)
        if etype == EXT_AUTH and not last then
            tree:add_proto_expert_info(ef.auth_not_last)
        end
    end
end

-- Post-dissector for the ICMP extensions: runs after every frame was dissected and looks at
-- each ICMP message Wireshark found (several with IP-in-IP), using the range its item covers.
local roam_icmp = Proto("roam_icmp", "roam ICMP extensions (post-dissector)")
local f_icmp = Field.new("icmp")

function roam_icmp.dissector(tvb, pinfo, tree)
    local found = { f_icmp() }
    for _, fi in ipairs(found) do
        local r = fi.range
        if r ~= nil and r:len() >= 8 then
            local t = r:range(0, 1):uint()
            if t == ICMP_RTRADVERT or t == ICMP_RTRSOLICIT then
                dissect_icmp_extensions(r, tree)
            end
        end
    end
end

-- `true`: tshark must build every field even when only some are asked for (-T fields -e ...),
-- or the ICMP field above would be empty.
register_postdissector(roam_icmp, true)

-- The link extension (153) of a registration (Wireshark's own mip dissector shows the rest):
-- the node's and the agent's MACs, then in a request the sequence of the agent's advertisement it
-- echoes, in a reply the Identification of the request.
local roam_reg = Proto("roam_reg", "roam registration link extension (post-dissector)")
local f_mip = Field.new("mip")

function roam_reg.dissector(tvb, pinfo, tree)
    local found = { f_mip() }
    for _, fi in ipairs(found) do
        local r = fi.range
        if r ~= nil and r:len() >= 20 then
            local kind = r:range(0, 1):uint()
            local off = nil
            if kind == 1 then
                off = 24
            elseif kind == 3 then
                off = 20
            end
            local n = r:len()
            while off ~= nil and off + 2 <= n do
                local etype = r:range(off, 1):uint()
                local elen = r:range(off + 1, 1):uint()
                if off + 2 + elen > n then
                    break
                end
                if etype == EXT_LINK then
                    local sub = tree:add(roam, r:range(off, 2 + elen), "roam extension: " .. ext_names[EXT_LINK])
                    sub:add(pf.ext_type, r:range(off, 1))
                    sub:add(pf.ext_length, r:range(off + 1, 1))
                    local want = (kind == 1) and 14 or 20
                    if elen ~= want then
                        sub:add_proto_expert_info(ef.bad_length, string.format(
                            "extension %d has length %d, expected %d", etype, elen, want))
                    else
                        sub:add(pf.link_node, r:range(off + 2, 6))
                        sub:add(pf.link_agent, r:range(off + 8, 6))
                        if kind == 3 then
                            sub:add(pf.link_ident, r:range(off + 14, 8))
                        else
                            sub:add(pf.link_seq, r:range(off + 14, 2))
                        end
                    end
                end
                off = off + 2 + elen
            end
        end
    end
end

register_postdissector(roam_reg, true)

-- The authentication extension that ends a publication or an acknowledgement (type 151,
-- length 20: SPI + tag) at `off`; `need` is where the payload should end.
local function add_auth_ext(tvb, sub, off, n, need)
    local a = sub:add(roam, tvb(off, 2 + AUTH_LEN), "Authentication")
    a:add(pf.ext_type, tvb(off, 1))
    a:add(pf.ext_length, tvb(off + 1, 1))
    if tvb(off, 1):uint() ~= EXT_AUTH or tvb(off + 1, 1):uint() ~= AUTH_LEN then
        a:add_proto_expert_info(ef.bad_length, "expected extension type 151, length 20")
    end
    add_auth(a, tvb(off + 2, AUTH_LEN))
    if n > need then
        sub:add_proto_expert_info(ef.trailing)
    end
end

-- Acknowledgement of publications (UDP 4344, type 0x41): count, member, count x (origin,
-- epoch, seq), authentication (docs/PROTOCOL.md "Acknowledgement of publications").
local function dissect_ack(tvb, pinfo, sub, n)
    sub:set_text("roam publication acknowledgement")
    if n < 6 then
        sub:add_proto_expert_info(ef.truncated, string.format("%d bytes, the header needs 6", n))
        return n
    end
    sub:add(pf.ack_count, tvb(1, 1))
    sub:add(pf.ack_from, tvb(2, 4))
    local c = tvb(1, 1):uint()
    local need = 6 + 8 * c + 2 + AUTH_LEN
    if n < need then
        sub:add_proto_expert_info(ef.truncated, string.format(
            "%d entries need %d bytes, the payload has %d", c, need, n))
        return n
    end
    local off = 6
    for _ = 1, c do
        local e = sub:add(roam, tvb(off, 8), string.format("Publication: origin %s epoch %d seq %d",
            tostring(tvb(off, 4):ipv4()), tvb(off + 4, 2):uint(), tvb(off + 6, 2):uint()))
        e:add(pf.ack_origin, tvb(off, 4))
        e:add(pf.ack_epoch, tvb(off + 4, 2))
        e:add(pf.ack_seq, tvb(off + 6, 2))
        off = off + 8
    end
    add_auth_ext(tvb, sub, off, n, need)
    pinfo.cols.info = string.format("Acknowledgement from %s of %d publication%s",
        tostring(tvb(2, 4):ipv4()), c, c == 1 and "" or "s")
    return n
end

-- Region publication (UDP 4344).
function roam.dissector(tvb, pinfo, tree)
    local n = tvb:len()
    pinfo.cols.protocol = "roam"
    local sub = tree:add(roam, tvb(), "roam region publication")
    if n < 1 then
        sub:add_proto_expert_info(ef.truncated, "empty publication")
        return n
    end
    sub:add(pf.pub_type, tvb(0, 1))
    if tvb(0, 1):uint() == ACK_TYPE then
        return dissect_ack(tvb, pinfo, sub, n)
    end
    if tvb(0, 1):uint() ~= PUB_TYPE then
        sub:add_proto_expert_info(ef.bad_type)
        return n
    end
    if n < PUB_HEADER then
        sub:add_proto_expert_info(ef.truncated, string.format("%d bytes, the header needs %d", n, PUB_HEADER))
        return n
    end
    local flags = sub:add(pf.pub_flags, tvb(1, 1))
    flags:add(pf.pub_full, tvb(1, 1))
    if tvb(1, 1):uint() >= 0x80 then
        flags:add(pf.pub_last, tvb(1, 1))
        flags:add(pf.pub_part, tvb(1, 1))
    end
    sub:add(pf.pub_origin, tvb(2, 4))
    sub:add(pf.pub_epoch, tvb(6, 2))
    sub:add(pf.pub_seq, tvb(8, 2))
    sub:add(pf.pub_nbind, tvb(10, 1))
    sub:add(pf.pub_nwdr, tvb(11, 1))
    local nb, nw = tvb(10, 1):uint(), tvb(11, 1):uint()
    local body = PUB_HEADER + 6 * nb + 4 * nw
    local need = body + 2 + AUTH_LEN
    -- every copy on the wire ends with the hop tag of the member that sent it
    local hop = nil
    if n == need + HOP_LEN and tvb(need, 1):uint() == EXT_HOP then
        hop = need
        n = need
    end
    if n < need and n ~= body then
        sub:add_proto_expert_info(ef.truncated, string.format(
            "%d bindings and %d withdrawals need %d bytes, the payload has %d", nb, nw, need, n))
        return n
    end
    local off = PUB_HEADER
    for _ = 1, nb do
        local b = sub:add(roam, tvb(off, 6), string.format("Binding: %s, %d s",
            tostring(tvb(off, 4):ipv4()), tvb(off + 4, 2):uint()))
        b:add(pf.binding_home, tvb(off, 4))
        b:add(pf.binding_life, tvb(off + 4, 2))
        off = off + 6
    end
    for _ = 1, nw do
        sub:add(pf.withdrawal_home, tvb(off, 4))
        off = off + 4
    end
    if n == body then
        sub:add_proto_expert_info(ef.no_auth)
    else
        add_auth_ext(tvb, sub, off, n, need)
    end
    if hop ~= nil then
        local h = sub:add(roam, tvb(hop, HOP_LEN), "Hop tag")
        h:add(pf.ext_type, tvb(hop, 1))
        h:add(pf.ext_length, tvb(hop + 1, 1))
        if tvb(hop + 1, 1):uint() ~= HOP_LEN - 2 then
            h:add_proto_expert_info(ef.bad_length, "expected extension type 155, length 8")
        end
        h:add(pf.hop_tag, tvb(hop + 2, HOP_LEN - 2))
    end
    pinfo.cols.info = string.format("Publication origin=%s epoch=%d seq=%d bindings=%d withdrawals=%d%s",
        tostring(tvb(2, 4):ipv4()), tvb(6, 2):uint(), tvb(8, 2):uint(), nb, nw,
        tvb(1, 1):uint() >= 0x80 and " full" or "")
    return n
end

DissectorTable.get("udp.port"):add(PUB_PORT, roam)

-- Field service (UDP 4345, docs/PROTOCOL.md "Field service"): a board's log lines (LOG) and the
-- collector's REWIND. A LOG frame's payload is the log file's bytes: JSON lines.
-- The same port carries the over-the-air update messages (types 0x10-0x1F, firmware/update/
-- wire.py) between the laptop's port 4346 and a board's 4345; a radio-only board gets them in
-- ESP-NOW frames holding IPv4/UDP to 4345, and an agent gets them wrapped in a RELAY.
local FIELD_PORT = 4345
local LAPTOP_PORT = 4346
local FIELD_LOG = 1
local FIELD_REWIND = 2
local FIELD_TAG = 16
local field_types = { [FIELD_LOG] = "LOG", [FIELD_REWIND] = "REWIND" }

local U_HELLO, U_STATUS, U_BEGIN, U_FILE, U_DATA = 0x10, 0x11, 0x12, 0x13, 0x14
local U_COMMIT, U_RESET, U_ACK, U_RELAY = 0x15, 0x16, 0x17, 0x1F
local U_FIRST = 0x10
local U_HEAD = 12 -- type(1) flags(1) node(2) session(4) counter(4)
local U_RELAY_HEAD = 8 -- type(1) flags(1) node(2) address(4)
local U_STATUS_LEN = 52 -- STATUS_FMT ">8s8s8s8sHIHIBBBBBBH"
local U_SET_LEN = 16
local U_RELAY_DEPTH = 4 -- RELAYs in a RELAY dissected (the board drops them anyway)

local update_types = {
    [U_HELLO] = "HELLO", [U_STATUS] = "STATUS", [U_BEGIN] = "BEGIN", [U_FILE] = "FILE",
    [U_DATA] = "DATA", [U_COMMIT] = "COMMIT", [U_RESET] = "RESET", [U_ACK] = "ACK",
    [U_RELAY] = "RELAY",
}
local ack_codes = {
    [0] = "OK", [1] = "BUSY", [2] = "BAD", [3] = "MISMATCH", [4] = "NO_SPACE", [5] = "MISSING",
    [6] = "BAD_CONFIG", [7] = "OFFSET", [8] = "NO_BEGIN",
}
local slot_names = { [0] = "root", [1] = "a", [2] = "b", [255] = "none" }
local pending_names = { [0] = "none", [1] = "fw", [2] = "cfg", [255] = "none" }
local what_names = { [0] = "none", [1] = "firmware", [2] = "config", [255] = "none" }
local kind_names = { [1] = "firmware", [2] = "config" }

-- each update type's body: { smallest length, fixed (nothing may follow) }
local update_body = {
    [U_HELLO] = { 0, true },
    [U_STATUS] = { U_STATUS_LEN, true },
    [U_BEGIN] = { 2 + U_SET_LEN, true },
    [U_FILE] = { 1 + 4 + 32, false },
    [U_DATA] = { 1 + 4, false },
    [U_COMMIT] = { 0, true },
    [U_RESET] = { 0, true },
    [U_ACK] = { 1 + 4, false },
}

local field = Proto("roamfield", "roam field service")
local ff = {
    type = ProtoField.uint8("roamfield.type", "Type", base.DEC, field_types),
    flags = ProtoField.uint8("roamfield.flags", "Flags", base.HEX),
    cont = ProtoField.bool("roamfield.flags.cont", "Starts inside a line", 8, nil, 0x01),
    more = ProtoField.bool("roamfield.flags.more", "Ends inside a line", 8, nil, 0x02),
    node = ProtoField.uint16("roamfield.node", "Node", base.DEC),
    boot = ProtoField.uint16("roamfield.boot", "Sender's boot", base.DEC),
    frame = ProtoField.uint32("roamfield.frame", "Frame", base.DEC),
    file = ProtoField.uint32("roamfield.file", "Log file", base.DEC),
    off = ProtoField.uint32("roamfield.offset", "Offset in the file", base.DEC),
    line = ProtoField.string("roamfield.line", "Line"),
    counter = ProtoField.uint32("roamfield.counter", "Counter", base.DEC),
    tag = ProtoField.bytes("roamfield.tag", "HMAC-SHA256-128 tag"),
}
-- update messages: every field under roamfield.update (a RELAY's message inside is one more
-- roamfield.update subtree, so a filter on roamfield.update.type also finds relayed messages)
local uf = {
    update = ProtoField.none("roamfield.update", "Update message"),
    type = ProtoField.uint8("roamfield.update.type", "Type", base.HEX, update_types),
    flags = ProtoField.uint8("roamfield.update.flags", "Flags", base.HEX),
    node = ProtoField.uint16("roamfield.update.node", "Node", base.DEC),
    session = ProtoField.uint32("roamfield.update.session", "Session", base.HEX),
    counter = ProtoField.uint32("roamfield.update.counter", "Counter", base.DEC),
    body = ProtoField.bytes("roamfield.update.body", "Body"),
    extra = ProtoField.bytes("roamfield.update.extra", "Bytes after the body"),
    tag = ProtoField.bytes("roamfield.update.tag", "HMAC-SHA256-128 tag"),

    st_fw = ProtoField.bytes("roamfield.update.status.fw", "Firmware set (hash, first 8 bytes)"),
    st_prev_fw = ProtoField.bytes("roamfield.update.status.previous_fw",
        "Previous firmware set (hash, first 8 bytes)"),
    st_config = ProtoField.bytes("roamfield.update.status.config", "Config (hash, first 8 bytes)"),
    st_rb_from = ProtoField.bytes("roamfield.update.status.rollback.from",
        "Rolled back from (hash, first 8 bytes)"),
    st_boot = ProtoField.uint16("roamfield.update.status.boot", "Boot", base.DEC),
    st_uptime = ProtoField.uint32("roamfield.update.status.uptime", "Uptime (s)", base.DEC),
    st_mpy = ProtoField.uint16("roamfield.update.status.mpy", ".mpy version", base.DEC),
    st_counter = ProtoField.uint32("roamfield.update.status.counter",
        "Last command counter of the session", base.DEC),
    st_slot = ProtoField.uint8("roamfield.update.status.slot", "Active slot", base.DEC, slot_names),
    st_prev_slot = ProtoField.uint8("roamfield.update.status.previous_slot", "Previous slot",
        base.DEC, slot_names),
    st_pending = ProtoField.uint8("roamfield.update.status.pending", "Pending (on probation)",
        base.DEC, pending_names),
    st_tries = ProtoField.uint8("roamfield.update.status.tries", "Tries of the pending change",
        base.DEC),
    st_rb_what = ProtoField.uint8("roamfield.update.status.rollback.what",
        "Last rollback undid", base.DEC, what_names),
    st_rb_tries = ProtoField.uint8("roamfield.update.status.rollback.tries",
        "Last rollback after tries", base.DEC),
    st_romfs = ProtoField.uint16("roamfield.update.status.romfs_kb",
        "Romfs partition (KiB, 0: none)", base.DEC),

    begin_kind = ProtoField.uint8("roamfield.update.begin.kind", "Kind", base.DEC, kind_names),
    begin_files = ProtoField.uint8("roamfield.update.begin.files", "Files", base.DEC),
    begin_set = ProtoField.bytes("roamfield.update.begin.set", "Set hash"),

    file_index = ProtoField.uint8("roamfield.update.file.index", "File index", base.DEC),
    file_size = ProtoField.uint32("roamfield.update.file.size", "Size", base.DEC),
    file_sha256 = ProtoField.bytes("roamfield.update.file.sha256", "SHA-256"),
    file_path = ProtoField.string("roamfield.update.file.path", "Path", base.UNICODE),

    data_index = ProtoField.uint8("roamfield.update.data.index", "File index", base.DEC),
    data_offset = ProtoField.uint32("roamfield.update.data.offset", "Offset in the file", base.DEC),
    data_len = ProtoField.uint32("roamfield.update.data.len", "Length", base.DEC),
    data_bytes = ProtoField.bytes("roamfield.update.data.bytes", "Bytes"),

    ack_code = ProtoField.uint8("roamfield.update.ack.code", "Code", base.DEC, ack_codes),
    ack_value = ProtoField.uint32("roamfield.update.ack.value", "Value", base.DEC),
    ack_text = ProtoField.string("roamfield.update.ack.text", "Text", base.UNICODE),

    relay_address = ProtoField.ipv4("roamfield.update.relay.address", "Radio-only board's address"),
}
local all_fields = {}
for _, t in ipairs({ ff, uf }) do
    for _, f in pairs(t) do
        all_fields[#all_fields + 1] = f
    end
end
field.fields = all_fields
local fef = {
    short = ProtoExpert.new("roamfield.short", "Field message too short", expert.group.MALFORMED,
        expert.severity.ERROR),
    unknown = ProtoExpert.new("roamfield.unknown", "Unknown field message type",
        expert.group.MALFORMED, expert.severity.WARN),
    u_short = ProtoExpert.new("roamfield.update.short", "Update message truncated",
        expert.group.MALFORMED, expert.severity.ERROR),
    u_cut = ProtoExpert.new("roamfield.update.cut", "Update message cut short by the capture",
        expert.group.MALFORMED, expert.severity.ERROR),
    u_trailing = ProtoExpert.new("roamfield.update.trailing", "Bytes after an update message's body",
        expert.group.MALFORMED, expert.severity.WARN),
    u_unknown = ProtoExpert.new("roamfield.update.unknown", "Unknown update message type",
        expert.group.MALFORMED, expert.severity.WARN),
    u_relay = ProtoExpert.new("roamfield.update.relay_mismatch",
        "RELAY whose message the board drops (another node, or a RELAY again)",
        expert.group.PROTOCOL, expert.severity.WARN),
}
field.experts = fef

local function hex(r)
    return r:bytes():tohex(true)
end

-- Adds the header fields of a too-short update message that fit in `r` (n bytes).
local function partial_head(r, n, sub)
    if n >= 2 then
        sub:add(uf.flags, r:range(1, 1))
    end
    if n >= 4 then
        sub:add(uf.node, r:range(2, 2))
    end
    if n >= 8 then
        sub:add(uf.session, r:range(4, 4))
    end
    if n >= 12 then
        sub:add(uf.counter, r:range(8, 4))
    end
end

-- Dissects the update message in `r` (a TvbRange of at least one byte) below `tree`; returns
-- its summary for the Info column (without the "UPDATE " in front), e.g. "DATA node 9 file 3
-- @1024 (189 bytes)". Problems go in expert info: never a Lua error, whatever the bytes.
local dissect_update

local function dissect_relay(r, n, sub, depth)
    if n <= U_RELAY_HEAD then
        sub:add_proto_expert_info(fef.u_short, string.format(
            "RELAY of %d bytes: its head is %d bytes and a message follows", n, U_RELAY_HEAD))
        partial_head(r, math.min(n, 4), sub)
        return "RELAY [truncated]"
    end
    sub:add(uf.flags, r:range(1, 1))
    sub:add(uf.node, r:range(2, 2))
    sub:add(uf.relay_address, r:range(4, 4))
    local node = r:range(2, 2):uint()
    local inner = r:range(U_RELAY_HEAD)
    local t = inner:range(0, 1):uint()
    if depth >= U_RELAY_DEPTH then -- RELAYs in RELAYs: no end of subtrees for a hostile frame
        sub:add(uf.body, inner)
        sub:add_proto_expert_info(fef.u_relay, "RELAYs nested too deep: the rest not dissected")
        return string.format("RELAY node %d [nested]", node)
    end
    local text = dissect_update(inner, sub, depth + 1)
    if t == U_RELAY then
        sub:add_proto_expert_info(fef.u_relay, "a RELAY inside a RELAY: the board drops it")
    elseif inner:len() >= 4 and inner:range(2, 2):uint() ~= node then
        sub:add_proto_expert_info(fef.u_relay, string.format(
            "RELAY to node %d of a message for node %d", node, inner:range(2, 2):uint()))
    end
    return string.format("RELAY node %d to %s: %s", node, tostring(r:range(4, 4):ipv4()), text)
end

dissect_update = function(r, tree, depth)
    local n = r:len()
    local t = r:range(0, 1):uint()
    local name = update_types[t] or string.format("type 0x%02x", t)
    local sub = tree:add(uf.update, r)
    sub:add(uf.type, r:range(0, 1))
    local text
    if t == U_RELAY then
        text = dissect_relay(r, n, sub, depth)
    elseif n < U_HEAD + FIELD_TAG then
        sub:add_proto_expert_info(fef.u_short, string.format(
            "%s of %d bytes: an update message has at least %d", name, n, U_HEAD + FIELD_TAG))
        partial_head(r, n, sub)
        text = name .. (n >= 4 and string.format(" node %d", r:range(2, 2):uint()) or "")
            .. " [truncated]"
    else
        text = nil
        sub:add(uf.flags, r:range(1, 1))
        sub:add(uf.node, r:range(2, 2))
        sub:add(uf.session, r:range(4, 4))
        local ctr = sub:add(uf.counter, r:range(8, 4))
        if t == U_HELLO then
            ctr:append_text(" (the laptop's nonce)")
        elseif t == U_STATUS then
            ctr:append_text(" (the HELLO's nonce)")
        end
        local node = r:range(2, 2):uint()
        local blen = n - U_HEAD - FIELD_TAG
        local b = blen > 0 and r:range(U_HEAD, blen) or nil
        local spec = update_body[t]
        local prefix = string.format("%s node %d", name, node)
        if spec == nil then
            sub:add_proto_expert_info(fef.u_unknown, string.format("update type 0x%02x", t))
            if b then
                sub:add(uf.body, b)
            end
            text = prefix
        elseif blen < spec[1] then
            sub:add_proto_expert_info(fef.u_short, string.format(
                "%s body of %d bytes, needs %d", name, blen, spec[1]))
            if b then
                sub:add(uf.body, b)
            end
            text = prefix .. " [truncated]"
        else
            if spec[2] and blen > spec[1] then
                sub:add(uf.extra, r:range(U_HEAD + spec[1], blen - spec[1]))
                sub:add_proto_expert_info(fef.u_trailing, string.format(
                    "%s body of %d bytes, expected %d", name, blen, spec[1]))
            end
            if t == U_HELLO then
                text = string.format("%s nonce %d", prefix, r:range(8, 4):uint())
            elseif t == U_STATUS then
                sub:add(uf.st_fw, b:range(0, 8))
                sub:add(uf.st_prev_fw, b:range(8, 8))
                sub:add(uf.st_config, b:range(16, 8))
                sub:add(uf.st_rb_from, b:range(24, 8))
                sub:add(uf.st_boot, b:range(32, 2))
                sub:add(uf.st_uptime, b:range(34, 4))
                sub:add(uf.st_mpy, b:range(38, 2))
                sub:add(uf.st_counter, b:range(40, 4))
                sub:add(uf.st_slot, b:range(44, 1))
                sub:add(uf.st_prev_slot, b:range(45, 1))
                sub:add(uf.st_pending, b:range(46, 1))
                sub:add(uf.st_tries, b:range(47, 1))
                sub:add(uf.st_rb_what, b:range(48, 1))
                sub:add(uf.st_rb_tries, b:range(49, 1))
                sub:add(uf.st_romfs, b:range(50, 2))
                local slot = b:range(44, 1):uint()
                local pending = b:range(46, 1):uint()
                text = string.format("%s session 0x%08x fw %s slot %s boot %d", prefix,
                    r:range(4, 4):uint(), hex(b:range(0, 8)),
                    slot_names[slot] or tostring(slot), b:range(32, 2):uint())
                if pending_names[pending] ~= "none" then
                    text = text .. " pending " .. (pending_names[pending] or tostring(pending))
                end
            elseif t == U_BEGIN then
                sub:add(uf.begin_kind, b:range(0, 1))
                sub:add(uf.begin_files, b:range(1, 1))
                sub:add(uf.begin_set, b:range(2, U_SET_LEN))
                local kind = b:range(0, 1):uint()
                text = string.format("%s %s, %d files, set %s", prefix,
                    kind_names[kind] or string.format("kind %d", kind), b:range(1, 1):uint(),
                    hex(b:range(2, 8)))
            elseif t == U_FILE then
                sub:add(uf.file_index, b:range(0, 1))
                sub:add(uf.file_size, b:range(1, 4))
                sub:add(uf.file_sha256, b:range(5, 32))
                local path = ""
                if blen > 37 then
                    local p = b:range(37)
                    sub:add_packet_field(uf.file_path, p, ENC_UTF_8)
                    path = " " .. p:string(ENC_UTF_8)
                end
                text = string.format("%s file %d%s (%d bytes)", prefix, b:range(0, 1):uint(), path,
                    b:range(1, 4):uint())
            elseif t == U_DATA then
                sub:add(uf.data_index, b:range(0, 1))
                sub:add(uf.data_offset, b:range(1, 4))
                local dlen = blen - 5
                if dlen > 0 then
                    sub:add(uf.data_len, b:range(5), dlen):set_generated()
                    sub:add(uf.data_bytes, b:range(5))
                else
                    sub:add(uf.data_len, dlen):set_generated()
                end
                text = string.format("%s file %d @%d (%d bytes)", prefix, b:range(0, 1):uint(),
                    b:range(1, 4):uint(), dlen)
            elseif t == U_ACK then
                sub:add(uf.ack_code, b:range(0, 1))
                sub:add(uf.ack_value, b:range(1, 4))
                local code = b:range(0, 1):uint()
                text = string.format("%s %s %d", prefix, ack_codes[code] or string.format("code %d", code),
                    b:range(1, 4):uint())
                if blen > 5 then
                    local m = b:range(5)
                    sub:add_packet_field(uf.ack_text, m, ENC_UTF_8)
                    text = text .. ' "' .. m:string(ENC_UTF_8) .. '"'
                end
            else -- COMMIT, RESET: empty bodies
                text = prefix
            end
        end
        sub:add(uf.tag, r:range(n - FIELD_TAG, FIELD_TAG))
    end
    sub:append_text(": " .. text)
    return text
end

function field.dissector(tvb, pinfo, tree)
    local n = tvb:len()
    pinfo.cols.protocol = "roam field"
    local sub = tree:add(field, tvb(), "roam field service")
    if n >= 1 and tvb(0, 1):uint() >= U_FIRST and tvb(0, 1):uint() <= U_RELAY then
        if n < tvb:reported_len() then
            -- the capture kept part of the datagram (snap length): the tag is not where it seems
            sub:add(uf.type, tvb(0, 1))
            sub:add_proto_expert_info(fef.u_cut, string.format("%d of %d bytes captured", n,
                tvb:reported_len()))
            pinfo.cols.info = string.format("UPDATE %s [cut by the capture]",
                update_types[tvb(0, 1):uint()] or "?")
            return n
        end
        pinfo.cols.info = "UPDATE " .. dissect_update(tvb(), sub, 0)
        return n
    end
    if n < 4 + FIELD_TAG then
        sub:add_proto_expert_info(fef.short)
        return n
    end
    local t = tvb(0, 1):uint()
    sub:add(ff.type, tvb(0, 1))
    local fl = sub:add(ff.flags, tvb(1, 1))
    sub:add(ff.node, tvb(2, 2))
    if t == FIELD_LOG and n >= 18 + FIELD_TAG then
        fl:add(ff.cont, tvb(1, 1))
        fl:add(ff.more, tvb(1, 1))
        sub:add(ff.boot, tvb(4, 2))
        sub:add(ff.frame, tvb(6, 4))
        sub:add(ff.file, tvb(10, 4))
        sub:add(ff.off, tvb(14, 4))
        local data_len = n - 18 - FIELD_TAG
        local data = tvb(18, data_len)
        local start = 0
        local lines = 0
        for i = 0, data_len - 1 do
            if data(i, 1):uint() == 10 then
                if i > start then
                    sub:add(ff.line, data(start, i - start))
                end
                lines = lines + 1
                start = i + 1
            end
        end
        if start < data_len then
            sub:add(ff.line, data(start, data_len - start)):append_text(" (part)")
        end
        pinfo.cols.info = string.format("LOG node=%d boot=%d frame=%d file=%d off=%d lines=%d",
            tvb(2, 2):uint(), tvb(4, 2):uint(), tvb(6, 4):uint(), tvb(10, 4):uint(),
            tvb(14, 4):uint(), lines)
    elseif t == FIELD_REWIND and n == 8 + FIELD_TAG then
        sub:add(ff.counter, tvb(4, 4))
        pinfo.cols.info = string.format("REWIND node=%d counter=%d", tvb(2, 2):uint(),
            tvb(4, 4):uint())
    else
        sub:add_proto_expert_info(fef.unknown)
        return n
    end
    sub:add(ff.tag, tvb(n - FIELD_TAG, FIELD_TAG))
    return n
end

-- 4345: a board's end (and the collector's); 4346: the laptop's end of an update session
local udp_port = DissectorTable.get("udp.port")
udp_port:add(FIELD_PORT, field)
udp_port:add(LAPTOP_PORT, field)

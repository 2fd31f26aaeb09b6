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
--   * the region publication on UDP port 4344.
--
-- Every field lives under `roam.` so that one display filter `roam` selects all of it.
-- Use:   tshark -X lua_script:tools/wireshark/roam.lua -r capture.pcap -V
-- or copy this file into Wireshark's personal plugins folder.

local ICMP_RTRADVERT = 9
local ICMP_RTRSOLICIT = 10

local EXT_PAD = 0
local EXT_AGENT_INFO = 150
local EXT_AUTH = 151
local EXT_SOL_LEVEL = 152

local PUB_PORT = 4344
local PUB_TYPE = 0x52
local PUB_HEADER = 12
local AUTH_LEN = 20 -- SPI (4) + truncated HMAC-SHA256 tag (16)

local ext_names = {
    [0] = "Pad",
    [16] = "Mobility Agent Advertisement (RFC 5944)",
    [19] = "Prefix-Lengths (RFC 5944)",
    [24] = "Challenge (RFC 4721)",
    [EXT_AGENT_INFO] = "roam agent info",
    [EXT_AUTH] = "roam authentication",
    [EXT_SOL_LEVEL] = "roam solicitation level",
}

local level_names = { [1] = "host-to-host contact", [2] = "routing service" }

local outage_names = { [0xFFFF] = "none planned" }

local function spi_name(spi)
    if spi == 0x100 then
        return "cell key"
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
    host_reply = ProtoField.bool("roam.agent.host_reply", "Host reply (no agent advertisement extension)"),

    sol_level = ProtoField.uint8("roam.sol.level", "Requested service level", base.DEC, level_names),
    sol_attempt = ProtoField.uint8("roam.sol.attempt", "Attempt", base.DEC),

    auth_spi = ProtoField.uint32("roam.auth.spi", "SPI", base.HEX),
    auth_tag = ProtoField.bytes("roam.auth.tag", "HMAC-SHA256-128 tag"),

    pub_type = ProtoField.uint8("roam.pub.type", "Message type", base.HEX, { [PUB_TYPE] = "Publication" }),
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
local ext_data_len = { [EXT_AGENT_INFO] = 11, [EXT_AUTH] = AUTH_LEN, [EXT_SOL_LEVEL] = 2 }

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
    pinfo.cols.info = string.format("Publication origin=%s epoch=%d seq=%d bindings=%d withdrawals=%d%s",
        tostring(tvb(2, 4):ipv4()), tvb(6, 2):uint(), tvb(8, 2):uint(), nb, nw,
        tvb(1, 1):uint() >= 0x80 and " full" or "")
    return n
end

DissectorTable.get("udp.port"):add(PUB_PORT, roam)

-- Field service (UDP 4345, docs/PROTOCOL.md "Field service"): a board's log lines (LOG) and the
-- collector's REWIND. A LOG frame's payload is the log file's bytes: JSON lines.
local FIELD_PORT = 4345
local FIELD_LOG = 1
local FIELD_REWIND = 2
local FIELD_TAG = 16
local field_types = { [FIELD_LOG] = "LOG", [FIELD_REWIND] = "REWIND" }

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
field.fields = ff
local fef = {
    short = ProtoExpert.new("roamfield.short", "Field message too short", expert.group.MALFORMED,
        expert.severity.ERROR),
    unknown = ProtoExpert.new("roamfield.unknown", "Unknown field message type",
        expert.group.MALFORMED, expert.severity.WARN),
}
field.experts = fef

function field.dissector(tvb, pinfo, tree)
    local n = tvb:len()
    pinfo.cols.protocol = "roam field"
    local sub = tree:add(field, tvb(), "roam field service")
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

DissectorTable.get("udp.port"):add(FIELD_PORT, field)

"""hosttools.pcap: the capture files the air and the simulator write."""

import io
import struct

import pytest

from hosttools.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PcapError,
    PcapReader,
    PcapWriter,
    read_pcap,
)

RECORDS = [
    (0, b""),
    (1, b"\x45"),
    (999_999, bytes(range(256))),
    (1_700_000_000_123_456, b"x" * 250),
]


def test_round_trip_through_a_path(tmp_path):
    path = tmp_path / "a.pcap"
    with PcapWriter(path) as w:
        for t_us, data in RECORDS:
            w.write(t_us, data)
        assert w.count == len(RECORDS)
    assert list(read_pcap(path)) == RECORDS
    with PcapReader(str(path)) as r:
        assert r.linktype == LINKTYPE_RAW


def test_header_is_classic_pcap_microseconds_raw_ip(tmp_path):
    path = tmp_path / "h.pcap"
    with PcapWriter(path) as w:
        w.write(2_000_003, b"\x45\x00")
    raw = path.read_bytes()
    magic, major, minor, zone, sigfigs, snaplen, network = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, zone, sigfigs, network) == (0xA1B2C3D4, 2, 4, 0, 0, 101)
    assert snaplen == 65535
    assert struct.unpack_from("<IIII", raw, 24) == (2, 3, 2, 2)
    assert raw[40:] == b"\x45\x00"


def test_writes_into_a_caller_file_object_and_leaves_it_open():
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype=LINKTYPE_ETHERNET)
    w.write(5, b"abc")
    w.close()
    assert not buf.closed
    buf.seek(0)
    r = PcapReader(buf)
    assert r.linktype == LINKTYPE_ETHERNET
    assert list(r) == [(5, b"abc")]


def test_header_is_on_disk_at_once_and_flush_leaves_whole_records(tmp_path):
    path = tmp_path / "live.pcap"
    w = PcapWriter(path)
    assert list(read_pcap(path)) == []  # an empty but valid capture right after opening
    for i in range(1000):
        w.write(i, b"p%03d" % i)
    # Records are buffered: whatever reached the file so far ends on a record boundary.
    partial = list(read_pcap(path))
    assert partial == [(i, b"p%03d" % i) for i in range(len(partial))]
    w.flush()
    assert len(list(read_pcap(path))) == 1000
    w.close()
    w.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        w.write(0, b"")


def test_large_capture_spans_several_buffer_flushes(tmp_path):
    path = tmp_path / "big.pcap"
    frame = bytes(range(200))
    with PcapWriter(path) as w:
        for i in range(20_000):
            w.write(i * 1000, frame)
    n = 0
    for t_us, data in read_pcap(path):
        assert t_us == n * 1000 and data == frame
        n += 1
    assert n == 20_000


def test_writer_refuses_what_the_format_cannot_hold(tmp_path):
    with PcapWriter(tmp_path / "r.pcap") as w:
        with pytest.raises(ValueError, match="snaplen"):
            w.write(0, bytes(65536))
        with pytest.raises(ValueError, match="negative"):
            w.write(-1, b"")
        with pytest.raises(ValueError, match="32-bit"):
            w.write((1 << 32) * 1_000_000, b"")
    with pytest.raises(ValueError, match="linktype"):
        PcapWriter(io.BytesIO(), linktype=70000)


def test_reads_big_endian_and_nanosecond_files():
    be = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    be += struct.pack(">IIII", 7, 8, 2, 2) + b"hi"
    assert list(read_pcap(io.BytesIO(be))) == [(7_000_008, b"hi")]
    ns = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101)
    ns += struct.pack("<IIII", 1, 999_999_999, 1, 1) + b"z"
    assert list(read_pcap(io.BytesIO(ns))) == [(1_999_999, b"z")]


def _good():
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write(1, b"abcd")
        w.write(2, b"efgh")
    return buf.getvalue()


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "not a pcap file"),
        (b"\xd4\xc3\xb2", "not a pcap file"),
        (b"\x0a\x0d\x0d\x0a" + bytes(20), "magic 0x0a0d0d0a"),  # pcapng
        (_good()[:-1], "truncated record at offset 44"),
        (_good()[:30], "truncated record header at offset 24"),
        (_good()[:24] + struct.pack("<IIII", 0, 0, 70000, 70000), "snaplen"),
        (_good()[:24] + struct.pack("<IIII", 0, 1_000_000, 0, 0), "sub-second"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 1, 0, 0, 0, 65535, 101), "version 1"),
    ],
)
def test_malformed_files_raise_a_clear_error(raw, message):
    with pytest.raises(PcapError, match=message):
        list(read_pcap(io.BytesIO(raw)))


def test_tshark_reads_what_the_writer_wrote(tmp_path, tshark):
    import subprocess

    # A minimal IPv4/UDP packet (checksums zero: tshark does not validate them by default).
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 29, 0, 0, 64, 17, 0, bytes(4), bytes(4))
    pkt = ip + struct.pack(">HHHH", 5000, 5000, 9, 0) + b"!"
    path = tmp_path / "t.pcap"
    with PcapWriter(path) as w:
        w.write(1_500_000, pkt)
        w.write(2_250_000, pkt)
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.dstport"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert [line.split("\t") for line in out if line] == [
        ["1.500000000", "5000"],
        ["2.250000000", "5000"],
    ]

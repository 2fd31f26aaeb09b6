"""Write and read classic libpcap capture files.

The air (lab) and the simulator record every frame they carry. Each frame is a complete IPv4
packet, so the natural link type is LINKTYPE_RAW (101): Wireshark and tshark decode the file
without any help (see docs/PROTOCOL.md).

A simulator run writes hundreds of thousands of records, so the writer keeps its own buffer of
*complete* records and hands it to the file in one write when it grows past a threshold. The file
on disk therefore always ends on a record boundary after every flush, and a capture that is read
while the run continues (or after it was killed between flushes) is still a valid pcap.
"""

import struct

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link-layer header

MAGIC_US = 0xA1B2C3D4  # timestamps in microseconds
MAGIC_NS = 0xA1B23C4D  # timestamps in nanoseconds (read only)
SNAPLEN = 65535

_GLOBAL = struct.Struct("<IHHiIII")  # magic, major, minor, thiszone, sigfigs, snaplen, network
_RECORD_LE = struct.Struct("<IIII")  # ts_sec, ts_frac, incl_len, orig_len
_RECORD_BE = struct.Struct(">IIII")

_FLUSH_AT = 1 << 16  # bytes of buffered records before one write to the file


class PcapError(ValueError):
    """The file is not a well-formed classic pcap file."""


class _PcapFile:
    """A capture file, opened from a path (and then closed with this object) or handed over
    as a file object (left open); a context manager that closes it."""

    def _open(self, path_or_fileobj, method, mode):
        """self._file: ``path_or_fileobj`` if it has ``method`` (``read``, ``write``), else that
        path opened in ``mode``."""
        if hasattr(path_or_fileobj, method):
            self._file = path_or_fileobj
            self._owns_file = False
            self.name = getattr(path_or_fileobj, "name", "<file>")
        else:
            self._file = open(path_or_fileobj, mode)
            self._owns_file = True
            self.name = str(path_or_fileobj)

    def close(self):
        if self._owns_file:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False


class PcapWriter(_PcapFile):
    """Write (t_us, bytes) records to a pcap file.

    `path_or_fileobj` is a path (the file is created or truncated) or a binary file object opened
    for writing (left open by close(), only flushed). Records must fit SNAPLEN bytes; a larger
    one is refused, never truncated.
    """

    def __init__(self, path_or_fileobj, linktype=LINKTYPE_RAW):
        if not isinstance(linktype, int) or not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"pcap linktype must be an int in 0..65535, got {linktype!r}")
        self._open(path_or_fileobj, "write", "wb")
        self.linktype = linktype
        self.count = 0  # records written so far
        self._buf = bytearray(_GLOBAL.pack(MAGIC_US, 2, 4, 0, 0, SNAPLEN, linktype))
        self._closed = False
        self.flush()  # the header alone is already a valid (empty) capture

    def write(self, t_us, data):
        """Append one record: `t_us` microseconds since the epoch (or since any origin the
        caller chooses, e.g. the simulator's virtual time 0), `data` the packet bytes."""
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        n = len(data)
        if n > SNAPLEN:
            raise ValueError(f"pcap record of {n} bytes exceeds the snaplen {SNAPLEN}")
        if t_us < 0:
            raise ValueError(f"pcap timestamp must not be negative, got {t_us}")
        sec, usec = divmod(t_us, 1000000)
        if sec > 0xFFFFFFFF:
            raise ValueError(f"pcap timestamp {t_us} us is beyond the 32-bit seconds field")
        buf = self._buf
        buf += _RECORD_LE.pack(sec, usec, n, n)
        buf += data
        self.count += 1
        if len(buf) >= _FLUSH_AT:
            self._file.write(buf)
            del buf[:]

    def flush(self):
        """Hand every buffered record to the file and flush the file object."""
        if self._buf:
            self._file.write(self._buf)
            del self._buf[:]
        self._file.flush()

    def close(self):
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            super().close()


class PcapReader(_PcapFile):
    """Iterate the records of a pcap file as (t_us, bytes).

    Accepts both byte orders and both microsecond and nanosecond timestamps (nanoseconds are
    floored to microseconds). `linktype` holds the file's link type after construction.
    Anything malformed (bad magic, short header, truncated record, record longer than the
    snaplen) raises PcapError naming the byte offset.
    """

    def __init__(self, path_or_fileobj):
        self._open(path_or_fileobj, "read", "rb")
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise

    def _read_header(self):
        head = self._file.read(_GLOBAL.size)
        if len(head) < _GLOBAL.size:
            raise PcapError(
                f"{self.name}: not a pcap file: {len(head)} bytes,"
                f" the global header needs {_GLOBAL.size}"
            )
        magic_le = struct.unpack_from("<I", head)[0]
        magic_be = struct.unpack_from(">I", head)[0]
        if magic_le in (MAGIC_US, MAGIC_NS):
            order, magic = "<", magic_le
        elif magic_be in (MAGIC_US, MAGIC_NS):
            order, magic = ">", magic_be
        else:
            raise PcapError(
                f"{self.name}: not a pcap file: magic 0x{magic_le:08x}"
                " (pcapng and other formats are not read)"
            )
        _m, major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(
            order + "IHHiIII", head
        )
        if major != 2:
            raise PcapError(f"{self.name}: unsupported pcap version {major}")
        self._record = _RECORD_LE if order == "<" else _RECORD_BE
        self._nanos = magic == MAGIC_NS
        # A snaplen of 0 is written by some tools; accept any record up to 256 KiB then.
        self.snaplen = snaplen if snaplen else 262144
        self.linktype = network & 0x0FFFFFFF  # upper bits may carry FCS information

    def __iter__(self):
        read = self._file.read
        rec = self._record
        rec_size = rec.size
        offset = _GLOBAL.size
        nanos = self._nanos
        snaplen = max(self.snaplen, SNAPLEN)
        while True:
            head = read(rec_size)
            if not head:
                return
            if len(head) < rec_size:
                raise PcapError(
                    f"{self.name}: truncated record header at offset {offset}"
                    f" ({len(head)} of {rec_size} bytes)"
                )
            sec, frac, incl, _orig = rec.unpack(head)
            if incl > snaplen:
                raise PcapError(
                    f"{self.name}: record at offset {offset} claims {incl} bytes,"
                    f" more than the snaplen {snaplen}"
                )
            if frac >= (1000000000 if nanos else 1000000):
                raise PcapError(
                    f"{self.name}: record at offset {offset} has a sub-second field of {frac}"
                )
            data = read(incl)
            if len(data) < incl:
                raise PcapError(
                    f"{self.name}: truncated record at offset {offset}"
                    f" ({len(data)} of {incl} data bytes)"
                )
            yield sec * 1000000 + (frac // 1000 if nanos else frac), data
            offset += rec_size + incl


def read_pcap(path_or_fileobj):
    """Yield (t_us, bytes) for every record of a pcap file; raises PcapError if malformed."""
    with PcapReader(path_or_fileobj) as reader:
        yield from reader

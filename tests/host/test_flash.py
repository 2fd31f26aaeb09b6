"""`roam flash`: image checks before the board is touched, dry run, chip mismatch, the whole
erase/write/verify/reset sequence on an emulated chip (tests/host/chipsim.py: the only mock),
and every error path as one line with nothing written."""

import os
import tty

import pytest
import serial
from chipsim import build_image, make_chip
from click.testing import CliRunner
from esptool.util import FatalError

from hosttools import flash
from hosttools.cli import main
from hosttools.errors import RoamError
from hosttools.fleet import load_board_type


@pytest.fixture
def boards(tmp_path, monkeypatch):
    d = tmp_path / "boards"
    d.mkdir()
    (d / "esp32.toml").write_text(
        'chip = "esp32"\nflash_offset = 0x1000\n'
        'download = "https://micropython.org/download/ESP32_GENERIC/"\n'
    )
    (d / "esp32s3.toml").write_text('chip = "esp32s3"\nflash_offset = 0x0\n')
    monkeypatch.setenv("ROAM_BOARDS_DIR", str(d))
    monkeypatch.setenv("ROAM_FIRMWARE_CACHE", str(tmp_path / "cache"))
    return d


@pytest.fixture
def pty_port():
    m, s = os.openpty()
    tty.setraw(s)
    yield os.ttyname(s)
    os.close(m)
    os.close(s)


@pytest.fixture
def no_board(monkeypatch):
    """Fails the test if anything tries to talk to a chip."""

    def refuse(port, baud):
        raise AssertionError("the board was touched")

    monkeypatch.setattr(flash, "connect_chip", refuse)


def invoke(*args):
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output, r.stderr if hasattr(r, "stderr") else r.output


def image_file(tmp_path, chip="esp32", name="fw.bin"):
    p = tmp_path / name
    p.write_bytes(build_image(chip))
    return p


def test_dry_run_prints_the_esptool_command(boards, tmp_path, no_board):
    img = image_file(tmp_path)
    code, out, _ = invoke(
        "flash", "--port", "/dev/ttyUSB7", "--type", "esp32", "--firmware", str(img), "--dry-run"
    )
    assert code == 0, out
    assert out.strip() == (
        "esptool --chip esp32 --port /dev/ttyUSB7 --baud 460800 --before "
        "default-reset --after hard-reset write-flash --erase-all 0x1000 " + str(img)
    )


def test_dry_run_uses_the_newest_cached_image(boards, tmp_path, no_board):
    cache = tmp_path / "cache" / "esp32s3"
    cache.mkdir(parents=True)
    for name in ("ESP32_GENERIC_S3-v1.27.0.bin", "ESP32_GENERIC_S3-v1.29.0.bin"):
        (cache / name).write_bytes(build_image("esp32s3"))
    code, out, _ = invoke("flash", "--port", "/dev/x", "--type", "esp32s3", "--dry-run")
    assert code == 0, out
    assert out.split()[-2:] == ["0x0", str(cache / "ESP32_GENERIC_S3-v1.29.0.bin")]


@pytest.mark.parametrize(
    "content,expect",
    [
        (b"", "is empty"),
        (b"UF2\n" + bytes(500), "UF2"),
        (b"\x00" * 400, "not an ESP firmware image"),
        (None, "is an image for ESP32-S3, but board type esp32 is ESP32"),
        ("truncated", "esp32 image (it ends too early (40 bytes): a cut-off download?)"),
        # issue 18 item 6: cut in the header, cut at the end, a damaged header byte: one
        # readable line, none of esptool's internals
        ("cut10", "not a valid esp32 image (it ends too early (10 bytes)"),
        ("cut-40", "not a valid esp32 image (it ends too early (296 bytes)"),
        ("digest", "not a valid esp32 image (its header or segments are damaged)"),
    ],
)
def test_bad_images_are_refused_before_the_board_is_touched(
    boards, tmp_path, pty_port, no_board, content, expect
):
    img = tmp_path / "bad.bin"
    if content is None:
        img.write_bytes(build_image("esp32s3"))
    elif content == "truncated":
        img.write_bytes(build_image("esp32")[:40])
    elif content == "cut10":
        img.write_bytes(build_image("esp32")[:10])
    elif content == "cut-40":
        img.write_bytes(build_image("esp32")[:-40])
    elif content == "digest":  # the extended header's append_digest byte: 0 or 1
        good = build_image("esp32")
        img.write_bytes(good[:23] + bytes([145]) + good[24:])
    else:
        img.write_bytes(content)
    code, out, _ = invoke("flash", "--port", pty_port, "--type", "esp32", "--firmware", str(img))
    assert code == 1
    assert expect in out
    assert "https://micropython.org/download/ESP32_GENERIC/" in out
    assert out.count("\n") == 1 and out.startswith("roam: error: ")
    for internal in ("%", "(0x", "ord()", "unpack", "segment 0x", "(("):
        assert internal not in out, out


def test_missing_image_says_where_to_get_it(boards, no_board):
    code, out, _ = invoke("flash", "--port", "/dev/x", "--type", "esp32s3", "--dry-run")
    assert code == 1
    assert "no MicroPython image for board type esp32s3" in out
    assert "https://micropython.org/download/?mcu=esp32s3" in out


def test_unknown_board_type(boards, no_board, tmp_path):
    code, out, _ = invoke("flash", "--port", "/dev/x", "--type", "esp8266", "--dry-run")
    assert code == 2 and "unknown board type 'esp8266' (known: esp32, esp32s3)" in out


def test_flash_writes_verifies_and_resets(boards, tmp_path, pty_port, monkeypatch):
    chip = make_chip("esp32")
    monkeypatch.setattr(flash, "connect_chip", lambda port, baud: chip)
    img = image_file(tmp_path)
    code, out, _ = invoke("flash", "--port", pty_port, "--type", "esp32", "--firmware", str(img))
    assert code == 0, out
    assert chip.calls[0] == "erase" and ("write", 0x1000) in chip.calls
    assert "md5" in chip.calls and chip.calls[-1] == "hard_reset"
    data = img.read_bytes()
    # esptool may patch the flash-size byte of the header; the rest is the image.
    assert chip.flash[0x1000 + 4 : 0x1000 + len(data)] == data[4:]
    assert "ESP32 flashed with fw.bin at 0x1000" in out


def test_wrong_chip_is_refused_and_nothing_written(boards, tmp_path, pty_port, monkeypatch):
    chip = make_chip("esp32s3")
    monkeypatch.setattr(flash, "connect_chip", lambda port, baud: chip)
    code, out, _ = invoke(
        "flash", "--port", pty_port, "--type", "esp32", "--firmware", str(image_file(tmp_path))
    )
    assert code == 1
    assert "board on %s is an ESP32-S3, but board type esp32 needs an ESP32" % pty_port in out
    assert chip.calls == [] and chip.flash == bytearray(b"\xff" * len(chip.flash))


def test_board_not_answering(boards, tmp_path, pty_port, monkeypatch):
    def silent(port, baud):
        raise FatalError("Failed to connect to Espressif device: No serial data received.")

    monkeypatch.setattr(flash, "connect_chip", silent)
    code, out, _ = invoke(
        "flash", "--port", pty_port, "--type", "esp32", "--firmware", str(image_file(tmp_path))
    )
    assert code == 1 and "does not answer esptool" in out and out.count("\n") == 1


def test_missing_and_busy_ports(boards, tmp_path, pty_port, no_board):
    img = str(image_file(tmp_path))
    code, out, _ = invoke(
        "flash", "--port", str(tmp_path / "ttyNONE"), "--type", "esp32", "--firmware", img
    )
    assert code == 1 and "does not exist" in out
    holder = serial.Serial(pty_port, exclusive=True)
    try:
        code, out, _ = invoke("flash", "--port", pty_port, "--type", "esp32", "--firmware", img)
    finally:
        holder.close()
    assert code == 1 and "is busy" in out


def test_board_definition_read(boards):
    bt = load_board_type("esp32")
    assert (bt.chip, bt.flash_offset) == ("esp32", 0x1000)
    with pytest.raises(RoamError, match="unknown board type"):
        load_board_type("../etc/passwd")


def test_make_flash_dry_run_without_a_board(tmp_path):
    """`make flash PORT=.. BOARD=.. NODE=.. DRY_RUN=1`: the esptool command line, what deploy
    would send and the config provision would write (keys hidden), with no board plugged in."""
    import subprocess
    import sys

    from hosttools.paths import PACKAGE_DIR

    img = image_file(tmp_path)
    port = str(tmp_path / "ttyUSB0")  # no such port: nothing may try to open it
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[[board]]\nname = "m1"\nport = "%s"\nboard = "esp32"\nrole = "mobile"\nnode_id = 9\n'
        'address = "10.64.0.9"\nhome_agent = "10.0.0.5"\nchannel = 1\n' % port
    )
    key = "5a" * 16
    keys = tmp_path / "keys.toml"
    keys.write_text('[default]\ncell = "%s"\nregion = "%s"\n' % (key, key))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    r = subprocess.run(
        ["make", "--no-print-directory", "-o", "venv", "flash", "PORT=" + port, "BOARD=esp32"]
        + ["NODE=m1", "DRY_RUN=1", "FLEET=%s" % fleet, "KEYS=%s" % keys, "FIRMWARE=%s" % img],
        cwd=str(PACKAGE_DIR.parent),  # the checkout's Makefile
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert (
        "esptool --chip esp32 --port %s --baud 460800 --before default-reset --after hard-reset "
        "write-flash --erase-all 0x1000 %s" % (port, img)
    ) in lines
    assert any(ln.startswith("m1: would send to %s" % port) and "soft-reset" in ln for ln in lines)
    wrote = [ln for ln in lines if ln.startswith("m1: would write config.json on %s" % port)]
    assert len(wrote) == 1 and '"role": "mobile"' in wrote[0] and "<16-byte key>" in wrote[0]
    assert key not in r.stdout + r.stderr
    assert not os.path.exists(port)


def test_dry_runs_need_no_board_plugged_in(boards, tmp_path, monkeypatch):
    """Issue 18 item 9: a fleet of boards named by USB serial number, none plugged in: flash,
    deploy and provision --dry-run say what they would do (deploy lists its files); without
    --dry-run the board is missing, as before."""
    img = image_file(tmp_path)
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[[board]]\nname = "fa1"\nserial = "5C8A1B2F"\nboard = "esp32"\nrole = "agent"\n'
        'node_id = 1\naddress = "10.0.0.1"\nchannel = 1\n'
    )
    keys = tmp_path / "keys.toml"
    keys.write_text('[default]\ncell = "%s"\nregion = "%s"\n' % ("5a" * 16, "6b" * 16))
    monkeypatch.setattr("hosttools.targets.serial_ports", lambda: [])
    absent = "<USB serial 5C8A1B2F: not connected>"
    f = ["--fleet", str(fleet)]
    code, out, _ = invoke("flash", *f, "--firmware", str(img), "--dry-run")
    assert code == 0, out
    assert "--port '%s'" % absent in out and str(img) in out
    code, out, _ = invoke("deploy", *f, "--dry-run")
    assert code == 0, out
    assert out.startswith("fa1: would send to %s those of " % absent), out
    listed = [ln.split()[0] for ln in out.splitlines() if ln.startswith("  ")]
    assert "main.py" in listed and "boot.py" in listed and len(listed) > 10, out
    code, out, _ = invoke("provision", *f, "--keys", str(keys), "--dry-run")
    assert code == 0, out
    assert out.startswith("fa1: would write config.json on %s" % absent), out
    assert "5a5a" not in out
    code, out, _ = invoke("deploy", *f)
    assert code == 1 and "board 'fa1' (USB serial 5C8A1B2F) is not connected" in out


class _Port:
    def __init__(self, device, vid=0x303A, serial_number="ABC"):
        self.device, self.vid, self.serial_number = device, vid, serial_number


def test_one_board_plugged_in_needs_no_port(boards, tmp_path, monkeypatch):
    """As mpremote does: no fleet file and one USB board plugged in, the commands act on it
    (said on stderr); none or two: one line saying what to do. $ROAM_PORT names a port as
    --port does (not a mistake for --ota); -b is --baud, as esptool has it."""
    monkeypatch.chdir(tmp_path)
    ports = [_Port("/dev/ttyS0", vid=None), _Port("/dev/ttyACM3")]
    monkeypatch.setattr("hosttools.targets.serial_ports", lambda: ports)
    r = CliRunner().invoke(main, ["deploy", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ttyACM3: would send to /dev/ttyACM3 ")
    assert r.stderr == "roam: the one board plugged in: /dev/ttyACM3\n"
    img = image_file(tmp_path)
    r = CliRunner().invoke(
        main, ["flash", "--type", "esp32", "--firmware", str(img), "--dry-run", "-b", "115200"]
    )
    assert r.exit_code == 0, r.output
    assert "--port /dev/ttyACM3 --baud 115200 " in r.stdout
    ports.append(_Port("/dev/ttyUSB0"))
    r = CliRunner().invoke(main, ["provision", "--dry-run"])
    assert r.exit_code == 2
    assert r.stderr == (
        "roam: error: no fleet file, and 2 boards plugged in (/dev/ttyACM3, /dev/ttyUSB0): "
        "name one with --port, or describe them in fleet.toml (docs/USER_GUIDE.md)\n"
    )
    r = CliRunner().invoke(main, ["deploy", "--dry-run"], env={"ROAM_PORT": "/dev/ttyUSB0"})
    assert r.exit_code == 0 and r.stdout.startswith("ttyUSB0: would send to /dev/ttyUSB0 ")
    r = CliRunner().invoke(main, ["deploy", "--ota", "--port", "/dev/ttyUSB0"])
    assert r.exit_code == 2 and "--ota goes by the fleet file" in r.stderr
    r = CliRunner().invoke(main, ["deploy", "--ota"], env={"ROAM_PORT": "/dev/ttyUSB0"})
    assert "--ota goes by" not in r.stderr and r.stderr.startswith("roam: error: no fleet file")
    ports[:] = []
    r = CliRunner().invoke(main, ["test"])
    assert r.exit_code == 2 and "no fleet file and no board plugged in" in r.stderr


# MicroPython's partitions-4MiB.csv (ports/esp32), the table of micropython.org's ESP32 images
STOCK_TABLE = """nvs,      data, nvs,     0x9000,  0x6000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x1F0000,
vfs,      data, fat,     0x200000, 0x200000,
"""


def whole_flash_image(tmp_path, chip="esp32", offset=0x1000):
    """An image as micropython.org ships them: bootloader at ``offset``, the partition table at
    0x8000, the app at 0x10000, in one file written at ``offset``."""
    from esp_idf_defs import PartitionTable

    table = PartitionTable.from_csv(STOCK_TABLE).to_binary()
    data = bytearray(b"\xff" * (0x10000 - offset))
    boot = build_image(chip)
    data[: len(boot)] = boot
    data[0x8000 - offset : 0x8000 - offset + len(table)] = table
    data += build_image(chip, payload=b"\x02" * 1024)
    p = tmp_path / "whole.bin"
    p.write_bytes(bytes(data))
    return p


def _table_at(flash, at=0x8000):
    from esp_idf_defs import PartitionTable

    return {
        p.name: (p.subtype, p.offset, p.size)
        for p in PartitionTable.from_binary(flash[at : at + 0xC00])
    }


def test_flash_gives_the_board_a_romfs_partition(boards, tmp_path, pty_port, monkeypatch):
    """The image's own partition table, with the board file's romfs_kb carved from the front of
    the filesystem's partition (hosttools/partitions.py); --no-romfs writes it as it is."""
    (boards / "esp32.toml").write_text((boards / "esp32.toml").read_text() + "romfs_kb = 256\n")
    img = whole_flash_image(tmp_path)
    chip = make_chip("esp32")
    monkeypatch.setattr(flash, "connect_chip", lambda port, baud: chip)
    code, out, _ = invoke("flash", "--port", pty_port, "--type", "esp32", "--firmware", str(img))
    assert code == 0, out
    assert "romfs 256 KiB at 0x200000, vfs 1792 KiB at 0x240000" in out
    table = _table_at(chip.flash)
    assert table["romfs"] == (0x8F, 0x200000, 0x40000)
    assert table["vfs"][1:] == (0x240000, 0x1C0000) and table["factory"][1:] == (0x10000, 0x1F0000)
    # the rest of the image is what was written
    data = img.read_bytes()
    assert chip.flash[0x10000 : 0x1000 + len(data)] == data[0xF000:]
    code, out, _ = invoke(
        "flash", "--dry-run", "--port", pty_port, "--type", "esp32", "--firmware", str(img)
    )
    assert code == 0 and "#   romfs,data,143,0x200000,256K," in out, out
    chip = make_chip("esp32")
    monkeypatch.setattr(flash, "connect_chip", lambda port, baud: chip)
    code, out, _ = invoke(
        "flash", "--no-romfs", "--port", pty_port, "--type", "esp32", "--firmware", str(img)
    )
    assert code == 0 and "romfs" not in _table_at(chip.flash), out
    # an image without a table (only an app) is written as it is, and said so
    chip = make_chip("esp32")
    monkeypatch.setattr(flash, "connect_chip", lambda port, baud: chip)
    code, out, _ = invoke(
        "flash", "--port", pty_port, "--type", "esp32", "--firmware", str(image_file(tmp_path))
    )
    assert code == 0 and "the image holds no partition table: written as it is" in out, out


def test_a_table_roam_cannot_carve_from_is_left_as_it_is():
    """No vfs partition, one too small, or a romfs there already: the image unchanged, said so."""
    from esp_idf_defs import PartitionTable

    from hosttools.partitions import with_romfs

    def image(csv):
        table = PartitionTable.from_csv(csv).to_binary()
        return b"\xe9" + b"\xff" * (0x7000 - 1) + table + b"\xff" * 0x100

    base = "nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 0x1F0000,\n"
    cases = {
        "no 'vfs' partition": base,
        "of at least 512 KiB": base + "vfs, data, fat, 0x200000, 0x40000,\n",
        "has a romfs partition": base
        + "romfs, data, 0x8f, 0x200000, 0x20000,\nvfs, data, fat, 0x220000, 0x1E0000,\n",
    }
    for why, csv in cases.items():
        img = image(csv)
        change = with_romfs(img, 0x1000, 256)
        assert change.image is img and not change.changed and why in change.note, change.note
    done = with_romfs(image(base + "vfs, data, fat, 0x200000, 0x200000,\n"), 0x1000, 0)
    assert not done.changed and done.note == "no romfs partition asked for"

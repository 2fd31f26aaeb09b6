"""An emulated ESP chip for `roam flash` tests: esptool's own target class (chip name, image
chip id, flash layout) with its serial link replaced by a flash memory in RAM. It is the only
stand-in the flash tests use; esptool's commands (erase, write, verify, reset) run for real."""

import hashlib
import zlib

from esptool import bin_image
from esptool.bin_image import ImageSegment
from esptool.targets import CHIP_DEFS

FLASH_ID_4MB = 0x164020


def make_chip(chip="esp32", flash_size=4 << 20):
    cls = CHIP_DEFS[chip]

    class EmulatedChip(cls):
        def __init__(self):  # no serial port: nothing of ESPLoader.__init__ is needed
            self.flash = bytearray(b"\xff" * flash_size)
            self.IS_STUB = True
            self.secure_download_mode = False
            self.calls = []
            self._off = 0
            self._d = None

        def get_secure_boot_v1_enabled(self):
            return False

        def get_secure_boot_enabled(self):
            return False

        def get_flash_encryption_enabled(self):
            return False

        def uses_key_manager_for_flash_encryption(self):
            return False

        def flash_id(self, cache=True):
            return FLASH_ID_4MB

        def read_reg(self, addr, timeout=None):
            return 0  # eFuses all zero: chip revision 0, nothing secured

        def write_reg(self, *a, **k):
            pass

        def run_spiflash_command(self, *a, **k):
            return 0

        def flash_set_parameters(self, size):
            pass

        def erase_flash(self):
            self.calls.append("erase")
            self.flash[:] = b"\xff" * len(self.flash)

        def flash_defl_begin(self, size, compsize, offset, **kw):
            self.calls.append(("write", offset))
            self._off, self._d = offset, zlib.decompressobj()
            return 1

        def flash_defl_block(self, data, seq, timeout=None, **kw):
            out = self._d.decompress(data)
            self.flash[self._off : self._off + len(out)] = out
            self._off += len(out)

        def flash_defl_finish(self, reboot=False, **kw):
            pass

        def flash_begin(self, size, offset, begin_rom_encrypted=False, logging=True):
            self.calls.append(("write", offset))
            self._off = offset
            return 1

        def flash_block(self, data, seq, timeout=None):
            self.flash[self._off : self._off + len(data)] = data
            self._off += len(data)

        def flash_finish(self, reboot=False, **kw):
            pass

        def flash_md5sum(self, addr, size):
            self.calls.append("md5")
            return hashlib.md5(self.flash[addr : addr + size]).hexdigest()

        def read_flash(self, offset, length, progress_fn=None):
            return bytes(self.flash[offset : offset + length])

        def hard_reset(self):
            self.calls.append("hard_reset")

    return EmulatedChip()


def build_image(chip="esp32", payload=b"\x01" * 256):
    """A small valid firmware image for `chip`, built with esptool's own image class."""
    name = {
        "esp32": "ESP32FirmwareImage",
        "esp32s3": "ESP32S3FirmwareImage",
        "esp32c3": "ESP32C3FirmwareImage",
    }[chip]
    img = getattr(bin_image, name)()
    seg = ImageSegment(0x3FC88000 if chip != "esp32" else 0x3FFB0000, payload)
    seg.name = ".dram0.data"
    img.segments = [seg]
    img.entrypoint = 0x40080000
    return img.save(None)

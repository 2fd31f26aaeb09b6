# ruff: noqa: F821 - include/module/package are defined by MicroPython's manifest runner
# Freeze the roam firmware into a custom MicroPython build:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/roam/firmware/manifest.py
# boot.py and main.py stay on the filesystem (a board runs them from there); everything else is
# frozen bytecode, which saves the heap that compiling .py files at import would cost.
include("$(PORT_DIR)/boards/manifest.py")
module("config.py")
module("driver.py")
module("link_espnow.py")
module("link_wifi.py")
module("logsink.py")
module("safemode.py")
package("mobility")

# Freeze the roam firmware into a custom MicroPython build:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/roam/firmware/manifest.py
# boot.py and main.py stay on the filesystem (a board runs them from there); everything else is
# frozen bytecode, which saves the heap that compiling .py files at import would cost.

# include/module/package are the manifest language's builtins (MicroPython's
# tools/manifestfile.py runs this file with them); declared here for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:

    def include(manifest: str, **kwargs: object) -> None: ...

    def module(name: str, base_path: str = ".", opt: int | None = None) -> None: ...

    def package(
        name: str, files: object = None, base_path: str = ".", opt: int | None = None
    ) -> None: ...


include("$(PORT_DIR)/boards/manifest.py")
module("config.py")
module("crashsite.py")
module("driver.py")
module("link_espnow.py")
module("link_wifi.py")
module("logsink.py")
module("romimage.py")
module("safemode.py")
module("slots.py")
module("start.py")
module("traffic.py")
package("mobility")
package("fieldlog")
package("update")

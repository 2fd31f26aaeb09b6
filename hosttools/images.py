"""`roam firmware fetch`: download the MicroPython image a board type pins, into the image cache
`roam flash` takes images from.

A board file (boards/<type>.toml) pins its image with two keys::

    image_url = "https://micropython.org/resources/firmware/ESP32_GENERIC-....bin"
    image_sha256 = "<sha256sum of that file>"

The image is kept as ``<cache>/<type>/<the URL's file name>`` (the cache: $ROAM_FIRMWARE_CACHE,
else $XDG_CACHE_HOME/roam/firmware, else ~/.cache/roam/firmware). A cached file whose SHA-256
matches is not downloaded again. A download goes to a hidden temporary file beside it and is
renamed to its name only once its SHA-256 matched, so the cache never holds a half-written or
wrong image under a name `roam flash` would pick (it picks ``*.bin``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click

from hosttools import __version__
from hosttools.errors import RoamError, RoamUsageError
from hosttools.fleet import BoardType, boards_path, load_board_type

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
CHUNK = 1 << 16
TIMEOUT_S = 30.0  # per network operation (connect, each read), not for the whole download


def cache_dir() -> Path:
    """The local image cache: $ROAM_FIRMWARE_CACHE, else the user cache directory's
    roam/firmware ($XDG_CACHE_HOME, default ~/.cache)."""
    from hosttools.paths import user_cache

    env = os.environ.get("ROAM_FIRMWARE_CACHE")
    return Path(env) if env else user_cache("firmware")


def pinned(bt: BoardType) -> tuple[str, str, str]:
    """(url, sha256, file name) of the image the board file pins, or a RoamError saying which
    keys to add."""
    where = "board type %s (%s)" % (bt.name, boards_path() / (bt.name + ".toml"))
    url, sha = bt.data.get("image_url"), bt.data.get("image_sha256")
    if url is None and sha is None:
        raise RoamError(
            "%s pins no MicroPython image: add image_url and image_sha256 (the .bin from %s "
            "and its sha256sum) to the board file, or put the .bin into %s yourself"
            % (where, bt.download_url, cache_dir() / bt.name)
        )
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise RoamError("%s: image_url must be an http(s) URL, got %r" % (where, url))
    if not isinstance(sha, str) or not SHA256_RE.match(sha):
        raise RoamError("%s: image_sha256 must be 64 hex digits (sha256sum)" % where)
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    if not name.endswith(".bin") or name.startswith("."):
        raise RoamError("%s: image_url must name a .bin file, got %r" % (where, url))
    return url, sha.lower(), name


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(bt: BoardType) -> tuple[Path, bool]:
    """The board type's pinned image in the cache: (its path, whether it was downloaded now)."""
    url, sha, name = pinned(bt)
    d = cache_dir() / bt.name
    final = d / name
    if final.is_file() and file_sha256(final) == sha:
        return final, False
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RoamError("cannot create the image cache %s: %s" % (d, e.strerror)) from None
    # hidden and not *.bin: `roam flash` never takes a download in progress for an image
    fd, tmp_name = tempfile.mkstemp(prefix="." + name + ".", suffix=".part", dir=d)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        request = urllib.request.Request(url, headers={"User-Agent": "roam/" + __version__})
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp,
            ):
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as e:
            raise RoamError("downloading %s failed: HTTP %d %s" % (url, e.code, e.reason)) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
            raise RoamError("downloading %s failed: %s" % (url, reason)) from None
        got = h.hexdigest()
        if got != sha:
            raise RoamError(
                "%s: SHA-256 %s, but %s.toml pins %s: not kept (a changed or damaged file; "
                "check image_url and image_sha256)" % (url, got, bt.name, sha)
            )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)  # a failed or refused download leaves nothing behind
    return final, True


@click.group("firmware")
def firmware_cmd() -> None:
    """MicroPython images for `roam flash`: download the one a board type pins."""


@firmware_cmd.command("fetch")
@click.option(
    "--board",
    "--type",
    "type_name",
    required=True,
    metavar="TYPE",
    help="Board type (boards/TYPE.toml, or $ROAM_BOARDS_DIR/TYPE.toml) whose pinned image to "
    "download.",
)
def fetch_cmd(type_name: str) -> None:
    """Download the board type's pinned MicroPython image into the image cache
    ($ROAM_FIRMWARE_CACHE, default $XDG_CACHE_HOME/roam/firmware or ~/.cache/roam/firmware),
    check its SHA-256, and keep it for `roam flash`; a valid cached copy is not fetched again."""
    try:
        bt = load_board_type(type_name)
    except RoamError as e:  # --board names no board file: the command line is wrong
        raise RoamUsageError(str(e)) from None
    path, downloaded = fetch(bt)
    if downloaded:
        click.echo("%s: downloaded %s (SHA-256 checked)" % (bt.name, path))
    else:
        click.echo("%s: %s already cached (SHA-256 checked)" % (bt.name, path))

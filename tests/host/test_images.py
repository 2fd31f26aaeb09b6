"""`roam firmware fetch` (hosttools/images.py) against a real HTTP server on this machine: the
pinned image lands in the user cache directory with its SHA-256 checked, is not downloaded
again while the cached copy is valid, and a file with another hash is refused with nothing left
behind; then `roam flash --dry-run` takes the fetched image."""

import hashlib
import http.server
import threading

import pytest
from chipsim import build_image
from click.testing import CliRunner

from hosttools.cli import main

NAME = "ESP32_GENERIC-20990101-v9.9.9.bin"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output to the test's own
        pass


@pytest.fixture
def server(tmp_path):
    """A directory served over HTTP on localhost; `.hits` counts the GET requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class Handler(_Handler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    httpd.root = root
    httpd.hits = hits
    httpd.url = "http://127.0.0.1:%d/" % httpd.server_address[1]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Board files in a temporary ROAM_BOARDS_DIR, the cache under a temporary XDG_CACHE_HOME."""
    boards = tmp_path / "boards"
    boards.mkdir()
    monkeypatch.setenv("ROAM_BOARDS_DIR", str(boards))
    monkeypatch.delenv("ROAM_FIRMWARE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return boards


def pin(boards, url, sha):
    (boards / "esp32.toml").write_text(
        'chip = "esp32"\nflash_offset = 0x1000\nimage_url = "%s"\nimage_sha256 = "%s"\n'
        % (url, sha)
    )


def roam(*args):
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_fetch_checks_keeps_and_reuses(tmp_path, server, env):
    image = build_image("esp32")
    (server.root / NAME).write_bytes(image)
    pin(env, server.url + NAME, hashlib.sha256(image).hexdigest())
    cached = tmp_path / "xdg" / "roam" / "firmware" / "esp32" / NAME

    code, out = roam("firmware", "fetch", "--board", "esp32")
    assert code == 0, out
    assert "downloaded" in out and str(cached) in out
    assert cached.read_bytes() == image
    assert server.hits == ["/" + NAME]

    code, out = roam("firmware", "fetch", "--board", "esp32")  # cached and valid: no download
    assert code == 0, out
    assert "already cached" in out
    assert server.hits == ["/" + NAME]

    # a damaged cached copy is downloaded again
    cached.write_bytes(image[:100])
    code, out = roam("firmware", "fetch", "--board", "esp32")
    assert code == 0 and "downloaded" in out, out
    assert cached.read_bytes() == image and len(server.hits) == 2

    # `roam flash` takes what fetch put into the cache, with no board plugged in
    code, out = roam("flash", "--dry-run", "--type", "esp32", "--port", str(tmp_path / "ttyX"))
    assert code == 0, out
    assert out.split()[-2:] == ["0x1000", str(cached)]


def test_wrong_hash_is_refused_and_nothing_is_left(tmp_path, server, env):
    (server.root / NAME).write_bytes(build_image("esp32"))
    pin(env, server.url + NAME, "0" * 64)
    code, out = roam("firmware", "fetch", "--board", "esp32")
    assert code == 1, out
    assert out.startswith("roam: error: ") and out.count("\n") == 1, out
    assert "SHA-256" in out and "not kept" in out
    d = tmp_path / "xdg" / "roam" / "firmware" / "esp32"
    assert list(d.iterdir()) == []  # neither the image nor a temporary file


def test_roam_firmware_cache_wins_over_xdg(tmp_path, server, env, monkeypatch):
    image = build_image("esp32")
    (server.root / NAME).write_bytes(image)
    pin(env, server.url + NAME, hashlib.sha256(image).hexdigest())
    monkeypatch.setenv("ROAM_FIRMWARE_CACHE", str(tmp_path / "mine"))
    code, out = roam("firmware", "fetch", "--board", "esp32")
    assert code == 0, out
    assert (tmp_path / "mine" / "esp32" / NAME).read_bytes() == image
    assert not (tmp_path / "xdg").exists()


def test_missing_file_and_unpinned_board_fail_in_one_line(tmp_path, server, env):
    pin(env, server.url + "gone.bin", "a" * 64)
    code, out = roam("firmware", "fetch", "--board", "esp32")
    assert code == 1 and "HTTP 404" in out and out.count("\n") == 1, out
    assert not any((tmp_path / "xdg" / "roam" / "firmware" / "esp32").iterdir())

    (env / "esp32.toml").write_text('chip = "esp32"\nflash_offset = 0x1000\n')
    code, out = roam("firmware", "fetch", "--board", "esp32")
    assert code == 1 and "pins no MicroPython image" in out and out.count("\n") == 1, out

    code, out = roam("firmware", "fetch", "--board", "esp99")
    assert code == 2 and "unknown board type 'esp99'" in out, out

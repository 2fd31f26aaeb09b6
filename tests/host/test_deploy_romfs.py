"""The firmware in a board's romfs partition: `roam deploy` writes the modules as one ROMFS
image (hosttools/romfs.py), a virtual board offers vfs.rom_ioctl and mounts the image at /rom
as a board does (boards/shims/_romfs.py), and its heap is the one calibrated for code in flash
(hosttools/vboard.py)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from vbhelp import virtual_board

from hosttools import deploy, romfs, vboard
from hosttools.boardio import board_exec, open_board
from hosttools.targets import BoardProgress

HEADER = romfs.HEADER


def _on_board(port, code):
    with open_board(port, fresh=True) as t:
        return board_exec(t, code, port).decode().strip().replace("\r\n", "\n")


def _partition(root):
    return (root.parent / (root.name + ".romfs")).read_bytes()


def test_deploy_puts_the_modules_in_the_romfs_and_the_board_runs_them_from_there(tmp_path):
    src = tmp_path / "fw"
    shutil.copytree(deploy.FIRMWARE_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    root = tmp_path / "root"
    with virtual_board(root) as vb:
        r1 = deploy.deploy_board(vb.pty, src, reset=False)
        assert r1["mpy"] is True and r1["romfs"] > 50_000, r1
        # on the filesystem only the bootstrap; the rest is in the partition
        on_fs = sorted(p.name for p in root.rglob("*.*py"))
        assert on_fs == ["boot.py", "main.py", "romimage.mpy", "slots.mpy"], on_fs
        part = _partition(root)
        assert part[:3] == HEADER and len(part) == 256 * 1024
        manifest = json.loads((root / ".roam_manifest.json").read_text())
        assert sorted(manifest) == ["boot.py", "main.py", "romimage.mpy", "slots.mpy"]
        # after a reset the modules come from /rom (the raw REPL's soft reset mounts it too)
        where = _on_board(vb.pty, "import sys, driver\nprint(driver.__file__, sys.path)")
        assert where.startswith("/rom/driver.mpy"), where
        # the same firmware again: nothing written
        r2 = deploy.deploy_board(vb.pty, src, reset=False)
        assert (r2["romfs"], r2["sent"], r2["removed"]) == (0, 0, 0), r2
        # one module changed: a new image
        (src / "logsink.py").write_text((src / "logsink.py").read_text() + "\nX_CHANGED = 1\n")
        r3 = deploy.deploy_board(vb.pty, src, reset=False)
        assert r3["romfs"] > 50_000 and r3["sent"] == 0, r3
        assert _on_board(vb.pty, "import logsink\nprint(logsink.X_CHANGED)") == "1"
        # --no-romfs: the modules on the filesystem, the image's header erased (an old image
        # must not fill in a module the filesystem lacks)
        r4 = deploy.deploy_board(vb.pty, src, reset=False, use_romfs=False)
        assert r4["romfs"] is None and (root / "mobility" / "ipv4.mpy").is_file(), r4
        assert _partition(root)[:3] == b"\xff\xff\xff"
        assert _on_board(vb.pty, "import driver\nprint(driver.__file__)") == "driver.mpy"
        # and back: the filesystem's copies go once the image is checked on the board
        r5 = deploy.deploy_board(vb.pty, src, reset=False)
        assert r5["romfs"] > 50_000 and r5["removed"] > 30, r5
        assert not (root / "mobility" / "ipv4.mpy").exists()


def _select(port, then=""):
    """The bootstrap's choice of version at boot (firmware/slots.py), then ``then``; what it
    prints."""
    code = "import slots\nst = slots.select()\nprint(st['active'], st['tries'])\n" + then
    return _on_board(port, code)


def _version(src, note):
    """A copy of the firmware whose logsink says ``note``, and its set as one romfs image
    (what `roam deploy --ota` sends a board with a romfs partition)."""
    from hosttools.ota import plan as ota_plan

    shutil.copytree(deploy.FIRMWARE_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "logsink.py").write_text((src / "logsink.py").read_text() + "\nNOTE = %r\n" % note)
    return ota_plan.romfs_image(deploy.plan(src, True))


def test_an_update_s_image_goes_into_the_partition_at_boot_and_a_rollback_writes_the_root_s(
    tmp_path,
):
    """A version an update staged as a romfs image runs from the partition too: its boot
    writes the image there (firmware/romimage.py, header last); the rollback after its failed
    tries writes the root's back from fw/root.img, which `roam deploy` keeps."""
    root = tmp_path / "root"
    v1 = _version(tmp_path / "v1", "v1")
    # (a longer note: every module after logsink in the image at another offset)
    v2 = _version(tmp_path / "v2", "v2, a version of another length")
    with virtual_board(root) as vb:
        deploy.deploy_board(vb.pty, tmp_path / "v1", reset=False)
        kept = (root / "fw" / "root.img").read_bytes()
        assert kept == v1.files[0].data and _partition(root)[: len(kept)] == kept
        # staged by an update (update/stage.py) and switched to: on probation in slot a
        (root / "fw" / "a").mkdir(parents=True)
        (root / "fw" / "a" / "romfs.img").write_bytes(v2.files[0].data)
        state = {"active": "a", "previous": "root", "set": v2.set_hash.hex(), "pending": "fw"}
        (root / "fw" / "state.json").write_text(json.dumps(dict(state, tries=0)))
        assert vboard.runs_from_romfs(root, 256)  # its heap: a board's that runs from romfs
        # (safemode: the rollback's boot imports it, from the image it writes)
        show = "import logsink, driver, safemode\nprint(logsink.NOTE, driver.__file__)\n"
        show += "assert safemode.decide() in (True, False)"
        assert _select(vb.pty, show) == "a 1\nv2, a version of another length /rom/driver.mpy"
        image = v2.files[0].data
        assert _partition(root)[: len(image)] == image
        # a cut while writing (the first sector erased, the header not yet written): the next
        # boot writes it again
        with open(root.parent / (root.name + ".romfs"), "r+b") as f:
            f.write(b"\xff" * 4096)
        assert _select(vb.pty, show) == "a 2\nv2, a version of another length /rom/driver.mpy"
        assert _partition(root)[: len(image)] == image
        # never marked healthy: the third boot rolls back to the root, its image written back
        assert _select(vb.pty, show) == "root 0\nv1 /rom/driver.mpy"
        assert _partition(root)[: len(kept)] == kept
        # the root deployed to the filesystem: its image file goes first, and the image in
        # the partition is no longer imported from
        deploy.deploy_board(vb.pty, tmp_path / "v1", reset=False, use_romfs=False)
        assert not (root / "fw" / "root.img").exists()
        (root / "fw" / "a" / "romfs.img").write_bytes(v2.files[0].data)
        assert _select(vb.pty, show) == "root 0\nv1 driver.mpy"


def test_a_write_cut_off_leaves_no_half_image_and_the_next_deploy_finishes_it(tmp_path):
    """The image's header is written last: a board reset in the middle of the write mounts
    nothing rather than a partial image, and the next deploy sees that the partition does not
    hold the image (hashed on the board, not trusted from a manifest)."""
    root = tmp_path / "root"

    class Cut(Exception):
        pass

    writes = []

    def update(fraction, text):
        if text.startswith("writing the romfs image"):
            writes.append(text)
            if len(writes) == 10:
                raise Cut()

    with virtual_board(root) as vb:
        with pytest.raises(Cut):
            deploy.deploy_board(vb.pty, reset=False, progress=BoardProgress(update))
        assert writes[0] == "writing the romfs image at 4096"
        part = _partition(root)
        assert part[:4096] == b"\xff" * 4096 and part[4096:8192] != b"\xff" * 4096
        assert _on_board(vb.pty, "import os\nprint('rom' in os.listdir('/'))") == "False"
        r = deploy.deploy_board(vb.pty, reset=False)
        assert r["romfs"] > 50_000
        assert _partition(root)[:3] == HEADER
        assert _on_board(vb.pty, "import driver\nprint(driver.__file__)") == "/rom/driver.mpy"


def test_mpremote_romfs_query_and_deploy_on_a_virtual_board(tmp_path):
    """The virtual board's vfs.rom_ioctl is what mpremote's own romfs commands need, and
    answers a bad call as the C code does (a negative errno, nothing raised)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.py").write_text("def f():\n    return 'from rom'\n")
    mpremote = [sys.executable, "-m", "mpremote", "connect"]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    with virtual_board(tmp_path / "root") as vb:
        q = subprocess.run(mpremote + [vb.pty, "romfs", "query"], capture_output=True, text=True)
        assert "ROMFS0 partition has size 262144 bytes" in q.stdout and "Not a valid" in q.stdout
        d = subprocess.run(
            mpremote + [vb.pty, "romfs", "deploy", str(app)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert "ROMFS image deployed" in d.stdout, d.stdout + d.stderr
        out = _on_board(
            vb.pty,
            "import vfs, hello\nprint(hello.f(), vfs.rom_ioctl(2, 1), vfs.rom_ioctl(3, 0, 1 << 20),"
            " vfs.rom_ioctl(4, 0, 262140, b'12345678'), vfs.rom_ioctl(9, 0))",
        )
        assert out == "from rom -22 -22 -22 -22", out
    with virtual_board(tmp_path / "bare", romfs_kb=0) as vb:
        assert _on_board(vb.pty, "import vfs\nprint(hasattr(vfs, 'rom_ioctl'))") == "False"


def test_the_heap_is_calibrated_for_where_the_firmware_runs_from(tmp_path):
    """Code in flash leaves dicts, functions and data in the heap, which grow more at 64 bits
    than bytecode: a board running from its romfs gets the chip's budget x the romfs factor
    (boards/heap64.json), and its partition's bytes on top (the shim holds them)."""
    cal = json.loads(vboard.HEAP_CALIBRATION.read_text())
    assert cal["romfs_factor"] > cal["factor"]
    root = tmp_path / "root"
    with virtual_board(root) as vb:
        deploy.deploy_board(vb.pty, reset=False)
        board = vboard.VirtualBoard(tmp_path / "probe", chip="esp32s3")  # (only to compute)
        try:
            fs_heap = vboard.board_heap_kb("esp32s3")
            rom_heap = vboard.board_heap_kb("esp32s3", romfs=True)
            assert rom_heap > fs_heap and not board.runs_from_romfs()
        finally:
            board.close()
        # (what gc reports is the heap less its allocation table: about 1.2 %)
        total = int(_on_board(vb.pty, "import gc\nprint(gc.mem_free() + gc.mem_alloc())"))
        assert 0.97 < total / ((rom_heap + 256 + 3) * 1024) <= 1, (total, rom_heap)
        deploy.deploy_board(vb.pty, reset=False, use_romfs=False)
        total = int(_on_board(vb.pty, "import gc\nprint(gc.mem_free() + gc.mem_alloc())"))
        assert 0.97 < total / ((fs_heap + 256 + 3) * 1024) <= 1, (total, fs_heap)


def test_the_image_is_what_mpremote_romfs_build_makes(tmp_path):
    """roam's image of the firmware set, byte for byte what `mpremote romfs build` writes of
    the same files in a directory (its builder, walked alike; roam's prints nothing)."""
    import contextlib
    import io

    from mpremote.romfs import make_romfs

    files = [(it.path, it.data) for it in deploy.plan(deploy.FIRMWARE_DIR, True)]
    for path, data in files:
        p = tmp_path / "fw" / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        built = make_romfs(str(tmp_path / "fw"), mpy_cross=False)
    assert "mobility/" in out.getvalue()  # (it printed its tree)
    assert romfs.image(files) == bytes(built) and bytes(built)[:3] == HEADER

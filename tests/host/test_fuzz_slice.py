"""A small seeded slice of the wire mutation fuzzer (bench/fuzz_wire_mpy.py) for CI.

The big runs (1,000,000 frames on CPython, 100,000 on MicroPython) are `make bench`
(bench/fuzz_wire.py). Here: 20,000 frames on CPython and 5,000 on MicroPython, zero exceptions
other than DecodeError; the same seed gives the same counts on both interpreters; and the fuzzer
does catch a decoder that trusts a length.
"""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from mobility import publication

REPO_DIR = Path(__file__).resolve().parent.parent.parent
FUZZER = REPO_DIR / "bench" / "fuzz_wire_mpy.py"
MICROPYTHON = REPO_DIR / ".venv" / "bin" / "micropython"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_wire_mpy", FUZZER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(failures):
    return "\n".join(
        f"{f['where']}: {f['exc']}\n  at {f['at']}\n  input {f['hex']}" for f in failures
    )


def test_cpython_slice_raises_nothing_but_decode_error(fuzz):
    stats = fuzz.run(20_000, seed=2024)
    assert stats.unexpected == 0, _report(stats.failures)
    assert stats.frames == 20_000
    # the slice reaches the message decoders and verification, not only the IPv4 checks
    assert stats.decoded > 1000 and stats.verified > 100 and stats.decode_errors > 10_000


def test_micropython_slice_matches_cpython_for_the_same_seed(fuzz):
    assert MICROPYTHON.exists(), "MicroPython is missing: run `make venv`"
    done = subprocess.run(
        [str(MICROPYTHON), str(FUZZER), "--count", "5000", "--seed", "77", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    mpy = json.loads(done.stdout.strip().splitlines()[-1])
    assert mpy["impl"] == "micropython"
    assert mpy["unexpected"] == 0, _report(mpy["failures"])
    assert mpy["frames"] == 5000
    cpy = fuzz.run(5000, seed=77)
    # same generator, same templates, same decoders: the very same outcome on both interpreters
    assert (mpy["decoded"], mpy["verified"], mpy["decode_errors"]) == (
        cpy.decoded,
        cpy.verified,
        cpy.decode_errors,
    )


def test_the_fuzzer_catches_a_decoder_that_trusts_a_length(fuzz, monkeypatch):
    real = publication.decode_publication

    def trusting(payload):
        p = bytes(payload)
        if len(p) >= 12 and p[0] == 0x52:
            # reads the entries the counts announce without checking the length first
            end = 12 + 6 * p[10] + 4 * p[11]
            p[end + 1]
        return real(payload)

    monkeypatch.setattr(publication, "decode_publication", trusting)
    stats = fuzz.run(3000, seed=5)
    assert stats.unexpected > 0
    first = stats.failures[0]
    assert "IndexError" in first["exc"] and "in trusting" in first["at"]
    assert bytes.fromhex(first["hex"])  # the input is reported for replay

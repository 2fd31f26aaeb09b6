# roam: the two commands a new user needs are `make demo` and `make test` (see README.md).
# Every target that needs Python sets up .venv first (`make venv`, fast when nothing changed).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install when pyproject.toml changes; otherwise `make venv` is a no-op.
STAMP := $(VENV)/.roam-installed
# Firmware and core tests that run on real MicroPython (only the directories that exist).
MPY_TEST_DIRS := $(wildcard tests/core tests/firmware)

.PHONY: venv test test-mpy test-host test-load bench demo sim-demo lab-demo flash deploy logs report device-test lint format typecheck clean distclean

# The simulator's compiled core (build/roam-core/, hosttools/corebuild.py) is rebuilt whenever its
# sources changed (a no-op otherwise).
venv: $(STAMP)
	@$(BIN)/python -m hosttools.corebuild

# The 32-bit MicroPython (the WebAssembly port from npm) measures the firmware's heap as a board
# holds it (tools/mpy32.mjs); it needs Node.js.
MPY32 := @micropython/micropython-webassembly-pyscript@1.29.0-6

# Everything: the simulator's extra (numba, Cython, Dask) and the test tools with the package.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[sim,test]'
	@if command -v npm > /dev/null; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/npm $(MPY32); \
	else echo "make venv: no npm: the 32-bit heap figures need Node.js (apt-get install nodejs npm)"; fi
	@touch $@

# Firmware tests on MicroPython first (they are the fastest), pytest last.
test: venv
	$(MAKE) --no-print-directory test-mpy
	$(MAKE) --no-print-directory test-host

# The tests host up to a hundred nodes in one process and keep every frame they sent: the unix
# port's default 2 MB heap fragments until a list cannot grow (a board's heap is measured at
# 32 bits by bench/core_memory.py and friends, one node per board).
test-mpy: venv
ifneq ($(MPY_TEST_DIRS),)
	$(BIN)/micropython -X heapsize=4M tests/run_mpy.py $(MPY_TEST_DIRS)
else
	@echo "no MicroPython test directories (tests/core, tests/firmware) yet"
endif

test-host: venv
	$(BIN)/python -m pytest -q tests

# `make test` RUNS times in a row with LOAD CPU-bound processes beside it (issue 17: the board
# host survives and the lab's timers stay honest on a loaded machine); LOAD_CMD runs something
# else under the same load, e.g. LOAD_CMD=".venv/bin/python -m pytest -q tests/host/test_vboard_api.py".
RUNS ?= 5
LOAD ?= 2
LOAD_CMD ?= $(MAKE) --no-print-directory test
test-load: venv
	$(BIN)/python tools/under_load.py --runs $(RUNS) --burners $(LOAD) -- $(LOAD_CMD)

# Every bench/<name>.py, each in its own process; results in out/bench/<name>.json.
bench: venv
	$(BIN)/python bench/run_all.py

# The `walk` field test in the simulator (virtual time, seconds), then its HTML report:
# out/sim-demo/report.html.
sim-demo: venv
	$(BIN)/roam sim run walk --seed 1 --out out/sim-demo
	$(BIN)/roam report out/sim-demo

# `make demo`: the `walk` field test on virtual boards, as a field test with real boards runs
# (docs/USER_GUIDE.md): lab up; deploy and provision over USB; every cable pulled; `roam field`
# collects the boards' logs over the air while they walk (dashboard on localhost:8080); the
# carried boards plugged back and every board's stored log pulled; the report
# (out/lab-demo/field/report.html); lab down (also when a step fails).
demo: lab-demo

LAB_DEMO ?= out/lab-demo
LAB_SPEED ?= 6
LAB_SECONDS ?= 50
lab-demo: venv
	@set -e; d=$(LAB_DEMO); r=$$d/field; \
	trap '$(BIN)/roam lab down --dir '"$$d"' > /dev/null 2>&1 || true' EXIT; \
	$(BIN)/roam lab up walk --dir $$d --speed $(LAB_SPEED) --fresh $(LAB_UP_ARGS); \
	$(BIN)/roam deploy --fleet $$d/fleet.toml; \
	$(BIN)/roam provision --fleet $$d/fleet.toml --keys $$d/keys.toml; \
	$(BIN)/roam lab unplug --all --dir $$d; \
	rm -rf $$r; \
	$(BIN)/roam field --fleet $$d/fleet.toml --keys $$d/keys.toml --out $$r \
		--duration $(LAB_SECONDS) --quiet & \
	field=$$!; sleep 1; \
	$(BIN)/roam lab start --dir $$d; \
	wait $$field; \
	$(BIN)/roam lab plug --radio-only --dir $$d; \
	$(BIN)/roam logs --pull --fleet $$d/fleet.toml --keys $$d/keys.toml --out $$r; \
	$(BIN)/roam report $$r; \
	$(BIN)/roam lab down --dir $$d

# --- field tests with boards (docs/USER_GUIDE.md) ---
# FLEET/KEYS default to fleet.toml/keys.toml; PORT names one board, NODE its fleet entry (name
# or node id), BOARD its type (boards/BOARD.toml). LOGS is the log directory.
FLEET ?= fleet.toml
KEYS ?= keys.toml
LOGS ?= out/logs/latest
_PORT = $(if $(PORT),--port $(PORT))
_NODE = $(if $(NODE),--board $(NODE))
_BOARD = $(if $(BOARD),--type $(BOARD))
_FW = $(if $(FIRMWARE),--firmware $(FIRMWARE))
# DRY_RUN=1: print what flash/deploy/provision would do (the esptool command line, the files,
# the config with its keys hidden) without touching a board.
_DRY = $(if $(DRY_RUN),--dry-run)

# Flash MicroPython, deploy the firmware, provision the node: one board ready for the field.
flash: venv
	$(BIN)/roam flash $(_PORT) --fleet $(FLEET) $(_NODE) $(_BOARD) $(_FW) $(_DRY)
	$(BIN)/roam deploy $(_PORT) --fleet $(FLEET) $(_NODE) $(_DRY)
	$(BIN)/roam provision $(_PORT) --fleet $(FLEET) $(_NODE) --keys $(KEYS) $(_DRY)

deploy: venv
	$(BIN)/roam deploy $(_PORT) $(if $(PORT),,--fleet $(FLEET)) $(_NODE) $(_DRY)

logs: venv
	$(BIN)/roam logs $(_PORT) $(if $(PORT),,--fleet $(FLEET)) --out $(LOGS) --force

report: venv
	$(BIN)/roam report $(LOGS)

device-test: venv
	$(BIN)/roam test $(_PORT) $(if $(PORT),,--fleet $(FLEET))

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# firmware/ against the MicroPython ESP32 stubs, then the host code against CPython's typeshed.
typecheck: venv
	$(BIN)/python -m hosttools.typecheck
	$(BIN)/mypy

clean:
	rm -rf out build .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make run    start the service on http://127.0.0.1:8000 (SQLite, keys and demo network on first run)
#   make test   run the whole test suite (in parallel: PYTEST_WORKERS=0 runs it in one process)
# Dependencies come from the lock files in requirements/ (exact versions, with hashes): `make run`
# installs requirements/runtime.txt only, `make test` and `make lint` requirements/dev.txt. Each is
# installed once and again when its lock file (or the package definition) changes. The installer is uv
# (pinned in requirements/tools.txt, kept in .venv/tools): it installs a lock file in seconds.
# `make lock` regenerates the lock files from pyproject.toml, keeping today's pins;
# `make lock LOCK_ARGS=--upgrade` moves them all, `make lock LOCK_ARGS='--upgrade-package fastapi'` one.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(VENV)/tools
UV := $(TOOLS)/bin/uv
UV_INSTALL := $(UV) pip install --quiet --python $(BIN)/python --compile-bytecode
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PACKAGE := pyproject.toml $(wildcard setup.py)
PYTEST_WORKERS ?= auto
TEST_TMP := $(if $(wildcard /dev/shm/.),PYTEST_DEBUG_TEMPROOT=/dev/shm)
PYTEST_ARGS ?=
LOCK_FLAGS := --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
	--custom-compile-command 'make lock'

.PHONY: run test browser-deps openapi lint lock clean

# Python keeps compiled modules (__pycache__, git-ignored) even where the environment says not to: without
# them every process (each test worker, each server the tests start, each CLI call) compiles ~1,700 modules
# again, about 3 s of CPU. Installs compile the dependencies once (--compile-bytecode).
unexport PYTHONDONTWRITEBYTECODE

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CaseBridge needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)

$(UV): requirements/tools.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps --upgrade \
		--target $(TOOLS) -r requirements/tools.txt
	@touch $@

$(RUNTIME_STAMP): requirements/runtime.txt $(PACKAGE) | $(UV)
	$(UV_INSTALL) --require-hashes -r requirements/runtime.txt
	$(UV_INSTALL) --no-deps -e .
	@touch $@

$(DEV_STAMP): requirements/dev.txt $(PACKAGE) | $(UV)
	$(UV_INSTALL) --require-hashes -r requirements/dev.txt
	$(UV_INSTALL) --no-deps -e .
	@touch $@

run: $(RUNTIME_STAMP)
	$(BIN)/casebridge serve

# In parallel (pytest-xdist, one worker per core, tests/conftest.py orders and groups them); temporary
# files on tmpfs where there is one (SQLite commits there do not wait for a disk).
test: $(DEV_STAMP) browser-deps
	$(TEST_TMP) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

# The browser tests (tests/browser) drive Debian's Chromium (never a downloaded browser) and inject axe-core
# (tests/browser/axe, pinned by its package-lock.json). Best effort: installed where this user can; otherwise
# what to install is printed and those tests skip (in CI, CI=true, they fail instead).
CHROMIUM := /usr/bin/chromium
AXE_DIR := tests/browser/axe
AXE := $(AXE_DIR)/node_modules/axe-core/axe.min.js

browser-deps: $(AXE)
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
				|| echo "browser tests: apt-get could not install chromium; they will be skipped"; \
		else \
			echo "browser tests: Chromium is missing; install Debian's package (sudo apt-get install chromium), or they are skipped"; \
		fi; \
	fi

$(AXE): $(AXE_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		(cd $(AXE_DIR) && npm ci --no-audit --no-fund --silent) && touch $@ \
			|| echo "browser tests: npm ci failed in $(AXE_DIR); they will be skipped"; \
	else \
		echo "browser tests: npm is missing; install it (sudo apt-get install npm), then: cd $(AXE_DIR) && npm ci"; \
	fi

openapi: $(RUNTIME_STAMP)
	$(BIN)/casebridge openapi --output openapi.yaml

lint: $(DEV_STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app

# dev.txt is resolved first; runtime.txt is its runtime part, at the same versions.
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements/dev.txt
	$(UV) pip compile pyproject.toml -c requirements/dev.txt $(LOCK_FLAGS) -o requirements/runtime.txt
	$(UV) pip compile requirements/tools.in $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements/tools.txt

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make run    start the service on http://127.0.0.1:8000 (SQLite, keys and demo network on first run)
#   make test   run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test openapi lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CaseBridge needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/casebridge serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

openapi: $(STAMP)
	$(BIN)/casebridge openapi --output openapi.yaml

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Two commands do all the set-up:  `make run` (service + demo data, embedded PostgreSQL)
# and `make test` (every check and test CI runs).
PYTHON ?= python3
PORT   ?= 8000
HOST   ?= 127.0.0.1
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Text logs for a person at a terminal (production keeps the default JSON); the CLI is
# .venv/bin/creneau (not on the PATH unless the venv is activated).
run: install
	$(BIN)/creneau seed-demo --env-file .data/demo.env
	LOG_FORMAT=$${LOG_FORMAT:-text} $(BIN)/creneau serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app
	$(BIN)/lint-imports

# ruff, mypy and alembic check run beside the pytest suite, itself spread over the cores
# (scripts/test.sh; PYTEST_WORKERS=0 runs it in this one process).
test: install
	bash scripts/test.sh

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache test-artifacts

# Two commands do all the set-up:  `make run` (service + demo data, embedded PostgreSQL)
# and `make test` (every check and test CI runs).
PYTHON ?= python3
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

run: install
	$(BIN)/creneau seed-demo
	$(BIN)/creneau serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

test: install lint
	bash scripts/test.sh

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache test-artifacts

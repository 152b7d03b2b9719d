# Everything a newcomer needs: `make run` serves the demo, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export DATABASE_URL ?= sqlite+aiosqlite:///./shanhai.db

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/shanhai migrate
	$(BIN)/shanhai seed-demo
	$(BIN)/shanhai serve --host $(HOST) --port $(PORT) --no-migrate

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed
	$(BIN)/python scripts/bench_catalog.py
	$(BIN)/python scripts/bench_checkout.py

clean:
	rm -rf $(VENV) shanhai.db shanhai.db-wal shanhai.db-shm

# Everything a newcomer needs: `make run` serves the demo, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export DATABASE_URL ?= sqlite+aiosqlite:///./shanhai.db

.PHONY: run test lint format bench clean browser screenshots wrk

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

test: $(VENV)/.installed browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed wrk
	$(BIN)/python scripts/bench_catalog.py
	$(BIN)/python scripts/bench_checkout.py

# The HTTP load generator for the benchmarks (Debian's package; root or sudo).
wrk:
	@command -v wrk >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }

# Headless Chromium for the dashboard's browser tests (Debian's packages; root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; }

# Screenshots of the dashboard on the demo data, into docs/.
screenshots: $(VENV)/.installed browser
	$(BIN)/python scripts/dashboard_screenshots.py

clean:
	rm -rf $(VENV) shanhai.db shanhai.db-wal shanhai.db-shm

# Everything a newcomer needs: `make run` serves the demo, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export DATABASE_URL ?= sqlite+aiosqlite:///./shanhai.db

.PHONY: run test lint format bench bench-catalog bench-checkout bench-settlement bench-stats chaos clean browser screenshots wrk

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

# Every benchmark, on PostgreSQL (and SQLite where the issue asks): figures into docs/ and the
# output. Run on a quiet machine; each script says when it was not.
BENCH_PG ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
STATS_LINES ?= 1000000
bench: bench-catalog bench-checkout bench-settlement bench-stats

bench-catalog: $(VENV)/.installed wrk
	$(BIN)/python scripts/bench_catalog.py

bench-checkout: $(VENV)/.installed wrk
	$(BIN)/python scripts/bench_checkout.py

bench-settlement: $(VENV)/.installed
	$(BIN)/python scripts/bench_settlement.py --pg $(BENCH_PG)

# A year of STATS_LINES order lines made afresh on each database (about 10 minutes each at 1M).
bench-stats: $(VENV)/.installed
	cd scripts && ../$(BIN)/python bench_stats.py --lines $(STATS_LINES) --postgres $(BENCH_PG)

# The fault tests of issue 12 on PostgreSQL: kill -9, database outage, webhook chaos, the
# permissions matrix and the fuzzing (they also run in `make test`, on both databases).
CHAOS_TESTS ?= tests/ops/test_crash.py tests/ops/test_database_outage.py \
	tests/payments/test_webhook_chaos.py tests/conformance/test_permissions_matrix.py \
	tests/test_openapi_conformance.py
chaos: $(VENV)/.installed
	TEST_DATABASE_URL=$(BENCH_PG) $(BIN)/python -m pytest $(CHAOS_TESTS)

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

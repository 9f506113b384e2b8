# Spot Optimizer — developer commands. `make run` serves the product; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PIP_QUIET := 2>&1 | { grep -v '^WARNING: Location' || true; }
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz venv migrate seed lint check bench bench-optimizer bench-optimizer-small bench-agents clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(PIP_QUIET)
	$(BIN)/python -m pip install --quiet -r requirements.txt $(PIP_QUIET)
	$(BIN)/python -m pip install --quiet --no-deps -e . $(PIP_QUIET)
	touch $(STAMP)

venv: $(STAMP)

migrate: venv
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py load_pricing_snapshot
	$(BIN)/python manage.py seed_demo

# The embedded default: SQLite, a file broker, moto's server for AWS (simulated_aws, with a demo estate linked to the
# demo organization), a simulated agent. Ctrl-C stops everything.
run: seed
	@echo "Console and API: http://127.0.0.1:8000  (demo: demo@spotoptimizer.com / demo-password-1, admin: admin@spotoptimizer.com / admin123)"
	AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:5055} AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-testing} \
	AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-testing} $(BIN)/honcho -f Procfile.dev start

# The whole suite; PostgreSQL and Redis are used where DATABASE_URL / REDIS_URL point at them. It runs in one test
# process per core, at most 4 (pytest-xdist; each has its own test database and Redis database): TEST_WORKERS=0 runs
# it in this process alone. PYTEST_ARGS passes on options, e.g. PYTEST_ARGS="tests/optimizer -k deterministic".
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
test: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Property-based fuzzing of the whole API (schemathesis) against gunicorn on PostgreSQL: tests/fuzz/run.py.
# Needs DATABASE_URL pointing at a PostgreSQL database that it may drop and recreate.
fuzz: venv
	$(BIN)/python -m tests.fuzz.run

lint: venv
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

check: lint test

bench: bench-optimizer

bench-optimizer: venv
	$(BIN)/python bench/optimizer.py

# The small size class only (40-200 pods over hundreds of offerings): what CI runs; exits 1 on an invalid plan.
bench-optimizer-small: venv
	$(BIN)/python bench/optimizer.py --small --seeds 1 --bound-seconds 10

bench-agents: venv
	$(BIN)/python bench/agents.py

clean:
	rm -rf var/broker staticfiles .pytest_cache .ruff_cache

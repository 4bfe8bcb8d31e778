# Every target installs what it needs: a virtualenv in .venv for the two packages and the
# test tools, and .venv-meltano for Meltano (which installs the plugins from meltano.yml itself).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MELTANO_VENV := .venv-meltano
MELTANO := $(MELTANO_VENV)/bin/meltano
export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false
export MELTANO_BIN := $(abspath $(MELTANO))

.PHONY: install install-meltano test lint format clean

# The packages' byte-code, written again where a source changed: where PYTHONDONTWRITEBYTECODE
# is set (many container images) Python never writes it, and compiling the target's modules
# at each start cost 3 % of the benchmark's target-alone run (median of 12 interleaved runs).
install: $(VENV)/.installed
	@$(BIN)/python -m compileall -q tap-stripe/tap_stripe target-duckdb/target_duckdb

$(VENV)/.installed: tap-stripe/pyproject.toml target-duckdb/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ./tap-stripe -e ./target-duckdb -r requirements-dev.txt
	touch $@

install-meltano: $(MELTANO_VENV)/.installed

$(MELTANO_VENV)/.installed:
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/pip install --quiet --disable-pip-version-check 'meltano>=4.0,<5'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two workers (CI has two cores); a test file stays on one worker, so a module's
# session fixtures (the reference sync, the Meltano project) are made once.
test: install install-meltano lint
	$(BIN)/pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano .pytest_cache .ruff_cache

# Regenerates tap-stripe/tap_stripe/schemas/ from Stripe's OpenAPI description. Only this
# target reads ../shared; the generated files are committed and nothing reads ../shared at run time.
STRIPE_OPENAPI ?= ../shared/stripe-openapi
.PHONY: schemas
schemas: install
	$(BIN)/python tap-stripe/scripts/generate_schemas.py --spec $(STRIPE_OPENAPI)/spec3.json --out tap-stripe/tap_stripe/schemas

# `meltano install` of the two plugins (from the local folders) into .meltano/, again only
# when meltano.yml or a package's dependencies changed.
MELTANO_PLUGINS := .meltano/.plugins-installed
.PHONY: meltano-plugins
meltano-plugins: $(MELTANO_PLUGINS)

$(MELTANO_PLUGINS): $(MELTANO_VENV)/.installed meltano.yml tap-stripe/pyproject.toml target-duckdb/pyproject.toml
	$(MELTANO) install
	touch $@

# The whole pipeline (meltano run tap-stripe target-duckdb) against the local Stripe simulator.
.PHONY: demo run bench
demo: install meltano-plugins
	$(BIN)/python scripts/demo.py --simulator

# The same against Stripe itself, with STRIPE_API_KEY from the environment.
run: install meltano-plugins
	$(BIN)/python scripts/demo.py --stripe

# Throughput, requests and memory figures of issue 5 against the simulator (4 to 6 minutes here).
# Every benchmark lives in bench/: also `python -m bench.simulator` and `python -m bench.target`.
bench: install
	$(BIN)/python -m bench

# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell sha256sum pyproject.toml | cut -c1-12)
# Stamps change with pyproject.toml, so a dependency change reinstalls by itself.
DEMO_STAMP := $(VENV)/.demo-$(HASH)
DEV_STAMP  := $(VENV)/.dev-$(HASH)

.PHONY: install demo test lint typecheck pytest services system-packages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "MaintAInPro needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,iot,analytics,supply]'
	rm -f $(VENV)/.demo-*
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	bash scripts/system-packages.sh
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.dev-*
	touch $@

install: $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/maintainpro demo

system-packages:
	bash scripts/system-packages.sh

services:
	bash scripts/services.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# One worker per core; a test file stays on one worker (its module fixtures, servers and
# browser are set up once), and each worker has its own PostgreSQL test database. The 25
# slowest tests are listed at the end, so a run creeping towards its time budget shows why.
pytest: $(DEV_STAMP) services
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data

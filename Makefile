# pgparity — every set-up step lives here, so a fresh clone needs only `make demo` / `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_BINDIR ?= $(shell ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## create .venv with pgparity (editable) and the dev tools

.PHONY: postgres
postgres: ## install PostgreSQL server binaries (postgresql-15) when missing
	@scripts/ensure-postgres.sh

.PHONY: lint
lint: install ## ruff, mypy --strict, import layering
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: test-unit
test-unit: install ## pure tests, no services
	$(BIN)/pytest -m unit

.PHONY: test-pg
test-pg: install postgres ## tests against real PostgreSQL (ephemeral primary + replica)
	$(BIN)/pytest -m pg

.PHONY: test
test: install postgres ## install everything, lint, run every test tier
	$(MAKE) lint
	$(BIN)/pytest

.PHONY: demo
demo: install postgres ## validate the bundled migrations on a local primary + replica
	$(BIN)/python demo/run_demo.py

.PHONY: clean
clean: ## remove build outputs (not caches outside the tree)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache operator/*.egg-info

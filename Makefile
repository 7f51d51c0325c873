# `make run` and `make test` do all set-up on a fresh machine with python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help run test lint bench demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed ## migrate the embedded database, make sure an operator exists, serve on :8000
	$(BIN)/exchange migrate
	$(BIN)/exchange bootstrap
	$(BIN)/exchange serve

test: $(VENV)/.installed-dev lint ## lint, then run the whole suite (SQLite, and PostgreSQL when reachable; required under CI)
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev ## ruff: unused names, likely bugs, import order
	$(BIN)/ruff check exchange tests migrations benchmarks

bench: $(VENV)/.installed-dev ## run benchmarks/, print one table (ARGS=--quick: about a minute; docs/PERFORMANCE.md)
	$(BIN)/python benchmarks/run.py $(ARGS)

demo: $(VENV)/.installed ## load the demo catalogue into the embedded database
	$(BIN)/exchange migrate
	$(BIN)/exchange demo

clean: ## remove the virtual environment and the embedded database
	rm -rf $(VENV) var

# Postwire: `make help` lists the targets.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

install: $(UV) ## install every package of the workspace into .venv (uv sync --frozen)
	$(UV) sync --frozen --quiet

run: install ## run the whole system: seven services, SecantusDB, sandbox carrier, demo tenant
	.venv/bin/postwire dev $(RUN_ARGS)

SRC_ROOTS = $(wildcard libs/*/src services/*/src tools/*/src)

lint: install ## ruff, mypy --strict and the import-linter contracts (services never import each other)
	.venv/bin/ruff check libs services tools tests
	MYPYPATH=$(subst $(eval) ,:,$(SRC_ROOTS)) .venv/bin/mypy --strict $(wildcard $(addsuffix /postwire_*,$(SRC_ROOTS)))
	.venv/bin/lint-imports

test: lint ## unit, integration and end-to-end tests against real RabbitMQ and SecantusDB
	.venv/bin/pytest $(PYTEST_ARGS)

bench: install ## benchmarks (tests/bench): print figures, write JSON to tests/bench/results
	.venv/bin/python -m tests.bench

clean: ## remove the local state of `make run` (stop it first)
	rm -rf .postwire

.PHONY: help install run lint test bench clean

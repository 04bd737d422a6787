# Postwire: `make help` lists the targets.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTEST_ARGS ?=
BENCH_ARGS ?=

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

test-faults: install ## fault suite under load (tests/faults); FAULT_SCALE=1 runs the issue's full figures
	.venv/bin/pytest tests/faults $(PYTEST_ARGS)

openapi: install ## regenerate the committed openapi.json from the gateway
	.venv/bin/python -c "from postwire_gateway.app import create_app; from postwire_gateway.settings import GatewaySettings; from postwire_gateway.openapi import render; from postwire_platform.secrets_at_rest import generate_key; open('openapi.json', 'w').write(render(create_app(GatewaySettings(secret_keys=[generate_key()]))))"

bench: install ## benchmarks (tests/bench): print figures, write JSON to tests/bench/results (BENCH_ARGS=--quick)
	.venv/bin/python -m tests.bench $(BENCH_ARGS)

clean: ## remove the local state of `make run` (stop it first)
	rm -rf .postwire

.PHONY: openapi help install run lint test test-faults bench clean

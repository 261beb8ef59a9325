# polyfleet command runner: people, hooks and CI all call these targets.
# `make` (or `make help`) lists them; each target's `## ...` comment is its description.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PYTHON ?= python3
N ?= 2
COMPOSE ?= docker compose

.PHONY: help install lint fmt type test test-fast check bench demo redis up down logs scale-workers compose-check clean

help: ## List the targets with a one-line description
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target> [N=workers]\n\n"} \
		/^[a-zA-Z0-9_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install the locked dependencies (uv sync --frozen; installs uv with pip if missing)
	@command -v $(UV) >/dev/null 2>&1 || $(PYTHON) -m pip install uv
	$(UV) sync --frozen

lint: ## Lint with ruff
	$(UV) run ruff check .

fmt: ## Format and auto-fix with ruff
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

type: ## Type-check shared/, services/ and cli/ with mypy (strict)
	$(UV) run mypy

test: ## Run the whole test suite (unit, integration, architecture, e2e)
	$(UV) run pytest -q

test-fast: ## Run the unit and architecture tests only (no servers)
	$(UV) run pytest -q tests/unit tests/architecture

check: lint type test ## lint + type + test: what CI runs

bench: ## Run every benchmark in bench/ (figures go to docs/benchmarks.md by hand, with the machine line)
	@for b in bench/bench_*.py; do echo "== $$b"; $(UV) run python -m bench.$$(basename $$b .py) || exit 1; done

demo: ## Run the sim-mode demo (scripts/demo.sh)
	bash scripts/demo.sh

redis: ## Start a local redis-server on 6379 unless one answers (scripts/ensure-redis.sh)
	bash scripts/ensure-redis.sh

up: ## docker compose up -d: redis, sim_exchange and every service
	$(COMPOSE) up -d --build

down: ## docker compose down (keeps the redis volume)
	$(COMPOSE) down

logs: ## Follow the compose services' logs
	$(COMPOSE) logs -f --tail=200

scale-workers: ## Run N maker workers under compose (make scale-workers N=4; default 2)
	$(COMPOSE) up -d --scale maker_worker=$(N)

compose-check: ## Validate docker-compose.yml (docker compose config, else the structural test)
	@if $(COMPOSE) version >/dev/null 2>&1; then \
		$(COMPOSE) config -q && echo "docker-compose.yml: valid (docker compose config)"; \
	else \
		echo "docker compose unavailable: running the structural check instead"; \
		$(UV) run pytest -q tests/unit/test_compose.py; \
	fi

clean: ## Remove caches and test artifacts (keeps .venv and var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts
	find . -path ./.venv -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

# polyfleet command runner: people, hooks and CI all call these targets.
# `make` (or `make help`) lists them; each target's `## ...` comment is its description.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
# --locked: a uv.lock that no longer matches pyproject.toml stops the run instead of being re-locked.
RUN = $(UV) run --locked
# scripts/bootstrap.sh puts uv (pip --user) here; every recipe after it must find it.
export PATH := $(HOME)/.local/bin:$(PATH)
# The first step of every target that runs the code: install what is missing, once per make run. Its profile
# follows the goals: `test` (chromium, chromedriver, a compose CLI on top of uv, .venv and redis-server)
# when a goal runs the tests or the compose CLI, `demo` otherwise.
TEST_GOALS = test check compose-check
BOOTSTRAP_PROFILE = $(if $(filter $(TEST_GOALS),$(MAKECMDGOALS)),test,demo)
N ?= 2
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
LIVE_FILES = -f docker-compose.yml -f docker-compose.live.yml

.PHONY: help install lint fmt type test test-fast check audit audit-report bench demo redis up up-live down logs ps scale-workers compose-check dashboard clean

help: ## List the targets with a one-line description
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target> [N=workers]\n\n"} \
		/^[a-zA-Z0-9_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install what is missing: uv, the locked dependencies, redis-server; for test/check also chromium, chromedriver, docker-compose (scripts/bootstrap.sh)
	bash scripts/bootstrap.sh $(BOOTSTRAP_PROFILE)

lint: install ## Lint with ruff
	$(RUN) ruff check .

fmt: install ## Format and auto-fix with ruff
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

type: install ## Type-check shared/, services/ and cli/ with mypy (strict)
	$(RUN) mypy

# Parallel test workers (pytest-xdist). Most of the suite waits on processes and sockets, not on the
# CPU, so more workers than cores pays (2 cores, 6 workers with work stealing: 2 min 27 s idle, 137 s
# user CPU); the longest tests start first (tests/conftest.py) and idle workers steal the rest. Each
# worker keeps one sim_exchange and resets it per test (harness.SimPool).
TEST_WORKERS ?= 6

test: install ## Run the whole test suite (unit, integration, architecture, e2e, the short soak) on TEST_WORKERS workers
	$(RUN) pytest -q -n $(TEST_WORKERS) --dist worksteal

test-fast: install ## Run the unit and architecture tests only (no servers)
	$(RUN) pytest -q tests/unit tests/architecture

audit: install ## Audit the locked dependencies with pip-audit; fails on a known vulnerability or a package it could not check
	$(RUN) python scripts/audit.py --strict

audit-report: install ## The same audit, but only reports packages it could not check (no route to the service); fails on a vulnerability
	$(RUN) python scripts/audit.py

check: install lint type audit-report compose-check test ## lint + type + dependency audit + test: what CI runs

bench: install ## Run every benchmark in bench/ (figures go to docs/benchmarks.md by hand, with the machine line)
	@for b in bench/bench_*.py; do echo "== $$b"; $(RUN) python -m bench.$$(basename $$b .py) || exit 1; done

SOAK_SECONDS ?= 3600
SOAK_SEED ?= 9
SOAK_MARKETS ?= 40
SOAK_WORKERS ?= 4
SOAK_WALLETS ?= 12
SOAK_WS_RATE ?= 0
.PHONY: soak soak-short

soak: install ## Whole-system soak under chaos, long (SOAK_SECONDS=3600 SOAK_SEED=9 SOAK_MARKETS SOAK_WORKERS SOAK_WALLETS SOAK_WS_RATE); summary in var/soak/summary.json
	$(RUN) python -m harness.soak.run --seconds $(SOAK_SECONDS) --seed $(SOAK_SEED) \
		--markets $(SOAK_MARKETS) --workers $(SOAK_WORKERS) --wallets $(SOAK_WALLETS) --ws-rate $(SOAK_WS_RATE) \
		--log-dir var/soak/logs --out var/soak/summary.json

soak-short: install ## The CI soak (~100 s of chaos + settle; `make test` runs it too)
	$(RUN) pytest -q -s -m soak tests/soak

demo: install ## Run the sim-mode demo (scripts/demo.sh)
	bash scripts/demo.sh

redis: install ## Start a local redis-server on 6379 unless one answers (scripts/ensure-redis.sh)
	bash scripts/ensure-redis.sh

up: ## Sim mode in containers: redis, sim_exchange (profile sim), every service, API on 127.0.0.1:8800
	$(COMPOSE) --profile sim up -d --build

up-live: ## Live mode in containers (docker-compose.live.yml; needs PF_LIVE_CONFIRMED and the live secrets)
	$(COMPOSE) $(LIVE_FILES) up -d --build

down: ## Stop every container, sim_exchange included (keeps the redis and logs volumes)
	$(COMPOSE) --profile sim down

logs: ## Follow the compose services' logs
	$(COMPOSE) --profile sim logs -f --tail=200

ps: ## Containers with their health
	$(COMPOSE) --profile sim ps

scale-workers: ## Run N maker workers under compose (make scale-workers N=4; default 2)
	$(COMPOSE) --profile sim up -d --no-recreate --scale maker_worker=$(N)

compose-check: install ## Validate the compose files with the compose CLI (no engine needed) + the structural tests
	$(COMPOSE) config -q && echo "docker-compose.yml: valid ($(COMPOSE) config)"
	$(RUN) pytest -q tests/unit/test_compose.py

dashboard: ## Print the dashboard URL (with PF_API_TOKEN in the fragment, which never reaches a server)
	@test -n "$$PF_API_TOKEN" || { echo "PF_API_TOKEN is not set"; exit 1; }
	@echo "http://127.0.0.1:8800/#token=$$PF_API_TOKEN"

clean: ## Remove caches and test artifacts (keeps .venv and var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts var/test-artifacts
	find . -path ./.venv -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

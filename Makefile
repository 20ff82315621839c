# Every habit of the project behind one target. `make demo` and `make test` work on a fresh machine:
# they create the virtual environment and install what they need first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export TZ := UTC
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1


.PHONY: help venv up clean-state demo test unit integration statemachine e2e fake-tests lint format typecheck validate clean
.PHONY: openapi event-schema fuzz fuzz-orders chaos build bench-cold-start bench-landing bench-landing-memory bench-list bench-fleet

help:
	@grep -E '^[a-z-]+:.*?## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.x (3.11 or newer)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed ## create .venv and install the project with its dev tools

up: venv ## run the whole service locally in the foreground (API :8000, AWS :5000, fake Planet :8001)
	$(PY) -m gateway_local up

clean-state: ## forget what `make up` keeps between runs (orders, keys, landed files, the fake's orders)
	$(PY) -m gateway_local reset

demo: venv ## start the local stack, run the seed document's orders end to end, print what landed
	$(PY) -m gateway_local demo

test: venv ## every suite: unit, integration, statemachine, fake Planet + SDK, e2e
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered

unit: venv
	$(PY) -m pytest tests/unit
integration: venv
	$(PY) -m pytest tests/integration
statemachine: venv
	$(PY) -m pytest tests/statemachine
fake-tests: venv
	$(PY) -m pytest tests/fake_planet
e2e: venv
	$(PY) -m pytest tests/e2e

openapi: venv ## regenerate docs/openapi.json from ApiFunction's routes (a unit test fails while it is stale)
	$(PY) -m gateway_local.openapi
event-schema: venv ## regenerate docs/events/ (completion event JSON Schema, AsyncAPI, examples) from its model
	$(PY) -m gateway_local.event_schema
fuzz: venv ## schemathesis from docs/openapi.json against a local stack (part of make test; FUZZ_EXAMPLES=500 digs deeper)
	$(PY) -m pytest tests/e2e/test_fuzz_api.py
fuzz-orders: venv ## generated orders (Hypothesis, from the fake's bundles table) end to end through a local stack; EXAMPLES=500 digs deeper
	$(if $(EXAMPLES),EXAMPLES=$(EXAMPLES)) $(PY) -m pytest tests/e2e/test_generated_orders.py
chaos: venv ## every upstream op x every fault kind, duplicates, hostile producers on a local stack; prints a table (CI; make test runs a subset)
	CHAOS_FULL=1 $(PY) -m pytest tests/chaos
bench-cold-start: build venv ## cold start of every built function (as deployed) vs a typical handler; updates benchmarks/RESULTS.md
	$(PY) benchmarks/cold_start.py --write --python $(LAMBDA_PYTHON) $(if $(RUNS),--runs $(RUNS))
bench-list: venv ## list first page + full walk with 1k/10k/100k orders of a tenant vs the old in-memory list; updates benchmarks/RESULTS.md
	$(PY) benchmarks/list_orders.py --write $(if $(RUNS),--runs $(RUNS))
bench-fleet: venv ## 100/1k/10k concurrent orders on one key, today's polling vs paced + woken tracking, in virtual time; updates benchmarks/RESULTS.md
	$(PY) benchmarks/fleet.py --write

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
typecheck: venv ## mypy over the layer, then each function (every handler file is called app.py)
	$(VENV)/bin/mypy shared/order_core
	for f in functions/*/; do $(VENV)/bin/mypy "$$f" || exit 1; done

SAM_VENV := .venv-sam
ASL_VALIDATOR := .tools/node/node_modules/.bin/asl-validator

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==1.170.*'
	@touch $@

$(ASL_VALIDATOR):
	npm install --silent --no-audit --no-fund --prefix .tools/node asl-validator@4.0.0

validate: $(SAM_VENV)/.installed $(ASL_VALIDATOR) ## sam validate --lint (own venv) and an ASL graph check
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(ASL_VALIDATOR) --json-path statemachine/order_workflow.asl.json

# The Lambda runtime's Python (template.yaml's Runtime): the layer's .pyc are only valid for that version.
# A pyenv install is used directly: its shim for a version that is not selected never returns.
LAMBDA_PYTHON ?= $(shell ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | tail -1 | grep . || command -v python3.13)
BUILD_DIR := .aws-sam/build

build: $(SAM_VENV)/.installed ## sam build: the layer and functions as deployed, precompiled; prints sizes
	@test -n "$(LAMBDA_PYTHON)" || { echo "python3.13 (the Lambda runtime's Python) not found on PATH"; exit 1; }
	PATH="$(dir $(LAMBDA_PYTHON)):$$PATH" LAMBDA_PYTHON=$(LAMBDA_PYTHON) \
		$(SAM_VENV)/bin/sam build --template template.yaml --build-dir $(BUILD_DIR) --parallel
	for f in $(BUILD_DIR)/*Function; do $(LAMBDA_PYTHON) -m compileall -q --invalidation-mode unchecked-hash "$$f" || exit 1; done
	$(LAMBDA_PYTHON) local/gateway_local/build_check.py $(BUILD_DIR) --requirements shared/requirements.txt

clean:
	rm -rf $(VENV) $(SAM_VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .local-stack

bench-landing: venv ## land 1 x 2 GiB and 200 x 10 MiB: ours vs a plain loop (as is and verifying) vs planet orders download (~13 min)
	$(PY) benchmarks/landing_throughput.py

bench-landing-memory: venv ## peak RSS of the final function landing 256 MiB vs 4 GiB (~1.5 min)
	$(PY) benchmarks/landing_memory.py

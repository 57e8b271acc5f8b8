# Swapdrop developer entry points. Everything runs in venvs made with Python 3.13,
# the Lambda runtime: .venv (app, tests, local stack), .venv-tools (sam, cfn-lint,
# which pin their own boto3) and .venv-scan (checkov, which pins yet others).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ifeq ($(origin PYTHON313), undefined)
PYTHON313 := $(shell scripts/find-python313)
endif
VENV := .venv
TOOLS := .venv-tools
SCAN := .venv-scan
PY := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= us-east-1
# sam build looks for python3.13 on PATH.
export PATH := $(dir $(PYTHON313)):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help python venv tools scan-tools lint unit integration test build bench chaos local demo clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

python:
	@if [ -z "$(PYTHON313)" ] || ! "$(PYTHON313)" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then \
	  echo "error: Python 3.13 (the Lambda runtime) was not found."; \
	  echo "       Put python3.13 on PATH, install it with 'pyenv install 3.13.0', or run make PYTHON313=/path/to/python3.13"; \
	  exit 1; fi

# One venv for tests, the local stack and the emulator. The emulator's image stack
# (OpenCV, MediaPipe, ...) lives here only: the Lambda layer has layers/common/requirements.txt.
$(VENV)/.installed: requirements-dev.txt requirements-emulator.txt requirements-emulator-nodeps.txt \
		layers/common/requirements.txt pyproject.toml | python
	"$(PYTHON313)" -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-emulator.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-emulator-nodeps.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(TOOLS)/.installed: requirements-tools.txt | python
	"$(PYTHON313)" -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check -r requirements-tools.txt
	touch $@

$(SCAN)/.installed: requirements-scan.txt | python
	"$(PYTHON313)" -m venv $(SCAN)
	$(SCAN)/bin/pip install -q --disable-pip-version-check -r requirements-scan.txt
	touch $@

venv: $(VENV)/.installed ## create the app/test venv
tools: $(TOOLS)/.installed ## create the sam/cfn-lint venv
scan-tools: $(SCAN)/.installed ## create the checkov venv

lint: tools scan-tools venv ## cfn-lint, sam validate --lint, checkov, ruff
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml
	@# Any failed check fails lint; a deliberate exception is a checkov skip with its reason in
	@# template.yaml. --skip-download: offline, no Prisma Cloud guidelines or policies.
	$(SCAN)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: openapi
openapi: venv ## regenerate api/openapi.yaml from the API's resolvers (a unit test fails when it drifts)
	$(PY) scripts/generate_openapi.py

.PHONY: schemas
schemas: venv ## regenerate events/schemas/*.json (JSON Schema 2020-12; a unit test fails when they drift)
	$(PY) scripts/generate_event_schemas.py

unit: venv ## unit tests only (fakes, no sockets)
	$(PY) -m pytest tests/unit -q

build: tools ## sam build (arm64 layer, python3.13)
	$(TOOLS)/bin/sam build

test: lint venv tools ## lint + the whole pytest suite (unit, integration on moto's server, template and build checks)
	SAM_BIN=$(abspath $(TOOLS))/bin/sam CHECKOV_BIN=$(abspath $(SCAN))/bin/checkov $(PY) -m pytest tests -q

bench: venv ## one table of every bench's figures, ratios measured side by side in one run (ARGS=--large: the big runs; ARGS="--only cold_start")
	$(PY) bench/run.py $(ARGS)

chaos: venv ## the chaos suite at full size: crashes, hostile input, a misbehaving swap API; prints its table (out/chaos/)
	$(PY) -m swapdrop_local.chaos --size full --out out/chaos $(ARGS)

local: venv ## run the whole stack on this machine (Ctrl-C stops it); endpoints in out/local.json
	$(VENV)/bin/swapdrop local --info-file out/local.json $(ARGS)

demo: venv ## one real face swap through the local stack; the result lands in out/demo/
	$(VENV)/bin/swapdrop demo --out out/demo $(ARGS)

clean: ## remove venvs and build output
	rm -rf $(VENV) $(TOOLS) $(SCAN) .aws-sam .pytest_cache out

# ml-endpoints: every target sets up what it needs (venv, packages), so each works alone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Tools installed into the venv (moto_server, gcp-storage-emulator, actionlint, hadolint) are
# found by the tests through PATH, without activating the venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)
PIP := $(BIN)/python -m pip
# The CPU build of torch on this machine kind; an unpinned torch would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
ARGS ?=
STACK ?= dev
FROM ?= staging
TO ?= prod
BASE ?= origin/main

.PHONY: serve test test-fast lint image bench system-deps clients clean help \
	bootstrap preview up plan diff validate promote rollback snapshots soak preflight \
	monitoring-files dashboard-picture

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.serving: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[serving,onnx]'
	touch $@

# Operators who plan, diff, validate, promote and roll back need the infra side only: no torch,
# no serving runtime, no test tools. A full dev install has it all already.
$(VENV)/.infra: pyproject.toml | $(BIN)/python
	if [ ! -e $(VENV)/.dev ] || [ pyproject.toml -nt $(VENV)/.dev ]; then $(PIP) install -q -e '.[infra]'; fi
	touch $@

# preview/up/preflight talk to the clouds: the infra side, the policy pack and the cloud clients.
$(VENV)/.deploy: $(VENV)/.infra
	if [ ! -e $(VENV)/.dev ] || [ pyproject.toml -nt $(VENV)/.dev ]; then $(PIP) install -q -e '.[infra,policy,preflight,aws,gcp]'; fi
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -q '$(TORCH_PIN)'
	$(PIP) install -q -e '.[serving,onnx,treelite,xgboost,lightgbm,torch,aws,gcp,drift,skops,infra,preflight,dev]'
	touch $@

serve: $(VENV)/.serving ## serve the bundled demo model on :8080 (ARGS="--model PATH" for yours)
	$(BIN)/ml-endpoints serve $(ARGS)

system-deps: ## install the real tools tests use (podman, wrk, promtool), if missing
	bash .ci/system-deps

test: $(VENV)/.dev system-deps clients ## lint, type-check and run every test (as CI does)
	$(BIN)/ruff check .
	$(BIN)/mypy serving infra
	$(BIN)/pytest -n 2 --ignore=tests/serving/reliability
	# timing-sensitive (load, overload, shutdown): alone, not beside other tests
	$(BIN)/pytest tests/serving/reliability

clients: $(VENV)/.dev ## venvs of the real client libraries the tests drive (made once per machine)
	$(BIN)/python -m tests.serving.clients.venvs

test-fast: $(VENV)/.dev ## the tests that need no container image
	$(BIN)/pytest -m 'not slow'

lint: $(VENV)/.dev ## ruff, mypy and hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check serving infra tests bench || true
	$(BIN)/mypy serving infra
	$(BIN)/hadolint serving/Dockerfile
	$(BIN)/actionlint .github/workflows/*.yml

image: system-deps ## build the serving image with podman (BASE_IMAGE=... to override)
	bash serving/build-image.sh

bench: $(VENV)/.dev system-deps ## side-by-side throughput/latency benchmark (see bench/README.md)
	$(BIN)/python -m bench.run

soak: $(VENV)/.dev system-deps ## 10-minute soak at moderate load: errors and RSS growth
	$(BIN)/python -m bench.soak

# First deployment, step 1: only the registries (ECR, Artifact Registry, and the Google APIs they
# need), so the image can be pushed before anything deploys it (stacks/README.md).
BOOTSTRAP_TARGETS := --target '**ml-endpoints:aws:EcrRepository**' \
	--target '**ml-endpoints:gcp:ArtifactRegistry**' --target '**gcp:projects/service:Service**'

bootstrap: $(VENV)/.deploy ## first deployment, step 1: only STACK's registries (then push the image, preflight, up)
	pulumi up --stack $(STACK) --policy-pack infra/policy $(BOOTSTRAP_TARGETS)

preview: $(VENV)/.deploy ## preflight, then pulumi preview --diff of STACK with the policy pack (Pulumi CLI + credentials)
	$(BIN)/ml-endpoints preflight --stack $(STACK)
	pulumi preview --stack $(STACK) --diff --policy-pack infra/policy

preflight: $(VENV)/.deploy ## STACK's images and model artifacts exist and are readable (credentials)
	$(BIN)/ml-endpoints preflight --stack $(STACK)

up: $(VENV)/.deploy ## preflight, pulumi up STACK with the policy pack, then verify it
	$(BIN)/ml-endpoints preflight --stack $(STACK)
	pulumi up --stack $(STACK) --policy-pack infra/policy
	$(BIN)/ml-endpoints verify --stack $(STACK)

plan: $(VENV)/.infra ## offline plan of STACK under Pulumi's mocks (no credentials)
	$(BIN)/ml-endpoints plan --stack $(STACK)

diff: $(VENV)/.infra ## offline diff of STACK against BASE (a git ref)
	$(BIN)/ml-endpoints diff --stack $(STACK) --base $(BASE)

validate: $(VENV)/.infra ## the policy pack on every stack's offline plan
	$(BIN)/ml-endpoints validate

promote: $(VENV)/.infra ## copy the release FROM -> TO (edits stacks/ in place)
	$(BIN)/ml-endpoints promote $(FROM) $(TO)

rollback: $(VENV)/.infra ## restore STACK's previous release
	$(BIN)/ml-endpoints rollback $(STACK)

snapshots: $(VENV)/.dev ## regenerate tests/infra/snapshots after an intended plan change
	ML_ENDPOINTS_UPDATE_SNAPSHOTS=1 $(BIN)/pytest tests/infra/stack/test_plan.py -k snapshot

monitoring-files: $(VENV)/.dev ## rewrite infra/monitoring's plain dashboard and rules files from the code
	$(BIN)/python -m infra.monitoring

dashboard-picture: $(VENV)/.dev system-deps ## docs/dashboard.png from a real Prometheus scraping two servers for 60 s
	mkdir -p docs
	ML_ENDPOINTS_DASHBOARD_PICTURE=$(CURDIR)/docs/dashboard.png ML_ENDPOINTS_DASHBOARD_LOAD_SECONDS=60 \
		$(BIN)/pytest tests/infra/monitoring/test_dashboard.py -k picture

clean:
	rm -rf $(VENV) .bench .mypy_cache .ruff_cache .pytest_cache

# The one entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MLSTACK := $(PY) -m cli
PYTEST_ARGS ?=
COMPONENT ?= fraud
EVENTS ?= 20000

.PHONY: component train pipeline-compile serve canary stream-start stream-produce stream-status stream-stop help setup demo demo-drift test test-unit test-local test-loop lint format lock services-up services-down services-status \
	services-reset bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install environments, engines and Debian packages (idempotent; a second run is a no-op)
	@$(PYTHON) -m devtools.install

.PHONY: tools
tools: ## Build the pinned Pulumi CLI + Kubernetes provider from Go modules into .cache/tools (cached; make test starts it in the background)
	@$(PYTHON) -m devtools.pulumi_toolchain

demo: setup ## The whole lifecycle of COMPONENT (default fraud) on the embedded default, left running to explore
	@$(MLSTACK) demo --component $(COMPONENT) --events $(EVENTS) $(if $(SEED),--seed $(SEED))

demo-drift: setup ## The closed loop: the world changes after the champion serves; alert -> retraining -> canary on live labels -> promotion, by itself (about 35 min)
	@$(MLSTACK) demo --drift --component $(COMPONENT) --events $(EVENTS) $(if $(SEED),--seed $(SEED))

component: setup ## Scaffold a new use-case component: make component NAME=<name> [TASK=binary|multiclass|regression] (package + its own tests)
	@if [ -z "$(NAME)" ]; then echo "usage: make component NAME=<name>  (lower case, e.g. churn)"; exit 2; fi
	@$(MLSTACK) component new $(NAME) $(if $(TASK),--task $(TASK))

test: setup tools-background policy-tools lint ## Run every test tier that can run here (tiers whose engine is missing skip, saying why), all but the loop's half hour
	@$(PY) -m pytest -m "not loop" $(PYTEST_ARGS)

FRESH_MACHINE ?= ../shared/tools/fresh-machine
.PHONY: test-fresh
test-fresh: ## Run `make setup` in a fresh Debian root file system (FRESH_MACHINE tool, root): catches missing install steps
	@if [ ! -x "$(FRESH_MACHINE)" ]; then echo "test-fresh: $(FRESH_MACHINE) not found (set FRESH_MACHINE=<path to the fresh-machine tool>)"; exit 2; fi
	@"$(FRESH_MACHINE)" --timeout 1800 . -- .ci/clean-room-setup

.PHONY: tools-background
tools-background: ## Start the Pulumi toolchain build in the background at low priority (the render tier waits for it)
	@$(PYTHON) -m devtools.pulumi_toolchain --background

test-unit: setup policy-tools ## Only the fast tiers (unit, manifests)
	@$(PY) -m pytest -m "unit or manifests" $(PYTEST_ARGS)

test-local: setup ## Only the tier with real local engines (without the loop)
	@$(PY) -m pytest -m "local and not loop" $(PYTEST_ARGS)

test-loop: setup ## The closed loop (issue 19) beside a control run on a world without change, on real engines (about 35 min)
	@$(PY) -m pytest -m loop $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check) and mypy
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

format: setup ## Apply ruff's formatting and safe fixes
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

lock: ## Re-resolve the pinned environments from requirements/*.in
	@$(VENV)/bin/uv pip compile -q requirements/main.in --python-version 3.11 --generate-hashes -o requirements/main.txt
	@$(VENV)/bin/uv pip compile -q requirements/streaming.in --python-version 3.11 --generate-hashes -o requirements/streaming.txt

services-up: setup ## Start the embedded services (Kafka, Redis, MLflow) and wait until healthy
	@$(MLSTACK) services up

services-down: ## Stop the embedded services; no process is left behind
	@if [ -x $(PY) ]; then $(MLSTACK) services down; else echo "nothing installed, nothing running"; fi

services-status: ## Show state, health, memory and address of each embedded service
	@$(MLSTACK) services status

services-reset: ## Stop the services and wipe their state (topics, runs, features)
	@$(MLSTACK) services reset --yes

bench: setup ## Run the benchmarks and print their tables
	@for b in benchmarks/*.py; do echo "== $$b"; PYTHONPATH=. $(PY) $$b || exit 1; done

clean: services-down ## Remove environments, caches and state
	rm -rf $(VENV) .venv-streaming .cache .state build

train: setup ## Run the training pipeline for COMPONENT locally (KFP local runner + Ray Tune + MLflow)
	@$(MLSTACK) train run $(COMPONENT)

pipeline-compile: setup ## Compile the training pipeline to KFP IR YAML in build/pipelines
	@$(MLSTACK) train compile

serve: setup ## Serve COMPONENT's champion behind HAProxy (model endpoint printed)
	@$(MLSTACK) serve start $(COMPONENT)

canary: ## Canary COMPONENT's challenger on the embedded servers, stepping until promoted or rolled back
	@$(VENV)/bin/kubectl-canary --embedded run $(COMPONENT) --window 30

stream-start: setup ## Start streaming features for COMPONENT (Kafka -> Flink -> Feast)
	@$(MLSTACK) stream start $(COMPONENT)

stream-produce: ## Send EVENTS synthetic events of COMPONENT (and close their windows)
	@$(MLSTACK) stream produce $(COMPONENT) --events $(EVENTS)

stream-status: ## Flink job state, lag and dead letters of COMPONENT
	@$(MLSTACK) stream status $(COMPONENT)

stream-stop: ## Stop the Flink job and Feast pusher of COMPONENT (checkpoints are kept)
	@$(MLSTACK) stream stop $(COMPONENT)

# -- cluster mode (issue 7): Pulumi stacks Pulumi.<STACK>.yaml -------------------------------------------------------
.PHONY: policy-tools preview up down profile-budget preflight
STACK ?= kind

policy-tools: ## Build helm, kube-score and tests/support/judges from Go modules into .cache/tools for the manifest tier (cached; never fails)
	@if [ -x $(PY) ]; then $(PY) -m devtools.go_tools; else $(PYTHON) -m devtools.go_tools; fi

preview: setup ## Preview the platform on STACK (kind|gke): what `make up` would create
	@$(PY) -m cli.stack preview --stack $(STACK)

up: setup ## Stand up the cluster and platform of STACK (kind: preflight first; needs pulumi, docker, kind)
	@$(PY) -m cli.stack up --stack $(STACK)

down: ## Destroy STACK's platform and cluster
	@$(PY) -m cli.stack down --stack $(STACK)

profile-budget: ## Print the laptop profile's total requests against its budget (PROFILE=full for the other)
	@$(PY) -m infra.profiles $(or $(PROFILE),laptop)

preflight: ## Check this machine can hold STACK's kind cluster (docker, kind, memory, CPU, inotify, port, architecture)
	@$(PY) -m infra.cluster.preflight --stack $(STACK)

.PHONY: images images-build test-kind
images: ## Print the image references (content tags; serving and pipeline per component; REGISTRY=, COMPONENT=)
	@$(PY) -m infra.images tags $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(filter command line,$(origin COMPONENT)),--component $(COMPONENT))

images-build: ## Build the project's images (COMPONENT=<name>: only its); KIND=<cluster> loads them, REGISTRY=<r> pushes
	@$(PY) -m infra.images build $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(KIND),--kind-cluster $(KIND)) \
		$(if $(filter command line,$(origin COMPONENT)),--component $(COMPONENT))

test-kind: setup ## The kind tier: the whole product on a kind cluster (needs docker, kind, kubectl, pulumi)
	@$(PY) -m pytest -m kind -rs $(PYTEST_ARGS)

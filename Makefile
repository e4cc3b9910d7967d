# Two commands do all set-up on a fresh machine:
#   make run    set up if needed, then start the app locally (VERSION=v1|v2|v3)
#   make test   set up if needed, then run the whole offline test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VERSION ?= v1
PORT ?= 8080
PYTEST_ARGS ?=
# make test runs the suite in this many pytest-xdist processes, a test file each
# at a time (module fixtures stay in one process): most tests wait on servers and
# subprocesses, so two processes keep both cores of a 2-core machine busy.
TEST_WORKERS ?= 2
# uv installs the pinned requirements and ignores the machine's pip configuration.
# It compiles their bytecode at install time (--compile-bytecode): otherwise every
# process that imports torch compiles it again wherever .pyc files are not written
# (PYTHONDONTWRITEBYTECODE), and the first `make run` or `make test` starts slowly.
UV := $(PYTHON) -m uv
# What `make setup` installs into .venv: the dev lock, which pins every package
# but the torch pair, and the torch pair's pins (tools/locks.py says why).
SETUP_REQUIREMENTS ?= requirements/locks/dev.txt requirements/torch.txt
# CPU-only torch. On Linux x86_64 the default index's torch bundles the CUDA
# libraries (nvidia-*, triton: about 3.5 GB of a 5.5 GB .venv) that a laptop
# without an NVIDIA GPU never uses. The PyTorch CPU index, the one the images
# install from (deployment/Dockerfile.backend-base), serves the same versions
# built without CUDA. setup asks that index for torch first and waits at most
# TORCH_INDEX_TIMEOUT seconds: when it answers, torch and torchvision come from it
# (the +cpu builds of requirements/torch.txt's pins) and the rest from the default
# index; when it does not (a network that reaches only the default index), or the
# install from it fails, everything comes from the default index, whose torch
# runs on CPU as well, only bigger. An installed torch that meets the pin stays.
TORCH_CPU_INDEX ?= $(shell sed -n 's/^ARG TORCH_INDEX_URL=//p' deployment/Dockerfile.backend-base)
TORCH_INDEX_TIMEOUT ?= 5
TORCH_CPU_PINS = $(shell sed -n 's/^\(torch[a-z]*==[0-9.]*\)$$/\1+cpu/p' requirements/torch.txt)

.PHONY: help setup locks run serve test test-fast test-environments test-chroot lint format grade \
	bench bench-grading handout clean images test-containers image-sizes images-clean cloudbuild-local \
	loadtest

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv with uv and install the locked dependencies

# The dev lock pins every package but the torch pair, which is pinned beside it
# (tools/locks.py says why).
$(VENV)/.installed: requirements/*.txt requirements/locks/*.txt
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@if $(PYTHON) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=float(sys.argv[2]))' \
	    "$(TORCH_CPU_INDEX)" "$(TORCH_INDEX_TIMEOUT)" >/dev/null 2>&1; then \
	  echo "setup: CPU-only torch from $(TORCH_CPU_INDEX)"; \
	  $(UV) pip install --quiet --python $(BIN)/python --no-deps --index-url "$(TORCH_CPU_INDEX)" $(TORCH_CPU_PINS) \
	    || echo "setup: installing from the CPU index failed; torch comes from the default index (with the CUDA libraries)"; \
	else \
	  echo "setup: the PyTorch CPU index ($(TORCH_CPU_INDEX)) did not answer within $(TORCH_INDEX_TIMEOUT) s;" \
	       "torch comes from the default index (with the CUDA libraries: a bigger download, same results on CPU)"; \
	fi
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python $(addprefix -r ,$(SETUP_REQUIREMENTS))
	@touch $@

locks:  ## re-pin every component's full dependency set into requirements/locks/ (uv, network)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	UV="$(UV)" $(PYTHON) -m tools.locks

run: setup  ## start one app version locally: make run VERSION=v1|v2|v3 (Ctrl-C stops it)
	@PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/python -m tools.run $(VERSION)

serve: setup  ## start one service alone: make serve SERVICE=<component> PORT=<port>
	@PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) exec tools/serve.sh $(SERVICE)

test: lint  ## lint, then run the whole offline test suite
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: setup  ## the suite without the slow, browser, gcloud and containers groups
	$(BIN)/python -m pytest -m "not slow and not browser and not gcloud and not containers" $(PYTEST_ARGS)

test-environments: setup  ## the grader as root, root without CAP_SYS_ADMIN and non-root (minutes)
	$(BIN)/python -m pytest -m environments tests/autograder $(PYTEST_ARGS)

test-chroot: setup  ## the Gradescope setup.sh in a Debian chroot (debootstrap; minutes)
	$(BIN)/python -m pytest -m chroot tests/autograder $(PYTEST_ARGS)

lint: setup  ## ruff check and format check, and the type checker (mypy, pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

grade: setup  ## grade a submission: make grade [SUBMISSION=path] [GRADE_ARGS=--live]
	$(BIN)/python -m pytest autograder $(if $(SUBMISSION),--submission $(SUBMISSION)) $(GRADE_ARGS)

# ---- images: build them, and run a Cloud Build config, on this machine ---------
# Docker where an engine answers, else buildah + podman with everything under
# IMAGES_DIR (default build/images). STAND_INS=1 substitutes, by build arguments,
# what a machine without Docker Hub, the PyTorch CPU index or the published
# weights cannot reach, and says so.
images: setup  ## build every image the assignment ships: make images [STAND_INS=1] [IMAGES="backend-v1 ..."]
	$(BIN)/python -m tools.images build $(if $(STAND_INS),--stand-ins) $(IMAGES)

images-clean:  ## remove the built images, cloudbuild-local's registry and runs, the stand-ins
	$(PYTHON) -m tools.images clean

# Runs a Cloud Build config's steps here, against a registry on 127.0.0.1 that
# stands in for Artifact Registry and persists between runs (FRESH=1 empties it).
cloudbuild-local: setup  ## run a Cloud Build config locally: make cloudbuild-local CONFIG=deployment/cloudbuild_backend_v1.yaml
	@test -n "$(CONFIG)" || { echo "usage: make cloudbuild-local CONFIG=<cloudbuild yaml> [SUBSTITUTIONS=_KEY=value,...] [FRESH=1] [STAND_INS=1]" >&2; exit 2; }
	$(BIN)/python -m tools.cloudbuild_local $(CONFIG) $(if $(SUBSTITUTIONS),--substitutions=$(SUBSTITUTIONS)) $(if $(FRESH),--fresh-registry) $(if $(STAND_INS),--stand-ins)

# ---- load test against objectives (tools/loadtest) ----------------------------
USERS ?= 4
SECONDS ?= 30
MAX_REQUESTS ?= 5000
SUCCESS ?= 99.5
P95_MS ?= 1000
loadtest: setup  ## load a service and judge it: make loadtest URL=<base url> [USERS=4 SECONDS=30 P95_MS=1000 SUCCESS=99.5]
	@test -n "$(URL)" || { echo "usage: make loadtest URL=<service base URL> [USERS=4] [SECONDS=30] [MAX_REQUESTS=5000] [SUCCESS=99.5] [P95_MS=1000] [P99_MS=...] [MIN_RPS=...] [HEADER='Authorization: Bearer ...'] [OUT=build/loadtest]" >&2; exit 2; }
	@$(UV) pip install --quiet --python $(BIN)/python -r requirements/loadtest.txt -c requirements/locks/dev.txt
	$(BIN)/python -m tools.loadtest "$(URL)" --users $(USERS) --seconds $(SECONDS) \
	  --max-requests $(MAX_REQUESTS) --success $(SUCCESS) --p95-ms $(P95_MS) \
	  $(if $(P99_MS),--p99-ms $(P99_MS)) $(if $(MIN_RPS),--min-rps $(MIN_RPS)) \
	  $(if $(OUT),--out "$(OUT)") $(if $(HEADER),--header "$(HEADER)")

# BEGIN MASTER ONLY: make handout leaves these lines out of the student release.
.PHONY: test-release
handout: setup  ## build the student release and the Gradescope zip into build/
	$(BIN)/python -m tools.handout --out build

test-release: setup  ## unzip a fresh release into a temp folder and run its own make test (tens of minutes)
	$(BIN)/python -m pytest -m release tests/test_release.py $(PYTEST_ARGS)

test-containers: setup  ## the container contract tests, on the images make images built
	$(BIN)/python -m pytest -m containers tests/containers $(PYTEST_ARGS)

image-sizes: setup  ## measure the built images and write the figures into docs/images.md
	$(BIN)/python -m tools.images sizes --write docs/images.md
# END MASTER ONLY

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

# BEGIN MASTER ONLY
# ---- benchmarks (issue 8; docs/performance.md) ------------------------------
bench: setup  ## benchmark backend_v1 against the limit, the original kit and LitServe (<= 10 min)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/bench.txt -c requirements/locks/dev.txt
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench $(BENCH_ARGS)

bench-grading: setup  ## time grading: one submission, a class of 100 (--jobs 2), similarity of 500
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.grading $(BENCH_ARGS)
# END MASTER ONLY

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
# uv installs the pinned torch pair from the default index and ignores the
# machine's pip configuration (whose CPU torch wheel does not fit torchvision).
UV := $(PYTHON) -m uv

.PHONY: help setup locks run serve test test-fast test-environments test-chroot lint format grade \
	bench handout clean images test-containers image-sizes images-clean cloudbuild-local

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv with uv and install the locked dependencies

# The dev lock pins every package but the torch pair, which is pinned beside it
# (tools/locks.py says why).
$(VENV)/.installed: requirements/*.txt requirements/locks/*.txt
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/locks/dev.txt -r requirements/torch.txt
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

handout: setup  ## build the student release and the Gradescope zip into build/
	$(BIN)/python -m tools.handout --out build

# ---- images (issue 20; docs/images.md) ----------------------------------------
# Docker where an engine answers, else buildah + podman with everything under
# IMAGES_DIR (default build/images). STAND_INS=1 substitutes, by build arguments,
# what a machine without Docker Hub, the PyTorch CPU index or the published
# weights cannot reach, and says so.
images: setup  ## build every image the assignment ships: make images [STAND_INS=1] [IMAGES="backend-v1 ..."]
	$(BIN)/python -m tools.images build $(if $(STAND_INS),--stand-ins) $(IMAGES)

test-containers: setup  ## the container contract tests, on the images make images built
	$(BIN)/python -m pytest -m containers tests/containers $(PYTEST_ARGS)

image-sizes: setup  ## measure the built images and write the figures into docs/images.md
	$(BIN)/python -m tools.images sizes --write docs/images.md

images-clean:  ## remove the built images, cloudbuild-local's registry and runs, the stand-ins
	$(PYTHON) -m tools.images clean

# Runs a Cloud Build config's steps here, against a registry on 127.0.0.1 that
# stands in for Artifact Registry and persists between runs (FRESH=1 empties it).
cloudbuild-local: setup  ## run a Cloud Build config locally: make cloudbuild-local CONFIG=deployment/cloudbuild_backend_v1.yaml
	@test -n "$(CONFIG)" || { echo "usage: make cloudbuild-local CONFIG=<cloudbuild yaml> [SUBSTITUTIONS=_KEY=value,...] [FRESH=1] [STAND_INS=1]" >&2; exit 2; }
	$(BIN)/python -m tools.cloudbuild_local $(CONFIG) $(if $(SUBSTITUTIONS),--substitutions=$(SUBSTITUTIONS)) $(if $(FRESH),--fresh-registry) $(if $(STAND_INS),--stand-ins)

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

# ---- benchmarks (issue 8; docs/performance.md) ------------------------------
bench: setup  ## benchmark backend_v1 against the limit, the original kit and LitServe (<= 10 min)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/bench.txt -c requirements/locks/dev.txt
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench $(BENCH_ARGS)

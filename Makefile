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

.PHONY: help setup run serve test test-fast lint format grade bench handout clean loadtest

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv with uv and install the pinned dependencies

$(VENV)/.installed: requirements/*.txt
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/dev.txt
	@touch $@

run: setup  ## start one app version locally: make run VERSION=v1|v2|v3 (Ctrl-C stops it)
	@PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/python -m tools.run $(VERSION)

serve: setup  ## start one service alone: make serve SERVICE=<component> PORT=<port>
	@PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) exec tools/serve.sh $(SERVICE)

test: setup  ## run the whole offline test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: setup  ## the suite without the slow, browser and gcloud groups
	$(BIN)/python -m pytest -m "not slow and not browser and not gcloud" $(PYTEST_ARGS)

lint: setup  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

grade: setup  ## grade a submission: make grade [SUBMISSION=path] [GRADE_ARGS=--live]
	$(BIN)/python -m pytest autograder $(if $(SUBMISSION),--submission $(SUBMISSION)) $(GRADE_ARGS)

handout: setup  ## build the student release and the Gradescope zip into build/
	$(BIN)/python -m tools.handout --out build

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache

# ---- benchmarks (issue 8; docs/performance.md) ------------------------------
bench: setup  ## benchmark backend_v1 against the limit, the original kit and LitServe (<= 10 min)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/bench.txt
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench $(BENCH_ARGS)

# ---- load test against objectives (tools/loadtest) ----------------------------
USERS ?= 4
SECONDS ?= 30
MAX_REQUESTS ?= 5000
SUCCESS ?= 99.5
P95_MS ?= 1000
loadtest: setup  ## load a service and judge it: make loadtest URL=<base url> [USERS=4 SECONDS=30 P95_MS=1000 SUCCESS=99.5]
	@test -n "$(URL)" || { echo "usage: make loadtest URL=<service base URL> [USERS=4] [SECONDS=30] [MAX_REQUESTS=5000] [SUCCESS=99.5] [P95_MS=1000] [P99_MS=...] [MIN_RPS=...] [HEADER='Authorization: Bearer ...'] [OUT=build/loadtest]" >&2; exit 2; }
	@$(UV) pip install --quiet --python $(BIN)/python -r requirements/loadtest.txt
	$(BIN)/python -m tools.loadtest "$(URL)" --users $(USERS) --seconds $(SECONDS) \
	  --max-requests $(MAX_REQUESTS) --success $(SUCCESS) --p95-ms $(P95_MS) \
	  $(if $(P99_MS),--p99-ms $(P99_MS)) $(if $(MIN_RPS),--min-rps $(MIN_RPS)) \
	  $(if $(OUT),--out "$(OUT)") $(if $(HEADER),--header "$(HEADER)")

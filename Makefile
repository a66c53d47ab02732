# flowkeeper: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo up test fuzz bench bench-peers soak bench-installs lean-check lint compose-check clean system-deps vendor screenshots drill-sentinel drills

# (re)install when the project's dependencies change; the demo and the tests train the taxi
# model, so they get the taxi extra (a plain `pip install flowkeeper` does not)
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,taxi]'
	@touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/flowkeeper demo

up: $(INSTALLED)
	$(BIN)/flowkeeper up

# the layering (import contracts in pyproject) and the lint rules first: they take seconds;
# then the tests with branch coverage (a short summary: the files not fully covered); then
# the rules engine, delivery and run control must each stay at 90 % or above
# (tests/coverage_floor.py)
test: $(INSTALLED) system-deps
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov --cov-branch --cov-report=term:skip-covered
	$(BIN)/python -m tests.coverage_floor

# the fault drills at full counts (engine SIGKILLs under 50,000 events, replicas, a worker
# killed mid-run, Redis stopped 10 s and 60 s, providers down/429/slow, a failure flood):
# a table of counts, failing on any loss or unexplained duplicate. `DRILLS="worker_kill
# redis_outage"` picks some; `make test` runs them all at short counts (tests/drills).
DRILLS ?=
drills: $(INSTALLED)
	$(BIN)/python -m tests.drills $(DRILLS)

# the API fuzzing test of `make test` with many more examples per operation (a few minutes)
FUZZ_EXAMPLES ?= 150
fuzz: $(INSTALLED)
	FLOWKEEPER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
	    tests/integration/test_api_fuzzing.py

# Debian packages some tests use (docker-compose validates the compose file without
# an engine); installed only when missing and when this user can install packages.
system-deps:
	@if ! command -v docker-compose >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "installing docker-compose (Debian package)"; \
	  (apt-get update -qq && apt-get install -y -qq docker-compose) >/dev/null 2>&1 \
	    || echo "could not install docker-compose; its test will be skipped"; \
	fi
	@# the Sentinel drill runs redis-server (as server and, with --sentinel, as sentinel)
	@if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "installing redis-server (Debian package)"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null 2>&1 \
	    || echo "could not install redis-server; the Sentinel drill will be skipped"; \
	fi
	@# the browser tests (tests/ui) drive Debian's chromium: browsers cannot be downloaded
	@# from anywhere else here, so `playwright install` is never used
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	    || echo "could not install chromium; the browser tests will be skipped"; \
	fi


# The browser code the web pages load, vendored (running and testing need no Node; only
# refreshing does): `npm pack` each package at its pinned version into a temporary folder and
# copy the built file and the licence. Each entry: package@version, file in the package,
# name under static/vendor. Bump a version here, run `make vendor`, update VENDOR.md.
VENDOR_DIR := services/api/web/static/vendor
VENDORED := htmx.org@2.0.11:dist/htmx.min.js:htmx.min.js \
	htmx-ext-sse@2.2.4:dist/sse.min.js:sse.min.js \
	uplot@1.6.32:dist/uPlot.iife.min.js:uPlot.iife.min.js \
	uplot@1.6.32:dist/uPlot.min.css:uPlot.min.css \
	dagre@0.8.5:dist/dagre.min.js:dagre.min.js
vendor:
	@set -e; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	for entry in $(VENDORED); do \
	  spec=$${entry%%:*}; rest=$${entry#*:}; file=$${rest%%:*}; name=$${rest#*:}; \
	  package=$${spec%@*}; dir="$$work/$$package"; \
	  if [ ! -d "$$dir" ]; then \
	    mkdir -p "$$dir"; (cd "$$dir" && npm pack --silent "$$spec" >/dev/null && tar xzf *.tgz); \
	    cp "$$dir/package/LICENSE" "$(VENDOR_DIR)/LICENSE.$$package"; \
	  fi; \
	  cp "$$dir/package/$$file" "$(VENDOR_DIR)/$$name"; echo "vendored $$spec $$file"; \
	done
	@sh tools/codemirror/build.sh

# the browser tests, saving their screenshots (light and dark, runs and run page) into
# docs/screenshots, where the README shows one; a plain test run keeps them elsewhere
screenshots: $(INSTALLED) system-deps
	FLOWKEEPER_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui

# a Redis Sentinel failover here (one primary, one replica, three sentinels, every
# flowkeeper process): per-process time back on the new primary and events lost
drill-sentinel: $(INSTALLED) system-deps
	$(BIN)/python -m bench.sentinel_failover

bench: $(INSTALLED)
	$(BIN)/python -m bench

# the same work on Prefect 3 and on flowkeeper in one run, as ratios (5-7 minutes here; the
# first run installs the pinned Prefect from the package registry into .peers/venv, a venv
# of the bench's own: Prefect is no dependency of flowkeeper). Not part of `make test`.
PREFECT_VERSION ?= 3.9.1
PEERS_VENV := .peers/venv
PEERS_INSTALLED := $(PEERS_VENV)/.prefect-$(PREFECT_VERSION)
$(PEERS_INSTALLED):
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet 'prefect==$(PREFECT_VERSION)'
	@touch $(PEERS_INSTALLED)

bench-peers: $(INSTALLED) $(PEERS_INSTALLED)
	$(BIN)/python -m bench.peers

# a steady event rate with workers running flows for SOAK_S seconds (an hour unless told):
# RSS of every process and latency percentiles per interval; fails if memory grows past
# its bound. Not in CI.
SOAK_S ?= 3600
soak: $(INSTALLED)
	$(BIN)/python -m bench.soak --seconds $(SOAK_S)

# installs into temporary venvs from the package registry (a few minutes, needs the network):
# the size of a lean and a taxi install, and the import cost of redis-py 6 against 7
bench-installs: $(INSTALLED)
	$(BIN)/python -m bench --only install_size redis_import

# a fresh venv with `pip install .` and no extras: `import flows` and `flowkeeper up` work
# without pandas (a few minutes, needs the network; `make test` runs the fast import check)
lean-check: $(INSTALLED)
	FLOWKEEPER_LEAN_CHECK=1 $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/install

lint: $(INSTALLED)
	$(BIN)/ruff check .

compose-check:
	docker-compose config --quiet

clean:
	rm -rf $(VENV) .peers .flowkeeper build *.egg-info .coverage .coverage.*

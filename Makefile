# flowkeeper: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo up test fuzz bench bench-installs lean-check lint compose-check clean system-deps

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

bench: $(INSTALLED)
	$(BIN)/python -m bench

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
	rm -rf $(VENV) .flowkeeper build *.egg-info .coverage .coverage.*

# flowkeeper: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo up test bench lint compose-check clean

# (re)install when the project's dependencies change
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/flowkeeper demo

up: $(INSTALLED)
	$(BIN)/flowkeeper up

test: $(INSTALLED)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(INSTALLED)
	$(BIN)/python -m bench

lint: $(INSTALLED)
	$(BIN)/ruff check .

compose-check:
	docker-compose config --quiet

clean:
	rm -rf $(VENV) .flowkeeper build *.egg-info

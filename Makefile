# The two commands: `make run` starts the platform, `make test` runs the tests. Both set up a fresh machine
# that has Python 3.11: a virtual environment in .venv with the pinned versions of constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench browser clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python scripts/run_platform.py

# Debian's Chromium for the portal test (Playwright cannot download its own browser here).
browser:
	@test -x /usr/bin/chromium || scripts/install_chromium.sh

test: install browser
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mirnet

bench: install
	$(BIN)/python scripts/bench_inference.py
	$(BIN)/python scripts/bench_batching.py

clean:
	rm -rf $(VENV) var .pytest_cache

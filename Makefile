# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/yibao demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q


# About an hour and three quarters: the 1,000,000-claim CLI runs (one process, two workers, and
# two workers with --grouped; three runs each, about 50 minutes), the 5,000,000-event rebuild
# (its log is settled once, about 14 minutes, and kept for later runs) and the 20,000,000-event
# growth run are most of it.
bench: $(STAMP)
	$(BIN)/python -m bench.settle
	$(BIN)/python -m bench.online
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.replay --events 5000000
	$(BIN)/python -m bench.cli_settle --runs 3
	$(BIN)/python -m bench.growth
	$(BIN)/python -m bench.floor

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache


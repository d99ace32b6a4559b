# The two commands of the README: `make demo` and `make test`. Each sets itself up.
# The venv's interpreter: Debian's /usr/bin/python3 when it is 3.11 or later with venv, otherwise
# the first python3 on PATH (which then says what it lacks). Debian builds its interpreter with
# profile-guided and link-time optimisation, linked statically; a pyenv build (shared libpython,
# neither optimisation) settles claims with about 12% more CPU (docs/performance.md, "The
# interpreter"). PYTHON=... overrides. Looked for once (:=), not at every use.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done),python3)
endif
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell { cat pyproject.toml; echo $(PYTHON); } | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: demo test bench lint clean bytecode

$(STAMP): pyproject.toml
	@if [ -x $(BIN)/python ] && [ "$$(cat $(VENV)/.python 2>/dev/null)" != "$(PYTHON)" ]; then \
		echo "$(VENV) was made with another interpreter: making it again with $(PYTHON)"; \
		rm -rf $(VENV); fi
	test -x $(BIN)/python || { $(PYTHON) -m venv $(VENV) && echo "$(PYTHON)" > $(VENV)/.python; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	$(MAKE) --no-print-directory bytecode
	touch $@

# The project's own modules compiled once, as pip compiles the packages it installs: where Python
# may not write bytecode itself (PYTHONDONTWRITEBYTECODE, a read-only checkout), every command
# and every settling process would compile them again at its start (docs/performance.md).
# Python still checks each file's date and size, so an edited module is read afresh.
bytecode:
	$(BIN)/python -m compileall -q app bulk commands core projections store web bench migrations

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


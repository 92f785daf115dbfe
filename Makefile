# The one entry point: install, run, test, lint, bench (CI calls the same targets).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-sqlite lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Brings msgd up with embedded defaults: SQLite store, SQLite broker, outbox delivery.
run: install
	$(PY) -m msgd migrate
	@if [ ! -f var/.example-config-loaded ]; then \
		$(PY) -m msgd config load --preinstalled examples/config.yaml && touch var/.example-config-loaded; fi
	$(PY) -m msgd run all

# Full suite on PostgreSQL, then the store-dependent tests again on SQLite.
test: install
	$(PY) -m pytest -q
	MSGD_TEST_DATABASE=sqlite $(PY) -m pytest -q -m store

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy msgd services

bench: install
	$(PY) -m bench.pipeline

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

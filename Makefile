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
test: install system-deps
	$(PY) -m pytest -q
	MSGD_TEST_DATABASE=sqlite $(PY) -m pytest -q -m store

# System packages some tests use (each only when missing; installs only as root, else
# those tests skip, or fail under MSGD_REQUIRE_SERVICES=1). Append further packages here.
.PHONY: system-deps
system-deps:
	@if ! command -v promtool >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; \
		else echo "promtool missing and not root: Prometheus tests will skip (apt-get install prometheus)"; fi; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
		else echo "chromium/chromedriver missing and not root: browser tests will skip (apt-get install chromium chromium-driver)"; fi; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy msgd services
	$(VENV)/bin/lint-imports

# The bench extra (celery for the reference, aiohttp for the load client, py-spy) on top of dev.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

.PHONY: bench-install
bench-install: $(BENCH_STAMP)

# Every scenario (README "Tests, lint, benchmark"); sizes and picks via MSGD_BENCH_* or BENCH_ARGS.
bench: bench-install
	$(PY) -m bench.pipeline $(BENCH_ARGS)

# The issue's full sizes: a flood of 100,000 bulk events, two burst rounds (some 20 minutes).
.PHONY: bench-full
bench-full: bench-install
	$(PY) -m bench.pipeline --flood-n 100000 --rounds 2 $(BENCH_ARGS)

# Memory of every stage while a million events drain (about 45 minutes on two cores).
.PHONY: bench-soak
bench-soak: bench-install
	$(PY) -m bench.soak $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# Screenshots of the web admin for README.md (docs/screenshots/), taken by the browser test.
.PHONY: screenshots
screenshots: install system-deps
	MSGD_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_web_live.py -k browser

# The one entry point: install, run, test, lint, bench (CI calls the same targets).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-serial test-sqlite lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The Russian and English catalogs (.po -> .mo) are compiled with Babel: no GNU gettext needed.
install: $(STAMP)
	$(PY) -m msgd i18n compile

# Brings msgd up with embedded defaults: SQLite store, SQLite broker, outbox delivery.
run: install
	$(PY) -m msgd migrate
	@if [ ! -f "$${MSGD_VAR_DIR:-var}/.example-config-loaded" ]; then \
		$(PY) -m msgd config load --preinstalled examples/config.yaml && touch "$${MSGD_VAR_DIR:-var}/.example-config-loaded"; fi
	$(PY) -m msgd run all

# Full suite on PostgreSQL and, at the same time, the store-dependent tests again on SQLite
# (each test has its own database, broker namespace and ports, so the two passes do not meet;
# running them side by side keeps `make test` well under 15 minutes on 2 cores).
# The SQLite pass prints when the PostgreSQL pass is done; either failing fails the target.
test: install system-deps jasmin-venv
	@mkdir -p var; MSGD_TEST_DATABASE=sqlite $(PY) -m pytest -q -m store -p no:cacheprovider \
		> var/test-sqlite.log 2>&1 & sqlite=$$!; \
	$(PY) -m pytest -q --durations=15; pg=$$?; \
	wait $$sqlite; sq=$$?; \
	echo "== the store tests again on SQLite (MSGD_TEST_DATABASE=sqlite pytest -m store):"; \
	cat var/test-sqlite.log; \
	test $$pg = 0 && test $$sq = 0

# The two passes one after the other (for a machine too small to run both at once).
test-serial: install system-deps jasmin-venv
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

# A real Jasmin SMS gateway (PyPI jasmin 0.11.1, with two upstream fixes) for tests/test_jasmin_e2e.py,
# in a venv of its own under ~/.cache/msgd-test-jasmin (MSGD_JASMIN_CACHE): built once from PyPI
# (about a minute), then reused. The test fixture builds it too when this was not run.
.PHONY: jasmin-venv
jasmin-venv: install
	@$(PY) -m tests.jasmin_gateway || echo "Jasmin's venv was not built: tests/test_jasmin_e2e.py tries again (skips, or fails under MSGD_REQUIRE_SERVICES=1)"

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

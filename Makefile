# Shipshape: `make run` serves the app, `make test` runs every check.
# Each target sets up what it needs and reuses what is already there.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
HOST   ?= 127.0.0.1
PORT   ?= 5000
export HOST PORT

PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
ASSETS     := src/app/static/dist/manifest.json
ASSET_SRC  := $(shell find src/app/static/src -type f 2>/dev/null)
# The example single-page frontend (frontend/, Vite): its own npm install and build.
FRONTEND_NODE  := frontend/node_modules/.installed
FRONTEND_BUILD := frontend/dist/index.html
FRONTEND_SRC   := $(shell find frontend -path frontend/node_modules -prune -o -path frontend/dist -prune -o -type f -print 2>/dev/null) src/app/static/src/css/app.css
# A built file deleted by hand leaves its stamp newer than every source: rebuild all the same.
BUILDS_GONE := $(shell $(PYTHON) scripts/build_gone.py 2>/dev/null)

.PHONY: FORCE help setup assets frontend frontend-dev run serve check db-upgrade test lint typecheck pytest fuzz bench observatory clean

help:
	@echo "make setup  - .venv with the pinned Python packages, node_modules with the locked npm ones"
	@echo "make run    - set up and serve the app in development at http://$(HOST):$(PORT)"
	@echo "make test   - set up, then lint, type-check and run the test suite with coverage"
	@echo "make serve  - production mode, one worker per core (needs SECRET_KEY)"
	@echo "make check  - audit the effective deployment configuration"
	@echo "make db-upgrade - apply the database migrations (DATABASE_URL, else SQLite in instance/)"
	@echo "make assets - rebuild the hashed, minified CSS/JS bundles and their manifest"
	@echo "make frontend - build the example single-page frontend (frontend/dist)"
	@echo "make frontend-dev - the app plus Vite's dev server at http://$(HOST):5173/app/"
	@echo "make fuzz   - fuzz the HTTP surface with a larger budget (FUZZ_EXAMPLES per property)"
	@echo "make bench  - every scenario against the peer stacks: bench/results/latest.md (QUICK=1: quick.md)"
	@echo "make observatory - grade the production app with the MDN HTTP Observatory (root)"
	@echo "make clean  - remove .venv, node_modules, built assets and tool caches"

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

setup: $(PY_STAMP) $(NODE_STAMP)

# `quart --app app` builds the whole app, whose SPA layer reads the frontend build.
$(ASSETS): $(PY_STAMP) $(NODE_STAMP) $(ASSET_SRC) $(FRONTEND_BUILD) $(if $(filter assets,$(BUILDS_GONE)),FORCE)
	APP_ENV=development $(BIN)/quart --app app assets build
	touch $@

assets: $(ASSETS)

$(FRONTEND_NODE): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# vite build, then .br/.gz/.zst siblings made by Shipshape's own compressor at its build levels.
$(FRONTEND_BUILD): $(PY_STAMP) $(NODE_STAMP) $(FRONTEND_NODE) $(FRONTEND_SRC) $(if $(filter frontend,$(BUILDS_GONE)),FORCE)
	cd frontend && npm run --silent build
	$(PY) -m shipshape.spa precompress frontend/dist
	cd frontend/dist && find . -type f ! -name .files -print0 | sort -z | xargs -0 sha256sum > .files  # for build_gone.py
	touch $@

frontend: $(FRONTEND_BUILD)

# The app (which serves the last build at /app/) and, in front of it, Vite's
# dev server with hot reload; Ctrl-C stops both. Vite starts once the app
# answers; an app that stops first (a bad setting, a busy port) stops it all.
frontend-dev: setup assets frontend
	@echo "Vite: http://$(HOST):$${VITE_PORT:-5173}/app/ (the app: http://$(HOST):$(PORT))"
	$(PY) scripts/wait_for_app.py free $(HOST) $(PORT) || exit 2; \
	$(PY) -m app run & app=$$!; trap 'kill $$app 2>/dev/null' EXIT INT TERM; \
		$(PY) scripts/wait_for_app.py $$app $(HOST) $(PORT) || exit 2; \
		cd frontend && VITE_HOST=$(HOST) npm run --silent dev

run: setup assets frontend
	$(PY) -m app run

# `make serve`'s environment, for each of its steps and for `make check`: production
# whatever the shell says, and unless ALLOWED_HOSTS is set, $(HOST) and localhost.
SERVE_ENV = APP_ENV=production ALLOWED_HOSTS="$${ALLOWED_HOSTS:-$(HOST),localhost}"

# Production applies migrations as a step of its own; `make serve` runs it first.
DB_UPGRADE = $(BIN)/quart --app app db upgrade
# exec: the server is make's own child, and stops when make is stopped
# (shipshape.server.stop_with_parent).
serve: setup assets frontend
	$(SERVE_ENV) $(DB_UPGRADE)
	$(SERVE_ENV) exec $(PY) -m app serve

check: setup assets frontend
	$(SERVE_ENV) $(PY) -m app check --deploy

db-upgrade: setup assets frontend
	$(DB_UPGRADE)

lint: $(PY_STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench

typecheck: $(PY_STAMP)
	$(BIN)/mypy

# apt_install(package): install a Debian package as root, or explain how.
define apt_install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	else \
		echo "$@ is missing: run 'sudo apt-get install $(1)'" >&2; exit 1; \
	fi
endef

# The browser tests drive Debian's Chromium (Playwright cannot download one here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(call apt_install,chromium)

# The rate-limit store tests run a real redis-server (or valkey-server) that
# the suite starts itself; one on PATH is used, else Debian's is installed.
REDIS_SERVER := $(or $(shell command -v valkey-server),$(shell command -v redis-server),/usr/bin/redis-server)
$(REDIS_SERVER):
	$(call apt_install,redis-server)

# The database tests run a real PostgreSQL server that the suite starts itself
# (Debian's binaries: initdb and postgres, not the system service).
POSTGRES := $(or $(firstword $(wildcard /usr/lib/postgresql/*/bin/postgres)),/usr/lib/postgresql/15/bin/postgres)
$(POSTGRES):
	$(call apt_install,postgresql)

pytest: setup assets frontend $(CHROMIUM) $(REDIS_SERVER) $(POSTGRES)
	$(BIN)/pytest --cov --cov-report=term-missing

test: lint typecheck pytest

# The fuzz suite of `make test` (tests/fuzzing.py), with FUZZ_EXAMPLES random
# examples per property instead of its small fixed budget.
FUZZ_EXAMPLES ?= 2000
fuzz: setup assets frontend $(REDIS_SERVER) $(POSTGRES)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/app/test_fuzz.py tests/e2e/test_fuzz.py

# wrk drives the load; Redis and PostgreSQL serve the rate-limit and Things
# scenarios (see bench/run.py). QUICK=1 is a short run, for a change's before and after.
WRK := /usr/bin/wrk
$(WRK):
	$(call apt_install,wrk)

bench: setup assets frontend $(WRK) $(REDIS_SERVER) $(POSTGRES)
	$(PY) -m bench.run $(if $(filter 1 yes true,$(QUICK)),--quick)

# Grades the production app with the MDN HTTP Observatory (needs root for ports 80/443).
observatory: setup assets frontend
	$(PY) scripts/observatory.py

clean:
	rm -rf $(VENV) node_modules frontend/node_modules frontend/dist src/app/static/dist .mypy_cache .ruff_cache .pytest_cache \
		.hypothesis .coverage .coverage.* htmlcov
	find . -path ./.git -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +

# A prerequisite that is never up to date: see BUILDS_GONE.
FORCE:

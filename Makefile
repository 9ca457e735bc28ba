# Tidings. `make run` starts everything on the embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app shopify_app:create_app
PYTEST_ARGS ?=
ONLY ?=
QUICK ?=

.PHONY: demo install run test test-fast lint format bench faults fuzz extensions-check browser clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(FLASK) db upgrade
	$(FLASK) dev

demo: install
	$(FLASK) db upgrade
	$(FLASK) demo

# Debian's Chromium drives the browser tests; install it when missing (root or sudo needed).
browser:
	@bash scripts/ensure-chromium.sh

extensions-check:
	@bash scripts/check-extensions.sh

# Two processes for the bulk; the slow fault tests (they kill workers and restart Redis) alone.
test: install browser extensions-check
	$(PY) -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-fast: install
	$(PY) -m pytest -n 2 -m "not e2e and not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check shopify_app webhooks jobs tests bench

format: install
	$(VENV)/bin/ruff format shopify_app webhooks jobs tests bench
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench $(if $(ONLY),--only $(ONLY),) $(if $(QUICK),--quick,)

faults: install
	$(PY) -m bench.faults $(if $(QUICK),--quick,)

fuzz: install
	$(PY) -m bench.fuzz $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) instance .pytest_cache

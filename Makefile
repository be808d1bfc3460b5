# The README's commands. `make setup` once, then `make test` or `make run`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup services test test-fast run lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	.ci/system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[web,worker,dev,evaluate]'
	touch $(STAMP)

# Redis and PostgreSQL: reuse the running ones, start (or install) them when missing.
services:
	.ci/services.sh

test: setup services
	$(PY) -m pytest -q

# Unit tests only: no Celery workers, no browser, nothing marked slow (`make test` runs them all).
test-fast: setup
	$(PY) -m pytest -q -m "not integration and not browser and not slow"

run: setup
	.ci/run-stack.sh

lint: setup
	$(VENV)/bin/ruff check .

bench: setup services
	$(PY) -m bench.model
	$(PY) -m bench.pipeline

clean:
	rm -rf var tests/_output bench/_output .pytest_cache

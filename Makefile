# The two commands of the README: `make demo` runs the product, `make test` runs the tests.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Installed packages are compiled to bytecode once: where PYTHONDONTWRITEBYTECODE is set (as
# on our machines), every process would otherwise compile dagster again on import (about
# 2.5 s each; the tests start hundreds: run workers, code servers, CLIs).
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test test-fast bench venv lint stop clean

venv: .venv/.synced

# uv's package lines go to .local/logs/uv-sync.log; on failure its tail is printed.
.venv/.synced: pyproject.toml uv.lock
	@echo "venv: uv sync --frozen (log: .local/logs/uv-sync.log)"
	@scripts/logged.sh .local/logs/uv-sync.log scripts/uv.sh sync --frozen
	@touch $@

# The console gets each stage's outcome; the logs are under .local/logs (scripts/demo.sh).
# CITUS=1: on a Citus coordinator and two workers (.local/pg-citus).
demo: venv
	@CITUS=$(CITUS) scripts/demo.sh

test: venv
	scripts/test.sh $(PYTEST_ARGS)

# Everything but the slow tiers (end-to-end, fault injection, browser): a few minutes.
test-fast: venv
	ARCADIA_SKIP_BROWSER_INSTALL=1 ARCADIA_TEST_MARK="not (e2e or faults or browser)" scripts/test.sh $(PYTEST_ARGS)

bench: venv
	scripts/bench.sh $(BENCH_ARGS)

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

# Stop the demo's PostgreSQL clusters (their data stays under .local/pg, .local/pg-citus).
stop:
	scripts/pg-cluster.sh stop .local/pg
	scripts/pg-cluster.sh stop .local/pg-citus

# Delete the demo cluster (its data too, wherever it lives), the instance and the virtualenv.
clean:
	scripts/pg-cluster.sh destroy .local/pg
	scripts/pg-cluster.sh destroy .local/pg-citus
	rm -rf .local .venv

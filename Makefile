# `make test` and `make demo` are the two set-up commands in the README: each builds
# the local venv on first use, so a fresh clone needs nothing but Python 3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint typecheck services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/python -m stoppable.lint --report-unused-noqa src tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Servers the tests start themselves need their binaries: redis-server (Debian's
# package) for tests/redis_server.py. Installed only when missing, and only as root.
services:
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
		else \
			echo "redis-server is missing: run 'apt-get install -y redis-server' as root" >&2; \
			exit 1; \
		fi; }

test: lint typecheck services
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python examples/demo.py
	@echo
	@echo "examples/service.py: 8 workers, each item an HTTP call then a child process;"
	@echo "an orchestrator's SIGTERM after 1.5 s:"
	@$(BIN)/python examples/service.py --workers 8 --items 40 --work 0.3 & pid=$$!; \
		sleep 1.5; kill -TERM $$pid; wait $$pid

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

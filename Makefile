# `make test` and `make demo` are the two set-up commands in the README: each builds
# the local venv on first use, so a fresh clone needs nothing but Python 3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test test-all venvs-all demo bench compat lint typecheck services clean lint-corpus lint-sample

# `make test-all`: the test suite on every supported Python, each in its own venv
# (.venv-3.10 ...), from pyenv. A missing interpreter fails, it is not skipped. ruff
# and mypy run once, in `make test`: their verdict does not depend on the interpreter.
PYENV_ROOT ?= /root/.pyenv
ALL_PYTHONS ?= 3.10.13 3.11.7 3.12.1 3.13.0
# Versions whose suite already ran (.ci/run passes the one `make test` used).
SKIP_PYTHONS ?=

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs the library alone (requests and urllib3 come with it).
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks compat
	$(BIN)/ruff format --check src tests examples benchmarks compat
	$(BIN)/python -m stoppable.lint --report-unused-noqa src tests examples benchmarks compat

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

# One venv per interpreter: .venv-3.10 for 3.10.13, and so on.
TEST_ALL_VENVS = $(foreach v,$(filter-out $(SKIP_PYTHONS),$(ALL_PYTHONS)),.venv-$(basename $(v)))

.venv-%/.installed: pyproject.toml
	@version="$(filter $*.%,$(ALL_PYTHONS))"; python="$(PYENV_ROOT)/versions/$$version/bin/python"; \
	if [ -z "$$version" ] || [ ! -x "$$python" ]; then \
		echo "make test-all: Python $* is missing ($(PYENV_ROOT)/versions/$$version)" >&2; exit 1; \
	fi; \
	rm -rf .venv-$*; \
	"$$python" -m venv .venv-$*; \
	.venv-$*/bin/python -m pip install --quiet --upgrade pip; \
	.venv-$*/bin/python -m pip install --quiet -e '.[test]'; \
	touch $@

venvs-all: $(addsuffix /.installed,$(TEST_ALL_VENVS))

test-all: $(TEST_ALL_VENVS:.venv-%=test-%)

# One interpreter's suite: `make test-3.12`. `make -j2 --output-sync test-all` runs two
# at a time (.ci/run does), each printed whole when it ends.
test-%: .venv-%/.installed
	@echo "== $$(.venv-$*/bin/python --version) (.venv-$*)"
	@.venv-$*/bin/python -m pytest -q -p no:cacheprovider

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py
	@echo
	@echo "examples/service.py: 8 workers, each item an HTTP call then a child process;"
	@echo "an orchestrator's SIGTERM after 1.5 s:"
	@$(BIN)/python examples/service.py --workers 8 --items 40 --work 0.3 & pid=$$!; \
		sleep 1.5; kill -TERM $$pid; wait $$pid

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks

# Real projects for measuring stoppable.lint (pinned sdists from PyPI, checked by sha256,
# unpacked into .lint-corpus/, which git ignores); docs/lint.md reports the measurement.
lint-corpus: $(STAMP)
	$(BIN)/python -m benchmarks.lint_corpus fetch

# The seeded sample of findings to read by hand, with context; then score the verdicts.
lint-sample: lint-corpus
	$(BIN)/python -m benchmarks.lint_corpus sample
	$(BIN)/python -m benchmarks.lint_corpus score

# requests' and urllib3's own test suites (from their pinned sdists), unmodified and
# on stoppable.http's classes; prints the differences by cause. Slow (minutes): not
# part of `make test` or CI. See compat/run.py.
compat:
	$(PYTHON) compat/run.py

clean:
	rm -rf $(VENV) .venv-3.* .compat .mypy_cache .pytest_cache .ruff_cache .stoppable_lint_cache

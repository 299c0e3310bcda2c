# `make test` and `make demo` are the two set-up commands in the README: each builds
# the local venv on first use, so a fresh clone needs nothing but Python 3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-all venvs-all demo bench lint typecheck clean

# `make test-all`: the test suite on every supported Python, each in its own venv
# (.venv-3.10 ...), from pyenv. A missing interpreter fails, it is not skipped. ruff
# and mypy run once, in `make test`: their verdict does not depend on the interpreter.
PYENV_ROOT ?= /root/.pyenv
ALL_PYTHONS ?= 3.10.13 3.11.7 3.12.1 3.13.0
# Versions whose suite already ran (.ci/run passes the one `make test` used).
SKIP_PYTHONS ?=

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

test: lint typecheck
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

test-all: venvs-all
	@set -e; for venv in $(TEST_ALL_VENVS); do \
		echo "== $$($$venv/bin/python --version) ($$venv)"; \
		$$venv/bin/python -m pytest -q -p no:cacheprovider; \
	done

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
	rm -rf $(VENV) .venv-3.* .mypy_cache .pytest_cache .ruff_cache

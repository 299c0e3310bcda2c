r"""stoppable.lint: find blocking calls that have no timeout, without running the code.

Command line: ``python -m stoppable.lint PATH...`` or ``stoppable-lint PATH...``; flake8:
the ``STP`` plugin; pre-commit: the ``stoppable-lint`` hook. From Python::

    from stoppable.lint import check_source

    for finding in check_source("import requests\nrequests.get(url)\n"):
        print(finding.text())  # <string>:2:1: STP100 requests.get() has no timeout ...

Codes (documented one by one in ``docs/lint.md``):

- STP100 missing-timeout, STP101 unbounded-timeout, STP102 blocking-without-timeout,
  STP103 client-without-timeout;
- strict mode: STP200 use-stoppable-wrapper, STP201 possibly-blocking-call;
- STP900 unused-noqa (opt-in).
"""

from __future__ import annotations

from stoppable.lint._api import (
    Finding,
    LintSyntaxError,
    Report,
    check_file,
    check_paths,
    check_source,
    iter_python_files,
    module_name,
)
from stoppable.lint._cli import main
from stoppable.lint._config import Config, ConfigError, config_from_mapping, load_config
from stoppable.lint._rules import RULES, Rule

__all__ = [
    "RULES",
    "Config",
    "ConfigError",
    "Finding",
    "LintSyntaxError",
    "Report",
    "Rule",
    "check_file",
    "check_paths",
    "check_source",
    "config_from_mapping",
    "iter_python_files",
    "load_config",
    "main",
    "module_name",
]

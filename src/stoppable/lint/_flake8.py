"""The flake8 plugin: ``STP`` codes through flake8's own selection and ``# noqa``.

Registered as the ``flake8.extension`` entry point ``STP``. flake8 hands over the parsed
tree, so nothing is parsed twice. The ``[tool.stoppable.lint]`` section of the nearest
``pyproject.toml`` still supplies blocking calls, wrappers and strictness; code selection
and suppression are flake8's (``--select``, ``--extend-ignore``, ``# noqa``).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from typing import Any, ClassVar

from stoppable.lint._api import check_tree, module_name
from stoppable.lint._config import Config, ConfigError, load_config
from stoppable.lint._reexports import SiblingResolver
from stoppable.lint._rules import DEFAULT_CODES, STRICT_CODES


class Plugin:
    """flake8 entry point: yields ``(line, column, "STPnnn message", type)``."""

    name = "stoppable-lint"
    version = "0.1.0"

    config: ClassVar[Config | None] = None
    strict: ClassVar[bool] = False

    def __init__(self, tree: ast.Module, filename: str = "stdin") -> None:
        self.tree = tree
        self.filename = filename

    @classmethod
    def add_options(cls, manager: Any) -> None:
        """``--stoppable-strict`` (also ``stoppable-strict = true`` in flake8's config)."""
        manager.add_option(
            "--stoppable-strict",
            action="store_true",
            default=False,
            parse_from_config=True,
            help="stoppable-lint: also ask for the stoppable wrapper (STP200, STP201)",
        )

    @classmethod
    def parse_options(cls, options: argparse.Namespace) -> None:
        """Read the options and the project's ``[tool.stoppable.lint]`` once per run."""
        cls.strict = bool(getattr(options, "stoppable_strict", False))
        try:
            cls.config = load_config()
        except ConfigError:
            # flake8 has no channel for a plugin's configuration error; the command line
            # reports it. The built-in table still applies here.
            cls.config = Config()

    def run(self) -> Iterator[tuple[int, int, str, type[Plugin]]]:
        """Check the tree flake8 parsed."""
        config = type(self).config or Config()
        strict = type(self).strict or config.strict
        # flake8 selects codes itself; hand it everything this mode can report.
        codes = DEFAULT_CODES | (STRICT_CODES if strict else frozenset())
        codes = codes | (config.enabled_codes() - {"STP900"})
        resolver = None
        if self.filename in ("stdin", "-", None):
            module, is_package = None, False
        else:
            module, is_package = module_name(self.filename)
            resolver = SiblingResolver(self.filename, module, is_package)
        found = check_tree(self.tree, config, frozenset(codes), module, is_package, resolver)
        for finding in found:
            yield finding.line, finding.column, f"{finding.code} {finding.message}", type(self)

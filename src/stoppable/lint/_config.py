"""``[tool.stoppable.lint]`` in ``pyproject.toml``: which codes, which files, which calls.

Python 3.11+ reads TOML with the standard ``tomllib``. On 3.10 the optional ``tomli``
package is used when installed; without it a ``pyproject.toml`` that *has* a
``[tool.stoppable.lint]`` section is an error (exit 2, naming the fix), and one without
the section is simply ignored: a missing parser never silently drops a configuration.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from stoppable.lint._presets import PRESETS
from stoppable.lint._rules import DEFAULT_CODES, RULES, STRICT_CODES
from stoppable.lint._signatures import Spec

__all__ = ["DEFAULT_EXCLUDE", "Config", "ConfigError", "find_pyproject", "load_config"]

#: Folders never walked into (matched against each path component's name).
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "_build",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
)


class ConfigError(Exception):
    """The configuration cannot be read or is invalid (the command exits with 2)."""


def _toml_loader() -> Callable[[str], dict[str, Any]] | None:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads
    try:  # pragma: no cover - exercised on Python 3.10 only
        module = importlib.import_module("tomli")
    except ModuleNotFoundError:  # pragma: no cover - exercised on Python 3.10 only
        return None
    loads: Callable[[str], dict[str, Any]] = module.loads  # pragma: no cover
    return loads  # pragma: no cover


#: Replaced in tests to play Python 3.10 without tomli.
toml_loader: Callable[[], Callable[[str], dict[str, Any]] | None] = _toml_loader

_SECTION = re.compile(r"^\s*\[\s*tool\s*\.\s*stoppable\s*\.\s*lint\b", re.MULTILINE)
_CODE = re.compile(r"^[A-Z]+[0-9]*$")


@dataclass(frozen=True)
class Config:
    """Everything that changes what the checker reports.

    ``select`` replaces the default codes (prefixes match: ``STP1`` is every 1xx code),
    ``extend_select`` adds to them, ``ignore`` removes; ``strict`` adds the STP2xx codes.
    Paths in ``exclude`` and ``per_file_ignores`` are glob patterns, matched against the
    path relative to ``root`` (the folder of the ``pyproject.toml``) and against each
    path component's name.
    """

    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    strict: bool = False
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Blocking calls of the user's own: qualified name to spec.
    blocking_calls: Mapping[str, Spec] = field(default_factory=dict)
    #: The strict rule's wrapper for a qualified name ("" turns the suggestion off).
    wrappers: Mapping[str, str] = field(default_factory=dict)
    report_unused_noqa: bool = False
    #: The program sets ``socket.setdefaulttimeout()`` somewhere else: calls that use the
    #: socket default timeout (urlopen, http.client, smtplib, sockets) are bounded.
    assume_socket_default_timeout: bool = False
    #: The timeout ``--fix`` writes into calls that have none (seconds); no fix without it.
    default_timeout: float | None = None
    #: Opt-in tables of third-party blocking APIs (``celery``, ``paramiko``, ...).
    presets: tuple[str, ...] = ()
    root: Path | None = None
    source: Path | None = None

    def enabled_codes(self) -> frozenset[str]:
        """The codes this configuration reports, before per-file ignores."""
        every = sorted(RULES)
        base = set(_expand(self.select, every)) if self.select else set(DEFAULT_CODES)
        if self.strict:
            base |= STRICT_CODES
        base |= set(_expand(self.extend_select, every))
        if self.report_unused_noqa:
            base.add("STP900")
        base -= set(_expand(self.ignore, every))
        return frozenset(base)

    def codes_for(self, path: str | os.PathLike[str] | None) -> frozenset[str]:
        """The codes reported for ``path``, after per-file ignores."""
        codes = self.enabled_codes()
        if path is None or not self.per_file_ignores:
            return codes
        every = sorted(RULES)
        for pattern, ignored in self.per_file_ignores:
            if path_matches(path, (pattern,), self.root):
                codes = codes - set(_expand(ignored, every))
        return codes

    def is_excluded(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` matches ``exclude`` or ``extend_exclude``."""
        return path_matches(path, self.exclude + self.extend_exclude, self.root)

    def with_options(self, **changes: Any) -> Config:
        """A copy with some fields changed (command-line options win over the file)."""
        return replace(self, **changes)


def _expand(prefixes: Iterable[str], codes: list[str]) -> list[str]:
    out: list[str] = []
    for prefix in prefixes:
        key = prefix.strip().upper()
        if key == "ALL":
            out.extend(codes)
            continue
        out.extend(code for code in codes if code.startswith(key))
    return out


def path_matches(
    path: str | os.PathLike[str],
    patterns: Iterable[str],
    root: Path | None,
    *,
    base: str | os.PathLike[str] | None = None,
) -> bool:
    """Glob-match ``path`` (relative to ``root`` when inside it) or any of its names.

    Names are those below ``base`` (the folder being walked) or, without one, below
    ``root``: a folder named ``build`` above the project never excludes it.
    """
    text = os.fspath(path).replace(os.sep, "/")
    candidates = [text]
    absolute = os.path.abspath(text)
    relative_to_root = None
    if root is not None:
        with contextlib.suppress(ValueError):  # outside the project
            relative_to_root = Path(absolute).relative_to(root).as_posix()
            candidates.append(relative_to_root)
    candidates.append(absolute.replace(os.sep, "/"))
    below = text
    if base is not None:
        below = os.path.relpath(absolute, os.path.abspath(os.fspath(base))).replace(os.sep, "/")
        if below.startswith("../"):
            below = relative_to_root or ""
    elif relative_to_root is not None:
        below = relative_to_root
    names = [part for part in below.split("/") if part not in ("", ".", "..")]
    paths, name_regex = _compiled(tuple(patterns))
    for pattern in paths:
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern) or candidate.startswith(pattern + "/"):
                return True
            if fnmatch.fnmatchcase(candidate, pattern + "/*"):
                return True
    return name_regex is not None and any(name_regex.match(name) for name in names)


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """The patterns with a ``/``, and one regex for all the name patterns.

    The walk matches every folder and file against every pattern: one regex per
    name instead of one ``fnmatchcase`` per pattern and name.
    """
    stripped = [pattern.rstrip("/") for pattern in patterns]
    names = [pattern for pattern in stripped if "/" not in pattern]
    regex = re.compile("|".join(f"(?:{fnmatch.translate(n)})" for n in names)) if names else None
    return tuple(p for p in stripped if "/" in p), regex


def find_pyproject(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (default: the cwd)."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike[str] | None = None, *, discover: bool = True) -> Config:
    """Read ``[tool.stoppable.lint]`` from ``path``, or from the nearest pyproject.toml.

    Returns the defaults when there is no file or no section. Raises
    :class:`ConfigError` for an unreadable file or an invalid section.
    """
    if path is None:
        found = find_pyproject() if discover else None
        if found is None:
            return Config()
        path = found
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{file}: cannot read the configuration: {err}") from err
    if not _SECTION.search(text):
        return Config(root=file.resolve().parent, source=file)
    loads = toml_loader()
    if loads is None:
        raise ConfigError(
            f"{file}: reading [tool.stoppable.lint] needs Python 3.11+ or the tomli "
            "package (pip install tomli)"
        )
    try:
        data = loads(text)
    except ValueError as err:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"{file}: invalid TOML: {err}") from err
    section = data.get("tool", {}).get("stoppable", {}).get("lint", {})
    return config_from_mapping(section, root=file.resolve().parent, source=file)


_KEYS = {
    "select",
    "extend-select",
    "ignore",
    "strict",
    "exclude",
    "extend-exclude",
    "per-file-ignores",
    "blocking-calls",
    "wrappers",
    "report-unused-noqa",
    "assume-socket-default-timeout",
    "default-timeout",
    "presets",
}


def config_from_mapping(
    section: Mapping[str, Any], *, root: Path | None = None, source: Path | None = None
) -> Config:
    """Build a :class:`Config` from a parsed ``[tool.stoppable.lint]`` table."""
    where = f"{source}: " if source else ""
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}unknown key(s) in [tool.stoppable.lint]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    changes: dict[str, Any] = {"root": root, "source": source}
    for key in ("select", "extend-select", "ignore"):
        if key in section:
            codes = _strings(section[key], key, where)
            for code in codes:
                if not _CODE.match(code.upper()) and code.upper() != "ALL":
                    raise ConfigError(f"{where}{key}: {code!r} is not a code or prefix")
            changes[key.replace("-", "_")] = codes
    for key in ("exclude", "extend-exclude"):
        if key in section:
            changes[key.replace("-", "_")] = _strings(section[key], key, where)
    for key in ("strict", "report-unused-noqa", "assume-socket-default-timeout"):
        if key in section:
            value = section[key]
            if not isinstance(value, bool):
                raise ConfigError(f"{where}{key} must be true or false, not {value!r}")
            changes[key.replace("-", "_")] = value
    if "default-timeout" in section:
        changes["default_timeout"] = check_default_timeout(section["default-timeout"], where)
    if "presets" in section:
        changes["presets"] = check_presets(_strings(section["presets"], "presets", where), where)
    if "per-file-ignores" in section:
        table = section["per-file-ignores"]
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}per-file-ignores must be a table of pattern = [codes]")
        changes["per_file_ignores"] = tuple(
            (str(pattern), _strings(codes, f"per-file-ignores.{pattern}", where))
            for pattern, codes in table.items()
        )
    if "wrappers" in section:
        table = section["wrappers"]
        if not isinstance(table, Mapping) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError(f'{where}wrappers must be a table of name = "wrapper"')
        changes["wrappers"] = {str(k): v for k, v in table.items()}
    if "blocking-calls" in section:
        changes["blocking_calls"] = _blocking_calls(section["blocking-calls"], where)
    return Config(**changes)


def check_default_timeout(value: Any, where: str = "") -> float:
    """A ``default-timeout``: a finite number of seconds above zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}default-timeout must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}default-timeout must be finite and above 0, not {value!r}")
    return float(value)


def check_presets(names: tuple[str, ...], where: str = "") -> tuple[str, ...]:
    """Preset names, each one :data:`~stoppable.lint._presets.PRESETS` knows."""
    unknown = sorted(set(names) - set(PRESETS))
    if unknown:
        raise ConfigError(
            f"{where}presets: unknown {', '.join(unknown)} (known: {', '.join(sorted(PRESETS))})"
        )
    return names


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{where}{key} must be a list of strings, not {value!r}")


_CALL_KEYS = {"timeout", "position", "kind", "wrapper", "default", "fix"}


def _blocking_calls(table: Any, where: str) -> dict[str, Spec]:
    if not isinstance(table, Mapping):
        raise ConfigError(
            f'{where}blocking-calls must be a table of "module.name" = '
            '{ timeout = "arg", position = N }'
        )
    specs: dict[str, Spec] = {}
    for name, entry in table.items():
        label = f"{where}blocking-calls.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{label} must be an inline table")
        unknown = sorted(set(entry) - _CALL_KEYS)
        if unknown:
            raise ConfigError(
                f"{label}: unknown key(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_CALL_KEYS))})"
            )
        if "." not in str(name):
            raise ConfigError(f'{label}: use the qualified name, e.g. "mylib.client.fetch"')
        param = entry.get("timeout", "")
        position = entry.get("position")
        kind = entry.get("kind", "call" if param else "no-timeout")
        wrapper = entry.get("wrapper")
        fix = entry.get("fix")
        default = entry.get("default", False)
        if not isinstance(param, str):
            raise ConfigError(f"{label}: timeout must be the argument's name")
        if position is not None and (
            not isinstance(position, int) or isinstance(position, bool) or position < 0
        ):
            raise ConfigError(f"{label}: position must be an integer >= 0")
        if kind not in ("call", "client", "no-timeout"):
            raise ConfigError(f'{label}: kind must be "call", "client" or "no-timeout"')
        if kind != "no-timeout" and not param:
            raise ConfigError(f'{label}: kind {kind!r} needs timeout = "argument name"')
        if wrapper is not None and not isinstance(wrapper, str):
            raise ConfigError(f"{label}: wrapper must be a string")
        if fix is not None and not isinstance(fix, str):
            raise ConfigError(f"{label}: fix must be a string")
        if not isinstance(default, bool):
            raise ConfigError(f"{label}: default must be true or false")
        if kind == "no-timeout":
            hint = fix or (
                f"use {wrapper}(..., timeout=..., stop=...)" if wrapper else "bound it another way"
            )
            specs[str(name)] = Spec("none", param="", fix=hint, wrapper=wrapper or None)
        else:
            specs[str(name)] = Spec(
                "call" if kind == "call" else "client",
                param=param,
                position=position,
                missing_ok=default,
                wrapper=wrapper or None,
            )
    return specs

"""Checking sources, files and trees of files; suppression comments; parallel runs."""

from __future__ import annotations

import ast
import importlib.util
import multiprocessing
import multiprocessing.context
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from stoppable.lint._checker import Checker, RawFinding
from stoppable.lint._config import Config, path_matches
from stoppable.lint._rules import RULES

__all__ = [
    "Finding",
    "LintSyntaxError",
    "Report",
    "check_file",
    "check_paths",
    "check_source",
    "iter_python_files",
    "module_name",
]

# flake8's own pattern: a bare noqa comment, or one naming codes after a colon; any case.
_NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>([A-Z]+[0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
_STP_CODE = re.compile(r"STP[0-9]+", re.IGNORECASE)

#: Below this many bytes of source in all, one process is faster than a pool.
PARALLEL_MIN_BYTES = 2_000_000
#: The whole run's bound when checking in worker processes (seconds).
PARALLEL_TIMEOUT = 3600.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported call. ``line`` and ``column`` are 1-based, like the text output."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str

    @property
    def name(self) -> str:
        """The rule's readable name (``missing-timeout``)."""
        return RULES[self.code].name

    def text(self) -> str:
        """``path:line:col: CODE message``."""
        return f"{self.path}:{self.line}:{self.column}: {self.code} {self.message}"


class LintSyntaxError(Exception):
    """A file could not be parsed (the command exits with 2)."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: E999 SyntaxError: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


@dataclass
class Report:
    """What :func:`check_paths` found."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files: int = 0
    lines: int = 0


def check_source(
    source: str | bytes,
    filename: str = "<string>",
    *,
    config: Config | None = None,
    module: str | None = None,
    is_package: bool = False,
) -> list[Finding]:
    """Check one module's source text; never imports or runs it.

    ``module`` is the dotted name the source would have (for relative imports); for a
    real file it is found from the ``__init__.py`` files around it. Raises
    :class:`LintSyntaxError` when the source does not parse.
    """
    config = config or Config()
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise LintSyntaxError(
            filename, err.lineno or 1, err.offset or 1, err.msg or "invalid syntax"
        ) from err
    except ValueError as err:  # null bytes
        raise LintSyntaxError(filename, 1, 1, str(err)) from err
    codes = config.codes_for(None if filename == "<string>" else filename)
    raw = check_tree(tree, config, codes, module, is_package)
    if not raw and "STP900" not in codes:
        return []
    text = source if isinstance(source, str) else importlib.util.decode_source(source)
    return suppress(raw, text.splitlines(), filename, codes)


def check_tree(
    tree: ast.Module,
    config: Config,
    codes: frozenset[str],
    module: str | None = None,
    is_package: bool = False,
) -> list[RawFinding]:
    """Run the checker on a parsed module: raw findings, before ``# noqa``."""
    checker = Checker(
        strict="STP200" in codes or "STP201" in codes,
        module=module,
        is_package=is_package,
        blocking_calls=config.blocking_calls,
        wrappers=config.wrappers,
        assume_socket_default_timeout=config.assume_socket_default_timeout,
        codes=codes,
    )
    return checker.run(tree)


def noqa_codes(line: str) -> frozenset[str] | None:
    """The codes a line's ``# noqa`` names; an empty set for a bare ``# noqa``."""
    match = _NOQA.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    if not codes:
        return frozenset()
    return frozenset(code.upper() for code in re.split(r"[,\s]+", codes) if code)


def suppress(
    raw: Iterable[RawFinding], lines: Sequence[str], path: str, codes: frozenset[str]
) -> list[Finding]:
    """Drop findings silenced by ``# noqa``; report unused STP suppressions if asked."""
    out: list[Finding] = []
    used: dict[int, set[str]] = {}
    for finding in raw:
        line_text = lines[finding.line - 1] if 0 < finding.line <= len(lines) else ""
        silenced = noqa_codes(line_text) if "noqa" in line_text.lower() else None
        if silenced is not None and (not silenced or finding.code in silenced):
            used.setdefault(finding.line, set()).add(finding.code)
            continue
        out.append(_finding(path, finding))
    if "STP900" in codes:
        out.extend(_unused_noqa(lines, used, path))
        out.sort(key=lambda f: (f.line, f.column, f.code))
    return out


def _finding(path: str, raw: RawFinding) -> Finding:
    return Finding(
        path,
        raw.line,
        raw.column + 1,
        raw.end_line,
        raw.end_column + 1,
        raw.code,
        raw.message,
    )


def _unused_noqa(lines: Sequence[str], used: dict[int, set[str]], path: str) -> list[Finding]:
    # Only comments that name STP codes are ours to judge; a bare noqa comment or one for
    # other tools belongs to them.
    out = []
    for number, line in enumerate(lines, start=1):
        if "noqa" not in line.lower():
            continue
        match = _NOQA.search(line)
        if match is None or not match.group("codes"):
            continue
        named = {c.upper() for c in _STP_CODE.findall(match.group("codes"))}
        unused = sorted(named - used.get(number, set()))
        if unused:
            message = RULES["STP900"].message.format(codes=", ".join(unused))
            out.append(
                Finding(path, number, match.start() + 1, number, match.end() + 1, "STP900", message)
            )
    return out


@lru_cache(maxsize=4096)
def _package_of(folder: str) -> str | None:
    if not os.path.isfile(os.path.join(folder, "__init__.py")):
        return None
    parent = os.path.dirname(folder)
    name = os.path.basename(folder)
    if not name.isidentifier():
        return None
    above = _package_of(parent) if parent != folder else None
    return f"{above}.{name}" if above else name


def module_name(path: str | os.PathLike[str]) -> tuple[str | None, bool]:
    """The dotted module name of a file, from the ``__init__.py`` files around it.

    Returns ``(name, is_package)``; the name is None when it cannot be known.
    """
    absolute = os.path.abspath(os.fspath(path))
    folder, filename = os.path.split(absolute)
    stem = filename.rpartition(".")[0] or filename
    package = _package_of(folder)
    if stem == "__init__":
        return package, True
    if not stem.isidentifier():
        return None, False
    return (f"{package}.{stem}" if package else stem), False


def check_file(path: str | os.PathLike[str], config: Config | None = None) -> list[Finding]:
    """Check one file (read as bytes, so its encoding cookie is honoured)."""
    data = Path(path).read_bytes()
    module, is_package = module_name(path)
    return check_source(data, os.fspath(path), config=config, module=module, is_package=is_package)


def iter_python_files(
    paths: Iterable[str | os.PathLike[str]], config: Config, *, force_exclude: bool = False
) -> Iterator[str]:
    """The ``.py`` files under ``paths``, without excluded ones.

    A file named explicitly is checked even if excluded, unless ``force_exclude``
    (what the pre-commit hook passes, since it names every changed file).
    """
    patterns = config.exclude + config.extend_exclude
    for given in paths:
        text = os.fspath(given)
        if os.path.isdir(text):
            for root, dirs, files in os.walk(text):
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not path_matches(os.path.join(root, d), patterns, config.root)
                )
                for name in sorted(files):
                    if name.endswith(".py"):
                        full = os.path.join(root, name)
                        if not path_matches(full, patterns, config.root):
                            yield full
        elif not (force_exclude and path_matches(text, patterns, config.root)):
            yield text


def _check_one(path: str, config: Config) -> tuple[list[Finding], list[str], int]:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return [], [f"{path}: cannot read: {err.strerror or err}"], 0
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    module, is_package = module_name(path)
    try:
        found = check_source(data, path, config=config, module=module, is_package=is_package)
    except LintSyntaxError as err:
        return [], [str(err)], lines
    return found, [], lines


def _check_chunk(paths: list[str], config: Config) -> tuple[list[Finding], list[str], int]:
    findings: list[Finding] = []
    errors: list[str] = []
    lines = 0
    for path in paths:
        found, failed, count = _check_one(path, config)
        findings.extend(found)
        errors.extend(failed)
        lines += count
    return findings, errors, lines


def _chunks(paths: list[str], sizes: list[int], count: int) -> list[list[str]]:
    # Greedy by size, largest first, so the workers finish together.
    buckets: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    for path, size in sorted(zip(paths, sizes, strict=True), key=lambda item: -item[1]):
        index = loads.index(min(loads))
        buckets[index].append(path)
        loads[index] += size
    return [bucket for bucket in buckets if bucket]


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork is fastest but unsafe in a threaded parent (and deprecated there on 3.12+).
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def check_paths(
    paths: Iterable[str | os.PathLike[str]],
    config: Config | None = None,
    *,
    jobs: int | None = None,
    force_exclude: bool = False,
) -> Report:
    """Check every Python file under ``paths``; parallel when there is enough to do.

    ``jobs`` defaults to the number of CPUs; 1 checks in this process. Unreadable or
    unparsable files are listed in ``Report.errors``.
    """
    config = config or Config()
    files = list(dict.fromkeys(iter_python_files(paths, config, force_exclude=force_exclude)))
    report = Report(files=len(files))
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    sizes = [_size(path) for path in files]
    if workers <= 1 or len(files) < 2 * workers or sum(sizes) < PARALLEL_MIN_BYTES:
        findings, errors, lines = _check_chunk(files, config)
        report.findings, report.errors, report.lines = findings, errors, lines
    else:
        chunks = _chunks(files, sizes, workers * 4)
        with ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
            futures = [pool.submit(_check_chunk, chunk, config) for chunk in chunks]
            for future in as_completed(futures, timeout=PARALLEL_TIMEOUT):
                findings, errors, lines = future.result(timeout=0)
                report.findings.extend(findings)
                report.errors.extend(errors)
                report.lines += lines
    report.findings.sort(key=lambda f: (f.path, f.line, f.column, f.code))
    report.errors.sort()
    return report


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0

"""Checking sources, files and trees of files; suppression comments; parallel runs."""

from __future__ import annotations

import ast
import dataclasses
import gc
import hashlib
import importlib.util
import multiprocessing
import multiprocessing.context
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from stoppable.lint._cache import Cache
from stoppable.lint._checker import Checker, RawFinding
from stoppable.lint._config import Config, path_matches
from stoppable.lint._fix import with_fix
from stoppable.lint._reexports import SiblingResolver
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

#: Codes of the problems that stop one file from being checked (never the whole run).
ERROR_NAMES = {
    "E901": "check-failed",  # the file parsed but could not be checked (too deep)
    "E902": "io-error",  # a path that does not exist, cannot be read, or holds no file
    "E999": "syntax-error",
}

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
    #: A safe edit that fixes it, when ``default-timeout`` is configured: insert the
    #: text at (1-based line, 0-based column).
    fix: tuple[int, int, str] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The rule's readable name (``missing-timeout``), or the file error's."""
        rule = RULES.get(self.code)
        return rule.name if rule is not None else ERROR_NAMES.get(self.code, self.code)

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
    """What :func:`check_paths` found.

    ``failed`` holds one entry per path or file that could not be checked (codes E901,
    E902, E999); the other files are still checked.
    """

    findings: list[Finding] = field(default_factory=list)
    failed: list[Finding] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    #: Files whose findings came from the cache.
    cached: int = 0

    @property
    def errors(self) -> list[str]:
        """The failures as text lines (``path:line:col: E999 SyntaxError: ...``)."""
        return [failure.text() for failure in self.failed]


def check_source(
    source: str | bytes,
    filename: str = "<string>",
    *,
    config: Config | None = None,
    module: str | None = None,
    is_package: bool = False,
    resolver: SiblingResolver | None = None,
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
    except (RecursionError, MemoryError) as err:
        raise LintSyntaxError(filename, 1, 1, "too deeply nested to parse") from err
    codes = config.codes_for(None if filename == "<string>" else filename)
    raw = check_tree(tree, config, codes, module, is_package, resolver)
    if not raw and "STP900" not in codes:
        return []
    text = source if isinstance(source, str) else importlib.util.decode_source(source)
    lines = text.splitlines()
    found = suppress(raw, lines, filename, codes)
    if config.default_timeout is not None:
        return [with_fix(f, lines, config.default_timeout) for f in found]
    return [dataclasses.replace(f, fix=None) if f.fix else f for f in found]


def check_tree(
    tree: ast.Module,
    config: Config,
    codes: frozenset[str],
    module: str | None = None,
    is_package: bool = False,
    resolver: SiblingResolver | None = None,
) -> list[RawFinding]:
    """Run the checker on a parsed module: raw findings, before ``# noqa``."""
    checker = Checker(
        presets=config.presets,
        resolver=resolver,
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
    fix = (raw.end_line, raw.end_column - 1, raw.fix_call) if raw.fix_call else None
    return Finding(
        path,
        raw.line,
        raw.column + 1,
        raw.end_line,
        raw.end_column + 1,
        raw.code,
        raw.message,
        fix,
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
    resolver = SiblingResolver(os.fspath(path), module, is_package)
    return check_source(
        data,
        os.fspath(path),
        config=config,
        module=module,
        is_package=is_package,
        resolver=resolver,
    )


def iter_python_files(
    paths: Iterable[str | os.PathLike[str]], config: Config, *, force_exclude: bool = False
) -> Iterator[str]:
    """The ``.py`` files under ``paths``, without excluded ones.

    A file named explicitly is checked even if excluded, unless ``force_exclude``
    (what the pre-commit hook passes, since it names every changed file). Paths that
    do not exist, and files that are not regular files, are left out
    (:func:`collect_files` reports them).
    """
    files, _ = collect_files(paths, config, force_exclude=force_exclude)
    yield from files


def collect_files(
    paths: Iterable[str | os.PathLike[str]], config: Config, *, force_exclude: bool = False
) -> tuple[list[str], list[Finding]]:
    """The ``.py`` files under ``paths``, and an E902 entry for each path that gave none.

    Excludes match below the folder given and below the configuration's root, never
    above them: a project checked out under ``~/build/`` is still checked. Only
    regular files are read (a FIFO named ``x.py`` would block the run forever).
    """
    patterns = config.exclude + config.extend_exclude
    files: list[str] = []
    failed: list[Finding] = []
    for given in paths:
        text = os.fspath(given)
        try:
            mode = os.stat(text).st_mode
        except OSError as err:
            failed.append(_io_error(text, f"cannot read: {err.strerror or err}"))
            continue
        if stat.S_ISDIR(mode):
            before = len(files)
            _walk(text, patterns, config, files)
            if len(files) == before:
                failed.append(_io_error(text, "no Python file to check in this folder"))
        elif not stat.S_ISREG(mode):
            failed.append(_io_error(text, "not a regular file"))
        elif not (force_exclude and path_matches(text, patterns, config.root)):
            files.append(text)
    return list(dict.fromkeys(files)), failed


def _walk(top: str, patterns: tuple[str, ...], config: Config, out: list[str]) -> None:
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(
            d
            for d in dirs
            if not path_matches(os.path.join(root, d), patterns, config.root, base=top)
        )
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            full = os.path.join(root, name)
            try:
                regular = stat.S_ISREG(os.stat(full).st_mode)
            except OSError:
                regular = False  # a dangling link: nothing to read
            if regular and not path_matches(full, patterns, config.root, base=top):
                out.append(full)


def _io_error(path: str, message: str) -> Finding:
    return Finding(path, 1, 1, 1, 1, "E902", message)


@dataclass(slots=True)
class FileResult:
    """One file's outcome, as a worker sends it back."""

    path: str
    findings: list[Finding]
    failed: list[Finding]
    lines: int
    #: sha256 of the file, for the cache ("" when it could not be read).
    digest: str = ""
    #: Other files whose content the result depends on (re-exports), with their digests.
    deps: tuple[tuple[str, str], ...] = ()


def _check_one(path: str, config: Config, data: bytes | None = None) -> FileResult:
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            return FileResult(path, [], [_io_error(path, f"cannot read: {err.strerror or err}")], 0)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    digest = hashlib.sha256(data).hexdigest()
    module, is_package = module_name(path)
    resolver = SiblingResolver(path, module, is_package)
    try:
        found = check_source(
            data, path, config=config, module=module, is_package=is_package, resolver=resolver
        )
    except LintSyntaxError as err:
        failure = Finding(
            path, err.line, err.column, err.line, err.column, "E999", "SyntaxError: " + err.message
        )
        return FileResult(path, [], [failure], lines, digest)
    except RecursionError:
        message = "too deeply nested to check; the rest of the run goes on"
        return FileResult(path, [], [Finding(path, 1, 1, 1, 1, "E901", message)], lines, digest)
    return FileResult(path, found, [], lines, digest, resolver.deps())


def _check_chunk(paths: list[str], config: Config) -> list[FileResult]:
    return [_check_gc_paused(path, config) for path in paths]


def _check_gc_paused(path: str, config: Config) -> FileResult:
    # The syntax tree and the checker's values are freed by reference counting when the
    # file is done (the checker leaves no cycle); while they live, the cyclic collector
    # would only walk them again and again (about a sixth of a run's time). A caller that
    # turned the collector off keeps it off.
    if not gc.isenabled():
        return _check_one(path, config)
    gc.disable()
    try:
        return _check_one(path, config)
    finally:
        gc.enable()


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
    cache: Cache | None = None,
) -> Report:
    """Check every Python file under ``paths``; parallel when there is enough to do.

    ``jobs`` defaults to the number of CPUs; 1 checks in this process. A path or file
    that cannot be checked (missing, unreadable, not a regular file, a syntax error) is
    listed in ``Report.failed`` and the others are still checked. With a ``cache``, a
    file whose content (and configuration) was checked before is not checked again.
    """
    config = config or Config()
    files, failed = collect_files(paths, config, force_exclude=force_exclude)
    report = Report(files=len(files), failed=failed)
    todo = files
    if cache is not None:
        todo = []
        for path in files:
            hit = cache.get(path)
            if hit is None:
                todo.append(path)
            else:
                report.cached += 1
                _add(report, hit)
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    sizes = [_size(path) for path in todo]
    results: list[FileResult] = []
    if workers <= 1 or len(todo) < 2 * workers or sum(sizes) < PARALLEL_MIN_BYTES:
        results = _check_chunk(todo, config)
    else:
        chunks = _chunks(todo, sizes, workers * 4)
        with ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
            futures = [pool.submit(_check_chunk, chunk, config) for chunk in chunks]
            for future in as_completed(futures, timeout=PARALLEL_TIMEOUT):
                results.extend(future.result(timeout=0))
    for result in results:
        _add(report, result)
        if cache is not None:
            cache.put(result)
    if cache is not None:
        cache.flush()
    report.findings.sort(key=lambda f: (f.path, f.line, f.column, f.code))
    report.failed.sort(key=lambda f: (f.path, f.line, f.column, f.code))
    return report


def _add(report: Report, result: FileResult) -> None:
    report.findings.extend(result.findings)
    report.failed.extend(result.failed)
    report.lines += result.lines


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0

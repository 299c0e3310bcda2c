"""``python -m stoppable.lint`` and ``stoppable-lint``: exit 0 clean, 1 findings, 2 errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from stoppable.lint._api import Finding, Report, check_paths
from stoppable.lint._cache import CACHE_DIR_NAME, Cache, default_cache_dir
from stoppable.lint._config import Config, ConfigError, check_default_timeout, load_config
from stoppable.lint._fix import apply_fixes, unified_diff
from stoppable.lint._rules import RULES, by_name_or_code
from stoppable.lint._sarif import sarif
from stoppable.lint._signatures import Spec, all_entries

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stoppable-lint",
        description=(
            "Find blocking calls without a timeout (requests, urllib3, urllib, http.client, "
            "smtplib, socket, queue, threading, subprocess, select, concurrent.futures, "
            "multiprocessing). Reads [tool.stoppable.lint] from the nearest pyproject.toml."
        ),
        epilog="Exit status: 0 clean, 1 findings, 2 usage, configuration or parse errors.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to check")
    parser.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="output format (default: text, path:line:col: CODE message; sarif: SARIF 2.1.0 "
        "for GitHub code scanning)",
    )
    parser.add_argument("--select", metavar="CODES", help="comma-separated codes or prefixes")
    parser.add_argument("--extend-select", metavar="CODES", help="codes to add to the selection")
    parser.add_argument("--ignore", metavar="CODES", help="codes or prefixes to leave out")
    parser.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="also ask for the stoppable wrapper where a timeout is given (STP2xx)",
    )
    parser.add_argument("--exclude", metavar="PATTERNS", help="replace the exclude patterns")
    parser.add_argument("--extend-exclude", metavar="PATTERNS", help="add exclude patterns")
    parser.add_argument(
        "--force-exclude",
        action="store_true",
        help="apply excludes to files named on the command line too (for pre-commit)",
    )
    parser.add_argument(
        "--report-unused-noqa",
        action="store_true",
        default=None,
        help="report '# noqa: STPnnn' comments that suppress nothing (STP900)",
    )
    parser.add_argument("--config", metavar="PYPROJECT", help="read this pyproject.toml")
    parser.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    parser.add_argument(
        "-j", "--jobs", type=int, metavar="N", help="worker processes (default: CPU count)"
    )
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="print the count of each code, then files, lines and time, to stderr",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="add timeout=<default-timeout> to the requests, urllib3, subprocess and queue "
        "calls that have none (needs default-timeout)",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="with --fix: print the edits as a unified diff instead of writing them",
    )
    parser.add_argument(
        "--default-timeout",
        type=float,
        metavar="SECONDS",
        help="the timeout --fix writes (default: default-timeout in the configuration)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="check every file, and store nothing"
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help=f"where results are cached by file content (default: {CACHE_DIR_NAME} beside "
        "pyproject.toml)",
    )
    parser.add_argument("--explain", metavar="CODE", help="describe a code and exit")
    parser.add_argument("--list-codes", action="store_true", help="list the codes and exit")
    parser.add_argument(
        "--list-calls", action="store_true", help="list every call the checker knows and exit"
    )
    return parser


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _config(args: argparse.Namespace) -> Config:
    config = Config() if args.isolated else load_config(args.config)
    changes: dict[str, object] = {}
    if args.select is not None:
        changes["select"] = _split(args.select)
    if args.extend_select is not None:
        changes["extend_select"] = config.extend_select + _split(args.extend_select)
    if args.ignore is not None:
        changes["ignore"] = config.ignore + _split(args.ignore)
    if args.strict:
        changes["strict"] = True
    if args.exclude is not None:
        changes["exclude"] = _split(args.exclude)
    if args.extend_exclude is not None:
        changes["extend_exclude"] = config.extend_exclude + _split(args.extend_exclude)
    if args.report_unused_noqa:
        changes["report_unused_noqa"] = True
    if args.default_timeout is not None:
        changes["default_timeout"] = check_default_timeout(args.default_timeout, "--")
    for key in ("select", "extend_select", "ignore"):
        for code in changes.get(key, ()):  # type: ignore[attr-defined]
            if not any(c.startswith(str(code).upper()) for c in RULES) and code.upper() != "ALL":
                raise ConfigError(f"--{key.replace('_', '-')}: unknown code {code!r}")
    return config.with_options(**changes) if changes else config


def _explain(key: str, out: TextIO) -> int:
    found = by_name_or_code(key)
    if found is None:
        print(f"unknown code {key!r}; known: {', '.join(sorted(RULES))}", file=sys.stderr)
        return EXIT_ERROR
    mode = " (strict mode)" if found.strict else ""
    print(f"{found.code} {found.name}{mode}\n\n{found.summary}\n", file=out)
    print("Message: " + found.message, file=out)
    print(f"\nDocumentation: docs/lint.md#{found.code.lower()}-{found.name}", file=out)
    return EXIT_CLEAN


def _describe(spec: Spec) -> str:
    if spec.kind == "none":
        return "no timeout parameter (STP102)"
    if spec.kind == "wrap":
        return "strict only (STP200)"
    where = spec.param + (f" (position {spec.position})" if spec.position is not None else "")
    extra = []
    if spec.block:
        extra.append(f"{spec.block}=False is non-blocking")
    if spec.missing_ok:
        extra.append("has a finite default")
    if spec.socket_default:
        extra.append("socket default applies")
    if spec.state:
        extra.append(f"judged by state: {spec.state}")
    kind = {"call": "STP100/101", "client": "STP103/101", "setter": "STP101"}[spec.kind]
    return f"{where} [{kind}]" + (f"; {'; '.join(extra)}" if extra else "")


def _list_calls(out: TextIO) -> int:
    for name, spec in all_entries():
        wrapper = f" -> {spec.wrapper}" if spec.wrapper else ""
        print(f"{name}: {_describe(spec)}{wrapper}", file=out)
    return EXIT_CLEAN


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _emit(report: Report, fmt: str, out: TextIO) -> None:
    # Files that could not be checked are part of the output in every format (and on
    # stderr in text), so a CI run never passes silently over them.
    if fmt == "json":
        payload = [_as_json(f) for f in (*report.failed, *report.findings)]
        json.dump(payload, out, indent=2)
        out.write("\n")
        return
    if fmt == "sarif":
        json.dump(sarif(report), out, indent=2)
        out.write("\n")
        return
    if fmt == "github":
        for finding in (*report.failed, *report.findings):
            title = _github_escape(f"{finding.code} {finding.name}", prop=True)
            print(
                f"::error file={_github_escape(finding.path, prop=True)},"
                f"line={finding.line},col={finding.column},"
                f"endLine={finding.end_line},endColumn={finding.end_column},"
                f"title={title}::{_github_escape(finding.message)}",
                file=out,
            )
        return
    for finding in report.findings:
        print(finding.text(), file=out)


def _as_json(finding: Finding) -> dict[str, object]:
    return {
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "code": finding.code,
        "name": finding.name,
        "message": finding.message,
    }


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = out if out is not None else sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse prints its own message
        return EXIT_CLEAN if exit_.code == 0 else EXIT_ERROR
    if args.list_codes:
        for code, found in sorted(RULES.items()):
            mode = " [strict]" if found.strict else ""
            print(f"{code} {found.name}{mode}: {found.summary}", file=out)
        return EXIT_CLEAN
    if args.list_calls:
        return _list_calls(out)
    if args.explain:
        return _explain(args.explain, out)
    if not args.paths:
        parser.print_usage(sys.stderr)
        print("stoppable-lint: error: give at least one PATH", file=sys.stderr)
        return EXIT_ERROR
    if args.jobs is not None and args.jobs < 1:
        print("stoppable-lint: error: --jobs must be >= 1", file=sys.stderr)
        return EXIT_ERROR
    try:
        config = _config(args)
    except ConfigError as err:
        print(f"stoppable-lint: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    if args.diff and not args.fix:
        print("stoppable-lint: error: --diff goes with --fix", file=sys.stderr)
        return EXIT_ERROR
    if args.fix and config.default_timeout is None:
        print(
            "stoppable-lint: error: --fix needs a timeout to write: set default-timeout in "
            "[tool.stoppable.lint] or pass --default-timeout SECONDS",
            file=sys.stderr,
        )
        return EXIT_ERROR
    cache = None
    if not args.no_cache:
        cache = Cache(args.cache_dir or default_cache_dir(config), config)
    started = time.perf_counter()
    report = check_paths(
        args.paths, config, jobs=args.jobs, force_exclude=args.force_exclude, cache=cache
    )
    elapsed = time.perf_counter() - started
    if args.fix:
        report = _fix(report, out, diff=args.diff)
    if not args.diff:
        _emit(report, args.format, out)
    for error in report.errors:
        print(error, file=sys.stderr)
    if args.statistics:
        _statistics(report, elapsed)
    if report.failed:
        return EXIT_ERROR
    if args.diff:
        return EXIT_FINDINGS if any(f.fix for f in report.findings) else EXIT_CLEAN
    return EXIT_FINDINGS if report.findings else EXIT_CLEAN


def _statistics(report: Report, elapsed: float) -> None:
    counts = Counter(f.code for f in (*report.failed, *report.findings))
    for code, count in sorted(counts.items()):
        name = next(f.name for f in (*report.failed, *report.findings) if f.code == code)
        print(f"{count:6d}  {code}  {name}", file=sys.stderr)
    rate = report.lines / elapsed if elapsed > 0 else 0.0
    cached = f", {report.cached} from the cache" if report.cached else ""
    print(
        f"{report.files} files{cached}, {report.lines} lines, {len(report.findings)} findings, "
        f"{len(report.failed)} not checked, in {elapsed:.2f} s ({rate:,.0f} lines/s)",
        file=sys.stderr,
    )


def _fix(report: Report, out: TextIO, *, diff: bool) -> Report:
    """Apply (or show) the edits; the findings they fix leave the report."""
    by_path: dict[str, list[Finding]] = {}
    for finding in report.findings:
        if finding.fix is not None:
            by_path.setdefault(finding.path, []).append(finding)
    fixed: set[int] = set()
    total = 0
    for path, findings in sorted(by_path.items()):
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                before = handle.read()
        except (OSError, UnicodeDecodeError) as err:
            print(f"stoppable-lint: {path}: cannot fix: {err}", file=sys.stderr)
            continue
        after, count = apply_fixes(before, findings)
        total += count
        if diff:
            out.write(unified_diff(path, before, after))
        else:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(after)
        fixed.update(id(f) for f in findings)
    verb = "would fix" if diff else "fixed"
    print(f"stoppable-lint: {verb} {total} call(s) in {len(by_path)} file(s)", file=sys.stderr)
    if diff:
        return report
    return dataclasses.replace(report, findings=[f for f in report.findings if id(f) not in fixed])

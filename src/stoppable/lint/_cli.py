"""``python -m stoppable.lint`` and ``stoppable-lint``: exit 0 clean, 1 findings, 2 errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from stoppable.lint._api import Finding, Report, check_paths
from stoppable.lint._config import Config, ConfigError, load_config
from stoppable.lint._rules import RULES, by_name_or_code
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
        choices=("text", "json", "github"),
        default="text",
        help="output format (default: text, path:line:col: CODE message)",
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
        "--statistics", action="store_true", help="print files, lines and time to stderr"
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
    if fmt == "json":
        payload = [_as_json(f) for f in report.findings]
        json.dump(payload, out, indent=2)
        out.write("\n")
        return
    for finding in report.findings:
        if fmt == "github":
            title = _github_escape(f"{finding.code} {finding.name}", prop=True)
            print(
                f"::error file={_github_escape(finding.path, prop=True)},"
                f"line={finding.line},col={finding.column},"
                f"endLine={finding.end_line},endColumn={finding.end_column},"
                f"title={title}::{_github_escape(finding.message)}",
                file=out,
            )
        else:
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
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        for path in missing:
            print(f"stoppable-lint: error: {path}: no such file or folder", file=sys.stderr)
        return EXIT_ERROR
    started = time.perf_counter()
    report = check_paths(args.paths, config, jobs=args.jobs, force_exclude=args.force_exclude)
    elapsed = time.perf_counter() - started
    _emit(report, args.format, out)
    for error in report.errors:
        print(error, file=sys.stderr)
    if args.statistics:
        rate = report.lines / elapsed if elapsed > 0 else 0.0
        print(
            f"{report.files} files, {report.lines} lines, {len(report.findings)} findings "
            f"in {elapsed:.2f} s ({rate:,.0f} lines/s)",
            file=sys.stderr,
        )
    if report.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if report.findings else EXIT_CLEAN

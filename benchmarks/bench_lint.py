"""stoppable.lint beside pylint W3101, bandit B113, ruff S113 and flake8-async.

Two measurements:

1. Speed and findings on a large real corpus: the installed requests and urllib3 and the
   standard library (its test suites left out), every tool run as a subprocess from this
   venv on the same file list. One process each (ruff with ``RAYON_NUM_THREADS=1``), then
   stoppable.lint again on every core.
2. Coverage, case by case, on ``tests/lint/cases/comparison.case``: which tool reports
   which case. flake8-async's blocking-call rules fire only inside ``async def``, so it
   also runs on a copy where every case is ``async def``. The real flake8-async is used
   when a ``flake8-async`` command is found (``$FLAKE8_ASYNC`` or beside this Python);
   otherwise ruff's port of its rules (``ASYNC``) stands in, and the table says so.
"""

from __future__ import annotations

import ast
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks._harness import Table, verdict

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "lint" / "cases" / "comparison.case"
BIN = Path(sys.executable).parent
SKIP_DIRS = frozenset(
    {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages", "__pycache__"}
)
TARGET_LINES_PER_SECOND = 100_000
# Generous bounds: pylint needs about 35 s for the corpus on this machine.
TOOL_TIMEOUT = 900.0


def corpus() -> list[Path]:
    """The installed requests and urllib3 and the standard library, without tests."""
    import requests
    import urllib3

    roots = [
        Path(requests.__file__).parent,
        Path(urllib3.__file__).parent,
        Path(sysconfig.get_paths()["stdlib"]),
    ]
    files: list[Path] = []
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            files.extend(Path(folder) / n for n in sorted(names) if n.endswith(".py"))
    parsable = []
    for path in files:
        try:
            ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        parsable.append(path)
    return parsable


def count_lines(files: Sequence[Path]) -> int:
    return sum(path.read_bytes().count(b"\n") for path in files)


@dataclass
class Run:
    seconds: float
    lines: list[int]


def run_tool(argv: Sequence[str], parse: Callable[[str], list[int]], **env: str) -> Run:
    environment = {**os.environ, **env}
    started = time.perf_counter()
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
        env=environment,
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1) and not result.stdout:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return Run(elapsed, parse(result.stdout))


def _pylint_lines(out: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^[^\n]*?:(\d+): \[W3101", out, re.M)]


def _bandit_lines(out: str) -> list[int]:
    data = json.loads(out[out.index("{") :]) if "{" in out else {"results": []}
    return [int(item["line_number"]) for item in data["results"]]


def _ruff_lines(out: str) -> list[int]:
    return [int(item["location"]["row"]) for item in json.loads(out or "[]")]


def _stp_lines(out: str) -> list[int]:
    return [int(item["line"]) for item in json.loads(out or "[]")]


def _flake8_async_lines(out: str) -> list[int]:
    # Only the blocking-call rules (ASYNC2xx) are about waiting; ASYNC1xx are style.
    return [int(m.group(1)) for m in re.finditer(r":(\d+):\d+: ASYNC2\d\d", out)]


def pylint(files: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "pylint", "--disable=all", "--enable=W3101", "--score=n",
        "--output-format=parseable", "-j", "1", *files,
    ]  # fmt: skip


def bandit(files: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "bandit", "-q", "-t", "B113", "-f", "json", *files]


def ruff(files: Sequence[str], select: str = "S113") -> list[str]:
    exe = BIN / "ruff"
    return [
        str(exe) if exe.exists() else "ruff", "check", "--isolated", "--no-cache",
        "--select", select, "--output-format", "json", *files,
    ]  # fmt: skip


def stoppable_lint(files: Sequence[str], jobs: int, cache: str | None = None) -> list[str]:
    caching = ["--cache-dir", cache] if cache else ["--no-cache"]
    return [
        sys.executable, "-m", "stoppable.lint", "--isolated", "--format", "json",
        "--jobs", str(jobs), *caching, *files,
    ]  # fmt: skip


def flake8_async_command() -> list[str] | None:
    found = os.environ.get("FLAKE8_ASYNC") or shutil.which("flake8-async", path=str(BIN))
    return [found, "--enable", "ASYNC"] if found else None


def parse_and_walk(files: Sequence[Path]) -> float:
    """Seconds for ``ast.parse`` plus one ``ast.walk`` of every file: the floor."""
    started = time.perf_counter()
    for path in files:
        for _node in ast.walk(ast.parse(path.read_bytes())):
            pass
    return time.perf_counter() - started


def in_process(files: Sequence[Path]) -> float:
    """Seconds for stoppable.lint's checker in this process, one file after another."""
    from stoppable.lint import Config, check_source

    config = Config()
    started = time.perf_counter()
    for path in files:
        check_source(path.read_bytes(), str(path), config=config)
    return time.perf_counter() - started


def speed_table() -> Table:
    files = corpus()
    names = [str(path) for path in files]
    lines = count_lines(files)
    table = Table(
        f"Lint speed: requests + urllib3 + stdlib ({len(files)} files, {lines:,} lines)",
        ["tool", "processes", "seconds", "lines/s", "findings", "vs stoppable.lint"],
    )
    gc.collect()
    floor = parse_and_walk(files)
    checker = in_process(files)
    runs: list[tuple[str, str, Run]] = [
        ("stoppable.lint", "1", run_tool(stoppable_lint(names, 1), _stp_lines)),
        ("stoppable.lint", str(os.cpu_count() or 1), run_tool(
            stoppable_lint(names, os.cpu_count() or 1), _stp_lines
        )),
        ("ruff S113", "1 thread", run_tool(ruff(names), _ruff_lines, RAYON_NUM_THREADS="1")),
        ("bandit B113", "1", run_tool(bandit(names), _bandit_lines)),
        ("pylint W3101", "1", run_tool(pylint(names), _pylint_lines)),
    ]  # fmt: skip
    ours = runs[0][2].seconds
    for name, processes, run in runs:
        table.add(
            name,
            processes,
            f"{run.seconds:.2f}",
            f"{lines / run.seconds:,.0f}",
            len(run.lines),
            f"{run.seconds / ours:.2f}x time",
        )
    table.add("ast.parse + ast.walk (floor)", "in-process", f"{floor:.2f}",
              f"{lines / floor:,.0f}", "-", "-")  # fmt: skip
    table.add("stoppable.lint checker", "in-process", f"{checker:.2f}",
              f"{lines / checker:,.0f}", "-", "-")  # fmt: skip
    single = lines / ours
    table.notes.append(
        f"Target: >= {TARGET_LINES_PER_SECOND:,} lines/s in one process (subprocess, "
        f"start-up included): {single:,.0f} lines/s, {verdict(single >= TARGET_LINES_PER_SECOND)}."
    )
    table.notes.append(
        "Findings differ in kind: ruff S113, bandit B113 and pylint W3101 look at requests "
        "(and httpx) calls only; stoppable.lint covers the other libraries too."
    )
    return table


def case_ranges(source: str) -> list[tuple[str, str, int, int]]:
    """``(name, label, first line, last line)`` of every ``def case_NN`` in the file."""
    tree = ast.parse(source)
    cases = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("case_")
    ]
    out = []
    for node in cases:
        label = (ast.get_docstring(node) or node.name).strip()
        out.append((node.name, label, node.lineno, node.end_lineno or node.lineno))
    return out


def coverage_table() -> Table:
    source = CASES.read_text(encoding="utf-8")
    ranges = case_ranges(source)
    expected = marked_lines(source)
    async_command = flake8_async_command()
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "comparison.py"
        plain.write_text(source, encoding="utf-8")
        made_async = Path(folder) / "comparison_async.py"
        made_async.write_text(re.sub(r"^def case_", "async def case_", source, flags=re.M))
        files = [str(plain)]
        results = {
            "stoppable.lint": run_tool(stoppable_lint(files, 1), _stp_lines).lines,
            "pylint W3101": run_tool(pylint(files), _pylint_lines).lines,
            "bandit B113": run_tool(bandit(files), _bandit_lines).lines,
            "ruff S113": run_tool(ruff(files), _ruff_lines).lines,
        }
        if async_command is not None:
            label = "flake8-async (async def)"
            lines = run_tool([*async_command, str(made_async)], _flake8_async_lines).lines
            sync_lines = run_tool([*async_command, str(plain)], _flake8_async_lines).lines
        else:
            label = "ruff ASYNC2 port of flake8-async (async def)"
            lines = run_tool(ruff([str(made_async)], "ASYNC2"), _ruff_lines).lines
            sync_lines = run_tool(ruff(files, "ASYNC2"), _ruff_lines).lines
        results[label] = lines
    tools = list(results)
    table = Table(
        f"Lint coverage on {len(ranges)} cases (tests/lint/cases/comparison.case)",
        ["#", "case", "blocks forever?", *tools],
    )
    totals = {tool: [0, 0] for tool in tools}  # found positives, false alarms
    positives = 0
    for name, case_label, first, last in ranges:
        positive = any(first <= line <= last for line in expected)
        positives += positive
        cells = []
        for tool in tools:
            hit = any(first <= line <= last for line in results[tool])
            if hit and positive:
                totals[tool][0] += 1
            elif hit:
                totals[tool][1] += 1
            cells.append(_mark(hit, positive))
        table.add(name.removeprefix("case_"), case_label, "yes" if positive else "no", *cells)
    table.add(
        "",
        f"found / {positives} positives; false alarms / {len(ranges) - positives} negatives",
        "",
        *(f"{totals[t][0]} / {totals[t][1]}" for t in tools),
    )
    table.notes.append(
        "found = reported a case that can block forever; FALSE ALARM = reported a case that "
        "cannot (a timeout is given, httpx's 5 s default, a wrapper forwarding **kwargs, an "
        "unrelated .get()); missed = said nothing about one that can."
    )
    table.notes.append(
        f"flake8-async reports blocking calls in async functions whatever their timeout; on "
        f"the same cases as plain functions it reports {len(sync_lines)}."
    )
    return table


def marked_lines(source: str) -> set[int]:
    """Lines marked ``# error: STPnnn``: the cases that can block forever."""
    return {
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if re.search(r"#\s*error:\s*STP\d+", line)
    }


def _mark(hit: bool, positive: bool) -> str:
    if hit:
        return "found" if positive else "FALSE ALARM"
    return "missed" if positive else "-"


MEMORY_LINES = 200_000
TARGET_MEMORY_MB = 100
TARGET_SINGLE = 200_000

_PEAK = """
import resource, sys
from stoppable.lint import main
main(["--isolated", "--no-cache", "--jobs", "1", "--format", "json", *sys.argv[1:]],
     out=open("/dev/null", "w"))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory_mb(files: Sequence[str]) -> float:
    """Peak resident memory of one process checking ``files`` (start-up included)."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, *files],
        capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=True,
    )  # fmt: skip
    return int(result.stdout.split()[-1]) / 1024  # Linux reports KiB


def lint_corpus_files() -> list[Path]:
    """The downloaded real projects of ``make lint-corpus``, if they are there."""
    from benchmarks.lint_corpus import projects

    files: list[Path] = []
    for project in projects():
        if project.is_dir():
            files.extend(sorted(project.rglob("*.py")))
    return files


_FLOOR = """
import ast, sys
for name in sys.argv[1:]:
    with open(name, "rb") as handle:
        data = handle.read()
    try:
        ast.parse(data)
    except (SyntaxError, ValueError):
        pass
"""


def floor_argv(files: Sequence[str]) -> list[str]:
    """A fresh process that only reads and ``ast.parse``-es every file: the floor."""
    return [sys.executable, "-c", _FLOOR, *files]


def workflow_table() -> Table:
    """Speed as a user meets it: a cold run, every core, a re-run, and memory.

    Every run is a fresh process, start-up included, timed beside the floor (a plain
    Python process that reads and parses the same files) in the same run, so the ratio
    says how far the checker is from what parsing alone costs, whatever the load.
    """
    cpus = os.cpu_count() or 1
    table = Table(
        "Lint speed in use (each run a fresh process, start-up included)",
        ["file set", "run", "seconds", "lines/s", "x floor", "peak memory"],
    )
    sets = [("requests + urllib3 + stdlib", corpus())]
    real = lint_corpus_files()
    if real:
        sets.append(("make lint-corpus (10 projects)", real))
    single: list[tuple[float, float]] = []  # (lines/s, ratio to the floor)
    for label, files in sets:
        names = [str(path) for path in files]
        lines = count_lines(files)
        title = f"{label} ({len(files)} files, {lines:,} lines)"
        floor = run_tool(floor_argv(names), lambda _: []).seconds
        table.add(title, "floor: read + ast.parse only", f"{floor:.2f}",
                  f"{lines / floor:,.0f}", "1.00x", "-")  # fmt: skip
        with tempfile.TemporaryDirectory() as cache:
            runs = [
                ("1 process, no cache", stoppable_lint(names, 1)),
                (f"-j {cpus}, no cache", stoppable_lint(names, cpus)),
                ("1 process, cache filled", stoppable_lint(names, 1, cache)),
                ("1 process, cache, nothing changed", stoppable_lint(names, 1, cache)),
            ]
            for name, argv in runs:
                run_ = run_tool(argv, _stp_lines)
                rate = lines / run_.seconds
                if name == "1 process, no cache":
                    single.append((rate, run_.seconds / floor))
                table.add(
                    title,
                    name,
                    f"{run_.seconds:.2f}",
                    f"{rate:,.0f}",
                    f"{run_.seconds / floor:.2f}x",
                    "-",
                )
    # Memory on a file set of about MEMORY_LINES lines.
    chosen: list[str] = []
    total = 0
    for path in corpus():
        if total >= MEMORY_LINES:
            break
        chosen.append(str(path))
        total += path.read_bytes().count(b"\n")
    peak = peak_memory_mb(chosen)
    table.add(
        f"first {len(chosen)} files ({total:,} lines)", "1 process", "-", "-", "-",
        f"{peak:.0f} MB",
    )  # fmt: skip
    table.notes.append(
        "x floor: the run's time over the floor's, both fresh processes in this run. "
        "Absolute figures follow the machine's load; the ratio much less. One cold "
        f"process ran at {', '.join(f'{r:.2f}x' for _, r in single)} the floor; 200,000 "
        "lines/s in one process needs a floor of at least that many lines/s times the "
        "ratio."
    )
    best = max(rate for rate, _ in single)
    table.notes.append(
        f"Target: >= {TARGET_SINGLE:,} lines/s in one process with start-up: "
        f"{best:,.0f} lines/s, {verdict(best >= TARGET_SINGLE)}; peak memory < "
        f"{TARGET_MEMORY_MB} MB on {total:,} lines: {peak:.0f} MB, "
        f"{verdict(peak < TARGET_MEMORY_MB)}."
    )
    return table


def run() -> list[Table]:
    """Coverage first (seconds), then speed (about a minute: pylint dominates)."""
    return [coverage_table(), workflow_table(), speed_table()]

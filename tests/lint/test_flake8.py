"""The flake8 plugin, run through flake8 itself on real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._cases import CASES, Case, all_cases, load

FORMAT = "%(path)s:%(row)d:%(col)d:%(code)s"


def run_flake8(folder: Path, *extra: str) -> set[tuple[str, int, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "STP", "--format", FORMAT, *extra, "."],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    found = set()
    for line in result.stdout.splitlines():
        path, row, _col, code = line.rsplit(":", 3)
        found.add((Path(path).name, int(row), code))
    return found


def expected(cases: list[Case], *, drop: frozenset[str] = frozenset()) -> set[tuple[str, int, str]]:
    return {
        (case.path.stem + ".py", line, code)
        for case in cases
        for line, code in case.expected
        if code not in drop
    }


def test_flake8_reports_the_marked_findings(tmp_path: Path) -> None:
    # Every case that needs no configuration, plus the suppression case: flake8
    # applies suppression comments itself and has no unused-suppression report (STP900).
    chosen = [c for c in all_cases() if not c.config and c.module is None]
    chosen.append(load(CASES / "noqa.case"))
    for case in chosen:
        (tmp_path / (case.path.stem + ".py")).write_text(case.source, encoding="utf-8")
    assert run_flake8(tmp_path, "--isolated") == expected(chosen, drop=frozenset({"STP900"}))


def test_flake8_strict_option_and_project_config(tmp_path: Path) -> None:
    # The plugin reads [tool.stoppable.lint] (wrappers here) from the nearest
    # pyproject.toml, and --stoppable-strict turns the strict codes on.
    case = load(CASES / "strict.case")
    (tmp_path / "strict.py").write_text(case.source, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.stoppable.lint]\n"
        'wrappers = { "queue.Queue.put" = "myapp.queues.put", "threading.Event.wait" = "" }\n',
        encoding="utf-8",
    )
    assert run_flake8(tmp_path, "--isolated", "--stoppable-strict") == expected([case])


def test_flake8_without_strict_reports_no_strict_codes(tmp_path: Path) -> None:
    case = load(CASES / "strict.case")
    (tmp_path / "strict.py").write_text(case.source, encoding="utf-8")
    found = run_flake8(tmp_path, "--isolated")
    assert found == {("strict.py", line, code) for line, code in case.expected if code == "STP100"}

"""Hostile trees: nothing aborts the run, nothing hangs it, nothing is skipped silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stoppable.lint import check_paths

from ._run import BAD, run


def test_a_long_sum_is_checked_and_the_rest_of_the_run_goes_on(project: Path) -> None:
    (project / "deep.py").write_text(
        "import queue\nx = " + " + ".join(["'s'"] * 2000) + "\nqueue.Queue().get()\n"
    )
    (project / "other.py").write_text(BAD)
    report = check_paths(["."], jobs=1)
    assert not report.failed
    assert [(f.path, f.code) for f in report.findings] == [
        (os.path.join(".", "deep.py"), "STP100"),
        (os.path.join(".", "other.py"), "STP100"),
    ]


def test_too_deep_to_parse_is_one_files_error(project: Path) -> None:
    (project / "deep.py").write_text("x = " + ".".join(["a"] * 20000) + "\n")
    (project / "other.py").write_text(BAD)
    code, out = run("--no-cache", "--format", "json", ".")
    assert code == 2
    payload = json.loads(out)
    assert [item["code"] for item in payload] == ["E999", "STP100"]
    assert "too deeply nested" in payload[0]["message"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_py_is_skipped_not_read(project: Path) -> None:
    os.mkfifo(project / "pipe.py")
    (project / "other.py").write_text(BAD)
    # In a child process: if the FIFO were opened the run would block forever.
    result = subprocess.run(
        [sys.executable, "-m", "stoppable.lint", "--no-cache", ".", "pipe.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "other.py:3:1: STP100" in result.stdout
    assert "pipe.py:1:1: E902 not a regular file" in result.stderr


def test_missing_and_empty_paths_are_reported_and_the_rest_is_checked(
    project: Path,
) -> None:
    (project / "other.py").write_text(BAD)
    (project / "empty").mkdir()
    code, out = run("--no-cache", "--format", "github", "missing.py", "empty", "other.py")
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith("::error file=empty,line=1,col=1")
    assert "no Python file" in lines[0]
    assert lines[1].startswith("::error file=missing.py,line=1,col=1")
    assert "No such file" in lines[1]
    assert "title=STP100 missing-timeout" in lines[2]
    # Nothing at all to read: an error, not a clean run.
    assert run("--no-cache", "missing.py")[0] == 2


@pytest.mark.parametrize("name", ["build", "dist", "venv", "site-packages"])
def test_an_excluded_name_above_the_given_folder_does_not_hide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    project = tmp_path / name / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "m.py").write_text(BAD)
    (project / "src" / name).mkdir()
    (project / "src" / name / "skipped.py").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    report = check_paths([project], jobs=1)
    assert [Path(f.path).name for f in report.findings] == ["m.py"]
    monkeypatch.chdir(project)
    report = check_paths(["src"], jobs=1)
    assert [Path(f.path).name for f in report.findings] == ["m.py"]


def test_sarif_output_carries_findings_and_failures(project: Path) -> None:
    (project / "m.py").write_text(BAD)
    (project / "broken.py").write_text("def (:\n")
    code, out = run("--no-cache", "--format", "sarif", ".")
    assert code == 2
    log = json.loads(out)
    assert log["version"] == "2.1.0"
    [sarif_run] = log["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    results = sarif_run["results"]
    assert {r["ruleId"] for r in results} == {"E999", "STP100"}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    stp = next(r for r in results if r["ruleId"] == "STP100")
    location = stp["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "./m.py"
    assert location["region"] == {"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 8}
    assert sarif_run["invocations"][0]["executionSuccessful"] is False

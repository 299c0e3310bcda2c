"""The command line: exit codes, formats, selection, files and folders, excludes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stoppable.lint import _api

from ._run import BAD, run

GOOD = "import queue\nq = queue.Queue()\nq.get(timeout=1)\n"


def test_exit_codes(project: Path) -> None:
    (project / "good.py").write_text(GOOD, encoding="utf-8")
    (project / "bad.py").write_text(BAD, encoding="utf-8")
    assert run("good.py") == (0, "")
    code, out = run("bad.py")
    assert code == 1
    assert out.startswith("bad.py:3:1: STP100 q.get() (queue.Queue.get) has no timeout")
    assert "timeout=<seconds>" in out
    assert "stoppable.queues.get" in out
    (project / "broken.py").write_text("def f(:\n", encoding="utf-8")
    code, _ = run("broken.py")
    assert code == 2
    assert run("missing.py")[0] == 2
    assert run()[0] == 2
    assert run("--no-such-option", "good.py")[0] == 2
    assert run("--jobs", "0", "good.py")[0] == 2


def test_syntax_error_is_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "broken.py").write_text("x = (\n", encoding="utf-8")
    assert run("broken.py")[0] == 2
    assert "broken.py:1:5: E999 SyntaxError" in capsys.readouterr().err


def test_folders_and_excludes(project: Path) -> None:
    pkg = project / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text(BAD, encoding="utf-8")
    (pkg / "sub" / "b.py").write_text(BAD, encoding="utf-8")
    (pkg / "notes.txt").write_text(BAD, encoding="utf-8")
    (project / ".venv").mkdir()
    (project / ".venv" / "c.py").write_text(BAD, encoding="utf-8")
    code, out = run(".")
    assert code == 1
    assert sorted(line.split(":")[0] for line in out.splitlines()) == [
        os.path.join(".", "pkg", "a.py"),
        os.path.join(".", "pkg", "sub", "b.py"),
    ]
    assert run("--extend-exclude", "sub", ".")[1].count("STP100") == 1
    assert run("--extend-exclude", "pkg/sub/*.py", ".")[1].count("STP100") == 1
    # A file named on the command line is checked unless --force-exclude.
    assert run("--extend-exclude", "sub", "pkg/sub/b.py")[0] == 1
    assert run("--extend-exclude", "sub", "--force-exclude", "pkg/sub/b.py")[0] == 0


def test_config_excludes_and_per_file_ignores(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.stoppable.lint]\n"
        'extend-exclude = ["generated"]\n'
        'per-file-ignores = { "tests/*" = ["STP100"] }\n',
        encoding="utf-8",
    )
    for folder in ("generated", "tests", "src"):
        (project / folder).mkdir()
        (project / folder / "m.py").write_text(BAD, encoding="utf-8")
    code, out = run(".")
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [os.path.join(".", "src", "m.py")]
    assert run("--isolated", ".")[1].count("STP100") == 3


def test_select_and_ignore(project: Path) -> None:
    (project / "m.py").write_text(
        "import queue, requests\nqueue.Queue().get()\nrequests.get('u', timeout=None)\n",
        encoding="utf-8",
    )

    def codes(out: str) -> list[str]:
        return [line.split()[1] for line in out.splitlines()]

    assert codes(run("m.py")[1]) == ["STP100", "STP101"]
    assert codes(run("--select", "STP101", "m.py")[1]) == ["STP101"]
    assert codes(run("--ignore", "STP101", "m.py")[1]) == ["STP100"]
    assert codes(run("--select", "STP1", "--ignore", "STP100", "m.py")[1]) == ["STP101"]
    assert codes(run("--strict", "m.py")[1]) == ["STP100", "STP101"]
    assert codes(run("--extend-select", "STP200", "m.py")[1]) == ["STP100", "STP101"]
    (project / "n.py").write_text("import queue\nqueue.Queue().get(timeout=1)\n", encoding="utf-8")
    assert codes(run("--strict", "n.py")[1]) == ["STP200"]
    assert run("--select", "XYZ9", "m.py")[0] == 2


def test_formats(project: Path) -> None:
    (project / "m.py").write_text(BAD, encoding="utf-8")
    code, out = run("--format", "json", "m.py")
    assert code == 1
    [finding] = json.loads(out)
    assert finding["path"] == "m.py"
    assert finding["line"] == 3
    assert finding["column"] == 1
    assert finding["end_line"] == 3
    assert finding["end_column"] == 8
    assert finding["code"] == "STP100"
    assert finding["name"] == "missing-timeout"
    assert finding["message"].startswith("q.get()")
    code, out = run("--format", "github", "m.py")
    assert code == 1
    assert out.startswith(
        "::error file=m.py,line=3,col=1,endLine=3,endColumn=8,title=STP100 missing-timeout::q.get()"
    )
    assert run("--format", "json", "--isolated", "m.py", "--ignore", "STP")[1].strip() == "[]"


def test_informational_options(project: Path) -> None:
    code, out = run("--list-codes")
    assert code == 0
    assert "STP100 missing-timeout" in out
    assert "STP200 use-stoppable-wrapper [strict]" in out
    code, out = run("--explain", "STP102")
    assert code == 0
    assert "blocking-without-timeout" in out
    assert run("--explain", "missing-timeout")[0] == 0
    assert run("--explain", "STP999")[0] == 2
    code, out = run("--list-calls")
    assert code == 0
    assert "requests.get: timeout [STP100/101] -> stoppable.http.get" in out
    assert "queue.Queue.join: no timeout parameter (STP102)" in out


def test_statistics(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "m.py").write_text(GOOD, encoding="utf-8")
    assert run("--statistics", "m.py")[0] == 0
    assert "1 files, 3 lines, 0 findings" in capsys.readouterr().err


def test_parallel_run_matches_serial(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(6):
        (project / f"m{index}.py").write_text(BAD * (index + 1), encoding="utf-8")
    serial = _api.check_paths(["."], jobs=1)
    monkeypatch.setattr(_api, "PARALLEL_MIN_BYTES", 0)
    parallel = _api.check_paths(["."], jobs=2)
    assert parallel.findings == serial.findings
    assert parallel.lines == serial.lines
    assert parallel.files == serial.files == 6
    assert len(serial.findings) == 21


def test_module_entry_point_and_console_script(project: Path) -> None:
    (project / "m.py").write_text(BAD, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "stoppable.lint", "m.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("m.py:3:1: STP100")
    script = Path(sys.executable).with_name("stoppable-lint")
    if script.exists():
        result = subprocess.run(
            [str(script), "m.py"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 1

"""--fix and its diff mode, --statistics, the cache, presets and re-exports on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stoppable.lint import ConfigError, check_file, check_paths, config_from_mapping
from stoppable.lint._cache import Cache

from ._run import run

SOURCE = """\
import queue
import subprocess

import requests

q = queue.Queue()
q.get()
requests.get("http://example.invalid",
             headers={})
subprocess.run(["true"], check=True,)
requests.post(*args)
"""
FIXED = """\
import queue
import subprocess

import requests

q = queue.Queue()
q.get(timeout=30)
requests.get("http://example.invalid",
             headers={}, timeout=30)
subprocess.run(["true"], check=True,timeout=30)
requests.post(*args)
"""


def test_fix_needs_a_configured_timeout(project: Path) -> None:
    (project / "m.py").write_text(SOURCE)
    assert run("--fix", "m.py")[0] == 2
    assert (project / "m.py").read_text() == SOURCE
    assert run("--diff", "m.py")[0] == 2


def test_fix_diff_shows_and_fix_writes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "m.py").write_text(SOURCE)
    code, out = run("--no-cache", "--fix", "--diff", "--default-timeout", "30", "m.py")
    assert code == 1
    assert out.startswith("--- a/m.py\n+++ b/m.py\n")
    assert "+q.get(timeout=30)\n" in out
    assert (project / "m.py").read_text() == SOURCE
    code, out = run("--no-cache", "--fix", "--default-timeout", "30", "m.py")
    assert (project / "m.py").read_text() == FIXED
    compile(FIXED.replace("*args", "*[]"), "m.py", "exec")
    # What --fix cannot edit safely (a call forwarding *args) is still reported.
    assert code == 1
    assert out.count("STP100") == 1
    assert "requests.post()" in out
    assert "fixed 3 call(s) in 1 file(s)" in capsys.readouterr().err
    assert run("--no-cache", "--fix", "--default-timeout", "30", "m.py")[0] == 1


def test_default_timeout_from_the_configuration(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.stoppable.lint]\ndefault-timeout = 2.5\n")
    (project / "m.py").write_text("import queue\nqueue.Queue().get()\n")
    assert run("--no-cache", "--fix", "m.py")[0] == 0
    assert (project / "m.py").read_text() == "import queue\nqueue.Queue().get(timeout=2.5)\n"
    with pytest.raises(ConfigError, match="default-timeout"):
        config_from_mapping({"default-timeout": -1})


def test_statistics_counts_each_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "m.py").write_text(SOURCE)
    (project / "broken.py").write_text("def (:\n")
    assert run("--no-cache", "--statistics", ".")[0] == 2
    err = capsys.readouterr().err
    assert "     4  STP100  missing-timeout" in err
    assert "     1  E999  syntax-error" in err
    assert "2 files, 12 lines, 4 findings, 1 not checked" in err


def test_cache_skips_unchanged_files_and_sees_changes(project: Path) -> None:
    (project / "m.py").write_text(SOURCE)
    config = config_from_mapping({})
    cache = Cache(project / "cache", config)
    first = check_paths(["m.py"], config, jobs=1, cache=cache)
    assert first.cached == 0
    second = check_paths(["m.py"], config, jobs=1, cache=cache)
    assert second.cached == 1
    assert second.findings == first.findings
    (project / "m.py").write_text(SOURCE.replace("q.get()", "q.get(timeout=1)"))
    third = check_paths(["m.py"], config, jobs=1, cache=cache)
    assert third.cached == 0
    assert len(third.findings) == len(first.findings) - 1
    # Another configuration is another key.
    strict = config_from_mapping({"strict": True})
    assert check_paths(["m.py"], strict, jobs=1, cache=Cache(project / "cache", strict)).cached == 0


def test_cache_on_the_command_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "m.py").write_text(SOURCE)
    assert run("--statistics", "m.py")[0] == 1
    assert run("--statistics", "m.py")[0] == 1
    assert "1 files, 1 from the cache" in capsys.readouterr().err
    assert (project / ".stoppable_lint_cache" / "CACHEDIR.TAG").exists()


def test_a_same_package_reexport_resolves(project: Path) -> None:
    package = project / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "compat.py").write_text(
        "try:\n    from urllib.request import urlopen\nexcept ImportError:\n"
        "    from urllib2 import urlopen\nfrom subprocess import (\n    Popen,\n)\n"
    )
    (package / "client.py").write_text(
        "from .compat import urlopen, Popen\nfrom . import compat\n\n"
        "urlopen('http://x')\nPopen(['x']).wait()\ncompat.urlopen('http://x')\n"
    )
    found = [(f.line, f.code) for f in check_file(package / "client.py")]
    assert found == [(4, "STP100"), (5, "STP100"), (6, "STP100")]
    # The cache notices a change in the module the result depended on.
    config = config_from_mapping({})
    cache = Cache(project / "cache", config)
    assert len(check_paths([package / "client.py"], config, jobs=1, cache=cache).findings) == 3
    (package / "compat.py").write_text("def urlopen(url): ...\ndef Popen(args): ...\n")
    report = check_paths([package / "client.py"], config, jobs=1, cache=cache)
    assert report.cached == 0
    assert report.findings == []
    os.remove(package / "compat.py")
    assert check_file(package / "client.py") == []

"""The Python API: check_source, check_file, findings, module names."""

from __future__ import annotations

from pathlib import Path

import pytest

import stoppable.lint
from stoppable.lint import (
    RULES,
    Config,
    Finding,
    LintSyntaxError,
    check_file,
    check_paths,
    check_source,
    module_name,
)


def test_public_names() -> None:
    for name in stoppable.lint.__all__:
        assert getattr(stoppable.lint, name).__doc__, name


def test_check_source() -> None:
    [finding] = check_source("import requests\nrequests.get(url)\n", "app.py")
    assert finding == Finding(
        "app.py",
        2,
        1,
        2,
        18,
        "STP100",
        "requests.get() has no timeout and can block forever: pass timeout=<seconds>, "
        "or use stoppable.http.get(..., timeout=..., stop=...)",
    )
    assert finding.name == "missing-timeout"
    assert finding.text().startswith("app.py:2:1: STP100 requests.get() has no timeout")
    assert check_source(b"import requests\nrequests.get(url, timeout=3)\n") == []


def test_syntax_error() -> None:
    with pytest.raises(LintSyntaxError) as info:
        check_source("def f(:\n", "bad.py")
    assert info.value.path == "bad.py"
    assert info.value.line == 1
    assert "E999 SyntaxError" in str(info.value)
    with pytest.raises(LintSyntaxError):
        check_source("x = 1\0\n")


def test_never_imports_or_runs_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\nimport queue\nqueue.Queue().get()\n"
    assert [f.code for f in check_source(source)] == ["STP100"]
    assert not marker.exists()


def test_check_file_honours_the_encoding_cookie(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes(
        b"# -*- coding: latin-1 -*-\nimport queue\nqueue.Queue().get()  # caf\xe9  # noqa\n"
        b"queue.Queue().get()  # caf\xe9\n"
    )
    [finding] = check_file(path)
    assert finding.line == 4


def test_module_name(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    sub = pkg / "sub"
    sub.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (sub / "__init__.py").write_text("", encoding="utf-8")
    (sub / "mod.py").write_text("", encoding="utf-8")
    assert module_name(sub / "mod.py") == ("pkg.sub.mod", False)
    assert module_name(sub / "__init__.py") == ("pkg.sub", True)
    assert module_name(tmp_path / "script.py") == ("script", False)
    assert module_name(tmp_path / "not-a-module.py") == (None, False)


def test_relative_imports_from_files(tmp_path: Path) -> None:
    # Inside a package, ``from .sessions import Session`` is requests' own Session.
    pkg = tmp_path / "requests"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .api import get\n", encoding="utf-8")
    (pkg / "api.py").write_text(
        "from .sessions import Session\ndef fetch(url):\n    return Session().get(url)\n",
        encoding="utf-8",
    )
    report = check_paths([tmp_path], jobs=1)
    assert [(Path(f.path).name, f.line, f.code) for f in report.findings] == [
        ("api.py", 3, "STP100")
    ]
    assert report.files == 2
    assert report.lines == 4


def test_unreadable_files_are_errors(tmp_path: Path) -> None:
    report = check_paths([tmp_path / "nope.py"], jobs=1)
    assert report.errors
    assert "cannot read" in report.errors[0]


def test_rules_have_names_and_messages() -> None:
    names = [rule.name for rule in RULES.values()]
    assert len(set(names)) == len(names)
    for code, rule in RULES.items():
        assert code.startswith("STP")
        assert rule.code == code
        assert rule.summary
        assert rule.message


_CYCLIC_MODULE = """
import socket
import threading


class Server:
    def __init__(self):
        self.sock = socket.socket()
        self.worker = threading.Thread(target=self.run)
        self.peer = self.accept_one()

    def accept_one(self):
        return self.sock.accept()

    def run(self):
        conn = self.peer
        conn.recv(1)
        self.worker.join()


def main():
    server = Server()
    server.sock.connect(("example.com", 80))
    return [server.accept_one() for _ in range(3)]
"""


def test_checking_leaves_no_reference_cycles() -> None:
    # Instances point at their class and pending calls at their scope; the checker
    # breaks those cycles, so each file's values and tree are freed at once (a run
    # pauses the cyclic collector while it checks a file and relies on this).
    import ast
    import gc

    from stoppable.lint import _values

    ours = tuple(
        kind
        for kind in vars(_values).values()
        if isinstance(kind, type) and kind.__module__ == _values.__name__
    )
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        findings = check_source(_CYCLIC_MODULE, "server.py")
        assert findings  # the module was really walked, classes and pending calls too
        gc.collect()
        # (``ast.dump`` leaves a closure cycle of its own; it holds no tree.)
        left = [o for o in gc.garbage if isinstance(o, (ast.AST, *ours))]
        assert left == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_check_paths_restores_the_collector(tmp_path: Path) -> None:
    import gc

    (tmp_path / "a.py").write_text(_CYCLIC_MODULE)
    assert gc.isenabled()
    assert check_paths([tmp_path], Config(), jobs=1).findings
    assert gc.isenabled()
    gc.disable()
    try:
        check_paths([tmp_path], Config(), jobs=1)
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()

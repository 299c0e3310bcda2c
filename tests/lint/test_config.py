"""[tool.stoppable.lint]: reading, validation, and Python 3.10 without tomli."""

from __future__ import annotations

from pathlib import Path

import pytest

from stoppable.lint import (
    Config,
    ConfigError,
    _config,
    check_source,
    config_from_mapping,
    load_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[tool.stoppable.lint]
select = ["STP1"]
extend-select = ["STP200"]
ignore = ["STP103"]
strict = false
exclude = ["build"]
extend-exclude = ["gen"]
per-file-ignores = { "tests/*" = ["STP100", "STP101"] }
report-unused-noqa = true
assume-socket-default-timeout = true

[tool.stoppable.lint.blocking-calls]
"mylib.fetch" = { timeout = "deadline", position = 1, wrapper = "mylib.stoppable_fetch" }
"mylib.Client.drain" = {}
"mylib.Client" = { timeout = "timeout", kind = "client" }
"mylib.cached" = { timeout = "timeout", default = true }

[tool.stoppable.lint.wrappers]
"queue.Queue.get" = "mylib.get"
""",
    )
    config = load_config(path)
    assert config.root == tmp_path.resolve()
    assert config.enabled_codes() == {"STP100", "STP101", "STP102", "STP200", "STP900"}
    assert config.codes_for("tests/test_x.py") == {"STP102", "STP200", "STP900"}
    assert config.codes_for(tmp_path / "tests" / "test_x.py") == {"STP102", "STP200", "STP900"}
    assert config.codes_for("src/x.py") == config.enabled_codes()
    assert config.is_excluded("gen/x.py")
    assert config.is_excluded("build")
    assert not config.is_excluded("src/x.py")
    assert config.blocking_calls["mylib.fetch"].position == 1
    assert config.blocking_calls["mylib.Client.drain"].kind == "none"
    assert config.blocking_calls["mylib.Client"].kind == "client"
    assert config.blocking_calls["mylib.cached"].missing_ok
    assert config.wrappers == {"queue.Queue.get": "mylib.get"}
    assert config.assume_socket_default_timeout


def test_defaults_without_file_or_section(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[project]\nname = 'x'\n")).enabled_codes() == {
        "STP100",
        "STP101",
        "STP102",
        "STP103",
    }
    assert Config(strict=True).enabled_codes() >= {"STP200", "STP201"}


def test_discovery_walks_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "[tool.stoppable.lint]\nstrict = true\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert load_config().strict
    assert not load_config(discover=False).strict


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unknown = 1", "unknown key(s) in [tool.stoppable.lint]: unknown"),
        ("strict = 'yes'", "strict must be true or false"),
        ("select = 5", "select must be a list of strings"),
        ("select = ['not a code']", "is not a code or prefix"),
        ("per-file-ignores = ['x']", "per-file-ignores must be a table"),
        ("wrappers = { a = 1 }", "wrappers must be a table"),
        ("blocking-calls = ['x']", "blocking-calls must be a table"),
        ("blocking-calls = { fetch = {} }", "use the qualified name"),
        ("blocking-calls = { 'a.b' = 1 }", "must be an inline table"),
        ("blocking-calls = { 'a.b' = { timeout = 1 } }", "timeout must be the argument's name"),
        ("blocking-calls = { 'a.b' = { timeout = 't', position = -1 } }", "position must be"),
        ("blocking-calls = { 'a.b' = { kind = 'weird' } }", "kind must be"),
        ("blocking-calls = { 'a.b' = { kind = 'client' } }", "needs timeout"),
        ("blocking-calls = { 'a.b' = { color = 'red' } }", "unknown key(s) color"),
        ("blocking-calls = { 'a.b' = { timeout = 't', default = 1 } }", "default must be"),
        ("blocking-calls = { 'a.b' = { wrapper = 1 } }", "wrapper must be a string"),
        ("strict = ", "invalid TOML"),
    ],
)
def test_invalid_sections(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, f"[tool.stoppable.lint]\n{text}\n")
    with pytest.raises(
        ConfigError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        load_config(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_python_310_without_tomli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No TOML parser: a file without our section is fine, one with it is a clear error.
    monkeypatch.setattr(_config, "toml_loader", lambda: None)
    assert load_config(write(tmp_path, "[project]\nname = 'x'\n")) == Config(
        root=tmp_path.resolve(), source=tmp_path / "pyproject.toml"
    )
    with pytest.raises(ConfigError, match=r"needs Python 3\.11\+ or the tomli package"):
        load_config(write(tmp_path, "[tool.stoppable.lint]\nstrict = true\n"))


def test_cli_reports_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stoppable.lint import main

    write(tmp_path, "[tool.stoppable.lint]\nbogus = 1\n")
    (tmp_path / "m.py").write_text("x = 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["m.py"]) == 2
    assert main(["--isolated", "m.py"]) == 0


def test_assume_socket_default_timeout() -> None:
    source = "import urllib.request\nurllib.request.urlopen('u')\n"
    assert [f.code for f in check_source(source)] == ["STP100"]
    config = config_from_mapping({"assume-socket-default-timeout": True})
    assert check_source(source, config=config) == []

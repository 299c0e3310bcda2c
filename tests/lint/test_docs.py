"""Every code has a documentation section, and its examples say what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stoppable.lint import RULES, check_source, config_from_mapping

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "lint.md"
SUBSECTIONS = (
    "What it finds",
    "Why it matters",
    "Example",
    "Use instead",
    "Configuration",
    "Limitations",
)


def section(code: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    rule = RULES[code]
    heading = f"## {code} {rule.name}\n"
    assert heading in text, f"docs/lint.md has no '{heading.strip()}' section"
    body = text.split(heading, 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]


def first_python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, "no python example"
    return match.group(1)


def subsection(text: str, title: str) -> str:
    body = text.split(f"### {title}\n", 1)[1]
    return body.split("\n### ", 1)[0]


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_code_is_documented(code: str) -> None:
    text = section(code)
    for title in SUBSECTIONS:
        assert f"### {title}\n" in text, f"{code}: missing '### {title}'"
    assert f"[{code}](#{code.lower()}-{RULES[code].name})" in DOCS.read_text(encoding="utf-8")


@pytest.mark.parametrize("code", sorted(RULES))
def test_examples_report_the_code_and_fixes_do_not(code: str) -> None:
    text = section(code)
    rule = RULES[code]
    config = config_from_mapping({"strict": rule.strict, "report-unused-noqa": code == "STP900"})
    example = first_python_block(subsection(text, "Example"))
    fixed = first_python_block(subsection(text, "Use instead"))
    assert code in {f.code for f in check_source(example, config=config)}
    assert code not in {f.code for f in check_source(fixed, config=config)}


def test_docs_tables_are_filled_in() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert "COVERAGE_TABLE" not in text
    assert "SPEED_TABLE" not in text


def test_pre_commit_hook_runs_the_console_script() -> None:
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "- id: stoppable-lint" in hooks
    assert "entry: stoppable-lint --force-exclude" in hooks
    assert 'stoppable-lint = "stoppable.lint._cli:main"' in (ROOT / "pyproject.toml").read_text(
        encoding="utf-8"
    )

"""Every case file yields exactly the findings marked in it."""

from __future__ import annotations

import pytest

from stoppable.lint import check_source, config_from_mapping

from ._cases import Case, all_cases, describe

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_file(case: Case) -> None:
    config = config_from_mapping(case.config)
    findings = check_source(case.source, case.name, config=config, module=case.module)
    found = {(f.line, f.code) for f in findings}
    messages = {(f.line, f.code): f.message for f in findings}
    lines = case.source.splitlines()
    missing = set(case.expected) - found
    unexpected = found - set(case.expected)
    report = (
        f"{case.name}\nmissing:\n{describe(lines, missing, messages)}"
        f"\nunexpected:\n{describe(lines, unexpected, messages)}"
    )
    assert not missing, report
    assert not unexpected, report

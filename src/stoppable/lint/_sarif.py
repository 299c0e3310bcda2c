"""SARIF 2.1.0 output, the format GitHub code scanning reads (``--format sarif``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stoppable.lint._rules import RULES

if TYPE_CHECKING:
    from stoppable.lint._api import Finding, Report

__all__ = ["sarif"]

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DOCS = "https://github.com/stoppable/stoppable/blob/main/docs/lint.md"


def _rule(code: str, name: str, summary: str) -> dict[str, Any]:
    anchor = f"{code.lower()}-{name}"
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "helpUri": f"{DOCS}#{anchor}",
        "defaultConfiguration": {"level": "error"},
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    return {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": finding.path.replace("\\", "/")},
                    "region": {
                        "startLine": finding.line,
                        "startColumn": finding.column,
                        "endLine": finding.end_line,
                        "endColumn": finding.end_column,
                    },
                }
            }
        ],
    }


def sarif(report: Report) -> dict[str, Any]:
    """One run of stoppable-lint as a SARIF log: every rule, every finding.

    Files that could not be checked are both results (so code scanning shows them at
    the file) and tool notifications (so the run is visibly incomplete).
    """
    rules = [_rule(code, rule.name, rule.summary) for code, rule in sorted(RULES.items())]
    index = {code: i for i, code in enumerate(sorted(RULES))}
    for finding in report.failed:
        if finding.code not in index:
            index[finding.code] = len(rules)
            rules.append(_rule(finding.code, finding.name, "The file could not be checked."))
    results = [_result(f, index[f.code]) for f in (*report.failed, *report.findings)]
    notifications = [
        {
            "level": "error",
            "message": {"text": f.message},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": f.path.replace("\\", "/")}}}
            ],
        }
        for f in report.failed
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "stoppable-lint",
                        "informationUri": DOCS,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not report.failed,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }

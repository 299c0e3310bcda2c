"""Case files: code with the expected findings marked inline.

A case file is Python source named ``*.case`` (so no other tool checks it). A line that
should be reported ends with ``# error: CODE`` (or ``# error: CODE, CODE``), optionally
followed by a remark in parentheses. Optional
header comments set up the check:

- ``# config: {...}``: a JSON object with ``[tool.stoppable.lint]`` keys;
- ``# module: pkg.mod``: the module name, for relative imports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CASES = Path(__file__).parent / "cases"

_EXPECT = re.compile(
    r"#\s*error:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)\s*(?:\(.*\))?\s*$"
)
_CONFIG = re.compile(r"^#\s*config:\s*(?P<json>\{.*\})\s*$")
_MODULE = re.compile(r"^#\s*module:\s*(?P<module>[\w.]+)\s*$")


@dataclass(frozen=True)
class Case:
    path: Path
    source: str
    expected: frozenset[tuple[int, str]]
    config: dict[str, Any]
    module: str | None

    @property
    def name(self) -> str:
        return self.path.name


def load(path: Path) -> Case:
    source = path.read_text(encoding="utf-8")
    expected: set[tuple[int, str]] = set()
    config: dict[str, Any] = {}
    module = None
    for number, line in enumerate(source.splitlines(), start=1):
        match = _EXPECT.search(line)
        if match:
            for code in match.group("codes").split(","):
                expected.add((number, code.strip()))
        config_match = _CONFIG.match(line)
        if config_match:
            config = json.loads(config_match.group("json"))
        module_match = _MODULE.match(line)
        if module_match:
            module = module_match.group("module")
    return Case(path, source, frozenset(expected), config, module)


def all_cases() -> list[Case]:
    return [load(path) for path in sorted(CASES.glob("*.case"))]


def describe(
    lines: list[str], items: set[tuple[int, str]], messages: dict[tuple[int, str], str]
) -> str:
    out = []
    for number, code in sorted(items):
        text = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        extra = messages.get((number, code), "")
        out.append(f"  line {number}: {code}  | {text}" + (f"\n      {extra}" if extra else ""))
    return "\n".join(out)

"""``--fix``: add ``timeout=<default>`` where that is safe, and show or apply the edits.

Only calls whose timeout is a keyword argument named ``timeout`` with the plain meaning
"give up after this many seconds" are edited: ``requests`` functions and ``Session``
methods, ``urllib3`` pools and managers, ``subprocess`` runs and ``Popen`` waits, and
``queue`` gets and puts. Nothing is edited unless ``default-timeout`` is configured:
the right number is the user's to choose, not the linter's.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stoppable.lint._api import Finding

__all__ = ["FIXABLE", "apply_fixes", "fixable", "unified_diff", "with_fix"]

#: Qualified names (or prefixes ending in ".") whose missing timeout ``--fix`` adds.
FIXABLE = (
    "requests.",
    "urllib3.",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen.wait",
    "subprocess.Popen.communicate",
    "queue.Queue.get",
    "queue.Queue.put",
    "queue.SimpleQueue.get",
)


def fixable(qualname: str) -> bool:
    """Whether ``--fix`` may add a timeout to a call of ``qualname``."""
    return any(
        qualname.startswith(name) if name.endswith(".") else qualname == name for name in FIXABLE
    )


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def with_fix(finding: Finding, lines: Sequence[str], default: float) -> Finding:
    """The finding with its edit worked out against the source, or with none."""
    if finding.fix is None:
        return finding
    line, byte_column, kind = finding.fix
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    column = len(text.encode("utf-8")[:byte_column].decode("utf-8", "replace"))
    if text[column : column + 1] != ")":
        return dataclasses.replace(finding, fix=None)
    insert = f"timeout={_seconds(default)}"
    if kind == "args":
        before = _previous_char(lines, line, column)
        if before is None:
            return dataclasses.replace(finding, fix=None)
        if before not in ",(":
            insert = ", " + insert
    return dataclasses.replace(finding, fix=(line, column, insert))


def _previous_char(lines: Sequence[str], line: int, column: int) -> str | None:
    # The last non-blank character before the closing parenthesis; None when a comment
    # may sit between (not worth a tokenizer here: such calls are left unedited).
    number, text = line, lines[line - 1][:column]
    while True:
        stripped = text.rstrip()
        if "#" in stripped:
            return None
        if stripped:
            return stripped[-1]
        number -= 1
        if number < 1:
            return None
        text = lines[number - 1]


def apply_fixes(text: str, findings: Iterable[Finding]) -> tuple[str, int]:
    """``text`` with every finding's edit applied, and how many were applied."""
    lines = text.splitlines(keepends=True)
    edits = sorted({f.fix for f in findings if f.fix is not None}, reverse=True)
    for line, column, insert in edits:
        current = lines[line - 1]
        lines[line - 1] = current[:column] + insert + current[column:]
    return "".join(lines), len(edits)


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff of one file's edits, as ``git diff`` shows them."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )

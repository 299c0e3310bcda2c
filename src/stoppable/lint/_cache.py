"""A cache of results keyed by file content, so an unchanged file costs nothing twice.

An entry's key is the sha256 of: the checker's own source (any change to the rule drops
the whole cache), the configuration, the file's path and module name, and the file's
content. An entry also lists the sibling modules whose imports the result used
(re-exports) with their content digests, and is ignored when one of them changed. Entries
are small JSON files written atomically, so concurrent runs (pre-commit, an editor, CI)
never read a torn one; the worst a race costs is a second check of the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stoppable.lint._api import FileResult, Finding
    from stoppable.lint._config import Config

__all__ = ["Cache", "default_cache_dir"]

CACHE_DIR_NAME = ".stoppable_lint_cache"


def default_cache_dir(config: Config) -> Path:
    """Beside the configuration's ``pyproject.toml``, or in the current folder."""
    return (config.root or Path.cwd()) / CACHE_DIR_NAME


@lru_cache(maxsize=1)
def _code_digest() -> str:
    digest = hashlib.sha256()
    folder = Path(__file__).parent
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _file_digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


class Cache:
    """Results of earlier runs, one JSON file per checked file version."""

    def __init__(self, folder: str | os.PathLike[str], config: Config) -> None:
        self.folder = Path(folder)
        self._salt = f"{_code_digest()}\0{config!r}\0"
        self._ready = False

    def _key(self, path: str, digest: str) -> Path:
        text = f"{self._salt}{os.path.abspath(path)}\0{digest}"
        name = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        return self.folder / name[:2] / name

    def get(self, path: str) -> FileResult | None:
        """The stored result for the file's current content, or None."""
        from stoppable.lint._api import FileResult

        digest = _file_digest(path)
        if digest is None:
            return None
        try:
            data = json.loads(self._key(path, digest).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        for dep, dep_digest in data["deps"]:
            if _file_digest(dep) != dep_digest:
                return None
        return FileResult(
            path,
            [_finding(path, item) for item in data["findings"]],
            [_finding(path, item) for item in data["failed"]],
            data["lines"],
            digest,
            tuple((dep, dep_digest) for dep, dep_digest in data["deps"]),
        )

    def put(self, result: FileResult) -> None:
        """Store a result (files that could not be read are not stored)."""
        if not result.digest:
            return
        self._prepare()
        target = self._key(result.path, result.digest)
        payload = {
            "findings": [_row(f) for f in result.findings],
            "failed": [_row(f) for f in result.failed],
            "lines": result.lines,
            "deps": [list(dep) for dep in result.deps],
        }
        with contextlib.suppress(OSError):
            target.parent.mkdir(exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
            os.replace(temp, target)

    def flush(self) -> None:
        """Nothing is buffered; kept so callers need not know that."""

    def _prepare(self) -> None:
        if self._ready:
            return
        self._ready = True
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            tag = self.folder / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
                (self.folder / ".gitignore").write_text("*\n")


def _finding(path: str, item: list[Any]) -> Finding:
    from stoppable.lint._api import Finding

    line, column, end_line, end_column, code, message, fix = item
    edit = (int(fix[0]), int(fix[1]), str(fix[2])) if isinstance(fix, list) else None
    return Finding(
        path, int(line), int(column), int(end_line), int(end_column), str(code), str(message), edit
    )


def _row(finding: Finding) -> list[object]:
    return [
        finding.line,
        finding.column,
        finding.end_line,
        finding.end_column,
        finding.code,
        finding.message,
        finding.fix,
    ]

"""One level of same-package re-exports: ``from .compat import urlopen``.

A package often gathers its imports in one module (``compat.py``) and the rest of the
package imports them from there. The checker reads only one module at a time, so such a
name would be unknown. This resolver reads the sibling module's own imports (its top
level, ``try``/``if`` blocks included; nothing else), so ``urlopen`` resolves to
``urllib.request.urlopen``. It never follows a second level, and it records the files it
read so the cache can tell when a result depends on them.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from functools import lru_cache

__all__ = ["SiblingResolver", "module_exports"]


class SiblingResolver:
    """Finds the modules of the package a file belongs to, and what they import."""

    __slots__ = ("_read", "_root", "_top")

    def __init__(self, path: str, module: str | None, is_package: bool) -> None:
        self._read: dict[str, str] = {}
        self._top: str | None = None
        self._root: str | None = None
        if not module or ("." not in module and not is_package):
            return
        package = module if is_package else module.rpartition(".")[0]
        folder = os.path.dirname(os.path.abspath(path))
        for _ in package.split("."):
            folder = os.path.dirname(folder)
        self._top = package.partition(".")[0]
        self._root = folder

    def exports(self, module: str) -> dict[str, str] | None:
        """What ``module`` binds by its imports (name to qualified name), if it is ours."""
        if self._root is None or self._top is None:
            return None
        if module != self._top and not module.startswith(self._top + "."):
            return None
        base = os.path.join(self._root, *module.split("."))
        for candidate, is_package in (
            (base + ".py", False),
            (os.path.join(base, "__init__.py"), True),
        ):
            if os.path.isfile(candidate):
                found = module_exports(candidate, module, is_package)
                if found is None:
                    return None
                names, digest = found
                self._read[candidate] = digest
                return names
        return None

    def deps(self) -> tuple[tuple[str, str], ...]:
        """The files read so far, with the sha256 of the content read."""
        return tuple(sorted(self._read.items()))


_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import|import)[ \t]", re.MULTILINE)


@lru_cache(maxsize=256)
def _exports_cached(
    path: str, module: str, is_package: bool, stamp: tuple[int, int]
) -> tuple[dict[str, str], str] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    package = module if is_package else module.rpartition(".")[0]
    names: dict[str, str] = {}
    # Only the import statements are parsed, each on its own (a whole-module parse would
    # cost as much as checking it). The first binding of a name wins: in ``try: from
    # urllib.request import urlopen / except ImportError: ...`` that is the Python 3 one.
    for match in _IMPORT_LINE.finditer(data):
        statement = _statement_at(data, match.start())
        try:
            tree = ast.parse(statement.strip())
        except (SyntaxError, ValueError, RecursionError):
            continue
        found: dict[str, str] = {}
        _collect(tree.body, package, found)
        for key, value in found.items():
            names.setdefault(key, value)
    return names, hashlib.sha256(data).hexdigest()


def _statement_at(data: bytes, start: int) -> bytes:
    # One logical line: up to the newline that closes every parenthesis opened.
    depth = 0
    index = start
    end = len(data)
    while index < end:
        char = data[index]
        if char == 0x28:  # (
            depth += 1
        elif char == 0x29:  # )
            depth -= 1
        elif char == 0x23:  # a comment runs to the end of the line
            newline = data.find(b"\n", index)
            index = end if newline < 0 else newline
            continue
        elif char == 0x0A and depth <= 0 and data[index - 1 : index] != b"\\":
            break
        index += 1
    return data[start:index].replace(b"\\\n", b" ")


def module_exports(path: str, module: str, is_package: bool) -> tuple[dict[str, str], str] | None:
    """The names a module binds by importing, and the sha256 of its source."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return _exports_cached(path, module, is_package, (info.st_mtime_ns, info.st_size))


def _collect(body: list[ast.stmt], package: str, names: dict[str, str]) -> None:
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level > 1:
                    parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Try):
            # ``try: from urllib.request import urlopen`` / ``except ImportError:``: the
            # first binding is the one Python 3 takes.
            before = dict(names)
            for block in (node.handlers, node.orelse, node.finalbody):
                for part in block:
                    _collect(
                        part.body if isinstance(part, ast.ExceptHandler) else [part], package, names
                    )
            _collect(node.body, package, names)
            for key, value in before.items():
                names.setdefault(key, value)
        elif isinstance(node, ast.If):
            _collect(node.orelse, package, names)
            _collect(node.body, package, names)

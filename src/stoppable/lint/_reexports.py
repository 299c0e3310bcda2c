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


@lru_cache(maxsize=256)
def _exports_cached(
    path: str, module: str, is_package: bool, stamp: tuple[int, int]
) -> tuple[dict[str, str], str] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        tree = ast.parse(data)
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None
    package = module if is_package else module.rpartition(".")[0]
    names: dict[str, str] = {}
    _collect(tree.body, package, names)
    return names, hashlib.sha256(data).hexdigest()


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

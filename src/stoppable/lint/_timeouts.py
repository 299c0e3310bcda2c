"""Where a call's timeout argument is, and whether a timeout expression bounds a wait.

Pure functions of the ``ast``: no names are resolved here (the judge does that).
"""

from __future__ import annotations

import ast


def find_arg(node: ast.Call, name: str, position: int | None) -> tuple[ast.expr | None, bool]:
    """The argument passed as ``name`` (or at ``position``), and whether it may be hidden.

    Hidden means a ``*args`` at or before the position, or a ``**mapping`` that is not a
    literal: the value is then unknown and counts as given.
    """
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value, False
    for keyword in node.keywords:
        if keyword.arg is None:
            found, unknown = _from_mapping(keyword.value, name)
            if unknown or found is not None:
                return found, unknown
    if position is not None:
        for index, arg in enumerate(node.args):
            if type(arg) is ast.Starred:
                return None, True
            if index == position:
                return arg, False
    return None, False


def _from_mapping(value: ast.expr, name: str) -> tuple[ast.expr | None, bool]:
    if isinstance(value, ast.Dict):
        found = None
        for key, item in zip(value.keys, value.values, strict=True):
            if key is None or not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                return None, True
            if key.value == name:
                found = item
        return found, False
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
        if value.args:
            return None, True
        for keyword in value.keywords:
            if keyword.arg is None:
                return None, True
            if keyword.arg == name:
                return keyword.value, False
        return None, False
    return None, True


def literal_bool(node: ast.expr) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
        return bool(node.value)
    return None


def nonpositive(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value <= 0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    return False


def is_none(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def httpx_timeout(call: ast.Call) -> str | None:
    # httpx.Timeout(default, *, connect, read, write, pool): unset parts take the default.
    parts = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    default = call.args[0] if call.args else parts.get("timeout")
    for part in ("connect", "read", "write", "pool"):
        value = parts.get(part, default)
        if is_none(value):
            return f"httpx.Timeout with {part}=None"
    return None


def urllib3_timeout(call: ast.Call) -> str | None:
    # urllib3.Timeout(total=None, connect=DEFAULT, read=DEFAULT): DEFAULT is the socket
    # default, which is no timeout unless socket.setdefaulttimeout() was called.
    parts = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    names = ("total", "connect", "read")
    for index, arg in enumerate(call.args[:3]):
        parts[names[index]] = arg
    total = parts.get("total")
    if total is not None and not is_none(total):
        return None
    for part in ("connect", "read"):
        value = parts.get(part)
        if value is None:
            return f"urllib3.Timeout without total or {part}"
        if is_none(value):
            return f"urllib3.Timeout with {part}=None"
    return None


def literal_zero(node: ast.expr) -> bool:
    """Whether ``node`` is the literal ``0`` (or ``0.0``)."""
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
        and node.value == 0
    )

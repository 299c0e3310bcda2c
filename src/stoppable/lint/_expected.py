"""What a test expects of a call, and what makes a call provably end at once.

Pure functions over the ``ast``, used by the checker's statement walk:

- ``with pytest.raises(E):`` (or ``assertRaises``) says how the test expects the calls
  inside to end. When ``E`` means refused input (``ValueError``, ``Invalid*``...), the
  error comes while the call checks its arguments, before any wait. When ``E`` means a
  refused connection and the target is a loopback address, the connect is answered at
  once: on loopback the kernel either queues the connection or refuses it, there is no
  network to wait for. ``E`` may be a parameter of the test, read from its
  ``@pytest.mark.parametrize`` values.
- A ``connect()`` to a loopback address literal completes or is refused at once.
- A child asked only for ``--version`` prints it and exits.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

#: Exceptions that mean "refused as invalid input": raised before any waiting starts.
_INVALID_INPUT = frozenset({"ValueError", "TypeError"})
_INVALID_PREFIXES = ("Invalid", "Missing")
#: Exceptions that mean "the connection was refused" (requests, urllib3, the builtins).
_REFUSED_SUFFIXES = ("ConnectionError", "ProxyError", "ConnectionRefusedError")
_RAISES = frozenset({"raises", "assertRaises", "assertRaisesRegex"})
#: A loopback host in a URL or address string: ``localhost``, ``127.x.x.x``, ``[::1]``.
_LOOPBACK = re.compile(
    r"(?:^|//|@)(?:localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)(?=$|[:/])", re.IGNORECASE
)

#: Expected-error kinds.
INVALID = "invalid"
REFUSED = "refused"


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return getattr(node, "id", "")


def parametrized(func: ast.FunctionDef | ast.AsyncFunctionDef | None) -> dict[str, list[ast.expr]]:
    """The values of each ``@pytest.mark.parametrize`` argument of a test function."""
    values: dict[str, list[ast.expr]] = {}
    if func is None:
        return values
    for decorator in func.decorator_list:
        if not (
            isinstance(decorator, ast.Call)
            and _name(decorator.func) == "parametrize"
            and len(decorator.args) >= 2
        ):
            continue
        names_node, rows = decorator.args[0], decorator.args[1]
        if isinstance(names_node, ast.Constant) and isinstance(names_node.value, str):
            names = [n.strip() for n in names_node.value.split(",") if n.strip()]
        elif isinstance(names_node, (ast.List, ast.Tuple)):
            names = [
                e.value
                for e in names_node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
        else:
            continue
        if not isinstance(rows, (ast.List, ast.Tuple)) or not names:
            continue
        for row in rows.elts:
            if isinstance(row, ast.Call) and _name(row.func) == "param":
                items = list(row.args)
            elif len(names) > 1 and isinstance(row, (ast.Tuple, ast.List)):
                items = list(row.elts)
            else:
                items = [row]
            for index, name in enumerate(names):
                if index < len(items):
                    values.setdefault(name, []).append(items[index])
    return values


def expected_kind(
    node: ast.expr, func: ast.FunctionDef | ast.AsyncFunctionDef | None
) -> tuple[str | None, frozenset[str] | None]:
    """``INVALID`` or ``REFUSED`` when ``node`` is a ``raises(E)`` that expects that.

    With ``E`` a test parameter, also the names of the other parameters: the invalid
    value the test pairs with the error. A call is refused before any I/O only if that
    value is its own argument: ``requests.get(url)``, not ``requests.get(server,
    params={"url": url})``, which waits for the server before the bad redirect fails.
    """
    if not isinstance(node, ast.Call) or not node.args or _name(node.func) not in _RAISES:
        return None, None
    expected = node.args[0]
    errors = list(expected.elts) if isinstance(expected, ast.Tuple) else [expected]
    params: dict[str, list[ast.expr]] | None = None
    companions: frozenset[str] | None = None
    names: list[str] = []
    for error in errors:
        if isinstance(error, ast.Name):
            if params is None:
                params = parametrized(func)
            if error.id in params:
                # ``pytest.raises(exception)`` with ``exception`` a test parameter.
                names.extend(_name(value) for value in params[error.id])
                companions = frozenset(params) - {error.id}
                continue
        names.append(_name(error))
    if not names or not all(names):
        return None, None
    if all(n in _INVALID_INPUT or n.startswith(_INVALID_PREFIXES) for n in names):
        return INVALID, companions
    if all(n.endswith(_REFUSED_SUFFIXES) for n in names):
        return REFUSED, None
    return None, None


def passes_any(node: ast.Call, names: frozenset[str]) -> bool:
    """Whether one of ``names`` is an argument of the call itself."""
    values = (*node.args, *(k.value for k in node.keywords))
    return any(isinstance(v, ast.Name) and v.id in names for v in values)


def mentions_loopback(node: ast.AST, strings: Callable[[str], str | None]) -> bool:
    """Whether a URL or host string naming a loopback address is in ``node``.

    ``strings`` gives the value of a name bound to a string constant (or None).
    """
    for sub in ast.walk(node):
        text: str | None = None
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            text = sub.value
        elif isinstance(sub, ast.Name):
            text = strings(sub.id)
        if text is not None and _LOOPBACK.search(text):
            return True
    return False


def loopback_address(arg: ast.expr) -> bool:
    """``("127.0.0.1", port)`` and the like: an address literal on loopback."""
    if not isinstance(arg, ast.Tuple) or not arg.elts:
        return False
    host = arg.elts[0]
    return (
        isinstance(host, ast.Constant)
        and isinstance(host.value, str)
        and _LOOPBACK.fullmatch(host.value) is not None
    )


def version_only(node: ast.Call) -> bool:
    """``subprocess.run([tool, "--version"])``: a child that prints its version and exits."""
    if not node.args:
        return False
    argv = node.args[0]
    if not isinstance(argv, (ast.List, ast.Tuple)) or len(argv.elts) != 2:
        return False
    flag = argv.elts[1]
    return isinstance(flag, ast.Constant) and flag.value == "--version"


def makes_calls(func: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> bool:
    """Whether a function's body calls anything (one that does not cannot stall)."""
    body: list[ast.AST] = [func.body] if isinstance(func, ast.Lambda) else list(func.body)
    return any(isinstance(sub, ast.Call) for stmt in body for sub in ast.walk(stmt))

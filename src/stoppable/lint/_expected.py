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


#: Argument-less calls spelled like a wait: a loop holding one may never come round.
_WAIT_SPELLINGS = frozenset(
    {"join", "wait", "get", "acquire", "result", "recv", "recv_into", "accept", "communicate"}
)


def stop_signal(before: ast.stmt | None, receiver: ast.expr) -> str | None:
    """The attribute that ``before`` sets to tell the thread ``receiver`` to stop.

    ``t.shutdown = True`` or ``t.done.set()`` just before ``t.join()``.
    """
    target = ast.dump(receiver)
    if (
        type(before) is ast.Assign
        and len(before.targets) == 1
        and type(before.targets[0]) is ast.Attribute
        and ast.dump(before.targets[0].value) == target
        and isinstance(before.value, ast.Constant)
        and before.value.value is True
    ):
        return before.targets[0].attr
    if type(before) is ast.Expr and type(before.value) is ast.Call:
        func = before.value.func
        if (
            type(func) is ast.Attribute
            and func.attr == "set"
            and type(func.value) is ast.Attribute
            and ast.dump(func.value.value) == target
        ):
            return func.value.attr
    return None


def loop_stops_on(run: ast.FunctionDef | ast.AsyncFunctionDef, attr: str) -> bool:
    """Whether ``run()`` is one loop that ends once ``self.<attr>`` is set, never waiting.

    ``while not self.shutdown:``, ``while not self.done.wait(period):`` (or through a
    local ``wait = self.done.wait``), ``while not self.done.is_set():``; and nothing in
    ``run()`` spelled like an unbounded wait (an argument-less ``get()``, ``join()``...),
    so an iteration cannot hang and the join waits one iteration at most.
    """
    waits = {
        t.id
        for stmt in run.body
        if type(stmt) is ast.Assign
        for t in stmt.targets
        if type(t) is ast.Name and _is_self_attr(stmt.value, attr, ("wait", "is_set"))
    }
    loops = [s for s in run.body if type(s) is ast.While]
    if len(loops) != 1:
        return False
    test = loops[0].test
    if not (type(test) is ast.UnaryOp and type(test.op) is ast.Not):
        return False
    flag = test.operand
    if type(flag) is ast.Call:
        called = flag.func
        if not (
            (type(called) is ast.Name and called.id in waits)
            or _is_self_attr(called, attr, ("wait", "is_set"))
        ):
            return False
    elif not _is_self_attr(flag, attr, ()):
        return False
    for sub in ast.walk(run):
        if (
            type(sub) is ast.Call
            and type(sub.func) is ast.Attribute
            and sub.func.attr in _WAIT_SPELLINGS
            and not sub.args
            and not sub.keywords
        ):
            return False
    return True


def _is_self_attr(node: ast.expr, attr: str, methods: tuple[str, ...]) -> bool:
    """``self.<attr>``, or ``self.<attr>.<method>`` for one of ``methods``."""
    if methods:
        if not (type(node) is ast.Attribute and node.attr in methods):
            return False
        node = node.value
    return (
        type(node) is ast.Attribute
        and node.attr == attr
        and type(node.value) is ast.Name
        and node.value.id == "self"
    )

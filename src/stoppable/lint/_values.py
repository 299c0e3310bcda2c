"""The values the checker's interpreter computes, its scopes, and its raw findings.

``None`` is the unknown value; everything else is one of the classes here. Values that
stand for one object (an instance, a class of the module) compare by identity, since the
interpreter changes their state in place (a socket given a timeout stays bounded for
every name bound to it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stoppable.lint._rules import Site


@dataclass(frozen=True, slots=True)
class Sym:
    """An importable name: a module, class or function, known by its qualified name."""

    name: str


@dataclass(eq=False, slots=True)
class Inst:
    """An instance of a type (a known one, or a class of the module itself)."""

    type: str
    cls: UserClass | None = None
    #: Whether the checker saw the instance being made (so its state is known).
    origin: bool = True
    #: Whether a timeout bounds it (socket timeout, polled connection, ctor default).
    bounded: bool = False
    #: Whether a queue was made with a maxsize (its put() can block).
    maxsize: bool = False
    #: The ``self`` of a method being checked.
    selfref: bool = False
    #: Whether what it waits for is over already (a future of an executor whose ``with``
    #: block ended, a process just killed): a wait on it returns at once.
    done: bool = False
    #: A socket listening (``listen()``, ``create_server()``).
    listening: bool = False
    #: A listening socket this code itself connected to: ``accept()`` has a peer waiting.
    peer_ready: bool = False
    #: One end of a ``socketpair()``: a short write goes into the peer's buffer.
    pair: bool = False
    #: A socket ``select()`` just reported readable (inside ``if sock in readable:``).
    ready: bool = False
    #: For a list of instances (``threads = [Thread(...) ...]``): the element.
    items: Inst | None = None
    #: A client made without a timeout whose requests take their own (a urllib3 pool):
    #: its finding, reported once a request without a timeout goes through it.
    unused_client: Site | None = None
    #: The instance this one came from: the executor of a future, the socket of an
    #: address from ``getsockname()``.
    owner: Inst | None = None
    #: The ``maxsize`` a queue was made with (dumped), and whether anything was put yet.
    maxsize_expr: str | None = None
    put_seen: bool = False
    #: A client made for a loopback address (``HTTPConnectionPool("localhost")``).
    loopback: bool = False
    #: Inside ``with patch.object(inst, "meth", side_effect=...)``: its calls hit a mock.
    patched: bool = False
    #: A parameter annotated with its type (``listener: socket.socket``): made elsewhere.
    param: bool = False

    def copy(self) -> Inst:
        """A new instance in the same state (``dup()``, a function's annotated result)."""
        return Inst(
            self.type,
            self.cls,
            origin=self.origin,
            bounded=self.bounded,
            maxsize=self.maxsize,
            done=self.done,
            items=self.items,
            owner=self.owner,
            listening=self.listening,
            maxsize_expr=self.maxsize_expr,
            put_seen=self.put_seen,
            loopback=self.loopback,
        )


@dataclass(frozen=True, slots=True)
class Tup:
    """A tuple of values, for unpacking ``conn, addr = sock.accept()``."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class BoundMethod:
    """A method of an instance of a known type, not yet called."""

    inst: Inst
    name: str


@dataclass(eq=False, slots=True)
class UserFunc:
    """A function or method defined in the checked module."""

    returns: Value
    #: The ``def`` itself, for what a body returns when there is no annotation.
    node: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    #: The ``def`` (always).
    defn: ast.FunctionDef | ast.AsyncFunctionDef | None = None


@dataclass(eq=False, slots=True)
class UserClass:
    """A class defined in the checked module."""

    qualname: str
    #: The nearest known type among its bases (``class S(requests.Session)``).
    known: str | None
    bases: list[UserClass]
    methods: dict[str, UserFunc] = field(default_factory=dict)
    class_attrs: dict[str, Value] = field(default_factory=dict)
    attrs: dict[str, Value] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        """The known type it extends, or its own qualified name."""
        return self.known or self.qualname

    def mro(self) -> Iterator[UserClass]:
        """The class and its bases of the module, breadth first, each once."""
        seen: set[int] = set()
        stack = [self]
        while stack:
            cls = stack.pop(0)
            if id(cls) in seen:
                continue
            seen.add(id(cls))
            yield cls
            stack.extend(cls.bases)

    def defines(self, name: str) -> bool:
        """Whether the class or a base of the module defines method ``name``."""
        return any(name in cls.methods for cls in self.mro())


@dataclass(eq=False, slots=True)
class PendingAttr:
    """``obj.attr`` on an instance of a module class: resolved once the module is done."""

    cls: UserClass
    name: str


@dataclass(eq=False, slots=True)
class PendingMethod:
    """An attribute of a pending value."""

    recv: Value
    name: str


@dataclass(eq=False, slots=True)
class PendingCall:
    """The result of a call on a pending value."""

    node: ast.Call
    func: Value
    scope: Scope
    result: Value = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class _NoneValue:
    """The constant ``None``."""


@dataclass(frozen=True, slots=True)
class _Conflict:
    """An attribute assigned values of different types."""


NONE = _NoneValue()
CONFLICT = _Conflict()
MISSING = object()

Value = (
    Sym
    | Inst
    | Tup
    | BoundMethod
    | UserFunc
    | UserClass
    | PendingAttr
    | PendingMethod
    | PendingCall
    | _NoneValue
    | _Conflict
    | None
)
PENDING = (PendingAttr, PendingMethod, PendingCall)


@dataclass(eq=False, slots=True)
class Scope:
    """Names bound in a module, class body, function or comprehension."""

    parent: Scope | None
    is_module: bool = False
    is_class: bool = False
    #: A comprehension's own scope: the walrus binds in the scope around it.
    is_comp: bool = False
    vars: dict[str, Value] = field(default_factory=dict)


@dataclass(slots=True)
class RawFinding:
    """A finding before suppression: 0-based column, code and message."""

    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str
    #: Dropped at the end of the module if it turns out to set a default socket timeout.
    socket_default: bool = False
    #: Dropped if this module-level name (read as ``None``) is bound more than once.
    none_name: str | None = None
    #: ``--fix`` can add the timeout: "empty" for a call without arguments, "args" for
    #: one with some; "" when the call is not one it edits.
    fix_call: str = ""

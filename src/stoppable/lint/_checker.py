"""One walk over one module's ``ast``: resolve names, infer light types, judge calls.

Nothing here imports or runs the checked code. Resolution is a small abstract
interpreter over the standard ``ast``:

- imports bind *symbols* (``import requests as r`` makes ``r`` the symbol
  ``requests``; relative imports are made absolute from the file's package);
- calling a known constructor or factory makes an *instance* of a known type; calling a
  method looks the method up on that type and its parents;
- assignments, ``with ... as``, annotations (including strings and ``Optional``),
  ``self.x = ...`` in any method (resolved when the module is done, so the order of
  methods does not matter), return annotations of the module's own functions, and
  subclasses of known types carry those types along;
- module and class bodies run in order; function bodies run after the scope that
  defines them, the way Python runs them later, so they see the module's final names.

Anything the checker cannot resolve is *unknown*, and unknown is never a finding
(except in strict mode's STP201, which exists to list them).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stoppable.lint import _signatures as sig
from stoppable.lint._rules import SITE_RULES, Site, Status
from stoppable.lint._signatures import Spec

_DONTWAIT = "socket.MSG_DONTWAIT"

# ---------------------------------------------------------------------------
# Values. ``None`` is the unknown value; everything else is one of these.


class Sym:
    """An importable name: a module, class or function, known by its qualified name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Inst:
    """An instance of a type (a known one, or a class of the module itself)."""

    __slots__ = ("bounded", "cls", "maxsize", "origin", "selfref", "type")

    def __init__(
        self,
        type_name: str,
        cls: UserClass | None = None,
        *,
        origin: bool = True,
        bounded: bool = False,
        maxsize: bool = False,
        selfref: bool = False,
    ) -> None:
        self.type = type_name
        self.cls = cls
        # Whether the checker saw the instance being made (so its state is known).
        self.origin = origin
        # Whether a timeout bounds it (socket timeout, polled connection, ctor default).
        self.bounded = bounded
        # Whether a queue was made with a maxsize (its put() can block).
        self.maxsize = maxsize
        # The ``self`` of a method being checked.
        self.selfref = selfref

    def copy(self) -> Inst:
        return Inst(
            self.type, self.cls, origin=self.origin, bounded=self.bounded, maxsize=self.maxsize
        )


class Tup:
    """A tuple of values, for unpacking ``conn, addr = sock.accept()``."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Value, ...]) -> None:
        self.items = items


class BoundMethod:
    """A method of an instance of a known type, not yet called."""

    __slots__ = ("inst", "name")

    def __init__(self, inst: Inst, name: str) -> None:
        self.inst = inst
        self.name = name


class UserFunc:
    """A function or method defined in the checked module."""

    __slots__ = ("returns",)

    def __init__(self, returns: Value) -> None:
        self.returns = returns


class UserClass:
    """A class defined in the checked module."""

    __slots__ = ("attrs", "bases", "class_attrs", "known", "methods", "qualname")

    def __init__(self, qualname: str, known: str | None, bases: list[UserClass]) -> None:
        self.qualname = qualname
        # The nearest known type among its bases (``class S(requests.Session)``).
        self.known = known
        self.bases = bases
        self.methods: dict[str, UserFunc] = {}
        self.class_attrs: dict[str, Value] = {}
        self.attrs: dict[str, Value] = {}

    @property
    def type_name(self) -> str:
        return self.known or self.qualname

    def mro(self) -> Iterable[UserClass]:
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
        return any(name in cls.methods for cls in self.mro())


class PendingAttr:
    """``obj.attr`` on an instance of a module class: resolved once the module is done."""

    __slots__ = ("cls", "name")

    def __init__(self, cls: UserClass, name: str) -> None:
        self.cls = cls
        self.name = name


class PendingMethod:
    """An attribute of a pending value."""

    __slots__ = ("name", "recv")

    def __init__(self, recv: Value, name: str) -> None:
        self.recv = recv
        self.name = name


class PendingCall:
    """The result of a call on a pending value."""

    __slots__ = ("done", "func", "node", "result", "scope")

    def __init__(self, node: ast.Call, func: Value, scope: Scope) -> None:
        self.node = node
        self.func = func
        self.scope = scope
        self.result: Value = None
        self.done = False


class _NoneValue:
    """The constant ``None``."""

    __slots__ = ()


class _Conflict:
    """An attribute assigned values of different types."""

    __slots__ = ()


NONE = _NoneValue()
CONFLICT = _Conflict()
_MISSING = object()

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
_PENDING = (PendingAttr, PendingMethod, PendingCall)


class Scope:
    """Names bound in a module, class body, function or comprehension."""

    __slots__ = ("is_class", "is_comp", "is_module", "parent", "vars")

    def __init__(
        self,
        parent: Scope | None,
        *,
        is_module: bool = False,
        is_class: bool = False,
        is_comp: bool = False,
    ) -> None:
        self.vars: dict[str, Value] = {}
        self.parent = parent
        self.is_module = is_module
        self.is_class = is_class
        # A comprehension's own scope: the walrus binds in the scope around it.
        self.is_comp = is_comp


# ---------------------------------------------------------------------------
# Findings, as the checker produces them.


@dataclass(slots=True)
class RawFinding:
    """A finding before suppression: 0-based column, code and message."""

    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str
    # Dropped at the end of the module if it turns out to set a default socket timeout.
    socket_default: bool = False
    # Dropped if this module-level name (read as ``None``) is bound more than once.
    none_name: str | None = None


_BUILTIN_TYPES = frozenset(
    {
        "dict",
        "list",
        "str",
        "bytes",
        "bytearray",
        "set",
        "frozenset",
        "tuple",
        "int",
        "float",
        "complex",
        "bool",
        "object",
        "type",
        "memoryview",
        "range",
    }
)
_PROPERTY_DECORATORS = frozenset({"property", "cached_property"})
_OPTIONAL = frozenset({"typing.Optional", "typing_extensions.Optional"})
_UNION = frozenset({"typing.Union", "typing_extensions.Union"})
_UNWRAP_FIRST = frozenset(
    {
        "typing.Annotated",
        "typing_extensions.Annotated",
        "typing.ClassVar",
        "typing.Final",
        "typing_extensions.Final",
    }
)
_INFINITY = frozenset({"math.inf"})


class Checker:
    """Check one module. Make a new one per module; call :meth:`run` once."""

    def __init__(
        self,
        *,
        strict: bool = False,
        module: str | None = None,
        is_package: bool = False,
        blocking_calls: Mapping[str, Spec] | None = None,
        wrappers: Mapping[str, str] | None = None,
        assume_socket_default_timeout: bool = False,
        codes: frozenset[str] | None = None,
    ) -> None:
        self.strict = strict
        self.module = module
        self.package = module if is_package else (module.rpartition(".")[0] if module else None)
        self.assume_default = assume_socket_default_timeout
        self.functions = dict(sig.FUNCTIONS)
        self.methods: dict[str, dict[str, Spec]] = {k: dict(v) for k, v in sig.METHODS.items()}
        self.constructors = dict(sig.CONSTRUCTORS)
        self.user_types: set[str] = set()
        for name, spec in (blocking_calls or {}).items():
            self.functions[name] = spec
            owner, _, method = name.rpartition(".")
            self.methods.setdefault(owner, {})[method] = spec
            self.user_types.add(owner)
            if spec.kind == "client":
                self.constructors[name] = spec
        if wrappers:
            self.functions = sig.with_wrappers(self.functions, wrappers)
            self.constructors = sig.with_wrappers(self.constructors, wrappers)
            for type_name, specs in self.methods.items():
                prefixed = {f"{type_name}.{m}": s for m, s in specs.items()}
                updated = sig.with_wrappers(prefixed, wrappers)
                self.methods[type_name] = {k.rpartition(".")[2]: s for k, s in updated.items()}
        self.known_types = sig.KNOWN_TYPES | self.user_types
        self.codes = codes
        self.rules = tuple(
            r
            for r in SITE_RULES
            if (codes is None and (strict or not r.strict))
            or (codes is not None and r.code in codes)
        )
        self.findings: list[RawFinding] = []
        self.scope = Scope(None, is_module=True)
        self.module_scope = self.scope
        self.deferred: list[
            tuple[ast.FunctionDef | ast.AsyncFunctionDef, Scope, UserClass | None]
        ] = []
        self.pending: list[PendingCall] = []
        self.final = False
        self.default_timeout_set = False
        self.module_counts: dict[str, int] = {}
        self.class_stack: list[UserClass] = []
        self.awaited: ast.AST | None = None
        self.annotation_cache: dict[str, ast.expr | None] = {}
        self._stmt: dict[type, Callable[[Any], None]] = {
            ast.Expr: self.s_expr,
            ast.Assign: self.s_assign,
            ast.AnnAssign: self.s_annassign,
            ast.AugAssign: self.s_augassign,
            ast.Return: self.s_value,
            ast.If: self.s_if,
            ast.While: self.s_if,
            ast.For: self.s_for,
            ast.AsyncFor: self.s_for,
            ast.With: self.s_with,
            ast.AsyncWith: self.s_with,
            ast.Try: self.s_try,
            ast.FunctionDef: self.s_def,
            ast.AsyncFunctionDef: self.s_def,
            ast.ClassDef: self.s_class,
            ast.Import: self.s_import,
            ast.ImportFrom: self.s_importfrom,
            ast.Raise: self.s_raise,
            ast.Assert: self.s_assert,
            ast.Delete: self.s_delete,
            ast.Global: self.s_global,
            ast.Nonlocal: self.s_pass,
            ast.Pass: self.s_pass,
            ast.Break: self.s_pass,
            ast.Continue: self.s_pass,
            ast.Match: self.s_match,
        }
        try_star = getattr(ast, "TryStar", None)
        if try_star is not None:
            self._stmt[try_star] = self.s_try
        self._expr: dict[type, Callable[[Any], Value]] = {
            ast.Name: self.e_name,
            ast.Attribute: self.e_attribute,
            ast.Call: self.e_call,
            ast.Constant: self.e_constant,
            ast.Tuple: self.e_tuple,
            ast.List: self.e_elts,
            ast.Set: self.e_elts,
            ast.BinOp: self.e_binop,
            ast.BoolOp: self.e_boolop,
            ast.Compare: self.e_compare,
            ast.UnaryOp: self.e_unaryop,
            ast.Subscript: self.e_subscript,
            ast.Dict: self.e_dict,
            ast.JoinedStr: self.e_joinedstr,
            ast.FormattedValue: self.e_formatted,
            ast.IfExp: self.e_ifexp,
            ast.Starred: self.e_starred,
            ast.Lambda: self.e_lambda,
            ast.ListComp: self.e_comp,
            ast.SetComp: self.e_comp,
            ast.GeneratorExp: self.e_comp,
            ast.DictComp: self.e_comp,
            ast.NamedExpr: self.e_namedexpr,
            ast.Await: self.e_await,
            ast.Yield: self.e_yield,
            ast.YieldFrom: self.e_yield,
            ast.Slice: self.e_slice,
        }

    # -- driver -------------------------------------------------------------

    def run(self, tree: ast.Module) -> list[RawFinding]:
        """Check ``tree`` and return its findings in source order."""
        self.stmts(tree.body)
        index = 0
        while index < len(self.deferred):
            node, parent, cls = self.deferred[index]
            index += 1
            self.function_body(node, parent, cls)
        self.resolve_pending()
        findings = [f for f in self.findings if self.keep(f)]
        findings.sort(key=lambda f: (f.line, f.column, f.code))
        return findings

    def keep(self, finding: RawFinding) -> bool:
        if finding.socket_default and (self.default_timeout_set or self.assume_default):
            return False
        return not (
            finding.none_name is not None and self.module_counts.get(finding.none_name, 0) != 1
        )

    # -- statements ---------------------------------------------------------

    def stmts(self, body: list[ast.stmt]) -> None:
        handlers = self._stmt
        for node in body:
            handler = handlers.get(type(node))
            if handler is not None:
                handler(node)
            else:
                self.generic(node)

    def generic(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.stmt):
                self.stmts([child])

    def s_pass(self, node: ast.stmt) -> None:
        return

    def s_expr(self, node: ast.Expr) -> None:
        self.expr(node.value)

    def s_value(self, node: ast.Return) -> None:
        if node.value is not None:
            self.expr(node.value)

    def s_raise(self, node: ast.Raise) -> None:
        if node.exc is not None:
            self.expr(node.exc)
        if node.cause is not None:
            self.expr(node.cause)

    def s_assert(self, node: ast.Assert) -> None:
        self.expr(node.test)
        if node.msg is not None:
            self.expr(node.msg)

    def s_delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if not isinstance(target, ast.Name):
                self.expr(target)

    def s_global(self, node: ast.Global) -> None:
        # A name rebound from a function is no constant, whatever the module says.
        for name in node.names:
            self.module_counts[name] = self.module_counts.get(name, 0) + 2

    def s_assign(self, node: ast.Assign) -> None:
        value = self.expr(node.value)
        for target in node.targets:
            self.bind(target, value)

    def s_annassign(self, node: ast.AnnAssign) -> None:
        value: Value = self.expr(node.value) if node.value is not None else None
        if value is None or value is NONE or (isinstance(value, Inst) and self.unknown_type(value)):
            # ``q: queue.Queue = field(default_factory=queue.Queue)``: the annotation knows.
            annotated = self.annotation(node.annotation)
            if annotated is not None:
                value = annotated
        if node.value is None and not self.scope.is_class:
            # A bare annotation binds nothing at run time.
            if isinstance(node.target, ast.Attribute):
                self.bind(node.target, value)
            return
        self.bind(node.target, value)

    def s_augassign(self, node: ast.AugAssign) -> None:
        self.expr(node.value)
        if isinstance(node.target, ast.Name):
            self.set_name(node.target.id, None)
        else:
            self.expr(node.target)

    def s_if(self, node: ast.If | ast.While) -> None:
        self.expr(node.test)
        self.stmts(node.body)
        self.stmts(node.orelse)

    def s_for(self, node: ast.For | ast.AsyncFor) -> None:
        iterated = self.expr(node.iter)
        item: Value = None
        if isinstance(iterated, Inst) and iterated.type in sig.ITERATES:
            item = Inst(sig.ITERATES[iterated.type])
        self.bind(node.target, item)
        self.stmts(node.body)
        self.stmts(node.orelse)

    def s_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            value = self.expr(item.context_expr)
            if item.optional_vars is not None:
                # Known clients and pools return themselves from __enter__.
                self.bind(
                    item.optional_vars, value if isinstance(value, (Inst, *_PENDING)) else None
                )
        self.stmts(node.body)

    def s_try(self, node: ast.Try) -> None:
        self.stmts(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name:
                self.set_name(handler.name, None)
            self.stmts(handler.body)
        self.stmts(node.orelse)
        self.stmts(node.finalbody)

    def s_match(self, node: ast.Match) -> None:
        self.expr(node.subject)
        for case in node.cases:
            for sub in ast.walk(case.pattern):
                name = getattr(sub, "name", None) or getattr(sub, "rest", None)
                if isinstance(name, str):
                    self.set_name(name, None)
                if isinstance(sub, ast.expr):
                    self.expr(sub)
            if case.guard is not None:
                self.expr(case.guard)
            self.stmts(case.body)

    def s_import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.set_name(alias.asname, Sym(sig.canonical(alias.name)))
            else:
                top = alias.name.partition(".")[0]
                self.set_name(top, Sym(top))

    def s_importfrom(self, node: ast.ImportFrom) -> None:
        base = self.absolute(node.module, node.level)
        for alias in node.names:
            if alias.name == "*":
                for name in self.star_names(base):
                    self.set_name(name, Sym(sig.canonical(f"{base}.{name}")))
                continue
            self.set_name(alias.asname or alias.name, Sym(sig.canonical(f"{base}.{alias.name}")))

    def absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        if self.package is None:
            return "." * level + (module or "")
        parts = self.package.split(".") if self.package else []
        if level > 1:
            parts = parts[: len(parts) - (level - 1)]
        if module:
            parts.append(module)
        return ".".join(parts)

    def star_names(self, base: str) -> list[str]:
        prefix = base + "."
        names = set()
        for qual in (*self.functions, *self.known_types, *sig.RETURNS, *sig.ALIASES):
            if qual.startswith(prefix) and "." not in qual[len(prefix) :]:
                names.add(qual[len(prefix) :])
        return sorted(names)

    def s_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.expr(decorator)
        args = node.args
        for default in args.defaults:
            self.expr(default)
        for kw_default in args.kw_defaults:
            if kw_default is not None:
                self.expr(kw_default)
        returns = self.annotation(node.returns) if node.returns is not None else None
        func = UserFunc(returns)
        scope = self.scope
        cls = self.class_stack[-1] if scope.is_class and self.class_stack else None
        if cls is not None:
            decorators = {self.decorator_name(d) for d in node.decorator_list}
            if decorators & _PROPERTY_DECORATORS:
                cls.class_attrs[node.name] = returns
            else:
                cls.methods[node.name] = func
            parent = scope.parent or self.module_scope
            self.deferred.append((node, parent, None if "staticmethod" in decorators else cls))
            return
        self.set_name(node.name, func)
        self.deferred.append((node, scope, None))

    @staticmethod
    def decorator_name(node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        if isinstance(node, ast.Call):
            return Checker.decorator_name(node.func)
        return ""

    def function_body(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        parent: Scope,
        cls: UserClass | None,
    ) -> None:
        saved = self.scope
        scope = self.scope = Scope(parent)
        args = node.args
        params = [*args.posonlyargs, *args.args]
        first = True
        for arg in params:
            if first and cls is not None:
                first = False
                names = {self.decorator_name(d) for d in node.decorator_list}
                if "classmethod" in names:
                    scope.vars[arg.arg] = cls
                else:
                    scope.vars[arg.arg] = Inst(cls.type_name, cls, origin=False, selfref=True)
                continue
            first = False
            scope.vars[arg.arg] = self.annotation(arg.annotation) if arg.annotation else None
        for arg in args.kwonlyargs:
            scope.vars[arg.arg] = self.annotation(arg.annotation) if arg.annotation else None
        if args.vararg is not None:
            scope.vars[args.vararg.arg] = None
        if args.kwarg is not None:
            scope.vars[args.kwarg.arg] = None
        self.stmts(node.body)
        self.scope = saved

    def s_class(self, node: ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self.expr(decorator)
        known: str | None = None
        user_bases: list[UserClass] = []
        for base in node.bases:
            value = self.expr(base)
            if isinstance(value, Sym) and known is None:
                if value.name in self.known_types:
                    known = value.name
            elif isinstance(value, UserClass):
                user_bases.append(value)
                if known is None:
                    known = value.known
        for keyword in node.keywords:
            self.expr(keyword.value)
        qualname = f"{self.module}.{node.name}" if self.module else node.name
        cls = UserClass(qualname, known, user_bases)
        saved = self.scope
        self.scope = Scope(saved, is_class=True)
        self.class_stack.append(cls)
        self.stmts(node.body)
        self.class_stack.pop()
        for name, value in self.scope.vars.items():
            if not isinstance(value, UserFunc):
                cls.class_attrs.setdefault(name, value)
        self.scope = saved
        self.set_name(node.name, cls)

    # -- binding ------------------------------------------------------------

    def set_name(self, name: str, value: Value) -> None:
        scope = self.scope
        if value is NONE:
            # ``try: import x`` / ``except ImportError: x = None`` keeps the import.
            current = scope.vars.get(name)
            if current is not None and current is not NONE:
                value = current
        scope.vars[name] = value
        if scope.is_module:
            self.module_counts[name] = self.module_counts.get(name, 0) + 1

    def bind(self, target: ast.expr, value: Value) -> None:
        kind = type(target)
        if kind is ast.Name:
            self.set_name(target.id, value)  # type: ignore[attr-defined]
        elif kind is ast.Tuple or kind is ast.List:
            elts = target.elts  # type: ignore[attr-defined]
            if (
                isinstance(value, Tup)
                and len(value.items) == len(elts)
                and not any(isinstance(e, ast.Starred) for e in elts)
            ):
                for elt, item in zip(elts, value.items, strict=True):
                    self.bind(elt, item)
            else:
                for elt in elts:
                    self.bind(elt, None)
        elif kind is ast.Attribute:
            assert isinstance(target, ast.Attribute)
            base = self.expr(target.value)
            if isinstance(base, Inst) and base.selfref and base.cls is not None:
                self.set_attr(base.cls, target.attr, value)
        elif kind is ast.Subscript:
            assert isinstance(target, ast.Subscript)
            self.expr(target.value)
            self.expr(target.slice)
        elif kind is ast.Starred:
            assert isinstance(target, ast.Starred)
            self.bind(target.value, None)

    @staticmethod
    def set_attr(cls: UserClass, name: str, value: Value) -> None:
        old = cls.attrs.get(name, _MISSING)
        if old is _MISSING or old is NONE:
            cls.attrs[name] = value
        elif value is NONE or old is value or old is CONFLICT:
            return
        elif (
            isinstance(old, Inst)
            and isinstance(value, Inst)
            and old.type == value.type
            and old.cls is value.cls
        ):
            # Two makings of the same type: bounded if either is, judged if both were seen.
            old.bounded = old.bounded or value.bounded
            old.origin = old.origin and value.origin
            old.maxsize = old.maxsize or value.maxsize
        else:
            cls.attrs[name] = CONFLICT

    # -- expressions --------------------------------------------------------

    def expr(self, node: ast.expr) -> Value:
        handler = self._expr.get(type(node))
        if handler is not None:
            return handler(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
        return None

    def lookup(self, name: str) -> Value:
        scope: Scope | None = self.scope
        while scope is not None:
            value = scope.vars.get(name, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[return-value]
            scope = scope.parent
        return None

    def lookup_scope(self, name: str) -> Scope | None:
        scope: Scope | None = self.scope
        while scope is not None:
            if name in scope.vars:
                return scope
            scope = scope.parent
        return None

    def e_name(self, node: ast.Name) -> Value:
        return self.lookup(node.id)

    def e_constant(self, node: ast.Constant) -> Value:
        return NONE if node.value is None else None

    def e_attribute(self, node: ast.Attribute) -> Value:
        return self.getattr(self.expr(node.value), node.attr)

    def getattr(self, base: Value, name: str) -> Value:
        if base is None:
            return None
        kind = type(base)
        if kind is Sym:
            return Sym(sig.canonical(f"{base.name}.{name}"))  # type: ignore[union-attr]
        if kind is Inst:
            assert isinstance(base, Inst)
            cls = base.cls
            if cls is not None:
                for owner in cls.mro():
                    if name in owner.methods:
                        return owner.methods[name]
                for owner in cls.mro():
                    if name in owner.class_attrs:
                        return owner.class_attrs[name]
                if cls.known is not None and self.has_method(cls.known, name):
                    return BoundMethod(base, name)
                if self.final:
                    return self.instance_attr(cls, name)
                return PendingAttr(cls, name)
            return BoundMethod(base, name)
        if kind is UserClass:
            assert isinstance(base, UserClass)
            for owner in base.mro():
                if name in owner.class_attrs:
                    return owner.class_attrs[name]
            return None
        if kind in _PENDING:
            return PendingMethod(base, name)
        return None

    def has_method(self, type_name: str, name: str) -> bool:
        for owner in sig.lineage(type_name):
            specs = self.methods.get(owner)
            if specs is not None and name in specs:
                return True
        return sig.method_returns(type_name, name) is not None

    @staticmethod
    def instance_attr(cls: UserClass, name: str) -> Value:
        for owner in cls.mro():
            value = owner.attrs.get(name, _MISSING)
            if value is not _MISSING:
                return None if value is CONFLICT or value is NONE else value  # type: ignore[return-value]
        return None

    def e_tuple(self, node: ast.Tuple) -> Value:
        items = tuple(self.expr(elt) for elt in node.elts)
        if any(isinstance(elt, ast.Starred) for elt in node.elts):
            return None
        return Tup(items)

    def e_elts(self, node: ast.List | ast.Set) -> Value:
        for elt in node.elts:
            self.expr(elt)
        return None

    def e_binop(self, node: ast.BinOp) -> Value:
        left = self.expr(node.left)
        right = self.expr(node.right)
        if isinstance(node.op, ast.BitOr):
            # Flags combined with MSG_DONTWAIT stay non-blocking (PEEK_NOW = A | DONTWAIT).
            for side in (left, right):
                if isinstance(side, Sym) and side.name == _DONTWAIT:
                    return side
        return None

    def nonblocking_flags(self, node: ast.Call) -> bool:
        """Whether a socket call passes MSG_DONTWAIT: it cannot block in any mode."""
        for arg in (*node.args, *(kw.value for kw in node.keywords)):
            for sub in ast.walk(arg):
                if isinstance(sub, ast.Attribute) and sub.attr == "MSG_DONTWAIT":
                    return True
                if isinstance(sub, ast.Name):
                    value = self.lookup(sub.id)
                    if isinstance(value, Sym) and value.name == _DONTWAIT:
                        return True
        return False

    def e_boolop(self, node: ast.BoolOp) -> Value:
        for value in node.values:
            self.expr(value)
        return None

    def e_compare(self, node: ast.Compare) -> Value:
        self.expr(node.left)
        for comparator in node.comparators:
            self.expr(comparator)
        return None

    def e_unaryop(self, node: ast.UnaryOp) -> Value:
        self.expr(node.operand)
        return None

    def e_subscript(self, node: ast.Subscript) -> Value:
        value = self.expr(node.value)
        self.expr(node.slice)
        if isinstance(value, Tup) and isinstance(node.slice, ast.Constant):
            index = node.slice.value
            if isinstance(index, int) and not isinstance(index, bool):
                try:
                    return value.items[index]
                except IndexError:
                    return None
        return None

    def e_dict(self, node: ast.Dict) -> Value:
        for key in node.keys:
            if key is not None:
                self.expr(key)
        for value in node.values:
            self.expr(value)
        return None

    def e_joinedstr(self, node: ast.JoinedStr) -> Value:
        for value in node.values:
            if type(value) is not ast.Constant:
                self.expr(value)
        return None

    def e_formatted(self, node: ast.FormattedValue) -> Value:
        self.expr(node.value)
        if node.format_spec is not None:
            self.expr(node.format_spec)
        return None

    def e_ifexp(self, node: ast.IfExp) -> Value:
        self.expr(node.test)
        self.expr(node.body)
        self.expr(node.orelse)
        return None

    def e_starred(self, node: ast.Starred) -> Value:
        self.expr(node.value)
        return None

    def e_slice(self, node: ast.Slice) -> Value:
        for part in (node.lower, node.upper, node.step):
            if part is not None:
                self.expr(part)
        return None

    def e_lambda(self, node: ast.Lambda) -> Value:
        args = node.args
        for default in args.defaults:
            self.expr(default)
        for kw_default in args.kw_defaults:
            if kw_default is not None:
                self.expr(kw_default)
        saved = self.scope
        self.scope = Scope(saved)
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            self.scope.vars[arg.arg] = None
        if args.vararg is not None:
            self.scope.vars[args.vararg.arg] = None
        if args.kwarg is not None:
            self.scope.vars[args.kwarg.arg] = None
        self.expr(node.body)
        self.scope = saved
        return None

    def e_comp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> Value:
        saved = self.scope
        self.scope = Scope(saved, is_comp=True)
        for generator in node.generators:
            self.expr(generator.iter)
            self.bind(generator.target, None)
            for condition in generator.ifs:
                self.expr(condition)
        if isinstance(node, ast.DictComp):
            self.expr(node.key)
            self.expr(node.value)
        else:
            self.expr(node.elt)
        self.scope = saved
        return None

    def e_namedexpr(self, node: ast.NamedExpr) -> Value:
        value = self.expr(node.value)
        # The walrus binds in the enclosing function, even inside a comprehension.
        saved = self.scope
        while self.scope.is_comp and self.scope.parent is not None:
            self.scope = self.scope.parent
        self.set_name(node.target.id, value)
        self.scope = saved
        return value

    def e_await(self, node: ast.Await) -> Value:
        self.awaited = node.value
        self.expr(node.value)
        return None

    def e_yield(self, node: ast.Yield | ast.YieldFrom) -> Value:
        if node.value is not None:
            self.expr(node.value)
        return None

    # -- annotations --------------------------------------------------------

    def annotation(self, node: ast.expr | None) -> Value:
        """The instance an annotation describes, or unknown."""
        if node is None:
            return None
        kind = type(node)
        if kind is ast.Constant:
            text = node.value  # type: ignore[attr-defined]
            if not isinstance(text, str):
                return None
            if text not in self.annotation_cache:
                try:
                    parsed: ast.expr | None = ast.parse(text.strip(), mode="eval").body
                except SyntaxError:
                    parsed = None
                self.annotation_cache[text] = parsed
            return self.annotation(self.annotation_cache[text])
        if kind is ast.Name or kind is ast.Attribute:
            value = self.static(node)
            if isinstance(value, Sym):
                return Inst(value.name, origin=False)
            if isinstance(value, UserClass):
                return Inst(value.type_name, value, origin=False)
            if kind is ast.Name and value is None and node.id in _BUILTIN_TYPES:  # type: ignore[attr-defined]
                return Inst(f"builtins.{node.id}", origin=False)  # type: ignore[attr-defined]
            return None
        if kind is ast.Subscript:
            assert isinstance(node, ast.Subscript)
            head = self.static(node.value)
            head_name = head.name if isinstance(head, Sym) else ""
            inner = node.slice
            if head_name in _OPTIONAL:
                return self.annotation(inner)
            if head_name in _UNION and isinstance(inner, ast.Tuple):
                return self.union(inner.elts)
            if head_name in _UNWRAP_FIRST:
                first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
                return self.annotation(first)
            return self.annotation(node.value)
        if kind is ast.BinOp and isinstance(node.op, ast.BitOr):  # type: ignore[attr-defined]
            return self.union(self.flatten_union(node))
        return None

    def flatten_union(self, node: ast.expr) -> list[ast.expr]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return [*self.flatten_union(node.left), *self.flatten_union(node.right)]
        return [node]

    def union(self, members: list[ast.expr]) -> Value:
        rest = [m for m in members if not (isinstance(m, ast.Constant) and m.value is None)]
        return self.annotation(rest[0]) if len(rest) == 1 else None

    def static(self, node: ast.expr) -> Value:
        """Resolve a name or attribute chain without evaluating any call in it."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            base = self.static(node.value)
            if isinstance(base, Sym):
                return Sym(sig.canonical(f"{base.name}.{node.attr}"))
            if isinstance(base, UserClass):
                return self.getattr(base, node.attr)
        return None

    # -- calls --------------------------------------------------------------

    def e_call(self, node: ast.Call) -> Value:
        func = node.func
        awaited = self.awaited is node
        if type(func) is ast.Name and func.id == "getattr" and self.lookup("getattr") is None:
            return self.call_getattr(node)
        func_value = self.expr(func)
        for arg in node.args:
            self.expr(arg)
        for keyword in node.keywords:
            self.expr(keyword.value)
        return self.dispatch(node, func_value, awaited)

    def call_getattr(self, node: ast.Call) -> Value:
        values = [self.expr(arg) for arg in node.args]
        for keyword in node.keywords:
            self.expr(keyword.value)
        args = node.args
        if len(args) >= 2 and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
            return self.getattr(values[0], args[1].value)
        return None

    def static_or_none(self, node: ast.expr) -> Value:
        # The argument was already walked; look it up again without walking calls twice.
        if isinstance(node, (ast.Name, ast.Attribute)):
            value = self.static(node)
            if value is None and isinstance(node, ast.Attribute):
                return self.getattr(self.static_or_none(node.value), node.attr)
            return value
        return None

    def dispatch(self, node: ast.Call, func: Value, awaited: bool = False) -> Value:
        kind = type(func)
        if kind is Sym:
            assert isinstance(func, Sym)
            return self.call_symbol(node, func.name)
        if kind is BoundMethod:
            assert isinstance(func, BoundMethod)
            return self.call_method(node, func.inst, func.name, awaited)
        if kind is UserFunc:
            returns = func.returns  # type: ignore[union-attr]
            return returns.copy() if isinstance(returns, Inst) else returns
        if kind is UserClass:
            assert isinstance(func, UserClass)
            inst = Inst(func.type_name, func)
            if func.known is not None and not func.defines("__init__"):
                ctor = self.constructor(func.known)
                if ctor is not None:
                    self.judge(node, func.known, ctor, None)
                self.construct_into(inst, node, func.known, ctor)
            return inst
        if kind in _PENDING:
            if self.final:
                return None
            call = PendingCall(node, func, self.scope)
            self.pending.append(call)
            return call
        if func is None and self.strict and not awaited and isinstance(node.func, ast.Attribute):
            receiver = self.static_or_none(node.func.value)
            if receiver is None or (isinstance(receiver, Inst) and self.unknown_type(receiver)):
                self.unknown_call(node, node.func.attr)
        return None

    def unknown_type(self, inst: Inst) -> bool:
        return (
            inst.cls is None
            and inst.type not in self.known_types
            and not inst.type.startswith("builtins.")
        )

    def constructor(self, type_name: str) -> Spec | None:
        for owner in sig.lineage(type_name):
            spec = self.constructors.get(owner)
            if spec is not None:
                return spec
        return None

    def call_symbol(self, node: ast.Call, name: str) -> Value:
        spec = self.functions.get(name)
        if spec is not None:
            self.judge(node, name, spec, None)
        returns = sig.RETURNS.get(name)
        if returns is not None:
            return self.make_result(node, name, returns, None)
        inst = Inst(name)
        if name in self.known_types:
            ctor = self.constructor(name)
            if ctor is not None and spec is None:
                self.judge(node, name, ctor, None)
            self.construct_into(inst, node, name, ctor)
        # Any other callable of a module also makes an instance named after it, so the
        # methods a user configures on their own types resolve.
        return inst

    def construct_into(self, inst: Inst, node: ast.Call, type_name: str, ctor: Spec | None) -> None:
        if ctor is not None and ctor.kind == "client":
            status, _ = self.status(node, ctor)
            inst.bounded = status != "missing"
        position = sig.ctor_timeout_position(type_name)
        if position is not None:
            arg, unknown = find_arg(node, "timeout", position)
            inst.bounded = unknown or (arg is not None and self.unbounded(arg, ctor) is None)
        position = sig.maxsize_position(type_name)
        if position is not None:
            arg, unknown = find_arg(node, "maxsize", position)
            inst.maxsize = unknown or (arg is not None and not _nonpositive(arg))

    def call_method(self, node: ast.Call, inst: Inst, name: str, awaited: bool = False) -> Value:
        found = self.method(inst.type, name)
        cls = inst.cls
        if found is not None:
            _, spec = found
            if cls is not None and (cls.defines(name) or any(cls.defines(v) for v in spec.via)):
                return None
            self.judge(node, f"{inst.type}.{name}", spec, inst)
        elif self.strict and not awaited and self.unknown_type(inst):
            self.unknown_call(node, name)
        returns = sig.method_returns(inst.type, name)
        if returns is not None:
            return self.make_result(node, f"{inst.type}.{name}", returns, inst)
        return None

    def method(self, type_name: str, name: str) -> tuple[str, Spec] | None:
        for owner in sig.lineage(type_name):
            specs = self.methods.get(owner)
            if specs is not None:
                spec = specs.get(name)
                if spec is not None:
                    return owner, spec
        return None

    def make_result(
        self,
        node: ast.Call,
        name: str,
        returns: str | tuple[str | None, ...],
        inst: Inst | None,
    ) -> Value:
        if isinstance(returns, tuple):
            return Tup(tuple(Inst(item) if item else None for item in returns))
        if returns == "=self":
            return inst.copy() if inst is not None else None
        if returns == "=arg0":
            arg = self.static_or_none(node.args[0]) if node.args else None
            if isinstance(arg, Inst):
                return arg.copy()
            return Inst("socket.socket", origin=False)
        if returns == "=module":
            if node.args and isinstance(node.args[0], ast.Constant):
                module = node.args[0].value
                if isinstance(module, str) and not module.startswith("."):
                    return Sym(module)
            return None
        if returns.startswith("=module:"):
            return Sym(returns.partition(":")[2])
        result = Inst(returns)
        if name in sig.BOUNDED_RESULTS:
            result.bounded = True
        else:
            self.construct_into(result, node, returns, self.constructors.get(returns))
        return result

    # -- judging ------------------------------------------------------------

    def judge(self, node: ast.Call, qualname: str, spec: Spec, inst: Inst | None) -> None:
        status, why = self.status(node, spec)
        none_name = why.partition("\0")[2] or None
        why = why.partition("\0")[0]
        applies = True
        state = spec.state
        if state is not None:
            if inst is None:
                applies = False
            elif state == "bounded_queue":
                applies = inst.maxsize
            else:
                applies = inst.origin and not inst.bounded
        if (spec.effect is not None and inst is not None) or spec.effect == "default_timeout":
            self.apply_effect(spec, status, inst)
        if spec.kind == "wrap" and not self.strict:
            return
        site = Site(node, qualname, spec, status, why, applies)
        self.report(site, spec.socket_default, none_name)

    def apply_effect(self, spec: Spec, status: Status, inst: Inst | None) -> None:
        if spec.effect == "default_timeout":
            if status != "unbounded":
                self.default_timeout_set = True
        elif inst is not None:
            if spec.effect == "blocking_flag" or spec.kind == "setter":
                inst.bounded = status != "unbounded"
            else:
                inst.bounded = True

    def unknown_call(self, node: ast.Call, method: str) -> None:
        entry = sig.UNKNOWN_RECEIVER.get(method)
        if entry is None:
            return
        keywords, max_positional, wrapper = entry
        if len(node.args) > max_positional:
            return
        if any(kw.arg is None or kw.arg not in keywords for kw in node.keywords):
            return
        block = next((kw.value for kw in node.keywords if kw.arg in ("block", "blocking")), None)
        status: Status = (
            "nonblocking" if block is not None and _literal_bool(block) is False else "given"
        )
        spec = Spec("call", wrapper=wrapper)
        site = Site(node, method, spec, status, "", True, unknown_receiver=True)
        self.report(site, False, None)

    def report(self, site: Site, socket_default: bool, none_name: str | None) -> None:
        node = site.node
        for rule in self.rules:
            message = rule.format(site)
            if message is None:
                continue
            site.reported = True
            self.findings.append(
                RawFinding(
                    node.lineno,
                    node.col_offset,
                    node.end_lineno or node.lineno,
                    node.end_col_offset or node.col_offset,
                    rule.code,
                    message,
                    socket_default and rule.code in ("STP100", "STP102", "STP103"),
                    none_name if rule.code == "STP101" else None,
                )
            )

    def status(self, node: ast.Call, spec: Spec) -> tuple[Status, str]:
        """Where the call's timeout stands; ``why`` explains an unbounded one."""
        if spec.kind == "none" and spec.state == "socket" and self.nonblocking_flags(node):
            return "nonblocking", ""
        if spec.kind in ("none", "wrap"):
            return "given", ""
        arg, unknown = find_arg(node, spec.param, spec.position)
        if unknown:
            return "given", ""
        if spec.effect == "blocking_flag":
            flag = _literal_bool(arg) if arg is not None else None
            if flag is True:
                return "unbounded", "setblocking(True)"
            return "given", ""
        if spec.block is not None:
            block, block_unknown = find_arg(node, spec.block, spec.block_position)
            if block_unknown:
                return "given", ""
            if block is not None:
                flag = _literal_bool(block)
                if flag is False:
                    return "nonblocking", ""
                if arg is None:
                    if flag is True:
                        return "unbounded", f"{spec.block}=True with no timeout"
                    return "given", ""
        if arg is None:
            return "missing", ""
        why = self.unbounded(arg, spec)
        if why is None:
            return "given", ""
        return "unbounded", why

    def unbounded(self, arg: ast.expr, spec: Spec | None) -> str | None:
        """Why the timeout expression ``arg`` does not bound the wait, or None if it does."""
        param = spec.param if spec is not None and spec.param else "timeout"
        kind = type(arg)
        if kind is ast.Constant:
            value = arg.value  # type: ignore[attr-defined]
            if value is None:
                return f"{param}=None" if spec is None or spec.kind != "setter" else "None"
            if isinstance(value, float) and math.isinf(value):
                return "an infinite timeout"
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and value < 0
                and spec is not None
                and spec.negative_unbounded
            ):
                return f"{param}={value} waits forever"
            return None
        if kind is ast.UnaryOp:
            assert isinstance(arg, ast.UnaryOp)
            operand = arg.operand
            if (
                isinstance(arg.op, ast.USub)
                and isinstance(operand, ast.Constant)
                and isinstance(operand.value, (int, float))
                and spec is not None
                and spec.negative_unbounded
            ):
                return f"{param}=-{operand.value} waits forever"
            return None
        if kind is ast.Tuple or kind is ast.List:
            for elt in arg.elts:  # type: ignore[attr-defined]
                if isinstance(elt, ast.Constant) and elt.value is None:
                    return "a tuple holding None"
                if isinstance(elt, ast.Name) and self.lookup(elt.id) is NONE:
                    return f"a tuple holding {elt.id}, which is None" + self.none_tag(elt.id)
            return None
        if kind is ast.Name:
            name = arg.id  # type: ignore[attr-defined]
            if self.lookup(name) is NONE:
                return f"{name} is None" + self.none_tag(name)
            return None
        if kind is ast.Attribute:
            value = self.static(arg)
            if isinstance(value, Sym) and value.name in _INFINITY:
                return "an infinite timeout"
            return None
        if kind is ast.Call:
            return self.unbounded_call(arg)  # type: ignore[arg-type]
        return None

    def none_tag(self, name: str) -> str:
        # A module constant read from a function is only None if bound once.
        scope = self.lookup_scope(name)
        if scope is not None and scope.is_module and self.scope is not scope:
            return "\0" + name
        return ""

    def unbounded_call(self, arg: ast.Call) -> str | None:
        func = self.static(arg.func)
        if isinstance(arg.func, ast.Name) and arg.func.id == "float" and func is None:
            first = arg.args[0] if arg.args else None
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value.strip().lower().lstrip("+") in ("inf", "infinity")
            ):
                return "an infinite timeout"
            return None
        if not isinstance(func, Sym):
            return None
        if func.name == "httpx.Timeout":
            return _httpx_timeout(arg)
        if func.name == "urllib3.Timeout":
            return _urllib3_timeout(arg)
        return None

    # -- pending ------------------------------------------------------------

    def resolve(self, value: Value, depth: int = 0) -> Value:
        if depth > 8:
            return None
        kind = type(value)
        if kind is PendingAttr:
            assert isinstance(value, PendingAttr)
            return self.resolve(self.instance_attr(value.cls, value.name), depth + 1)
        if kind is PendingMethod:
            assert isinstance(value, PendingMethod)
            return self.getattr(self.resolve(value.recv, depth + 1), value.name)
        if kind is PendingCall:
            assert isinstance(value, PendingCall)
            return value.result
        return value

    def resolve_pending(self) -> None:
        self.final = True
        calls = self.pending
        # State changes first (settimeout, poll), wherever they sit in the class.
        mutators = [
            c
            for c in calls
            if isinstance(c.node.func, ast.Attribute) and c.node.func.attr in sig.MUTATORS
        ]
        for call in (*mutators, *calls):
            if call.done:
                continue
            call.done = True
            func = self.resolve(call.func)
            saved = self.scope
            self.scope = call.scope
            call.result = self.dispatch(call.node, func)
            self.scope = saved


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


def _literal_bool(node: ast.expr) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
        return bool(node.value)
    return None


def _nonpositive(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value <= 0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    return False


def _is_none(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _httpx_timeout(call: ast.Call) -> str | None:
    # httpx.Timeout(default, *, connect, read, write, pool): unset parts take the default.
    parts = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    default = call.args[0] if call.args else parts.get("timeout")
    for part in ("connect", "read", "write", "pool"):
        value = parts.get(part, default)
        if _is_none(value):
            return f"httpx.Timeout with {part}=None"
    return None


def _urllib3_timeout(call: ast.Call) -> str | None:
    # urllib3.Timeout(total=None, connect=DEFAULT, read=DEFAULT): DEFAULT is the socket
    # default, which is no timeout unless socket.setdefaulttimeout() was called.
    parts = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    names = ("total", "connect", "read")
    for index, arg in enumerate(call.args[:3]):
        parts[names[index]] = arg
    total = parts.get("total")
    if total is not None and not _is_none(total):
        return None
    for part in ("connect", "read"):
        value = parts.get(part)
        if value is None:
            return f"urllib3.Timeout without total or {part}"
        if _is_none(value):
            return f"urllib3.Timeout with {part}=None"
    return None

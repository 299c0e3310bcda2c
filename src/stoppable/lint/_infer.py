"""Value inference: names, attributes, annotations and the module's own classes.

The bottom layer of the checker. It knows the tables of known calls and types, the
scopes, and how a name, an attribute chain or an annotation resolves to a value
(:mod:`stoppable.lint._values`); it evaluates no call and judges nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from stoppable.lint import _signatures as sig
from stoppable.lint._presets import PRESETS
from stoppable.lint._reexports import SiblingResolver
from stoppable.lint._rules import SITE_RULES, Site
from stoppable.lint._signatures import Spec
from stoppable.lint._values import (
    CONFLICT,
    MISSING,
    NONE,
    PENDING,
    BoundMethod,
    Inst,
    PendingAttr,
    PendingCall,
    PendingMethod,
    RawFinding,
    Scope,
    Sym,
    UserClass,
    Value,
)

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


@dataclass(frozen=True, slots=True)
class _Tables:
    """The known calls and types for one configuration (presets, blocking calls, wrappers)."""

    functions: dict[str, Spec]
    methods: dict[str, dict[str, Spec]]
    constructors: dict[str, Spec]
    user_types: frozenset[str]
    known_types: frozenset[str]
    leaf_names: frozenset[str]


@lru_cache(maxsize=8)
def _tables(
    presets: tuple[str, ...],
    blocking_calls: tuple[tuple[str, Spec], ...],
    wrappers: tuple[tuple[str, str], ...],
) -> _Tables:
    # Built once per configuration, not once per module: copying the signature tables
    # for every file cost more than checking a small one.
    functions = dict(sig.FUNCTIONS)
    methods: dict[str, dict[str, Spec]] = {k: dict(v) for k, v in sig.METHODS.items()}
    constructors = dict(sig.CONSTRUCTORS)
    user_types: set[str] = set()
    for preset_name in presets:
        preset = PRESETS[preset_name]
        functions.update(preset.functions)
        constructors.update(preset.constructors)
        for type_name, specs in preset.methods.items():
            methods.setdefault(type_name, {}).update(specs)
        user_types |= preset.types()
    for name, spec in blocking_calls:
        functions[name] = spec
        owner, _, method = name.rpartition(".")
        methods.setdefault(owner, {})[method] = spec
        user_types.add(owner)
        if spec.kind == "client":
            constructors[name] = spec
    if wrappers:
        wrapping = dict(wrappers)
        functions = sig.with_wrappers(functions, wrapping)
        constructors = sig.with_wrappers(constructors, wrapping)
        for type_name, specs in methods.items():
            prefixed = {f"{type_name}.{m}": s for m, s in specs.items()}
            updated = sig.with_wrappers(prefixed, wrapping)
            methods[type_name] = {k.rpartition(".")[2]: s for k, s in updated.items()}
    known_types = sig.KNOWN_TYPES | user_types
    # Only a name that ends a known qualified name is worth a look in a sibling.
    leaf_names = sig.LEAF_NAMES | {name.rpartition(".")[2] for name in (*functions, *known_types)}
    return _Tables(functions, methods, constructors, frozenset(user_types), known_types, leaf_names)


class Inference:
    """The state of one module's check, and how names resolve to values."""

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
        presets: tuple[str, ...] = (),
        resolver: SiblingResolver | None = None,
    ) -> None:
        self.strict = strict
        self.resolver = resolver
        self.presets = frozenset(presets)
        self.module = module
        self.package = module if is_package else (module.rpartition(".")[0] if module else None)
        self.assume_default = assume_socket_default_timeout
        tables = _tables(
            tuple(presets), tuple((blocking_calls or {}).items()), tuple((wrappers or {}).items())
        )
        # Shared by every module checked with the same configuration: read, never written.
        self.functions = tables.functions
        self.methods = tables.methods
        self.constructors = tables.constructors
        self.user_types = tables.user_types
        self.known_types = tables.known_types
        self.leaf_names = tables.leaf_names
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
        #: The value each call argument evaluated to (by node id), for list.append().
        self.arg_values: dict[int, Value] = {}
        #: ``settimeout(None)`` calls waiting for a blocking call on the same socket.
        self.unbounded_setters: dict[Inst, list[tuple[Site, str | None]]] = {}
        #: ``lock.acquire()`` calls released in a ``finally`` (spelled-out ``with lock:``).
        self.released: set[int] = set()
        #: Inside ``pytest.raises(<invalid input>)``, ``(<refused connection>)``, and in
        #: a ``with`` whose arguments name a loopback address.
        #: (for invalid input: the test parameters one of which the call must pass, or
        #: None when any call inside is refused)
        self.invalid_input: list[frozenset[str] | None] = []
        self.refused_depth = 0
        self.loopback_depth = 0
        #: Module names bound to a string literal (for loopback URLs in constants).
        self.strings: dict[str, str] = {}
        #: The functions being walked, innermost last (for their test parameters).
        self.func_nodes: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        #: ``for _ in range(n): q.put(x)``: the put calls (by id) and ``n``, dumped.
        self.fill_loops: dict[int, str] = {}
        #: ``t.join()`` calls right after ``t.<attr> = True`` or ``t.<attr>.set()``.
        self.told_to_stop: dict[int, str] = {}
        self.setup()

    def setup(self) -> None:
        """Called once the state is made: the layers above add theirs here."""

    def string_constant(self, name: str) -> str | None:
        """The value of a module name bound once to a string literal."""
        if self.module_counts.get(name, 0) != 1:
            return None
        return self.strings.get(name)

    def lookup(self, name: str) -> Value:
        scope: Scope | None = self.scope
        while scope is not None:
            value = scope.vars.get(name, MISSING)
            if value is not MISSING:
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

    def static_or_none(self, node: ast.expr) -> Value:
        # The argument was already walked; look it up again without walking calls twice.
        if isinstance(node, (ast.Name, ast.Attribute)):
            value = self.static(node)
            if value is None and isinstance(node, ast.Attribute):
                return self.getattr(self.static_or_none(node.value), node.attr)
            return value
        return None

    def getattr(self, base: Value, name: str) -> Value:
        if base is None:
            return None
        kind = type(base)
        if kind is Sym:
            assert isinstance(base, Sym)
            return Sym(self.reexported(base.name, name))
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
        if kind in PENDING:
            return PendingMethod(base, name)
        return None

    def reexported(self, module: str, name: str) -> str:
        """``module.name``, through one level of re-export within the checked package."""
        qualname = sig.canonical(f"{module}.{name}")
        if (
            self.resolver is None
            or name not in self.leaf_names
            or qualname in self.functions
            or qualname in self.known_types
        ):
            return qualname
        exports = self.resolver.exports(module)
        if exports is not None and name in exports:
            return sig.canonical(exports[name])
        return qualname

    def has_method(self, type_name: str, name: str) -> bool:
        for owner in sig.lineage(type_name):
            specs = self.methods.get(owner)
            if specs is not None and name in specs:
                return True
        return sig.method_returns(type_name, name) is not None

    @staticmethod
    def instance_attr(cls: UserClass, name: str) -> Value:
        for owner in cls.mro():
            value = owner.attrs.get(name, MISSING)
            if value is not MISSING:
                return None if value is CONFLICT or value is NONE else value  # type: ignore[return-value]
        return None

    @staticmethod
    def set_attr(cls: UserClass, name: str, value: Value) -> None:
        old = cls.attrs.get(name, MISSING)
        if old is MISSING or old is NONE:
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

    def method(self, type_name: str, name: str) -> tuple[str, Spec] | None:
        for owner in sig.lineage(type_name):
            specs = self.methods.get(owner)
            if specs is not None:
                spec = specs.get(name)
                if spec is not None:
                    return owner, spec
        return None

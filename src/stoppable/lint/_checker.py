"""One walk over one module's ``ast``: the interpreter that drives inference and judging.

Nothing here imports or runs the checked code. Resolution is a small abstract
interpreter over the standard ``ast``, in four layers:

- :mod:`~stoppable.lint._infer` resolves names, attributes and annotations to values
  (:mod:`~stoppable.lint._values`): imports bind *symbols* (``import requests as r``
  makes ``r`` the symbol ``requests``; relative imports are made absolute from the
  file's package), annotations (strings, ``Optional``) and ``self.x = ...`` in any
  method (resolved when the module is done, so the order of methods does not matter)
  carry types along;
- :mod:`~stoppable.lint._judge` dispatches calls: calling a known constructor or factory
  makes an *instance* of a known type, calling a method looks it up on that type and its
  parents, and every known blocking call is judged by the rules;
- :mod:`~stoppable.lint._exprs` evaluates expressions and binds assignment targets;
- this module walks statements: module and class bodies run in order; function bodies
  run after the scope that defines them, the way Python runs them later, so they see the
  module's final names.

Anything the checker cannot resolve is *unknown*, and unknown is never a finding
(except in strict mode's STP201, which exists to list them).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, ClassVar

from stoppable.lint import _expected
from stoppable.lint import _signatures as sig
from stoppable.lint._exprs import Expressions
from stoppable.lint._values import (
    MISSING,
    NONE,
    PENDING,
    Inst,
    RawFinding,
    Scope,
    Sym,
    UserClass,
    UserFunc,
    Value,
)

__all__ = ["Checker", "RawFinding"]

_PROPERTY_DECORATORS = frozenset({"property", "cached_property"})
_TASK_DECORATORS = frozenset({"task", "shared_task"})
_EXECUTOR = "concurrent.futures.Executor"
#: What ``select.select()`` returns: lists of what is ready now.
_READY = "select.ready"


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught] if caught else []
    return any(
        getattr(n, "id", getattr(n, "attr", "")) in ("ImportError", "ModuleNotFoundError")
        for n in names
    )


def _method_call(stmt: ast.stmt | None, name: str) -> ast.Call | None:
    """The call in a statement ``x.name(...)``, if that is what the statement is."""
    if type(stmt) is not ast.Expr:
        return None
    call = stmt.value
    if type(call) is ast.Call and type(call.func) is ast.Attribute and call.func.attr == name:
        return call
    return None


class Checker(Expressions):
    """Check one module. Make a new one per module; call :meth:`run` once."""

    #: One handler per statement type (filled below, once for every checker).
    _stmt: ClassVar[dict[type, Callable[[Any, Any], None]]]

    def setup(self) -> None:
        """The state of the statement walk."""
        #: Values returned so far by each function body being walked (innermost last).
        self.returned: list[list[Value]] = []
        self.funcs: dict[int, UserFunc] = {}
        #: Every class of the module, to take apart once the module is checked.
        self.classes: list[UserClass] = []

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
        self.release()
        return findings

    def release(self) -> None:
        """Break the module's reference cycles, so its values and trees die at once.

        Instances point at their class, which holds them; a pending call's scope holds
        the call. Left to the cyclic collector, its passes cost a tenth of a run.
        """
        for cls in self.classes:
            cls.methods.clear()
            cls.class_attrs.clear()
            cls.attrs.clear()
            cls.bases.clear()
        for call in self.pending:
            call.scope.vars.clear()
            call.result = None
        for _, parent, _ in self.deferred:
            parent.vars.clear()
        self.module_scope.vars.clear()
        self.pending.clear()
        self.deferred.clear()
        self.funcs.clear()

    def keep(self, finding: RawFinding) -> bool:
        if finding.socket_default and (self.default_timeout_set or self.assume_default):
            return False
        return not (
            finding.none_name is not None and self.module_counts.get(finding.none_name, 0) != 1
        )

    def stmts(self, body: list[ast.stmt]) -> None:
        handlers = self._stmt
        for index, node in enumerate(body):
            if type(node) is ast.Try and node.finalbody:
                self.mark_released(node, body[index - 1] if index else None)
            join = _method_call(node, "join")
            if join is not None and index and not join.args and not join.keywords:
                # ``t.shutdown = True`` then ``t.join()``: judged with the thread's loop.
                attr = _expected.stop_signal(body[index - 1], join.func.value)  # type: ignore[attr-defined]
                if attr is not None:
                    self.told_to_stop[id(join)] = attr
        for node in body:
            handler = handlers.get(type(node))
            if handler is not None:
                handler(self, node)
            else:
                self.generic(node)

    def mark_released(self, node: ast.Try, before: ast.stmt | None) -> None:
        """``lock.acquire()`` then ``try: ... finally: lock.release()`` is ``with lock:``."""
        released = set()
        for stmt in node.finalbody:
            call = _method_call(stmt, "release")
            if call is not None:
                released.add(ast.dump(call.func.value))  # type: ignore[attr-defined]
        if not released:
            return
        for candidate in (before, node.body[0] if node.body else None):
            call = _method_call(candidate, "acquire")
            if (
                call is not None
                and not call.args
                and not call.keywords
                and ast.dump(call.func.value) in released  # type: ignore[attr-defined]
            ):
                self.released.add(id(call))

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
        value = self.expr(node.value) if node.value is not None else None
        if isinstance(value, Inst) and value.unused_client is not None:
            self.used_client(value)  # made for others to use: they may not pass one
        if self.returned:
            self.returned[-1].append(value)

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
        if (
            self.scope.is_module
            and type(node.value) is ast.Constant
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if type(target) is ast.Name:
                    self.strings[target.id] = node.value.value
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
        ready = self.reported_ready(node.test) if type(node) is ast.If else None
        if ready is not None:
            ready.ready = True
        self.stmts(node.body)
        if ready is not None:
            ready.ready = False
        self.stmts(node.orelse)

    def reported_ready(self, test: ast.expr) -> Inst | None:
        """``if sock in readable:`` after ``readable, _, _ = select.select(...)``."""
        if not (
            type(test) is ast.Compare
            and len(test.ops) == 1
            and type(test.ops[0]) is ast.In
            and type(test.comparators[0]) is ast.Name
        ):
            return None
        listed = self.lookup(test.comparators[0].id)
        if not (isinstance(listed, Inst) and listed.type == _READY):
            return None
        value = self.static_or_none(test.left)
        return value if isinstance(value, Inst) and sig.is_socket(value.type) else None

    def s_for(self, node: ast.For | ast.AsyncFor) -> None:
        iterated = self.expr(node.iter)
        fill = self.fill_count(node)
        if fill is not None:
            self.fill_loops[id(fill[0])] = fill[1]
        item: Value = None
        if isinstance(iterated, Inst) and iterated.type in sig.ITERATES:
            item = Inst(sig.ITERATES[iterated.type])
        elif isinstance(iterated, Inst) and iterated.items is not None:
            item = iterated.items
        self.bind(node.target, item)
        self.stmts(node.body)
        self.stmts(node.orelse)

    @staticmethod
    def fill_count(node: ast.For | ast.AsyncFor) -> tuple[ast.Call, str] | None:
        """``for _ in range(n): q.put(x)``: the put and ``n`` (dumped), if that is the loop."""
        it = node.iter
        if not (
            type(it) is ast.Call
            and type(it.func) is ast.Name
            and it.func.id == "range"
            and len(it.args) == 1
            and not it.keywords
            and len(node.body) == 1
            and not node.orelse
        ):
            return None
        call = _method_call(node.body[0], "put")
        return (call, ast.dump(it.args[0])) if call is not None else None

    def s_with(self, node: ast.With | ast.AsyncWith) -> None:
        entered = []
        for item in node.items:
            value = self.expr(item.context_expr)
            entered.append(value)
            if item.optional_vars is not None:
                # Known clients and pools return themselves from __enter__.
                self.bind(
                    item.optional_vars, value if isinstance(value, (Inst, *PENDING)) else None
                )
        expected = [_expected.expected_kind(i.context_expr, self.test_func()) for i in node.items]
        kinds = [kind for kind, _ in expected]
        invalid = _expected.INVALID in kinds
        if invalid:
            self.invalid_input.append(next(c for kind, c in expected if kind == _expected.INVALID))
        refused = _expected.REFUSED in kinds
        # ``with override_environ(http_proxy="http://localhost:1"):``, ``with
        # ProxyManager("http://localhost:9"):``: the calls inside go to a loopback address.
        loopback = any(
            kind is None and _expected.mentions_loopback(item.context_expr, self.string_constant)
            for kind, item in zip(kinds, node.items, strict=True)
        )
        patched = [p for p in map(self.patched_instance, node.items) if p is not None]
        for inst in patched:
            inst.patched = True
        self.refused_depth += refused
        self.loopback_depth += loopback
        self.stmts(node.body)
        if invalid:
            self.invalid_input.pop()
        self.refused_depth -= refused
        self.loopback_depth -= loopback
        for inst in patched:
            inst.patched = False
        for value in entered:
            if isinstance(value, Inst) and _EXECUTOR in sig.lineage(value.type):
                # The executor's __exit__ waited for every task: its futures are done.
                value.done = True

    def patched_instance(self, item: ast.withitem) -> Inst | None:
        """``with patch.object(pool, "_make_request", side_effect=Error()):``: ``pool``.

        A method of the very object replaced by a mock that raises: the calls on the
        object inside the block end in the mock, not on the network.
        """
        call = item.context_expr
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "object"
            and getattr(call.func.value, "id", getattr(call.func.value, "attr", "")) == "patch"
            and call.args
            and any(k.arg == "side_effect" for k in call.keywords)
        ):
            return None
        value = self.static_or_none(call.args[0])
        return value if isinstance(value, Inst) else None

    def test_func(self) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        return self.func_nodes[-1] if self.func_nodes else None

    def s_try(self, node: ast.Try) -> None:
        self.stmts(node.body)
        imported = {k: v for k, v in self.scope.vars.items() if isinstance(v, Sym)}
        for handler in node.handlers:
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name:
                self.set_name(handler.name, None)
            self.stmts(handler.body)
            if _catches_import_error(handler):
                # ``try: from threading import Thread`` / ``except ImportError: from
                # dummy_threading import Thread``: where the first import works (this
                # Python), it is the one that binds.
                for name, value in imported.items():
                    if isinstance(self.scope.vars.get(name), Sym):
                        self.scope.vars[name] = value
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
            self.set_name(alias.asname or alias.name, Sym(self.reexported(base, alias.name)))

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
        self.defaults(node.args)
        returns = self.annotation(node.returns) if node.returns is not None else None
        func = UserFunc(returns, node if node.returns is None else None, node)
        self.funcs[id(node)] = func
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
        if "celery" in self.presets and _TASK_DECORATORS & {
            self.decorator_name(d) for d in node.decorator_list
        }:
            self.set_name(node.name, Inst("celery.app.task.Task", origin=False))
        else:
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
            scope.vars[arg.arg] = self.param_value(arg)
        for arg in args.kwonlyargs:
            scope.vars[arg.arg] = self.param_value(arg)
        # ``def run(cmd, popen=subprocess.Popen)``: the default is what is called.
        defaults = [
            *zip(params[len(params) - len(args.defaults) :], args.defaults, strict=True),
            *((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d),
        ]
        for arg, default in defaults:
            if scope.vars.get(arg.arg) is None and type(default) in (ast.Name, ast.Attribute):
                value = self.static(default)
                if isinstance(value, Sym):
                    scope.vars[arg.arg] = value
        if args.vararg is not None:
            scope.vars[args.vararg.arg] = None
        if args.kwarg is not None:
            scope.vars[args.kwarg.arg] = None
        self.returned.append([])
        self.func_nodes.append(node)
        self.stmts(node.body)
        self.func_nodes.pop()
        values = self.returned.pop()
        func = self.funcs.get(id(node))
        if func is not None and func.node is not None and values:
            # No annotation: what every ``return`` gives, when they agree on one type.
            returned = values[0]
            if (
                isinstance(returned, Inst)
                and not returned.selfref
                and all(isinstance(v, Inst) and v.type == returned.type for v in values)
            ):
                func.returns = returned
        self.scope = saved

    def param_value(self, arg: ast.arg) -> Value:
        """What an annotated parameter holds: an instance its caller made."""
        value = self.annotation(arg.annotation) if arg.annotation else None
        if isinstance(value, Inst):
            value.param = True
        return value

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
        self.classes.append(cls)
        saved = self.scope
        self.scope = Scope(saved, is_class=True)
        self.class_stack.append(cls)
        self.stmts(node.body)
        self.class_stack.pop()
        for name, value in self.scope.vars.items():
            if not isinstance(value, UserFunc):
                cls.class_attrs.setdefault(name, value)
        self.scope = saved
        if known is not None and sig.REQUEST_HANDLERS & set(sig.lineage(known)):
            self.request_socket(cls)
        self.set_name(node.name, cls)

    def request_socket(self, cls: UserClass) -> None:
        """A socketserver handler's ``self.request``: the accepted connection.

        ``StreamRequestHandler.setup()`` gives it the class's ``timeout`` when that is
        set (to anything but None); otherwise it has none, like any accepted socket.
        """
        timeout = MISSING
        for owner in cls.mro():
            if "timeout" in owner.class_attrs:
                timeout = owner.class_attrs["timeout"]
                break
        stream = "socketserver.StreamRequestHandler" in sig.lineage(cls.type_name)
        bounded = stream and timeout is not MISSING and timeout is not NONE
        cls.attrs.setdefault("request", Inst("socket.socket", bounded=bounded))

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


# The dispatch tables, made once: plain functions, called with the checker.
Checker._stmt = {
    ast.Expr: Checker.s_expr,
    ast.Assign: Checker.s_assign,
    ast.AnnAssign: Checker.s_annassign,
    ast.AugAssign: Checker.s_augassign,
    ast.Return: Checker.s_value,
    ast.If: Checker.s_if,
    ast.While: Checker.s_if,
    ast.For: Checker.s_for,
    ast.AsyncFor: Checker.s_for,
    ast.With: Checker.s_with,
    ast.AsyncWith: Checker.s_with,
    ast.Try: Checker.s_try,
    ast.FunctionDef: Checker.s_def,
    ast.AsyncFunctionDef: Checker.s_def,
    ast.ClassDef: Checker.s_class,
    ast.Import: Checker.s_import,
    ast.ImportFrom: Checker.s_importfrom,
    ast.Raise: Checker.s_raise,
    ast.Assert: Checker.s_assert,
    ast.Delete: Checker.s_delete,
    ast.Global: Checker.s_global,
    ast.Nonlocal: Checker.s_pass,
    ast.Pass: Checker.s_pass,
    ast.Break: Checker.s_pass,
    ast.Continue: Checker.s_pass,
    ast.Match: Checker.s_match,
}
_TRY_STAR = getattr(ast, "TryStar", None)
if _TRY_STAR is not None:
    Checker._stmt[_TRY_STAR] = Checker.s_try

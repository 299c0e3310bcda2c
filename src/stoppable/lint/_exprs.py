"""The expression half of the interpreter: what an expression evaluates to, and binding.

Every ``e_*`` method evaluates one kind of expression to a value
(:mod:`~stoppable.lint._values`), walking its parts so every call inside is judged;
``bind`` gives a value to an assignment target. Statements live in
:mod:`~stoppable.lint._checker`, calls and their judgement in
:mod:`~stoppable.lint._judge`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, ClassVar

from stoppable.lint._judge import DONTWAIT, Judge
from stoppable.lint._values import (
    NONE,
    Inst,
    Scope,
    Sym,
    Tup,
    Value,
)

#: What ``sock.getsockname()`` returns: an address that still names its socket.
ADDRESS = "socket.address"


class Expressions(Judge):
    """Expressions and assignment targets."""

    #: One handler per expression type (filled below, once for every checker).
    _expr: ClassVar[dict[type, Callable[[Any, Any], Value]]]

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
                # ``host, port = listener.getsockname()[:2]``: both name the address.
                address = value if isinstance(value, Inst) and value.type == ADDRESS else None
                for elt in elts:
                    self.bind(elt, address)
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

    def expr(self, node: ast.expr) -> Value:
        kind = type(node)
        # Names and constants are half of all expressions: no dispatch for them.
        if kind is ast.Name:
            return self.lookup(node.id)  # type: ignore[attr-defined]
        if kind is ast.Constant:
            return NONE if node.value is None else None  # type: ignore[attr-defined]
        handler = self._expr.get(kind)
        if handler is not None:
            return handler(self, node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
        return None

    def e_name(self, node: ast.Name) -> Value:
        return self.lookup(node.id)

    def e_constant(self, node: ast.Constant) -> Value:
        return NONE if node.value is None else None

    def e_attribute(self, node: ast.Attribute) -> Value:
        return self.getattr(self.expr(node.value), node.attr)

    def e_tuple(self, node: ast.Tuple) -> Value:
        items = tuple(self.expr(elt) for elt in node.elts)
        if any(isinstance(elt, ast.Starred) for elt in node.elts):
            return None
        return Tup(items)

    def e_elts(self, node: ast.List | ast.Set) -> Value:
        values = [self.expr(elt) for elt in node.elts]
        if type(node) is not ast.List:
            return None
        # A list of instances of one type, or an empty list to append them to.
        first = values[0] if values else None
        if values and not (
            isinstance(first, Inst)
            and all(isinstance(v, Inst) and v.type == first.type for v in values)
        ):
            return None
        return Inst("builtins.list", items=first if isinstance(first, Inst) else None)

    def e_binop(self, node: ast.BinOp) -> Value:
        # ``'s' + 's' + ...`` nests one BinOp per term down the left side: walk that
        # spine in a loop, so a long sum costs no recursion.
        spine = [node]
        while type(spine[-1].left) is ast.BinOp:
            spine.append(spine[-1].left)
        value = self.expr(spine[-1].left)
        for op in reversed(spine):
            right = self.expr(op.right)
            value = self.combine(op, value, right)
        return value

    @staticmethod
    def combine(node: ast.BinOp, left: Value, right: Value) -> Value:
        if isinstance(node.op, ast.BitOr):
            # Flags combined with MSG_DONTWAIT stay non-blocking (PEEK_NOW = A | DONTWAIT).
            for side in (left, right):
                if isinstance(side, Sym) and side.name == DONTWAIT:
                    return side
        return None

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
        if isinstance(value, Inst) and value.type == ADDRESS:
            return value  # a part of a listener's address still names that listener
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

    def defaults(self, args: ast.arguments) -> None:
        """Walk a signature's default values (they run where the function is made)."""
        for default in args.defaults:
            self.expr(default)
        for kw_default in args.kw_defaults:
            if kw_default is not None:
                self.expr(kw_default)

    def e_lambda(self, node: ast.Lambda) -> Value:
        args = node.args
        self.defaults(args)
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
        element: Value = None
        if isinstance(node, ast.DictComp):
            self.expr(node.key)
            self.expr(node.value)
        else:
            element = self.expr(node.elt)
        self.scope = saved
        if isinstance(element, Inst) and not isinstance(node, ast.DictComp):
            return Inst("builtins.list", items=element)
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

    def e_call(self, node: ast.Call) -> Value:
        func = node.func
        awaited = self.awaited is node
        if type(func) is ast.Name and func.id == "getattr" and self.lookup("getattr") is None:
            return self.call_getattr(node)
        func_value = self.expr(func)
        for arg in node.args:
            value = self.expr(arg)
            if value is not None:
                self.arg_values[id(arg)] = value
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


# The dispatch table, made once: plain functions, called with the checker.
Expressions._expr = {
    ast.Name: Expressions.e_name,
    ast.Attribute: Expressions.e_attribute,
    ast.Call: Expressions.e_call,
    ast.Constant: Expressions.e_constant,
    ast.Tuple: Expressions.e_tuple,
    ast.List: Expressions.e_elts,
    ast.Set: Expressions.e_elts,
    ast.BinOp: Expressions.e_binop,
    ast.BoolOp: Expressions.e_boolop,
    ast.Compare: Expressions.e_compare,
    ast.UnaryOp: Expressions.e_unaryop,
    ast.Subscript: Expressions.e_subscript,
    ast.Dict: Expressions.e_dict,
    ast.JoinedStr: Expressions.e_joinedstr,
    ast.FormattedValue: Expressions.e_formatted,
    ast.IfExp: Expressions.e_ifexp,
    ast.Starred: Expressions.e_starred,
    ast.Lambda: Expressions.e_lambda,
    ast.ListComp: Expressions.e_comp,
    ast.SetComp: Expressions.e_comp,
    ast.GeneratorExp: Expressions.e_comp,
    ast.DictComp: Expressions.e_comp,
    ast.NamedExpr: Expressions.e_namedexpr,
    ast.Await: Expressions.e_await,
    ast.Yield: Expressions.e_yield,
    ast.YieldFrom: Expressions.e_yield,
    ast.Slice: Expressions.e_slice,
}

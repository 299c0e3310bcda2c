"""Judging calls: what a call is, where its timeout stands, and which rule reports it.

The middle layer of the checker: it dispatches a call on a resolved value (a known
function, a method of a known type, a class of the module), computes the call's
:class:`~stoppable.lint._rules.Site`, and hands it to the rules.
"""

from __future__ import annotations

import ast
import math

from stoppable.lint import _expected
from stoppable.lint import _signatures as sig
from stoppable.lint._fix import fixable
from stoppable.lint._infer import Inference
from stoppable.lint._rules import Site, Status
from stoppable.lint._signatures import Spec
from stoppable.lint._timeouts import (
    find_arg,
    httpx_timeout,
    literal_bool,
    literal_zero,
    nonpositive,
    urllib3_timeout,
)
from stoppable.lint._values import (
    NONE,
    PENDING,
    BoundMethod,
    Inst,
    PendingCall,
    RawFinding,
    Sym,
    Tup,
    UserClass,
    UserFunc,
    Value,
)

DONTWAIT = "socket.MSG_DONTWAIT"
_INFINITY = frozenset({"math.inf"})
#: Socket calls that return at once on a socket select() reported readable.
_READ_CALLS = frozenset({"recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "accept"})
#: Bytes a fresh socketpair() takes without a reader (its buffers hold far more).
SMALL_WRITE = 4096


class Judge(Inference):
    """Calls: dispatch on the callee, judge the timeout, report through the rules."""

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
                    inst.unused_client = self.judge(node, func.known, ctor, None)
                self.construct_into(inst, node, func.known, ctor)
            return inst
        if kind in PENDING:
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

    def call_symbol(self, node: ast.Call, name: str) -> Value:
        spec = self.functions.get(name)
        deferred = None
        if spec is not None:
            deferred = self.judge(node, name, spec, None)
        returns = sig.RETURNS.get(name)
        if returns is not None:
            result = self.make_result(node, name, returns, None)
            if isinstance(result, Inst):
                result.unused_client = deferred
            return result
        inst = Inst(name)
        if name in self.known_types:
            ctor = self.constructor(name)
            if ctor is not None and spec is None:
                inst.unused_client = self.judge(node, name, ctor, None)
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
            inst.maxsize = unknown or (arg is not None and not nonpositive(arg))
            inst.maxsize_expr = ast.dump(arg) if arg is not None else None
        if ctor is not None and ctor.kind == "client":
            inst.loopback = _expected.mentions_loopback(node, self.string_constant)

    def call_method(self, node: ast.Call, inst: Inst, name: str, awaited: bool = False) -> Value:
        found = self.method(inst.type, name)
        cls = inst.cls
        if inst.type == "builtins.list":
            self.list_method(node, inst, name)
            return None
        if found is not None:
            _, spec = found
            if cls is not None and (cls.defines(name) or any(cls.defines(v) for v in spec.via)):
                return None
            if id(node) in self.released and name == "acquire":
                pass  # released in a finally: the spelled-out ``with lock:``
            elif name == "put" and self.fills_fresh_queue(node, inst):
                pass  # ``for _ in range(maxsize): q.put(x)`` on a new queue: never full
            elif name == "join" and self.stopped_thread(node, cls):
                pass  # told to stop, and its loop ends at once when told
            elif not self.cannot_block(node, inst, name, spec):
                self.judge(node, f"{inst.type}.{name}", spec, inst)
        elif self.strict and not awaited and self.unknown_type(inst):
            self.unknown_call(node, name)
        if name == "put":
            inst.put_seen = True
        if name in sig.FINISHERS.get(inst.type, ()):
            inst.done = True
        elif name == "listen" and sig.is_socket(inst.type):
            inst.listening = True
        returns = sig.method_returns(inst.type, name)
        if returns is not None:
            result = self.make_result(node, f"{inst.type}.{name}", returns, inst)
            if (isinstance(result, Inst) and name == "submit") or (
                isinstance(result, Inst) and name == "getsockname"
            ):
                result.owner = inst
            if isinstance(result, Inst) and name == "submit" and node.args:
                task = self.static_or_none(node.args[0])
                # Walked only here, for a submitted task: most functions never are.
                if (
                    isinstance(task, UserFunc)
                    and task.defn is not None
                    and not _expected.makes_calls(task.defn)
                ):
                    result.done = True  # a task that calls nothing cannot stall
            return result
        return None

    def stopped_thread(self, node: ast.Call, cls: UserClass | None) -> bool:
        """A thread of this module told to stop just before, whose loop ends when told."""
        attr = self.told_to_stop.get(id(node))
        if attr is None or cls is None:
            return False
        for owner in cls.mro():
            run = owner.methods.get("run")
            if run is not None:
                return run.defn is not None and _expected.loop_stops_on(run.defn, attr)
        return False

    def fills_fresh_queue(self, node: ast.Call, inst: Inst) -> bool:
        """A put in ``for _ in range(n):`` on a queue made with ``maxsize=n``, empty yet."""
        count = self.fill_loops.get(id(node))
        return count is not None and count == inst.maxsize_expr and not inst.put_seen

    def list_method(self, node: ast.Call, inst: Inst, name: str) -> None:
        # ``threads.append(Thread(...))``: the list now holds that kind of instance.
        if name in ("append", "insert") and node.args:
            item = self.arg_values.get(id(node.args[-1]))
            if isinstance(item, Inst) and inst.origin:
                inst.items = item

    def cannot_block(self, node: ast.Call, inst: Inst, name: str, spec: Spec) -> bool:
        """Whether the receiver's state makes this call return at once."""
        if inst.done or (inst.owner is not None and inst.owner.done):
            # A future of an executor whose ``with`` block ended, a killed process.
            return spec.kind in ("call", "none") and spec.effect is None
        if spec.state != "socket":
            return False
        if name == "connect" and node.args and _expected.loopback_address(node.args[0]):
            return True  # loopback answers at once: queued by a listener, or refused
        if name == "connect" and node.args:
            listener = self.address_owner(node.args[0])
            if listener is not None and listener.origin and listener.listening:
                # A connect to a listener of this very code completes from its backlog.
                listener.peer_ready = True
                return True
            return False
        if inst.ready and name in _READ_CALLS:
            return True  # select() said so just before: the data (or peer) is there
        if name == "accept":
            return inst.peer_ready
        if name in ("send", "sendall", "sendto") and node.args:
            data = node.args[0]
            # A short literal goes into the socket's send buffer, which holds far more:
            # only a peer that stopped reading after earlier writes filled it could make
            # it wait. A fresh socketpair() is the common case (a wake-up byte).
            return (
                isinstance(data, ast.Constant)
                and isinstance(data.value, bytes)
                and len(data.value) <= SMALL_WRITE
            )
        return False

    def address_owner(self, arg: ast.expr) -> Inst | None:
        """The listening socket whose ``getsockname()`` ``arg`` is, if it is one."""
        for sub in (arg, *(arg.elts if isinstance(arg, ast.Tuple) else ())):
            # ``listener.getsockname()``, or ``("127.0.0.1", listener.getsockname()[1])``.
            if isinstance(sub, ast.Subscript):
                sub = sub.value
            if (
                isinstance(sub, ast.Call)
                and isinstance(sub.func, ast.Attribute)
                and sub.func.attr == "getsockname"
            ):
                owner = self.static_or_none(sub.func.value)
                return owner if isinstance(owner, Inst) else None
            value = self.static_or_none(sub)
            if isinstance(value, Inst) and value.type == "socket.address":
                return value.owner
        return None

    def make_result(
        self,
        node: ast.Call,
        name: str,
        returns: str | tuple[str | None, ...],
        inst: Inst | None,
    ) -> Value:
        if isinstance(returns, tuple):
            items = tuple(Inst(item) if item else None for item in returns)
            if name == "socket.socketpair":
                for item in items:
                    if item is not None:
                        item.pair = True
            return Tup(items)
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
        result = Inst(returns, listening=name == "socket.create_server")
        if name in sig.BOUNDED_RESULTS:
            result.bounded = True
        else:
            self.construct_into(result, node, returns, self.constructors.get(returns))
        return result

    def judge(self, node: ast.Call, qualname: str, spec: Spec, inst: Inst | None) -> Site | None:
        """Judge one call and report what the rules find.

        Returns, instead of reporting it, the site of a client made without a timeout
        whose requests take their own (a urllib3 pool): the caller keeps it on the
        instance, and it is reported once a request without a timeout is made through
        the instance, or the instance is returned (made for others to use).
        """
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
                # A listening socket passed in is judged too: servers block in accept()
                # by design, so a listener's maker rarely gives it a timeout.
                made_here = inst.origin or (inst.param and qualname.endswith(".accept"))
                applies = made_here and not inst.bounded
        if (spec.effect is not None and inst is not None) or spec.effect == "default_timeout":
            self.apply_effect(spec, status, inst)
        if spec.kind == "wrap" and not self.strict:
            return None
        if status == "missing" and self.ends_at_once(node, qualname, inst):
            return None
        site = Site(node, qualname, spec, status, why, applies)
        if spec.kind == "client" and status == "missing" and qualname in sig.PER_REQUEST_CLIENTS:
            return site
        if spec.kind == "setter" and inst is not None and status == "unbounded":
            # ``sock.settimeout(None)`` matters only if the socket then waits: reported
            # when a blocking call on the same socket follows.
            self.unbounded_setters.setdefault(inst, []).append((site, none_name))
            return None
        if spec.state == "socket" and inst is not None and inst in self.unbounded_setters:
            for setter, setter_none in self.unbounded_setters.pop(inst):
                self.report(setter, False, setter_none)
        if spec.missing_ok and status == "missing" and inst is not None:
            self.used_client(inst)
        self.report(site, spec.socket_default, none_name)
        return None

    def ends_at_once(self, node: ast.Call, qualname: str, inst: Inst | None) -> bool:
        """Whether what the call waits for provably answers at once (see ``_expected``)."""
        if inst is not None and inst.patched:
            return True
        if qualname.startswith("subprocess.") and _expected.version_only(node):
            return True
        # A test expecting a refused connection to a loopback address: refused at once.
        return bool(self.refused_depth) and (
            self.loopback_depth > 0
            or (inst is not None and inst.loopback)
            or _expected.mentions_loopback(node, self.string_constant)
        )

    def used_client(self, inst: Inst) -> None:
        """A request without its own timeout on a client made without one: report that."""
        site = inst.unused_client
        if site is not None:
            inst.unused_client = None
            self.report(site, site.spec.socket_default, None)

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
            "nonblocking" if block is not None and literal_bool(block) is False else "given"
        )
        spec = Spec("call", wrapper=wrapper)
        site = Site(node, method, spec, status, "", True, unknown_receiver=True)
        self.report(site, False, None)

    def report(self, site: Site, socket_default: bool, none_name: str | None) -> None:
        node = site.node
        if self.invalid_input and site.status == "missing":
            need = self.invalid_input[-1]
            if need is None or _expected.passes_any(node, need):
                return  # a test expecting the call to refuse its input: it never waits
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
                    self.fix_kind(site) if rule.code in ("STP100", "STP103") else "",
                )
            )

    @staticmethod
    def fix_kind(site: Site) -> str:
        """How ``--fix`` may add ``timeout=``: "empty", "args", or "" when it may not."""
        node = site.node
        if site.spec.param != "timeout" or not fixable(site.qualname):
            return ""
        if any(type(a) is ast.Starred for a in node.args):
            return ""
        if any(k.arg is None for k in node.keywords):
            return ""
        return "args" if node.args or node.keywords else "empty"

    def status(self, node: ast.Call, spec: Spec) -> tuple[Status, str]:
        """Where the call's timeout stands; ``why`` explains an unbounded one."""
        if spec.kind == "none" and spec.state == "socket" and self.nonblocking_flags(node):
            return "nonblocking", ""
        if spec.kind in ("none", "wrap"):
            return "given", ""
        arg, unknown = find_arg(node, spec.param, spec.position)
        if unknown:
            return "given", ""
        if spec.zero_at is not None:
            count, count_unknown = find_arg(node, spec.zero_param, spec.zero_at)
            if not count_unknown and count is not None and literal_zero(count):
                # ``kqueue.control(changes, 0)``: asks for no events, so never waits.
                return "nonblocking", ""
        if spec.effect == "blocking_flag":
            flag = literal_bool(arg) if arg is not None else None
            if flag is True:
                return "unbounded", "setblocking(True)"
            return "given", ""
        if spec.block is not None:
            block, block_unknown = find_arg(node, spec.block, spec.block_position)
            if block_unknown:
                return "given", ""
            if block is not None:
                flag = literal_bool(block)
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
            return httpx_timeout(arg)
        if func.name == "urllib3.Timeout":
            return urllib3_timeout(arg)
        return None

    def nonblocking_flags(self, node: ast.Call) -> bool:
        """Whether a socket call passes MSG_DONTWAIT: it cannot block in any mode."""
        for arg in (*node.args, *(kw.value for kw in node.keywords)):
            for sub in ast.walk(arg):
                if isinstance(sub, ast.Attribute) and sub.attr == "MSG_DONTWAIT":
                    return True
                if isinstance(sub, ast.Name):
                    value = self.lookup(sub.id)
                    if isinstance(value, Sym) and value.name == DONTWAIT:
                        return True
        return False

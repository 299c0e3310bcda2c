"""The rules: one code, one readable name, one message template and one check each.

The checker resolves every call once into a :class:`Site` (what is called, where its
timeout went, what state its receiver is in); each rule then looks at the site alone.
A rule's documentation lives in ``docs/lint.md`` under a heading with its code, and a
test keeps the two in step.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from stoppable.lint._signatures import Spec

#: Where a call's timeout stands after resolution.
#:
#: ``missing``: no timeout argument; ``given``: a timeout that is, or may be, finite
#: (any non-literal expression counts); ``unbounded``: ``None``, a constant bound to
#: ``None``, a tuple holding ``None``, ``block=True`` with no timeout, a negative value
#: where that means forever, or infinity; ``nonblocking``: ``block=False``.
Status = Literal["missing", "given", "unbounded", "nonblocking"]


@dataclass(slots=True)
class Site:
    """One resolved call to something the checker knows, as the rules see it."""

    node: ast.Call
    qualname: str
    spec: Spec
    status: Status
    why: str = ""
    #: False when the receiver's state already bounds the call (a socket with a
    #: timeout, a polled connection, a barrier built with a timeout, an unbounded
    #: queue's put) or when the checker did not see how the receiver was made.
    applies: bool = True
    #: The receiver's type is unknown (strict mode's guesses only).
    unknown_receiver: bool = False
    #: Set by the rules as they report, so the strict rule stays silent after another.
    reported: bool = field(default=False)

    def call_text(self) -> str:
        """The call as written, with its resolved name when the two differ."""
        func = self.node.func
        try:
            written = ast.unparse(func)
        except (ValueError, RecursionError):  # pragma: no cover - exotic trees
            written = self.qualname
        if len(written) > 48:
            return f"{self.qualname}()"
        if written == self.qualname or self.unknown_receiver:
            return f"{written}()"
        return f"{written}() ({self.qualname})"

    def receiver_text(self) -> str:
        """The receiver as written (``sock`` in ``sock.recv(1)``), for fix hints."""
        func = self.node.func
        if isinstance(func, ast.Attribute):
            try:
                text = ast.unparse(func.value)
            except (ValueError, RecursionError):  # pragma: no cover - exotic trees
                text = "obj"
            return text if len(text) <= 32 else "obj"
        return "obj"


#: The scope that bounds and stops any blocking call in the thread, third-party ones too.
GUARD = "stoppable.guard"


def wrapper_text(wrapper: str) -> str:
    """How to name a wrapper in a message: a call, a class or a family."""
    if wrapper == GUARD:
        return "stoppable.guard(timeout=..., stop=...)"
    last = wrapper.rpartition(".")[2]
    if wrapper.count(".") < 2:
        return f"the {wrapper} wrappers"
    if last[:1].isupper():
        return f"{wrapper}(..., stop=...)"
    return f"{wrapper}(..., timeout=..., stop=...)"


Check = Callable[[Site], "dict[str, str] | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One lint code."""

    code: str
    name: str
    summary: str
    message: str
    check: Check
    #: Enabled only in strict mode (or when selected by code).
    strict: bool = False
    #: Reported by the command line only (the flake8 plugin leaves noqa to flake8).
    cli_only: bool = False

    def format(self, site: Site) -> str | None:
        """The finding's message for ``site``, or None when the rule does not apply."""
        values = self.check(site)
        if values is None:
            return None
        return self.message.format(**values)


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    name: str,
    summary: str,
    message: str,
    *,
    strict: bool = False,
    cli_only: bool = False,
) -> Callable[[Check], Check]:
    """Register a check under ``code``; the message template sits beside it."""

    def register(check: Check) -> Check:
        RULES[code] = Rule(code, name, summary, message, check, strict, cli_only)
        return check

    return register


def _alternative(site: Site) -> str:
    wrapper = site.spec.wrapper
    return f", or use {wrapper_text(wrapper)}" if wrapper else ""


def _unit(site: Site) -> str:
    return site.spec.unit


@rule(
    "STP100",
    "missing-timeout",
    "A blocking call that takes a timeout is given none.",
    "{call} has no timeout and can block forever: pass {param}=<{unit}>{alternative}",
)
def missing_timeout(site: Site) -> dict[str, str] | None:
    """The call blocks, accepts a timeout, and none was passed."""
    spec = site.spec
    if spec.kind != "call" or site.status != "missing" or spec.missing_ok or not site.applies:
        return None
    return {
        "call": site.call_text(),
        "param": spec.param,
        "unit": _unit(site),
        "alternative": _alternative(site),
    }


@rule(
    "STP101",
    "unbounded-timeout",
    "A timeout is given but does not bound the wait.",
    "{call} has an unbounded timeout ({why}): {fix}",
)
def unbounded_timeout(site: Site) -> dict[str, str] | None:
    """``None``, a ``None`` constant or tuple member, ``block=True``, forever or infinity."""
    spec = site.spec
    if site.status != "unbounded" or spec.kind == "wrap":
        return None
    if spec.state == "bounded_queue" and not site.applies:
        return None
    if spec.fix:
        fix = spec.fix.replace("{recv}", site.receiver_text())
    else:
        fix = f"pass a finite {spec.param or 'timeout'}=<{_unit(site)}>{_alternative(site)}"
    return {"call": site.call_text(), "why": site.why, "fix": fix}


@rule(
    "STP102",
    "blocking-without-timeout",
    "A blocking call that has no timeout parameter at all.",
    "{call} blocks and takes no timeout: {fix}",
)
def blocking_without_timeout(site: Site) -> dict[str, str] | None:
    """``Queue.join()``, ``Pool.map()``, ``recv()`` on a socket never given a timeout..."""
    if site.spec.kind != "none" or not site.applies or site.status == "nonblocking":
        return None
    fix = site.spec.fix.replace("{recv}", site.receiver_text())
    return {"call": site.call_text(), "fix": fix}


@rule(
    "STP103",
    "client-without-timeout",
    "A client or connection is created without a timeout.",
    "{call} creates a client without a timeout, so every request on it can block "
    "forever: pass {param}=<seconds>{alternative}",
)
def client_without_timeout(site: Site) -> dict[str, str] | None:
    """``http.client.HTTPConnection(host)``, ``smtplib.SMTP(host)``, ``PoolManager()``."""
    spec = site.spec
    if spec.kind != "client" or site.status != "missing" or spec.missing_ok:
        return None
    return {
        "call": site.call_text(),
        "param": spec.param,
        "alternative": _alternative(site),
    }


@rule(
    "STP200",
    "use-stoppable-wrapper",
    "Strict: a blocking call that has a stoppable wrapper, even with a timeout.",
    "{call} can time out but cannot be stopped: use {wrapper}{guard}",
    strict=True,
)
def use_stoppable_wrapper(site: Site) -> dict[str, str] | None:
    """Any known blocking call (or client) whose stoppable wrapper exists."""
    spec = site.spec
    if site.reported or site.unknown_receiver or not spec.wrapper:
        return None
    if site.status == "nonblocking" or spec.kind == "setter":
        return None
    if spec.state == "bounded_queue" and not site.applies:
        return None
    guard = "" if spec.wrapper == GUARD else ", or run it inside " + wrapper_text(GUARD)
    return {"call": site.call_text(), "wrapper": wrapper_text(spec.wrapper), "guard": guard}


@rule(
    "STP201",
    "possibly-blocking-call",
    "Strict: a call that looks blocking on a receiver of unknown type.",
    "{call} may block (the receiver's type is unknown): use {wrapper}, or run it inside "
    "stoppable.guard(timeout=..., stop=...) if it is a third-party call that takes no "
    "stop, or annotate the receiver so the checker can judge the call",
    strict=True,
)
def possibly_blocking_call(site: Site) -> dict[str, str] | None:
    """``x.get()``, ``x.join()``, ``x.wait()``, ``x.result()`` on an unknown ``x``."""
    if not site.unknown_receiver or site.status == "nonblocking":
        return None
    wrapper = site.spec.wrapper or "a stoppable wrapper"
    return {"call": site.call_text(), "wrapper": wrapper_text(wrapper)}


def _never(site: Site) -> dict[str, str] | None:
    return None


# Reported by the suppression pass, not by a site check.
RULES["STP900"] = Rule(
    "STP900",
    "unused-noqa",
    "A ``# noqa: STP...`` comment that suppresses nothing (opt-in report).",
    "unused noqa: {codes} not reported on this line",
    _never,
    cli_only=True,
)

#: Codes enabled unless selected otherwise.
DEFAULT_CODES: frozenset[str] = frozenset(
    code for code, r in RULES.items() if not r.strict and code != "STP900"
)
#: Codes the strict mode adds.
STRICT_CODES: frozenset[str] = frozenset(code for code, r in RULES.items() if r.strict)
SITE_RULES: tuple[Rule, ...] = tuple(
    RULES[code] for code in sorted(RULES) if RULES[code].check is not _never
)


def by_name_or_code(key: str) -> Rule | None:
    """Find a rule by its code (``STP100``) or readable name (``missing-timeout``)."""
    found = RULES.get(key.upper())
    if found is not None:
        return found
    for r in RULES.values():
        if r.name == key.lower():
            return r
    return None

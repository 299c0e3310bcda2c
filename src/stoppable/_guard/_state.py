"""Which thread is inside a guard, and the checks and errors every guarded operation shares.

A guard is a ``stoppable.scope`` plus a marker: the scope's state (``_limits``) holds
the merged deadline and stops, so guards and scopes nest with the one merge of limits;
the marker (a ``contextvars`` variable holding the innermost guard's ``Record``) says
that *foreign* blocking calls in this thread are to honour them too. Threads that never
entered a guard read ``None`` from it and run the standard library's code unchanged.

Every guarded operation starts with ``enter()``: once a stop is set or the deadline has
passed, every later blocking operation raises at once (no retry runs past the
deadline). Its own timeout (a socket's, ``Condition.wait(5)``'s) still applies: the
earlier of the two wins, and when its own ends first it ends as it does today
(``OwnTimeout`` tells the operation to do so).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from .._errors import DeadlineExceeded, Stopped
from .._limits import Limits, _current_scope, _ScopeState
from .._wait import NotYet, _WakeByFd, wait_loop

__all__ = [
    "FOREVER",
    "OwnTimeout",
    "Record",
    "SoftState",
    "active",
    "call_limits",
    "called_from_stoppable",
    "check",
    "current_state",
    "deadline_factory",
    "enter",
    "guard_error",
    "note",
    "run_wait",
    "soften",
]

T = TypeVar("T")

_monotonic = time.monotonic

# A wait with no limit of its own, inside a guard that has a stop but no deadline: a
# finite number keeps every computation (poll's milliseconds) finite. 31 years.
FOREVER = 1e9
_DAY = 86_400.0


class Record:
    """One guard's record of what it did: the first operation it interrupted."""

    __slots__ = ("fired",)

    def __init__(self) -> None:
        self.fired: BaseException | None = None


# The innermost open guard of this thread (or task), or None outside every guard.
active: ContextVar[Record | None] = ContextVar("stoppable_guard", default=None)


class OwnTimeout(Exception):
    """The operation's own timeout ended first: it ends as the standard library's does."""


def note(record: Record, exc: BaseException) -> None:
    """Remember ``exc`` as what the guard interrupted (the first one wins)."""
    if record.fired is None:
        record.fired = exc


def _deadline_message(operation: str, state: _ScopeState) -> str:
    budget = "" if state.timeout is None else f" (timeout={state.timeout:g} s)"
    return f"{operation} interrupted: the stoppable.guard's deadline{budget} has passed"


class SoftState(_ScopeState):
    """The limits inside a soft guard (``_guard.soft``): its deadline fires once.

    ``soft_in_force``: the merged deadline is the soft guard's own (not an earlier
    outer one). When it fires, the operation raises ``error(message)`` and the block
    goes on under the ``outer`` state and ``outer_record`` (the enclosing guard's, or
    nothing): ``spent``.
    """

    __slots__ = ("error", "outer", "outer_record", "soft_in_force", "spent")

    def __init__(
        self,
        merged: _ScopeState,
        outer: _ScopeState | None,
        outer_record: Record | None,
        error: Callable[[str], DeadlineExceeded],
    ) -> None:
        super().__init__(merged.deadline, merged.timeout, merged.stops)
        self.outer = outer
        self.outer_record = outer_record
        self.error = error
        self.soft_in_force = (
            outer is None
            or outer.deadline is None
            or (merged.deadline is not None and merged.deadline < outer.deadline)
        )
        self.spent = False

    def spend(self) -> None:
        """The soft deadline fired: this context goes on under the outer limits."""
        self.spent = True
        _current_scope.set(self.outer)
        active.set(self.outer_record)


def guard_error(operation: str, state: _ScopeState) -> DeadlineExceeded:
    """The ``DeadlineExceeded`` (a ``socket.timeout``) a guarded operation raises.

    Inside a soft guard whose own deadline fired, the soft guard's error, once.
    """
    message = _deadline_message(operation, state)
    if type(state) is SoftState and state.soft_in_force:
        state.spend()
        return state.error(message)
    return DeadlineExceeded(message, timeout=state.timeout)


def soften(state: _ScopeState, exc: BaseException, operation: str) -> DeadlineExceeded | None:
    """The soft guard's error for a ``DeadlineExceeded`` made below the guard.

    For an operation bounded by stoppable's own machinery (a name lookup), whose
    deadline error is the family's: ``None`` unless the soft deadline is what fired.
    """
    if (
        type(state) is SoftState
        and state.soft_in_force
        and not state.spent
        and isinstance(exc, DeadlineExceeded)
        and state.deadline is not None
        and state.deadline <= _monotonic()
    ):
        return guard_error(operation, state)
    return None


def enter(operation: str) -> tuple[Record, _ScopeState] | None:
    """``None`` outside a guard; else raise if stopped or past the deadline, or go on.

    The stop is level-triggered and the deadline final: an operation that starts after
    either fired raises at once, even one that would not have had to wait.
    """
    record = active.get()
    if record is None:
        return None
    state = current_state()
    if type(state) is SoftState and state.spent:
        # Fired in another context of this block (a context.run inside it): switch here.
        state.spend()
        record, outer = state.outer_record, state.outer
        if record is None or outer is None:
            return None
        state = outer
    check(record, state, operation)
    return record, state


def current_state() -> _ScopeState:
    """The merged limits in force (inside a guard there always are some)."""
    state = _current_scope.get()
    if state is None:  # pragma: no cover - a guard always sets a scope
        raise RuntimeError("stoppable.guard: no scope state inside a guard")
    return state


def check(record: Record, state: _ScopeState, operation: str) -> None:
    """Raise ``Stopped`` if a stop is set, ``DeadlineExceeded`` if the deadline passed.

    An operation refused because the guard fired earlier is chained to the first one
    it interrupted (``from``), so a traceback shows where the time actually ran out
    (the read), not only the retry that came after it.
    """
    exc: BaseException | None = None
    for stop in state.stops:
        if stop.is_set():
            exc = Stopped(getattr(stop, "reason", None))
            break
    else:
        if state.deadline is not None and state.deadline <= _monotonic():
            exc = guard_error(operation, state)
    if exc is None:
        return
    first = record.fired
    note(record, exc)
    try:
        if first is not None:
            raise exc from first
        raise exc
    finally:
        # This frame, kept by the error's traceback, must not hold the error (a cycle
        # that keeps every frame of the traceback alive until a garbage collection).
        del exc, first


def call_limits(own: float | None, operation: str) -> Limits:
    """The limits of one guarded wait: its own timeout (or none) merged with the guard's."""
    return Limits(FOREVER if own is None else own, None, operation)


def run_wait(
    record: Record,
    state: _ScopeState,
    call: Limits,
    attempt: Callable[[float], T | NotYet],
    wake: Callable[[], object] | _WakeByFd | None,
) -> T:
    """``wait_loop`` for a guarded operation: ``OwnTimeout`` when its own limit ended it.

    The guard's deadline raises ``DeadlineExceeded``, a stop ``Stopped``; both are
    noted in ``record``.
    """
    error = deadline_factory(call, state)

    def capped(seconds: float) -> T | NotYet:
        # A wait with no end of its own is FOREVER: each block is at most a day (what
        # poll() and select() can take); the loop goes on.
        return attempt(seconds if seconds < _DAY else _DAY)

    try:
        return wait_loop(call, capped, wake=wake, error=error)
    except (Stopped, DeadlineExceeded) as exc:
        note(record, exc)
        raise


def deadline_factory(call: Limits, state: _ScopeState) -> Callable[..., DeadlineExceeded]:
    """The ``error=`` for ``wait_loop``: the guard's error, or ``OwnTimeout``.

    ``OwnTimeout`` when the operation's own timeout was the earlier limit.
    """

    def error(message: str, *, timeout: float | None = None) -> DeadlineExceeded:
        if call.from_scope:
            return guard_error(call.operation, state)
        raise OwnTimeout(call.operation)

    return error


def called_from_stoppable(depth: int = 2) -> bool:
    """Whether the caller ``depth`` frames up is stoppable's own code.

    The guard leaves that code alone: it bounds its own waits already.
    """
    try:
        name = sys._getframe(depth).f_globals.get("__name__", "")
    except ValueError:  # pragma: no cover - a shallower stack
        return False
    return isinstance(name, str) and name.startswith("stoppable.")

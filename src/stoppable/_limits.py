"""The limits of one blocking call: its deadline and its stops, made at the API edge.

Time has one representation inside the library: an absolute ``time.monotonic()``
deadline, made once from the relative ``timeout`` when a wrapper is called (or a
scope entered). Everything below the edge asks "how long is left", never "how long
was I given", so retries, redirects and loops cannot stretch the total.

A call's stops are its explicit ``stop`` plus the stops of every enclosing scope:
any of them ends the call. Its deadline is the earliest of its own and the scopes'.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Final, Protocol, runtime_checkable

from ._errors import DeadlineExceeded, Stopped
from ._stop import StopEvent

__all__ = [
    "SHUTDOWN_TIMEOUT",
    "UNTIL_STOPPED",
    "Limits",
    "StopLike",
    "begin",
    "checkpoint",
    "get_poll_interval",
    "limits",
    "merge",
    "scope",
    "set_poll_interval",
    "validate_stop",
    "validate_timeout",
    "validate_wait_timeout",
]

_monotonic = time.monotonic


@runtime_checkable
class StopLike(Protocol):
    """Anything that can be asked whether a stop was requested (``threading.Event``)."""

    def is_set(self) -> bool:
        """Whether the stop was requested."""
        ...


class _UntilStopped(float):
    """The type of ``UNTIL_STOPPED``: one instance, recognised by identity.

    A ``float`` (infinity), so that it type-checks wherever a ``timeout`` does.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "stoppable.UNTIL_STOPPED"

    def __reduce__(self) -> str:
        return "UNTIL_STOPPED"  # unpickles as the module attribute: still the one instance


UNTIL_STOPPED: Final = _UntilStopped("inf")
"""A ``timeout`` for waits that should last until a stop: an accept loop, an idle
keep-alive read, a consumer waiting for work.

Accepted by a wrapper only where a stop can end the wait: an explicit ``stop`` or an
enclosing scope's; refused with ``ValueError`` otherwise, so a wait can never be left
without any end. An enclosing scope's deadline still applies. ``None`` stays refused
everywhere: forgetting a timeout and choosing to wait until stopped look different.
"""

SHUTDOWN_TIMEOUT: Final = 60.0
"""Default bound, in seconds, of every executor's ``shutdown`` (and ``with`` exit)."""

_poll_interval = 0.05


def get_poll_interval() -> float:
    """The slice, in seconds, between checks of a stop that cannot wake a wait."""
    return _poll_interval


def set_poll_interval(seconds: float) -> float:
    """Set the slice between checks of a polled stop; returns the previous value.

    A polled stop is a plain ``threading.Event`` (or anything with ``is_set()``), or
    any stop during a wait that nothing can wake (``Lock.acquire``, ``Thread.join``).
    Shorter slices notice a stop sooner and cost more CPU while waiting.
    """
    global _poll_interval
    value = validate_timeout(seconds, "seconds")
    if value <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")
    previous, _poll_interval = _poll_interval, value
    return previous


def validate_timeout(timeout: object, name: str = "timeout") -> float:
    """``timeout`` as a float, or a ``TypeError``/``ValueError`` naming ``name``.

    A finite number of seconds, ``>= 0``; ``None``, ``bool``, NaN and infinity are
    refused: the library's promise is that every wait ends.
    """
    kind = type(timeout)
    if kind is float or kind is int:
        value = _as_float(timeout, name)
    elif timeout is UNTIL_STOPPED:
        raise ValueError(
            f"{name}=UNTIL_STOPPED is accepted only by a wait that a stop can end "
            "(a wrapper call), not here: give a number of seconds"
        )
    elif timeout is None:
        raise TypeError(
            f"{name} is required: a finite number of seconds, got None "
            "(stoppable never waits without a limit)"
        )
    elif isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {kind.__name__} {timeout!r}")
    else:
        value = _as_float(timeout, name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {timeout!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {timeout!r}")
    return value


def _as_float(timeout: object, name: str) -> float:
    try:
        return float(timeout)  # type: ignore[arg-type]
    except OverflowError:  # 10**400: a finite number, but not a float
        raise ValueError(
            f"{name} is too large to be a number of seconds: {timeout!r:.40}"
        ) from None


def validate_stop(stop: object, name: str = "stop") -> StopLike:
    """``stop`` if it can be asked ``is_set()``, else a ``TypeError`` naming ``name``."""
    if isinstance(stop, StopEvent) or callable(getattr(stop, "is_set", None)):
        return stop  # type: ignore[return-value]
    raise TypeError(
        f"{name} must be a StopEvent or an object with is_set(), got {type(stop).__name__} {stop!r}"
    )


class _ScopeState:
    """What the innermost scope imposes, already merged with its parents."""

    __slots__ = ("deadline", "stops", "timeout")

    def __init__(self, deadline: float | None, timeout: float | None, stops: tuple[StopLike, ...]):
        self.deadline = deadline
        self.timeout = timeout  # the budget that set ``deadline``, for messages
        self.stops = stops


_current_scope: ContextVar[_ScopeState | None] = ContextVar("stoppable_scope", default=None)


class scope:  # a context manager used like a function, as contextlib's are
    """Impose a deadline and/or a stop on every ``stoppable`` call in a block.

    ::

        with stoppable.scope(timeout=5, stop=shutdown):
            item = queues.get(q, timeout=2)      # ends by min(2 s, what is left of 5 s)
            net.sendall(sock, item, timeout=2)   # or at once when shutdown is set

    The deadline is fixed when the block is entered. Scopes nest: the innermost
    call honours every enclosing scope's stop and the earliest deadline among them
    and its own ``timeout``. A scope lives in a ``contextvars`` variable, so it
    belongs to the thread (or task) that entered it and is not seen by others. It
    does not catch anything: calls inside raise ``Stopped`` or their family's
    ``DeadlineExceeded`` as usual.

    After the block, ``expired`` says whether the deadline in force inside had
    passed by the time it ended, even if the code inside caught the error. With
    ``raise_if_expired=True`` the exit raises ``DeadlineExceeded`` when it had (as
    trio's ``fail_after`` does), chained from the exception that left the block, if
    any; a ``DeadlineExceeded`` or a ``BaseException`` (``Stopped``, Ctrl-C) that
    leaves the block is never replaced.
    """

    __slots__ = ("_expired", "_raise_if_expired", "_state", "_stop", "_timeout", "_token")

    def __init__(
        self,
        *,
        timeout: float | None = None,
        stop: StopLike | None = None,
        raise_if_expired: bool = False,
    ) -> None:
        if timeout is None and stop is None:
            raise TypeError("scope() needs a timeout, a stop, or both")
        self._timeout = None if timeout is None else validate_timeout(timeout)
        self._stop = None if stop is None else validate_stop(stop)
        if not isinstance(raise_if_expired, bool):
            raise TypeError(
                f"raise_if_expired must be a bool, got {type(raise_if_expired).__name__}"
            )
        self._raise_if_expired = raise_if_expired
        self._expired: bool | None = None  # known once the block has ended
        self._state: _ScopeState | None = None
        self._token: object = None

    @classmethod
    def _trusted(cls, timeout: float | None, stop: StopLike | None) -> scope:
        """A scope from a ``timeout``/``stop`` its caller already validated; private.

        For the library's own hot paths (a guard per worker-thread call): the same
        object ``scope(timeout=timeout, stop=stop)`` makes, without checking again.
        """
        self = cls.__new__(cls)
        self._timeout = timeout
        self._stop = stop
        self._raise_if_expired = False
        self._expired = None
        self._state = None
        self._token = None
        return self

    @property
    def deadline(self) -> float | None:
        """The absolute ``time.monotonic()`` deadline in force inside, or ``None``."""
        return None if self._state is None else self._state.deadline

    def remaining(self) -> float | None:
        """Seconds left until the deadline in force (``0.0`` once passed), or ``None``."""
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - _monotonic())

    @property
    def expired(self) -> bool:
        """Whether the deadline in force inside has passed (as of the block's end, after it)."""
        if self._expired is not None:
            return self._expired
        deadline = self.deadline
        return deadline is not None and deadline <= _monotonic()

    def __enter__(self) -> scope:
        if self._state is not None:
            raise RuntimeError("a scope can be entered only once")
        budget = self._timeout
        deadline = None if budget is None else _monotonic() + budget
        outer = _current_scope.get()
        if outer is None:  # nothing to merge (merge() would return these): no call
            stop = self._stop
            self._state = _ScopeState(deadline, budget, () if stop is None else (stop,))
        else:
            deadline, budget, _, stops = merge(outer, deadline, budget, self._stop)
            self._state = _ScopeState(deadline, budget, stops)
        self._token = _current_scope.set(self._state)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._expired = expired = self.expired
        try:
            if expired and self._raise_if_expired and _replaceable(exc):
                # Made while this scope is still current: its deadline, already passed, wins.
                raise Limits(_INF, None, "the block").deadline_error() from exc
        finally:
            _current_scope.reset(self._token)  # type: ignore[arg-type]

    def _close(self) -> float | None:
        """``__exit__`` without ``raise_if_expired``, for a guard's scope; private.

        Returns the clock reading that judged ``expired`` (``None``: no deadline, no
        reading), so the guard judges its own exit by the same instant.
        """
        state = self._state
        now: float | None = None
        if state is not None and state.deadline is not None:
            now = _monotonic()
            self._expired = state.deadline <= now
        else:
            self._expired = False
        _current_scope.reset(self._token)  # type: ignore[arg-type]
        return now


def merge(
    outer: _ScopeState | None, deadline: float | None, budget: float | None, stop: object
) -> tuple[float | None, float | None, bool, tuple[StopLike, ...]]:
    """The one merge of limits: one's own deadline and stop with the enclosing scopes'.

    Returns ``(deadline, budget, from_scope, stops)``: the earliest deadline, the budget
    that set it (for messages), whether it is the scopes', and every stop, the own one
    first, each once (compared by identity: two stops are the same only if they are).
    """
    stops: tuple[StopLike, ...] = () if stop is None else (stop,)  # type: ignore[assignment]
    if outer is None:
        return deadline, budget, False, stops
    from_scope = False
    if outer.deadline is not None and (deadline is None or outer.deadline < deadline):
        deadline, budget, from_scope = outer.deadline, outer.timeout, True
    if outer.stops:
        stops += tuple(s for s in outer.stops if s is not stop)
    return deadline, budget, from_scope, stops


def _replaceable(exc: BaseException | None) -> bool:
    """Whether a scope that expired may raise ``DeadlineExceeded`` in place of ``exc``."""
    return exc is None or (isinstance(exc, Exception) and not isinstance(exc, DeadlineExceeded))


class Limits:
    """The deadline and stops of one call, once it has to block.

    ``begin()`` does the work every call needs (validation, the stop check, the
    deadline) without allocating; ``Limits`` is made only when a call must wait, and
    merges in the enclosing scopes.
    """

    __slots__ = ("deadline", "from_scope", "operation", "stops", "timeout")

    def __init__(self, timeout: float, stop: object, operation: str) -> None:
        deadline, budget, from_scope, stops = merge(
            _current_scope.get(), _monotonic() + timeout, timeout, stop
        )
        self.deadline: float = deadline  # type: ignore[assignment] # never None: ours is a number
        self.timeout = float(budget)  # type: ignore[arg-type] # the budget that ran out, for messages
        self.from_scope = from_scope
        self.stops = stops
        self.operation = operation

    def narrowed(self, deadline: float, operation: str) -> Limits:
        """A share of this call: the same stops, ending at ``deadline`` at the latest."""
        share = Limits.__new__(Limits)
        share.deadline = min(deadline, self.deadline)
        share.timeout = self.timeout
        share.from_scope = self.from_scope
        share.stops = self.stops
        share.operation = operation
        return share

    def remaining(self) -> float:
        """Seconds left until the deadline; ``<= 0`` once it has passed."""
        return self.deadline - _monotonic()

    def raise_if_stopped(self) -> None:
        """Raise ``Stopped`` (with the reason) if any of the call's stops is set."""
        for stop in self.stops:
            if stop.__class__ is StopEvent:  # read directly, as in begin(): no calls
                if stop._flag:
                    raise Stopped(stop._reason)
            elif stop.is_set():
                raise Stopped(getattr(stop, "reason", None))

    def stop_events(self) -> list[StopEvent]:
        """The stops that can wake a wait (``StopEvent``s)."""
        return [stop for stop in self.stops if isinstance(stop, StopEvent)]

    def has_polled_stop(self) -> bool:
        """Whether some stop can only be polled (it is not a ``StopEvent``)."""
        return any(not isinstance(stop, StopEvent) for stop in self.stops)

    def deadline_error(
        self, error: Callable[..., DeadlineExceeded] = DeadlineExceeded
    ) -> DeadlineExceeded:
        """The family's timeout error, its message naming the operation and budget."""
        if self.from_scope:
            message = (
                f"{self.operation} ran out of time: the enclosing stoppable.scope's "
                f"deadline (timeout={self.timeout:g} s) passed"
            )
        else:
            message = f"{self.operation} timed out after {self.timeout:g} s"
        return error(message, timeout=self.timeout)


_INF = math.inf
# Timeouts below this take begin()'s fast path; larger ones (10**400, which no float
# can hold) are checked by validate_timeout. Any finite float is a valid timeout.
_FAST_MAX = 1e300


def begin(timeout: object, stop: object, name: str = "timeout") -> float:
    """Start a wrapper call: validate ``timeout`` and ``stop``, check the stops.

    Returns the timeout as a number of seconds (``math.inf`` for ``UNTIL_STOPPED``,
    which needs ``stop`` or an enclosing scope's stop). Raises the validation errors before
    anything else (so no I/O happens on bad input), then ``Stopped`` if the call's
    stop or a scope's stop is already set: stops are level-triggered.

    This is the fixed cost of every call, so it allocates nothing and does not even
    read the clock: a call that does not have to wait (an item is there, the lock is
    free) never needs a deadline. One that does makes ``Limits(timeout, ...)``, which
    fixes the deadline before the first blocking step, a few microseconds after
    entry, and merges in the enclosing scopes.
    """
    kind = timeout.__class__
    # NaN fails the comparison and takes the slow path, which refuses it.
    if not ((kind is float or kind is int) and 0 <= timeout < _FAST_MAX):  # type: ignore[operator]
        timeout = validate_wait_timeout(timeout, stop, name)
    if stop is not None:
        if stop.__class__ is StopEvent:
            if stop._flag:
                raise Stopped(stop._reason)
        elif validate_stop(stop).is_set():
            raise Stopped(getattr(stop, "reason", None))
    state = _current_scope.get()
    if state is not None:
        for scope_stop in state.stops:
            if scope_stop.is_set():
                raise Stopped(getattr(scope_stop, "reason", None))
    return timeout  # type: ignore[return-value]


def validate_wait_timeout(timeout: object, stop: object, name: str = "timeout") -> float:
    """A wrapper's ``timeout`` in seconds: ``validate_timeout``, or ``inf`` for ``UNTIL_STOPPED``.

    ``UNTIL_STOPPED`` needs ``stop`` or an enclosing scope's stop: a wait with neither
    a deadline nor a stop could never end, so it is a ``ValueError`` naming ``name``.
    """
    if timeout is not UNTIL_STOPPED:
        return validate_timeout(timeout, name)
    if stop is None:
        state = _current_scope.get()
        if state is None or not state.stops:
            raise ValueError(
                f"{name}=UNTIL_STOPPED needs a stop that can end the wait: pass stop=..., "
                "or call inside stoppable.scope(stop=...)"
            )
    return _INF


def limits(timeout: object, stop: object, operation: str) -> Limits:
    """``begin()`` and ``Limits`` at once, for calls that will most likely wait."""
    return Limits(begin(timeout, stop), stop, operation)


def checkpoint(stop: StopLike | None = None) -> None:
    """Raise if the work in progress should end: for loops that make no blocking call.

    Raises ``Stopped`` if ``stop`` or an enclosing scope's stop is set, and
    ``DeadlineExceeded`` if an enclosing scope's deadline has passed; otherwise
    returns at once (it never waits).
    """
    stops: tuple[StopLike, ...] = () if stop is None else (validate_stop(stop),)
    state = _current_scope.get()
    if state is not None:
        stops += state.stops
    for candidate in stops:
        if candidate.is_set():
            raise Stopped(getattr(candidate, "reason", None))
    if state is not None and state.deadline is not None and state.deadline <= _monotonic():
        call = Limits(_INF, None, "checkpoint")  # the scope's deadline, already passed, wins
        raise call.deadline_error()

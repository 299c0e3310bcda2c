"""One budget per request, carried down to every socket wait: the HTTP family's engine.

A *budget* is the request's absolute deadline and its stops, made once at the API edge
(``Session.request``, ``HTTPAdapter.send``, ``PoolManager.urlopen``...). While the
call runs, the budget is installed as the current ``stoppable.scope`` state, so every
wait below it honours it with no argument passed down through requests and urllib3:

- waiting for a pooled connection (``pool_block``): ``stoppable.queues.get`` on the
  pool's queue;
- name lookup, connect (every address) and TLS handshake: ``stoppable.net.connect``
  and ``net.start_tls``;
- sending the request and reading the headers and the body: the connection's socket
  is a ``net.Socket`` whose reads and writes take their budget from the scope. The
  socket also keeps the budget, and re-installs it around each read or write made
  after the call returned (a streamed body), until the connection is reused. Each
  read and write first checks the stops and the deadline, so a body that keeps
  flowing still ends in time; a body read waits in the one waiting loop with a
  ``poll`` object kept for the request (a fast body waits hundreds of times per MB);
- urllib3's retries: their backoff and ``Retry-After`` waits are stoppable and never
  run past the deadline, and no retry starts once the deadline has passed.

Errors travel up through http.client, urllib3 and requests, which wrap them in their
own exceptions. Each edge translates what comes out, in one place (``_errors.translate``): an
error with a ``DeadlineExceeded`` in its chain becomes this family's ``RequestDeadline``
subclass for the phase the request was in, raised ``from`` the original. ``Stopped``
is a ``BaseException``: it passes through every layer untouched, and every layer's
clean-up closes the connection it interrupted.
"""

from __future__ import annotations

import math
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_

from .. import _compat
from .._errors import DeadlineExceeded, Stopped
from .._limits import (
    Limits,
    StopLike,
    _current_scope,
    _ScopeState,
    validate_stop,
    validate_timeout,
)
from ._errors import CONNECT, translate

if TYPE_CHECKING:
    pass

_compat.check_urllib3()  # the hooks this package overrides must exist (see _compat)
_compat.check_http()  # the private parts it reads: each with a fallback (see _compat)
_DEFAULT_TIMEOUT: Any = _compat.urllib3_default_timeout()
_monotonic = time.monotonic

# --- the budget --------------------------------------------------------------------


class _Budget(_ScopeState):
    """One request's deadline and stops (a scope state), and what it is doing."""

    deadline: float  # never None here, unlike a scope's
    timeout: float

    __slots__ = (
        "detail",
        "from_scope",
        "kind",
        "method",
        "no_slot",
        "phase",
        "stall",
        "url",
        "urllib3",
    )

    def __init__(
        self,
        deadline: float,
        timeout: float,
        stops: tuple[StopLike, ...],
        from_scope: bool,
        stall: float | None,
        method: str,
        url: str,
        urllib3: bool,
    ) -> None:
        super().__init__(deadline, timeout, stops)
        self.from_scope = from_scope
        self.stall = stall
        self.method = method
        self.url = url
        self.urllib3 = urllib3  # whose errors its users expect: urllib3's, or requests'
        self.kind = CONNECT
        self.phase = "starting the request"
        self.detail = ""
        self.no_slot = False  # a pool wait was stopped: no connection slot was taken


def current() -> _Budget | None:
    """The budget of the request in progress in this thread (context), if any."""
    state = _current_scope.get()
    return state if state.__class__ is _Budget else None


def _phase(kind: int, text: str) -> None:
    state = _current_scope.get()
    if state.__class__ is _Budget:
        state.kind = kind
        state.phase = text


def seconds_for(timeout: object, default: float | None, what: str = "timeout") -> float:
    """The total budget in seconds: ``timeout``, else ``default``; refused clearly."""
    if timeout is None:
        if default is None:
            raise TypeError(
                f"{what} is required: a finite number of seconds for the whole request "
                "(stoppable never waits without a limit); pass timeout=, or give the "
                "Session a default timeout"
            )
        return default
    kind = timeout.__class__
    if (kind is float or kind is int) and 0 <= timeout < math.inf:  # type: ignore[operator]
        return float(timeout)  # type: ignore[arg-type]
    if isinstance(timeout, urllib3.util.Timeout) and _total_only(timeout):
        return seconds_for(timeout.total, default, what)
    if isinstance(timeout, tuple | urllib3.util.Timeout):
        raise InvalidTimeout(
            f"{what} must be a number of seconds, the total for the whole request, got "
            f"{timeout!r}; stoppable.http has no (connect, read) pair: the total covers "
            "every phase, and stall_timeout= limits each wait for the peer"
        )
    try:
        return validate_timeout(timeout, what)
    except TypeError as exc:
        raise InvalidTimeout(f"{_upstream_words(timeout)} ({exc})") from None


def _upstream_words(timeout: object) -> str:
    """urllib3's message for a timeout that is not a number (requests passes it on).

    Word for word, so that code matching it (``pytest.raises(match=)``, an ``except``
    that reads the message) works unchanged; stoppable's own words follow it.
    """
    if isinstance(timeout, bool):
        return "Timeout cannot be a boolean value. It must be an int, float or None."
    return f"Timeout value connect was {timeout}, but it must be an int, float or None."


class InvalidTimeout(TypeError, ValueError):
    """A timeout that is not a number (``"foo"``, ``True``...) or not one total.

    Also a ``(connect, read)`` tuple or a ``urllib3.Timeout`` with a connect or read
    limit: stoppable.http's timeout is one total for the whole request (a
    ``urllib3.Timeout(total=...)`` alone is accepted: it is one).

    A ``TypeError``, as stoppable's other families raise, and a ``ValueError``, as
    requests and urllib3 raise for the same value: existing ``except`` clauses work.
    For a value that is not a number, the message begins with urllib3's own words
    (which requests passes on), so code matching them works too.
    """


def _total_only(timeout: urllib3.util.Timeout) -> bool:
    """Whether a urllib3 ``Timeout`` gives a total and nothing else: one total, as ours."""
    limits = _compat.urllib3_timeout_limits(timeout)
    if limits is None:  # unreadable: refused, as a Timeout with limits of its own
        return False
    unset = (None, _DEFAULT_TIMEOUT)
    return timeout.total is not None and limits[0] in unset and limits[1] in unset


def open_budget(
    seconds: float,
    stop: object,
    extra_stop: object,
    method: str,
    url: str,
    stall: float | None,
    *,
    urllib3: bool = False,
) -> _Budget:
    """A new budget of ``seconds`` from now, merged with the enclosing scope or request.

    ``stop`` is the call's own stop, ``extra_stop`` an owner's (a session's, a pool
    manager's). Raises ``Stopped`` if any stop is already set: before any I/O.
    """
    if stop is not None and validate_stop(stop).is_set():
        raise Stopped(getattr(stop, "reason", None))
    if extra_stop is not None and extra_stop is not stop and extra_stop.is_set():  # type: ignore[attr-defined]
        raise Stopped(getattr(extra_stop, "reason", None))
    outer = _current_scope.get()
    call = Limits(seconds, stop, "")
    stops = call.stops
    if extra_stop is not None and extra_stop not in stops:
        stops = (*stops, extra_stop)  # type: ignore[arg-type]
    from_scope = call.from_scope
    if outer is not None:
        for scope_stop in outer.stops:
            if scope_stop.is_set():
                raise Stopped(getattr(scope_stop, "reason", None))
        if outer.__class__ is _Budget:
            if from_scope:  # the outer request's deadline: keep its provenance
                from_scope = outer.from_scope
            outer_stall = outer.stall
            if outer_stall is not None:
                stall = outer_stall if stall is None else min(stall, outer_stall)
    return _Budget(call.deadline, call.timeout, stops, from_scope, stall, method, url, urllib3)


def _within(budget: _Budget, state: _ScopeState) -> _ScopeState:
    """``budget`` merged with another scope state: the earliest deadline, all stops."""
    if state.deadline is None or budget.deadline <= state.deadline:
        deadline, timeout = budget.deadline, budget.timeout
    else:
        deadline, timeout = state.deadline, state.timeout  # type: ignore[assignment]
    stops = budget.stops + tuple(s for s in state.stops if s not in budget.stops)
    merged = _Budget(
        deadline,
        timeout,
        stops,
        budget.from_scope or deadline != budget.deadline,
        budget.stall,
        budget.method,
        budget.url,
        budget.urllib3,
    )
    merged.kind, merged.phase = budget.kind, budget.phase
    return merged


def check_budget(budget: _Budget) -> None:
    """Raise at once if ``budget`` has no time left: nothing is started after the deadline."""
    if budget.deadline <= _monotonic():
        budget.kind, budget.phase = CONNECT, "starting the request"  # nothing sent yet
        raise DeadlineExceeded("no time left to start the request", timeout=budget.timeout)


class edge:  # a context manager used like a function, as contextlib's are
    """Install ``budget`` for a block; translate what comes out of it (``translate``)."""

    __slots__ = ("budget", "request", "token")

    def __init__(self, budget: _Budget, request: Any = None) -> None:
        self.budget = budget
        self.request = request
        self.token: Any = None

    def __enter__(self) -> _Budget:
        self.token = _current_scope.set(self.budget)
        return self.budget

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current_scope.reset(self.token)
        if isinstance(exc, Exception):
            error = translate(exc, self.budget, request=self.request)
            if error is not None:
                raise error from exc


# A urllib3 Timeout that tells our pools "a budget is installed: join it". Its
# connect/read values are the per-wait stall limit (None: only the total applies).
class _Joined(urllib3.util.Timeout):
    pass


_JOINED_NO_STALL = _Joined(connect=None, read=None)


def joined(budget: _Budget) -> urllib3.util.Timeout:
    """The ``timeout=`` an edge passes to urllib3 below it: join ``budget``."""
    stall = budget.stall
    return _JOINED_NO_STALL if stall is None else _Joined(connect=stall, read=stall)


def is_joined(timeout: object) -> bool:
    """Whether ``timeout`` came from an edge above (``joined``)."""
    return isinstance(timeout, _Joined)


def _guard_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"guard must be a bool, got {type(value).__name__} {value!r}")
    return value


def _stall(value: object, default: float | None = None) -> float | None:
    if value is None:
        return default
    seconds = validate_timeout(value, "stall_timeout")
    if seconds <= 0:
        raise ValueError(f"stall_timeout must be > 0, got {value!r}")
    return seconds


def _stop(value: object) -> StopLike | None:
    return None if value is None else validate_stop(value)

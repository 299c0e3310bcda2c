"""The HTTP family's engine: one budget per request, carried down to every socket wait.

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
own exceptions. Each edge translates what comes out, in one place (``translate``): an
error with a ``DeadlineExceeded`` in its chain becomes this family's ``Timeout``
subclass for the phase the request was in, raised ``from`` the original. ``Stopped``
is a ``BaseException``: it passes through every layer untouched, and every layer's
clean-up closes the connection it interrupted.
"""

from __future__ import annotations

import contextlib
import copy
import math
import queue
import select
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, cast

import requests.exceptions
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_
from urllib3.util.retry import Retry

from . import _httptls, net, queues
from ._errors import DeadlineExceeded, Stopped
from ._limits import (
    Limits,
    StopLike,
    _current_scope,
    _ScopeState,
    validate_stop,
    validate_timeout,
)
from ._netio import Waiter, wait_ready
from ._wait import wait_condition

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer
    from urllib3._base_connection import _TYPE_BODY
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

__all__ = [
    "BoundedRetry",
    "ConnectTimeout",
    "HTTPConnection",
    "HTTPSConnection",
    "InvalidTimeout",
    "PoolTimeout",
    "ReadTimeout",
    "Timeout",
    "bounded_retry",
    "check_budget",
    "current",
    "edge",
    "is_joined",
    "joined",
    "open_budget",
    "pool_get",
    "seconds_for",
    "translate",
]

_monotonic = time.monotonic

# --- phases ------------------------------------------------------------------------

# What a request was doing when its time ran out: decides the error class.
POOL: Final = 0  # waiting for a pooled connection
CONNECT: Final = 1  # name lookup, TCP connect, proxy tunnel, TLS handshake
SEND: Final = 2  # sending the request line, headers and body
HEADERS: Final = 3  # waiting for the response headers
BODY: Final = 4  # reading the response body
RETRY: Final = 5  # between attempts (backoff, Retry-After)

_SEND_TEXT = "sending the request"
_HEADERS_TEXT = "waiting for the response headers"
_BODY_TEXT = "reading the response body"


# --- errors --------------------------------------------------------------------------


class Timeout(DeadlineExceeded, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
    """An HTTP request ran out of time.

    A ``stoppable.DeadlineExceeded`` (so a ``TimeoutError`` and ``socket.timeout``),
    a ``requests.exceptions.Timeout`` and a ``urllib3.exceptions.TimeoutError``:
    existing ``except`` clauses of each keep working. ``timeout`` is the budget that
    ran out (seconds), ``phase`` what the request was doing (``"waiting for the
    response headers"``...). The message names the request (its URL without
    credentials or query), the timeout and the phase. Raised as is when the time ran
    out while sending the request or waiting to retry; the subclasses below say more.

    Raised to requests' users, it is shaped as requests' own: ``args[0]`` is urllib3's
    error (``ReadTimeoutError``...), whose ``args[0]`` is the message. Raised to
    urllib3's users, ``args[0]`` is the message, as in urllib3's errors.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout: float | None = None,
        phase: str | None = None,
        request: Any = None,
        response: Any = None,
        wrapped: bool = False,
    ) -> None:
        DeadlineExceeded.__init__(self, message, timeout=timeout)
        self.message = message
        """What happened, in words (the request, the timeout, the phase)."""
        self.phase = phase
        """What the request was doing when the time ran out."""
        self.request = request  # as requests' exceptions have
        self.response = response
        self.pool = None  # as urllib3's pool errors have
        self.url = None
        self.wrapped = wrapped
        if wrapped:  # shaped as requests' errors: args[0] is urllib3's error
            self.args = (self._upstream(message),)

    _UPSTREAM: type[urllib3.exceptions.HTTPError] = urllib3.exceptions.TimeoutError
    _UPSTREAM_TEXT = ""

    def _upstream(self, message: str) -> urllib3.exceptions.HTTPError:
        # urllib3's error as urllib3 raises it (a pool error prefixes its pool's name):
        # its message is the one text that says it all.
        error = self._UPSTREAM.__new__(self._UPSTREAM)
        error.args = (f"{self._UPSTREAM_TEXT}{message}",)
        error.pool = error.url = None  # type: ignore[attr-defined]
        return error

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.timeout, self.phase, self.wrapped))


def _rebuild(
    cls: type[Timeout], message: str, timeout: float | None, phase: str | None, wrapped: bool
) -> Timeout:
    return cls(message, timeout=timeout, phase=phase, wrapped=wrapped)


class ConnectTimeout(
    Timeout, requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError
):
    """Time ran out before the request was sent.

    While resolving the name, connecting, opening a proxy tunnel or in the TLS
    handshake. Also ``requests.exceptions.ConnectTimeout`` and urllib3's
    ``ConnectTimeoutError``: nothing reached the server, so it is safe to retry.
    """

    _UPSTREAM = urllib3.exceptions.ConnectTimeoutError
    _UPSTREAM_TEXT = "Connection timed out. "


class PoolTimeout(ConnectTimeout, urllib3.exceptions.EmptyPoolError):  # type: ignore[misc]  # pool/url/__reduce__: ours win
    """Time ran out waiting for a free connection in a full pool (``pool_block``).

    A ``ConnectTimeout`` (nothing was sent), and urllib3's ``EmptyPoolError``.
    """


class ReadTimeout(Timeout, requests.exceptions.ReadTimeout):
    """Time ran out waiting for the response headers or reading the body.

    Also ``requests.exceptions.ReadTimeout``; through ``stoppable.http.PoolManager``
    and the pool classes, urllib3's ``ReadTimeoutError`` too. (Not through requests:
    requests turns a ``ReadTimeoutError`` met while reading a body into a
    ``ConnectionError``, which would hide the timeout.)
    """

    _UPSTREAM = urllib3.exceptions.ReadTimeoutError
    _UPSTREAM_TEXT = "Read timed out. "


class _Urllib3ReadTimeout(ReadTimeout, urllib3.exceptions.ReadTimeoutError):  # type: ignore[misc]  # pool/url/__reduce__: ours win
    """``ReadTimeout`` for urllib3 users: also urllib3's ``ReadTimeoutError``."""


for _cls in (Timeout, ConnectTimeout, PoolTimeout, ReadTimeout, _Urllib3ReadTimeout):
    _cls.__module__ = "stoppable.http"
_Urllib3ReadTimeout.__name__ = _Urllib3ReadTimeout.__qualname__ = "ReadTimeout"


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
        # In requests' and urllib3's words too: what their users may look for.
        raise InvalidTimeout(
            f"{exc}; it must be an int, float or None (None: the default total, if any)"
        ) from None


class InvalidTimeout(TypeError, ValueError):
    """A timeout that is not a number (``"foo"``, ``True``...) or not one total.

    Also a ``(connect, read)`` tuple or a ``urllib3.Timeout`` with a connect or read
    limit: stoppable.http's timeout is one total for the whole request (a
    ``urllib3.Timeout(total=...)`` alone is accepted: it is one).

    A ``TypeError``, as stoppable's other families raise, and a ``ValueError``, as
    requests and urllib3 raise for the same value: existing ``except`` clauses work.
    """


def _total_only(timeout: urllib3.util.Timeout) -> bool:
    """Whether a urllib3 ``Timeout`` gives a total and nothing else: one total, as ours."""
    unset = (None, urllib3.util.timeout._DEFAULT_TIMEOUT)
    # Private there: a urllib3 without them has such a Timeout refused, as any other.
    connect = getattr(timeout, "_connect", 0)
    read = getattr(timeout, "_read", 0)
    return timeout.total is not None and connect in unset and read in unset


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


# --- translating errors: the one place ---------------------------------------------------


def _chain(error: BaseException) -> Generator[BaseException]:
    """``error`` and every exception it wraps (cause, context, reason, args), once each."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        item = todo.pop(0)
        if id(item) in seen or len(seen) > 32:
            continue
        seen.add(id(item))
        yield item
        reason = getattr(item, "reason", None)
        for linked in (item.__cause__, item.__context__, reason, *item.args):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _redact(url: str) -> str:
    """``url`` for a message: no userinfo (credentials), no query (tokens)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "?..." if parts.query else ""
    if not parts.scheme:
        return f"{parts.path}{query}"
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def _error_class(budget: _Budget) -> type[Timeout]:
    kind = budget.kind
    if kind == POOL:
        return PoolTimeout
    if kind == CONNECT:
        return ConnectTimeout
    if kind in (HEADERS, BODY):
        return _Urllib3ReadTimeout if budget.urllib3 else ReadTimeout
    return Timeout


def translate(error: BaseException, budget: _Budget, *, request: Any = None) -> Timeout | None:
    """The family's timeout error for ``error``, or ``None`` to let ``error`` pass.

    ``error`` (from requests, urllib3 or http.client) is a timeout if a
    ``DeadlineExceeded`` is anywhere in what it wraps; the error class and message
    come from the phase ``budget`` was in.
    """
    if isinstance(error, Timeout):
        return None
    found = next((item for item in _chain(error) if isinstance(item, DeadlineExceeded)), None)
    if found is None:
        return None
    if isinstance(found, Timeout):  # already ours, wrapped by a layer above: unwrap
        return type(found)(
            found.message,
            timeout=found.timeout,
            phase=found.phase,
            request=request or found.request,
            wrapped=found.wrapped,
        )
    what = f"{budget.method} {_redact(budget.url)}"
    phase = budget.phase
    detail = f" ({budget.detail})" if budget.detail else ""
    timeout = budget.timeout
    if budget.kind == RETRY and budget.detail:
        message = f"{what}: {budget.detail}, which would pass the deadline (timeout={timeout:g} s)"
    elif budget.stall is not None and budget.deadline > _monotonic():
        timeout = budget.stall
        message = f"{what} stalled: no progress for {timeout:g} s (stall_timeout) while {phase}"
    elif budget.from_scope:
        message = (
            f"{what} ran out of time while {phase}{detail}: the enclosing stoppable.scope's "
            f"deadline (timeout={timeout:g} s) passed"
        )
    else:
        message = f"{what} timed out after {timeout:g} s while {phase}{detail}"
    return _error_class(budget)(
        message, timeout=timeout, phase=phase, request=request, wrapped=not budget.urllib3
    )


# --- waiting between attempts ---------------------------------------------------------


def _pause(seconds: float, why: str) -> None:
    """Wait ``seconds`` before a retry: stoppable, and never past the request's deadline.

    A wait that would end after the deadline is not started: the request fails now.
    """
    if seconds <= 0:
        return
    budget = current()
    if budget is None:  # pragma: no cover - retries only run under an edge
        return
    if seconds >= budget.deadline - _monotonic():
        budget.kind, budget.phase = RETRY, "waiting to retry"
        budget.detail = f"waiting {seconds:g} s to retry ({why})"
        raise DeadlineExceeded(budget.detail, timeout=budget.timeout)
    call = Limits(seconds, None, why)  # the installed budget's stops end it at once
    cond = threading.Condition(threading.Lock())
    with cond, contextlib.suppress(DeadlineExceeded):
        wait_condition(call, cond, lambda: False)


class BoundedRetry(Retry):
    """urllib3's ``Retry``, bounded by the request's budget.

    Its waits (backoff, ``Retry-After``) are stoppable and never run past the deadline,
    and once the deadline has passed it retries nothing: the last error is raised.
    ``bounded_retry`` makes one from any ``Retry`` (subclasses keep their methods).
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> BoundedRetry:
        budget = current()
        if budget is not None and budget.deadline <= _monotonic():
            if error is not None:  # as urllib3 when it may retry no more
                if self.total is False:
                    raise error
                raise urllib3.exceptions.MaxRetryError(
                    cast(Any, _pool), url or "", error
                ) from error
            budget.kind, budget.phase = RETRY, "about to follow a redirect or retry"
            raise DeadlineExceeded("no time left to retry", timeout=budget.timeout)
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after:
            _pause(retry_after, "Retry-After")
            return True
        return False

    def _sleep_backoff(self) -> None:
        _pause(self.get_backoff_time(), "retry backoff")


_bounded_classes: dict[type[Retry], type[BoundedRetry]] = {Retry: BoundedRetry}


def bounded_retry(retry: Retry) -> BoundedRetry:
    """``retry`` as a ``BoundedRetry`` (a copy; ``retry`` itself is not changed)."""
    if isinstance(retry, BoundedRetry):
        return retry
    cls = type(retry)
    bounded = _bounded_classes.get(cls)
    if bounded is None:
        bounded = type(f"Bounded{cls.__name__}", (BoundedRetry, cls), {"__module__": __name__})
        _bounded_classes[cls] = bounded
    result = copy.copy(retry)
    result.__class__ = bounded
    return result  # type: ignore[return-value]


# --- the socket ------------------------------------------------------------------------


_PLAIN = socket.socket
_DONTWAIT: int = int(getattr(socket, "MSG_DONTWAIT", 0))  # an int: IntFlag | is slow


def _late(budget: _Budget) -> DeadlineExceeded:
    return DeadlineExceeded("the request's deadline passed", timeout=budget.timeout)


class _Socket(net.Socket):
    """The connection's ``net.Socket``, keeping the budget of its current request.

    During a call the budget is the installed scope; a read or write made after the
    call returned (a streamed body) installs it again, merged with whatever scope the
    reader is in, so the body keeps its deadline and stops until it is consumed.
    """

    __slots__ = ("_waiter", "budget")

    def __init__(self, sock: socket.socket, budget: _Budget | None) -> None:
        super().__init__(sock)
        self.budget = budget
        self._waiter: tuple[_Budget, int, Limits, Waiter] | None = None

    def _enter(self) -> Any:
        budget = self.budget
        state = _current_scope.get()
        if budget is None or state is budget:
            return None
        return _current_scope.set(budget if state is None else _within(budget, state))

    def recv_into(
        self,
        buffer: WriteableBuffer,
        nbytes: int = 0,
        flags: int = 0,
        *,
        timeout: float | None = None,
    ) -> int:
        budget = self.budget
        if budget is None or timeout is not None:
            return super().recv_into(buffer, nbytes, flags, timeout=timeout)
        state = _current_scope.get()
        if state is not budget and state is not None:  # read inside another scope
            token = _current_scope.set(_within(budget, state))
            try:
                return super().recv_into(buffer, nbytes, flags)
            finally:
                _current_scope.reset(token)
        # The body's hot path: the stops and the deadline first (a body that keeps
        # flowing must still end by the deadline), then one try that cannot block.
        for stop in budget.stops:
            if stop.is_set():
                raise Stopped(getattr(stop, "reason", None))
        if _monotonic() >= budget.deadline:
            raise _late(budget)
        sock = self._sock
        if _DONTWAIT and sock.__class__ is _PLAIN and sock.gettimeout() is None:
            try:
                return sock.recv_into(buffer, nbytes, flags | _DONTWAIT)
            except BlockingIOError:
                pass
            if state is budget:
                return self._wait_recv_into(budget, buffer, nbytes, flags)
            token = _current_scope.set(budget)
            try:
                return self._wait_recv_into(budget, buffer, nbytes, flags)
            finally:
                _current_scope.reset(token)
        if state is budget:
            return super().recv_into(buffer, nbytes, flags)
        token = _current_scope.set(budget)
        try:
            return super().recv_into(buffer, nbytes, flags)
        finally:
            _current_scope.reset(token)

    def _wait_recv_into(self, budget: _Budget, buffer: Any, nbytes: int, flags: int) -> int:
        """Wait (the one waiting loop, woken by the stops' descriptors), then receive.

        What ``net`` does for a blocked ``recv_into``, with the call's limits and its
        ``poll`` waiter kept for the whole request instead of made for each wait: a
        body arriving faster than it is read waits hundreds of times per megabyte.
        Called with ``budget`` installed as the scope: the limits are its.
        """
        sock = self._sock
        fd = sock.fileno()
        cached = self._waiter
        if cached is None or cached[0] is not budget or cached[1] != fd:
            call = Limits(math.inf, None, "recv_into")  # the budget's deadline and stops
            cached = self._waiter = (budget, fd, call, Waiter(call, fd, select.POLLIN))
        _, _, call, waiter = cached

        def op(target: Any, extra: int) -> int:
            count: int = target.recv_into(buffer, nbytes, flags | extra)
            return count

        return wait_ready(
            call, sock, sock, _DONTWAIT, op, select.POLLIN, DeadlineExceeded, waiter=waiter
        )

    def recv(self, bufsize: int, flags: int = 0, *, timeout: float | None = None) -> bytes:
        token = self._enter()
        if token is None:
            return super().recv(bufsize, flags, timeout=timeout)
        try:
            return super().recv(bufsize, flags, timeout=timeout)
        finally:
            _current_scope.reset(token)

    def send(self, data: ReadableBuffer, flags: int = 0, *, timeout: float | None = None) -> int:
        token = self._enter()
        if token is None:
            return super().send(data, flags, timeout=timeout)
        try:
            return super().send(data, flags, timeout=timeout)
        finally:
            _current_scope.reset(token)

    def sendall(
        self, data: ReadableBuffer, flags: int = 0, *, timeout: float | None = None
    ) -> None:
        budget = self.budget
        if budget is not None and _monotonic() >= budget.deadline:
            raise _late(budget)  # an upload that keeps flowing must still end in time
        token = self._enter()
        if token is None:
            return super().sendall(data, flags, timeout=timeout)
        try:
            return super().sendall(data, flags, timeout=timeout)
        finally:
            _current_scope.reset(token)


# --- the response ----------------------------------------------------------------------


def _again(error: BaseException) -> Callable[[], BaseException]:
    """What every later read of a response interrupted by ``error`` raises."""
    if isinstance(error, Stopped):
        reason = error.reason
        return lambda: Stopped(reason)
    if isinstance(error, Timeout):
        cls, message, timeout, phase = type(error), error.message, error.timeout, error.phase
        wrapped = error.wrapped
        return lambda: cls(message, timeout=timeout, phase=phase, wrapped=wrapped)
    return lambda: urllib3.exceptions.ProtocolError(
        "Connection broken: an earlier read of this response failed", error
    )


class _Response(urllib3.response.HTTPResponse):
    """urllib3's response that never lets an interrupted body look complete.

    Made by changing the class of the response urllib3 built (it adds no state of its
    own beyond two attributes). Once a read fails (a stop, a deadline, a reset), every
    later read raises again: urllib3 alone would find the connection closed and
    report the end of a body delimited by the connection's close. After the call
    returned (a streamed body), this is also the edge that translates errors; during
    the call, errors go up and the call's edge translates them.
    """

    _stoppable_budget: _Budget | None = None
    _stoppable_broken: Callable[[], BaseException] | None = None

    def _stoppable_check(self) -> None:
        broken = self._stoppable_broken
        if broken is not None:
            raise broken()

    @contextlib.contextmanager
    def _error_catcher(self) -> Generator[None]:
        self._stoppable_check()
        try:
            with super()._error_catcher():
                yield
            self._stoppable_check()  # shut down meanwhile: its "end" is not the end
        except BaseException as exc:
            self._stoppable_broken = _again(exc)
            budget = self._stoppable_budget
            if budget is None or _current_scope.get() is budget or not isinstance(exc, Exception):
                raise
            error = translate(exc, budget)
            if error is None:
                raise
            self._stoppable_broken = _again(error)
            raise error from exc

    def shutdown(self) -> None:
        """As urllib3's ``shutdown``, but the body it cuts short never looks complete.

        Shutting the socket down wakes a blocked read with an end of file, which would
        make a body delimited by the connection's close look whole: every read from
        now on (the woken one included) raises ``ProtocolError`` instead.
        """
        self._stoppable_broken = lambda: urllib3.exceptions.ProtocolError(
            "Connection broken: the response was shut down (HTTPResponse.shutdown) before its end"
        )
        try:
            super().shutdown()
        except BaseException:
            self._stoppable_broken = None
            raise

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes]:
        """As urllib3's ``stream``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        yield from super().stream(amt, decode_content)

    def read(
        self,
        amt: int | None = None,
        decode_content: bool | None = None,
        cache_content: bool = False,
    ) -> bytes:
        """As urllib3's ``read``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        return super().read(amt, decode_content, cache_content)

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        """As urllib3's ``read1``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        return super().read1(amt, decode_content)

    def read_chunked(
        self, amt: int | None = None, decode_content: bool | None = None
    ) -> Generator[bytes]:
        """As urllib3's ``read_chunked``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        yield from super().read_chunked(amt, decode_content)


# --- connections ----------------------------------------------------------------------


def _show(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


if TYPE_CHECKING:
    _ConnectionBase = urllib3.connection.HTTPConnection
else:
    _ConnectionBase = object


class _Bounded(_ConnectionBase):
    """What both connection classes change.

    They connect through ``stoppable.net``, keep the budget on the socket, track the
    request's phase, and hand out a response that never looks complete when cut short.
    """

    # The pool that made this connection (a weak reference), whose timeout and stop
    # apply to the connection used directly, outside any request of the pool.
    _stoppable_pool: Callable[[], Any] | None = None
    # The total for a call outside a request when neither the pool nor the connection
    # gives one (a subclass's choice; compat/substitute.py sets it). None: refused.
    _stoppable_default_total: float | None = None

    def _wait_seconds(self) -> float:
        """``timeout=`` for a net call: the stall limit, else the whole budget."""
        budget = current()
        timeout = self.timeout
        if isinstance(timeout, int | float) and timeout > 0:
            return float(timeout)
        if budget is None:  # pragma: no cover - every entry point installs one
            raise TypeError("a stoppable.http connection used outside a request")
        return budget.timeout

    def _outside(self, method: str = "", url: str = "") -> contextlib.AbstractContextManager[Any]:
        """A budget for a call made outside any request: the connection used directly.

        As urllib3 gives such a call its pool's timeout, each call gets the pool's
        total ``timeout`` (else the connection's own ``timeout``), with the pool's stop.
        """
        if current() is not None:
            return contextlib.nullcontext()
        ref = self._stoppable_pool
        pool = None if ref is None else ref()
        seconds = getattr(pool, "total_timeout", None)
        if seconds is None:
            own = self.timeout
            if own.__class__ in (int, float) and own > 0:
                seconds = float(own)
            elif self._stoppable_default_total is not None:
                seconds = self._stoppable_default_total
            else:
                raise TypeError(
                    "timeout is required: a stoppable.http connection used outside a "
                    "request takes its pool's timeout (or its own timeout=), and has neither"
                )
        target = url if "://" in url else f"{_show(self.host, self.port)}{url}"
        budget = open_budget(
            seconds,
            None,
            getattr(pool, "stop", None),
            method,
            target,
            getattr(pool, "stall_timeout", None),
            urllib3=True,
        )
        return edge(budget)

    def connect(self) -> None:
        with self._outside():
            super().connect()

    def _new_conn(self) -> Any:
        with self._outside():
            return self._bounded_conn()

    def _bounded_conn(self) -> Any:
        host, port = self._dns_host, self.port
        target = _show(host, port)
        _phase(
            CONNECT,
            f"connecting to the proxy {target}" if self.proxy else f"connecting to {target}",
        )
        create = urllib3.util.connection.create_connection
        try:
            if create is not _CREATE_CONNECTION:
                return self._replaced_conn(create)
            sock = net.connect(
                (host, port), timeout=self._wait_seconds(), source_address=self.source_address
            )
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        except DeadlineExceeded as exc:
            budget = current()
            if budget is not None and "resolver" in str(exc):
                budget.phase = f"resolving {host!r}"
            raise
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(
                self,
                f"Failed to establish a new connection: {exc}",
            ) from exc
        try:
            for option in self.socket_options or ():
                sock.setsockopt(*option)
        except BaseException:
            sock.close()
            raise
        sys.audit("http.client.connect", self, self.host, self.port)
        return _Socket(sock, current())

    def _replaced_conn(self, create: Callable[..., Any]) -> Any:
        """Connect with a replaced ``urllib3.util.connection.create_connection``.

        Code that replaces it (a resolver of its own, a test's mock) is honoured, as
        urllib3 honours it: it gets the time left as its timeout (its name lookup is
        its own, beyond stoppable's reach). A real socket it returns is bounded as
        usual from then on; anything else is used as it is.
        """
        try:
            sock = create(
                (self._dns_host, self.port),
                self._wait_seconds(),
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            if isinstance(exc, DeadlineExceeded):
                raise
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out."
            ) from exc
        if issubclass(type(sock), socket.socket):  # type(): a mock may pass isinstance
            sys.audit("http.client.connect", self, self.host, self.port)
            return _Socket(sock, current())
        return sock

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: _TYPE_BODY | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        with self._outside(method, url):
            if self.sock is None:
                self.connect()
            sock = self.sock
            if sock.__class__ is _Socket:
                sock.budget = current()
            _phase(SEND, _SEND_TEXT)
            super().request(
                method,
                url,
                body=body,
                headers=headers,
                chunked=chunked,
                preload_content=preload_content,
                decode_content=decode_content,
                enforce_content_length=enforce_content_length,
            )

    def getresponse(self) -> Any:
        with self._outside():
            sock = self.sock
            if sock.__class__ is _Socket and current() is not sock.budget:
                sock.budget = current()  # a call of its own: its budget, until read
            return self._bounded_response()

    def _bounded_response(self) -> Any:
        budget = current()
        options = self._response_options
        preload = options is not None and options.preload_content
        if preload and options is not None:  # read below, once the response knows its phase
            self._response_options = options._replace(preload_content=False)
        _phase(HEADERS, _HEADERS_TEXT)
        response = super().getresponse()
        response.__class__ = _Response
        response = cast(_Response, response)
        response._stoppable_budget = budget
        _phase(BODY, _BODY_TEXT)
        if preload and options is not None:
            response._body = response.read(decode_content=options.decode_content)
        return response


class HTTPConnection(_Bounded, urllib3.connection.HTTPConnection):
    """urllib3's ``HTTPConnection`` whose every wait honours the request's budget."""


class HTTPSConnection(_Bounded, urllib3.connection.HTTPSConnection):
    """urllib3's ``HTTPSConnection``: connect and TLS handshake through ``stoppable.net``.

    TLS settings follow urllib3's rules, never weaker (see ``stoppable._httptls``):
    ``cert_reqs``, the CA and client certificate files, ``assert_hostname`` and
    ``assert_fingerprint`` apply to a given ``ssl_context`` too.
    """

    def connect(self) -> None:
        with self._outside():
            sock = self._new_conn()
            self.sock = sock
            try:
                self._connect_tls(sock)
            except BaseException:
                sock.close()  # dead, but kept as urllib3 keeps it: close() is the owner's
                raise

    def _connect_tls(self, sock: _Socket) -> None:
        server_hostname = self.host
        if self._tunnel_host is not None:
            if self._tunnel_scheme == "https":
                raise urllib3.exceptions.ProxySchemeUnsupported(
                    "stoppable.http does not support HTTPS proxies (TLS within TLS)"
                )
            self.proxy_is_verified = False
            self._has_connected_to_proxy = True
            _phase(CONNECT, "opening a tunnel through the proxy (CONNECT)")
            self._tunnel()
            server_hostname = self._tunnel_host
        elif self.proxy is not None and self.proxy.scheme == "https":
            raise urllib3.exceptions.ProxySchemeUnsupported(
                "stoppable.http does not support HTTPS proxies"
            )
        if self.server_hostname is not None:
            server_hostname = self.server_hostname
        _httptls.warn_if_clock_is_off()
        server_hostname = _httptls.server_hostname(server_hostname)
        context, made_here, verify_mode = _httptls.context_for(self)
        _phase(CONNECT, f"TLS handshake with {_show(self.host, self.port)}")
        bounded = issubclass(type(sock), socket.socket | net.Socket)
        if bounded:
            tls = net.start_tls(
                sock, context, timeout=self._wait_seconds(), server_hostname=server_hostname
            )
        else:  # not a socket (a replaced create_connection's): urllib3's own wrapping
            wrap: Any = getattr(  # looked up as urllib3 does, so a patch applies
                urllib3.connection, "ssl_wrap_socket", urllib3.util.ssl_.ssl_wrap_socket
            )
            tls = wrap(sock=sock, server_hostname=server_hostname, ssl_context=context)
        try:
            verified = _httptls.check_peer(
                self, tls, context, server_hostname, made_here, verify_mode
            )
        except BaseException:
            tls.close()
            raise
        self.sock = _Socket(tls, current()) if bounded else tls
        self.is_verified = verified and not self.proxy_is_forwarding
        self._has_connected_to_proxy = bool(self.proxy)
        if self._has_connected_to_proxy and self.proxy_is_verified is None:
            self.proxy_is_verified = verified


_CREATE_CONNECTION: Final = urllib3.util.connection.create_connection


# --- the pool's queue ------------------------------------------------------------------


def pool_get(pool: Any, pool_timeout: float | None) -> Any:
    """An item of a ``pool_block`` pool's queue, waited for within the budget.

    The item is a connection, or ``None`` for a new one; ``pool_timeout`` (urllib3's
    own limit on this wait) may end the wait sooner.

    Raises ``Stopped``, or urllib3's ``EmptyPoolError`` from the ``DeadlineExceeded``:
    urllib3 passes that error up as is (a full pool is not retried), and the edge
    makes it a ``PoolTimeout``.
    """
    pool_queue = pool.pool
    try:
        return pool_queue.get(block=False)
    except queue.Empty:
        pass
    budget = current()
    if budget is None:  # pool._get_conn() called directly: the pool's own limits
        seconds = pool_timeout if pool_timeout is not None else pool.total_timeout
        if seconds is None:
            raise TypeError(
                "timeout is required: waiting for a free connection outside a request "
                "takes the pool's timeout (or _get_conn(timeout=)), and it has neither"
            )
        try:
            return queues.get(pool_queue, timeout=seconds, stop=pool.stop)
        except DeadlineExceeded as exc:
            raise urllib3.exceptions.EmptyPoolError(
                pool, "Pool is empty and a new connection can't be opened due to blocking mode."
            ) from exc
    _phase(POOL, "waiting for a free connection in the pool (pool_block)")
    seconds = budget.timeout if pool_timeout is None else min(budget.timeout, pool_timeout)
    try:
        return queues.get(pool_queue, timeout=seconds)
    except Stopped:
        # urllib3 puts a slot back into the pool after any error but its own
        # EmptyPoolError; none was taken here (see HTTPConnectionPool._put_conn).
        budget.no_slot = True
        raise
    except DeadlineExceeded as exc:
        raise urllib3.exceptions.EmptyPoolError(
            pool, "no connection was freed in time (pool_block)"
        ) from exc

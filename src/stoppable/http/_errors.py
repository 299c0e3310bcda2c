"""The HTTP family's errors, and the one place foreign errors become them."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final

import requests
import requests.adapters
import requests.exceptions
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_

from .._errors import DeadlineExceeded

if TYPE_CHECKING:
    from ._budget import _Budget

    pass

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


class RequestDeadline(
    DeadlineExceeded, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError
):
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
    cls: type[RequestDeadline],
    message: str,
    timeout: float | None,
    phase: str | None,
    wrapped: bool,
) -> RequestDeadline:
    return cls(message, timeout=timeout, phase=phase, wrapped=wrapped)


class ConnectDeadline(
    RequestDeadline, requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError
):
    """Time ran out before the request was sent.

    While resolving the name, connecting, opening a proxy tunnel or in the TLS
    handshake. Also ``requests.exceptions.ConnectTimeout`` and urllib3's
    ``ConnectTimeoutError``: nothing reached the server, so it is safe to retry.
    """

    _UPSTREAM = urllib3.exceptions.ConnectTimeoutError
    _UPSTREAM_TEXT = "Connection timed out. "


class PoolWaitDeadline(ConnectDeadline, urllib3.exceptions.EmptyPoolError):  # type: ignore[misc]  # pool/url/__reduce__: ours win
    """Time ran out waiting for a free connection in a full pool (``pool_block``).

    A ``ConnectDeadline`` (nothing was sent), and urllib3's ``EmptyPoolError``.
    """


class ReadDeadline(RequestDeadline, requests.exceptions.ReadTimeout):
    """Time ran out waiting for the response headers or reading the body.

    Also ``requests.exceptions.ReadTimeout``; through ``stoppable.http.PoolManager``
    and the pool classes, urllib3's ``ReadTimeoutError`` too. (Not through requests:
    requests turns a ``ReadTimeoutError`` met while reading a body into a
    ``ConnectionError``, which would hide the timeout.)
    """

    _UPSTREAM = urllib3.exceptions.ReadTimeoutError
    _UPSTREAM_TEXT = "Read timed out. "


class _Urllib3ReadDeadline(ReadDeadline, urllib3.exceptions.ReadTimeoutError):  # type: ignore[misc]  # pool/url/__reduce__: ours win
    """``ReadDeadline`` for urllib3 users: also urllib3's ``ReadTimeoutError``."""


for _cls in (
    RequestDeadline,
    ConnectDeadline,
    PoolWaitDeadline,
    ReadDeadline,
    _Urllib3ReadDeadline,
):
    _cls.__module__ = "stoppable.http"
_Urllib3ReadDeadline.__name__ = _Urllib3ReadDeadline.__qualname__ = "ReadDeadline"


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


def _error_class(budget: _Budget) -> type[RequestDeadline]:
    kind = budget.kind
    if kind == POOL:
        return PoolWaitDeadline
    if kind == CONNECT:
        return ConnectDeadline
    if kind in (HEADERS, BODY):
        return _Urllib3ReadDeadline if budget.urllib3 else ReadDeadline
    return RequestDeadline


def translate(
    error: BaseException, budget: _Budget, *, request: Any = None
) -> RequestDeadline | None:
    """The family's timeout error for ``error``, or ``None`` to let ``error`` pass.

    ``error`` (from requests, urllib3 or http.client) is a timeout if a
    ``DeadlineExceeded`` is anywhere in what it wraps; the error class and message
    come from the phase ``budget`` was in.
    """
    if isinstance(error, RequestDeadline):
        return None
    found = next((item for item in _chain(error) if isinstance(item, DeadlineExceeded)), None)
    if found is None:
        return None
    if isinstance(found, RequestDeadline):  # already ours, wrapped by a layer above: unwrap
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

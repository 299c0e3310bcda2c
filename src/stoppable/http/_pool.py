"""urllib3's pools and pool managers, with a total deadline per request."""

from __future__ import annotations

import contextlib
import queue
import time
import weakref
from typing import TYPE_CHECKING, Any

import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_
from urllib3.util.connection import is_connection_dropped
from urllib3.util.retry import Retry

from .. import _compat, queues
from .._errors import DeadlineExceeded, Stopped
from .._limits import Limits, StopLike, get_poll_interval
from ._budget import (
    _DEFAULT_TIMEOUT,
    _phase,
    _stall,
    _stop,
    check_budget,
    current,
    edge,
    is_joined,
    joined,
    open_budget,
    seconds_for,
)
from ._connection import HTTPConnection, HTTPSConnection
from ._errors import POOL
from ._retry import _retries

if TYPE_CHECKING:
    pass

_monotonic = time.monotonic

# --- the pool's queue ------------------------------------------------------------------


def pool_get(pool: Any, pool_timeout: float | None) -> Any:
    """An item of a ``pool_block`` pool's queue, waited for within the budget.

    The item is a connection, or ``None`` for a new one; ``pool_timeout`` (urllib3's
    own limit on this wait) may end the wait sooner. Where the queue cannot be
    reached (``_compat.URLLIB3_POOL_QUEUE`` false), urllib3's own wait in slices
    (``_polled_get``), which returns a connection.

    Raises ``Stopped``, or urllib3's ``EmptyPoolError`` from the ``DeadlineExceeded``:
    urllib3 passes that error up as is (a full pool is not retried), and the edge
    makes it a ``PoolWaitDeadline``.
    """
    pool_queue = _compat.urllib3_pool_queue(pool)
    if pool_queue is None:
        if _compat.URLLIB3_POOL_QUEUE:  # closed meanwhile
            raise urllib3.exceptions.ClosedPoolError(pool, "Pool is closed.")
        return _polled_get(pool, pool_timeout)
    try:
        return pool_queue.get(block=False)
    except queue.Empty:
        pass
    budget = current()
    if budget is None:  # pool._get_conn() called directly: the pool's own limits
        seconds = _outside_seconds(pool, pool_timeout)
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


def _outside_seconds(pool: Any, pool_timeout: float | None) -> float:
    seconds: float | None = pool_timeout if pool_timeout is not None else pool.total_timeout
    if seconds is None:
        raise TypeError(
            "timeout is required: waiting for a free connection outside a request "
            "takes the pool's timeout (or _get_conn(timeout=)), and it has neither"
        )
    return seconds


def _polled_get(pool: Any, pool_timeout: float | None) -> Any:
    """urllib3's own wait for a free connection, in slices that notice the stops.

    The fallback where the pool's queue cannot be reached: correct, only slower to
    notice a stop (``stoppable.set_poll_interval``). Returns a connection.
    """
    budget = current()
    if budget is None:
        seconds = _outside_seconds(pool, pool_timeout)
        call = Limits(seconds, pool.stop, "waiting for the pool")
        deadline, stops = call.deadline, call.stops
    else:
        _phase(POOL, "waiting for a free connection in the pool (pool_block)")
        seconds, deadline, stops = budget.timeout, budget.deadline, budget.stops
        if pool_timeout is not None and _monotonic() + pool_timeout < deadline:
            seconds, deadline = pool_timeout, _monotonic() + pool_timeout
    while True:
        for stop in stops:
            if stop.is_set():
                if budget is not None:
                    budget.no_slot = True  # as pool_get: no slot was taken
                raise Stopped(getattr(stop, "reason", None))
        left = deadline - _monotonic()
        try:
            return urllib3.HTTPConnectionPool._get_conn(
                pool, timeout=max(0.0, min(left, get_poll_interval()))
            )
        except urllib3.exceptions.EmptyPoolError as exc:
            if left <= 0:  # as pool_get: from the deadline, which the edge translates
                raise exc from DeadlineExceeded(
                    "no connection was freed in time (pool_block)", timeout=seconds
                )


# --- urllib3: pools and pool managers --------------------------------------------------


class HTTPConnectionPool(urllib3.HTTPConnectionPool):
    """urllib3's ``HTTPConnectionPool`` whose requests honour a total deadline and a stop.

    ``timeout`` (seconds) is the default total per request, ``stop`` applies to every
    request, ``stall_timeout`` optionally limits each wait for the peer; the other
    arguments are urllib3's. ``urlopen``/``request`` take ``timeout`` (required if the
    pool has no default), ``stop`` and ``stall_timeout``; retries and redirects share
    the one deadline, and a ``block=True`` pool waits for a free connection within it.
    """

    ConnectionCls = HTTPConnection

    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: float | None = None,
        *args: Any,
        stop: StopLike | None = None,
        stall_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.total_timeout = None if timeout is None else seconds_for(timeout, None)
        """The default total per request (seconds), or ``None``: each call gives one."""
        self.stop = _stop(stop)
        """A stop for every request of this pool (beside each request's own)."""
        self.stall_timeout = _stall(stall_timeout)
        """The default limit on each wait for the peer, or ``None``."""
        # urllib3's view of it: no single connect or read outlasts the total.
        total = self.total_timeout
        upstream = _DEFAULT_TIMEOUT if total is None else urllib3.Timeout(connect=total, read=total)
        super().__init__(host, port, upstream, *args, **kwargs)

    def _get_conn(self, timeout: float | None = None) -> Any:
        if not self.block or not _compat.URLLIB3_POOL_QUEUE:
            if self.block:  # urllib3's own wait, in slices that notice the stops
                return pool_get(self, timeout)
            return super()._get_conn(timeout)
        try:
            conn = pool_get(self, timeout)
        except AttributeError:  # closed meanwhile: the queue went away under us
            raise urllib3.exceptions.ClosedPoolError(self, "Pool is closed.") from None
        if conn and is_connection_dropped(conn):
            conn.close()
        return conn or self._new_conn()

    def _new_conn(self) -> Any:
        conn = super()._new_conn()
        conn._stoppable_pool = weakref.ref(self)  # type: ignore[attr-defined]  # used directly
        return conn

    def _put_conn(self, conn: Any) -> None:
        budget = current()
        if conn is None and budget is not None and budget.no_slot:
            budget.no_slot = False  # a stopped pool wait took no slot: give none back
            return
        super()._put_conn(conn)

    def urlopen(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        retries: Retry | bool | int | None = None,
        redirect: bool = True,
        assert_same_host: bool = True,
        timeout: Any = _DEFAULT_TIMEOUT,
        pool_timeout: int | None = None,
        release_conn: bool | None = None,
        chunked: bool = False,
        body_pos: Any = None,
        preload_content: bool = True,
        decode_content: bool = True,
        *,
        stop: StopLike | None = None,
        stall_timeout: float | None = None,
        **response_kw: Any,
    ) -> urllib3.BaseHTTPResponse:
        """As urllib3's ``urlopen``, within ``timeout`` seconds in all and until ``stop``.

        ``timeout`` defaults to the pool's ``timeout``; one of them is required.
        Raises ``RequestDeadline`` (``ConnectDeadline``, ``PoolWaitDeadline``,
        ``ReadDeadline``, each also urllib3's timeout error), ``stoppable.Stopped``, or
        urllib3's errors.
        """
        bounded = _retries(retries, redirect, self.retries)
        if is_joined(timeout):  # a request of an edge above: its budget is installed
            budget = current()
            opened: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        else:
            seconds = seconds_for(
                None if timeout is _DEFAULT_TIMEOUT else timeout, self.total_timeout
            )
            target = (
                url if not url.startswith("/") else f"{self.scheme}://{self.host}:{self.port}{url}"
            )
            stall = _stall(stall_timeout, self.stall_timeout)
            budget = open_budget(seconds, stop, self.stop, method, target, stall, urllib3=True)
            opened = edge(budget)
            timeout = joined(budget)
        with opened:
            if budget is not None:
                check_budget(budget)
            return super().urlopen(
                method,
                url,
                body,
                headers,
                bounded,
                redirect,
                assert_same_host,
                timeout,
                pool_timeout,
                release_conn,
                chunked,
                body_pos,
                preload_content,
                decode_content,
                **response_kw,
            )


class HTTPSConnectionPool(HTTPConnectionPool, urllib3.HTTPSConnectionPool):
    """urllib3's ``HTTPSConnectionPool``, bounded as ``HTTPConnectionPool`` is.

    The TLS handshake is part of the deadline; verification follows urllib3's rules,
    never weaker (see ``stoppable.http._tls``).
    """

    ConnectionCls = HTTPSConnection  # type: ignore[assignment]


_POOL_CLASSES: dict[str, type[urllib3.HTTPConnectionPool]] = {
    "http": HTTPConnectionPool,
    "https": HTTPSConnectionPool,
}


class PoolManager(urllib3.PoolManager):
    """urllib3's ``PoolManager`` whose requests honour a total deadline and a stop.

    ::

        manager = http.PoolManager(timeout=10, stop=stop)
        response = manager.request("GET", url)                  # 10 s in all
        response = manager.request("GET", url, timeout=2)       # or 2 s

    ``timeout`` (seconds) is the default total per request, ``stop`` applies to all
    its requests, ``stall_timeout`` optionally limits each wait for the peer; other
    keyword arguments go to the pools, as with urllib3. Each request (``request``,
    ``urlopen``...) may give its own ``timeout``, ``stop`` and ``stall_timeout``. One
    deadline covers redirects, retries (urllib3 retries 3 times by default: never past
    the deadline) and a streamed body (``preload_content=False``) until it is read.
    """

    def __init__(
        self,
        num_pools: int = 10,
        headers: Any = None,
        *,
        timeout: float | None = None,
        stop: StopLike | None = None,
        stall_timeout: float | None = None,
        **connection_pool_kw: Any,
    ) -> None:
        self._configure(timeout, stop, stall_timeout)
        super().__init__(num_pools, headers, **connection_pool_kw)
        self.pool_classes_by_scheme = _POOL_CLASSES

    def _configure(self, timeout: object, stop: object, stall_timeout: object) -> None:
        self.timeout: float | None = None if timeout is None else seconds_for(timeout, None)
        """The default total per request (seconds), or ``None``: each call gives one."""
        self.stop: StopLike | None = _stop(stop)
        """A stop for every request (beside each request's own)."""
        self.stall_timeout: float | None = _stall(stall_timeout)
        """The default limit on each wait for the peer, or ``None``."""

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> urllib3.HTTPConnectionPool:
        """A pool with the manager's defaults: ``timeout``, ``stop``, ``stall_timeout``.

        So a pool taken from the manager (``connection_from_url``...) and used
        directly behaves as the manager's requests do, as with urllib3.
        """
        if request_context is None:
            request_context = self.connection_pool_kw.copy()
        else:
            request_context = dict(request_context)
        if issubclass(self.pool_classes_by_scheme[scheme], HTTPConnectionPool):
            request_context.setdefault("timeout", self.timeout)
            request_context.setdefault("stop", self.stop)
            request_context.setdefault("stall_timeout", self.stall_timeout)
        return super()._new_pool(scheme, host, port, request_context)

    def urlopen(  # type: ignore[override]
        self,
        method: str,
        url: str,
        redirect: bool = True,
        *,
        timeout: Any = None,
        stop: StopLike | None = None,
        stall_timeout: float | None = None,
        **kw: Any,
    ) -> urllib3.BaseHTTPResponse:
        """As urllib3's ``urlopen``, within ``timeout`` seconds in all and until ``stop``.

        Raises ``RequestDeadline`` (each subclass also urllib3's timeout error),
        ``stoppable.Stopped``, or urllib3's errors (``MaxRetryError``...).
        """
        if is_joined(timeout):  # a redirect followed by urllib3: same request, same budget
            return super().urlopen(method, url, redirect, timeout=timeout, **kw)
        seconds = seconds_for(timeout, self.timeout)
        stall = _stall(stall_timeout, self.stall_timeout)
        budget = open_budget(seconds, stop, self.stop, method, url, stall, urllib3=True)
        if kw.get("retries") is not None:  # else the pool's own (the manager's retries=)
            kw["retries"] = _retries(kw["retries"], redirect, None)
        with edge(budget):
            return super().urlopen(method, url, redirect, timeout=joined(budget), **kw)


# urllib3's class, bound once: code that replaces urllib3.ProxyManager with a subclass
# of this module's must not make __init__ call itself.
_UpstreamProxyManager = urllib3.ProxyManager


class ProxyManager(PoolManager, _UpstreamProxyManager):
    """urllib3's ``ProxyManager`` (an HTTP proxy), bounded as ``PoolManager`` is.

    Plain HTTP requests are forwarded; HTTPS requests go through a CONNECT tunnel,
    whose opening is part of the deadline. HTTPS proxies are refused.
    """

    def __init__(
        self,
        proxy_url: str,
        *args: Any,
        timeout: float | None = None,
        stop: StopLike | None = None,
        stall_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        self._configure(timeout, stop, stall_timeout)
        _UpstreamProxyManager.__init__(self, proxy_url, *args, **kwargs)
        scheme = None if self.proxy is None else self.proxy.scheme
        if scheme != "http":
            raise urllib3.exceptions.ProxySchemeUnsupported(
                f"stoppable.http supports only http:// proxies, not {scheme}://"
            )
        self.pool_classes_by_scheme = _POOL_CLASSES

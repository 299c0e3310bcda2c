"""requests and urllib3 with a total deadline per request, and a stop that ends it at once.

::

    from stoppable import StopEvent, http

    stop = StopEvent()
    response = http.get("https://example.com/report", timeout=10, stop=stop)

    with http.Session(stop=stop, timeout=10) as session:     # a requests.Session
        response = session.post(url, json=payload)           # the session's 10 s
        with session.get(url, stream=True, timeout=60) as r:  # 60 s, body included
            for chunk in r.iter_content(65536):
                ...

    manager = http.PoolManager(timeout=10, stop=stop)        # for urllib3 users
    data = manager.request("GET", url).data

With plain requests, ``timeout=2`` bounds each socket operation, not the request: a
server that sends a byte every second keeps a request alive for as long as it likes;
the name lookup has no limit; each address gets the whole connect timeout; urllib3's
retries multiply it; a ``pool_block`` pool waits forever; and nothing can stop a
request in flight from another thread. Here, ``timeout`` is the *total* for the whole
request, fixed when the call is made:

- name lookup (through ``stoppable.net``, so a stuck resolver is abandoned), connect
  (all addresses together), TLS handshake, proxy tunnel;
- sending the request, waiting for the headers, reading the body (a streamed body
  too: a ``stream=True`` response keeps the request's deadline and stop until it is
  consumed or closed, through ``iter_content``, ``iter_lines``, ``raw.read``..., so
  read it within the request's ``timeout``);
- redirects, retries (their backoff and ``Retry-After`` waits included: a wait that
  would pass the deadline is not started), and waiting for a pooled connection.

``stop`` (a ``StopEvent``) ends the request within microseconds in any of those
phases, from any thread, through the socket layer's wake-up descriptor (a plain
``threading.Event`` works too, polled between slices: ``stoppable.set_poll_interval``).
The stops of enclosing ``stoppable.scope`` blocks apply too, as does their deadline
(the earliest wins). A ``Session``'s own ``stop`` applies to all its requests, beside
each request's.

What a stop or a timeout leaves behind: the connection it interrupted is closed,
never returned to the pool, and the session works normally for the next request. A
body is never returned cut short: a body interrupted by a stop or a deadline (one
delimited by the connection's close included) raises; it never looks complete.

Errors:

- A timeout raises ``Timeout``, which is ``stoppable.DeadlineExceeded`` (and
  ``TimeoutError``), ``requests.exceptions.Timeout`` and
  ``urllib3.exceptions.TimeoutError`` at once: ``ConnectTimeout`` before anything was
  sent (``PoolTimeout`` while waiting for a pooled connection), ``ReadTimeout`` while
  waiting for the headers or reading the body (urllib3 users get a ``ReadTimeout``
  that is also urllib3's ``ReadTimeoutError``), ``Timeout`` itself while sending the
  request or waiting to retry. The message names the request, the timeout and the
  phase; URLs in it carry no credentials (userinfo) and no query string.
- A stop raises ``stoppable.Stopped`` (a ``BaseException``: ``except Exception``
  does not swallow it), with the stop's reason.
- Everything else is what requests or urllib3 raise.

Differences from requests and urllib3, where a total deadline needs them:

- ``timeout`` is required (a ``Session``, pool or pool manager may hold a default)
  and is one number of seconds; a ``(connect, read)`` pair or ``urllib3.Timeout`` is
  refused. ``stall_timeout=`` optionally limits each wait for the peer as well (no
  progress for that long: ``ReadTimeout``/``ConnectTimeout`` before the total).
- TLS follows urllib3's rules for every setting (``cert_reqs``, ``ca_certs``,
  ``assert_hostname``, ``assert_fingerprint``...), a given ``ssl_context`` included,
  and is never weaker: a setting that would weaken a given context (``verify=False``
  on an adapter's context) is refused with ``ValueError``. Contexts made from
  settings are complete and shared by identical settings, so requests with different
  ``verify`` at the same time cannot race. ``urllib3.contrib.pyopenssl`` injection is
  refused. SOCKS and HTTPS proxies are not supported (HTTP proxies are, with CONNECT).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.exceptions
from urllib3.util.connection import is_connection_dropped
from urllib3.util.retry import Retry
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from ._guard import reach
from ._httpio import (
    BoundedRetry,
    ConnectTimeout,
    HTTPConnection,
    HTTPSConnection,
    InvalidTimeout,
    PoolTimeout,
    ReadTimeout,
    Timeout,
    bounded_retry,
    check_budget,
    current,
    edge,
    is_joined,
    joined,
    open_budget,
    pool_get,
    seconds_for,
)
from ._limits import StopLike, validate_stop, validate_timeout

__all__ = [
    "ConnectTimeout",
    "HTTPAdapter",
    "HTTPConnection",
    "HTTPConnectionPool",
    "HTTPSConnection",
    "HTTPSConnectionPool",
    "InvalidTimeout",
    "PoolManager",
    "PoolTimeout",
    "ProxyManager",
    "ReadTimeout",
    "Session",
    "Timeout",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]


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


def _retries(retries: object, redirect: bool, default: Any) -> BoundedRetry:
    if isinstance(retries, BoundedRetry):
        return retries
    if not isinstance(retries, Retry):
        retries = Retry.from_int(retries, redirect=redirect, default=default)  # type: ignore[arg-type]
    return bounded_retry(retries)


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
        if self.pool is None or not self.block:
            return super()._get_conn(timeout)
        try:
            conn = pool_get(self, timeout)
        except AttributeError:  # closed meanwhile: self.pool is None
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
        Raises ``Timeout`` (``ConnectTimeout``, ``PoolTimeout``, ``ReadTimeout``, each
        also urllib3's timeout error), ``stoppable.Stopped``, or urllib3's errors.
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
    never weaker (see ``stoppable._httptls``).
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

        Raises ``Timeout`` (each subclass also urllib3's timeout error),
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


# --- requests: the adapter and the session ------------------------------------------------


class HTTPAdapter(requests.adapters.HTTPAdapter):
    """requests' ``HTTPAdapter`` on this module's pools: every hop is bounded and stoppable.

    ``stoppable.http.Session`` mounts one for ``http://`` and ``https://``. Mounted on a
    plain ``requests.Session``, it bounds each request by its ``timeout`` as a total
    (a number: required) and ``stop``; redirects then get a new deadline each, as the
    session follows them, so prefer ``stoppable.http.Session``. ``max_retries`` is
    requests', bounded by the deadline (its waits stoppable).
    """

    stop: StopLike | None = None  # (not pickled: a stop is shared by the threads that use it)

    def __init__(
        self,
        pool_connections: int = requests.adapters.DEFAULT_POOLSIZE,
        pool_maxsize: int = requests.adapters.DEFAULT_POOLSIZE,
        max_retries: Retry | int | None = requests.adapters.DEFAULT_RETRIES,
        pool_block: bool = requests.adapters.DEFAULT_POOLBLOCK,
        *,
        stop: StopLike | None = None,
    ) -> None:
        self.stop = _stop(stop)
        """A stop for every request sent through this adapter."""
        super().__init__(pool_connections, pool_maxsize, max_retries, pool_block)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Make the adapter's pool manager: a ``stoppable.http.PoolManager``."""
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = PoolManager(
            num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The ``stoppable.http.ProxyManager`` for ``proxy`` (HTTP proxies only)."""
        manager = self.proxy_manager.get(proxy)
        if manager is None:
            if not proxy.lower().startswith("http://"):
                raise requests.exceptions.InvalidSchema(
                    "stoppable.http supports only http:// proxies (no SOCKS, no HTTPS proxy)"
                )
            manager = self.proxy_manager[proxy] = ProxyManager(
                proxy,
                proxy_headers=self.proxy_headers(proxy),
                num_pools=self._pool_connections,
                maxsize=self._pool_maxsize,
                block=self._pool_block,
                **proxy_kwargs,
            )
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """As requests' ``send``, with ``timeout`` (seconds, required) as the total."""
        seconds = seconds_for(timeout, None)
        budget = open_budget(
            seconds, None, self.stop, request.method or "", request.url or "", None
        )
        if not isinstance(self.max_retries, BoundedRetry):
            self.max_retries = bounded_retry(self.max_retries)
        with edge(budget, request):
            # requests takes a urllib3 Timeout here, as its own code passes (TimeoutSauce).
            return super().send(request, stream, joined(budget), verify, cert, proxies)  # type: ignore[arg-type]


class Session(requests.Session):
    """A ``requests.Session`` whose every request has a total deadline and can be stopped.

    ::

        with http.Session(stop=stop, timeout=10) as session:
            session.get(url)                        # 10 s in all, ended by stop
            session.get(url, timeout=2, stop=mine)  # 2 s; ended by stop or mine

    ``stop`` applies to every request (beside each request's own ``stop=``);
    ``timeout`` is the default total per request, in seconds: a request with neither
    its own ``timeout`` nor this default raises ``TypeError``. ``stall_timeout``
    optionally limits each wait for the peer. All three are attributes, and may be
    changed later. Every request method takes ``timeout=``, ``stop=`` and
    ``stall_timeout=`` beside requests' arguments, and returns a ``requests.Response``.

    ``guard=True`` (here for every request, or per request) runs each request inside
    a guard of its own deadline and stops (see ``stoppable.guard``): blocking calls
    made by code that knows nothing of stoppable during the request (an ``auth``
    object that fetches a token with another client, a hook, a custom adapter) are
    bounded too. The request's errors stay this module's.
    """

    __attrs__ = [*requests.Session.__attrs__, "timeout", "stall_timeout", "guard"]  # noqa: RUF012

    stop: StopLike | None = None
    timeout: float | None = None
    stall_timeout: float | None = None
    guard: bool = False

    def __init__(
        self,
        stop: StopLike | None = None,
        *,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        guard: bool = False,
    ) -> None:
        super().__init__()
        self.guard = _guard_flag(guard)
        self.stop = _stop(stop)
        self.timeout = None if timeout is None else seconds_for(timeout, None)
        self.stall_timeout = _stall(stall_timeout)
        self.mount("https://", HTTPAdapter())
        self.mount("http://", HTTPAdapter())

    def request(  # type: ignore[override]
        self,
        method: str | bytes,
        url: str | bytes,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: float | None = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
        *,
        stop: StopLike | None = None,
        stall_timeout: float | None = None,
        guard: bool | None = None,
    ) -> requests.Response:
        """As requests' ``request``, within ``timeout`` seconds in all and until ``stop``.

        One deadline covers connecting, sending, the headers, the body (unless
        ``stream=True``: then the body keeps the deadline as it is read), redirects and
        retries. Raises ``Timeout`` (``ConnectTimeout``, ``PoolTimeout``,
        ``ReadTimeout``), ``stoppable.Stopped``, or requests' errors. ``guard``:
        see the class docstring (``None``: the session's).
        """
        if not isinstance(method, str | bytes):
            raise TypeError(f"method must be a str, got {type(method).__name__}")
        guarded = self.guard if guard is None else _guard_flag(guard)
        seconds = seconds_for(timeout, self.timeout)
        stall = _stall(stall_timeout, self.stall_timeout)
        text_method = method.decode() if isinstance(method, bytes) else method
        text_url = url.decode() if isinstance(url, bytes) else str(url)
        budget = open_budget(seconds, stop, self.stop, text_method.upper(), text_url, stall)
        with reach() if guarded else contextlib.nullcontext(), edge(budget):
            return super().request(
                method,
                url,
                params,
                data,
                headers,
                cookies,
                files,
                auth,
                seconds,
                allow_redirects,
                proxies,
                hooks,
                stream,
                verify,
                cert,
                json,
            )

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """As requests' ``send``; takes ``timeout`` (or the session's), ``stop``, ``stall_timeout``.

        Redirects followed here share the request's deadline.
        """
        seconds = seconds_for(kwargs.get("timeout"), self.timeout)
        kwargs["timeout"] = seconds
        stop = kwargs.pop("stop", None)
        stall = _stall(kwargs.pop("stall_timeout", None), self.stall_timeout)
        budget = open_budget(
            seconds, stop, self.stop, request.method or "", request.url or "", stall
        )
        with edge(budget, request):
            return super().send(request, **kwargs)

    def get(self, url: str | bytes, params: Any = None, **kwargs: Any) -> requests.Response:
        """As requests' ``get``, with ``timeout``, ``stop`` and ``stall_timeout``."""
        kwargs.setdefault("allow_redirects", True)
        return self.request("GET", url, params=params, **kwargs)

    def options(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        """As requests' ``options``, with ``timeout``, ``stop`` and ``stall_timeout``."""
        kwargs.setdefault("allow_redirects", True)
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        """As requests' ``head`` (no redirects by default), with ``timeout``, ``stop``..."""
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, **kwargs)

    def post(
        self, url: str | bytes, data: Any = None, json: Any = None, **kwargs: Any
    ) -> requests.Response:
        """As requests' ``post``, with ``timeout``, ``stop`` and ``stall_timeout``."""
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:
        """As requests' ``put``, with ``timeout``, ``stop`` and ``stall_timeout``."""
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:
        """As requests' ``patch``, with ``timeout``, ``stop`` and ``stall_timeout``."""
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        """As requests' ``delete``, with ``timeout``, ``stop`` and ``stall_timeout``."""
        return self.request("DELETE", url, **kwargs)


# --- module functions ---------------------------------------------------------------------


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    stop: StopLike | None = None,
    stall_timeout: float | None = None,
    **kwargs: Any,
) -> requests.Response:
    """``requests.request``, within ``timeout`` seconds in all and until ``stop``.

    Takes requests' arguments (``params``, ``data``, ``json``, ``headers``, ``auth``,
    ``stream``, ``verify``...), and ``guard=True`` (see ``Session``). ``timeout`` is
    required: the total for the request, its redirects and (with ``stream=True``) its
    body. Returns a
    ``requests.Response``; raises ``Timeout`` (``ConnectTimeout``, ``ReadTimeout``),
    ``stoppable.Stopped``, or requests' errors. Bad arguments are refused before any
    I/O.
    """
    seconds = seconds_for(timeout, None)
    with Session() as session:
        return session.request(
            method, url, timeout=seconds, stop=stop, stall_timeout=stall_timeout, **kwargs
        )


def get(
    url: str, params: Any = None, *, timeout: float, stop: StopLike | None = None, **kwargs: Any
) -> requests.Response:
    """``requests.get``, bounded and stoppable (see ``request``)."""
    kwargs.setdefault("allow_redirects", True)
    return request("GET", url, params=params, timeout=timeout, stop=stop, **kwargs)


def options(
    url: str, *, timeout: float, stop: StopLike | None = None, **kwargs: Any
) -> requests.Response:
    """``requests.options``, bounded and stoppable (see ``request``)."""
    kwargs.setdefault("allow_redirects", True)
    return request("OPTIONS", url, timeout=timeout, stop=stop, **kwargs)


def head(
    url: str, *, timeout: float, stop: StopLike | None = None, **kwargs: Any
) -> requests.Response:
    """``requests.head`` (no redirects by default), bounded and stoppable (see ``request``)."""
    kwargs.setdefault("allow_redirects", False)
    return request("HEAD", url, timeout=timeout, stop=stop, **kwargs)


def post(
    url: str,
    data: Any = None,
    json: Any = None,
    *,
    timeout: float,
    stop: StopLike | None = None,
    **kwargs: Any,
) -> requests.Response:
    """``requests.post``, bounded and stoppable (see ``request``)."""
    return request("POST", url, data=data, json=json, timeout=timeout, stop=stop, **kwargs)


def put(
    url: str, data: Any = None, *, timeout: float, stop: StopLike | None = None, **kwargs: Any
) -> requests.Response:
    """``requests.put``, bounded and stoppable (see ``request``)."""
    return request("PUT", url, data=data, timeout=timeout, stop=stop, **kwargs)


def patch(
    url: str, data: Any = None, *, timeout: float, stop: StopLike | None = None, **kwargs: Any
) -> requests.Response:
    """``requests.patch``, bounded and stoppable (see ``request``)."""
    return request("PATCH", url, data=data, timeout=timeout, stop=stop, **kwargs)


def delete(
    url: str, *, timeout: float, stop: StopLike | None = None, **kwargs: Any
) -> requests.Response:
    """``requests.delete``, bounded and stoppable (see ``request``)."""
    return request("DELETE", url, timeout=timeout, stop=stop, **kwargs)


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

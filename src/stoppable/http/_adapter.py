"""requests' adapter and session, with a total deadline per request."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import requests
import requests.adapters
import requests.exceptions
from urllib3.util.retry import Retry

from .._guard import reach
from .._limits import (
    StopLike,
)
from ._budget import _guard_flag, _stall, _stop, edge, joined, open_budget, seconds_for
from ._pool import PoolManager, ProxyManager
from ._retry import BoundedRetry, bounded_retry

if TYPE_CHECKING:
    pass

_monotonic = time.monotonic

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
        retries. Raises ``RequestDeadline`` (``ConnectDeadline``, ``PoolWaitDeadline``,
        ``ReadDeadline``), ``stoppable.Stopped``, or requests' errors. ``guard``:
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

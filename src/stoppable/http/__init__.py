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

- A timeout raises ``RequestDeadline``, which is ``stoppable.DeadlineExceeded`` (and
  ``TimeoutError``), ``requests.exceptions.Timeout`` and
  ``urllib3.exceptions.TimeoutError`` at once: ``ConnectDeadline`` before anything was
  sent (``PoolWaitDeadline`` while waiting for a pooled connection), ``ReadDeadline`` while
  waiting for the headers or reading the body (urllib3 users get a ``ReadDeadline``
  that is also urllib3's ``ReadTimeoutError``), ``RequestDeadline`` itself while sending the
  request or waiting to retry. The message names the request, the timeout and the
  phase; URLs in it carry no credentials (userinfo) and no query string.
- A stop raises ``stoppable.Stopped`` (a ``BaseException``: ``except Exception``
  does not swallow it), with the stop's reason.
- Everything else is what requests or urllib3 raise.

Differences from requests and urllib3, where a total deadline needs them:

- ``timeout`` is required (a ``Session``, pool or pool manager may hold a default)
  and is one number of seconds; a ``(connect, read)`` pair or ``urllib3.Timeout`` is
  refused. ``stall_timeout=`` optionally limits each wait for the peer as well (no
  progress for that long: ``ReadDeadline``/``ConnectDeadline`` before the total).
- TLS follows urllib3's rules for every setting (``cert_reqs``, ``ca_certs``,
  ``assert_hostname``, ``assert_fingerprint``...), a given ``ssl_context`` included,
  and is never weaker: a setting that would weaken a given context (``verify=False``
  on an adapter's context) is refused with ``ValueError``. Contexts made from
  settings are complete and shared by identical settings, so requests with different
  ``verify`` at the same time cannot race. ``urllib3.contrib.pyopenssl`` injection is
  refused. SOCKS and HTTPS proxies are not supported (HTTP proxies are, with CONNECT).
"""

from __future__ import annotations

import warnings
from typing import Any

import requests

from .._limits import StopLike
from ._adapter import HTTPAdapter, Session
from ._budget import InvalidTimeout, seconds_for
from ._connection import HTTPConnection, HTTPSConnection
from ._errors import ConnectDeadline, PoolWaitDeadline, ReadDeadline, RequestDeadline
from ._pool import (
    HTTPConnectionPool,
    HTTPSConnectionPool,
    PoolManager,
    ProxyManager,
)

__all__ = [
    "ConnectDeadline",
    "HTTPAdapter",
    "HTTPConnection",
    "HTTPConnectionPool",
    "HTTPSConnection",
    "HTTPSConnectionPool",
    "InvalidTimeout",
    "PoolManager",
    "PoolWaitDeadline",
    "ProxyManager",
    "ReadDeadline",
    "RequestDeadline",
    "Session",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]


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
    ``requests.Response``; raises ``RequestDeadline`` (``ConnectDeadline``, ``ReadDeadline``),
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


# 0.1's names for the timeout errors, kept for one release: every timeout error of the
# library is now named for what ran out of time, ``...Deadline``.
_DEPRECATED = {
    "Timeout": "RequestDeadline",
    "ConnectTimeout": "ConnectDeadline",
    "ReadTimeout": "ReadDeadline",
    "PoolTimeout": "PoolWaitDeadline",
}


def __getattr__(name: str) -> Any:
    new = _DEPRECATED.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"stoppable.http.{name} is deprecated, use stoppable.http.{new} (the same class); "
        "the old name goes in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

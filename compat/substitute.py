"""pytest plugin: run requests' or urllib3's own test suite on stoppable.http's classes.

Loaded by ``compat/run.py`` with ``-p substitute`` and ``STOPPABLE_COMPAT=requests`` or
``urllib3``. Before any test module is imported, the suite's client classes are
replaced, in every module that exports them, by stoppable.http's, subclassed only to
give a 30 s total timeout where a test gives none (stoppable refuses to wait without
one). The test bodies are not touched.
"""

from __future__ import annotations

import os
from typing import Any

import requests
import requests.adapters
import requests.sessions
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.poolmanager
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from stoppable import http

DEFAULT_TIMEOUT = 30.0


def _default(timeout: Any) -> Any:
    return DEFAULT_TIMEOUT if timeout is None or timeout is _DEFAULT_TIMEOUT else timeout


# --- urllib3 ---------------------------------------------------------------------------


class HTTPConnectionPool(http.HTTPConnectionPool):
    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: Any = _DEFAULT_TIMEOUT,
        *a: Any,
        **kw: Any,
    ) -> None:
        super().__init__(host, port, _default(timeout), *a, **kw)


class HTTPSConnectionPool(http.HTTPSConnectionPool):
    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: Any = _DEFAULT_TIMEOUT,
        *a: Any,
        **kw: Any,
    ) -> None:
        super().__init__(host, port, _default(timeout), *a, **kw)


class PoolManager(http.PoolManager):
    def __init__(self, num_pools: int = 10, headers: Any = None, **kw: Any) -> None:
        kw["timeout"] = _default(kw.get("timeout"))
        super().__init__(num_pools, headers, **kw)


class ProxyManager(http.ProxyManager):
    def __init__(self, proxy_url: str, *a: Any, **kw: Any) -> None:
        kw["timeout"] = _default(kw.get("timeout"))
        super().__init__(proxy_url, *a, **kw)


class HTTPConnection(http.HTTPConnection):
    def __init__(self, host: str, port: int | None = None, **kw: Any) -> None:
        kw["timeout"] = _default(kw.get("timeout", _DEFAULT_TIMEOUT))
        super().__init__(host, port, **kw)


class HTTPSConnection(http.HTTPSConnection):
    def __init__(self, host: str, port: int | None = None, **kw: Any) -> None:
        kw["timeout"] = _default(kw.get("timeout", _DEFAULT_TIMEOUT))
        super().__init__(host, port, **kw)


def substitute_urllib3() -> None:
    """urllib3's pools, managers and connections become stoppable's, everywhere."""
    for module in (urllib3, urllib3.connectionpool, urllib3.poolmanager):
        for cls in (HTTPConnectionPool, HTTPSConnectionPool, PoolManager, ProxyManager):
            if hasattr(module, cls.__name__):
                setattr(module, cls.__name__, cls)
    connection: Any = urllib3.connection
    connection.HTTPConnection = HTTPConnection
    connection.HTTPSConnection = HTTPSConnection
    connection.VerifiedHTTPSConnection = HTTPSConnection
    urllib3.poolmanager.pool_classes_by_scheme.update(
        http=HTTPConnectionPool, https=HTTPSConnectionPool
    )
    urllib3._DEFAULT_POOL = PoolManager()


# --- requests --------------------------------------------------------------------------


class Session(http.Session):
    def __init__(self) -> None:
        super().__init__(timeout=DEFAULT_TIMEOUT)


class HTTPAdapter(http.HTTPAdapter):
    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        return super().send(request, stream, _default(timeout), verify, cert, proxies)


def substitute_requests() -> None:
    """requests' Session and HTTPAdapter become stoppable's, everywhere."""
    requests.Session = requests.sessions.Session = Session  # type: ignore[misc]
    requests.adapters.HTTPAdapter = HTTPAdapter  # type: ignore[misc]
    requests.sessions.HTTPAdapter = HTTPAdapter
    if hasattr(requests, "HTTPAdapter"):
        requests.HTTPAdapter = HTTPAdapter


def pytest_configure(config: Any) -> None:
    """Substitute before any test module is imported (they import the classes by name)."""
    suite = os.environ.get("STOPPABLE_COMPAT", "")
    if suite == "urllib3":
        substitute_urllib3()
    elif suite == "requests":
        substitute_requests()
    else:
        raise RuntimeError(f"STOPPABLE_COMPAT must be requests or urllib3, got {suite!r}")

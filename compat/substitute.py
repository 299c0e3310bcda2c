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

from stoppable import _compat, http
from stoppable.http import _pool

DEFAULT_TIMEOUT = 30.0
_DEFAULT_TIMEOUT = _compat.urllib3_default_timeout()  # urllib3's private marker (see _compat)


def _default(timeout: Any) -> Any:
    return DEFAULT_TIMEOUT if timeout is None or timeout is _DEFAULT_TIMEOUT else timeout


# --- urllib3 ---------------------------------------------------------------------------


class HTTPConnectionPool(http.HTTPConnectionPool):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.total_timeout is None:  # after init: urllib3's view of timeout unchanged
            self.total_timeout = DEFAULT_TIMEOUT


class HTTPSConnectionPool(http.HTTPSConnectionPool):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.total_timeout is None:
            self.total_timeout = DEFAULT_TIMEOUT


class PoolManager(http.PoolManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.timeout is None:
            self.timeout = DEFAULT_TIMEOUT


class ProxyManager(http.ProxyManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.timeout is None:
            self.timeout = DEFAULT_TIMEOUT


class HTTPConnection(http.HTTPConnection):
    _stoppable_default_total = DEFAULT_TIMEOUT


class HTTPSConnection(http.HTTPSConnection):
    _stoppable_default_total = DEFAULT_TIMEOUT


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
    for classes in (urllib3.poolmanager.pool_classes_by_scheme, _pool._POOL_CLASSES):
        classes.update(http=HTTPConnectionPool, https=HTTPSConnectionPool)
    HTTPConnectionPool.ConnectionCls = HTTPConnection
    HTTPSConnectionPool.ConnectionCls = HTTPSConnection
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

"""urllib3's other private parts that ``stoppable.http`` reads (table in ``_compat``).

Not hooks it overrides (``_urllib3``), but state it reads or sets: each is checked by
``check_http()``, which the HTTP family calls when it is imported (urllib3 is not
imported before), by exercising it on a fresh object. Until then, and where a check
fails, its flag is false and the family takes the fallback, correct without it.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from ._probe import _check
from ._urllib3 import urllib3_default_timeout

URLLIB3_TIMEOUT_PARTS = False
"""A ``urllib3.Timeout`` keeps its connect and read limits, as given, in ``_connect``
and ``_read`` (unset: the "no timeout given" marker)."""

URLLIB3_POOL_QUEUE = False
"""A pool's free connections are its ``pool`` attribute: a ``queue.Queue`` of
``maxsize`` items (``None`` for a slot with no connection yet), ``None`` once closed."""

URLLIB3_RESPONSE_OPTIONS = False
"""A connection keeps ``request()``'s response options (``preload_content``,
``decode_content``...) in ``_response_options``, a named tuple, for ``getresponse()``."""

URLLIB3_DNS_HOST = False
"""A connection's ``_dns_host`` is its host as given (a trailing dot kept)."""

URLLIB3_KEY_FILE_CHECK = False
"""``urllib3.util.ssl_._is_key_file_encrypted(path)`` says whether a key is encrypted."""


def _probe_urllib3_timeout() -> None:
    import urllib3

    marker = urllib3_default_timeout()
    both = urllib3.Timeout(connect=1.0, read=2.0, total=3.0)
    assert (both._connect, both._read) == (1.0, 2.0)
    total = urllib3.Timeout(total=3.0)
    assert total._connect is marker
    assert total._read is marker
    none = urllib3.Timeout(connect=None, read=None)
    assert none._connect is None
    assert none._read is None


def urllib3_timeout_limits(timeout: Any) -> tuple[Any, Any] | None:
    """A ``urllib3.Timeout``'s ``(connect, read)`` limits as given, or ``None``.

    ``None`` where they cannot be read (``URLLIB3_TIMEOUT_PARTS`` false): the caller
    must then treat the ``Timeout`` as one with limits of its own (refuse it).
    """
    if not URLLIB3_TIMEOUT_PARTS:
        return None
    return (timeout._connect, timeout._read)


def _probe_urllib3_pool_queue() -> None:
    import urllib3

    pool = urllib3.HTTPConnectionPool("localhost", 1, maxsize=2, block=True)
    free = pool.pool
    assert isinstance(free, queue.Queue)
    assert free.maxsize == 2
    assert [free.get_nowait(), free.get_nowait()] == [None, None]  # a slot each
    free.put_nowait(None)  # the pool's own wait sees what was done to the queue
    assert pool._get_conn(timeout=0.001) is not None  # a new connection for the slot
    pool.close()
    assert pool.pool is None


def urllib3_pool_queue(pool: Any) -> queue.Queue[Any] | None:
    """A pool's queue of free connections, or ``None``: closed, or not readable.

    Tell the two apart with ``URLLIB3_POOL_QUEUE``: where it is false, the pool's
    own ``_get_conn`` must be used (in slices, to notice stops).
    """
    if not URLLIB3_POOL_QUEUE:
        return None
    free: queue.Queue[Any] | None = pool.pool
    return free


def _probe_urllib3_response_options() -> None:
    import urllib3.connection

    conn = urllib3.connection.HTTPConnection("localhost", 1)
    assert conn._response_options is None
    fake: Any = _OptionsSocket()
    conn.sock = fake
    conn.request("GET", "/", preload_content=False, decode_content=False)
    options: Any = conn._response_options
    assert options.preload_content is False
    assert options.decode_content is False
    conn._response_options = options._replace(preload_content=True)
    assert conn._response_options is not None
    assert conn._response_options.preload_content is True


class _OptionsSocket:
    """A socket that takes whatever is sent, for the response options probe."""

    def sendall(self, data: bytes) -> None:
        pass

    def settimeout(self, timeout: object) -> None:
        pass

    def close(self) -> None:
        pass


def urllib3_response_options(conn: Any) -> Any:
    """The response options of ``conn``'s pending request, or ``None`` if unreadable."""
    if not URLLIB3_RESPONSE_OPTIONS:
        return None
    return conn._response_options


def set_urllib3_response_options(conn: Any, options: Any) -> None:
    """Replace the pending request's response options (only where readable)."""
    conn._response_options = options


def _probe_urllib3_dns_host() -> None:
    import urllib3.connection

    conn = urllib3.connection.HTTPConnection("example.com.", 1)
    assert conn._dns_host == "example.com."
    assert conn.host == "example.com"


def urllib3_dns_host(conn: Any) -> str:
    """The name ``conn`` connects to: ``_dns_host`` (a trailing dot kept), else ``host``."""
    if URLLIB3_DNS_HOST:
        host: str = conn._dns_host
        return host
    return str(conn.host)


def _probe_urllib3_key_file_check() -> None:
    import inspect

    import urllib3.util.ssl_

    check = urllib3.util.ssl_._is_key_file_encrypted
    assert list(inspect.signature(check).parameters) == ["key_file"]


def urllib3_key_file_encrypted(path: str) -> bool:
    """Whether the private key in ``path`` is encrypted (needs a password).

    urllib3's check; where it is missing, the same test here: a line that says so.
    """
    if URLLIB3_KEY_FILE_CHECK:
        import urllib3.util.ssl_

        return bool(urllib3.util.ssl_._is_key_file_encrypted(path))
    with open(path) as key:
        return any("ENCRYPTED" in line for line in key)


URLLIB3_TUNNEL = False
"""A connection asked to tunnel (``set_tunnel``) keeps the target in ``_tunnel_host``
and its scheme in ``_tunnel_scheme``, opens the tunnel with ``_tunnel()``, and reports
``has_connected_to_proxy`` from ``_has_connected_to_proxy``."""


def _probe_urllib3_tunnel() -> None:
    import urllib3.connection

    conn = urllib3.connection.HTTPSConnection("proxy.example", 8080)
    assert conn._tunnel_host is None
    conn.set_tunnel("target.example", 443, scheme="http")
    assert conn._tunnel_host == "target.example"
    assert conn._tunnel_scheme == "http"
    assert callable(conn._tunnel)
    assert conn.has_connected_to_proxy is False
    conn._has_connected_to_proxy = True
    assert conn.has_connected_to_proxy is True


def urllib3_tunnel(conn: Any) -> tuple[str | None, str | None]:
    """The tunnel ``conn`` is to open: ``(host, scheme)``, ``(None, None)`` for none.

    Only where ``URLLIB3_TUNNEL``; elsewhere the caller must refuse to tunnel.
    """
    return conn._tunnel_host, conn._tunnel_scheme


def urllib3_open_tunnel(conn: Any) -> None:
    """Send ``CONNECT`` and read the proxy's answer (http.client's, or urllib3's copy)."""
    conn._tunnel()


def set_urllib3_connected_to_proxy(conn: Any, connected: bool) -> None:
    """What ``conn.has_connected_to_proxy`` reports (only where ``URLLIB3_TUNNEL``)."""
    conn._has_connected_to_proxy = connected


HTTP_PROBES: dict[str, Callable[[], None]] = {
    "URLLIB3_TUNNEL": _probe_urllib3_tunnel,
    "URLLIB3_TIMEOUT_PARTS": _probe_urllib3_timeout,
    "URLLIB3_POOL_QUEUE": _probe_urllib3_pool_queue,
    "URLLIB3_RESPONSE_OPTIONS": _probe_urllib3_response_options,
    "URLLIB3_DNS_HOST": _probe_urllib3_dns_host,
    "URLLIB3_KEY_FILE_CHECK": _probe_urllib3_key_file_check,
}


def check_http() -> None:
    """Probe urllib3's private parts the HTTP family reads; set each flag above.

    Each flag is set here and in ``stoppable._compat``, where the library reads it.
    """
    import stoppable._compat as package

    for flag, probe in HTTP_PROBES.items():
        verdict = _check(probe)
        globals()[flag] = verdict
        setattr(package, flag, verdict)

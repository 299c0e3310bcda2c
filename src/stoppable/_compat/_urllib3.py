"""The internals of urllib3 that ``stoppable.http`` relies on (table in ``_compat``).

urllib3 is not imported here: each function imports it when called, which the HTTP
family does as it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (module, class, method): the hooks stoppable.http overrides, which urllib3 must call.
URLLIB3_HOOKS = (
    ("urllib3.response", "HTTPResponse", "_error_catcher"),
    ("urllib3.util.retry", "Retry", "_sleep_backoff"),
    ("urllib3.connection", "HTTPConnection", "_new_conn"),
    ("urllib3.connectionpool", "HTTPConnectionPool", "_get_conn"),
    ("urllib3.connectionpool", "HTTPConnectionPool", "_put_conn"),
    ("urllib3.poolmanager", "PoolManager", "_new_pool"),
)


def check_urllib3() -> None:
    """Refuse to load the HTTP family on a urllib3 without the hooks it overrides."""
    import importlib

    missing = []
    for module_name, class_name, method in URLLIB3_HOOKS:
        module = importlib.import_module(module_name)
        if not callable(getattr(getattr(module, class_name, None), method, None)):
            missing.append(f"{module_name}.{class_name}.{method}")
    if missing:
        raise ImportError(
            "stoppable.http needs urllib3's private hooks "
            f"{', '.join(missing)}, which this urllib3 does not have: a deadline or "
            "stop could not be enforced. Use a urllib3 version stoppable supports."
        )


def urllib3_match_hostname() -> Callable[[Any, str, bool], None]:
    """urllib3's hostname check for a peer certificate (raises on a mismatch).

    ``urllib3.connection._match_hostname`` (which also attaches the certificate to
    the error) where it exists; otherwise the public function it wraps.
    """
    import urllib3.connection

    private = getattr(urllib3.connection, "_match_hostname", None)
    if callable(private):
        return private  # type: ignore[no-any-return]
    from urllib3.util.ssl_match_hostname import match_hostname  # pragma: no cover

    return match_hostname  # pragma: no cover


def urllib3_default_timeout() -> Any:
    """urllib3's "no timeout given" marker (``urllib3.util.timeout._DEFAULT_TIMEOUT``).

    Read through public API, as the default of ``HTTPConnectionPool.urlopen``'s
    ``timeout``: the object a caller omitting ``timeout`` passes, which is what the
    HTTP family must recognise, whatever urllib3 names it privately.
    """
    import inspect

    import urllib3

    return inspect.signature(urllib3.HTTPConnectionPool.urlopen).parameters["timeout"].default

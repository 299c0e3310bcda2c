"""TLS for the HTTP family's connections: urllib3's rules for every setting, never weaker.

urllib3 (``connection._ssl_wrap_socket_and_match_hostname`` and
``util.ssl_.ssl_wrap_socket``) turns a connection's settings into a context and a
check of the peer. The rules, applied here the same way:

- no ``ssl_context``: a context made by ``create_urllib3_context`` from
  ``ssl_version``/``ssl_minimum_version``/``ssl_maximum_version`` and ``cert_reqs``;
  the system's CAs unless ``ca_certs``/``ca_cert_dir``/``ca_cert_data`` are given;
- a given ``ssl_context``: ``cert_reqs`` becomes its ``verify_mode`` (it defaults to
  the context's own), and ``ca_certs``/``ca_cert_dir``/``ca_cert_data``, the client
  certificate and the ALPN protocols are loaded into it;
- ``assert_hostname`` and ``assert_fingerprint`` turn the context's own hostname
  check off and are checked after the handshake instead (the fingerprint alone
  decides when it is given); a context without a hostname check of its own that
  verifies certificates gets urllib3's hostname match after the handshake.

Where urllib3 would *weaken* a given context, stoppable refuses or keeps it
stronger: ``cert_reqs`` below the context's ``verify_mode`` is a ``ValueError``
(urllib3 raises the same for a context that checks hostnames, and silently lowers
it otherwise), and an ``ssl_minimum_version`` above the context's minimum raises it
(urllib3 ignores the setting when given a context). A given context is only ever
changed in those directions (stricter, more trusted CAs), so requests that share it
with different settings never see it weaker than their own settings ask for.

Contexts made here are shared by identical settings (loading a CA bundle takes
milliseconds), complete before anyone sees them and never changed after. The key
includes everything the result depends on: the files' identity and mtime, the
environment (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, ``SSLKEYLOGFILE``) and urllib3's
TLS backend, so no context built under other settings is ever reused.
``urllib3.contrib.pyopenssl`` injection is refused with a clear error: its sockets
cannot be bounded here.
"""

from __future__ import annotations

import os
import ssl
import threading
import warnings
from typing import TYPE_CHECKING, Any

import urllib3.connection
import urllib3.exceptions
import urllib3.util.ssl_

from .. import _compat

if TYPE_CHECKING:
    from urllib3.connection import HTTPSConnection

__all__ = ["check_peer", "context_for", "server_hostname", "warn_if_clock_is_off"]

_ssl_ = urllib3.util.ssl_
# urllib3's private hostname check, or the public one it wraps (see _compat).
_match_hostname = _compat.urllib3_match_hostname()

_contexts: dict[tuple[object, ...], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()
# Changes to a given context (stricter settings, more CAs) are made one thread at a time.
_given_lock = threading.Lock()
_MAX_CONTEXTS = 32

_STRENGTH = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 2}

PYOPENSSL_REFUSED = (
    "stoppable.http cannot use urllib3.contrib.pyopenssl (inject_into_urllib3() is "
    "active): its sockets do their own blocking waits, which no deadline or stop can "
    "end. Call urllib3.contrib.pyopenssl.extract_from_urllib3() to use the ssl module"
)


def _file_key(path: str | None) -> tuple[object, ...] | None:
    if not path:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return (path, None, None, None)
    return (path, info.st_ino, info.st_mtime_ns, info.st_size)


def _refuse_pyopenssl(context: object = None) -> None:
    # (A replacement that is not a class, a factory, is judged by the context it makes.)
    factory = _ssl_.SSLContext
    if _ssl_.IS_PYOPENSSL or (
        isinstance(factory, type) and not issubclass(factory, ssl.SSLContext)
    ):
        raise urllib3.exceptions.SSLError(PYOPENSSL_REFUSED)
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise urllib3.exceptions.SSLError(
            f"stoppable.http needs an ssl.SSLContext as ssl_context, got "
            f"{type(context).__name__} (urllib3.contrib.pyopenssl's cannot be bounded)"
        )


def _alpn() -> list[str]:
    """urllib3's ALPN protocols but HTTP/2: these connections speak HTTP/1.1 only.

    (urllib3.http2 adds "h2"; a server that picked it would get HTTP/1.1.)
    """
    return [protocol for protocol in _ssl_.ALPN_PROTOCOLS if protocol != "h2"]


def _own_check(conn: HTTPSConnection) -> bool:
    """Whether urllib3 checks the peer itself (``check_hostname`` off on the context)."""
    return bool(
        conn.assert_fingerprint
        or conn.assert_hostname
        or conn.assert_hostname is False
        or not _ssl_.HAS_NEVER_CHECK_COMMON_NAME
    )


def _load_client_cert(context: ssl.SSLContext, conn: HTTPSConnection) -> None:
    cert_file = getattr(conn, "cert_file", None)
    if not cert_file:
        return
    key_file = getattr(conn, "key_file", None)
    password = getattr(conn, "key_password", None)
    if key_file and password is None and _compat.urllib3_key_file_encrypted(key_file):
        raise urllib3.exceptions.SSLError("Client private key is encrypted, password is required")
    context.load_cert_chain(cert_file, key_file, password)


def _load_cas(context: ssl.SSLContext, conn: HTTPSConnection) -> bool:
    if not (conn.ca_certs or conn.ca_cert_dir or conn.ca_cert_data):
        return False
    try:
        context.load_verify_locations(conn.ca_certs, conn.ca_cert_dir, conn.ca_cert_data)
    except OSError as exc:
        raise urllib3.exceptions.SSLError(exc) from exc
    return True


def _build(conn: HTTPSConnection, cert_reqs: ssl.VerifyMode) -> ssl.SSLContext:
    context = _ssl_.create_urllib3_context(
        ssl_version=_ssl_.resolve_ssl_version(conn.ssl_version),
        ssl_minimum_version=conn.ssl_minimum_version,
        ssl_maximum_version=conn.ssl_maximum_version,
        cert_reqs=cert_reqs,
    )
    context.verify_mode = cert_reqs
    if _own_check(conn):
        context.check_hostname = False
    if not _load_cas(context, conn):
        context.load_default_certs()
    _load_client_cert(context, conn)
    context.set_alpn_protocols(_alpn())
    return context


def _made(conn: HTTPSConnection, cert_reqs: ssl.VerifyMode) -> ssl.SSLContext:
    """A complete context for ``conn``'s settings, shared with identical settings."""
    version = conn.ssl_version
    if version is not None and _ssl_.resolve_ssl_version(version) not in (
        ssl.PROTOCOL_TLS,
        ssl.PROTOCOL_TLS_CLIENT,
    ):
        return _build(conn, cert_reqs)  # deprecated: urllib3 warns on each use, so do we
    environ = os.environ
    key = (
        _ssl_.SSLContext,
        cert_reqs,
        conn.ssl_minimum_version,
        conn.ssl_maximum_version,
        _file_key(conn.ca_certs),
        _file_key(conn.ca_cert_dir),
        conn.ca_cert_data,
        _file_key(getattr(conn, "cert_file", None)),
        _file_key(getattr(conn, "key_file", None)),
        getattr(conn, "key_password", None),
        _own_check(conn),
        tuple(_alpn()),
        environ.get("SSL_CERT_FILE"),
        environ.get("SSL_CERT_DIR"),
        environ.get("SSLKEYLOGFILE"),
    )
    with _contexts_lock:
        context = _contexts.get(key)
    if context is not None:
        return context
    context = _build(conn, cert_reqs)
    with _contexts_lock:
        context = _contexts.setdefault(key, context)
        while len(_contexts) > _MAX_CONTEXTS:
            del _contexts[next(iter(_contexts))]
    return context


def _apply(context: ssl.SSLContext, conn: HTTPSConnection, cert_reqs: ssl.VerifyMode) -> None:
    """urllib3's settings on a given context: only ever stricter, never weaker.

    Another thread may make the context stricter still before this connection's
    handshake starts (never weaker): what was set here is the least it gets.
    """
    with _given_lock:
        current = context.verify_mode
        wanted, has = _STRENGTH.get(cert_reqs), _STRENGTH.get(current)
        if wanted is not None and has is not None and wanted < has:
            raise ValueError(
                f"cert_reqs={cert_reqs.name} would weaken the given ssl_context (its "
                f"verify_mode is {current.name}): stoppable.http never lowers a given "
                "context's verification; pass a context made for the verification you "
                "want (requests: verify=False cannot apply to an adapter's ssl_context)"
            )
        if cert_reqs != current:
            context.verify_mode = cert_reqs
        if _own_check(conn) and context.check_hostname:
            context.check_hostname = False
        minimum = conn.ssl_minimum_version
        if minimum is not None and _rank(minimum) > _rank(context.minimum_version):
            context.minimum_version = ssl.TLSVersion(minimum)
        _load_cas(context, conn)
        _load_client_cert(context, conn)
        context.set_alpn_protocols(_alpn())


def _rank(version: int) -> int:
    if version == ssl.TLSVersion.MINIMUM_SUPPORTED:
        return 0
    if version == ssl.TLSVersion.MAXIMUM_SUPPORTED:
        return 1 << 16
    return int(version)


def context_for(conn: HTTPSConnection) -> tuple[ssl.SSLContext, bool, ssl.VerifyMode]:
    """The context for ``conn``'s next handshake, whether it was made here, its mode.

    The mode is the least verification the handshake gets (``check_peer`` decides
    by it, as the context may get stricter meanwhile).

    Raises ``ValueError`` for a setting that would weaken a given context, and
    urllib3's ``SSLError`` for files that cannot be loaded or pyOpenSSL injection.
    """
    given = conn.ssl_context
    _refuse_pyopenssl(given)
    cert_reqs = _ssl_.resolve_cert_reqs(conn.cert_reqs)
    if given is None:
        return _made(conn, cert_reqs), True, cert_reqs
    _apply(given, conn, cert_reqs)
    return given, False, cert_reqs


def warn_if_clock_is_off() -> None:
    """urllib3's ``SystemTimeWarning`` when the clock is before its ``RECENT_DATE``.

    Read from ``urllib3.connection`` at each call, as urllib3 does (tests patch it).
    """
    module: Any = urllib3.connection
    recent = getattr(module, "RECENT_DATE", None)
    clock = getattr(module, "datetime", None)
    if recent is None or clock is None:  # pragma: no cover - another urllib3
        return
    if clock.date.today() < recent:
        warnings.warn(
            f"System time is way off (before {recent}). This will probably "
            "lead to SSL verification errors",
            urllib3.exceptions.SystemTimeWarning,
            stacklevel=2,
        )


def server_hostname(name: str) -> str:
    """The name sent (SNI) and checked: no trailing dot, IPv6 without brackets or zone."""
    name = name.rstrip(".")
    normalized = name.strip("[]")
    if "%" in normalized:
        normalized = normalized[: normalized.rfind("%")]
    return normalized if _ssl_.is_ipaddress(normalized) else name


def check_peer(
    conn: HTTPSConnection,
    tls: ssl.SSLSocket,
    context: ssl.SSLContext,
    hostname: str,
    made_here: bool,
    verify_mode: ssl.VerifyMode,
) -> bool:
    """urllib3's checks after the handshake (fingerprint, hostname); whether verified.

    Raises urllib3's errors (``SSLError`` for a fingerprint, ``CertificateError`` for
    a hostname) as urllib3 does. ``check_hostname`` is read after the handshake: it
    only ever goes from on to off, so if the handshake ran without it, this sees it off.
    """
    if conn.assert_fingerprint:
        _ssl_.assert_fingerprint(tls.getpeercert(binary_form=True), conn.assert_fingerprint)
    elif (
        verify_mode != ssl.CERT_NONE
        and not context.check_hostname
        and conn.assert_hostname is not False
    ):
        cert: Any = tls.getpeercert()
        common_name = (
            False
            if made_here
            else bool(getattr(context, "hostname_checks_common_name", False) or False)
        )
        _match_hostname(cert, conn.assert_hostname or hostname, common_name)
    return verify_mode == ssl.CERT_REQUIRED or bool(conn.assert_fingerprint)

"""``net``'s connections: name lookups, ``connect`` across addresses, and TLS.

``connect`` resolves within the call's deadline and gives each address an equal
share of the time left; ``start_tls`` (and ``connect``'s ``ssl_context``) run the
handshake as one more bounded operation of ``_netio``.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import ssl
from typing import TYPE_CHECKING, Any, overload

from . import _args, _resolve
from ._errors import DeadlineExceeded
from ._limits import Limits, StopLike, begin
from ._netio import POLLIN, POLLOUT, Op, RetryLater, run
from ._netio import wait_ready as _wait_ready
from ._netops import _raw
from ._resolve import AddrInfo, Resolver

if TYPE_CHECKING:
    from ._netsocket import Socket


def _show(host: object, port: object) -> str:
    text = host.decode() if isinstance(host, bytes) else str(host)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _connect_op(sockaddr: Any) -> Op[None]:
    """A non-blocking ``connect`` to ``sockaddr`` as a retryable operation."""
    started = False

    def op(target: Any, extra: int) -> None:
        nonlocal started
        if started:
            err = target.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not err:
                try:
                    target.getpeername()
                except OSError as exc:
                    if exc.errno != errno.ENOTCONN:
                        raise
                    raise BlockingIOError(errno.EINPROGRESS, "connecting") from None
                return
        else:
            err = target.connect_ex(sockaddr)
            if err in (0, errno.EISCONN):
                return
            if err in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                started = True
                raise BlockingIOError(err, os.strerror(err))
            if err == errno.EAGAIN:  # AF_UNIX with a full backlog: try again later
                raise RetryLater(err, os.strerror(err))
        raise OSError(err, os.strerror(err))

    return op


def _handshake(
    tls: ssl.SSLSocket, seconds: float, stop: object, call: Limits | None = None
) -> None:
    run(
        tls,
        lambda t, extra: t.do_handshake(),
        POLLIN,
        seconds,
        stop,
        "TLS handshake",
        flags_ok=False,
        call=call,
    )


def _connect_addresses(
    call: Limits, infos: list[Any], source_address: tuple[str, int] | None
) -> socket.socket:
    errors: list[OSError] = []
    count = len(infos)
    for index, (family, socktype, proto, _canonname, sockaddr) in enumerate(infos):
        remaining = call.remaining()
        if remaining <= 0:
            break
        share = remaining / (count - index)
        target = _show(sockaddr[0], sockaddr[1])
        # UNTIL_STOPPED: every address may take as long as it needs (inf - inf is NaN).
        end = call.deadline if share == math.inf else call.deadline - remaining + share
        sub = call.narrowed(end, f"connect to {target}")

        def share_ran_out(
            message: str,
            *,
            timeout: float | None = None,
            target: str = target,
            share: float = share,
        ) -> DeadlineExceeded:
            return DeadlineExceeded(
                f"connect to {target} gave up after {share:.3g} s, its share of the "
                f"{call.timeout:g} s timeout across {count} addresses",
                timeout=timeout,
            )

        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(0.0)  # our own socket: non-blocking until handed over
            if source_address is not None:
                sock.bind(source_address)
            op = _connect_op(sockaddr)
            try:
                op(sock, 0)
            except BlockingIOError:
                _wait_ready(sub, sock, sock, 0, op, POLLOUT, share_ran_out)
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            errors.append(exc)
            continue
        return sock
    if call.remaining() <= 0 or not errors:
        cause = errors[-1] if errors else None
        raise call.deadline_error(DeadlineExceeded) from cause
    raise errors[0]


# --- public functions ----------------------------------------------------------------


def resolve(
    host: str | bytes | None,
    port: str | int | None,
    *,
    timeout: float,
    stop: StopLike | None = None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
    resolver: Resolver | None = None,
) -> list[AddrInfo]:
    """``socket.getaddrinfo`` bounded by ``timeout`` and ``stop``.

    Returns ``getaddrinfo``'s list of ``(family, type, proto, canonname, sockaddr)``.
    The lookup runs in a helper thread (see the module docstring) with ``resolver``,
    or the one set by ``set_resolver`` (``socket.getaddrinfo`` by default); IP
    literals are answered at once without it. Raises ``Stopped``, ``DeadlineExceeded``
    (its message says whether the resolver was slow or no helper thread was free),
    or the resolver's error (``socket.gaierror``).
    """
    _check_lookup(host, port, family, type, proto, flags, resolver)
    seconds = begin(timeout, stop)
    call = Limits(seconds, stop, f"resolving {host!r}")
    return _resolve.lookup(call, host, port, family, type, proto, flags, resolver)


def _check_lookup(
    host: object,
    port: object,
    family: object,
    type: object,
    proto: object,
    flags: object,
    resolver: object,
) -> None:
    """Refuse what ``getaddrinfo`` would, naming the argument, before the lookup."""
    if host is not None:
        _args.check_type(host, (str, bytes), "host", "a str, bytes or None")
    if port is not None:
        _args.check_type(port, (str, bytes, int), "port", "an int, str, bytes or None")
    for value, name in ((family, "family"), (type, "type"), (proto, "proto"), (flags, "flags")):
        _args.check_int(value, name)
    _args.check_callable(resolver, "resolver", optional=True)


@overload
def connect(
    address: tuple[str, int] | tuple[str, int, int, int],
    *,
    timeout: float,
    stop: StopLike | None = None,
    source_address: tuple[str, int] | None = None,
    family: int = 0,
    ssl_context: None = None,
    server_hostname: str | None = None,
    resolver: Resolver | None = None,
) -> socket.socket: ...
@overload
def connect(
    address: tuple[str, int] | tuple[str, int, int, int],
    *,
    timeout: float,
    stop: StopLike | None = None,
    source_address: tuple[str, int] | None = None,
    family: int = 0,
    ssl_context: ssl.SSLContext,
    server_hostname: str | None = None,
    resolver: Resolver | None = None,
) -> ssl.SSLSocket: ...
def connect(
    address: tuple[str, int] | tuple[str, int, int, int],
    *,
    timeout: float,
    stop: StopLike | None = None,
    source_address: tuple[str, int] | None = None,
    family: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    resolver: Resolver | None = None,
) -> socket.socket:
    """Open a TCP connection (optionally TLS) to ``address = (host, port)``.

    Like ``socket.create_connection``, but the name lookup, every address tried, the
    connect and the TLS handshake share the one ``timeout``, and a stop ends any of
    them at once. Each address gets an equal share of the time left when its turn
    comes (the last gets all of it). ``family`` restricts the lookup
    (``socket.AF_INET``/``AF_INET6``); ``source_address`` (an IP, port) is bound first.

    With ``ssl_context``, the connection is wrapped and the handshake done, with
    ``server_hostname`` (default: ``host``) for SNI and the certificate check.

    Returns a connected ``socket.socket`` (an ``ssl.SSLSocket`` with TLS) in blocking
    mode, as ``socket.create_connection`` does without a timeout: use it through this
    module (or wrap it in ``Socket``). Raises ``Stopped``, ``DeadlineExceeded``, the
    resolver's ``socket.gaierror``, or, when every address failed in time, the first
    address's error (``ConnectionRefusedError``...), as the standard library does.
    A TLS failure raises ``ssl.SSLError`` (``ssl.SSLCertVerificationError``...).
    Whatever is raised, no socket is left open.
    """
    if not isinstance(address, tuple) or len(address) not in (2, 4):
        raise TypeError(f"address must be a (host, port) tuple, got {address!r}")
    _check_lookup(address[0], address[1], family, socket.SOCK_STREAM, 0, 0, resolver)
    if source_address is not None:
        _args.check_type(source_address, tuple, "source_address", "a (host, port) tuple")
    if ssl_context is not None:
        _args.check_type(ssl_context, ssl.SSLContext, "ssl_context", "an ssl.SSLContext")
    if server_hostname is not None:
        _args.check_type(server_hostname, str, "server_hostname", "a str")
    seconds = begin(timeout, stop)
    host, port = address[0], address[1]
    call = Limits(seconds, stop, f"connect to {_show(host, port)}")
    infos = _resolve.lookup(call, host, port, family, socket.SOCK_STREAM, 0, 0, resolver)
    sock = _connect_addresses(call, infos, source_address)
    try:
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(
                sock,
                server_hostname=host if server_hostname is None else server_hostname,
                do_handshake_on_connect=False,
            )
            call.operation = f"TLS handshake with {_show(host, port)}"
            _handshake(sock, 0.0, None, call)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def start_tls(
    sock: socket.socket | Socket,
    context: ssl.SSLContext,
    *,
    timeout: float,
    stop: StopLike | None = None,
    server_hostname: str | None = None,
    server_side: bool = False,
) -> ssl.SSLSocket:
    """Wrap a connected socket in TLS and do the handshake, bounded and stoppable.

    As ``context.wrap_socket(sock, ...)`` with a handshake that ends by ``timeout``
    or ``stop``. ``sock`` is consumed (detached) as ``wrap_socket`` does; the returned
    ``ssl.SSLSocket`` keeps its timeout mode. If the handshake fails, times out or is
    stopped, the connection is closed: it is mid-handshake, and cannot be reused.
    """
    raw = _raw(sock)
    _check_tls(context, server_hostname, server_side)
    seconds = begin(timeout, stop)
    tls = _wrap_tls(raw, context, server_hostname, server_side)
    try:
        _handshake(tls, seconds, stop)
    except BaseException:
        tls.close()
        raise
    return tls


def _check_tls(context: object, server_hostname: object, server_side: object) -> None:
    _args.check_type(context, ssl.SSLContext, "context", "an ssl.SSLContext")
    if server_hostname is not None:
        _args.check_type(server_hostname, str, "server_hostname", "a str")
    _args.check_type(server_side, bool, "server_side", "a bool")


def _wrap_tls(
    raw: socket.socket, context: ssl.SSLContext, server_hostname: str | None, server_side: bool
) -> ssl.SSLSocket:
    """``raw`` wrapped in TLS (consumed, as ``wrap_socket`` does), its handshake not run."""
    return context.wrap_socket(
        raw,
        server_side=server_side,
        server_hostname=server_hostname,
        do_handshake_on_connect=False,
    )

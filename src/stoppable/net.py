"""Sockets whose every wait is bounded by a total deadline and ended at once by a stop.

::

    from stoppable import StopEvent, net

    stop = StopEvent()
    sock = net.connect(("example.com", 443), timeout=5, stop=stop,
                       ssl_context=ssl.create_default_context())
    net.sendall(sock, request, timeout=5, stop=stop)
    reply = net.recv(sock, 65536, timeout=5, stop=stop)

    conn = net.Socket(sock, stop=stop)          # the same, as methods
    conn.sendall(request, timeout=5)

What is bounded, and how:

- ``connect``: the name lookup, every address tried and the TCP connect (and the TLS
  handshake, with ``ssl_context``) share one deadline, where the standard library
  gives each address the full timeout. Each address gets an equal share of what is
  left, so one address that swallows packets cannot use up the whole budget.
- Name lookups run ``getaddrinfo`` (or the resolver set by ``set_resolver``) in a
  small, bounded pool of helper threads, abandoned, not waited for, on a deadline or
  a stop. When every helper thread is busy (a resolver stuck for good), a new lookup
  waits for a free one within its own deadline; no more threads are made. IP
  literals never reach the resolver.
- ``recv``, ``recv_into``, ``recvfrom``, ``recvfrom_into``, ``send``, ``sendall``,
  ``sendto``, ``accept``, ``start_tls``: each tries the operation at once, then waits
  in ``poll`` on the socket and the ``StopEvent``'s wake-up descriptor, so a stop is
  noticed within microseconds; a plain ``threading.Event`` stop is polled between
  slices (``stoppable.set_poll_interval``). ``timeout`` is a total: ``sendall`` of
  a megabyte to a slow reader ends when the timeout is up, not when one ``send``
  stalls for that long.

The functions work on sockets they did not create: blocking sockets, sockets in any
timeout mode, plain or TLS (``ssl.SSLSocket``), and leave the socket's timeout mode as
they found it. A plain socket's mode is not even switched during a send or receive
(each try passes ``MSG_DONTWAIT``, or goes through a non-blocking shadow of the
socket), so another thread may use the socket meanwhile with plain calls. A TLS
socket (OpenSSL needs it), and a blocking socket in ``accept`` or ``Socket.connect``
(they take no per-call flag), are switched to non-blocking for the length of the call
and switched back after; overlapping calls through this module on one socket share
the switch, so the mode is restored only when the last one ends.

Errors:

- A timeout raises ``stoppable.DeadlineExceeded``, which is also ``socket.timeout``
  (``TimeoutError``): ``except socket.timeout`` keeps working.
- A stop raises ``stoppable.Stopped`` (a ``BaseException``, with the stop's reason).
- ``sendall`` interrupted by a stop raises ``SendallStopped``, by its timeout
  ``SendallDeadline``: both have ``bytes_sent``, the bytes the peer can receive.
- Anything else (a reset by the peer, a refused connection, a failed certificate
  check, ``socket.gaierror``) passes through as the usual ``OSError``.

Nothing is read and then dropped: a wait that ends by a stop or a deadline has
consumed no data, and the socket stays usable (a ``recv`` may simply be called again).
A ``sendall`` or TLS handshake cut short leaves the connection mid-message: close it,
or (plain sockets) resume with ``data[err.bytes_sent:]``.

``Socket`` is a socket-like wrapper for code that expects a socket object (such as
``http.client`` through ``makefile()``): its methods take the same ``timeout``, and when
called without one (as third-party code does) take their budget from the socket's own
timeout and the enclosing ``stoppable.scope``'s deadline.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import ssl
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast, overload

from . import _args, _resolve
from ._errors import DeadlineExceeded, Stopped
from ._limits import Limits, StopLike, _current_scope, begin, validate_stop
from ._netio import DONTWAIT, POLLIN, POLLOUT, Op, RetryLater, run
from ._netio import wait_ready as _wait_ready
from ._resolve import AddrInfo, Resolver, get_resolver, set_resolver, set_resolver_threads

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "AddrInfo",
    "Resolver",
    "SendallDeadline",
    "SendallStopped",
    "Socket",
    "accept",
    "connect",
    "get_resolver",
    "recv",
    "recv_into",
    "recvfrom",
    "recvfrom_into",
    "resolve",
    "send",
    "sendall",
    "sendto",
    "set_resolver",
    "set_resolver_threads",
    "start_tls",
]

# The hot path: a plain socket in blocking mode, where MSG_DONTWAIT makes each try
# non-blocking without touching the socket. Disabled where the flag does not exist.
T = TypeVar("T")

_monotonic = time.monotonic
_FAST_CLASS: type | None = socket.socket if DONTWAIT else None
_TLS_RECORD = 16384  # the largest TLS record payload: sendall's unit on TLS sockets


# --- errors ------------------------------------------------------------------------


class SendallStopped(Stopped):
    """``sendall`` was stopped; ``bytes_sent`` bytes of the data had been sent.

    A ``Stopped`` (``except Stopped`` catches it), raised by every stopped
    ``sendall``, including one whose stop was set before it began (``bytes_sent``
    is then 0). On a TLS socket the count is in whole TLS records: bytes the peer
    can decrypt.
    """

    def __init__(self, reason: object = None, *, bytes_sent: int = 0) -> None:
        super().__init__(reason)
        self.bytes_sent = bytes_sent

    def __str__(self) -> str:
        return f"{super().__str__()} ({self.bytes_sent} bytes sent)"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_stopped, (type(self), self.reason, self.bytes_sent))


class SendallDeadline(DeadlineExceeded):
    """``sendall`` timed out; ``bytes_sent`` bytes of the data had been sent.

    A ``DeadlineExceeded``, hence also ``socket.timeout``. Counted as for
    ``SendallStopped``.
    """

    def __init__(self, message: str, *, timeout: float | None = None, bytes_sent: int = 0) -> None:
        super().__init__(message, timeout=timeout)
        self.bytes_sent = bytes_sent

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_deadline, (type(self), self.args[0], self.timeout, self.bytes_sent))


def _rebuild_stopped(cls: type[SendallStopped], reason: object, sent: int) -> SendallStopped:
    return cls(reason, bytes_sent=sent)


def _rebuild_deadline(
    cls: type[SendallDeadline], message: str, timeout: float | None, sent: int
) -> SendallDeadline:
    return cls(message, timeout=timeout, bytes_sent=sent)


# --- helpers -----------------------------------------------------------------------


def _raw(sock: object) -> socket.socket:
    """The ``socket.socket`` behind ``sock`` (a socket, or a ``Socket`` wrapper)."""
    if isinstance(sock, socket.socket):
        return sock
    if isinstance(sock, Socket):
        return sock._sock
    raise TypeError(
        f"sock must be a socket.socket or stoppable.net.Socket, got {type(sock).__name__}"
    )


def _check_data(data: object, flags: object) -> None:
    if data.__class__ is not bytes:
        _args.check_bytes(data, "data")
    if flags.__class__ is not int:
        _args.check_int(flags, "flags")


def _show(host: object, port: object) -> str:
    text = host.decode() if isinstance(host, bytes) else str(host)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _sockaddr(
    raw: socket.socket, address: Any, seconds: float, stop: object, operation: str
) -> tuple[Any, Limits | None]:
    """``address`` as a sockaddr: a host name is resolved, within the call's deadline.

    Returns the call's ``Limits`` too when the lookup started its clock, so the
    operation that follows shares the deadline.
    """
    if raw.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return address, None
    host = address[0]
    if not isinstance(host, str | bytes) or host in ("", "<broadcast>", b"", b"<broadcast>"):
        return address, None
    if _resolve._numeric(host, address[1], raw.family, raw.type, 0, 0) is not None:
        return address, None
    call = Limits(seconds, stop, operation)
    infos = _resolve.lookup(call, host, address[1], raw.family, raw.type, raw.proto)
    return infos[0][4], call


# --- the operations, on a validated budget (seconds, or math.inf under a scope) ---------


def _io(
    raw: socket.socket, op: Op[T], natural: int, seconds: float, stop: object, operation: str
) -> T:
    """Run one ``recv``/``send``-family operation (``op`` passes on its extra flags)."""
    if raw.__class__ is _FAST_CLASS and raw.gettimeout() is None:
        # The hot path, inlined from run(): a plain blocking socket, each try made
        # non-blocking by MSG_DONTWAIT, the clock read only if the first try must wait.
        try:
            return op(raw, DONTWAIT)
        except BlockingIOError:
            pass
        call = Limits(seconds, stop, operation)
        return _wait_ready(call, raw, raw, DONTWAIT, op, natural, DeadlineExceeded)
    return run(raw, op, natural, seconds, stop, operation)


def _recv(raw: socket.socket, bufsize: int, flags: int, seconds: float, stop: object) -> bytes:
    def op(target: Any, extra: int) -> bytes:
        data: bytes = target.recv(bufsize, flags | extra)
        return data

    return _io(raw, op, POLLIN, seconds, stop, "recv")


def _recv_into(
    raw: socket.socket,
    buffer: WriteableBuffer,
    nbytes: int,
    flags: int,
    seconds: float,
    stop: object,
) -> int:
    def op(target: Any, extra: int) -> int:
        count: int = target.recv_into(buffer, nbytes, flags | extra)
        return count

    return _io(raw, op, POLLIN, seconds, stop, "recv_into")


def _send(
    raw: socket.socket, data: ReadableBuffer, flags: int, seconds: float, stop: object
) -> int:
    def op(target: Any, extra: int) -> int:
        count: int = target.send(data, flags | extra)
        return count

    return _io(raw, op, POLLOUT, seconds, stop, "send")


class _SendAll:
    """``sendall`` as a resumable non-blocking operation: ``sent`` is its progress."""

    __slots__ = ("chunk", "flags", "sent", "total", "view")

    def __init__(self, view: memoryview, flags: int, chunk: int) -> None:
        self.view = view
        self.total = len(view)
        self.flags = flags
        self.chunk = chunk
        self.sent = 0

    def __call__(self, target: Any, extra: int) -> None:
        view, flags, chunk, total = self.view, self.flags | extra, self.chunk, self.total
        while self.sent < total:
            self.sent += target.send(view[self.sent : self.sent + chunk], flags)

    def deadline(self, message: str, *, timeout: float | None = None) -> SendallDeadline:
        return SendallDeadline(
            f"{message} ({self.sent} of {self.total} bytes sent)",
            timeout=timeout,
            bytes_sent=self.sent,
        )


def _sendall(
    raw: socket.socket, data: ReadableBuffer, flags: int, seconds: float, stop: object
) -> None:
    fast = raw.__class__ is _FAST_CLASS and raw.gettimeout() is None
    sent = 0
    if fast and data.__class__ is bytes:  # the common case, whole in one send: no allocation
        try:
            sent = raw.send(data, flags | DONTWAIT)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
    view = memoryview(data)
    if view.itemsize != 1 or view.ndim != 1:
        view = view.cast("B")
    tls = isinstance(raw, ssl.SSLSocket)
    state = _SendAll(view, flags, _TLS_RECORD if tls else len(view) or 1)
    state.sent = sent
    try:
        if fast:
            try:
                return state(raw, DONTWAIT)
            except BlockingIOError:
                pass
            _wait_ready(
                Limits(seconds, stop, "sendall"), raw, raw, DONTWAIT, state, POLLOUT, state.deadline
            )
        else:
            run(raw, state, POLLOUT, seconds, stop, "sendall", error=state.deadline)
    except Stopped as exc:
        if isinstance(exc, SendallStopped):
            raise
        raise SendallStopped(exc.reason, bytes_sent=state.sent) from None
    finally:
        view.release()


def _recvfrom(raw: socket.socket, bufsize: int, flags: int, seconds: float, stop: object) -> Any:
    return run(
        raw, lambda t, extra: t.recvfrom(bufsize, flags | extra), POLLIN, seconds, stop, "recvfrom"
    )


def _recvfrom_into(
    raw: socket.socket,
    buffer: WriteableBuffer,
    nbytes: int,
    flags: int,
    seconds: float,
    stop: object,
) -> Any:
    return run(
        raw,
        lambda t, extra: t.recvfrom_into(buffer, nbytes, flags | extra),
        POLLIN,
        seconds,
        stop,
        "recvfrom_into",
    )


def _sendto(
    raw: socket.socket, data: ReadableBuffer, address: Any, flags: int, seconds: float, stop: object
) -> int:
    sockaddr, call = _sockaddr(raw, address, seconds, stop, "sendto")

    def op(target: Any, extra: int) -> int:
        count: int = target.sendto(data, flags | extra, sockaddr)
        return count

    return run(raw, op, POLLOUT, seconds, stop, "sendto", call=call)


def _accept(raw: socket.socket, seconds: float, stop: object) -> tuple[socket.socket, Any]:
    fd, address = run(
        raw, lambda t, extra: t._accept(), POLLIN, seconds, stop, "accept", flags_ok=False
    )
    conn = socket.socket(raw.family, raw.type, raw.proto, fileno=fd)
    try:
        if socket.getdefaulttimeout() is None:
            # Blocking, as socket.accept returns it (the fd may have inherited the
            # listener's O_NONBLOCK): the caller bounds its calls, through this module.
            conn.setblocking(True)
        if isinstance(raw, ssl.SSLSocket):
            # No handshake here: it runs, bounded, in the first call on the connection
            # (or in start_tls), not in the accept loop.
            conn = raw.context.wrap_socket(
                conn,
                server_side=True,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=raw.suppress_ragged_eofs,  # type: ignore[attr-defined]
            )
    except BaseException:
        conn.close()
        raise
    return conn, address


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
    _args.check_type(context, ssl.SSLContext, "context", "an ssl.SSLContext")
    if server_hostname is not None:
        _args.check_type(server_hostname, str, "server_hostname", "a str")
    _args.check_type(server_side, bool, "server_side", "a bool")
    seconds = begin(timeout, stop)
    tls = context.wrap_socket(
        raw,
        server_side=server_side,
        server_hostname=server_hostname,
        do_handshake_on_connect=False,
    )
    try:
        _handshake(tls, seconds, stop)
    except BaseException:
        tls.close()
        raise
    return tls


def recv(
    sock: socket.socket | Socket,
    bufsize: int,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> bytes:
    """Receive up to ``bufsize`` bytes, waiting at most ``timeout`` seconds for some.

    As ``sock.recv``: returns what has arrived (``b""`` when the peer has closed).
    Raises ``Stopped`` or ``DeadlineExceeded`` having read nothing.
    """
    if bufsize.__class__ is not int or flags.__class__ is not int:
        _args.check_int(bufsize, "bufsize", 0)
        _args.check_int(flags, "flags")
    seconds = begin(timeout, stop)
    if sock.__class__ is _FAST_CLASS:
        return _recv(sock, bufsize, flags, seconds, stop)  # type: ignore[arg-type]
    return _recv(_raw(sock), bufsize, flags, seconds, stop)


def recv_into(
    sock: socket.socket | Socket,
    buffer: WriteableBuffer,
    nbytes: int = 0,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> int:
    """Receive into ``buffer``, waiting at most ``timeout`` seconds; the byte count.

    As ``sock.recv_into``: up to ``nbytes`` bytes (all of ``buffer`` when 0), ``0``
    when the peer has closed. Raises ``Stopped`` or ``DeadlineExceeded`` having
    written nothing into ``buffer``.
    """
    if nbytes.__class__ is not int or flags.__class__ is not int:
        _args.check_int(nbytes, "nbytes", 0)
        _args.check_int(flags, "flags")
    if buffer.__class__ is not bytearray:
        _args.check_buffer(buffer, "buffer")
    seconds = begin(timeout, stop)
    if sock.__class__ is _FAST_CLASS:
        return _recv_into(sock, buffer, nbytes, flags, seconds, stop)  # type: ignore[arg-type]
    return _recv_into(_raw(sock), buffer, nbytes, flags, seconds, stop)


def send(
    sock: socket.socket | Socket,
    data: ReadableBuffer,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> int:
    """Send some of ``data``, waiting at most ``timeout`` seconds for room; the count.

    As ``sock.send``: it may send less than all of ``data`` (see ``sendall``). Raises
    ``Stopped`` or ``DeadlineExceeded`` having sent nothing.
    """
    _check_data(data, flags)
    seconds = begin(timeout, stop)
    return _send(_raw(sock), data, flags, seconds, stop)


def sendall(
    sock: socket.socket | Socket,
    data: ReadableBuffer,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> None:
    """Send all of ``data`` within ``timeout`` seconds in total.

    Raises ``SendallStopped`` (a ``Stopped``) or ``SendallDeadline`` (a
    ``DeadlineExceeded`` and ``socket.timeout``), whose ``bytes_sent`` says how much
    of ``data`` went out; on a TLS socket, in whole records. After either, the peer
    has a partial message: close the connection, or send ``data[err.bytes_sent:]``
    to resume (on TLS too, as long as nothing else is sent in between).
    """
    _check_data(data, flags)
    try:
        seconds = begin(timeout, stop)
    except Stopped as exc:
        raise SendallStopped(exc.reason, bytes_sent=0) from None
    _sendall(_raw(sock), data, flags, seconds, stop)


def recvfrom(
    sock: socket.socket | Socket,
    bufsize: int,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> tuple[bytes, Any]:
    """Receive a datagram (or stream data) and its sender, as ``sock.recvfrom``, bounded."""
    _args.check_int(bufsize, "bufsize", 0)
    _args.check_int(flags, "flags")
    seconds = begin(timeout, stop)
    result: tuple[bytes, Any] = _recvfrom(_raw(sock), bufsize, flags, seconds, stop)
    return result


def recvfrom_into(
    sock: socket.socket | Socket,
    buffer: WriteableBuffer,
    nbytes: int = 0,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> tuple[int, Any]:
    """Receive into ``buffer`` with the sender, as ``sock.recvfrom_into``, bounded."""
    _args.check_buffer(buffer, "buffer")
    _args.check_int(nbytes, "nbytes", 0)
    _args.check_int(flags, "flags")
    seconds = begin(timeout, stop)
    result: tuple[int, Any] = _recvfrom_into(_raw(sock), buffer, nbytes, flags, seconds, stop)
    return result


def sendto(
    sock: socket.socket | Socket,
    data: ReadableBuffer,
    address: Any,
    flags: int = 0,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> int:
    """Send a datagram to ``address``, waiting at most ``timeout`` seconds in all.

    Note the order: ``address`` before ``flags`` (``sock.sendto`` takes
    ``(data, flags, address)``). A host name in ``address`` is resolved within the
    same deadline (``sock.sendto`` would resolve it without one).
    """
    _check_data(data, flags)
    _args.check_type(address, (tuple, str, bytes), "address", "a socket address (a tuple)")
    seconds = begin(timeout, stop)
    return _sendto(_raw(sock), data, address, flags, seconds, stop)


def accept(
    sock: socket.socket | Socket,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> tuple[socket.socket, Any]:
    """Accept a connection, waiting at most ``timeout`` seconds; ``(conn, address)``.

    ``conn`` is in blocking mode (or the default timeout, as ``sock.accept`` gives).
    On a TLS listening socket (``ssl.SSLSocket``), ``conn`` is an ``ssl.SSLSocket``
    whose handshake has not run yet: it runs, bounded like everything else, within
    the first call on the connection (or call ``start_tls``... on a plain listener),
    so a slow client cannot hold up the accept loop.
    """
    seconds = begin(timeout, stop)
    return _accept(_raw(sock), seconds, stop)


# --- the wrapper ---------------------------------------------------------------------

# Methods of a socket that block with no bound this module can impose: the wrapper
# refuses them rather than block without a limit.
_UNBOUNDED = frozenset(
    {"connect_ex", "read", "recvmsg", "recvmsg_into", "sendfile", "sendmsg", "unwrap", "write"}
)


class Socket:
    """A socket-like wrapper whose blocking methods are bounded and stoppable.

    ::

        conn = net.Socket(sock, stop=stop)
        conn.sendall(request, timeout=5)
        reply = conn.recv(4096, timeout=5)
        with conn.makefile("rb") as f:          # for code that reads a file
            with stoppable.scope(timeout=5):
                line = f.readline()

    It wraps a ``socket.socket`` or ``ssl.SSLSocket`` (made by anyone, in any timeout
    mode) and applies its ``stop`` (plus the enclosing scopes' stops) to every call.
    Its methods take the socket's arguments plus a keyword ``timeout``; called
    without one, as third-party code does, a method's budget is:

    1. the socket's own timeout (``sock.settimeout``), per call as in the standard
       library, combined with the enclosing ``stoppable.scope``'s deadline (the
       earliest wins); a socket in non-blocking mode (timeout ``0``) is used as it
       is: the call raises ``BlockingIOError`` (``ssl.SSLWantReadError``...) if it
       would block, as the socket would;
    2. else (a blocking socket) the enclosing scope's deadline;
    3. else nothing bounds the call: ``TypeError``.

    So ``http.client`` or ``urllib3`` can read through ``makefile()`` inside a scope,
    and a read that times out or is stopped raises, rather than ever returning a body
    cut short: the wait is sliced inside the socket object, never by the socket's
    own timeout and never by ``shutdown()``.

    Other attributes (``getpeername``, ``setsockopt``, ``settimeout``, ``shutdown``,
    ``getpeercert``...) are the wrapped socket's. Methods that would block without a
    bound this class can impose (``recvmsg``, ``sendfile``, ``unwrap``...) are refused
    with ``AttributeError``: use them on ``.sock`` knowingly.
    """

    __slots__ = ("_sock", "stop")

    def __init__(self, sock: socket.socket | Socket, *, stop: StopLike | None = None) -> None:
        self._sock: socket.socket = _raw(sock)
        self.stop: StopLike | None = None if stop is None else validate_stop(stop)
        """The stop applied to every call (with the enclosing scopes' stops)."""

    @property
    def sock(self) -> socket.socket:
        """The wrapped socket (an ``ssl.SSLSocket`` for TLS)."""
        return self._sock

    def __repr__(self) -> str:
        return f"<stoppable.net.Socket {self._sock!r} stop={self.stop!r}>"

    def __getattr__(self, name: str) -> Any:
        if name in _UNBOUNDED:
            raise AttributeError(
                f"stoppable.net.Socket has no bounded {name}(); call it on .sock, "
                "where nothing bounds it"
            )
        if name in Socket.__slots__:  # not set yet: never recurse
            raise AttributeError(name)
        return getattr(self._sock, name)

    def _budget(self, timeout: float | None) -> float:
        """Seconds for a call begun here (stops checked); ``-1``: pass through."""
        given = self._timeout(timeout)
        return -1.0 if given is None else begin(given, self.stop)

    def _timeout(self, timeout: float | None) -> Any:
        """The ``timeout`` to pass to the module function; ``None``: pass through.

        The methods are the module functions with the wrapper's ``stop`` and default
        budget, so the API (argument checks, budget, errors) is implemented once. A call
        bounded by the scope alone passes a timeout a second past the scope's deadline:
        the earliest deadline wins, so the scope's decides (and names its timeout).
        """
        if timeout is not None:
            return timeout
        own = self._sock.gettimeout()
        if own is not None:
            if own > 0:
                return own
            begin(own, self.stop)  # non-blocking: the stops still apply
            return None
        state = _current_scope.get()
        if state is not None and state.deadline is not None:
            return max(state.deadline - _monotonic(), 0.0) + 1.0
        raise TypeError(
            "timeout is required: pass timeout=, call inside stoppable.scope(timeout=...), "
            "or give the socket a timeout (settimeout)"
        )

    def recv(self, bufsize: int, flags: int = 0, *, timeout: float | None = None) -> bytes:
        """As ``net.recv`` (see the class docstring for a call without ``timeout``)."""
        seconds = self._timeout(timeout)
        if seconds is None:
            return self._sock.recv(bufsize, flags)
        return recv(self._sock, bufsize, flags, timeout=seconds, stop=self.stop)

    def recv_into(
        self,
        buffer: WriteableBuffer,
        nbytes: int = 0,
        flags: int = 0,
        *,
        timeout: float | None = None,
    ) -> int:
        """As ``net.recv_into``."""
        seconds = self._timeout(timeout)
        if seconds is None:
            return self._sock.recv_into(buffer, nbytes, flags)
        return recv_into(self._sock, buffer, nbytes, flags, timeout=seconds, stop=self.stop)

    def recvfrom(
        self, bufsize: int, flags: int = 0, *, timeout: float | None = None
    ) -> tuple[bytes, Any]:
        """As ``net.recvfrom``."""
        seconds = self._timeout(timeout)
        if seconds is None:
            return self._sock.recvfrom(bufsize, flags)
        return recvfrom(self._sock, bufsize, flags, timeout=seconds, stop=self.stop)

    def recvfrom_into(
        self,
        buffer: WriteableBuffer,
        nbytes: int = 0,
        flags: int = 0,
        *,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """As ``net.recvfrom_into``."""
        seconds = self._timeout(timeout)
        if seconds is None:
            return self._sock.recvfrom_into(buffer, nbytes, flags)
        return recvfrom_into(self._sock, buffer, nbytes, flags, timeout=seconds, stop=self.stop)

    def send(self, data: ReadableBuffer, flags: int = 0, *, timeout: float | None = None) -> int:
        """As ``net.send``."""
        seconds = self._timeout(timeout)
        if seconds is None:
            return self._sock.send(data, flags)
        return send(self._sock, data, flags, timeout=seconds, stop=self.stop)

    def sendall(
        self, data: ReadableBuffer, flags: int = 0, *, timeout: float | None = None
    ) -> None:
        """As ``net.sendall``: ``SendallStopped``/``SendallDeadline`` carry ``bytes_sent``."""
        try:
            seconds = self._timeout(timeout)
        except Stopped as exc:
            raise SendallStopped(exc.reason, bytes_sent=0) from None
        if seconds is None:
            self._sock.sendall(data, flags)
            return
        sendall(self._sock, data, flags, timeout=seconds, stop=self.stop)

    def sendto(
        self, data: ReadableBuffer, address: Any, flags: int = 0, *, timeout: float | None = None
    ) -> int:
        """As ``net.sendto`` (``address`` before ``flags``)."""
        seconds = self._timeout(timeout)
        if seconds is None:
            return self._sock.sendto(data, flags, address)
        return sendto(self._sock, data, address, flags, timeout=seconds, stop=self.stop)

    def accept(self, *, timeout: float | None = None) -> tuple[Socket, Any]:
        """As ``net.accept``; the connection is wrapped, with this wrapper's stop."""
        seconds = self._timeout(timeout)
        if seconds is None:
            conn, address = self._sock.accept()
        else:
            conn, address = accept(self._sock, timeout=seconds, stop=self.stop)
        return Socket(conn, stop=self.stop), address

    def connect(self, address: Any, *, timeout: float | None = None) -> None:
        """Connect this socket to ``address``, bounded (a host name is resolved first).

        Unlike ``net.connect`` it tries one address: the first the lookup returns for
        the socket's family. Not for a TLS socket: connect the plain socket, then
        ``start_tls``.
        """
        if isinstance(self._sock, ssl.SSLSocket):
            raise TypeError("connect the plain socket first, then call start_tls()")
        seconds = self._budget(timeout)
        if seconds < 0:
            self._sock.connect(address)
            return
        sockaddr, call = _sockaddr(self._sock, address, seconds, self.stop, "connect")
        op = _connect_op(sockaddr)
        run(self._sock, op, POLLOUT, seconds, self.stop, "connect", flags_ok=False, call=call)

    def do_handshake(self, *, timeout: float | None = None) -> None:
        """Run the TLS handshake of a wrapped ``ssl.SSLSocket``, bounded."""
        if not isinstance(self._sock, ssl.SSLSocket):
            raise TypeError("do_handshake() needs a TLS socket (see start_tls)")
        seconds = self._budget(timeout)
        if seconds < 0:
            self._sock.do_handshake()
            return
        _handshake(self._sock, seconds, self.stop)

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        server_side: bool = False,
        timeout: float | None = None,
    ) -> Socket:
        """As ``net.start_tls``; returns the TLS connection, wrapped with the same stop.

        On a non-blocking socket called without ``timeout``, it only wraps: the
        handshake is left to ``do_handshake()``, as ``ssl`` requires for such sockets.
        """
        seconds = self._budget(timeout)
        tls = context.wrap_socket(
            self._sock,
            server_side=server_side,
            server_hostname=server_hostname,
            do_handshake_on_connect=False,
        )
        if seconds >= 0:  # else a non-blocking socket: its owner drives do_handshake()
            try:
                _handshake(tls, seconds, self.stop)
            except BaseException:
                tls.close()
                raise
        return Socket(tls, stop=self.stop)

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> IO[Any]:
        """A file object reading and writing through this wrapper, as ``socket.makefile``.

        Its reads and writes call this wrapper's ``recv_into``/``send`` without a
        ``timeout``, so run them inside a ``stoppable.scope`` (or give the socket a
        timeout). Closing the wrapper while a file is open closes the socket when the
        last file closes, as for a socket.
        """
        import io

        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        rawmode = ("r" if reading else "") + ("w" if writing else "")
        raw = socket.SocketIO(self, rawmode)  # type: ignore[arg-type]
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if "b" not in mode:
                raise ValueError("unbuffered streams must be binary")
            return cast(IO[Any], raw)
        buffer: Any
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if "b" in mode:
            return cast(IO[Any], buffer)
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]
        return text

    def _decref_socketios(self) -> None:
        self._sock._decref_socketios()  # type: ignore[attr-defined]

    def fileno(self) -> int:
        """The wrapped socket's file descriptor."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close the wrapped socket (deferred while ``makefile`` files are open)."""
        self._sock.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

"""The send and receive operations of ``net``, and their errors.

Each public function checks its arguments, makes its budget (``begin``) and runs one
operation on the raw socket: a ``recv``/``send``-family try passed ``MSG_DONTWAIT``
on a plain blocking socket (the hot path, inlined here), else ``_netio.run``.
``net.Socket``'s methods are these functions with the wrapper's stop and budget.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, Any, TypeVar

from . import _args, _compat, _resolve
from ._errors import DeadlineExceeded, Stopped
from ._limits import Limits, StopLike, begin
from ._netio import DONTWAIT, POLLIN, POLLOUT, Op, run
from ._netio import wait_ready as _wait_ready

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

    from ._netsocket import Socket

T = TypeVar("T")

# The hot path: a plain socket in blocking mode, where MSG_DONTWAIT makes each try
# non-blocking without touching the socket. Disabled where the flag does not exist.
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
    from ._netsocket import Socket  # the wrapper's module imports this one

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
        raw,
        lambda t, extra: _compat.socket_accept(t),
        POLLIN,
        seconds,
        stop,
        "accept",
        flags_ok=False,
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


# --- the public functions -----------------------------------------------------------


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

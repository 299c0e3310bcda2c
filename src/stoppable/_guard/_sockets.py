"""Sockets and TLS inside a guard: every blocking call of any code, bounded and stoppable.

The methods of ``socket.socket`` and ``ssl.SSLSocket`` that wait are replaced while a
guard is open anywhere (``_install``). Each asks first whether its own thread is
inside a guard; if not, it calls the original at once. If so, it runs the operation
through the socket engine (``_netio.run``): one try that cannot block, then a ``poll``
of the socket beside each ``StopEvent``'s wake-up descriptor, so a stop is noticed in
microseconds. The socket may have been made anywhere (a client's pool, before the
guard) and be in any timeout mode; its mode is left as it was (see ``_netio``).

Limits: the guard's deadline and stops (merged with every enclosing scope), and the
socket's own timeout, per call as in the standard library: the earlier wins. The
socket's own expiry raises what it raises today (``TimeoutError('timed out')``; the
TLS messages for TLS); the guard's raises ``DeadlineExceeded`` (also
``socket.timeout``), a stop ``Stopped``.

A connection interrupted by the guard is dead: its stream socket is shut down (not
closed: the descriptor stays the client's), so the next read sees end-of-file and the
next write ``BrokenPipeError``, and every client reconnects instead of reading the
previous request's late reply. One interrupted before it was made (``connect``, a TLS
handshake) is closed too: nobody can use it, and the standard library would leave it
to the garbage collector on ``Stopped``. A non-blocking socket (timeout ``0``) is used as it is.

A TLS socket is switched to non-blocking for the length of a guarded call (OpenSSL has
no per-call flag). So that a thread *not* in a guard, using the same socket at that
moment, sees no difference, its calls on a socket switched by a guarded call are run
by the same engine with the socket's own timeout and no stop; every non-blocking TLS
try is made under a per-socket lock (see ``_tls``).
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from .. import _compat, _netio, _resolve
from .._compat import bare_accept, sendfile_by_send
from .._errors import DeadlineExceeded, Stopped
from .._limits import Limits, _current_scope
from .._netio import DONTWAIT, POLLIN, POLLOUT, RetryLater
from ._install import Patch, wraps_all
from ._state import (
    FOREVER,
    OwnTimeout,
    Record,
    active,
    call_limits,
    called_from_stoppable,
    check,
    current_state,
    deadline_factory,
    note,
)

__all__ = ["patches"]

_C = _socket.socket
_Shadow = _netio._Guarded  # the engine's non-blocking stand-in for a timeout-mode socket
_switched = _netio._switched  # sockets switched to non-blocking by calls in progress
_SOCKET_SENDFILE = socket.socket.sendfile
_STREAM = int(socket.SOCK_STREAM)
_SHUT_RDWR = socket.SHUT_RDWR
_monotonic = __import__("time").monotonic
_PLAIN = socket.socket
_FAST = bool(DONTWAIT)  # MSG_DONTWAIT exists (Linux): the hot path needs no mode switch
_C_RECV = _C.recv
_C_RECV_INTO = _C.recv_into
_C_SEND = _C.send

Op = Callable[[Any, int], Any]


def _raw(target: Any) -> Any:
    """The object whose C methods to call: the socket, or the engine's shadow of it."""
    if target.__class__ is _Shadow:
        target.fileno  # noqa: B018 - raises EBADF if the socket was closed meanwhile
        return target._shadow
    return target


def _timed_out() -> BaseException:
    return TimeoutError("timed out")


def _tls_timed_out(what: str) -> Callable[[], BaseException]:
    return lambda: TimeoutError(f"The {what} operation timed out")


def _kill(sock: socket.socket) -> None:
    """Shut a stream connection down both ways: the client must never reuse it half-read."""
    if int(sock.type) != _STREAM:
        return
    with contextlib.suppress(OSError):  # not connected, or closed meanwhile
        _C.shutdown(sock, _SHUT_RDWR)  # not SSLSocket.shutdown, which drops its TLS state


def _own_timeout(sock: socket.socket) -> float | None:
    entry = _switched.get(id(sock))
    return entry[1] if entry is not None else sock.gettimeout()


def _run(
    sock: socket.socket,
    record: Record,
    op: Op,
    natural: int,
    operation: str,
    *,
    flags_ok: bool = True,
    kill: bool = True,
    close: bool = False,
    own: float | bool | None = False,
    own_error: Callable[[], BaseException] = _timed_out,
    address: Any = None,
    resolve: Callable[[Any], Op] | None = None,
) -> Any:
    """Run ``op`` on ``sock`` inside the guard; ``own=False``: the socket's own timeout."""
    state = current_state()
    try:
        check(record, state, operation)
        if own is False:
            own = _own_timeout(sock)
        if own == 0.0:
            if resolve is not None:
                op = resolve(address)
            return op(sock, 0)
        call = call_limits(own, operation)
        if resolve is not None:
            op = resolve(_sockaddr(sock, address, call))
        return _netio.run(
            sock,
            op,
            natural,
            0.0,
            None,
            operation,
            flags_ok=flags_ok,
            error=deadline_factory(call, state),
            call=call,
        )
    except OwnTimeout:
        raise own_error() from None
    except (Stopped, DeadlineExceeded) as exc:
        note(record, exc)
        if close:
            # A connection interrupted before it was made (connect, TLS handshake) is
            # useless to its owner, and the standard library closes its half-made
            # sockets only on OSError (socket.create_connection, SSLSocket's
            # handshake on wrap): closed here, it is not left to the garbage collector.
            _kill(sock)
            with contextlib.suppress(OSError):
                sock.close()
        elif kill:
            _kill(sock)
        raise


def _unguarded(
    sock: socket.socket,
    op: Op,
    natural: int,
    operation: str,
    *,
    flags_ok: bool = True,
    own_error: Callable[[], BaseException] = _timed_out,
) -> Any:
    """Run a call of an unguarded thread on a socket a guarded call made non-blocking.

    It runs as the socket's own mode would have it: its own timeout, no stop, no scope.
    """
    entry = _switched.get(id(sock))
    previous = sock.gettimeout() if entry is None else entry[1]
    if previous == 0.0 or called_from_stoppable(3):
        # Or stoppable's own call (net.accept, net.recvfrom...) that switched the socket
        # itself: it bounds and stops its own wait, and wants the non-blocking try.
        return op(sock, 0)
    call = Limits(0.0, None, operation)
    call.deadline = _monotonic() + (FOREVER if previous is None else previous)
    call.stops = ()
    call.from_scope = False
    call.timeout = FOREVER if previous is None else previous

    def error(message: str, *, timeout: float | None = None) -> DeadlineExceeded:
        raise OwnTimeout(operation)

    try:
        return _netio.run(
            sock, op, natural, 0.0, None, operation, flags_ok=flags_ok, error=error, call=call
        )
    except OwnTimeout:
        raise own_error() from None


def _sockaddr(sock: socket.socket, address: Any, call: Limits) -> Any:
    """``address`` with its host name resolved within the guard's limits."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return address
    host = address[0]
    if not isinstance(host, str | bytes) or host in ("", "<broadcast>", b"", b"<broadcast>"):
        return address
    if _resolve._numeric(host, address[1], sock.family, sock.type, 0, 0) is not None:
        return address
    infos = _resolve.lookup(call, host, address[1], sock.family, sock.type, sock.proto)
    return infos[0][4]


# --- the replacements for socket.socket ------------------------------------------------


def _fired() -> bool:
    """Whether the guard's stop is set or its deadline passed (the fast path's check)."""
    state = _current_scope.get()
    if state is None:  # pragma: no cover - a guard always sets a scope
        return False
    for stop in state.stops:
        if stop.is_set():
            return True
    deadline = state.deadline
    return deadline is not None and deadline <= _monotonic()


# The hot path inside a guard, for recv/recv_into/send/sendall: a plain socket in
# blocking mode, tried once with MSG_DONTWAIT before anything is allocated; the engine
# (``_run``) only when that try would block, or when the guard has fired (it raises).


def recv(self: socket.socket, bufsize: int, flags: int = 0) -> Any:
    record = active.get()
    if record is None:
        if _switched and id(self) in _switched:
            return _unguarded(self, _recv_op(bufsize, flags), POLLIN, "recv")
        return _C_RECV(self, bufsize, flags)
    if self.__class__ is _PLAIN and self.gettimeout() is None and _FAST and not _fired():
        try:
            return _C_RECV(self, bufsize, flags | DONTWAIT)
        except BlockingIOError:
            pass
    return _run(self, record, _recv_op(bufsize, flags), POLLIN, "recv")


def _recv_op(bufsize: int, flags: int) -> Op:
    return lambda t, x: _C_RECV(_raw(t), bufsize, flags | x)


def recv_into(self: socket.socket, buffer: Any, nbytes: int = 0, flags: int = 0) -> Any:
    record = active.get()
    if record is None:
        if _switched and id(self) in _switched:
            return _unguarded(self, _recv_into_op(buffer, nbytes, flags), POLLIN, "recv_into")
        return _C_RECV_INTO(self, buffer, nbytes, flags)
    if self.__class__ is _PLAIN and self.gettimeout() is None and _FAST and not _fired():
        try:
            return _C_RECV_INTO(self, buffer, nbytes, flags | DONTWAIT)
        except BlockingIOError:
            pass
    return _run(self, record, _recv_into_op(buffer, nbytes, flags), POLLIN, "recv_into")


def _recv_into_op(buffer: Any, nbytes: int, flags: int) -> Op:
    return lambda t, x: _C_RECV_INTO(_raw(t), buffer, nbytes, flags | x)


def recvfrom(self: socket.socket, bufsize: int, flags: int = 0) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _C.recvfrom(self, bufsize, flags)

    def op(t: Any, x: int) -> Any:
        return _C.recvfrom(_raw(t), bufsize, flags | x)

    if record is None:
        return _unguarded(self, op, POLLIN, "recvfrom")
    return _run(self, record, op, POLLIN, "recvfrom")


def recvfrom_into(self: socket.socket, buffer: Any, nbytes: int = 0, flags: int = 0) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _C.recvfrom_into(self, buffer, nbytes, flags)

    def op(t: Any, x: int) -> Any:
        return _C.recvfrom_into(_raw(t), buffer, nbytes, flags | x)

    if record is None:
        return _unguarded(self, op, POLLIN, "recvfrom_into")
    return _run(self, record, op, POLLIN, "recvfrom_into")


def recvmsg(self: socket.socket, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _C.recvmsg(self, bufsize, ancbufsize, flags)

    def op(t: Any, x: int) -> Any:
        return _C.recvmsg(_raw(t), bufsize, ancbufsize, flags | x)

    if record is None:
        return _unguarded(self, op, POLLIN, "recvmsg")
    return _run(self, record, op, POLLIN, "recvmsg")


def recvmsg_into(self: socket.socket, buffers: Any, ancbufsize: int = 0, flags: int = 0) -> Any:
    record = active.get()
    buffers = list(buffers)  # an iterator would be spent by the first try
    if record is None and not (_switched and id(self) in _switched):
        return _C.recvmsg_into(self, buffers, ancbufsize, flags)

    def op(t: Any, x: int) -> Any:
        return _C.recvmsg_into(_raw(t), buffers, ancbufsize, flags | x)

    if record is None:
        return _unguarded(self, op, POLLIN, "recvmsg_into")
    return _run(self, record, op, POLLIN, "recvmsg_into")


def send(self: socket.socket, data: Any, flags: int = 0) -> Any:
    record = active.get()
    if record is None:
        if _switched and id(self) in _switched:
            return _unguarded(self, _send_op(data, flags), POLLOUT, "send")
        return _C_SEND(self, data, flags)
    if self.__class__ is _PLAIN and self.gettimeout() is None and _FAST and not _fired():
        try:
            return _C_SEND(self, data, flags | DONTWAIT)
        except BlockingIOError:
            pass
    return _run(self, record, _send_op(data, flags), POLLOUT, "send")


def _send_op(data: Any, flags: int) -> Op:
    return lambda t, x: _C_SEND(_raw(t), data, flags | x)


class _SendAll:
    """``sendall`` as a resumable non-blocking operation (``sent`` is its progress)."""

    __slots__ = ("flags", "sent", "view")

    def __init__(self, view: memoryview, flags: int, sent: int = 0) -> None:
        self.view = view
        self.flags = flags
        self.sent = sent

    def __call__(self, target: Any, extra: int) -> None:
        raw, view, flags = _raw(target), self.view, self.flags | extra
        total = len(view)
        while self.sent < total:
            self.sent += _C_SEND(raw, view[self.sent :], flags)


def sendall(self: socket.socket, data: Any, flags: int = 0) -> None:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _C.sendall(self, data, flags)
    sent = 0
    if (
        record is not None
        and data.__class__ is bytes
        and self.__class__ is _PLAIN
        and self.gettimeout() is None
        and _FAST
        and not _fired()
    ):
        try:  # the common case, whole in one send: nothing allocated
            sent = _C_SEND(self, data, flags | DONTWAIT)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return None
    with memoryview(data) as view, view.cast("B") as flat:
        op = _SendAll(flat, flags, sent)
        if record is None:
            _unguarded(self, op, POLLOUT, "sendall")
        else:
            _run(self, record, op, POLLOUT, "sendall")
    return None


def sendto(self: socket.socket, data: Any, *args: Any) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _C.sendto(self, data, *args)
    if len(args) == 1:
        flags, address = 0, args[0]
    elif len(args) == 2:
        flags, address = args
    else:
        return _C.sendto(self, data, *args)  # the standard TypeError

    def resolved(sockaddr: Any) -> Op:
        return lambda t, x: _C.sendto(_raw(t), data, flags | x, sockaddr)

    if record is None:
        return _unguarded(self, resolved(address), POLLOUT, "sendto")
    return _run(
        self, record, resolved(address), POLLOUT, "sendto", address=address, resolve=resolved
    )


def sendmsg(
    self: socket.socket, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None
) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        if address is None:
            return _C.sendmsg(self, buffers, ancdata, flags)
        return _C.sendmsg(self, buffers, ancdata, flags, address)
    buffers, ancdata = list(buffers), list(ancdata)  # iterators would be spent by a try

    def op(t: Any, x: int) -> int:
        if address is None:
            return _C.sendmsg(_raw(t), buffers, ancdata, flags | x)
        return _C.sendmsg(_raw(t), buffers, ancdata, flags | x, address)

    if record is None:
        return _unguarded(self, op, POLLOUT, "sendmsg")
    return _run(self, record, op, POLLOUT, "sendmsg")


def _connect_op(sockaddr: Any, ex: bool) -> Op:
    """A non-blocking ``connect`` to ``sockaddr``, retried until it completes."""
    started = False

    def op(target: Any, extra: int) -> Any:
        nonlocal started
        raw = _raw(target)
        if started:
            err = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not err:
                try:
                    raw.getpeername()
                except OSError as exc:
                    if exc.errno != errno.ENOTCONN:
                        raise
                    raise BlockingIOError(errno.EINPROGRESS, "connecting") from None
                return 0
        else:
            err = _C.connect_ex(raw, sockaddr)
            if err in (0, errno.EISCONN) and not started:
                return 0
            if err in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                started = True
                raise BlockingIOError(err, os.strerror(err))
            if err == errno.EAGAIN and raw.family == socket.AF_UNIX:
                raise RetryLater(err, os.strerror(err))  # a full backlog: try again later
        if ex:
            return err
        raise OSError(err, os.strerror(err))

    return op


def connect(self: socket.socket, address: Any) -> None:
    record = active.get()
    if record is None:
        if _switched and id(self) in _switched:
            _unguarded(self, _connect_op(address, False), POLLOUT, "connect", flags_ok=False)
            return
        _C.connect(self, address)
        return
    _run(
        self,
        record,
        _connect_op(address, False),
        POLLOUT,
        "connect",
        flags_ok=False,
        close=True,
        address=address,
        resolve=lambda sockaddr: _connect_op(sockaddr, False),
    )


def connect_ex(self: socket.socket, address: Any) -> Any:
    record = active.get()
    if record is None:
        if _switched and id(self) in _switched:
            try:
                return _unguarded(
                    self, _connect_op(address, True), POLLOUT, "connect_ex", flags_ok=False
                )
            except TimeoutError:
                return errno.EAGAIN  # as connect_ex reports its own timeout
        return _C.connect_ex(self, address)
    try:
        return _run(
            self,
            record,
            _connect_op(address, True),
            POLLOUT,
            "connect_ex",
            flags_ok=False,
            close=True,
            address=address,
            resolve=lambda sockaddr: _connect_op(sockaddr, True),
        )
    except DeadlineExceeded:
        raise
    except TimeoutError:
        return errno.EAGAIN


def _accept(self: socket.socket) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return bare_accept(self)

    def op(t: Any, x: int) -> Any:
        return bare_accept(_raw(t))

    if record is None:
        return _unguarded(self, op, POLLIN, "accept", flags_ok=False)
    # A listening socket is not a connection: an interrupted accept leaves it usable.
    return _run(self, record, op, POLLIN, "accept", flags_ok=False, kill=False)


def sendfile(self: socket.socket, file: Any, offset: int = 0, count: int | None = None) -> Any:
    # os.sendfile() blocks in the kernel with no way to wake it: inside a guard, send
    # the file through send(), which the guard bounds (the standard library's own
    # fallback for sockets that cannot use sendfile).
    if active.get() is None:
        return _SOCKET_SENDFILE(self, file, offset, count)
    return sendfile_by_send(self, file, offset, count)


def patches() -> tuple[list[Patch], list[Patch]]:
    """Socket methods: installed while a guard is open (they are the hot path).

    ``ssl.SSLSocket``'s are in ``_tls``.
    """
    plain = socket.socket
    while_open = [
        Patch(plain, "recv", recv),
        Patch(plain, "recv_into", recv_into),
        Patch(plain, "recvfrom", recvfrom),
        Patch(plain, "recvfrom_into", recvfrom_into),
        Patch(plain, "send", send),
        Patch(plain, "sendall", sendall),
        Patch(plain, "sendto", sendto),
        Patch(plain, "connect", connect),
        Patch(plain, "connect_ex", connect_ex),
        Patch(plain, "sendfile", sendfile),
    ]
    if _compat.SOCKET_ACCEPT_HOOK:  # otherwise accept() is left as it is: not reached by a guard
        while_open.append(Patch(plain, "_accept", _accept))
    if hasattr(_C, "recvmsg"):
        while_open += [
            Patch(plain, "recvmsg", recvmsg),
            Patch(plain, "recvmsg_into", recvmsg_into),
            Patch(plain, "sendmsg", sendmsg),
        ]
    return wraps_all(while_open), []

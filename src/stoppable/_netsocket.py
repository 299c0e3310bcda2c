"""``net.Socket``: a socket-like wrapper whose blocking methods are ``net``'s functions.

Each method takes its budget (``_timeout``: the given ``timeout``, the socket's own,
or the enclosing scope's) and calls the module function with the wrapper's stop, so
the API (argument checks, budget, errors) is implemented once, in ``_netops`` and
``_netconnect``. ``makefile`` gives third-party code a file reading through it.
"""

from __future__ import annotations

import socket
import ssl
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, cast

from . import _compat
from ._errors import Stopped
from ._limits import StopLike, _current_scope, begin, validate_stop
from ._netconnect import _check_tls, _connect_op, _handshake, _wrap_tls, start_tls
from ._netio import POLLOUT, run
from ._netops import (
    SendallStopped,
    _raw,
    _sockaddr,
    accept,
    recv,
    recv_into,
    recvfrom,
    recvfrom_into,
    send,
    sendall,
    sendto,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

_monotonic = time.monotonic

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
        seconds = self._timeout(timeout)
        if seconds is None:  # a non-blocking socket: its owner drives do_handshake()
            _check_tls(context, server_hostname, server_side)
            tls = _wrap_tls(self._sock, context, server_hostname, server_side)
        else:
            tls = start_tls(
                self._sock,
                context,
                timeout=seconds,
                stop=self.stop,
                server_hostname=server_hostname,
                server_side=server_side,
            )
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
        raw = _compat.socket_file(self, self._sock, rawmode)
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
        # Called by the file's close (socket.SocketIO's protocol).
        _compat.socket_file_closed(self._sock)

    def fileno(self) -> int:
        """The wrapped socket's file descriptor."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close the wrapped socket (deferred while ``makefile`` files are open)."""
        _compat.close_socket(self._sock)

    def __enter__(self) -> Socket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

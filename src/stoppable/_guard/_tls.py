"""TLS inside a guard: ``ssl.SSLSocket``'s own blocking methods.

``SSLSocket.recv``/``recv_into`` read through ``read``, ``sendall`` sends through
``send``, ``connect``/``accept`` use ``socket.socket``'s (``_sockets``), and the
handshake made by ``wrap_socket`` calls ``do_handshake``: replacing ``read``,
``write``, ``send``, ``do_handshake`` and ``unwrap`` reaches every TLS wait. Each runs
through the socket engine as in ``_sockets``; the socket is non-blocking for the
length of a guarded call, so every non-blocking try on it (the guard's, and an
unguarded thread's on the same socket meanwhile) is made under a per-socket lock.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from .._netio import POLLIN, POLLOUT
from ._install import Patch, wraps_all
from ._sockets import _own_timeout, _run, _switched, _tls_timed_out, _unguarded
from ._state import active

__all__ = ["patches"]

_SSL = ssl.SSLSocket
_SSL_READ = ssl.SSLSocket.read
_SSL_WRITE = ssl.SSLSocket.write
_SSL_SEND = ssl.SSLSocket.send
_SSL_HANDSHAKE = ssl.SSLSocket.do_handshake
_SSL_UNWRAP = ssl.SSLSocket.unwrap


def _tls_lock(sock: ssl.SSLSocket) -> threading.Lock:
    """The lock that keeps two non-blocking TLS calls on ``sock`` from overlapping.

    OpenSSL keeps one "what is it waiting for" state per connection: a non-blocking
    read in one thread and a write in another can each read the other's state and
    take a write's ``WANT_WRITE`` for an end of file (a read returning ``b""`` while the
    peer is still sending). The guard's calls, and the calls of unguarded threads on a
    socket it switched, make each non-blocking try under this lock (a try never
    waits, so neither holds it for long).
    """
    lock = sock.__dict__.get("_stoppable_tls_lock")
    if lock is None:
        lock = sock.__dict__.setdefault("_stoppable_tls_lock", threading.Lock())
    return lock  # type: ignore[no-any-return]


def tls_read(self: ssl.SSLSocket, len: int = 1024, buffer: Any = None) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _SSL_READ(self, len, buffer)

    def op(t: Any, x: int) -> Any:
        with _tls_lock(t):
            return _SSL_READ(t, len, buffer)

    if record is None:
        return _unguarded(self, op, POLLIN, "read", own_error=_tls_timed_out("read"))
    return _run(self, record, op, POLLIN, "TLS read", own_error=_tls_timed_out("read"))


def tls_write(self: ssl.SSLSocket, data: Any) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _SSL_WRITE(self, data)

    def op(t: Any, x: int) -> int:
        with _tls_lock(t):
            return _SSL_WRITE(t, data)

    if record is None:
        return _unguarded(self, op, POLLOUT, "write", own_error=_tls_timed_out("write"))
    return _run(self, record, op, POLLOUT, "TLS write", own_error=_tls_timed_out("write"))


def tls_send(self: ssl.SSLSocket, data: Any, flags: int = 0) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _SSL_SEND(self, data, flags)

    def op(t: Any, x: int) -> int:
        with _tls_lock(t):
            return _SSL_SEND(t, data, flags)

    if record is None:
        return _unguarded(self, op, POLLOUT, "send", own_error=_tls_timed_out("write"))
    return _run(self, record, op, POLLOUT, "TLS send", own_error=_tls_timed_out("write"))


def tls_do_handshake(self: ssl.SSLSocket, block: bool = False) -> None:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        _SSL_HANDSHAKE(self, block)
        return

    def op(t: Any, x: int) -> None:
        with _tls_lock(t):
            _SSL_HANDSHAKE(t)

    if record is None:
        _unguarded(
            self, op, POLLIN, "handshake", flags_ok=False, own_error=_tls_timed_out("handshake")
        )
        return
    own = _own_timeout(self)
    if own == 0.0 and block:
        own = None  # do_handshake(block=True) blocks even on a non-blocking socket
    _run(
        self,
        record,
        op,
        POLLIN,
        "TLS handshake",
        flags_ok=False,
        close=True,
        own=own,
        own_error=_tls_timed_out("handshake"),
    )


def tls_unwrap(self: ssl.SSLSocket) -> Any:
    record = active.get()
    if record is None and not (_switched and id(self) in _switched):
        return _SSL_UNWRAP(self)

    def op(t: Any, x: int) -> socket.socket:
        with _tls_lock(t):
            return _SSL_UNWRAP(t)

    if record is None:
        return _unguarded(self, op, POLLIN, "unwrap", flags_ok=False)
    return _run(self, record, op, POLLIN, "TLS unwrap", flags_ok=False)


def patches() -> tuple[list[Patch], list[Patch]]:
    """TLS methods: installed while a guard is open, as the socket methods are."""
    while_open = [
        Patch(_SSL, "read", tls_read),
        Patch(_SSL, "write", tls_write),
        Patch(_SSL, "send", tls_send),
        Patch(_SSL, "do_handshake", tls_do_handshake),
        Patch(_SSL, "unwrap", tls_unwrap),
    ]
    return wraps_all(while_open), []

"""The internals of sockets and selectors, for ``_netio``, ``net`` and the guard.

A bare ``_socket.socket`` on a borrowed descriptor, ``accept``'s ``_accept`` hook,
``sendfile``'s send loop, a selector's map and poll object, ``socket._accept``, and
``SocketIO`` with a socket's count of open files (table in ``_compat``).
"""

from __future__ import annotations

import _socket
import io
import os
import selectors
import socket
import sys
import threading
import weakref
from typing import Any

from ._probe import _check

# --- _socket.socket: a second socket object on a borrowed descriptor ---------------------


def _probe_bare_socket() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(1.0)
        bare = _socket.socket(a.family, a.type, a.proto, a.fileno())
        try:
            bare.settimeout(0.0)
            assert bare.send(b"x") == 1
            assert b.recv(1) == b"x"
            assert a.gettimeout() is None  # the borrowed socket's own mode is untouched
        finally:
            assert bare.detach() == a.fileno()
        os.fstat(a.fileno())  # still open: detach() gave the descriptor back


BARE_SOCKET: bool = _check(_probe_bare_socket)
"""``_socket.socket(family, type, proto, fd)`` borrows ``fd``, and ``detach()`` returns it."""


def bare_socket(family: int, type: int, proto: int, fd: int) -> Any:
    """A socket object on ``fd`` without ``socket.socket``'s Python layer; ``detach()`` it.

    The public ``socket.socket`` on the same descriptor where ``_socket`` is not as
    relied on (slower to make, same behaviour).
    """
    if BARE_SOCKET:
        return _socket.socket(family, type, proto, fd)
    return socket.socket(family, type, proto, fd)  # pragma: no cover - forced by the tests


# --- socket.socket: accept's hook, sendfile's send loop (_guard._sockets) -----------------


def _probe_accept_hook() -> None:
    calls: list[object] = []

    class Recording(socket.socket):
        def _accept(self) -> Any:
            calls.append(self)
            return bare_accept(self)

    # An abstract Unix address where there is one (Linux): ten times cheaper than TCP.
    family = socket.AF_UNIX if sys.platform == "linux" else socket.AF_INET
    with Recording(family, socket.SOCK_STREAM) as listener:
        listener.bind("" if family == socket.AF_UNIX else ("127.0.0.1", 0))
        listener.listen(1)
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.settimeout(1.0)
            client.connect(listener.getsockname())
            listener.settimeout(1.0)
            conn, address = listener.accept()
            with conn:
                assert calls == [listener]  # accept() went through the hook
                assert type(conn) is socket.socket  # not Recording: made from the fd
                assert address == client.getsockname()
                assert conn.gettimeout() is None  # as accept() leaves it by default
                conn.settimeout(1.0)
                client.sendall(b"x")
                assert conn.recv(1) == b"x"


def bare_accept(sock: Any) -> tuple[int, Any]:
    """Accept one connection on ``sock`` (a socket or a bare shadow): ``(fd, address)``.

    What ``socket.socket.accept`` wraps into a socket object. Only where
    ``SOCKET_ACCEPT_HOOK``; without it the guard leaves ``accept`` as it is.
    """
    accepted: tuple[int, Any] = _socket.socket._accept(sock)  # type: ignore[attr-defined]
    return accepted


SOCKET_ACCEPT_HOOK: bool = _check(_probe_accept_hook)
"""``socket.accept()`` calls ``self._accept()``, ``_socket.socket``'s ``(fd, address)``."""


def _probe_sendfile_use_send() -> None:
    sent: list[bytes] = []

    class Recording(socket.socket):
        def send(self, data: Any, flags: int = 0) -> int:
            sent.append(bytes(data))
            return super().send(data, flags)

    a, b = socket.socketpair()
    with Recording(a.family, a.type, a.proto, a.detach()) as sender, b:
        sender.settimeout(1.0)
        b.settimeout(1.0)
        file = io.BytesIO(b"abcdef")
        assert sender._sendfile_use_send(file, 1, 3) == 3  # type: ignore[attr-defined]
        assert sent == [b"bcd"]  # through send(), which the guard bounds
        assert file.tell() == 4
        assert b.recv(8) == b"bcd"


SENDFILE_USE_SEND: bool = _check(_probe_sendfile_use_send)
"""``socket._sendfile_use_send`` sends a file through ``self.send()``, as relied on."""

_SENDFILE_BLOCK = 8192


def sendfile_by_send(
    sock: socket.socket, file: Any, offset: int = 0, count: int | None = None
) -> int:
    """``sock.sendfile(file, offset, count)`` through ``sock.send()``, never ``os.sendfile``.

    The standard library's own loop where ``SENDFILE_USE_SEND``; otherwise the same
    through public calls: the same checks, ``send()`` in blocks, and the file's
    position left after the last byte sent, even when a send raises.
    """
    if SENDFILE_USE_SEND:
        total: int = sock._sendfile_use_send(file, offset, count)  # type: ignore[attr-defined]
        return total
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type & socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if sock.gettimeout() == 0:
        raise ValueError("non-blocking sockets are not supported")
    if offset:
        file.seek(offset)
    total = 0
    try:
        while count is None or total < count:
            size = _SENDFILE_BLOCK if count is None else min(_SENDFILE_BLOCK, count - total)
            data = memoryview(file.read(size))
            if not data:
                break
            while data:
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    continue
                total += sent
                data = data[sent:]
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset + total)


# --- selectors: a selector's own poll object (_guard._select) ------------------------------

_POLL_SELECTORS = tuple(
    cls
    for cls in (
        getattr(selectors, name, None)
        for name in ("PollSelector", "EpollSelector", "DevpollSelector")
    )
    if cls is not None
)


def _probe_selector_map() -> None:
    a, b = socket.socketpair()
    with a, b:
        for cls in _POLL_SELECTORS:
            with cls() as selector:
                key = selector.register(a, selectors.EVENT_READ)  # a file object
                assert selector._fd_to_key == {a.fileno(): key}
                selector.unregister(a)
                assert selector._fd_to_key == {}


SELECTOR_MAP: bool = bool(_POLL_SELECTORS) and _check(_probe_selector_map)
"""A selector's ``_fd_to_key`` is the dict of its registered descriptors."""


def selector_watches(selector: selectors.BaseSelector, fd: int) -> bool:
    """Whether ``selector``'s owner registered ``fd`` (under any file object)."""
    if SELECTOR_MAP:
        fd_to_key = getattr(selector, "_fd_to_key", None)
        if isinstance(fd_to_key, dict):
            return fd in fd_to_key
    return any(key.fd == fd for key in selector.get_map().values())


def _poller_of(selector: Any) -> tuple[Any, int] | None:
    inner = getattr(selector, "_selector", None)
    read = getattr(type(selector), "_EVENT_READ", None)
    if not callable(getattr(inner, "register", None)) or not isinstance(read, int):
        return None
    return inner, read


def _probe_selector_poll() -> None:
    r, w = os.pipe()
    r2, w2 = os.pipe()
    try:
        for cls in _POLL_SELECTORS:
            with cls() as selector:
                selector.register(r, selectors.EVENT_READ)
                found = _poller_of(selector)
                assert found is not None
                inner, read = found
                inner.register(r2, read)
                os.write(w2, b"x")
                assert selector.select(0) == []  # a descriptor without a key is left out
                os.read(r2, 1)
                os.write(w, b"x")
                assert [key.fd for key, _ in selector.select(0)] == [r]
                inner.unregister(r2)
                os.read(r, 1)
    finally:
        for fd in (r, w, r2, w2):
            os.close(fd)


SELECTOR_POLL: bool = bool(_POLL_SELECTORS) and _check(_probe_selector_poll)
"""A poll-like selector waits in ``_selector`` for ``_EVENT_READ``, leaving out fds it lacks."""


def selector_poller(selector: selectors.BaseSelector) -> tuple[Any, int] | None:
    """``selector``'s own poll object and its read mask; ``None`` where not as relied on.

    A descriptor registered in that object directly (it has no key) wakes the
    selector's ``select()``, which leaves it out of what it returns.
    """
    return _poller_of(selector) if SELECTOR_POLL else None


# --- socket.socket._accept: the accepted descriptor, with no socket object made ------------


def _probe_accept() -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener, client:
        listener.bind("")  # an address of its own in the abstract namespace (Linux)
        listener.listen(1)
        listener.setblocking(False)
        client.connect(listener.getsockname())
        fd, _address = listener._accept()  # type: ignore[attr-defined]
        try:
            assert isinstance(fd, int)
            client.sendall(b"x")
            assert os.read(fd, 1) == b"x"  # the descriptor of the accepted connection
        finally:
            os.close(fd)


SOCKET_ACCEPT: bool = _check(_probe_accept)
"""``socket._accept()`` returns ``(fd, address)`` of the accepted connection."""


def socket_accept(sock: socket.socket) -> tuple[int, Any]:
    """Accept a connection on ``sock`` (which must not block): its descriptor and address.

    ``socket._accept`` makes no socket object for the connection, which
    ``net.accept`` builds itself; the fallback takes the public ``accept`` of the
    plain socket class (on a TLS listener too: no handshake) and detaches its socket.
    """
    if SOCKET_ACCEPT:
        accepted: tuple[int, Any] = sock._accept()  # type: ignore[attr-defined]
        return accepted
    conn, address = socket.socket.accept(sock)  # pragma: no cover - forced by the tests
    return conn.detach(), address  # pragma: no cover - forced by the tests


# --- socket.SocketIO and a socket's count of open files (makefile) ------------------------


class _Relay:
    """The socket-like owner ``SocketIO`` reads through, as ``net.Socket`` is, for the probe."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv_into(self, buffer: Any) -> int:
        return self.sock.recv_into(buffer)

    def send(self, data: Any) -> int:
        return self.sock.send(data)

    def _decref_socketios(self) -> None:
        self.sock._decref_socketios()  # type: ignore[attr-defined]


def _probe_socket_file() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(1.0)
        try:
            a._io_refs += 1  # type: ignore[attr-defined]
            file = socket.SocketIO(_Relay(a), "rwb")  # type: ignore[arg-type]
            b.sendall(b"x")
            buffer = bytearray(1)
            assert file.readinto(buffer) == 1
            assert buffer == b"x"
            assert file.write(b"y") == 1
            assert b.recv(1) == b"y"
            fd = a.fileno()
            a.close()  # a file is open: the descriptor stays open
            assert a.fileno() == fd
            os.fstat(fd)
            file.close()  # the last file: the close happens now
            assert a.fileno() == -1
        finally:
            left = a.detach()  # however the internal behaved, the descriptor is closed
            if left != -1:
                os.close(left)


SOCKET_FILE: bool = _check(_probe_socket_file)
"""``SocketIO`` reads and writes through its owner and, closed, calls the owner's
``_decref_socketios()``; ``socket._io_refs`` defers ``close()`` until the last file closes."""


class _SocketFile(io.RawIOBase):
    """``socket.SocketIO``'s work, where it is not as relied on: I/O through ``owner``."""

    def __init__(self, owner: Any, sock: socket.socket, mode: str) -> None:
        super().__init__()
        self._owner, self._sock = owner, sock
        self._reading, self._writing = "r" in mode, "w" in mode
        self._timed_out = False

    def readinto(self, buffer: Any) -> int | None:
        self._checkClosed()
        if not self._reading:
            raise io.UnsupportedOperation("not readable")
        if self._timed_out:  # as SocketIO: what the buffer holds is no longer known
            raise OSError("cannot read from timed out object")
        try:
            count: int = self._owner.recv_into(buffer)
        except BlockingIOError:
            return None
        except TimeoutError:
            self._timed_out = True
            raise
        return count

    def write(self, data: Any) -> int | None:
        self._checkClosed()
        if not self._writing:
            raise io.UnsupportedOperation("not writable")
        try:
            count: int = self._owner.send(data)
        except BlockingIOError:
            return None
        return count

    def readable(self) -> bool:
        self._checkClosed()
        return self._reading

    def writable(self) -> bool:
        self._checkClosed()
        return self._writing

    def fileno(self) -> int:
        self._checkClosed()
        return self._sock.fileno()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        socket_file_closed(self._sock)


# The fallback's count: the open files of each socket, and the sockets closed meanwhile.
_open_files: weakref.WeakKeyDictionary[socket.socket, int] = weakref.WeakKeyDictionary()
_close_when_done: weakref.WeakSet[socket.socket] = weakref.WeakSet()
_files_lock = threading.Lock()


def socket_file(owner: Any, sock: socket.socket, mode: str) -> io.RawIOBase:
    """A raw file reading and writing through ``owner`` (a wrapper of ``sock``).

    Counted as ``socket.makefile`` counts its files: ``close_socket(sock)`` is
    deferred until the last is closed. Closing it calls ``owner._decref_socketios()``
    (``SocketIO``'s protocol), which must call ``socket_file_closed(sock)``.
    """
    if SOCKET_FILE:
        sock._io_refs += 1  # type: ignore[attr-defined]
        return socket.SocketIO(owner, mode)  # type: ignore[arg-type]
    with _files_lock:  # pragma: no cover - forced by the tests
        _open_files[sock] = _open_files.get(sock, 0) + 1
    return _SocketFile(owner, sock, mode)  # pragma: no cover - forced by the tests


def socket_file_closed(sock: socket.socket) -> None:
    """One file of ``sock`` was closed: close ``sock`` now if a close waited for it."""
    if SOCKET_FILE:
        sock._decref_socketios()  # type: ignore[attr-defined]
        return
    with _files_lock:  # pragma: no cover - forced by the tests
        left = _open_files.get(sock, 1) - 1
        if left > 0:
            _open_files[sock] = left
            return
        _open_files.pop(sock, None)
        closing = sock in _close_when_done
        _close_when_done.discard(sock)
    if closing:  # pragma: no cover - forced by the tests
        sock.close()


def close_socket(sock: socket.socket) -> None:
    """Close ``sock``, or, while files made by ``socket_file`` are open, when the last closes."""
    if not SOCKET_FILE:  # pragma: no cover - forced by the tests
        with _files_lock:
            if _open_files.get(sock, 0) > 0:
                _close_when_done.add(sock)
                return
    sock.close()

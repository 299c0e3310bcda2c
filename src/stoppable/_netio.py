"""The socket layer's engine: one operation, tried without blocking, waited for by ``poll``.

Every operation (``recv_into``, ``send``, ``accept``, ``connect``, a TLS handshake...)
is an ``op(target, extra_flags)`` that must not block: it returns a result or raises
``BlockingIOError`` / ``ssl.SSLWantReadError`` / ``ssl.SSLWantWriteError``. ``run``
tries it once (the fast path: data already there costs no clock read, no ``poll``),
then waits in ``wait_loop`` on a ``poll`` of the socket and each ``StopEvent``'s
wake-up descriptor, retrying whenever the socket is ready.

The socket may be anyone's, in any timeout mode, and shared with other threads, so
its mode is left alone wherever that is possible:

- blocking (``gettimeout() is None``), plain: the fd is blocking, so each try passes
  ``MSG_DONTWAIT`` (the socket's mode never changes: a thread writing to it at the
  same time with a plain ``sendall`` is unaffected).
- timeout mode (``> 0``), plain: the fd is already non-blocking but the socket object
  would ``poll`` for its own timeout before each call, so each try goes through a
  *shadow*: a bare ``_socket.socket`` on the same fd with timeout ``0``, detached
  (never closed) when the call ends.
- TLS, or ``accept``/``connect`` on a blocking socket (no per-call flag exists): the
  socket is switched to non-blocking for the length of the call and restored after.
  Overlapping calls on one socket share the switch (a use count per socket), so the
  first switches, the last restores, and none sees a half-restored mode.
- non-blocking (``0``): used as it is.

A try that fails with ``EAGAIN`` consumed nothing, so a wait that ends by a stop or a
deadline has read no data. TLS needs no separate ``pending()`` check: a try always
comes before a wait, and OpenSSL returns buffered data from it at once.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import math
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from . import _compat, _limits
from ._errors import DeadlineExceeded
from ._limits import Limits
from ._wait import NOT_YET, WAKE_BY_FD, NotYet, StopFds, wait_loop

__all__ = [
    "DONTWAIT",
    "POLLIN",
    "POLLOUT",
    "RetryLater",
    "Waiter",
    "hold_nonblocking",
    "release_nonblocking",
    "run",
    "wait_ready",
]

T = TypeVar("T")

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
# Plain ints: ``flags | socket.MSG_DONTWAIT`` would go through ``enum.IntFlag.__or__``,
# which costs more than the rest of a call's overhead.
DONTWAIT: int = int(getattr(socket, "MSG_DONTWAIT", 0))
_SOCK_NONBLOCK: int = int(getattr(socket, "SOCK_NONBLOCK", 0))
_MAX_POLL_MS = 86_400_000  # poll() takes an int; a day per wait is plenty, the loop goes on

_SSLSocket = ssl.SSLSocket
_WantRead = ssl.SSLWantReadError
_WantWrite = ssl.SSLWantWriteError

Op = Callable[[Any, int], T]


class RetryLater(BlockingIOError):
    """The operation cannot even start yet: retry it after a slice.

    (``connect`` on a Unix socket whose listener has a full backlog: there is nothing
    to ``poll`` for.)
    """


class Waiter:
    """A ``poll`` on one socket for ``want`` plus the call's stop wake-up descriptors.

    ``want == 0`` waits for the stops only, for at most one poll interval (for
    ``RetryLater``). The stops' descriptors are in the ``poll`` only while
    ``wait_ready`` waits (``hold``/``release``): a waiter kept between waits, as an
    HTTP body read keeps one, holds no descriptor of its stops meanwhile.
    """

    __slots__ = ("_fd", "_held", "_poll", "_registered", "want")

    def __init__(self, call: Limits, fd: int, want: int) -> None:
        self._poll = poll = select.poll()
        poll.register(fd, want)
        self._held = StopFds(call)
        self._fd = fd
        self._registered = self.want = want

    def hold(self) -> None:
        """Take the stops' wake-up descriptors and poll them too, until ``release()``."""
        for stop_fd in self._held.__enter__():
            self._poll.register(stop_fd, POLLIN)

    def release(self) -> None:
        """Give the stops' descriptors back (each closes unless in use elsewhere)."""
        try:
            for stop_fd in self._held.fds:
                with contextlib.suppress(KeyError):  # the same stop twice
                    self._poll.unregister(stop_fd)
        finally:
            self._held.__exit__(None, None, None)

    def wait(self, seconds: float) -> bool:
        """Block at most ``seconds`` for the socket (or a stop); whether the socket is ready."""
        want = self.want
        if want != self._registered:
            self._poll.modify(self._fd, want)
            self._registered = want
        if not want:
            seconds = min(seconds, _limits.get_poll_interval())
        # Rounded up: a remainder below 1 ms must still block, not spin.
        timeout_ms = min(math.ceil(seconds * 1000), _MAX_POLL_MS)
        ready = any(fd == self._fd for fd, _ in self._poll.poll(timeout_ms))
        return ready or not want


def wait_ready(
    call: Limits,
    sock: socket.socket,
    target: Any,
    extra: int,
    op: Op[T],
    natural: int,
    error: Callable[..., DeadlineExceeded],
    want: int | None = None,
    waiter: Waiter | None = None,
) -> T:
    """Retry ``op`` each time ``sock`` is ready, until it completes; the first try failed.

    ``natural`` is what the operation waits for (``POLLIN`` to read, ``POLLOUT`` to
    write or connect); ``want``, if the first try said otherwise (TLS, ``RetryLater``).
    ``waiter``: one made earlier for this socket and ``call``, to reuse (a caller that
    waits many times under one set of limits, such as an HTTP body read, keeps one).
    """
    if waiter is None:
        waiter = Waiter(call, sock.fileno(), natural if want is None else want)
    elif want is not None:
        waiter.want = want

    def attempt(seconds: float) -> T | NotYet:
        if seconds > 0 and not waiter.wait(seconds):
            return NOT_YET
        try:
            return op(target, extra)
        except BlockingIOError as exc:
            waiter.want = 0 if exc.__class__ is RetryLater else natural
        except _WantRead:
            waiter.want = POLLIN
        except _WantWrite:
            waiter.want = POLLOUT
        return NOT_YET

    waiter.hold()
    try:
        return wait_loop(call, attempt, wake=WAKE_BY_FD, error=error)
    finally:
        waiter.release()


def run(
    sock: socket.socket,
    op: Op[T],
    natural: int,
    seconds: float,
    stop: object,
    operation: str,
    *,
    flags_ok: bool = True,
    error: Callable[..., DeadlineExceeded] = DeadlineExceeded,
    call: Limits | None = None,
) -> T:
    """Run ``op`` on ``sock`` within ``seconds`` (merged with the scopes) and ``stop``.

    ``natural`` is what the socket must be ready for when ``op`` would block
    (``POLLIN``/``POLLOUT``; a TLS socket may ask for the other). ``flags_ok`` says
    whether ``op`` passes its ``extra`` flags to a call that accepts ``MSG_DONTWAIT``
    (``recv``/``send`` families do; ``accept``/``connect``/handshakes do not). With
    ``call``, its limits are used (a lookup already started the clock) instead of
    ``seconds``, ``stop`` and ``operation``.
    """
    mode = sock.gettimeout()
    if not isinstance(sock, _SSLSocket):
        if mode is None and flags_ok and DONTWAIT:
            return _try_then_wait(
                sock, sock, DONTWAIT, op, natural, seconds, stop, operation, error, call
            )
        if mode:  # a timeout: the fd is non-blocking already
            shadow = _shadow(sock)
            try:
                guarded = _Guarded(sock, shadow)
                return _try_then_wait(
                    sock, guarded, 0, op, natural, seconds, stop, operation, error, call
                )
            finally:
                shadow.detach()
    hold_nonblocking(sock)
    try:
        return _try_then_wait(sock, sock, 0, op, natural, seconds, stop, operation, error, call)
    finally:
        release_nonblocking(sock)


def _try_then_wait(
    sock: socket.socket,
    target: Any,
    extra: int,
    op: Op[T],
    natural: int,
    seconds: float,
    stop: object,
    operation: str,
    error: Callable[..., DeadlineExceeded],
    call: Limits | None,
) -> T:
    try:
        return op(target, extra)
    except BlockingIOError as exc:
        want = 0 if exc.__class__ is RetryLater else natural
    except _WantRead:
        want = POLLIN
    except _WantWrite:
        want = POLLOUT
    if call is None:
        call = Limits(seconds, stop, operation)
    return wait_ready(call, sock, target, extra, op, natural, error, want)


def _shadow(sock: socket.socket) -> _socket.socket:
    """A bare socket object on ``sock``'s fd, timeout 0; ``detach()`` it, never close it."""
    fd = sock.fileno()
    if fd < 0:
        raise OSError(errno.EBADF, "Bad file descriptor (the socket is closed)")
    shadow: _socket.socket = _compat.bare_socket(
        sock.family, sock.type | _SOCK_NONBLOCK, sock.proto, fd
    )
    if not _SOCK_NONBLOCK and shadow.gettimeout() != 0.0:  # pragma: no cover - not Linux
        shadow.settimeout(0.0)  # the fd is non-blocking already: this changes nothing shared
    return shadow


class _Guarded:
    """The shadow, refusing to act once ``sock`` was closed (its fd may be reused)."""

    __slots__ = ("_fd", "_shadow", "_sock")

    def __init__(self, sock: socket.socket, shadow: _socket.socket) -> None:
        self._sock = sock
        self._shadow = shadow
        self._fd = shadow.fileno()

    def __getattr__(self, name: str) -> Any:
        if self._sock.fileno() != self._fd:
            raise OSError(errno.EBADF, "the socket was closed during the call")
        return getattr(self._shadow, name)


# Sockets switched to non-blocking by calls in progress: id -> [calls, previous timeout].
# An entry lives only while a call holds the socket, so the id cannot be reused.
_switched: dict[int, list[Any]] = {}
_switch_lock = threading.Lock()


def hold_nonblocking(sock: socket.socket) -> None:
    """Make ``sock`` non-blocking until the matching ``release_nonblocking``."""
    with _switch_lock:
        entry = _switched.get(id(sock))
        if entry is not None:
            entry[0] += 1
            return
        previous = sock.gettimeout()
        _switched[id(sock)] = [1, previous]
        if previous != 0.0:
            try:
                sock.settimeout(0.0)
            except BaseException:
                del _switched[id(sock)]
                raise


def release_nonblocking(sock: socket.socket) -> None:
    """End one ``hold_nonblocking``; the last one restores the socket's timeout mode."""
    with _switch_lock:
        entry = _switched[id(sock)]
        entry[0] -= 1
        if entry[0]:
            return
        del _switched[id(sock)]
        previous = entry[1]
        if previous != 0.0 and sock.fileno() != -1:
            # OSError: closed by another thread meanwhile, nothing to restore.
            with contextlib.suppress(OSError):
                sock.settimeout(previous)

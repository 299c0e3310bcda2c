"""Every private part of the standard library that the library relies on, checked here.

Waking a blocked wait at once, without polling, needs a few internals that no public
API offers (``Condition``'s waiter queue, a ``Queue``'s organisation hooks, the
condition behind an ``Event`` or a ``Semaphore``, a ``Future``'s state). Each is
listed here with what is relied on, and checked when this module is imported, by
exercising it on a fresh object, not only by looking for the name. Where a check
fails (a future Python changed the internal), the flag below is ``False`` and the
family takes its fallback: the same operation through the public API, in polled
slices (``stoppable.set_poll_interval``). Correct, only slower to notice a stop.

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
``Condition._waiters``,                ``_wait.wait_condition``     ``Condition.wait`` in
``_release_save``,                     (queues, sync, futures,      slices
``_acquire_restore``, ``_is_owned``    DNS, HTTP pool)
``Queue._qsize/_get/_put``,            ``queues``                   ``Queue.get``/``put``
``not_empty``, ``not_full``,                                        in slices
``mutex``, ``unfinished_tasks``
``Queue.is_shutdown`` (3.13)           ``queues``                   none needed before
                                                                    3.13 (no shutdown)
``Semaphore._cond``, ``_value``        ``sync.acquire``             ``acquire`` in slices
``Event._cond``                        ``sync.wait``, ``futures``   ``Event.wait`` in
                                       (``AsyncResult._event``)     slices
``Future._condition``, ``_state``,     ``futures``                  ``Future.result``/
``_done_callbacks``                                                 ``wait`` in slices
``Popen._waitpid_lock``                ``process``                  ``Popen.poll`` only
``_socket.socket`` on a borrowed fd    ``_netio`` (a non-blocking   ``socket.socket`` on
                                       shadow of a socket)          the fd
urllib3 hooks overridden:              ``http`` (the package)       none: the import
``HTTPResponse._error_catcher``,                                    fails, naming the
``Retry._sleep_backoff``,                                           missing hook
``HTTPConnection._new_conn``,
``HTTPConnectionPool._get_conn``,
``_put_conn``
``urllib3.connection._match_hostname`` ``http._tls``                ``urllib3.util.ssl_
                                                                    match_hostname``
``urllib3.util.timeout.``              ``http._budget``,            none needed: read as
``_DEFAULT_TIMEOUT``                   ``http._pool``               the public default of
                                                                    ``urlopen(timeout=)``
=====================================  ===========================  =====================

The queue's fast paths (``queues.get``/``put`` with an item or room at hand) touch
the queue's hooks inline for speed, and only when ``QUEUE_INTERNALS`` is true; every
other use goes through the functions here. urllib3's parts are checked by
``check_urllib3()``, which the HTTP family calls when it is imported (urllib3 is not
loaded before). An overridden hook that urllib3 no longer calls would silently leave
requests unbounded, so there the only correct fallback is to refuse to load.

The internals of ``net`` and ``futures`` are listed, the same way, with their section
at the end of this module.

The tests check each flag is true on every supported Python, and force each
fallback to prove it correct.
"""

from __future__ import annotations

import _socket
import collections
import concurrent.futures
import io
import multiprocessing.pool
import os
import queue
import socket
import subprocess
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = [
    "BARE_SOCKET",
    "CONDITION_PROTOCOL",
    "EVENT_COND",
    "FUTURE_INTERNALS",
    "POOL_RESULT_EVENT",
    "QUEUE_INTERNALS",
    "QUEUE_SHUTDOWN",
    "SEMAPHORE_INTERNALS",
    "bare_socket",
    "check_urllib3",
    "condition_acquire_restore",
    "condition_is_owned",
    "condition_release_save",
    "condition_waiters",
    "event_cond",
    "pool_result_event",
    "popen_waitpid_lock",
    "queue_is_shutdown",
    "urllib3_default_timeout",
]


def _check(probe: Callable[[], object]) -> bool:
    """Whether ``probe`` runs without an error: an internal that is there and works."""
    try:
        probe()
    except Exception:
        return False
    return True


# --- threading.Condition: the protocol of Condition.wait ------------------------------


def _probe_condition() -> None:
    for lock in (threading.Lock(), threading.RLock()):
        cond = threading.Condition(lock)
        assert not cond._is_owned()  # type: ignore[attr-defined]
        with cond:
            if isinstance(lock, type(threading.RLock())):
                lock.acquire()  # held twice: _release_save must release both levels
            assert cond._is_owned()  # type: ignore[attr-defined]
            waiter = threading.Lock()
            assert waiter.acquire(False)
            waiters = cond._waiters  # type: ignore[attr-defined]
            waiters.append(waiter)
            cond.notify()  # releases the waiter's lock and takes it off the queue
            assert not waiter.locked()
            assert waiter not in waiters
            saved = cond._release_save()  # type: ignore[attr-defined]
            assert not cond._is_owned()  # type: ignore[attr-defined]
            assert lock.acquire(False)  # free for others while waiting
            lock.release()
            cond._acquire_restore(saved)  # type: ignore[attr-defined]
            assert cond._is_owned()  # type: ignore[attr-defined]
            if isinstance(lock, type(threading.RLock())):
                lock.release()


CONDITION_PROTOCOL: bool = _check(_probe_condition)
"""``Condition.wait``'s protocol is as relied on: a stop can release a waiter directly."""


def condition_is_owned(cond: threading.Condition) -> bool:
    """Whether the calling thread holds ``cond``."""
    owned: bool = cond._is_owned()  # type: ignore[attr-defined]
    return owned


def condition_waiters(cond: threading.Condition) -> Any:
    """The queue of waiter locks that ``notify()`` releases, first in first out."""
    return cond._waiters  # type: ignore[attr-defined]


def condition_release_save(cond: threading.Condition) -> Any:
    """Release ``cond`` fully (every level of an ``RLock``); the state to restore."""
    return cond._release_save()  # type: ignore[attr-defined]


def condition_acquire_restore(cond: threading.Condition, saved: Any) -> None:
    """Take ``cond`` back as ``condition_release_save`` found it."""
    cond._acquire_restore(saved)  # type: ignore[attr-defined]


# --- queue.Queue ---------------------------------------------------------------------


def _probe_queue() -> None:
    for kind in (queue.Queue, queue.LifoQueue, queue.PriorityQueue):
        q: queue.Queue[int] = kind(maxsize=1)
        assert isinstance(q.mutex, type(threading.Lock()))
        for cond in (q.not_empty, q.not_full, q.all_tasks_done):
            assert cond._lock is q.mutex  # type: ignore[attr-defined]
        with q.mutex:
            assert q._qsize() == 0
            q._put(7)
            q.unfinished_tasks += 1
            assert q._qsize() == 1
        assert q.get_nowait() == 7  # the public API sees what the hooks did
        q.task_done()
        q.put_nowait(8)
        with q.mutex:
            assert q._get() == 8
            assert q._qsize() == 0


QUEUE_INTERNALS: bool = _check(_probe_queue)
"""A ``Queue``'s organisation hooks and conditions are as relied on."""


def _probe_shutdown() -> None:
    q: queue.Queue[int] = queue.Queue()
    assert q.is_shutdown is False  # type: ignore[attr-defined]
    q.shutdown()  # type: ignore[attr-defined]
    assert q.is_shutdown is True  # type: ignore[attr-defined]
    try:
        q.put_nowait(1)
    except queue.ShutDown:
        return
    raise AssertionError("put on a shut-down queue was accepted")


QUEUE_SHUTDOWN: bool = hasattr(queue.Queue, "shutdown") and _check(_probe_shutdown)
"""``Queue.shutdown()`` exists (Python 3.13+) and marks the queue ``is_shutdown``."""

if hasattr(queue.Queue, "shutdown") and not QUEUE_SHUTDOWN:  # pragma: no cover
    # A queue that can be shut down but whose state cannot be read: the waits
    # cannot honour it without the internals, so take the public API throughout.
    QUEUE_INTERNALS = False


def queue_is_shutdown(q: queue.Queue[Any]) -> bool:
    """Whether ``q.shutdown()`` was called (always ``False`` before Python 3.13)."""
    return QUEUE_SHUTDOWN and bool(getattr(q, "is_shutdown", False))


# --- threading.Semaphore and threading.Event ----------------------------------------


def _probe_semaphore() -> None:
    for kind in (threading.Semaphore, threading.BoundedSemaphore):
        semaphore = kind(2)
        cond = semaphore._cond  # type: ignore[attr-defined]
        assert isinstance(cond, threading.Condition)
        with cond:
            assert semaphore._value == 2
            semaphore._value -= 1
        assert semaphore.acquire(False)
        assert not semaphore.acquire(False)  # the count taken by hand was honoured
        semaphore.release()
        semaphore.release()
        with cond:
            assert semaphore._value == 2


SEMAPHORE_INTERNALS: bool = _check(_probe_semaphore)
"""A ``Semaphore`` is a ``_value`` counter under the condition ``_cond``."""


def _probe_event() -> None:
    event = threading.Event()
    cond = event._cond  # type: ignore[attr-defined]
    assert isinstance(cond, threading.Condition)
    waiter = threading.Lock()
    assert waiter.acquire(False)
    with cond:
        cond._waiters.append(waiter)  # type: ignore[attr-defined]
    event.set()  # notifies the condition's waiters
    assert not waiter.locked()


EVENT_COND: bool = CONDITION_PROTOCOL and _check(_probe_event)
"""An ``Event`` is a flag under the condition ``_cond``, notified by ``set()``."""


def event_cond(event: threading.Event) -> threading.Condition:
    """The condition ``event.set()`` notifies (only where ``EVENT_COND``)."""
    cond: threading.Condition = event._cond  # type: ignore[attr-defined]
    return cond


def _probe_pool_result() -> None:
    pool: Any = _FakePool()
    result: multiprocessing.pool.ApplyResult[int] = multiprocessing.pool.ApplyResult(
        pool, None, None
    )
    event = result._event  # type: ignore[attr-defined]
    assert isinstance(event, threading.Event)
    assert not result.ready()
    event.set()
    assert result.ready()


class _FakePool:
    """The least an ``ApplyResult`` needs of its pool, for the probe."""

    def __init__(self) -> None:
        self._cache: dict[int, object] = {}


POOL_RESULT_EVENT: bool = EVENT_COND and _check(_probe_pool_result)
"""A ``multiprocessing.pool`` result is ready when its ``threading.Event`` is set."""


def pool_result_event(result: multiprocessing.pool.ApplyResult[Any]) -> threading.Event:
    """The event set when ``result`` is ready (only where ``POOL_RESULT_EVENT``)."""
    event: threading.Event = result._event  # type: ignore[attr-defined]
    return event


# --- concurrent.futures.Future -------------------------------------------------------


def _probe_future() -> None:
    from concurrent.futures import _base

    done_states = (_base.CANCELLED_AND_NOTIFIED, _base.FINISHED)
    future: Future[int] = Future()
    assert isinstance(future._condition, threading.Condition)
    assert future._state == _base.PENDING
    calls: list[object] = []
    future._done_callbacks.append(calls.append)  # type: ignore[attr-defined]
    waiter = threading.Lock()
    assert waiter.acquire(False)
    with future._condition:
        future._condition._waiters.append(waiter)  # type: ignore[attr-defined]
    future.set_result(1)
    assert future._state in done_states
    assert calls == [future]
    assert not waiter.locked()
    cancelled: Future[int] = Future()
    assert cancelled.set_running_or_notify_cancel()
    assert cancelled._state == _base.RUNNING


FUTURE_INTERNALS: bool = CONDITION_PROTOCOL and _check(_probe_future)
"""A ``Future`` is a ``_state`` under ``_condition``, which completing it notifies."""


# --- subprocess.Popen ----------------------------------------------------------------


def popen_waitpid_lock(popen: subprocess.Popen[Any]) -> Any:
    """The lock ``Popen`` holds around ``waitpid``, or ``None`` where it has none.

    Holding it keeps a concurrent ``Popen.wait``/``poll`` from reaping the child
    while a pidfd is opened for it. Without it (``None``) the pidfd is opened
    unguarded, and a child reaped meanwhile is seen by ``Popen.poll()``.
    """
    lock = getattr(popen, "_waitpid_lock", None)
    if lock is None or not callable(getattr(lock, "acquire", None)):
        return None
    return lock


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


# --- urllib3 -------------------------------------------------------------------------------

# (module, class, method): the hooks stoppable.http overrides, which urllib3 must call.
URLLIB3_HOOKS = (
    ("urllib3.response", "HTTPResponse", "_error_catcher"),
    ("urllib3.util.retry", "Retry", "_sleep_backoff"),
    ("urllib3.connection", "HTTPConnection", "_new_conn"),
    ("urllib3.connectionpool", "HTTPConnectionPool", "_get_conn"),
    ("urllib3.connectionpool", "HTTPConnectionPool", "_put_conn"),
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


# === net and futures: the internals of their rooms (issue 17) ================================
#
# internal                                  used by                      fallback
# ----------------------------------------  ---------------------------  ----------------------
# socket._accept()                          net.accept (_netops)         socket.socket.accept,
#                                                                        its socket detached
# socket.SocketIO calling its owner's       net.Socket.makefile          a raw file of our own,
# _decref_socketios(); socket._io_refs                                   and our own count of
# deferring close()                                                      each socket's files
# concurrent.futures._base CANCELLED,       futures (_futwait, _tasks)   Future.done() (as for
# CANCELLED_AND_NOTIFIED, FINISHED                                       FUTURE_INTERNALS)
# concurrent.futures._base.                 futures.wait (_futwait)      a namedtuple of our
# DoneAndNotDoneFutures (read as the                                     own, the same fields
# type wait() returns)
# ThreadPoolExecutor._threads               ThreadPoolExecutor.shutdown  wait for the tasks'
#                                           (_threadpool)                futures, not threads

__all__ += [
    "DONE_AND_NOT_DONE",
    "EXECUTOR_THREADS",
    "FUTURE_DONE_STATES",
    "SOCKET_ACCEPT",
    "SOCKET_FILE",
    "close_socket",
    "executor_threads",
    "socket_accept",
    "socket_file",
    "socket_file_closed",
]


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


# --- concurrent.futures._base: a done Future's states; wait()'s result type -----------------


def _probe_future_states() -> None:
    from concurrent.futures import _base

    cancelled: Future[int] = Future()
    assert cancelled.cancel()
    assert cancelled._state == _base.CANCELLED
    notified: Future[int] = Future()
    notified.cancel()
    assert not notified.set_running_or_notify_cancel()
    assert notified._state == _base.CANCELLED_AND_NOTIFIED
    finished: Future[int] = Future()
    finished.set_result(1)
    assert finished._state == _base.FINISHED
    done = {_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED}
    running: Future[int] = Future()
    assert Future()._state not in done
    assert running.set_running_or_notify_cancel()
    assert running._state not in done


def _future_done_states() -> frozenset[str]:
    from concurrent.futures import _base

    return frozenset({_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED})


FUTURE_DONE_STATES: frozenset[str] = (
    _future_done_states() if FUTURE_INTERNALS and _check(_probe_future_states) else frozenset()
)
"""The ``Future._state`` values of a done (or cancelled) future; empty where they are not
as relied on, or ``FUTURE_INTERNALS`` is false: ``futures`` then asks ``done()``."""


def _probe_wait_result(kind: Any) -> None:
    made = kind({1}, {2})
    assert made.done == {1}
    assert made.not_done == {2}
    assert tuple(made) == ({1}, {2})


def _wait_result_type() -> Any:
    """``concurrent.futures._base.DoneAndNotDoneFutures``, read as what ``wait()`` returns.

    Where that is not a ``(done, not_done)`` named pair, one of our own, the same.
    """
    kind: Any = type(concurrent.futures.wait((), timeout=0))
    if _check(lambda: _probe_wait_result(kind)):
        return kind
    return collections.namedtuple("DoneAndNotDoneFutures", "done not_done")


DONE_AND_NOT_DONE: Any = _wait_result_type()
"""The type ``concurrent.futures.wait`` returns: ``(done, not_done)`` with those names."""


# --- concurrent.futures.ThreadPoolExecutor._threads: the executor's worker threads --------------


def _probe_executor_threads() -> None:
    # No task is submitted: importing stoppable must start no thread.
    executor = concurrent.futures.ThreadPoolExecutor(1)
    try:
        threads = executor._threads
        assert isinstance(threads, set)
        assert not threads
    finally:
        executor.shutdown(wait=False)


EXECUTOR_THREADS: bool = _check(_probe_executor_threads)
"""A ``ThreadPoolExecutor`` lists the worker threads it started in ``_threads``."""


def executor_threads(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> list[threading.Thread] | None:
    """The worker threads ``executor`` started, or ``None`` where they cannot be known.

    ``None`` leaves the caller to wait for the executor's tasks instead of its threads.
    """
    if not EXECUTOR_THREADS:
        return None  # pragma: no cover - forced by the tests
    threads = getattr(executor, "_threads", None)
    if not isinstance(threads, set):
        return None  # pragma: no cover - an executor that changed since the check
    return [thread for thread in list(threads) if isinstance(thread, threading.Thread)]

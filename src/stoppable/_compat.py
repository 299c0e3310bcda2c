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
the queue's hooks inline for speed, and only when ``QUEUE_INTERNALS`` is true (they hold
``mutex`` itself, which the check confirms is the lock of the three conditions); every
other use goes through the functions here. urllib3's parts are checked by
``check_urllib3()``, which the HTTP family calls when it is imported (urllib3 is not
loaded before). An overridden hook that urllib3 no longer calls would silently leave
requests unbounded, so there the only correct fallback is to refuse to load.

The internals of ``net`` and ``futures`` are listed, the same way, with their section
at the end of this module.

The tests check each flag is true on every supported Python, and force each
fallback to prove it correct.

The guard's, the fork hook's and the pools' (each in a section of its own below):

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
``socket.accept`` calling              ``_guard._sockets``          the guard leaves
``self._accept()``;                    (``accept`` in a guard)      ``accept`` alone (as
``_socket.socket._accept``                                          the standard library)
``socket._sendfile_use_send``          ``_guard._sockets``          the same loop, public
                                       (``sendfile`` in a guard)    calls (``send``)
``BaseSelector._fd_to_key``            ``_guard._select``           ``get_map()``
``_PollLikeSelector._selector``,       ``_guard._select``           the selector's own
``_EVENT_READ``; fds without a key                                  ``select`` in slices
left out of ``select()``
``popen_fork.Popen._launch``           ``_shared`` (the fork hook:  the ``Process.start``
``(process_obj)``                      events of a forked           frame a few frames up
                                       ``Process``)
``subprocess.Popen._execute_child``    ``_shared`` (a fork that     the forking code's
                                       execs: no watcher)           module is subprocess
``threading._register_atexit``         ``_procpool`` (shut down     ``atexit`` (after the
                                       pools at exit)               threads are joined)
``Pool.imap``'s generator over an      ``_poolimap`` (chunksize     chunks of our own,
``IMapIterator`` (``gi_frame``)        > 1)                         one pool task each
``IMapIterator._cond``, ``_items``,    ``_poolimap``                ``next(timeout)`` in
``_index``, ``_length``                                             slices
=====================================  ===========================  =====================

``sys._getframe`` (the guard's ``called_from_stoppable``, the fork hook) is not
listed: it is documented, in every CPython, and the frames it gives are public.
"""

from __future__ import annotations

import _socket
import collections
import concurrent.futures
import inspect
import io
import multiprocessing.pool
import multiprocessing.process
import os
import queue
import selectors
import socket
import subprocess
import sys
import threading
import types
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
    "condition_save_restore",
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


def condition_save_restore(
    cond: threading.Condition,
) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    """``cond``'s own release-save and acquire-restore, bound once for a whole wait.

    The same as the two functions above, one Python call fewer on each wake-up: the
    woken waiter's way out is what a mass wake-up pays for, waiter after waiter.
    """
    return cond._release_save, cond._acquire_restore  # type: ignore[attr-defined]


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


# =======================================================================================
# The guard's, the pools' and the fork hook's internals (moved here from _guard, _shared,
# _procpool and _poolimap). Kept together, apart from the sections above, to merge easily.
# =======================================================================================

__all__ += [  # a list of this section's own, to merge easily
    "FORK_LAUNCH",
    "IMAP_CHUNKS",
    "IMAP_INTERNALS",
    "SELECTOR_MAP",
    "SELECTOR_POLL",
    "SENDFILE_USE_SEND",
    "SOCKET_ACCEPT_HOOK",
    "SUBPROCESS_EXECUTE_CHILD",
    "THREAD_SHUTDOWN_HOOK",
    "at_thread_shutdown",
    "bare_accept",
    "forked_process",
    "forked_to_exec",
    "imap_chunks",
    "imap_condition",
    "imap_ready",
    "selector_poller",
    "selector_watches",
    "semaphore_cond",
    "semaphore_take",
    "semaphore_value",
    "sendfile_by_send",
]


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


# --- threading.Semaphore's counter (sync.acquire; checked above: SEMAPHORE_INTERNALS) ------


def semaphore_cond(semaphore: threading.Semaphore) -> threading.Condition:
    """The condition ``semaphore.release()`` notifies, which guards its counter."""
    cond: threading.Condition = semaphore._cond  # type: ignore[attr-defined]
    return cond


def semaphore_value(semaphore: threading.Semaphore) -> int:
    """The semaphore's counter (read under ``semaphore_cond``)."""
    value: int = semaphore._value
    return value


def semaphore_take(semaphore: threading.Semaphore) -> None:
    """Take one from the counter, as ``acquire`` does (under ``semaphore_cond``)."""
    semaphore._value -= 1


# --- the fork hook: who is forking (_shared) -------------------------------------------


def _launch_code() -> types.CodeType | None:
    """The code of ``multiprocessing.popen_fork.Popen._launch(process_obj)``, if loaded."""
    popen_fork = sys.modules.get("multiprocessing.popen_fork")
    launch = getattr(getattr(popen_fork, "Popen", None), "_launch", None)
    code = getattr(launch, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _probe_fork_launch() -> None:
    import multiprocessing.popen_fork  # noqa: F401 - what _launch_code reads

    code = _launch_code()
    assert code is not None
    assert "process_obj" in code.co_varnames[: code.co_argcount]
    assert "fork" in code.co_names  # it is where os.fork() is called


FORK_LAUNCH: bool = _check(_probe_fork_launch)
"""``multiprocessing`` forks a ``Process`` in ``popen_fork.Popen._launch(process_obj)``."""

_START_CODE = multiprocessing.process.BaseProcess.start.__code__
_START_DEPTH = 8  # start() -> _Popen -> Popen() -> __init__ -> _launch: a few frames


def forked_process(frame: types.FrameType) -> Any:
    """The ``multiprocessing`` process being forked by ``frame`` (``os.fork``'s caller).

    ``None`` if the fork is not a ``Process`` being started. Read from
    ``Popen._launch``'s argument where ``FORK_LAUNCH``; otherwise from the
    ``Process.start()`` below which the fork happens (public, a few frames up).
    """
    if FORK_LAUNCH:
        code = _launch_code()
        return frame.f_locals.get("process_obj") if frame.f_code is code else None
    caller: types.FrameType | None = frame
    for _ in range(_START_DEPTH):
        if caller is None:
            return None
        if caller.f_code is _START_CODE:
            return caller.f_locals.get("self")
        caller = caller.f_back
    return None


def _probe_execute_child() -> None:
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    code = execute_child.__code__
    assert code.co_name == "_execute_child"
    assert any("fork_exec" in name for name in code.co_names)  # where the fork happens


SUBPROCESS_EXECUTE_CHILD: bool = _check(_probe_execute_child)
"""``subprocess`` forks (for a ``preexec_fn``) in ``Popen._execute_child``."""


def forked_to_exec(frame: types.FrameType) -> bool:
    """Whether the fork made by ``frame`` is ``subprocess``'s, whose child execs at once.

    By the name ``_execute_child`` where ``SUBPROCESS_EXECUTE_CHILD``; otherwise by
    the module of the forking code (``subprocess`` forks nowhere else).
    """
    if SUBPROCESS_EXECUTE_CHILD:
        return frame.f_code.co_name == "_execute_child"
    return frame.f_globals.get("__name__") == "subprocess"


# --- threading's hook before the threads are joined at exit (_procpool) ----------------


def _probe_thread_shutdown_hook() -> None:
    register = threading._register_atexit  # type: ignore[attr-defined]
    assert callable(register)
    inspect.signature(register).bind(print)  # register(func, *args, **kwargs)


THREAD_SHUTDOWN_HOOK: bool = _check(_probe_thread_shutdown_hook)
"""``threading._register_atexit`` exists (what ``concurrent.futures`` uses)."""


def at_thread_shutdown(func: Callable[[], object]) -> None:
    """Call ``func`` at exit, before Python joins the non-daemon threads if it can.

    ``threading._register_atexit`` where ``THREAD_SHUTDOWN_HOOK``; otherwise
    ``atexit``, which runs after the join: still in time for work done by daemon
    threads (a non-daemon thread waiting on that work still gets it).
    """
    if THREAD_SHUTDOWN_HOOK:
        threading._register_atexit(func)  # type: ignore[attr-defined]
        return
    import atexit

    atexit.register(func)


# --- multiprocessing.pool's IMapIterator (_poolimap) -----------------------------------


class _FakeImapPool:
    """The least ``Pool.imap`` and an ``IMapIterator`` need of a pool, for the probes."""

    def __init__(self) -> None:
        self._cache: dict[int, object] = {}
        self._taskqueue: queue.SimpleQueue[object] = queue.SimpleQueue()

    def _check_running(self) -> None:
        pass

    def _guarded_task_generation(self, *args: object) -> None:
        pass


def imap_chunks(results: Any) -> multiprocessing.pool.IMapIterator[Any] | None:
    """The ``IMapIterator`` of chunks behind ``Pool.imap(..., chunksize > 1)``'s generator.

    That generator (``item for chunk in result for item in chunk``) holds it as its
    argument. ``None`` where it is not found (the caller then chunks by itself).
    """
    if not IMAP_CHUNKS:
        return None
    frame = getattr(results, "gi_frame", None)
    chunks = None if frame is None else frame.f_locals.get(".0")
    return chunks if isinstance(chunks, multiprocessing.pool.IMapIterator) else None


def _probe_imap_chunks() -> None:
    for how in ("imap", "imap_unordered"):
        pool = _FakeImapPool()
        results = getattr(multiprocessing.pool.Pool, how)(pool, abs, [], 2)
        frame = results.gi_frame
        chunks = frame.f_locals.get(".0")
        assert isinstance(chunks, multiprocessing.pool.IMapIterator)
        assert chunks in pool._cache.values()  # the one the pool's results reach
        results.close()


IMAP_CHUNKS: bool = _check(_probe_imap_chunks)
"""``Pool.imap``/``imap_unordered`` with ``chunksize > 1`` flatten an ``IMapIterator``."""


def imap_condition(results: multiprocessing.pool.IMapIterator[Any]) -> threading.Condition:
    """The condition the pool's result thread notifies for ``results`` (``IMAP_INTERNALS``)."""
    cond: threading.Condition = results._cond  # type: ignore[attr-defined]
    return cond


def imap_ready(results: multiprocessing.pool.IMapIterator[Any]) -> bool:
    """Whether ``results.next(0)`` has an item or the end to give, under its condition."""
    it: Any = results
    return bool(it._items) or it._index == it._length


def _probe_imap_iterator() -> None:
    pool: Any = _FakeImapPool()
    results: Any = multiprocessing.pool.IMapIterator(pool)
    cond = imap_condition(results)
    assert isinstance(cond, threading.Condition)
    waiter = threading.Lock()
    assert waiter.acquire(False)
    with cond:
        assert not imap_ready(results)
        cond._waiters.append(waiter)  # type: ignore[attr-defined]
    results._set(0, (True, 5))  # as the pool's result thread hands an item over
    assert not waiter.locked()  # ... notifying the condition
    with cond:
        assert imap_ready(results)
    assert results.next(0) == 5
    with cond:
        assert not imap_ready(results)
    results._set_length(1)
    with cond:
        assert imap_ready(results)  # the end is there to give
    try:
        results.next(0)
    except StopIteration:
        return
    raise AssertionError("the iterator did not end")


IMAP_INTERNALS: bool = CONDITION_PROTOCOL and _check(_probe_imap_iterator)
"""An ``IMapIterator``'s items and end are read under ``_cond``, which a new item notifies."""


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

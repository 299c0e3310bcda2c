"""The private internals in ``stoppable._compat``: each checked, each fallback correct.

For every internal: the check passes on this Python; the check notices when the
internal is broken (so a future Python that changes it takes the fallback instead
of hanging); and the fallback, forced, still gets, puts, waits, stops and times out
correctly (only by polling).
"""

from __future__ import annotations

import _socket
import concurrent.futures
import io
import multiprocessing.pool
import queue
import selectors
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from multiprocessing.context import ForkProcess
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.connection

import stoppable
from stoppable import (
    DeadlineExceeded,
    StopEvent,
    Stopped,
    _compat,
    _futwait,
    _shared,
    futures,
    net,
    queues,
    scope,
    sync,
)
from stoppable._compat import _http, _probe, _processes, _sockets, _waits

from . import proc_support as ps
from .support import LONG, SHORT, WAKE_BOUND, start_call, stop_while_blocked, wait_until_blocked

PROBES: dict[str, Callable[[], None]] = {
    "CONDITION_PROTOCOL": _waits._probe_condition,
    "QUEUE_INTERNALS": _waits._probe_queue,
    "SEMAPHORE_INTERNALS": _waits._probe_semaphore,
    "EVENT_COND": _waits._probe_event,
    "POOL_RESULT_EVENT": _processes._probe_pool_result,
    "FUTURE_INTERNALS": _waits._probe_future,
    "SOCKET_ACCEPT": _sockets._probe_accept,
    "SOCKET_FILE": _sockets._probe_socket_file,
    "EXECUTOR_THREADS": _waits._probe_executor_threads,
}


@pytest.mark.parametrize("flag", [*PROBES, "QUEUE_SHUTDOWN"])
def test_every_internal_is_as_relied_on_here(flag: str) -> None:
    expected = hasattr(queue.Queue, "shutdown") if flag == "QUEUE_SHUTDOWN" else True
    assert getattr(_compat, flag) is expected


# How to break each internal as a future Python might: the probe must notice.
def _break_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(threading.Condition, "_release_save")


def _break_condition_notify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading.Condition, "notify", lambda self, n=1: None)


def _break_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue.Queue, "_qsize", lambda self: 0)


def _break_semaphore(monkeypatch: pytest.MonkeyPatch) -> None:
    original = threading.Semaphore.__init__

    def init(self: threading.Semaphore, value: int = 1) -> None:
        original(self, value)
        self._value_renamed = self._value  # type: ignore[attr-defined]
        del self._value

    monkeypatch.setattr(threading.Semaphore, "__init__", init)


def _break_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading.Event, "set", lambda self: setattr(self, "_flag", True))


def _break_pool_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocessing.pool.ApplyResult, "ready", lambda self: False)


def _break_future(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Future, "set_result", lambda self, result: None)


def _break_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    original = socket.socket.accept
    monkeypatch.setattr(socket.socket, "_accept", lambda self: original(self))  # a socket, no fd


def _break_socket_file_close(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.SocketIO, "close", io.RawIOBase.close)  # owner not told


def _break_socket_io_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "close", lambda self: self._real_close())


def _break_executor_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    original = concurrent.futures.ThreadPoolExecutor.__init__

    def init(self: concurrent.futures.ThreadPoolExecutor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._workers = self.__dict__.pop("_threads")  # type: ignore[attr-defined]

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "__init__", init)


BREAKERS: dict[str, tuple[str, Callable[[pytest.MonkeyPatch], None]]] = {
    "Condition._release_save gone": ("CONDITION_PROTOCOL", _break_condition),
    "Condition.notify not releasing": ("CONDITION_PROTOCOL", _break_condition_notify),
    "Queue._qsize not counting": ("QUEUE_INTERNALS", _break_queue),
    "Semaphore._value renamed": ("SEMAPHORE_INTERNALS", _break_semaphore),
    "Event.set not notifying": ("EVENT_COND", _break_event),
    "AsyncResult not its event": ("POOL_RESULT_EVENT", _break_pool_result),
    "Future not notifying": ("FUTURE_INTERNALS", _break_future),
    "socket._accept returning a socket": ("SOCKET_ACCEPT", _break_accept),
    "SocketIO.close not telling its owner": ("SOCKET_FILE", _break_socket_file_close),
    "socket.close not waiting for its files": ("SOCKET_FILE", _break_socket_io_refs),
    "ThreadPoolExecutor._threads renamed": ("EXECUTOR_THREADS", _break_executor_threads),
}


@pytest.mark.parametrize("how", BREAKERS)
def test_the_check_notices_a_changed_internal(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, breaker = BREAKERS[how]
    assert _probe._check(PROBES[flag])
    breaker(monkeypatch)
    assert not _probe._check(PROBES[flag])


def test_the_shutdown_check_notices_a_queue_that_accepts_puts_after_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(queue.Queue, "shutdown"):
        pytest.skip("Queue.shutdown() is new in Python 3.13")
    assert _probe._check(_waits._probe_shutdown)
    monkeypatch.setattr(queue.Queue, "put_nowait", lambda self, item: None)
    assert not _probe._check(_waits._probe_shutdown)


def test_popen_waitpid_lock_is_found_or_none() -> None:
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        lock = _compat.popen_waitpid_lock(child)
        assert lock is not None
        assert lock.acquire(False)
        lock.release()
        child.wait(LONG)
        del child._waitpid_lock  # type: ignore[attr-defined]
        assert _compat.popen_waitpid_lock(child) is None


# --- each fallback, forced --------------------------------------------------------------


def _force(monkeypatch: pytest.MonkeyPatch, flag: str, value: bool = False) -> None:
    """Set ``flag`` where the library reads it (``_compat.FLAG``) and where its own
    submodule's functions do (their module's global)."""
    monkeypatch.setattr(_compat, flag, value)
    owners = [m for m in (_waits, _processes, _sockets, _http) if flag in vars(m)]
    assert len(owners) == 1, f"{flag} is defined in {owners}"
    monkeypatch.setattr(owners[0], flag, value)


@pytest.fixture
def fallback(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Force the fallback named by the test's parameter, with a short poll slice."""
    flag: str = request.param
    _force(monkeypatch, flag)
    if flag == "QUEUE_INTERNALS":
        queues._use_internals(False)
    if flag == "FUTURE_INTERNALS":
        monkeypatch.setattr(_futwait, "_INTERNALS", False)
    previous = stoppable.set_poll_interval(0.02)
    try:
        yield flag
    finally:
        stoppable.set_poll_interval(previous)
        queues._use_internals(True)


# Each forced fallback: a call that completes, one that times out, one that is stopped,
# and nothing lost.


@pytest.mark.parametrize("fallback", ["CONDITION_PROTOCOL", "QUEUE_INTERNALS"], indirect=True)
def test_queue_fallbacks(fallback: str) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    queues.put(q, 1, timeout=LONG)
    with pytest.raises(queue.Full):
        queues.put(q, 2, timeout=SHORT)
    assert queues.get(q, timeout=LONG) == 1
    with pytest.raises(queue.Empty):
        queues.get(q, timeout=SHORT)
    stop_while_blocked(lambda stop: queues.get(q, timeout=LONG, stop=stop))
    thread, outcome = start_call(lambda: queues.get(q, timeout=LONG))
    wait_until_blocked(thread)
    q.put_nowait(5)
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result == 5
    q.put_nowait(6)
    with pytest.raises(Stopped), queues.take(q, timeout=LONG) as item:
        assert item == 6
        raise Stopped("put back")
    assert list(q.queue) == [6]
    assert q.unfinished_tasks == 3  # 1, 5 and 6 were put, none marked done
    with queues.take(q, timeout=LONG):
        pass
    assert q.unfinished_tasks == 2
    assert q.empty()


@pytest.mark.parametrize(
    "fallback", ["CONDITION_PROTOCOL", "SEMAPHORE_INTERNALS", "EVENT_COND"], indirect=True
)
def test_sync_fallbacks(fallback: str) -> None:
    semaphore = threading.Semaphore(1)
    with sync.acquire(semaphore, timeout=LONG):
        with pytest.raises(DeadlineExceeded):
            sync.acquire(semaphore, timeout=SHORT)
        stop_while_blocked(lambda stop: sync.acquire(semaphore, timeout=LONG, stop=stop))
    assert semaphore.acquire(False)
    semaphore.release()
    event = threading.Event()
    with pytest.raises(DeadlineExceeded):
        sync.wait(event, timeout=SHORT)
    stop_while_blocked(lambda stop: sync.wait(event, timeout=LONG, stop=stop))
    thread, outcome = start_call(lambda: sync.wait(event, timeout=LONG))
    wait_until_blocked(thread)
    event.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result is True
    worker = sync.Thread(target=lambda stop: stop.wait(LONG))
    worker.start()
    worker.stop_and_join(timeout=LONG)


@pytest.mark.parametrize(
    "fallback", ["CONDITION_PROTOCOL", "FUTURE_INTERNALS", "POOL_RESULT_EVENT"], indirect=True
)
def test_futures_fallbacks(fallback: str) -> None:
    future: Future[int] = Future()
    with pytest.raises(DeadlineExceeded):
        futures.result(future, timeout=SHORT)
    stop_while_blocked(lambda stop: futures.result(future, timeout=LONG, stop=stop))
    thread, outcome = start_call(lambda: futures.result(future, timeout=LONG))
    wait_until_blocked(thread)
    future.set_result(4)
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result == 4
    other: Future[int] = Future()
    with pytest.raises(DeadlineExceeded) as timed_out:
        futures.wait([future, other], timeout=SHORT)
    assert timed_out.value.done == {future}  # type: ignore[attr-defined]
    assert futures.wait([future, other], timeout=LONG, return_when=futures.FIRST_COMPLETED)
    other.set_exception(ValueError("x"))
    assert futures.exception(other, timeout=LONG) is not None
    with multiprocessing.pool.ThreadPool(1) as pool:
        release = threading.Event()
        pending = pool.apply_async(release.wait, (LONG,))
        with pytest.raises(DeadlineExceeded):
            futures.result(pending, timeout=SHORT)
        release.set()
        assert futures.result(pending, timeout=LONG) is True


@pytest.mark.parametrize("fallback", ["CONDITION_PROTOCOL"], indirect=True)
def test_condition_fallback_keeps_the_stop_level_triggered(fallback: str) -> None:
    cond = threading.Condition()
    stop = StopEvent()
    stop.set("early")

    def wait() -> Any:
        with cond:
            return sync.wait(cond, timeout=LONG, stop=stop, predicate=lambda: False)

    with pytest.raises(Stopped):
        wait()


def test_the_bare_socket_check_notices_a_changed_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _compat.BARE_SOCKET

    def no_fileno(*args: object) -> object:
        raise TypeError("socket() takes at most 3 arguments")  # as a changed _socket might

    monkeypatch.setattr(_sockets, "_socket", SimpleNamespace(socket=no_fileno))
    assert not _probe._check(_sockets._probe_bare_socket)


@pytest.mark.parametrize("fallback", ["BARE_SOCKET"], indirect=True)
def test_bare_socket_fallback(fallback: str) -> None:
    # A socket with a timeout is driven through the shadow: send and receive still work,
    # a stop still ends a blocked receive, and the socket stays usable afterwards.
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(5.0)
        b.settimeout(5.0)
        net.sendall(a, b"ping", timeout=LONG)
        assert net.recv(b, 4, timeout=LONG) == b"ping"
        stop_while_blocked(lambda stop: net.recv(b, 4, timeout=LONG, stop=stop))
        a.sendall(b"again")
        assert net.recv(b, 5, timeout=LONG) == b"again"
        assert b.gettimeout() == 5.0


def test_urllib3_hooks_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3.util.retry

    _compat.check_urllib3()  # present in the urllib3 installed
    assert _compat.urllib3_match_hostname() is urllib3.connection._match_hostname
    monkeypatch.delattr(urllib3.util.retry.Retry, "_sleep_backoff")
    with pytest.raises(ImportError, match=r"Retry\._sleep_backoff"):
        _compat.check_urllib3()


def test_urllib3_match_hostname_falls_back_to_the_public_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib3.util.ssl_match_hostname import CertificateError, match_hostname

    monkeypatch.delattr(urllib3.connection, "_match_hostname")
    check = _compat.urllib3_match_hostname()
    assert check is match_hostname
    cert: Any = {"subjectAltName": (("DNS", "example.com"),)}
    check(cert, "example.com")
    with pytest.raises(CertificateError):
        check(cert, "other.example")


def test_urllib3_default_timeout_is_urllib3s_private_marker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib3.util.timeout

    marker = urllib3.util.timeout._DEFAULT_TIMEOUT
    assert _compat.urllib3_default_timeout() is marker
    monkeypatch.delattr(urllib3.util.timeout, "_DEFAULT_TIMEOUT")  # read without the name
    assert _compat.urllib3_default_timeout() is marker


# =======================================================================================
# The internals moved here from the guard, the fork hook, the process pool and pool_imap.
# Kept apart from the sections above, to merge easily.
# =======================================================================================

MOVED_PROBES: dict[str, Callable[[], None]] = {
    "SOCKET_ACCEPT_HOOK": _sockets._probe_accept_hook,
    "SENDFILE_USE_SEND": _sockets._probe_sendfile_use_send,
    "SELECTOR_MAP": _sockets._probe_selector_map,
    "SELECTOR_POLL": _sockets._probe_selector_poll,
    "FORK_LAUNCH": _processes._probe_fork_launch,
    "SUBPROCESS_EXECUTE_CHILD": _processes._probe_execute_child,
    "THREAD_SHUTDOWN_HOOK": _processes._probe_thread_shutdown_hook,
    "IMAP_CHUNKS": _processes._probe_imap_chunks,
    "IMAP_INTERNALS": _processes._probe_imap_iterator,
}


@pytest.mark.parametrize("flag", MOVED_PROBES)
def test_every_moved_internal_is_as_relied_on_here(flag: str) -> None:
    assert getattr(_compat, flag) is True


def _break_accept_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    # A socket.accept() that no longer goes through self._accept(): patching the hook
    # would then reach nothing.
    def accept(self: socket.socket) -> tuple[socket.socket, Any]:
        fd, address = _socket.socket._accept(self)  # type: ignore[attr-defined]
        return socket.socket(self.family, self.type, self.proto, fileno=fd), address

    monkeypatch.setattr(socket.socket, "accept", accept)


def _break_accept_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sockets, "_socket", SimpleNamespace(socket=object))  # no _accept


def _break_sendfile_use_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket.socket, "_sendfile_use_send")


def _break_selector_map(monkeypatch: pytest.MonkeyPatch) -> None:
    original = selectors._BaseSelectorImpl.register

    def register(self: Any, fileobj: Any, events: int, data: Any = None) -> Any:
        key = original(self, fileobj, events, data)
        self._fd_to_key = {key.fileobj: key}  # keyed by another thing than the fd
        return key

    monkeypatch.setattr(selectors._BaseSelectorImpl, "register", register)


def _break_selector_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    original = selectors._PollLikeSelector.__init__

    def init(self: Any) -> None:
        original(self)
        self._poller = self.__dict__.pop("_selector")  # renamed

    monkeypatch.setattr(selectors._PollLikeSelector, "__init__", init)


def _break_selector_strays(monkeypatch: pytest.MonkeyPatch) -> None:
    # A select() that reports every ready descriptor, keyed or not.
    def select(self: Any, timeout: float | None = None) -> Any:
        return [(SimpleNamespace(fd=fd), event) for fd, event in self._selector.poll(0)]

    for cls in _sockets._POLL_SELECTORS:
        monkeypatch.setattr(cls, "select", select)


def _break_fork_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing.popen_fork

    monkeypatch.delattr(multiprocessing.popen_fork.Popen, "_launch")


def _break_execute_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(subprocess.Popen, "_execute_child")


def _break_thread_shutdown_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(threading, "_register_atexit")


def _break_imap_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    def imap(self: Any, func: Any, iterable: Any, chunksize: int = 1) -> Any:
        return iter([])  # a plain iterator: no generator over an IMapIterator

    monkeypatch.setattr(multiprocessing.pool.Pool, "imap", imap)


def _break_imap_iterator(monkeypatch: pytest.MonkeyPatch) -> None:
    def set_item(self: Any, i: int, obj: Any) -> None:
        with self._cond:  # stored, but nobody waiting on the condition is told
            self._items.append(obj)
            self._index += 1

    monkeypatch.setattr(multiprocessing.pool.IMapIterator, "_set", set_item)


MOVED_BREAKERS: dict[str, tuple[str, Callable[[pytest.MonkeyPatch], None]]] = {
    "accept() not calling _accept()": ("SOCKET_ACCEPT_HOOK", _break_accept_hook),
    "_socket.socket._accept gone": ("SOCKET_ACCEPT_HOOK", _break_accept_raw),
    "_sendfile_use_send gone": ("SENDFILE_USE_SEND", _break_sendfile_use_send),
    "_fd_to_key keyed otherwise": ("SELECTOR_MAP", _break_selector_map),
    "selector _selector renamed": ("SELECTOR_POLL", _break_selector_poll),
    "selector reporting stray fds": ("SELECTOR_POLL", _break_selector_strays),
    "Popen._launch gone": ("FORK_LAUNCH", _break_fork_launch),
    "Popen._execute_child gone": ("SUBPROCESS_EXECUTE_CHILD", _break_execute_child),
    "threading._register_atexit gone": ("THREAD_SHUTDOWN_HOOK", _break_thread_shutdown_hook),
    "Pool.imap without a generator": ("IMAP_CHUNKS", _break_imap_chunks),
    "IMapIterator._set not notifying": ("IMAP_INTERNALS", _break_imap_iterator),
}


@pytest.mark.parametrize("how", MOVED_BREAKERS)
def test_the_check_notices_a_changed_moved_internal(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, breaker = MOVED_BREAKERS[how]
    assert _probe._check(MOVED_PROBES[flag])
    breaker(monkeypatch)
    assert not _probe._check(MOVED_PROBES[flag])


def _run_fresh(script: str, *args: str) -> str:
    """Run ``script`` in a fresh interpreter (no guard installed yet); its output."""
    import sys
    import textwrap

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=LONG,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_guard_patches_accept_through_its_hook() -> None:
    from stoppable._guard import _sockets

    assert "_accept" in {patch.name for patch in _sockets.patches()[0]}


def test_accept_hook_fallback_leaves_accept_as_it_is() -> None:
    # Without the hook as relied on, a guard must not replace it (a replaced hook that
    # accept() no longer calls, or that calls a missing _socket method, would be wrong):
    # accept() inside a guard is then the standard library's, and works as it does.
    output = _run_fresh(
        """
        import socket
        from stoppable import _compat, guard
        _compat.SOCKET_ACCEPT_HOOK = False
        from stoppable._guard import _sockets
        assert "_accept" not in {patch.name for patch in _sockets.patches()[0]}
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname(), timeout=30)
        with guard(timeout=30):
            assert "recv" in vars(socket.socket)  # the guard's socket patches are in
            assert "_accept" not in vars(socket.socket)  # accept is left alone
            conn, _ = listener.accept()
        assert conn.gettimeout() is None
        conn.sendall(b"ok")
        print(client.recv(2).decode())
        """
    )
    assert output == "ok"


def _in_guard(stop: StopEvent, block: Callable[[], object]) -> object:
    with stoppable.guard(stop=stop):
        return block()


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("fallback", ["SENDFILE_USE_SEND"], indirect=True)
def test_sendfile_fallback(fallback: str, tmp_path: Any) -> None:
    data = bytes(range(256)) * 80
    path = tmp_path / "data"
    path.write_bytes(data)
    a, b = socket.socketpair()
    with a, b, path.open("rb") as file:
        b.settimeout(LONG)
        with stoppable.guard(timeout=LONG):
            assert a.sendfile(file, 10, 1000) == 1000  # noqa: STP102 - in a guard
        assert file.tell() == 1010
        with stoppable.guard(timeout=LONG):  # then to the end of the file
            assert a.sendfile(file, 5000) == len(data) - 5000  # noqa: STP102 - in a guard
        assert file.tell() == len(data)
        a.shutdown(socket.SHUT_WR)
        assert _read_to_end(b) == data[10:1010] + data[5000:]


@pytest.mark.parametrize("fallback", ["SENDFILE_USE_SEND"], indirect=True)
def test_sendfile_fallback_is_stopped_and_keeps_the_file_position(
    fallback: str, tmp_path: Any
) -> None:
    data = b"x" * (8 << 20)  # more than the socket's buffers: the send blocks
    path = tmp_path / "big"
    path.write_bytes(data)
    a, b = socket.socketpair()
    with a, b, path.open("rb") as file:
        b.settimeout(LONG)
        send = lambda: a.sendfile(file, 3)  # noqa: E731, STP102 - in a guard
        stop_while_blocked(lambda stop: _in_guard(stop, send))
        # The interrupted connection is shut down; what went through is where the
        # file's position says.
        assert 3 < file.tell() < len(data)
        assert len(_read_to_end(b)) == file.tell() - 3


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"count": 0}, ValueError),
        ({"count": "1"}, TypeError),
        ({"nonblocking": True}, ValueError),
        ({"text": True}, ValueError),
        ({"datagram": True}, ValueError),
    ],
)
def test_sendfile_fallback_refuses_what_the_standard_library_refuses(
    arguments: dict[str, Any],
    error: type[Exception],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"abc")
    kind = socket.SOCK_DGRAM if arguments.get("datagram") else socket.SOCK_STREAM
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    with a, b, path.open("r" if arguments.get("text") else "rb") as file:
        a.setblocking(not arguments.get("nonblocking"))
        count = arguments.get("count")
        with pytest.raises(error) as standard:
            a._sendfile_use_send(file, 0, count)  # type: ignore[attr-defined]
        _force(monkeypatch, "SENDFILE_USE_SEND")
        with pytest.raises(error) as ours:
            _compat.sendfile_by_send(a, file, 0, count)
        assert str(ours.value) == str(standard.value)


@pytest.mark.parametrize("kind", ["PollSelector", "EpollSelector"])
@pytest.mark.parametrize("fallback", ["SELECTOR_POLL", "SELECTOR_MAP"], indirect=True)
def test_selector_fallbacks(fallback: str, kind: str) -> None:
    from stoppable import guard

    cls = getattr(selectors, kind)
    a, b = socket.socketpair()
    with a, b:
        with cls() as selector:
            selector.register(a, selectors.EVENT_READ)
            assert _compat.selector_watches(selector, a.fileno())
            assert not _compat.selector_watches(selector, b.fileno())

        def wait(stop: StopEvent) -> object:
            with guard(stop=stop), cls() as selector:
                selector.register(a, selectors.EVENT_READ)
                return selector.select()

        stop_while_blocked(wait)
        with pytest.raises(DeadlineExceeded), guard(timeout=SHORT), cls() as selector:
            selector.register(a, selectors.EVENT_READ)
            selector.select()
        with guard(timeout=LONG), cls() as selector:
            selector.register(a, selectors.EVENT_READ)
            assert selector.select(0.01) == []
            b.sendall(b"x")
            [(key, events)] = selector.select()
            assert key.fileobj is a
            assert events == selectors.EVENT_READ


class _Holder:
    """A forked process's target holding a stop: exits 0 once the parent sets it."""

    def __init__(self, stop: StopEvent) -> None:
        self.stop = stop

    def run(self) -> None:
        import os

        os._exit(0 if self.stop.wait(LONG) and self.stop.reason == "held" else 1)


class _StartedProcess(ForkProcess):
    """A process class whose own ``start()`` calls the standard one."""

    def start(self) -> None:
        super().start()


@ps.FORK_WARNING
@pytest.mark.skipif(not _shared.SUPPORTED, reason="cross-process stops need Linux")
@pytest.mark.parametrize("fallback", ["FORK_LAUNCH"], indirect=True)
@pytest.mark.parametrize("how", ["context", "subclass"])
def test_fork_launch_fallback_shares_the_events_of_a_forked_process(
    fallback: str, how: str
) -> None:
    import sys

    ctx = multiprocessing.get_context("fork")
    stop = StopEvent()
    target = _Holder(stop).run
    if how == "context":
        process: Any = ctx.Process(target=target)
    else:
        process = _StartedProcess(target=target)
    assert _compat.forked_process(sys._getframe()) is None  # no Process being started
    process.start()
    assert stop._shared is not None  # shared by the fork hook, not by pickling
    stop.set("held")
    process.join(LONG)
    assert process.exitcode == 0


@ps.FORK_WARNING
@pytest.mark.parametrize("fallback", ["SUBPROCESS_EXECUTE_CHILD"], indirect=True)
def test_subprocess_fork_fallback_tells_subprocess_forks_apart(fallback: str) -> None:
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "print('ok')"],
        preexec_fn=lambda: None,  # the only way subprocess runs the fork hooks
        capture_output=True,
        text=True,
        timeout=LONG,
        check=True,
    )
    assert done.stdout == "ok\n"
    assert _shared._exec_fork  # the hook saw a fork whose child execs
    process = multiprocessing.get_context("fork").Process(target=print)
    process.start()
    process.join(LONG)
    assert process.exitcode == 0
    assert not _shared._exec_fork  # a forked Process is not one


@pytest.mark.parametrize("hook", [True, False])
def test_at_thread_shutdown_runs_at_exit(hook: bool) -> None:
    # With threading's hook, the function runs before the non-daemon threads are
    # joined (it releases the one below at once); the fallback, atexit, after.
    output = _run_fresh(
        """
        import sys, threading
        from stoppable import _compat
        # Read here by the library, and by at_thread_shutdown in its own submodule.
        _compat.THREAD_SHUTDOWN_HOOK = _compat._processes.THREAD_SHUTDOWN_HOOK = (
            sys.argv[1] == "True"
        )
        done = threading.Event()

        def at_exit():
            print("ran", "before the join" if worker.is_alive() else "after the join")
            done.set()

        _compat.at_thread_shutdown(at_exit)
        wait = 30 if _compat.THREAD_SHUTDOWN_HOOK else 0.2  # the fallback: the join first
        worker = threading.Thread(target=done.wait, args=(wait,))
        worker.start()
        """,
        str(hook),
    )
    assert output == ("ran before the join" if hook else "ran after the join")


def _timeout_on_3(x: int) -> int:
    if x == 3:
        raise multiprocessing.TimeoutError("the task's own")
    return x * x


def _outcome(results: Iterator[Any]) -> tuple[list[Any], str]:
    got = []
    try:
        for item in results:
            got.append(item)
    except Exception as exc:
        return got, f"{type(exc).__name__}: {exc}"
    return got, "end"


@ps.FORK_WARNING
@pytest.mark.parametrize("fallback", ["IMAP_CHUNKS", "IMAP_INTERNALS"], indirect=True)
def test_pool_imap_fallbacks(fallback: str) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        for how in ("imap", "imap_unordered"):
            ours = getattr(futures, f"pool_{how}")
            for chunksize in (1, 3):
                got = ours(pool, ps.square, range(7), chunksize, timeout=LONG)
                if how == "imap":
                    assert list(got) == [i * i for i in range(7)]
                else:
                    assert sorted(got) == [i * i for i in range(7)]
        for chunksize in (1, 2):
            # An error (multiprocessing's TimeoutError too) ends the iteration where
            # the pool's own iterator ends it; it is never taken for "no result yet".
            expected = _outcome(pool.imap(_timeout_on_3, range(6), chunksize))
            assert expected[1] == "TimeoutError: the task's own"
            ours = futures.pool_imap(pool, _timeout_on_3, range(6), chunksize, timeout=LONG)
            assert _outcome(ours) == expected
        # The task waits on a stop of its own, never set: only the iteration is stopped.
        stop = StopEvent()
        results = futures.pool_imap(
            pool, ps.wait_in_task, [StopEvent()], 2, timeout=LONG, stop=stop
        )
        thread, outcome = start_call(lambda: next(results))
        wait_until_blocked(thread)
        stop.set("no more")
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
        assert outcome.error.reason == "no more"
        slow = futures.pool_imap(pool, ps.wait_in_task, [StopEvent()], 2, timeout=SHORT)
        with pytest.raises(futures.PoolDeadline):
            next(slow)
        pool.terminate()


# --- the internals of net and futures ------------------------------------------------------


def test_the_future_done_states_are_known_here_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import _base

    assert {_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED} == (
        _compat.FUTURE_DONE_STATES
    )
    assert _futwait._INTERNALS
    assert _probe._check(_waits._probe_future_states)

    def cancel(self: Future[Any]) -> bool:
        self._state = "GONE"
        return True

    monkeypatch.setattr(Future, "cancel", cancel)
    assert not _probe._check(_waits._probe_future_states)


def test_the_wait_result_type_is_the_standard_one_or_the_same_of_our_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import _base

    assert _compat.DONE_AND_NOT_DONE is _base.DoneAndNotDoneFutures
    monkeypatch.setattr(concurrent.futures, "wait", lambda fs, timeout=None: (set(), set()))
    ours = _waits._wait_result_type()
    assert ours is not tuple
    pair = ours({1}, {2})
    assert (pair.done, pair.not_done) == ({1}, {2})
    assert pair == ({1}, {2})


def _listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    return listener


@pytest.mark.parametrize("fallback", ["SOCKET_ACCEPT"], indirect=True)
def test_accept_fallback(fallback: str) -> None:
    from .net_servers import tls

    with _listener() as listener, socket.create_connection(listener.getsockname(), LONG) as client:
        conn, address = net.accept(listener, timeout=LONG)
        with conn:
            assert address == client.getsockname()
            assert type(conn) is socket.socket
            assert conn.gettimeout() is None  # blocking, as socket.accept gives it
            client.sendall(b"hi")
            assert net.recv(conn, 2, timeout=LONG) == b"hi"
        with pytest.raises(DeadlineExceeded):
            net.accept(listener, timeout=SHORT)
        stop_while_blocked(lambda stop: net.accept(listener, timeout=LONG, stop=stop))
        assert listener.gettimeout() is None  # its mode restored
    with (
        tls().server.wrap_socket(_listener(), server_side=True) as listener,
        socket.create_connection(listener.getsockname(), LONG),
    ):
        conn, _ = net.accept(listener, timeout=LONG)
        with conn:
            assert isinstance(conn, ssl.SSLSocket)  # not handshaken: the client sent nothing


@pytest.mark.parametrize("fallback", ["SOCKET_FILE"], indirect=True)
def test_socket_file_fallback(fallback: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        wrapped = net.Socket(a)
        with scope(timeout=LONG):
            f = wrapped.makefile("rwb", buffering=0)
            assert isinstance(f, _sockets._SocketFile)
            b.sendall(b"first\n")
            assert f.readline() == b"first\n"
            assert f.write(b"out") == 3
            assert net.recv(b, 3, timeout=LONG) == b"out"
            text = wrapped.makefile("r", encoding="ascii")
            wrapped.close()  # deferred: two files are open
            assert a.fileno() != -1
            b.sendall(b"second\n")
            assert text.readline() == "second\n"
            text.close()
            assert a.fileno() != -1  # one file left
            f.close()
            assert a.fileno() == -1  # the last file closed the socket
    a, b = socket.socketpair()
    with a, b:
        f = net.Socket(a).makefile("rb")
        with pytest.raises(DeadlineExceeded), scope(timeout=SHORT):
            f.readline()
        with pytest.raises(OSError, match="timed out"), scope(timeout=LONG):
            f.readline()  # as SocketIO: a read cut short leaves the buffer unknown
        f.close()
        assert a.fileno() != -1  # only a close of the socket closes it
    assert not _sockets._open_files  # nothing left counted


@pytest.mark.parametrize("fallback", ["EXECUTOR_THREADS"], indirect=True)
def test_executor_threads_fallback(fallback: str) -> None:
    pool = futures.ThreadPoolExecutor(2)
    assert pool.submit(int, "7").result(LONG) == 7
    release = threading.Event()
    started = threading.Event()

    def ignores_its_stop() -> bool:
        started.set()
        return release.wait(LONG)

    stuck = pool.submit(ignores_its_stop)
    assert started.wait(LONG)
    with pytest.raises(futures.ShutdownDeadline) as timed_out:
        pool.shutdown(stop=True, timeout=SHORT)
    assert timed_out.value.unfinished == [stuck]
    release.set()
    pool.shutdown(timeout=LONG)  # the task ends: the shutdown with it
    assert stuck.result(0) is True


# === stoppable.http: urllib3's other private parts (issue 16) ==============================


@pytest.fixture(scope="module")
def http_server() -> Iterator[Any]:
    from .http_servers import HTTPServer

    with HTTPServer() as running:
        yield running


def test_every_http_internal_is_as_relied_on_here() -> None:
    import stoppable.http  # noqa: F401 - its import runs the checks

    for flag, probe in _compat.HTTP_PROBES.items():
        assert getattr(_compat, flag) is True, flag
        assert _probe._check(probe), flag


def _break_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    original = urllib3.Timeout.__init__

    def init(self: urllib3.Timeout, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._connect_renamed = self._connect  # type: ignore[attr-defined]
        del self._connect

    monkeypatch.setattr(urllib3.Timeout, "__init__", init)


def _break_pool_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    original = urllib3.HTTPConnectionPool.__init__

    def init(self: urllib3.HTTPConnectionPool, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._free = self.pool  # type: ignore[attr-defined]
        del self.pool

    monkeypatch.setattr(urllib3.HTTPConnectionPool, "__init__", init)


def _break_response_options(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = urllib3.connection.HTTPConnection
    init, request = cls.__init__, cls.request

    def renamed(self: Any) -> None:
        self._options_renamed = self.__dict__.pop("_response_options", None)

    def new_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        renamed(self)

    def new_request(self: Any, *args: Any, **kwargs: Any) -> None:
        request(self, *args, **kwargs)
        renamed(self)

    monkeypatch.setattr(cls, "__init__", new_init)
    monkeypatch.setattr(cls, "request", new_request)


def _break_dns_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def set_host(self: Any, value: str) -> None:
        self._dns_name = value

    def get_host(self: Any) -> str:
        return str(self._dns_name).rstrip(".")

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "host", property(get_host, set_host))


def _break_key_file_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3.util.ssl_

    monkeypatch.delattr(urllib3.util.ssl_, "_is_key_file_encrypted")


def _break_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    original = urllib3.connection.HTTPConnection.set_tunnel

    def set_tunnel(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._tunnel_target = self._tunnel_host
        self._tunnel_host = None

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "set_tunnel", set_tunnel)


HTTP_BREAKERS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "URLLIB3_TUNNEL": _break_tunnel,
    "URLLIB3_TIMEOUT_PARTS": _break_timeout,
    "URLLIB3_POOL_QUEUE": _break_pool_queue,
    "URLLIB3_RESPONSE_OPTIONS": _break_response_options,
    "URLLIB3_DNS_HOST": _break_dns_host,
    "URLLIB3_KEY_FILE_CHECK": _break_key_file_check,
}


@pytest.mark.parametrize("flag", HTTP_BREAKERS)
def test_the_http_check_notices_a_changed_internal(
    flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = _compat.HTTP_PROBES[flag]
    assert _probe._check(probe)
    HTTP_BREAKERS[flag](monkeypatch)
    assert not _probe._check(probe)


def test_a_total_only_urllib3_timeout_is_refused_where_it_cannot_be_read(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stoppable import http

    manager = http.PoolManager()
    url = f"{http_server.url}/ok"
    assert manager.request("GET", url, timeout=urllib3.Timeout(total=LONG)).data == b"ok"
    _force(monkeypatch, "URLLIB3_TIMEOUT_PARTS")
    assert _compat.urllib3_timeout_limits(urllib3.Timeout(total=LONG)) is None
    with pytest.raises(http.InvalidTimeout, match="no \\(connect, read\\) pair"):
        manager.request("GET", url, timeout=urllib3.Timeout(total=LONG))
    assert manager.request("GET", url, timeout=LONG).data == b"ok"  # a number still works
    manager.clear()


@pytest.mark.parametrize("fallback", ["URLLIB3_POOL_QUEUE"], indirect=True)
def test_pool_block_fallback(fallback: str, http_server: Any) -> None:
    from stoppable import http

    url = f"{http_server.url}/ok"
    with http.HTTPConnectionPool(
        "127.0.0.1", http_server.port, maxsize=1, block=True, timeout=LONG
    ) as pool:
        held = pool.urlopen("GET", "/ok", preload_content=False)  # the only connection
        with pytest.raises(http.PoolWaitDeadline):
            pool.urlopen("GET", "/ok", timeout=SHORT)
        stop_while_blocked(lambda stop: pool.urlopen("GET", "/ok", stop=stop))
        with pytest.raises(urllib3.exceptions.EmptyPoolError):  # used directly: its own error
            pool._get_conn(timeout=SHORT)
        thread, outcome = start_call(lambda: pool.urlopen("GET", url))
        wait_until_blocked(thread)
        assert held.read() == b"ok"
        held.release_conn()  # freed: the waiting request gets it
        assert outcome.done.wait(LONG)
        assert outcome.error is None
        assert outcome.result.data == b"ok"
        assert pool.num_connections == 1


@pytest.mark.parametrize("fallback", ["URLLIB3_RESPONSE_OPTIONS"], indirect=True)
def test_response_options_fallback(fallback: str, http_server: Any) -> None:
    from stoppable import http

    manager = http.PoolManager(timeout=LONG)
    assert manager.request("GET", f"{http_server.url}/ok").data == b"ok"  # urllib3 preloads
    streamed = manager.request("GET", f"{http_server.url}/ok", preload_content=False)
    assert streamed.read() == b"ok"
    with pytest.raises(http.ReadDeadline):  # a preload cut short still raises
        manager.request("GET", f"{http_server.url}/drip", timeout=SHORT)
    manager.clear()


@pytest.mark.parametrize("fallback", ["URLLIB3_DNS_HOST"], indirect=True)
def test_dns_host_fallback(fallback: str, http_server: Any) -> None:
    from stoppable import http

    manager = http.PoolManager(timeout=LONG)
    assert manager.request("GET", f"http://localhost:{http_server.port}/ok").data == b"ok"
    manager.clear()


@pytest.mark.parametrize("fallback", ["URLLIB3_KEY_FILE_CHECK"], indirect=True)
def test_key_file_check_fallback(fallback: str, tmp_path: Any) -> None:
    import urllib3.util.ssl_

    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_text(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    plain = tmp_path / "plain.pem"
    plain.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for key in (encrypted, plain):  # the same answers as urllib3's own check
        expected = urllib3.util.ssl_._is_key_file_encrypted(str(key))
        assert _compat.urllib3_key_file_encrypted(str(key)) is expected
    assert _compat.urllib3_key_file_encrypted(str(encrypted)) is True


@pytest.mark.parametrize("fallback", ["URLLIB3_TUNNEL"], indirect=True)
def test_tunnel_fallback_refuses_to_tunnel_and_still_forwards(fallback: str) -> None:
    from stoppable import http

    from .http_servers import HTTPServer
    from .net_servers import tls

    with HTTPServer(proxy=True) as proxy, HTTPServer(tls=True) as target:
        manager = http.ProxyManager(proxy.url, timeout=LONG, ca_certs=tls().ca_path)
        with pytest.raises(
            urllib3.exceptions.ProxySchemeUnsupported, match="cannot open a CONNECT tunnel"
        ):
            manager.request("GET", f"{target.url}/ok")
        assert not [r for r in proxy.requests if r.method == "CONNECT"]  # nothing sent
        forwarded = manager.request("GET", "http://example.test/ok")
        assert forwarded.data == b"proxied http://example.test/ok"
        manager.clear()

"""The private internals in ``stoppable._compat``: each checked, each fallback correct.

For every internal: the check passes on this Python; the check notices when the
internal is broken (so a future Python that changes it takes the fallback instead
of hanging); and the fallback, forced, still gets, puts, waits, stops and times out
correctly (only by polling).
"""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing.pool
import queue
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
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
    futures,
    net,
    queues,
    scope,
    sync,
)

from .support import LONG, SHORT, WAKE_BOUND, start_call, stop_while_blocked, wait_until_blocked

PROBES: dict[str, Callable[[], None]] = {
    "CONDITION_PROTOCOL": _compat._probe_condition,
    "QUEUE_INTERNALS": _compat._probe_queue,
    "SEMAPHORE_INTERNALS": _compat._probe_semaphore,
    "EVENT_COND": _compat._probe_event,
    "POOL_RESULT_EVENT": _compat._probe_pool_result,
    "FUTURE_INTERNALS": _compat._probe_future,
    "SOCKET_ACCEPT": _compat._probe_accept,
    "SOCKET_FILE": _compat._probe_socket_file,
    "EXECUTOR_THREADS": _compat._probe_executor_threads,
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
    assert _compat._check(PROBES[flag])
    breaker(monkeypatch)
    assert not _compat._check(PROBES[flag])


def test_the_shutdown_check_notices_a_queue_that_accepts_puts_after_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(queue.Queue, "shutdown"):
        pytest.skip("Queue.shutdown() is new in Python 3.13")
    assert _compat._check(_compat._probe_shutdown)
    monkeypatch.setattr(queue.Queue, "put_nowait", lambda self, item: None)
    assert not _compat._check(_compat._probe_shutdown)


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


@pytest.fixture
def fallback(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Force the fallback named by the test's parameter, with a short poll slice."""
    flag: str = request.param
    monkeypatch.setattr(_compat, flag, False)
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

    monkeypatch.setattr(_compat, "_socket", SimpleNamespace(socket=no_fileno))
    assert not _compat._check(_compat._probe_bare_socket)


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


# --- the internals of net and futures ------------------------------------------------------


def test_the_future_done_states_are_known_here_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import _base

    assert {_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED} == (
        _compat.FUTURE_DONE_STATES
    )
    assert _futwait._INTERNALS
    assert _compat._check(_compat._probe_future_states)

    def cancel(self: Future[Any]) -> bool:
        self._state = "GONE"
        return True

    monkeypatch.setattr(Future, "cancel", cancel)
    assert not _compat._check(_compat._probe_future_states)


def test_the_wait_result_type_is_the_standard_one_or_the_same_of_our_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import _base

    assert _compat.DONE_AND_NOT_DONE is _base.DoneAndNotDoneFutures
    monkeypatch.setattr(concurrent.futures, "wait", lambda fs, timeout=None: (set(), set()))
    ours = _compat._wait_result_type()
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
            assert isinstance(f, _compat._SocketFile)
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
    assert not _compat._open_files  # nothing left counted


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

"""Huge timeouts, descriptors bounded by use, deep child chains, Queue.shutdown()."""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import resource
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

import stoppable
from stoppable import StopEvent, Stopped, futures, http, net, process, queues, sync

from .http_servers import HTTPServer
from .support import (
    LONG,
    SHORT,
    WAKE_BOUND,
    open_fds,
    start_call,
    stop_while_blocked,
    wait_until,
    wait_until_blocked,
)

# --- any finite timeout is a wait ----------------------------------------------------

HUGE = [1e10, 1e300, 10**12]


def _blocked_calls() -> dict[str, Callable[[StopEvent, Any], object]]:
    """Calls that block until stopped, each given a stop and a (huge) timeout."""

    def queue_get(stop: StopEvent, timeout: Any) -> object:
        return queues.get(queue.Queue(), timeout=timeout, stop=stop)

    def queue_put(stop: StopEvent, timeout: Any) -> object:
        q: queue.Queue[int] = queue.Queue(maxsize=1)
        q.put_nowait(0)
        queues.put(q, 1, timeout=timeout, stop=stop)
        return None

    def lock(stop: StopEvent, timeout: Any) -> object:
        held = threading.Lock()
        held.acquire(False)
        return sync.acquire(held, timeout=timeout, stop=stop)

    def semaphore(stop: StopEvent, timeout: Any) -> object:
        return sync.acquire(threading.Semaphore(0), timeout=timeout, stop=stop)

    def event(stop: StopEvent, timeout: Any) -> object:
        return sync.wait(threading.Event(), timeout=timeout, stop=stop)

    def condition(stop: StopEvent, timeout: Any) -> object:
        cond = threading.Condition()
        with cond:
            return sync.wait(cond, timeout=timeout, stop=stop)

    def barrier(stop: StopEvent, timeout: Any) -> object:
        return sync.wait(threading.Barrier(2), timeout=timeout, stop=stop)

    def join(stop: StopEvent, timeout: Any) -> object:
        done = threading.Event()
        thread = threading.Thread(target=lambda: done.wait(LONG), daemon=True)
        thread.start()
        try:
            sync.join(thread, timeout=timeout, stop=stop)
            return None
        finally:
            done.set()

    def future_result(stop: StopEvent, timeout: Any) -> object:
        return futures.result(Future(), timeout=timeout, stop=stop)

    def future_wait(stop: StopEvent, timeout: Any) -> object:
        return futures.wait([Future()], timeout=timeout, stop=stop)

    def as_completed(stop: StopEvent, timeout: Any) -> object:
        return list(futures.as_completed([Future()], timeout=timeout, stop=stop))

    def recv(stop: StopEvent, timeout: Any) -> object:
        a, b = socket.socketpair()
        with a, b:
            return net.recv(a, 10, timeout=timeout, stop=stop)

    def process_wait(stop: StopEvent, timeout: Any) -> object:
        with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as child:
            try:
                return process.wait(child, timeout=timeout, stop=stop, kill_after=0)
            finally:
                assert child.poll() is not None  # ended and reaped by the stop only

    def process_run(stop: StopEvent, timeout: Any) -> object:
        args = [sys.executable, "-c", "import time; time.sleep(60)"]
        return process.run(args, timeout=timeout, stop=stop, kill_after=0)

    return {
        "queues.get": queue_get,
        "queues.put": queue_put,
        "sync.acquire(Lock)": lock,
        "sync.acquire(Semaphore)": semaphore,
        "sync.wait(Event)": event,
        "sync.wait(Condition)": condition,
        "sync.wait(Barrier)": barrier,
        "sync.join": join,
        "futures.result": future_result,
        "futures.wait": future_wait,
        "futures.as_completed": as_completed,
        "net.recv": recv,
        "process.wait": process_wait,
        "process.run": process_run,
    }


BLOCKED = _blocked_calls()


@pytest.mark.parametrize("timeout", HUGE, ids=repr)
@pytest.mark.parametrize("name", BLOCKED)
def test_a_huge_timeout_is_a_wait_ended_by_the_stop(name: str, timeout: Any) -> None:
    stop_while_blocked(lambda stop: BLOCKED[name](stop, timeout))


@pytest.mark.parametrize("timeout", HUGE, ids=repr)
def test_a_huge_timeout_in_an_http_request(timeout: Any) -> None:
    with HTTPServer() as server:
        stop_while_blocked(
            lambda stop: http.get(server.url + "/silent", timeout=timeout, stop=stop)
        )


@pytest.mark.parametrize("timeout", HUGE, ids=repr)
def test_a_huge_timeout_in_stop_event_wait(timeout: Any) -> None:
    event = StopEvent()
    thread, outcome = start_call(lambda: event.wait(timeout))
    wait_until_blocked(thread)
    event.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result is True, outcome.error


@pytest.mark.parametrize("timeout", HUGE, ids=repr)
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_huge_shutdown_timeout(kind: str, timeout: Any) -> None:
    pool: Any = (
        futures.ThreadPoolExecutor(max_workers=1)
        if kind == "threads"
        else futures.ProcessPoolExecutor(max_workers=1, kill_after=timeout)
    )
    with pool:
        assert futures.result(pool.submit(abs, -1), timeout=timeout) == 1
        pool.shutdown(timeout=timeout)


@pytest.mark.parametrize("timeout", HUGE, ids=repr)
def test_a_huge_timeout_is_returned_at_once_when_ready(timeout: Any) -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    q.put(2)
    assert queues.get(q, timeout=timeout) == 1
    with stoppable.scope(timeout=timeout):
        assert queues.get(q, timeout=timeout) == 2


@pytest.mark.parametrize("where", ["queues.get", "scope", "set_poll_interval", "process.run"])
def test_a_timeout_no_float_can_hold_is_refused_naming_it(where: str) -> None:
    big = 10**400
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    calls: dict[str, Callable[[], object]] = {
        "queues.get": lambda: queues.get(q, timeout=big),
        "scope": lambda: stoppable.scope(timeout=big),
        "set_poll_interval": lambda: stoppable.set_poll_interval(big),
        "process.run": lambda: process.run(["true"], timeout=big),
    }
    name = "seconds" if where == "set_poll_interval" else "timeout"
    with pytest.raises(ValueError, match=name):
        calls[where]()
    assert q.qsize() == 1


# --- descriptors bounded by use -------------------------------------------------------


@pytest.fixture
def low_fd_limit() -> Iterator[int]:
    """``RLIMIT_NOFILE`` lowered to 256 (restored after): a leak reaches it quickly."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert open_fds() < 128, "too many descriptors open already for this test"
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        yield 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The cyclic garbage collector off: only what the library closes itself is closed."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


# More than twice the lowered descriptor limit: one kept descriptor per request would
# run out long before the end.
REQUESTS = 600


@pytest.mark.usefixtures("low_fd_limit", "no_collector")
def test_each_request_with_its_own_stop_holds_no_descriptor_after_it() -> None:
    # One StopEvent per request, kept alive by a reference cycle (as a request that
    # keeps its exception is), with the collector off: the library must have given
    # back every wake-up descriptor when each wait ended.
    kept: list[object] = []
    with HTTPServer() as server, http.Session(timeout=LONG) as session:
        before = open_fds()
        for _ in range(REQUESTS):
            stop = StopEvent()
            response = session.get(server.url + "/ok", stop=stop)
            assert response.status_code == 200
            cycle: dict[str, object] = {"stop": stop, "response": response}
            cycle["self"] = cycle
            kept.append(cycle)
            del cycle, stop, response
        assert open_fds() <= before + 2
    assert len(kept) == REQUESTS


def _wait_in_poll(stop: StopEvent) -> None:
    a, b = socket.socketpair()
    with a, b:
        net.recv(a, 1, timeout=LONG, stop=stop)


def test_a_wait_holds_the_descriptor_only_while_it_waits(no_polling: None) -> None:
    stop = StopEvent()
    before = open_fds()
    thread, outcome = start_call(lambda: _wait_in_poll(stop))
    wait_until(lambda: stop._wakeup is not None, what="the wait to take the descriptor")
    stop.set("done")
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    thread.join(LONG)
    assert stop._wakeup is None
    assert open_fds() == before


def test_many_waits_on_one_stop_share_one_descriptor(no_polling: None) -> None:
    stop = StopEvent()
    before = _eventfds()
    calls = [start_call(lambda: _wait_in_poll(stop)) for _ in range(20)]
    wait_until(lambda: stop._fd_users == 20, what="all the waits")
    assert _eventfds() == before + 1  # one wake-up descriptor for the twenty waits
    stop.set()
    for thread, outcome in calls:
        assert outcome.done.wait(WAKE_BOUND)
        thread.join(LONG)
    assert _eventfds() == before


def _eventfds() -> int:
    """How many eventfds this process has open."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own one)
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[eventfd]"
    return count


def test_fileno_is_kept_until_close_even_while_waits_come_and_go(no_polling: None) -> None:
    stop = StopEvent()
    before = open_fds()
    fd = stop.fileno()
    assert stop.fileno() == fd  # the same one, however often asked
    assert open_fds() == before + 1
    thread, outcome = start_call(lambda: _wait_in_poll(stop))
    wait_until(lambda: stop._fd_users == 2, what="the wait to hold the descriptor")
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    thread.join(LONG)
    # The wait that used it ended; it did not close it under the fileno() caller.
    assert select.select([fd], [], [], 0)[0] == [fd]
    assert open_fds() == before + 1
    stop.close()
    assert open_fds() == before
    stop.close()  # harmless
    again = stop.fileno()
    assert select.select([again], [], [], 0)[0] == [again]  # made after set: readable
    stop.close()
    assert open_fds() == before


@pytest.mark.usefixtures("no_collector")
def test_an_event_freed_with_its_fileno_open_closes_it() -> None:
    before = open_fds()
    stop = StopEvent()
    stop.fileno()
    del stop  # no cycle: freed at once, the collector is not needed
    assert open_fds() == before


def test_close_while_a_wait_uses_it_closes_it_when_the_wait_ends(no_polling: None) -> None:
    stop = StopEvent()
    before = open_fds()
    stop.fileno()
    thread, outcome = start_call(lambda: _wait_in_poll(stop))
    wait_until(lambda: stop._fd_users == 2, what="the wait to hold the descriptor")
    stop.close()
    assert stop._wakeup is not None  # the wait still polls it
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    thread.join(LONG)
    assert stop._wakeup is None
    assert open_fds() == before


# --- deep child chains ----------------------------------------------------------------


def test_setting_a_deep_chain_of_children_sets_them_all() -> None:
    root = StopEvent()
    chain = [root]
    for _ in range(20_000):
        chain.append(chain[-1].child())
    order: list[int] = []
    chain[1].add_callback(lambda: order.append(1))
    chain[-1].add_callback(lambda: order.append(len(chain) - 1))
    root.set("deep")
    assert all(event.is_set() for event in chain)
    assert chain[-1].reason == "deep"
    assert order == [1, len(chain) - 1]


def test_children_are_set_depth_first_after_their_parent_callbacks() -> None:
    root = StopEvent()
    a, b = root.child(), root.child()
    a1 = a.child()
    seen: list[str] = []
    root.add_callback(lambda: seen.append("root"))
    a.add_callback(lambda: seen.append("a"))
    a1.add_callback(lambda: seen.append("a1"))
    b.add_callback(lambda: seen.append("b"))
    root.set()
    assert seen[0] == "root"
    assert sorted(seen) == ["a", "a1", "b", "root"]
    assert seen.index("a") < seen.index("a1")


# --- Queue.shutdown() (Python 3.13) ------------------------------------------------------

needs_shutdown = pytest.mark.skipif(
    not hasattr(queue.Queue, "shutdown"), reason="Queue.shutdown() is new in Python 3.13"
)


@needs_shutdown
def test_get_drains_a_shut_down_queue_then_raises() -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    q.put(2)
    q.shutdown()  # type: ignore[attr-defined]
    assert queues.get(q, timeout=LONG) == 1
    with queues.take(q, timeout=LONG) as item:
        assert item == 2
    with pytest.raises(queue.ShutDown):  # type: ignore[attr-defined]
        queues.get(q, timeout=LONG)


@needs_shutdown
def test_immediate_shutdown_empties_the_queue_and_get_raises() -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    q.shutdown(immediate=True)  # type: ignore[attr-defined]
    with pytest.raises(queue.ShutDown):  # type: ignore[attr-defined]
        queues.get(q, timeout=LONG)


@needs_shutdown
@pytest.mark.parametrize("maxsize", [0, 1])
def test_put_on_a_shut_down_queue_is_refused(maxsize: int) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=maxsize)
    q.shutdown()  # type: ignore[attr-defined]
    with pytest.raises(queue.ShutDown):  # type: ignore[attr-defined]
        queues.put(q, 1, timeout=LONG)
    assert q.qsize() == 0


@needs_shutdown
@pytest.mark.usefixtures("no_polling")
@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_a_blocked_get_at_once(immediate: bool) -> None:
    q: queue.Queue[int] = queue.Queue()
    _thread, outcome = start_call(lambda: queues.get(q, timeout=LONG, stop=StopEvent()))
    wait_until(lambda: q.not_empty._waiters, what="the get to wait")  # type: ignore[attr-defined]
    q.shutdown(immediate=immediate)  # type: ignore[attr-defined]
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, queue.ShutDown)  # type: ignore[attr-defined]


@needs_shutdown
@pytest.mark.usefixtures("no_polling")
def test_shutdown_wakes_a_blocked_put_at_once_without_enqueueing() -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    q.put_nowait(0)
    _thread, outcome = start_call(lambda: queues.put(q, 1, timeout=LONG))
    wait_until(lambda: q.not_full._waiters, what="the put to wait")  # type: ignore[attr-defined]
    q.shutdown()  # type: ignore[attr-defined]
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, queue.ShutDown)  # type: ignore[attr-defined]
    assert list(q.queue) == [0]


@needs_shutdown
def test_a_blocked_get_times_out_as_before_when_not_shut_down() -> None:
    q: queue.Queue[int] = queue.Queue()
    with pytest.raises(queue.Empty):
        queues.get(q, timeout=SHORT)

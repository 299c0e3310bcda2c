"""An exception raised into a blocked wait (Ctrl-C, a signal handler) leaves nothing behind.

A real ``SIGALRM`` handler raises into the main thread while it is blocked inside a
wrapper (the handler checks the interrupted frame, and re-arms the timer until the
thread is really blocked there). Afterwards the waited-on object must be as the
standard library would leave it: no waiter left in its condition's queue, so a
plain standard-library waiter in another thread is still woken by the next
``notify()``/``put()``/``release()``.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from types import FrameType
from typing import Any

import pytest

from stoppable import StopEvent, futures, queues, sync

from .support import LONG, WAKE_BOUND, start_call, wait_until_blocked

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers run in the main thread only",
)


class Interrupted(Exception):
    """What the signal handler raises into the blocked wait."""


def _in_wait(frame: FrameType | None) -> bool:
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return "wait_condition" in names


@pytest.fixture(params=[Interrupted, KeyboardInterrupt])
def alarm(request: pytest.FixtureRequest) -> Iterator[type[BaseException]]:
    """A SIGALRM that raises ``request.param`` once the main thread is blocked in a wait."""
    error: type[BaseException] = request.param

    def handler(signum: int, frame: FrameType | None) -> None:
        if _in_wait(frame):
            raise error("interrupted by SIGALRM")
        signal.setitimer(signal.ITIMER_REAL, 0.01)  # not blocked yet: try again soon

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        yield error
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _interrupt(error: type[BaseException], wait: Callable[[], object]) -> None:
    with pytest.raises(error):
        wait()


def _plain_waiter_is_woken(blocked_call: Callable[[], Any], wake: Callable[[], object]) -> Any:
    """Run a standard-library wait in a thread, wake it the standard way: it must end."""
    thread, outcome = start_call(blocked_call, name="plain-waiter")
    wait_until_blocked(thread)
    wake()
    assert outcome.done.wait(WAKE_BOUND), "a plain waiter was not woken: a dead waiter got it"
    assert outcome.error is None, outcome.error
    return outcome.result


def test_queue_get(alarm: type[BaseException]) -> None:
    q: queue.Queue[int] = queue.Queue()
    _interrupt(alarm, lambda: queues.get(q, timeout=LONG, stop=StopEvent()))
    assert not q.not_empty._waiters  # type: ignore[attr-defined]
    assert _plain_waiter_is_woken(lambda: q.get(timeout=LONG), lambda: q.put(1)) == 1


def test_queue_take(alarm: type[BaseException]) -> None:
    q: queue.Queue[int] = queue.Queue()
    _interrupt(alarm, lambda: queues.take(q, timeout=LONG).__enter__())
    assert not q.not_empty._waiters  # type: ignore[attr-defined]
    assert _plain_waiter_is_woken(lambda: q.get(timeout=LONG), lambda: q.put(1)) == 1


def test_queue_put(alarm: type[BaseException]) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    q.put_nowait(0)
    _interrupt(alarm, lambda: queues.put(q, 1, timeout=LONG))
    assert not q.not_full._waiters  # type: ignore[attr-defined]
    assert list(q.queue) == [0]  # not enqueued
    _plain_waiter_is_woken(lambda: q.put(2, timeout=LONG), q.get)
    assert list(q.queue) == [2]


def test_semaphore_acquire(alarm: type[BaseException]) -> None:
    semaphore = threading.Semaphore(0)
    _interrupt(alarm, lambda: sync.acquire(semaphore, timeout=LONG))
    assert not semaphore._cond._waiters  # type: ignore[attr-defined]
    assert _plain_waiter_is_woken(lambda: semaphore.acquire(timeout=LONG), semaphore.release)
    assert not semaphore.acquire(blocking=False)  # the release went to the waiter only


def test_event_wait(alarm: type[BaseException]) -> None:
    event = threading.Event()
    _interrupt(alarm, lambda: sync.wait(event, timeout=LONG))
    assert not event._cond._waiters  # type: ignore[attr-defined]
    assert _plain_waiter_is_woken(lambda: event.wait(LONG), event.set)


def test_condition_wait_for(alarm: type[BaseException]) -> None:
    cond = threading.Condition()
    flag: list[int] = []

    def stoppable_wait() -> None:
        with cond:
            sync.wait(cond, timeout=LONG, predicate=lambda: flag)

    _interrupt(alarm, stoppable_wait)
    assert not cond._waiters  # type: ignore[attr-defined]

    def plain_wait() -> bool:
        with cond:
            return cond.wait(LONG)

    def notify_one() -> None:
        with cond:
            cond.notify()

    assert _plain_waiter_is_woken(plain_wait, notify_one)


def test_future_result(alarm: type[BaseException]) -> None:
    future: Future[int] = Future()
    _interrupt(alarm, lambda: futures.result(future, timeout=LONG))
    assert not future._condition._waiters  # type: ignore[attr-defined]
    future.set_result(3)
    assert future.result(0) == 3


def test_join_of_a_stoppable_thread(alarm: type[BaseException]) -> None:
    release = threading.Event()
    thread = sync.Thread(target=lambda stop: release.wait(LONG))
    thread.start()
    try:
        _interrupt(alarm, lambda: sync.join(thread, timeout=LONG))
        assert not thread._ran._cond._waiters  # type: ignore[attr-defined]
    finally:
        release.set()
        sync.join(thread, timeout=LONG)

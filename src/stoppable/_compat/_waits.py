"""The internals of waiting on a ``threading`` or ``queue`` object, or a ``Future``.

``Condition``'s waiter protocol, ``Queue``'s hooks and conditions, the conditions
behind ``Semaphore`` and ``Event``, ``concurrent.futures``' ``Future`` states, the
type ``wait()`` returns and ``ThreadPoolExecutor``'s threads (table in ``_compat``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ._probe import _check

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

"""stoppable.sync: locks, events, conditions, barriers, joins and Thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from stoppable import DeadlineExceeded, StopEvent, Stopped, queues, sync

from .support import LONG, SHORT, WAKE_BOUND, start_call, wait_until, wait_until_blocked

LOCK_KINDS: list[Callable[[], Any]] = [
    threading.Lock,
    threading.RLock,
    threading.Semaphore,
    threading.BoundedSemaphore,
]


def _is_free(lock: Any) -> bool:
    """Whether another thread could take ``lock`` right now (and leave it as it was)."""
    result: list[bool] = []

    def probe() -> None:
        got = lock.acquire(False)
        if got:
            lock.release()
        result.append(got)

    prober = threading.Thread(target=probe)
    prober.start()
    prober.join(LONG)
    return result[0]


# --- acquire --------------------------------------------------------------------


@pytest.mark.parametrize("make", LOCK_KINDS)
def test_acquire_as_a_context_manager_releases_however_the_block_ends(
    make: Callable[[], Any],
) -> None:
    lock = make()
    with sync.acquire(lock, timeout=1) as held:
        assert isinstance(held, sync.Held)
        assert not _is_free(lock)
    assert _is_free(lock)
    with pytest.raises(ValueError, match="inside"), sync.acquire(lock, timeout=1):
        raise ValueError("inside")
    assert _is_free(lock)


def test_acquire_without_with_holds_until_release() -> None:
    lock = threading.Lock()
    held = sync.acquire(lock, timeout=1)
    assert lock.locked()
    held.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="twice"):
        held.release()


@pytest.mark.parametrize("make", LOCK_KINDS)
def test_acquire_times_out_without_holding(make: Callable[[], Any]) -> None:
    lock = make()
    lock.acquire()
    holder_release = threading.Event()
    if type(lock) is type(threading.RLock()):
        # An RLock is re-entrant for its owner: hold it from another thread.
        lock.release()

        def hold() -> None:
            with lock:
                holder_release.wait(LONG)

        holder = threading.Thread(target=hold)
        holder.start()
        wait_until(lambda: not _is_free(lock))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="lock acquire timed out"):
        sync.acquire(lock, timeout=SHORT)
    assert SHORT <= time.monotonic() - started < SHORT + WAKE_BOUND
    holder_release.set()


@pytest.mark.parametrize("make", LOCK_KINDS)
@pytest.mark.parametrize("stop_kind", [StopEvent, threading.Event])
def test_a_waiter_stopped_while_waiting_for_a_lock_never_holds_it(
    make: Callable[[], Any], stop_kind: Callable[[], Any], fast_polling: None
) -> None:
    lock = make()
    lock.acquire()
    stop = stop_kind()
    thread, outcome = start_call(lambda: sync.acquire(lock, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    lock.release()
    assert _is_free(lock)  # the stopped waiter did not take it on its way out


def test_semaphore_wait_is_woken_without_polling(no_polling: None) -> None:
    semaphore = threading.BoundedSemaphore(1)
    semaphore.acquire(timeout=LONG)
    stop = StopEvent()
    thread, outcome = start_call(lambda: sync.acquire(semaphore, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    # And a release still reaches a waiter, and the bound is kept.
    thread, outcome = start_call(lambda: sync.acquire(semaphore, timeout=LONG))
    wait_until_blocked(thread)
    semaphore.release()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.result, sync.Held)
    outcome.result.release()
    with pytest.raises(ValueError, match="released too many times"):
        semaphore.release()


def test_stopped_lock_waiters_under_contention_never_leak_the_lock(fast_polling: None) -> None:
    lock = threading.Lock()
    counter = [0]
    stops = [StopEvent() for _ in range(8)]

    def worker(stop: StopEvent) -> None:
        try:
            while True:
                with sync.acquire(lock, timeout=LONG, stop=stop):
                    counter[0] += 1
        except Stopped:
            pass

    threads = [threading.Thread(target=worker, args=(stop,)) for stop in stops]
    for thread in threads:
        thread.start()
    for point, stop in enumerate(stops, start=1):
        wait_until(lambda point=point: counter[0] >= point * 200)  # type: ignore[misc]
        stop.set()
    for thread in threads:
        thread.join(LONG)
    assert not lock.locked()


# --- wait: events, conditions, barriers -----------------------------------------


@pytest.mark.parametrize("make", [threading.Event, StopEvent])
def test_wait_for_an_event(make: Callable[[], Any], no_polling: None) -> None:
    event = make()
    thread, outcome = start_call(lambda: sync.wait(event, timeout=LONG, stop=StopEvent()))
    wait_until_blocked(thread)
    event.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result is True
    with pytest.raises(DeadlineExceeded, match="event wait timed out"):
        sync.wait(make(), timeout=0)


@pytest.mark.parametrize("make", [threading.Event, StopEvent])
def test_event_wait_is_woken_by_a_stop_without_polling(
    make: Callable[[], Any], no_polling: None
) -> None:
    stop = StopEvent()
    thread, outcome = start_call(lambda: sync.wait(make(), timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_waiting_on_the_stop_itself_raises_stopped() -> None:
    stop = StopEvent()
    thread, outcome = start_call(lambda: sync.wait(stop, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_condition_with_a_predicate_returns_its_value(no_polling: None) -> None:
    cond = threading.Condition()
    box: list[str] = []

    def wait_for_box() -> str:
        with cond:
            return sync.wait(cond, timeout=LONG, predicate=lambda: box[0] if box else "")

    thread, outcome = start_call(wait_for_box)
    wait_until_blocked(thread)
    with cond:
        cond.notify_all()  # a wake-up with the predicate still false: keep waiting
    with cond:
        box.append("full")
        cond.notify()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result == "full"


def test_condition_without_a_predicate_returns_on_notify(no_polling: None) -> None:
    cond = threading.Condition(threading.RLock())

    def wait_once() -> bool:
        with cond, cond:  # held twice (RLock): wait releases both levels
            return sync.wait(cond, timeout=LONG, stop=StopEvent())

    thread, outcome = start_call(wait_once)
    wait_until_blocked(thread)
    with cond:
        cond.notify()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result is True


def test_condition_wait_stopped_and_timed_out(no_polling: None) -> None:
    cond = threading.Condition()
    stop = StopEvent()

    def wait_stopped() -> bool:
        with cond:
            return sync.wait(cond, timeout=LONG, stop=stop, predicate=lambda: False)

    thread, outcome = start_call(wait_stopped)
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    with cond, pytest.raises(DeadlineExceeded, match="condition wait"):
        sync.wait(cond, timeout=SHORT)


def test_condition_wait_needs_the_lock() -> None:
    with pytest.raises(RuntimeError, match="un-acquired"):
        sync.wait(threading.Condition(), timeout=1)


def test_predicate_only_for_conditions() -> None:
    with pytest.raises(TypeError, match="predicate"):
        sync.wait(threading.Event(), timeout=1, predicate=lambda: True)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="waitable"):
        sync.wait(threading.Lock(), timeout=1)  # type: ignore[call-overload]


def test_barrier_passes_and_returns_the_index() -> None:
    barrier = threading.Barrier(3)
    calls = [start_call(lambda: sync.wait(barrier, timeout=LONG)) for _ in range(2)]
    index = sync.wait(barrier, timeout=LONG)
    for _, outcome in calls:
        assert outcome.done.wait(WAKE_BOUND)
    assert sorted([index, *(outcome.result for _, outcome in calls)]) == [0, 1, 2]


@pytest.mark.parametrize("stop_kind", [StopEvent, threading.Event])
def test_a_stop_aborts_the_barrier_for_every_party(
    stop_kind: Callable[[], Any], fast_polling: None
) -> None:
    threads_before = threading.active_count()  # others' long-lived helpers included
    barrier = threading.Barrier(3)
    stop = stop_kind()
    _, stopped = start_call(lambda: sync.wait(barrier, timeout=LONG, stop=stop))
    _, other = start_call(lambda: sync.wait(barrier, timeout=LONG))
    wait_until(lambda: barrier.n_waiting == 2)
    stop.set()
    assert stopped.done.wait(WAKE_BOUND)
    assert other.done.wait(WAKE_BOUND)
    assert isinstance(stopped.error, Stopped)
    assert isinstance(other.error, threading.BrokenBarrierError)
    assert barrier.broken
    # The two callers and the polled stop's watcher are gone.
    wait_until(lambda: threading.active_count() <= threads_before, what="threads to end")


def test_barrier_timeout_is_both_deadline_and_broken_barrier() -> None:
    barrier = threading.Barrier(2)
    with pytest.raises(threading.BrokenBarrierError) as info:
        sync.wait(barrier, timeout=SHORT)
    assert isinstance(info.value, sync.BarrierDeadline)
    assert isinstance(info.value, DeadlineExceeded)
    assert barrier.broken


# --- join -----------------------------------------------------------------------


def test_join_a_plain_thread() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(LONG,))
    thread.start()
    with pytest.raises(DeadlineExceeded, match="join of thread"):
        sync.join(thread, timeout=SHORT)
    release.set()
    sync.join(thread, timeout=LONG)
    assert not thread.is_alive()


def test_join_is_stopped_within_a_slice(fast_polling: None) -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(LONG,))
    thread.start()
    stop = StopEvent()
    joiner, outcome = start_call(lambda: sync.join(thread, timeout=LONG, stop=stop))
    wait_until_blocked(joiner)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    release.set()
    thread.join(LONG)


def test_join_refuses_what_thread_join_refuses() -> None:
    with pytest.raises(RuntimeError, match="before it is started"):
        sync.join(threading.Thread(target=lambda: None), timeout=1)
    with pytest.raises(RuntimeError, match="current thread"):
        sync.join(threading.current_thread(), timeout=1)


# --- Thread ---------------------------------------------------------------------


def test_thread_hands_its_stop_to_the_target_and_ends_quietly(no_polling: None) -> None:
    seen: list[StopEvent] = []
    q: Any = __import__("queue").Queue()

    def work(label: str, *, stop: StopEvent) -> None:
        seen.append(stop)
        queues.get(q, timeout=LONG)  # no stop passed: the thread's scope supplies it

    thread = sync.Thread(target=work, args=("x",), name="worker")
    thread.start()
    wait_until_blocked(thread)
    started = time.monotonic()
    thread.stop_and_join(timeout=LONG, reason="test")
    assert time.monotonic() - started < WAKE_BOUND
    assert seen == [thread.stop]
    assert thread.stopped is not None
    assert thread.stopped.reason == "test"


def test_thread_stop_is_a_child_of_its_parent() -> None:
    parent = StopEvent()
    threads = [sync.Thread(target=lambda stop: stop.wait(LONG), parent=parent) for _ in range(3)]
    for thread in threads:
        thread.start()
    parent.set("all")
    for thread in threads:
        sync.join(thread, timeout=LONG)
        assert thread.stop.reason == "all"
    with pytest.raises(TypeError, match="parent"):
        sync.Thread(parent=threading.Event())  # type: ignore[arg-type]


def test_thread_that_ignores_its_stop_is_reported_by_a_timeout() -> None:
    release = threading.Event()
    thread = sync.Thread(target=lambda stop: release.wait(LONG))
    thread.start()
    with pytest.raises(DeadlineExceeded):
        thread.stop_and_join(timeout=SHORT)
    release.set()
    sync.join(thread, timeout=LONG)


def test_thread_errors_still_reach_excepthook(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[type[BaseException] | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_type))

    def fail(*, stop: StopEvent) -> None:
        raise ValueError("boom")

    thread = sync.Thread(target=fail)
    thread.start()
    sync.join(thread, timeout=LONG)
    assert reported == [ValueError]
    assert thread.stopped is None


def test_subclass_with_its_own_run_is_joined_by_polling(fast_polling: None) -> None:
    class Worker(sync.Thread):
        def run(self) -> None:
            self.stop.wait(LONG)

    worker = Worker()
    worker.start()
    worker.stop_and_join(timeout=LONG)
    assert not worker.is_alive()

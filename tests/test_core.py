"""The core: StopEvent, errors, argument validation, scopes, the waiting loop."""

from __future__ import annotations

import gc
import logging
import pickle
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped, checkpoint, queues, scope, sync

from .support import BAD_TIMEOUTS, LONG, SHORT, WAKE_BOUND, open_fds, start_call, wait_until_blocked

# --- StopEvent ------------------------------------------------------------------


def test_stop_event_behaves_like_threading_event() -> None:
    stop = StopEvent()
    assert not stop.is_set()
    assert stop.wait(0) is False
    assert stop.wait(0.01) is False
    stop.set()
    assert stop.is_set()
    assert stop.wait() is True
    assert stop.wait(0) is True


def test_first_reason_wins() -> None:
    stop = StopEvent()
    assert stop.reason is None
    stop.set(reason="shutdown")
    stop.set(reason="again")
    assert stop.reason == "shutdown"
    assert "shutdown" in repr(stop)


def test_set_without_reason_keeps_none_and_later_reason_is_ignored() -> None:
    stop = StopEvent()
    stop.set()
    stop.set(reason="late")
    assert stop.reason is None


def test_wait_is_woken_by_set_from_another_thread() -> None:
    stop = StopEvent()
    thread, outcome = start_call(lambda: stop.wait(LONG))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result is True


def test_callbacks_run_once_in_order() -> None:
    stop = StopEvent()
    calls: list[str] = []
    stop.add_callback(lambda: calls.append("a"))
    stop.add_callback(lambda: calls.append("b"))
    stop.set()
    stop.set()
    assert calls == ["a", "b"]


def test_callback_added_after_set_runs_at_once_and_its_error_propagates() -> None:
    stop = StopEvent()
    stop.set()
    calls: list[int] = []
    stop.add_callback(lambda: calls.append(1)).remove()  # remove() after the run: harmless
    assert calls == [1]
    with pytest.raises(ZeroDivisionError):
        stop.add_callback(lambda: 1 / 0)


def test_removed_callback_does_not_run() -> None:
    stop = StopEvent()
    calls: list[int] = []
    handle = stop.add_callback(lambda: calls.append(1))
    handle.remove()
    handle.remove()
    with stop.add_callback(lambda: calls.append(2)):
        pass
    stop.set()
    assert calls == []
    assert stop._callback_count() == 0


def test_failing_callback_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    stop = StopEvent()
    calls: list[int] = []
    stop.add_callback(lambda: 1 / 0)
    stop.add_callback(lambda: calls.append(1))
    with caplog.at_level(logging.ERROR, logger="stoppable"):
        stop.set()
    assert calls == [1]
    assert "ZeroDivisionError" in caplog.text


def test_child_is_stopped_by_parent_not_the_reverse() -> None:
    parent = StopEvent()
    child = parent.child()
    grandchild = child.child()
    sibling = parent.child()
    sibling.set("sibling only")
    assert not parent.is_set()
    assert not child.is_set()
    parent.set("parent")
    assert child.is_set()
    assert grandchild.is_set()
    assert grandchild.reason == "parent"
    assert sibling.reason == "sibling only"


def test_child_of_a_set_event_is_set() -> None:
    parent = StopEvent()
    parent.set("done")
    assert parent.child().reason == "done"


def test_parent_holds_children_weakly() -> None:
    parent = StopEvent()
    for _ in range(100):
        parent.child()
    gc.collect()
    assert parent._children is not None
    assert len(parent._children) == 0


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_fileno_becomes_readable_when_set_and_stays_readable() -> None:
    stop = StopEvent()
    fd = stop.fileno()
    assert stop.fileno() == fd
    assert not _readable(fd)
    stop.set()
    assert _readable(fd)
    assert _readable(fd)


def test_fileno_made_after_set_is_readable() -> None:
    stop = StopEvent()
    stop.set()
    assert _readable(stop.fileno())


def test_fileno_is_closed_when_the_event_is_freed() -> None:
    before = open_fds()
    events = [StopEvent() for _ in range(50)]
    for event in events:
        event.fileno()
    assert open_fds() >= before + 50
    del events, event
    gc.collect()
    assert open_fds() <= before


# --- errors ---------------------------------------------------------------------


def test_stopped_is_not_an_exception_so_except_exception_cannot_swallow_it() -> None:
    assert issubclass(Stopped, BaseException)
    assert not issubclass(Stopped, Exception)
    error = Stopped("bye")
    assert error.reason == "bye"
    assert str(error) == "stopped: bye"
    assert str(Stopped()) == "stopped"


def test_deadline_exceeded_is_a_timeout_error_and_socket_timeout() -> None:
    error = DeadlineExceeded("x timed out after 1 s", timeout=1.0)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, socket.timeout)
    assert str(error) == "x timed out after 1 s"


@pytest.mark.parametrize(
    "error", [DeadlineExceeded, queues.QueueEmptyDeadline, sync.BarrierDeadline]
)
def test_deadline_errors_pickle(error: type[DeadlineExceeded]) -> None:
    copy = pickle.loads(pickle.dumps(error("op timed out after 2 s", timeout=2.0)))
    assert type(copy) is error
    assert copy.timeout == 2.0
    assert str(copy) == "op timed out after 2 s"


def test_stopped_pickles_with_its_reason() -> None:
    copy = pickle.loads(pickle.dumps(Stopped("reason")))
    assert copy.reason == "reason"


# --- argument validation --------------------------------------------------------


@dataclass
class Wrappers:
    """Every core-family wrapper, ready to call with one timeout and stop."""

    calls: dict[str, Callable[[], object]]
    q: queue.Queue[int]
    lock: threading.Lock


def wrappers(timeout: Any, stop: Any = None) -> Wrappers:
    """The wrappers, on a queue holding one item, a free lock, a set event, a joined thread."""
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    lock = threading.Lock()
    event = threading.Event()
    event.set()
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join(LONG)
    calls: dict[str, Callable[[], object]] = {
        "queues.get": lambda: queues.get(q, timeout=timeout, stop=stop),
        "queues.put": lambda: queues.put(q, 2, timeout=timeout, stop=stop),
        "queues.take": lambda: queues.take(q, timeout=timeout, stop=stop).__enter__(),
        "sync.acquire": lambda: sync.acquire(lock, timeout=timeout, stop=stop),
        "sync.wait": lambda: sync.wait(event, timeout=timeout, stop=stop),
        "sync.join": lambda: sync.join(thread, timeout=timeout, stop=stop),
    }
    return Wrappers(calls, q, lock)


@pytest.mark.parametrize(("bad", "error"), BAD_TIMEOUTS, ids=repr)
def test_every_bad_timeout_is_refused_before_any_io(bad: object, error: type[Exception]) -> None:
    setup = wrappers(bad)
    for name, call in setup.calls.items():
        with pytest.raises(error, match="timeout"):
            call()
        # Nothing happened: the item is still queued, nothing was put, the lock is free.
        assert setup.q.qsize() == 1, name
        assert not setup.lock.locked(), name


def test_missing_timeout_is_a_type_error_naming_it() -> None:
    q: queue.Queue[int] = queue.Queue()
    with pytest.raises(TypeError, match="timeout"):
        queues.get(q)  # type: ignore[call-arg]


def test_timeout_is_keyword_only() -> None:
    q: queue.Queue[int] = queue.Queue()
    with pytest.raises(TypeError):
        queues.get(q, 1)  # type: ignore[call-arg]


@pytest.mark.parametrize("good", [0, 0.0, 1, 2.5, Fraction(1, 2)])
def test_good_timeouts_are_accepted(good: object) -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    assert queues.get(q, timeout=good) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", 1, object(), True])
def test_bad_stop_is_refused_naming_it(bad: object) -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    with pytest.raises(TypeError, match="stop"):
        queues.get(q, timeout=1, stop=bad)  # type: ignore[arg-type]
    assert q.qsize() == 1


def test_bad_scope_arguments() -> None:
    with pytest.raises(TypeError, match="timeout, a stop"):
        scope()
    with pytest.raises(ValueError, match="timeout"):
        scope(timeout=-1)
    with pytest.raises(TypeError, match="stop"):
        scope(stop="no")  # type: ignore[arg-type]


def test_poll_interval_is_validated_and_restorable() -> None:
    with pytest.raises(ValueError, match="seconds"):
        stoppable.set_poll_interval(0)
    with pytest.raises(TypeError, match="seconds"):
        stoppable.set_poll_interval(None)  # type: ignore[arg-type]
    previous = stoppable.set_poll_interval(0.02)
    try:
        assert stoppable.get_poll_interval() == 0.02
    finally:
        stoppable.set_poll_interval(previous)


# --- stops are level-triggered --------------------------------------------------


@pytest.mark.parametrize("kind", [StopEvent, threading.Event])
def test_a_set_stop_makes_every_later_call_raise_at_once(kind: type[StopEvent]) -> None:
    stop = kind()
    stop.set()
    setup = wrappers(LONG, stop)
    for name, call in setup.calls.items():
        with pytest.raises(Stopped):
            call()
        assert setup.q.qsize() == 1, name
        assert not setup.lock.locked(), name


def test_stopped_carries_the_reason() -> None:
    stop = StopEvent()
    stop.set(reason="SIGTERM")
    with pytest.raises(Stopped) as info:
        queues.get(queue.Queue(), timeout=1, stop=stop)
    assert info.value.reason == "SIGTERM"


# --- scopes ---------------------------------------------------------------------


def _elapsed_until_timeout(
    timeout: float, q: queue.Queue[int] | None = None
) -> tuple[float, DeadlineExceeded]:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        queues.get(queue.Queue() if q is None else q, timeout=timeout)
    return time.monotonic() - started, info.value


def test_scope_deadline_cuts_a_longer_timeout() -> None:
    with scope(timeout=SHORT) as block:
        assert block.deadline is not None
        elapsed, error = _elapsed_until_timeout(LONG)
    assert SHORT <= elapsed < SHORT + WAKE_BOUND
    assert "enclosing stoppable.scope" in str(error)
    assert error.timeout == SHORT


def test_explicit_timeout_shorter_than_the_scope_wins() -> None:
    with scope(timeout=LONG):
        elapsed, error = _elapsed_until_timeout(SHORT)
    assert SHORT <= elapsed < SHORT + WAKE_BOUND
    assert str(error) == f"queue get timed out after {SHORT:g} s"


def test_nested_scopes_take_the_earliest_deadline() -> None:
    with scope(timeout=SHORT) as outer, scope(timeout=LONG) as inner:
        assert inner.deadline == outer.deadline
        elapsed, _ = _elapsed_until_timeout(LONG)
    assert elapsed < SHORT + WAKE_BOUND
    with scope(timeout=LONG), scope(timeout=SHORT):
        elapsed, _ = _elapsed_until_timeout(LONG)
    assert elapsed < SHORT + WAKE_BOUND


def test_scope_is_removed_on_exit() -> None:
    with scope(timeout=0):
        pass
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    assert queues.get(q, timeout=LONG) == 1
    assert scope(timeout=1).remaining() is None


def test_scope_remaining_counts_down() -> None:
    with scope(timeout=LONG) as block:
        remaining = block.remaining()
        assert remaining is not None
        assert 0 < remaining <= LONG
    with scope(timeout=0) as block:
        assert block.remaining() == 0.0


def test_scope_cannot_be_entered_twice() -> None:
    block = scope(timeout=1)
    with block, pytest.raises(RuntimeError), block:
        pass


@pytest.mark.parametrize("kind", [StopEvent, threading.Event])
def test_scope_stop_applies_to_calls_without_a_stop(kind: type[StopEvent]) -> None:
    stop = kind()
    q: queue.Queue[int] = queue.Queue()

    def call() -> int:
        with scope(stop=stop):
            return queues.get(q, timeout=LONG)

    thread, outcome = start_call(call)
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


@pytest.mark.parametrize("which", ["outer", "inner", "explicit"])
def test_explicit_stop_and_every_scope_stop_all_apply(which: str) -> None:
    stops = {name: StopEvent() for name in ("outer", "inner", "explicit")}
    q: queue.Queue[int] = queue.Queue()

    def call() -> int:
        with scope(stop=stops["outer"]), scope(stop=stops["inner"]):
            return queues.get(q, timeout=LONG, stop=stops["explicit"])

    thread, outcome = start_call(call)
    wait_until_blocked(thread)
    stops[which].set(reason=which)
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert outcome.error.reason == which
    assert q.qsize() == 0
    assert all(stop._callback_count() == 0 for stop in stops.values())


def test_scopes_belong_to_their_thread() -> None:
    stop = StopEvent()
    stop.set()
    in_scope = threading.Event()
    leave = threading.Event()

    def hold_scope() -> None:
        with scope(timeout=0, stop=stop):
            in_scope.set()
            leave.wait(LONG)

    holder = threading.Thread(target=hold_scope)
    holder.start()
    in_scope.wait(LONG)
    try:
        # Another thread, and this one, see neither the scope's stop nor its deadline.
        q: queue.Queue[int] = queue.Queue()
        q.put(1)
        _, outcome = start_call(lambda: queues.get(q, timeout=LONG))
        assert outcome.done.wait(WAKE_BOUND)
        assert outcome.result == 1
        q.put(2)
        assert queues.get(q, timeout=LONG) == 2
    finally:
        leave.set()
        holder.join(LONG)


def test_nesting_is_independent_per_thread() -> None:
    barrier = threading.Barrier(2)
    results: dict[str, tuple[float | None, float | None]] = {}

    def nest(name: str, outer: float, inner: float) -> None:
        with scope(timeout=outer) as a:
            barrier.wait(LONG)  # both threads inside their outer scope
            with scope(timeout=inner) as b:
                barrier.wait(LONG)  # both inside their inner scope
                results[name] = (a.deadline, b.deadline)

    threads = [
        threading.Thread(target=nest, args=("long-first", LONG, SHORT)),
        threading.Thread(target=nest, args=("short-first", SHORT, LONG)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LONG)
    outer, inner = results["long-first"]
    assert outer is not None
    assert inner is not None
    assert inner < outer
    outer, inner = results["short-first"]
    assert inner == outer  # the inner, longer scope cannot extend the outer deadline


# --- checkpoint -----------------------------------------------------------------


def test_checkpoint() -> None:
    checkpoint()
    stop = StopEvent()
    checkpoint(stop)
    stop.set("now")
    with pytest.raises(Stopped, match="now"):
        checkpoint(stop)
    with scope(stop=stop), pytest.raises(Stopped):
        checkpoint()
    with scope(timeout=0), pytest.raises(DeadlineExceeded, match="scope"):
        checkpoint()
    with scope(timeout=LONG):
        checkpoint()


# --- the waiting loop: no leaks, no polling -------------------------------------


def test_ten_thousand_stopped_waits_leave_no_callback_fd_or_thread() -> None:
    threads_before = threading.active_count()
    fds_before = open_fds()
    stop = StopEvent()
    q: queue.Queue[int] = queue.Queue()
    event = threading.Event()
    for _ in range(5_000):
        with pytest.raises(DeadlineExceeded):
            queues.get(q, timeout=0, stop=stop)
        with pytest.raises(DeadlineExceeded):
            sync.wait(event, timeout=0, stop=stop)
    assert stop._callback_count() == 0
    # And 10,000 waits actually blocked, then stopped, each by its own child stop.
    for _ in range(10_000):
        child = stop.child()
        child.add_callback(lambda: None)  # registered before the waiter's own
        caller = threading.Timer(0, child.set)
        caller.start()
        with pytest.raises(Stopped):
            queues.get(q, timeout=LONG, stop=child)
        caller.join(LONG)
        assert child._callback_count() == 0
    assert stop._callback_count() == 0
    assert threading.active_count() == threads_before
    gc.collect()
    assert open_fds() <= fds_before


def test_a_wakeable_wait_does_not_poll(no_polling: None) -> None:
    stop = StopEvent()
    thread, outcome = start_call(lambda: queues.get(queue.Queue(), timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_a_polled_stop_is_noticed_within_a_slice(fast_polling: None) -> None:
    stop = threading.Event()
    thread, outcome = start_call(lambda: queues.get(queue.Queue(), timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_the_deadline_is_total_not_per_wake_up() -> None:
    # Spurious wake-ups (notify_all with nothing to take) must not restart the clock.
    q: queue.Queue[int] = queue.Queue()
    done = threading.Event()

    def disturb() -> None:
        while not done.is_set():
            with q.not_empty:
                q.not_empty.notify_all()
            time.sleep(0.005)

    disturber = threading.Thread(target=disturb)
    disturber.start()
    try:
        elapsed, _ = _elapsed_until_timeout(SHORT, q)
    finally:
        done.set()
        disturber.join(LONG)
    assert SHORT <= elapsed < SHORT + WAKE_BOUND


def test_set_takes_no_lock_of_the_waiters(no_polling: None) -> None:
    # A stop wakes a condition waiter by releasing its waiter lock directly: set()
    # returns even while the queue's own mutex is held (here by this very thread).
    q: queue.Queue[int] = queue.Queue()
    stop = StopEvent()
    thread, outcome = start_call(lambda: queues.get(q, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    with q.mutex:
        stop.set()
        assert not outcome.done.is_set()  # it needs the mutex back to return
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_the_standard_library_internals_the_waits_rely_on() -> None:
    # Condition.wait's own protocol and Queue's organisation hooks: a Python that
    # changes them must fail here, loudly, not hang somewhere else.
    for cond in (threading.Condition(), threading.Condition(threading.RLock())):
        for name in ("_waiters", "_release_save", "_acquire_restore", "_is_owned"):
            assert hasattr(cond, name), name
    q: queue.Queue[int] = queue.Queue()
    for name in ("_qsize", "_get", "_put", "unfinished_tasks"):
        assert hasattr(q, name), name
    semaphore = threading.Semaphore()
    assert hasattr(semaphore, "_cond")
    assert hasattr(semaphore, "_value")

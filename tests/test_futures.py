"""stoppable.futures: future and pool waits that end by a deadline or a stop; tasks that stop."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import multiprocessing.pool
import pickle
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import pytest

from stoppable import DeadlineExceeded, StopEvent, Stopped, futures, queues, scope, sync

from .support import (
    BAD_TIMEOUTS,
    LONG,
    SHORT,
    WAKE_BOUND,
    start_call,
    wait_until,
    wait_until_blocked,
)


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    wait_until(
        lambda: not set(threading.enumerate()) - before,
        timeout=5,
        what=f"threads to end: {set(threading.enumerate()) - before}",
    )


def installed(*fs: Future[Any]) -> int:
    """Callbacks and waiters left on the futures (a finished wait must leave none)."""
    count = 0
    for future in fs:
        inside: Any = future
        count += len(inside._done_callbacks) + len(inside._waiters)
    return count


def add(a: int, b: int = 0) -> int:
    return a + b


def finished(value: object = None) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def failed(error: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


# --- result() and exception() -------------------------------------------------------


def test_result_returns_the_value_or_raises_what_the_work_raised() -> None:
    assert futures.result(finished(5), timeout=1) == 5
    with pytest.raises(ValueError, match="bad"):
        futures.result(failed(ValueError("bad")), timeout=1)
    cancelled: Future[int] = Future()
    cancelled.cancel()
    with pytest.raises(CancelledError):
        futures.result(cancelled, timeout=1)
    assert futures.exception(finished(5), timeout=1) is None
    error = ValueError("bad")
    assert futures.exception(failed(error), timeout=1) is error
    with pytest.raises(CancelledError):
        futures.exception(cancelled, timeout=1)


@pytest.mark.parametrize("how", ["result", "exception", "cancel"])
def test_result_is_woken_by_completion_without_polling(how: str, no_polling: None) -> None:
    future: Future[int] = Future()
    thread, outcome = start_call(lambda: futures.result(future, timeout=LONG))
    wait_until_blocked(thread)
    if how == "result":
        future.set_result(5)
    elif how == "exception":
        future.set_exception(KeyError("k"))
    else:
        assert future.cancel()
    assert outcome.done.wait(WAKE_BOUND)
    expected = {"result": None, "exception": KeyError, "cancel": CancelledError}[how]
    if expected is None:
        assert outcome.result == 5
    else:
        assert isinstance(outcome.error, expected)
    assert installed(future) == 0


@pytest.mark.parametrize("function", [futures.result, futures.exception])
def test_stop_wakes_a_result_wait_without_polling(
    function: Callable[..., Any], no_polling: None
) -> None:
    future: Future[int] = Future()
    stop = StopEvent()
    thread, outcome = start_call(lambda: function(future, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set(reason="enough")
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert outcome.error.reason == "enough"
    assert stop._callback_count() == 0
    assert installed(future) == 0
    future.set_result(1)  # the future is untouched: it still completes normally
    assert future.result() == 1  # noqa: STP100 - false alarm: done, set_result just above


def test_result_timeout_is_both_deadline_and_futures_timeout() -> None:
    future: Future[int] = Future()
    started = time.monotonic()
    with pytest.raises(futures.FutureDeadline) as caught:
        futures.result(future, timeout=SHORT)
    assert SHORT <= time.monotonic() - started < SHORT + WAKE_BOUND
    error = caught.value
    assert isinstance(error, DeadlineExceeded)
    assert isinstance(error, concurrent.futures.TimeoutError)
    assert isinstance(error, TimeoutError)
    assert error.timeout == SHORT
    assert "future result timed out after 0.2 s" in str(error)
    assert error.not_done == {future}
    assert error.done == set()
    assert installed(future) == 0
    copy = pickle.loads(pickle.dumps(error))  # it may cross a process boundary
    assert type(copy) is futures.FutureDeadline
    assert (str(copy), copy.timeout) == (str(error), SHORT)


def test_a_stop_already_set_raises_even_when_the_result_is_there() -> None:
    stop = StopEvent()
    stop.set(reason="early")
    done = finished(1)
    with pytest.raises(Stopped, match="early"):
        futures.result(done, timeout=1, stop=stop)
    with pytest.raises(Stopped):
        futures.wait([done], timeout=1, stop=stop)
    iterator = futures.as_completed([done], timeout=1, stop=threading.Event())
    assert next(iterator) is done
    with pytest.raises(Stopped):
        futures.as_completed([done], timeout=1, stop=stop)
    assert installed(done) == 0


@pytest.mark.parametrize("function", ["result", "wait", "as_completed"])
def test_a_plain_event_stop_is_polled(function: str, fast_polling: None) -> None:
    future: Future[int] = Future()
    stop = threading.Event()
    calls: dict[str, Callable[[], object]] = {
        "result": lambda: futures.result(future, timeout=LONG, stop=stop),
        "wait": lambda: futures.wait([future], timeout=LONG, stop=stop),
        "as_completed": lambda: list(futures.as_completed([future], timeout=LONG, stop=stop)),
    }
    thread, outcome = start_call(calls[function])
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert installed(future) == 0


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
def test_bad_timeouts_are_refused_before_anything_is_installed(
    timeout: object, error: type[Exception]
) -> None:
    future: Future[int] = Future()
    calls: list[Callable[[], object]] = [
        lambda: futures.result(future, timeout=timeout),  # type: ignore[arg-type]
        lambda: futures.exception(future, timeout=timeout),  # type: ignore[arg-type]
        lambda: futures.wait([future], timeout=timeout),  # type: ignore[arg-type]
        lambda: futures.as_completed([future], timeout=timeout),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(error, match="timeout"):
            call()
    assert installed(future) == 0


def test_other_bad_arguments() -> None:
    with pytest.raises(TypeError, match="future must be"):
        futures.result(42, timeout=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="future must be"):
        futures.exception(42, timeout=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fs must hold"):
        futures.wait([42], timeout=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fs must hold"):
        futures.as_completed([42], timeout=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="return_when"):
        futures.wait([finished()], timeout=1, return_when="SOMETIME")
    with pytest.raises(TypeError, match="stop"):
        futures.result(finished(), timeout=1, stop=object())  # type: ignore[arg-type]


def test_a_scope_bounds_and_stops_the_waits(no_polling: None) -> None:
    future: Future[int] = Future()
    with scope(timeout=SHORT), pytest.raises(futures.FutureDeadline, match="scope"):
        futures.result(future, timeout=LONG)
    stop = StopEvent()

    def in_scope() -> object:
        with scope(stop=stop):
            return futures.wait([future], timeout=LONG)

    thread, outcome = start_call(in_scope)
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert installed(future) == 0


# --- wait() -------------------------------------------------------------------------


def test_wait_all_completed_is_woken_by_the_last_completion(no_polling: None) -> None:
    fs: list[Future[int]] = [Future() for _ in range(3)]
    fs[0].set_result(0)
    thread, outcome = start_call(lambda: futures.wait(fs, timeout=LONG))
    wait_until_blocked(thread)
    fs[1].set_result(1)
    fs[2].cancel()  # a cancelled future is done, whoever cancelled it
    assert outcome.done.wait(WAKE_BOUND)
    result = outcome.result
    assert isinstance(result, concurrent.futures._base.DoneAndNotDoneFutures)
    assert result.done == set(fs)
    assert result.not_done == set()
    assert installed(*fs) == 0


def test_wait_first_completed(no_polling: None) -> None:
    fs: list[Future[int]] = [Future() for _ in range(3)]
    thread, outcome = start_call(
        lambda: futures.wait(fs, timeout=LONG, return_when=futures.FIRST_COMPLETED)
    )
    wait_until_blocked(thread)
    fs[1].set_result(1)
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result == ({fs[1]}, {fs[0], fs[2]})
    assert installed(*fs) == 0
    # Already satisfied: returns at once, installing nothing.
    assert futures.wait(fs, timeout=0, return_when=futures.FIRST_COMPLETED).done == {fs[1]}


def test_wait_first_exception(no_polling: None) -> None:
    fs: list[Future[int]] = [Future() for _ in range(4)]
    thread, outcome = start_call(
        lambda: futures.wait(fs, timeout=LONG, return_when=futures.FIRST_EXCEPTION)
    )
    wait_until_blocked(thread)
    fs[0].set_result(0)
    fs[1].cancel()  # neither a result nor a cancellation is an exception
    wait_until_blocked(thread)
    assert not outcome.done.is_set()
    fs[2].set_exception(KeyError("k"))
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result == ({fs[0], fs[1], fs[2]}, {fs[3]})
    assert installed(*fs) == 0
    # All done without an exception also returns.
    plain = [finished(1), finished(2)]
    assert futures.wait(plain, timeout=0, return_when=futures.FIRST_EXCEPTION).not_done == set()


def test_wait_on_nothing_returns_at_once() -> None:
    assert futures.wait([], timeout=0) == (set(), set())
    assert futures.wait([], timeout=0, return_when=futures.FIRST_COMPLETED) == (set(), set())


def test_wait_timeout_raises_with_the_sets_it_would_return() -> None:
    fs: list[Future[int]] = [finished(0), Future(), Future()]
    started = time.monotonic()
    with pytest.raises(futures.FutureDeadline) as caught:
        futures.wait(fs, timeout=SHORT)
    assert SHORT <= time.monotonic() - started < SHORT + WAKE_BOUND
    assert isinstance(caught.value, concurrent.futures.TimeoutError)
    assert caught.value.done == {fs[0]}
    assert caught.value.not_done == {fs[1], fs[2]}
    assert "2 of 3 futures unfinished" in str(caught.value)
    assert installed(*fs) == 0


def test_stop_wakes_wait_without_polling(no_polling: None) -> None:
    fs: list[Future[int]] = [Future() for _ in range(50)]
    stop = StopEvent()
    thread, outcome = start_call(lambda: futures.wait(fs, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert installed(*fs) == 0
    assert stop._callback_count() == 0


def test_wait_counts_futures_cancelled_by_an_executor_shutdown_as_done() -> None:
    # The standard library's wait() hangs on these until its timeout: cancelled by
    # shutdown(cancel_futures=True), no worker ever dequeues them.
    release = threading.Event()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    running = executor.submit(release.wait, LONG)
    queued = [executor.submit(int) for _ in range(3)]
    executor.shutdown(wait=False, cancel_futures=True)
    assert futures.wait(queued, timeout=WAKE_BOUND).not_done == set()
    assert all(f.cancelled() for f in queued)
    release.set()
    assert futures.result(running, timeout=LONG) is True
    executor.shutdown()


# --- as_completed() -----------------------------------------------------------------


def test_as_completed_yields_done_futures_first_then_in_completion_order(
    no_polling: None,
) -> None:
    fs: list[Future[int]] = [Future() for _ in range(4)]
    fs[2].set_result(2)
    seen: list[Future[int]] = []

    def consume() -> None:
        seen.extend(futures.as_completed(fs + fs, timeout=LONG))  # duplicates once

    thread, outcome = start_call(consume)
    wait_until(lambda: len(seen) == 1)
    for index, future in enumerate([fs[3], fs[0], fs[1]], start=2):
        wait_until_blocked(thread)
        future.set_result(0)
        wait_until(lambda index=index: len(seen) == index)  # type: ignore[misc]
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.error is None
    assert seen == [fs[2], fs[3], fs[0], fs[1]]
    assert installed(*fs) == 0


def test_as_completed_timeout_reports_what_is_unfinished() -> None:
    fs: list[Future[int]] = [finished(0), Future(), Future()]
    iterator = futures.as_completed(fs, timeout=SHORT)
    assert next(iterator) is fs[0]
    started = time.monotonic()
    with pytest.raises(futures.FutureDeadline) as caught:
        next(iterator)
    assert time.monotonic() - started < SHORT + WAKE_BOUND
    assert isinstance(caught.value, concurrent.futures.TimeoutError)
    assert caught.value.not_done == {fs[1], fs[2]}
    assert "as_completed timed out after 0.2 s" in str(caught.value)
    assert installed(*fs) == 0


def test_the_as_completed_deadline_starts_at_the_call() -> None:
    future: Future[int] = Future()
    iterator = futures.as_completed([future], timeout=SHORT)
    time.sleep(SHORT)  # not ordering: the deadline must have passed before next()
    started = time.monotonic()
    with pytest.raises(futures.FutureDeadline):
        next(iterator)
    assert time.monotonic() - started < WAKE_BOUND / 2


def test_stop_wakes_as_completed_without_polling(no_polling: None) -> None:
    fs: list[Future[int]] = [Future() for _ in range(3)]
    stop = StopEvent()
    got: list[Future[int]] = []

    def consume() -> None:
        for future in futures.as_completed(fs, timeout=LONG, stop=stop):
            got.append(future)

    thread, outcome = start_call(consume)
    wait_until_blocked(thread)
    fs[1].set_result(1)
    wait_until(lambda: got == [fs[1]])
    wait_until_blocked(thread)
    stop.set(reason="enough")
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert installed(*fs) == 0
    assert stop._callback_count() == 0


def test_leaving_as_completed_early_removes_its_callbacks() -> None:
    fs: list[Future[int]] = [finished(0), Future(), Future()]
    for _ in futures.as_completed(fs, timeout=LONG):
        break
    assert installed(*fs) == 0
    iterator = futures.as_completed(fs, timeout=LONG)
    next(iterator)
    assert installed(*fs) == 2
    iterator.close()  # type: ignore[attr-defined]
    assert installed(*fs) == 0
    futures.as_completed(fs, timeout=LONG)  # never started: installs nothing
    assert installed(*fs) == 0


# --- no leaks, under concurrency ----------------------------------------------------


def test_many_stopped_waits_leave_nothing_behind(no_polling: None) -> None:
    fs: list[Future[int]] = [Future() for _ in range(20)]
    stop = StopEvent()
    waits: list[Callable[[], object]] = [
        lambda: futures.result(fs[0], timeout=LONG, stop=stop),
        lambda: futures.wait(fs, timeout=LONG, stop=stop),
        lambda: futures.wait(fs, timeout=LONG, stop=stop, return_when=futures.FIRST_COMPLETED),
        lambda: list(futures.as_completed(fs, timeout=LONG, stop=stop)),
    ]
    calls = [start_call(waits[index % len(waits)]) for index in range(40)]
    for thread, _ in calls:
        wait_until_blocked(thread)
    stop.set()
    for _, outcome in calls:
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
    assert installed(*fs) == 0
    assert stop._callback_count() == 0


def test_removing_callbacks_never_disturbs_the_futures_own_callbacks() -> None:
    # A wait that ends (stopped) while the future completes removes its callback as
    # the completing thread runs the callbacks: every other callback must run, once.
    rounds = 200
    calls: list[int] = []
    for _ in range(rounds):
        future: Future[int] = Future()
        stop = StopEvent()
        future.add_done_callback(lambda f: calls.append(1))
        _, outcome = start_call(
            lambda future=future, stop=stop: futures.wait([future], timeout=LONG, stop=stop)  # type: ignore[misc]
        )
        future.add_done_callback(lambda f: calls.append(2))
        stopper, _ = start_call(stop.set)
        future.add_done_callback(lambda f: calls.append(3))
        future.set_result(0)
        assert outcome.done.wait(WAKE_BOUND)
        stopper.join(WAKE_BOUND)
        assert installed(future) == 3  # the user's three, ours gone
    assert calls == [1, 2, 3] * rounds


# --- the executor -------------------------------------------------------------------


def blocked_task(
    executor: futures.ThreadPoolExecutor, fn: Callable[[], object]
) -> tuple[Future[Any], threading.Thread]:
    """Submit ``fn``; return its future once it is blocked, and the worker running it."""
    started: queue.Queue[threading.Thread] = queue.Queue()

    def task() -> object:
        started.put(threading.current_thread())
        return fn()

    future = executor.submit(task)
    worker = started.get(timeout=LONG)
    wait_until_blocked(worker)
    return future, worker


def test_the_executor_is_a_drop_in_thread_pool() -> None:
    with futures.ThreadPoolExecutor(2, thread_name_prefix="drop-in") as executor:
        assert isinstance(executor, concurrent.futures.ThreadPoolExecutor)
        assert executor.submit(add, 1, b=2).result() == 3
        assert executor.submit(pow, 2, 5).result() == 32
        assert list(executor.map(abs, [-1, -2, 3])) == [1, 2, 3]
        assert futures.current_stop() is None
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(int)


def test_each_task_has_a_stop_of_its_own_that_its_stoppable_calls_honour(
    no_polling: None,
) -> None:
    with futures.ThreadPoolExecutor(2) as executor:
        stops = [executor.submit(futures.current_stop).result() for _ in range(2)]
        assert all(isinstance(stop, StopEvent) for stop in stops)
        assert stops[0] is not stops[1]
        assert executor.stop not in stops
        q: queue.Queue[int] = queue.Queue()
        future, _ = blocked_task(executor, lambda: queues.get(q, timeout=LONG))
        assert executor.stop_task(future, reason="just this one")
        exc = futures.exception(future, timeout=WAKE_BOUND)
        assert isinstance(exc, Stopped)
        assert exc.reason == "just this one"
        assert not executor.stop.is_set()
        assert executor.submit(lambda: 1).result() == 1  # the others are untouched


def test_shutdown_with_stop_ends_blocked_tasks_at_once_and_runs_no_queued_task(
    no_polling: None,
) -> None:
    executor = futures.ThreadPoolExecutor(3)
    q: queue.Queue[int] = queue.Queue()
    event = threading.Event()
    blocked = [
        blocked_task(executor, lambda: queues.get(q, timeout=LONG))[0],
        blocked_task(executor, lambda: sync.wait(event, timeout=LONG))[0],
        blocked_task(executor, lambda: futures.result(Future(), timeout=LONG))[0],
    ]
    ran: list[int] = []
    queued = [executor.submit(ran.append, index) for index in range(20)]
    started = time.perf_counter()
    executor.shutdown(stop=True, timeout=LONG)
    elapsed = time.perf_counter() - started
    assert elapsed < WAKE_BOUND, elapsed
    for future in blocked:
        error = future.exception()
        assert isinstance(error, Stopped)
        assert error.reason == "executor shutdown"
    assert all(f.cancelled() for f in queued)
    assert ran == []
    assert q.empty()


def test_shutdown_with_stop_ends_a_task_blocked_in_net_recv(no_polling: None) -> None:
    from stoppable import net

    left, right = socket.socketpair()
    with left, right:
        executor = futures.ThreadPoolExecutor(1)
        future, _ = blocked_task(executor, lambda: net.recv(left, 1024, timeout=LONG))
        started = time.perf_counter()
        executor.shutdown(stop=True, timeout=LONG)
        assert time.perf_counter() - started < WAKE_BOUND
        assert isinstance(future.exception(), Stopped)


def ignore_the_stop(release: threading.Event) -> str:
    # A raw wait that ignores the stop; LONG only so that a failed test (which never
    # sets release) cannot leave its thread blocked for good.
    release.wait(LONG)
    return "released"


def test_a_task_that_ignores_its_stop_is_reported_not_waited_for() -> None:
    executor = futures.ThreadPoolExecutor(2)
    release = threading.Event()
    stubborn, _ = blocked_task(executor, lambda: ignore_the_stop(release))
    q: queue.Queue[int] = queue.Queue()
    polite, _ = blocked_task(executor, lambda: queues.get(q, timeout=LONG))
    started = time.monotonic()
    with pytest.raises(futures.ShutdownDeadline) as caught:
        executor.shutdown(stop=True, timeout=SHORT)
    assert SHORT <= time.monotonic() - started < SHORT + WAKE_BOUND
    error = caught.value
    assert isinstance(error, DeadlineExceeded)
    assert error.unfinished == [stubborn]
    assert "1 task(s) did not finish" in str(error)
    assert "blocked_task.<locals>.task" in str(error)
    assert isinstance(polite.exception(), Stopped)
    release.set()
    executor.shutdown(timeout=LONG)  # again: now the workers end
    assert stubborn.result() == "released"


def test_shutdown_without_stop_lets_the_tasks_finish_within_the_timeout() -> None:
    executor = futures.ThreadPoolExecutor(2)
    release = threading.Event()
    running, _ = blocked_task(executor, lambda: sync.wait(release, timeout=LONG))
    queued = executor.submit(lambda: "queued")
    with pytest.raises(futures.ShutdownDeadline) as caught:
        executor.shutdown(timeout=SHORT)
    assert running in caught.value.unfinished
    release.set()
    executor.shutdown(timeout=LONG)
    assert running.result() is True
    assert queued.result() == "queued"


def test_shutdown_without_waiting_stops_and_returns() -> None:
    executor = futures.ThreadPoolExecutor(1)
    q: queue.Queue[int] = queue.Queue()
    future, _ = blocked_task(executor, lambda: queues.get(q, timeout=LONG))
    executor.shutdown(wait=False, stop=True)
    assert isinstance(futures.exception(future, timeout=WAKE_BOUND), Stopped)
    executor.shutdown(timeout=LONG)


def test_stop_task_cancels_a_queued_task_and_reports_finished_ones() -> None:
    with futures.ThreadPoolExecutor(1) as executor:
        release = threading.Event()
        running, _ = blocked_task(executor, lambda: sync.wait(release, timeout=LONG))
        ran: list[int] = []
        queued = executor.submit(ran.append, 1)
        assert executor.stop_task(queued)
        assert queued.cancelled()
        release.set()
        assert running.result() is True
        assert not executor.stop_task(running)  # finished: nothing to stop
        with pytest.raises(ValueError, match="not a task of this executor"):
            executor.stop_task(Future())
    assert ran == []


def test_a_parent_stop_stops_every_task_and_queued_ones_never_run(no_polling: None) -> None:
    parent = StopEvent()
    executor = futures.ThreadPoolExecutor(1, parent=parent)
    q: queue.Queue[int] = queue.Queue()
    future, _ = blocked_task(executor, lambda: queues.get(q, timeout=LONG))
    ran: list[int] = []
    queued = [executor.submit(ran.append, index) for index in range(5)]
    parent.set(reason="app stopping")
    error = futures.exception(future, timeout=WAKE_BOUND)
    assert isinstance(error, Stopped)
    assert error.reason == "app stopping"
    later = executor.submit(ran.append, 1)
    for task in [*queued, later]:
        error = futures.exception(task, timeout=WAKE_BOUND)
        assert isinstance(error, Stopped)
        assert error.reason == "app stopping"
    assert ran == []
    executor.shutdown(timeout=LONG)
    with pytest.raises(TypeError, match="parent"):
        futures.ThreadPoolExecutor(parent=threading.Event())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shutdown_timeout"):
        futures.ThreadPoolExecutor(shutdown_timeout=-1)


def test_tasks_submitted_while_the_executor_is_stopped_all_stop(no_polling: None) -> None:
    # Submitting races with the stop: every task must end by it, none left blocked.
    executor = futures.ThreadPoolExecutor(20)
    q: queue.Queue[int] = queue.Queue()
    submitted: list[Future[int]] = []

    def submit_many() -> None:
        for _ in range(300):
            submitted.append(executor.submit(queues.get, q, timeout=LONG))

    _, outcome = start_call(submit_many)
    wait_until(lambda: len(submitted) >= 30)
    executor.stop.set()
    assert outcome.done.wait(LONG)
    executor.shutdown(timeout=WAKE_BOUND)  # raises ShutdownDeadline if one is left
    assert len(submitted) == 300
    assert all(isinstance(f.exception(), Stopped) for f in submitted)


def test_a_with_block_left_by_a_stop_stops_its_tasks(no_polling: None) -> None:
    q: queue.Queue[int] = queue.Queue()
    with pytest.raises(Stopped, match="leaving"):  # noqa: SIM117 - the order matters
        with futures.ThreadPoolExecutor(1) as executor:
            future, _ = blocked_task(executor, lambda: queues.get(q, timeout=LONG))
            raise Stopped("leaving")
    assert isinstance(future.exception(), Stopped)


def test_a_with_block_left_normally_waits_for_its_tasks_up_to_shutdown_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    with pytest.raises(futures.ShutdownDeadline):  # noqa: SIM117 - the order matters
        with futures.ThreadPoolExecutor(1, shutdown_timeout=SHORT) as executor:
            blocked_task(executor, lambda: ignore_the_stop(release))
    # With an exception already on its way out, the timeout is logged, not raised.
    with caplog.at_level(logging.WARNING, logger="stoppable"), pytest.raises(KeyError):  # noqa: SIM117
        with futures.ThreadPoolExecutor(1, shutdown_timeout=SHORT) as other:
            blocked_task(other, lambda: ignore_the_stop(release))
            raise KeyError("the block's own error")
    assert "executor shutdown timed out" in caplog.text
    release.set()
    executor.shutdown(timeout=LONG)
    other.shutdown(timeout=LONG)


# --- multiprocessing pools ----------------------------------------------------------


@pytest.fixture
def thread_pool() -> Iterator[multiprocessing.pool.ThreadPool]:
    pool = multiprocessing.pool.ThreadPool(2)
    yield pool
    # No join(): it cannot be bounded. no_thread_left_behind (autouse: torn down after
    # this) waits, bounded, for the pool's threads to end, and fails the test if not.
    pool.terminate()


def test_pool_map_starmap_and_apply(thread_pool: multiprocessing.pool.ThreadPool) -> None:
    assert futures.pool_map(thread_pool, abs, [-1, -2, 3], timeout=LONG) == [1, 2, 3]
    assert futures.pool_map(thread_pool, abs, range(-5, 0), 2, timeout=LONG) == [5, 4, 3, 2, 1]
    assert futures.pool_starmap(thread_pool, add, [(1, 2), (3, 4)], timeout=LONG) == [3, 7]
    assert futures.pool_apply(thread_pool, add, (1,), {"b": 5}, timeout=LONG) == 6
    async_result = thread_pool.apply_async(add, (2, 2))
    assert futures.result(async_result, timeout=LONG) == 4
    with pytest.raises(ZeroDivisionError):
        futures.pool_apply(thread_pool, divmod, (1, 0), timeout=LONG)


def test_pool_waits_are_stopped_without_polling(
    thread_pool: multiprocessing.pool.ThreadPool, no_polling: None
) -> None:
    release = threading.Event()
    stop = StopEvent()
    thread, outcome = start_call(
        lambda: futures.pool_map(thread_pool, ignore_the_stop, [release], timeout=LONG, stop=stop)
    )
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert stop._callback_count() == 0
    release.set()


def test_pool_timeout_is_both_deadline_and_multiprocessing_timeout(
    thread_pool: multiprocessing.pool.ThreadPool,
) -> None:
    release = threading.Event()
    async_result = thread_pool.apply_async(ignore_the_stop, (release,))
    with pytest.raises(futures.PoolDeadline) as caught:
        futures.result(async_result, timeout=SHORT)
    assert isinstance(caught.value, multiprocessing.TimeoutError)
    assert isinstance(caught.value, DeadlineExceeded)
    assert type(pickle.loads(pickle.dumps(caught.value))) is futures.PoolDeadline
    assert "pool result timed out after 0.2 s" in str(caught.value)
    with pytest.raises(futures.PoolDeadline, match="pool apply"):
        futures.pool_apply(thread_pool, ignore_the_stop, (release,), timeout=0)
    release.set()
    assert futures.result(async_result, timeout=LONG) == "released"


def test_a_process_pool() -> None:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert futures.pool_map(pool, abs, [-1, -2], timeout=LONG) == [1, 2]
        assert futures.pool_apply(pool, add, (1, 2), timeout=LONG) == 3
        # Every task is done (waited for, bounded, above); no join(), which cannot be
        # bounded: the with block's terminate() ends the worker.
        pool.close()


# --- the example --------------------------------------------------------------------


def test_the_example_stops_three_tasks_and_reports_the_fourth() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "futures_shutdown.py"
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1 task(s) did not finish: __main__.stubborn" in out
    assert out.count(" stopped\n") == 3
    assert "queued tasks cancelled: 100 of 100" in out
    assert "finished on its own" in out

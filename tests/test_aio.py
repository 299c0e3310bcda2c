"""stoppable.aio: real event loops, real worker threads, real cancellations.

Ordering comes from ready signals (a thread recorded as blocked in its wait, an
event set), never from sleeps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import json
import logging
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped, aio, futures, queues

from .support import (
    BAD_TIMEOUTS,
    BLOCKING_FRAMES,
    LONG,
    SHORT,
    WAKE_BOUND,
    open_fds,
    wait_until,
    wait_until_blocked,
)

T = TypeVar("T")

pytestmark = pytest.mark.timeout(60)


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


class Blocker:
    """A callable for a worker thread that records where it ran and how it ended."""

    def __init__(
        self, block: Callable[[], Any], blocks_in: frozenset[str] = BLOCKING_FRAMES
    ) -> None:
        self.block = block
        self.blocks_in = blocks_in
        self.thread: threading.Thread | None = None
        self.started = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        self.thread = threading.current_thread()
        self.started.set()
        try:
            return self.block()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ended.set()

    def wait_blocked(self) -> None:
        assert self.started.wait(LONG)
        assert self.thread is not None
        wait_until_blocked(self.thread, self.blocks_in)

    async def blocked(self) -> None:
        """Return once the call is blocked in its wait (checked from another thread)."""
        await asyncio.get_running_loop().run_in_executor(_watcher, self.wait_blocked)


# The tests' own helper thread, apart from every executor under test.
_watcher = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="test-aio-watcher")


def queue_wait() -> Blocker:
    """A call blocked in a stoppable-aware queue wait, bounded by LONG only."""
    q: queue.Queue[int] = queue.Queue()
    return Blocker(lambda: queues.get(q, timeout=LONG))


# --- to_thread: results, errors, arguments --------------------------------------------


def test_result_args_kwargs_and_context_pass_through() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def work(a: int, b: int = 0, *, c: int) -> tuple[int, str, str]:
        return a + b + c, var.get(), threading.current_thread().name

    async def main() -> tuple[int, str, str]:
        var.set("the caller's")
        return await aio.to_thread(work, 1, b=2, c=3, timeout=LONG)

    total, seen, thread_name = run(main)
    assert (total, seen) == (6, "the caller's")
    assert thread_name != threading.current_thread().name


def test_exception_passes_through_unchanged() -> None:
    error = ValueError("boom")

    def fail() -> None:
        raise error

    async def main() -> None:
        await aio.to_thread(fail, timeout=LONG)

    with pytest.raises(ValueError, match="boom") as caught:
        run(main)
    assert caught.value is error


def test_stop_iteration_becomes_runtime_error_instead_of_a_hang() -> None:
    async def main() -> None:
        await aio.to_thread(next, iter(()), timeout=LONG)

    with pytest.raises(RuntimeError, match="StopIteration") as caught:
        run(main)
    assert isinstance(caught.value.__cause__, StopIteration)


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
def test_bad_timeout_is_refused_before_any_thread(timeout: object, error: type[Exception]) -> None:
    called: list[int] = []

    async def main() -> None:
        await aio.to_thread(called.append, 1, timeout=timeout)  # type: ignore[arg-type]

    with pytest.raises(error, match="timeout"):
        run(main)
    assert called == []


def test_bad_stop_and_func_are_refused() -> None:
    async def bad_stop() -> None:
        await aio.to_thread(print, timeout=1, stop=object())  # type: ignore[arg-type]

    async def bad_func() -> None:
        await aio.to_thread(42, timeout=1)  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="stop"):
        run(bad_stop)
    with pytest.raises(TypeError, match="func must be callable"):
        run(bad_func)


def test_outside_an_event_loop_the_error_says_what_is_needed() -> None:
    coroutine = aio.to_thread(print, timeout=1)
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        coroutine.send(None)
    coroutine.close()


# --- to_thread: cancellation stops the thread ----------------------------------------


def test_cancel_stops_the_thread_and_the_await_ends_after_it() -> None:
    blocker = queue_wait()

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG))
        await blocker.blocked()
        started = time.monotonic()
        task.cancel("client went away")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < WAKE_BOUND
        assert blocker.ended.is_set(), "the await ended before the thread did"

    run(main)
    assert isinstance(blocker.error, Stopped)
    assert blocker.error.reason == "client went away"


def test_cancelled_await_waits_for_the_threads_cleanup() -> None:
    # The thread's cleanup blocks on a bare lock (which nothing can interrupt) until
    # the test releases it: the cancelled await must still be pending meanwhile.
    cleanup = threading.Event()
    release = threading.Lock()
    assert release.acquire(blocking=False)

    def work() -> None:
        try:
            queues.get(queue.Queue(), timeout=LONG)
        finally:
            cleanup.set()
            assert release.acquire(timeout=LONG)

    blocker = Blocker(work)

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG))
        await blocker.blocked()
        task.cancel()
        await asyncio.get_running_loop().run_in_executor(_watcher, cleanup.wait, LONG)
        for _ in range(10):  # loop iterations, not time: the task could end now
            await asyncio.sleep(0)
        assert not task.done()
        release.release()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert blocker.ended.is_set()

    run(main)


def test_repeated_cancels_while_the_thread_ends_change_nothing() -> None:
    cleanup = threading.Event()
    release = threading.Lock()
    assert release.acquire(blocking=False)

    def work() -> None:
        try:
            queues.get(queue.Queue(), timeout=LONG)
        finally:
            cleanup.set()
            assert release.acquire(timeout=LONG)

    blocker = Blocker(work)

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG))
        await blocker.blocked()
        task.cancel("first")
        await asyncio.get_running_loop().run_in_executor(_watcher, cleanup.wait, LONG)
        for _ in range(5):
            task.cancel("again")
            await asyncio.sleep(0)
        assert not task.done()
        release.release()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert isinstance(blocker.error, Stopped)
    assert blocker.error.reason == "first"


def test_a_call_cancelled_while_queued_never_runs() -> None:
    busy = queue_wait()
    queued = Blocker(lambda: None)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
        stop = StopEvent()
        first = asyncio.create_task(aio.to_thread(busy, timeout=LONG, stop=stop))
        await busy.blocked()
        second = asyncio.create_task(aio.to_thread(queued, timeout=LONG))
        await asyncio.sleep(0)  # let it submit (one loop iteration)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second  # at once: the only worker is still busy
        assert not first.done()
        stop.set("done")
        with pytest.raises(Stopped):
            await first

    run(main)
    assert queued.calls == 0


def test_asyncio_wait_for_times_out_and_the_thread_has_ended() -> None:
    blocker = queue_wait()

    async def main() -> None:
        await asyncio.wait_for(aio.to_thread(blocker, timeout=LONG), SHORT)

    with pytest.raises(asyncio.TimeoutError):  # not yet the builtin on 3.10
        run(main)
    assert blocker.ended.is_set()
    assert isinstance(blocker.error, Stopped)


def test_asyncio_timeout_turns_the_stopped_thread_into_timeout_error() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.timeout is new in 3.11")
    blocker = queue_wait()

    async def main() -> int:
        task = asyncio.current_task()
        assert task is not None
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(SHORT):
                await aio.to_thread(blocker, timeout=LONG)
        assert blocker.ended.is_set()
        return task.cancelling()

    assert run(main) == 0


# --- to_thread: code that knows nothing of stoppable ---------------------------------


def _plain_recv() -> Blocker:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())  # noqa: STP100
    peer, _ = server.accept()  # noqa: STP102
    server.close()

    def recv() -> bytes:
        try:
            return client.recv(1024)  # the peer never writes
        finally:
            client.close()
            peer.close()

    return Blocker(recv)


PLAIN_CALLS: dict[str, Callable[[], Blocker]] = {
    "time.sleep": lambda: Blocker(lambda: time.sleep(LONG)),
    "queue.Queue.get": lambda: Blocker(queue.Queue().get),
    "socket.recv": _plain_recv,
}


@pytest.mark.parametrize("name", PLAIN_CALLS)
def test_cancel_stops_plain_blocking_code(name: str) -> None:
    blocker = PLAIN_CALLS[name]()

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG))
        await blocker.blocked()
        task.cancel("cancelled by the test")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert blocker.ended.is_set()

    run(main)
    assert isinstance(blocker.error, Stopped)
    assert blocker.error.reason == "cancelled by the test"


@pytest.mark.parametrize("name", PLAIN_CALLS)
def test_timeout_bounds_plain_blocking_code(name: str) -> None:
    blocker = PLAIN_CALLS[name]()

    async def main() -> None:
        await aio.to_thread(blocker, timeout=SHORT)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run(main)
    assert time.monotonic() - started < SHORT + WAKE_BOUND


def test_a_blocking_builtin_passed_directly_is_stopped() -> None:
    # As users write it: the builtin itself, with no frame of the test's around it.
    async def main() -> float:
        task = asyncio.create_task(aio.to_thread(time.sleep, 60, timeout=LONG))
        await asyncio.sleep(0)  # submitted
        await asyncio.get_running_loop().run_in_executor(_watcher, wait_until, _a_thread_sleeps)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - cancelled_at

    assert run(main) < WAKE_BOUND


def _a_thread_sleeps() -> bool:
    """Whether a worker is blocked in time.sleep inside a to_thread call."""
    collecting = gc.isenabled()
    gc.disable()  # see support.wait_until_blocked (CPython 3.11 deadlock)
    try:
        frames = list(sys._current_frames().values())
    finally:
        if collecting:
            gc.enable()
    for frame in frames:
        innermost, inside_call = frame, False
        while frame is not None:
            code = frame.f_code
            inside_call |= code.co_name == "run" and code.co_filename.endswith("aio.py")
            frame = frame.f_back  # type: ignore[assignment]
        if inside_call and innermost.f_code.co_name in BLOCKING_FRAMES | {"sleep"}:
            return True
    return False


# --- to_thread: deadline and stop -----------------------------------------------------


def test_timeout_is_the_threads_deadline() -> None:
    blocker = queue_wait()

    async def main() -> None:
        await aio.to_thread(blocker, timeout=SHORT)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        run(main)
    assert SHORT * 0.9 <= time.monotonic() - started < SHORT + WAKE_BOUND
    assert isinstance(caught.value, TimeoutError)


def test_a_call_whose_deadline_passed_while_queued_never_runs() -> None:
    busy = queue_wait()
    queued = Blocker(lambda: None)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
        stop = StopEvent()
        first = asyncio.create_task(aio.to_thread(busy, timeout=LONG, stop=stop))
        await busy.blocked()
        second = asyncio.create_task(aio.to_thread(queued, timeout=SHORT))
        await asyncio.sleep(SHORT)  # not for ordering: the second call's deadline passes
        assert not second.done()
        stop.set()  # frees the only worker, which takes the second call, too late
        with pytest.raises(Stopped):
            await first
        with pytest.raises(DeadlineExceeded, match="waiting for a free worker thread"):
            await second

    run(main)
    assert queued.calls == 0


def test_setting_stop_ends_the_call_with_stopped() -> None:
    blocker = queue_wait()
    stop = StopEvent()

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG, stop=stop))
        await blocker.blocked()
        threading.Thread(target=stop.set, args=("SIGTERM",)).start()
        await task

    with pytest.raises(Stopped) as caught:
        run(main)
    assert caught.value.reason == "SIGTERM"
    assert stop._callback_count() == 0


def test_a_stop_already_set_raises_before_the_call_runs() -> None:
    stop = StopEvent()
    stop.set("earlier")
    called: list[int] = []

    async def main() -> None:
        await aio.to_thread(called.append, 1, timeout=LONG, stop=stop)

    with pytest.raises(Stopped, match="earlier"):
        run(main)
    assert called == []


@pytest.mark.usefixtures("fast_polling")
def test_a_plain_threading_event_as_stop_is_polled() -> None:
    blocker = queue_wait()
    event = threading.Event()

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG, stop=event))
        await blocker.blocked()
        event.set()
        await task

    with pytest.raises(Stopped):
        run(main)


def test_an_enclosing_scope_reaches_the_thread() -> None:
    blocker = queue_wait()
    stop = StopEvent()

    async def main() -> None:
        with stoppable.scope(stop=stop):
            task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG))
        await blocker.blocked()
        stop.set("scope")
        await task

    with pytest.raises(Stopped, match="scope"):
        run(main)


# --- to_thread and the executor: timeout=UNTIL_STOPPED --------------------------------


@pytest.mark.parametrize("name", PLAIN_CALLS)
def test_until_stopped_runs_until_the_task_is_cancelled(name: str) -> None:
    # No stop and no scope: the task's cancellation is the stop that ends the wait.
    blocker = PLAIN_CALLS[name]()

    async def main() -> None:
        task = asyncio.create_task(aio.to_thread(blocker, timeout=stoppable.UNTIL_STOPPED))
        await blocker.blocked()
        task.cancel("client went away")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert blocker.ended.is_set(), "the await ended before the thread did"

    run(main)
    assert isinstance(blocker.error, Stopped)
    assert blocker.error.reason == "client went away"


def test_until_stopped_returns_the_result_with_no_deadline_in_the_thread() -> None:
    def work(a: int, *, b: int) -> tuple[int, float | None]:
        with stoppable.scope(stop=StopEvent()) as inner:  # sees the guard's deadline
            return a + b, inner.deadline

    async def main() -> tuple[int, float | None]:
        return await aio.to_thread(work, 1, b=2, timeout=stoppable.UNTIL_STOPPED)

    assert run(main) == (3, None)


def test_until_stopped_ends_on_the_stop_given() -> None:
    blocker = queue_wait()
    stop = StopEvent()

    async def main() -> None:
        task = asyncio.create_task(
            aio.to_thread(blocker, timeout=stoppable.UNTIL_STOPPED, stop=stop)
        )
        await blocker.blocked()
        threading.Thread(target=stop.set, args=("SIGTERM",)).start()
        await task

    with pytest.raises(Stopped) as caught:
        run(main)
    assert caught.value.reason == "SIGTERM"


def test_until_stopped_keeps_an_enclosing_scopes_deadline() -> None:
    blocker = PLAIN_CALLS["queue.Queue.get"]()

    async def main() -> None:
        with stoppable.scope(timeout=SHORT):
            await aio.to_thread(blocker, timeout=stoppable.UNTIL_STOPPED)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run(main)
    assert time.monotonic() - started < SHORT + WAKE_BOUND
    assert isinstance(blocker.error, DeadlineExceeded)


def test_until_stopped_still_checks_the_stop_and_refuses_a_bad_one() -> None:
    called: list[int] = []
    stop = StopEvent()
    stop.set("earlier")

    async def already_set() -> None:
        await aio.to_thread(called.append, 1, timeout=stoppable.UNTIL_STOPPED, stop=stop)

    async def bad_stop() -> None:
        await aio.to_thread(
            called.append,
            1,
            timeout=stoppable.UNTIL_STOPPED,
            stop=object(),  # type: ignore[arg-type]
        )

    with pytest.raises(Stopped, match="earlier"):
        run(already_set)
    with pytest.raises(TypeError, match="stop"):
        run(bad_stop)
    assert called == []


def test_executor_task_timeout_until_stopped_runs_until_cancelled() -> None:
    blocker = PLAIN_CALLS["socket.recv"]()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with aio.Executor(1, task_timeout=stoppable.UNTIL_STOPPED) as executor:
            assert executor.task_timeout is None
            future = loop.run_in_executor(executor, blocker)
            await blocker.blocked()
            future.cancel()
            with pytest.raises(asyncio.CancelledError):
                await future
            await loop.run_in_executor(_watcher, blocker.ended.wait, WAKE_BOUND)
            assert blocker.ended.is_set()

    run(main)
    assert isinstance(blocker.error, Stopped)


def test_many_cancelled_calls_leave_nothing_behind() -> None:
    parent = StopEvent()
    threads = threading.active_count()
    fds = open_fds()

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(2))
        q: queue.Queue[int] = queue.Queue()
        for _ in range(200):
            blocker = Blocker(lambda: queues.get(q, timeout=LONG))
            task = asyncio.create_task(aio.to_thread(blocker, timeout=LONG, stop=parent))
            await blocker.blocked()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert threading.active_count() <= threads + 2 + 2  # the executor's, the watcher's

    run(main)
    gc.collect()
    assert open_fds() <= fds
    assert not parent._children
    assert parent._callback_count() == 0


def test_calls_are_freed_without_the_garbage_collector() -> None:
    # A cancelled call's Stopped holds frames until collected (the guard keeps the
    # exception it raised); calls that end normally must leave no cycle behind.
    def calls_alive() -> set[int]:
        return {id(o) for o in gc.get_objects() if type(o).__name__ == "_Call"}

    async def main() -> None:
        for _ in range(5):
            await aio.to_thread(_noop, timeout=LONG)
        # The workers drop their last references as they unwind, just after.
        await asyncio.get_running_loop().run_in_executor(
            _watcher, wait_until, lambda: calls_alive() <= before, WAKE_BOUND
        )

    gc.collect()
    before = calls_alive()  # earlier tests' calls still held somewhere
    gc.disable()
    try:
        run(main)
    finally:
        gc.enable()


def _noop() -> None:
    return None


# --- the executor ---------------------------------------------------------------------


def test_executor_cancelling_run_in_executor_stops_the_task() -> None:
    blocker = queue_wait()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with aio.Executor(2) as executor:
            future = loop.run_in_executor(executor, blocker)
            await blocker.blocked()
            future.cancel()
            with pytest.raises(asyncio.CancelledError):
                await future
            await loop.run_in_executor(_watcher, blocker.ended.wait, WAKE_BOUND)
            assert blocker.ended.is_set()

    run(main)
    assert isinstance(blocker.error, Stopped)
    assert blocker.error.reason == "cancelled"


def test_executor_as_default_stops_asyncio_to_thread_and_keeps_its_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen = []

    def work() -> None:
        seen.append(var.get())
        queues.get(queue.Queue(), timeout=LONG)

    blocker = Blocker(work)

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(aio.Executor(2))
        var.set("the caller's")
        task = asyncio.create_task(asyncio.to_thread(blocker))
        await blocker.blocked()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)  # and asyncio.run's default-executor shutdown waits for the thread
    assert blocker.ended.is_set()
    assert isinstance(blocker.error, Stopped)
    assert seen == ["the caller's"]


def test_asyncio_run_exits_promptly_with_threads_in_flight() -> None:
    awaited = [queue_wait() for _ in range(4)]
    forgotten = [queue_wait() for _ in range(4)]  # run_in_executor, never awaited
    own = [queue_wait() for _ in range(4)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(aio.Executor(16))
        tasks = [asyncio.create_task(asyncio.to_thread(blocker)) for blocker in awaited]
        for blocker in forgotten:
            loop.run_in_executor(None, blocker)
        tasks += [asyncio.create_task(aio.to_thread(b, timeout=LONG)) for b in own]
        for blocker in awaited + forgotten + own:
            await blocker.blocked()
        # main returns: asyncio.run cancels the tasks, then shuts the executor down

    started = time.monotonic()
    run(main)
    assert time.monotonic() - started < WAKE_BOUND
    for blocker in awaited + forgotten + own:
        assert blocker.ended.is_set()
        assert isinstance(blocker.error, Stopped)


@pytest.mark.parametrize("started_by", ["run_in_executor", "asyncio.to_thread"])
def test_executor_shutdown_is_bounded_and_names_a_task_that_ignores_its_stop(
    caplog: pytest.LogCaptureFixture, started_by: str
) -> None:
    release = threading.Lock()
    assert release.acquire(blocking=False)
    ran_in: list[threading.Thread] = []
    ended = threading.Event()
    in_flight: list[Awaitable[None]] = []  # left to asyncio.run's exit

    def stubborn() -> None:
        ran_in.append(threading.current_thread())
        release.acquire(timeout=LONG)  # a bare lock: nothing can interrupt it
        ended.set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(aio.Executor(2, shutdown_timeout=SHORT))
        if started_by == "run_in_executor":
            in_flight.append(loop.run_in_executor(None, stubborn))
        else:  # named by the function, not by asyncio's partial(context.run, ...)
            in_flight.append(asyncio.create_task(asyncio.to_thread(stubborn)))
        await loop.run_in_executor(_watcher, wait_until, lambda: ran_in)
        await loop.run_in_executor(_watcher, wait_until_blocked, ran_in[0], frozenset({"stubborn"}))

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="stoppable"):
        run(main)
    elapsed = time.monotonic() - started
    release.release()
    assert SHORT * 0.9 <= elapsed < SHORT + WAKE_BOUND
    assert "1 task(s) did not finish: tests.test_aio.test_executor_shutdown" in caplog.text
    assert "<locals>.stubborn" in caplog.text
    assert ended.wait(LONG)


def test_executor_explicit_shutdown_timeout_raises() -> None:
    release = threading.Lock()
    assert release.acquire(blocking=False)

    def stubborn() -> None:
        release.acquire(timeout=LONG)

    executor = aio.Executor(1)
    blocker = Blocker(stubborn, frozenset({"stubborn"}))
    future = executor.submit(blocker)
    blocker.wait_blocked()
    with pytest.raises(futures.ShutdownDeadline) as caught:
        executor.shutdown(timeout=SHORT)
    assert caught.value.unfinished == [future]
    release.release()
    executor.shutdown()


def test_executor_task_timeout_and_cancel_before_start() -> None:
    executor = aio.Executor(1, task_timeout=SHORT)
    try:
        slow = executor.submit(queues.get, queue.Queue(), timeout=LONG)
        never = Blocker(lambda: None)
        queued = executor.submit(never)
        assert queued.cancel() is True
        with pytest.raises(DeadlineExceeded):
            futures.result(slow, timeout=LONG)
        assert never.calls == 0
    finally:
        executor.shutdown()


def test_executor_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="task_timeout"):
        aio.Executor(task_timeout=-1)
    with pytest.raises(TypeError, match="shutdown_timeout"):
        aio.Executor(shutdown_timeout="5")  # type: ignore[arg-type]
    with aio.Executor(1) as executor, pytest.raises(TypeError, match="fn must be callable"):
        executor.submit(42)  # type: ignore[arg-type]


# --- from a stop to asyncio ----------------------------------------------------------


def test_wait_is_woken_by_a_set_from_another_thread() -> None:
    stop = StopEvent()

    async def main() -> float:
        task = asyncio.create_task(aio.wait(stop))
        await asyncio.sleep(0)  # one iteration: the task is waiting
        setter = threading.Thread(target=stop.set, args=("bye",))
        set_at = time.monotonic()
        setter.start()
        assert await task is True
        return time.monotonic() - set_at

    assert run(main) < WAKE_BOUND
    assert stop._callback_count() == 0


def test_wait_returns_at_once_when_already_set_and_leaves_nothing_when_cancelled() -> None:
    stop = StopEvent()

    async def main() -> None:
        task = asyncio.create_task(aio.wait(stop))
        await asyncio.sleep(0)
        assert stop._callback_count() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stop._callback_count() == 0
        stop.set()
        assert await aio.wait(stop) is True

    run(main)


@pytest.mark.usefixtures("fast_polling")
def test_wait_polls_a_plain_event() -> None:
    event = threading.Event()

    async def main() -> bool:
        task = asyncio.create_task(aio.wait(event))
        await asyncio.sleep(0)
        event.set()
        return await asyncio.wait_for(task, LONG)

    assert run(main) is True


def test_wait_refuses_a_bad_stop() -> None:
    async def main() -> None:
        await aio.wait(object())  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="stop"):
        run(main)


def test_cancel_on_turns_a_stop_into_stopped_and_the_task_carries_on() -> None:
    stop = StopEvent()

    async def main() -> str:
        blocked = asyncio.Event()  # never set
        with pytest.raises(Stopped, match="SIGTERM") as caught:
            async with aio.cancel_on(stop) as scope:
                loop = asyncio.get_running_loop()
                loop.call_soon(threading.Thread(target=stop.set, args=("SIGTERM",)).start)
                await blocked.wait()
        assert scope.stopped
        assert isinstance(caught.value.__cause__, asyncio.CancelledError)
        task = asyncio.current_task()
        assert task is not None
        if sys.version_info >= (3, 11):
            assert task.cancelling() == 0
        await asyncio.sleep(0)  # the task is not cancelled any more
        return "carried on"

    assert run(main) == "carried on"
    assert stop._callback_count() == 0


def test_cancel_on_an_already_set_stop_raises_at_once() -> None:
    stop = StopEvent()
    stop.set("earlier")

    async def main() -> None:
        with aio.cancel_on(stop):
            raise AssertionError("the block ran")

    with pytest.raises(Stopped, match="earlier"):
        run(main)


def test_cancel_on_without_a_stop_changes_nothing() -> None:
    stop = StopEvent()

    async def main() -> int:
        with aio.cancel_on(stop) as scope:
            await asyncio.sleep(0)
            value = 42
        assert not scope.stopped
        return value

    assert run(main) == 42
    assert stop._callback_count() == 0


def test_cancel_on_lets_an_outside_cancellation_through() -> None:
    stop = StopEvent()

    async def body(entered: asyncio.Event) -> None:
        async with aio.cancel_on(stop):
            entered.set()
            await asyncio.Event().wait()

    async def main() -> None:
        entered = asyncio.Event()
        task = asyncio.create_task(body(entered))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)


def test_cancel_on_inside_asyncio_timeout_leaves_the_timeout_its_own() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.timeout is new in 3.11")
    stop = StopEvent()

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(SHORT):
                async with aio.cancel_on(stop):
                    await asyncio.Event().wait()

    run(main)


def test_cancel_on_stops_to_thread_calls_inside_it() -> None:
    stop = StopEvent()
    blocker = queue_wait()

    async def main() -> None:
        async with aio.cancel_on(stop):
            task = asyncio.ensure_future(aio.to_thread(blocker, timeout=LONG))
            await blocker.blocked()
            stop.set("shutdown")
            await task

    with pytest.raises(Stopped, match="shutdown"):
        run(main)
    assert blocker.ended.is_set()


@pytest.mark.usefixtures("fast_polling")
def test_cancel_on_polls_a_plain_event() -> None:
    event = threading.Event()

    async def main() -> None:
        with aio.cancel_on(event):
            asyncio.get_running_loop().call_soon(event.set)
            await asyncio.Event().wait()

    with pytest.raises(Stopped):
        run(main)


def test_cancel_on_outside_a_task_is_refused() -> None:
    with pytest.raises(RuntimeError, match="asyncio"):
        aio.cancel_on(StopEvent()).__enter__()


# --- anyio's asyncio backend ----------------------------------------------------------


def test_anyio_cancel_scope_stops_the_thread() -> None:
    blocker = queue_wait()

    async def main() -> None:
        scopes: list[anyio.CancelScope] = []

        async def call() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await aio.to_thread(blocker, timeout=LONG)

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await anyio.to_thread.run_sync(blocker.wait_blocked)
            scopes[0].cancel()
        assert blocker.ended.is_set()
        assert scopes[0].cancelled_caught

    anyio.run(main, backend="asyncio")
    assert isinstance(blocker.error, Stopped)


def test_anyio_fail_after_and_wait_and_cancel_on() -> None:
    blocker = queue_wait()
    stop = StopEvent()

    async def main() -> None:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(SHORT):
                await aio.to_thread(blocker, timeout=LONG)
        assert blocker.ended.is_set()

        async with anyio.create_task_group() as group:
            group.start_soon(aio.wait, stop)
            await anyio.sleep(0)
            await anyio.to_thread.run_sync(stop.set, "done")
        with pytest.raises(Stopped, match="done"), aio.cancel_on(stop):
            await anyio.sleep(LONG)

    anyio.run(main, backend="asyncio")


# --- the example ----------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "aio_server.py"


def test_example_server_stops_every_handler_and_thread_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--upstream-delay", str(LONG * 2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    clients: list[socket.socket] = []
    try:
        first = lines.get(timeout=LONG)
        assert first.startswith("listening on 127.0.0.1:"), first
        port = int(first.split()[2].rstrip(",").rsplit(":", 1)[1])
        idle = socket.create_connection(("127.0.0.1", port), timeout=LONG)  # sends nothing
        clients.append(idle)
        keys = [f"key{i}" for i in range(5)]
        for key in keys:
            client = socket.create_connection(("127.0.0.1", port), timeout=LONG)
            client.sendall(f"{key}\n".encode())
            clients.append(client)
        # Ready signal: the upstream got every lookup, so each thread is blocked
        # reading its answer.
        asked = {lines.get(timeout=LONG).split()[-1] for _ in keys}
        assert asked == set(keys)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(LONG)
        elapsed = time.monotonic() - signalled
        reader.join(LONG)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(LONG)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
    assert proc.returncode == 0, err
    assert elapsed < WAKE_BOUND
    out = [lines.get_nowait() for _ in range(lines.qsize())]
    summary = json.loads(out[-1])
    assert summary["reason"] == "SIGTERM"
    assert summary["handlers_in_flight"] == summary["handlers_stopped"] == 6
    assert summary["threads_running"] == 0
    assert summary["stop_ms"] < WAKE_BOUND * 1000
    for client in clients:
        with client, client.makefile() as answer:
            assert answer.readline() == "unavailable: stopped: SIGTERM\n"

"""Futures, executors and worker pools with a total deadline and a stop.

``concurrent.futures`` waits forever by default (``Future.result()``, ``wait()``,
``as_completed()``), no wait in it can be interrupted, and nothing stops a task once
it runs: ``Future.cancel()`` and ``shutdown(cancel_futures=True)`` only drop tasks
that have not started. This module closes both gaps.

Waiting, for any ``concurrent.futures.Future`` (thread or process pools, or futures
you make yourself):

- ``result(future, timeout=..., stop=...)`` and ``exception(...)`` wait on the
  future's own condition, which a ``StopEvent`` notifies: no polling.
- ``wait(futures, ...)`` and ``as_completed(futures, ...)`` put a done-callback on
  each future, which wakes the one waiting thread when a future completes (or is
  cancelled); a ``StopEvent`` wakes it the same way. The callbacks are removed when
  the wait ends, however it ends: a future waited on many times collects none.
- ``result(async_result, ...)``, ``pool_map``, ``pool_starmap`` and ``pool_apply``
  do the same for ``multiprocessing.pool.Pool`` (and ``ThreadPool``) work, and
  ``pool_imap``/``pool_imap_unordered`` for its lazy iteration. A stopped or timed-out
  wait leaves the work running in the pool, unless its tasks were handed the
  ``StopEvent`` (it crosses into the workers).

Process pools: ``ProcessPoolExecutor`` (in ``_procpool``) gives each task a stop that
crosses into its worker process, and ends the tasks that ignore it.

A timeout raises ``FutureDeadline``: a ``stoppable.DeadlineExceeded`` and the
``concurrent.futures.TimeoutError`` the standard library raises (the builtin
``TimeoutError`` from Python 3.11, a class of its own on 3.10); for pool waits it is
``PoolDeadline``, also a ``multiprocessing.TimeoutError``. Unlike the standard
library's ``wait()``, which returns when its timeout runs out and leaves the caller
to notice the unfinished futures, ``wait()`` here raises, like every ``stoppable``
wrapper; the error carries ``done`` and ``not_done`` so nothing is lost.

A cancelled future counts as done at once. (The standard library's ``wait()`` and
``as_completed()`` count it only once an executor's worker has dequeued it, so they
hang on a future cancelled by ``shutdown(cancel_futures=True)`` or on one made by
hand.)

Stopping tasks: ``ThreadPoolExecutor`` here is a drop-in subclass of the standard
one whose every task runs with a ``StopEvent`` of its own, set whenever the
executor's ``stop`` is (as a ``child()`` would be), inside a ``stoppable.scope``
with that stop: every ``stoppable`` call the task makes (``queues.get``,
``net.recv``, ``sync.wait``, ...) ends with ``Stopped`` as soon as the task is
stopped, without passing the stop along. ``current_stop()`` hands it to code that
needs it (a CPU loop calling ``stoppable.checkpoint()`` needs nothing).
``shutdown(stop=True, timeout=...)`` stops the running tasks, cancels the queued
ones (none of them starts) and joins the workers within the timeout, raising
``ShutdownDeadline`` with the tasks that did not stop in time rather than waiting
for them forever; ``stop_task(future)`` stops one::

    with futures.ThreadPoolExecutor(8, shutdown_timeout=5) as pool:
        fs = [pool.submit(fetch, url) for url in urls]     # fetch uses stoppable.http
        for f in futures.as_completed(fs, timeout=30, stop=shutdown):
            handle(f.result())

A task that ends by ``Stopped`` has that ``Stopped`` as its future's exception.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import multiprocessing
import multiprocessing.pool
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Future
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    DoneAndNotDoneFutures,
)
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from . import _args, _compat
from ._errors import DeadlineExceeded, Stopped
from ._guard import _install, guard
from ._limits import SHUTDOWN_TIMEOUT, Limits, StopLike, begin, scope, validate_timeout
from ._stop import StopEvent
from ._wait import MAX_BLOCK, NOT_YET, NotYet, wait_condition, wait_loop

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "SHUTDOWN_TIMEOUT",
    "FutureDeadline",
    "PoolDeadline",
    "ProcessPoolExecutor",
    "ShutdownDeadline",
    "TaskKilled",
    "ThreadPoolExecutor",
    "as_completed",
    "current_stop",
    "exception",
    "pool_apply",
    "pool_imap",
    "pool_imap_unordered",
    "pool_map",
    "pool_starmap",
    "result",
    "wait",
]

T = TypeVar("T")
P = ParamSpec("P")

_log = logging.getLogger("stoppable")


_DONE = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED})
# The private state and condition of a Future, where they are as relied on (see
# _compat); the public API, polled, where they are not.
_INTERNALS = _compat.FUTURE_INTERNALS


def _is_done(future: Future[Any]) -> bool:
    if _INTERNALS:
        return future._state in _DONE
    return future.done()  # pragma: no cover - forced by the tests


_RETURN_WHEN = (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION)


# --- errors ------------------------------------------------------------------------

if sys.version_info >= (3, 11):  # concurrent.futures.TimeoutError is TimeoutError

    class _FuturesTimeout(DeadlineExceeded):
        pass

else:  # pragma: no cover - Python 3.10: a class of its own

    class _FuturesTimeout(DeadlineExceeded, concurrent.futures.TimeoutError):
        pass


class FutureDeadline(_FuturesTimeout):
    """A futures wait timed out: ``DeadlineExceeded`` and ``concurrent.futures.TimeoutError``.

    ``done`` and ``not_done`` are the waited-on futures that had completed (or been
    cancelled) and those that had not when time ran out, as ``wait()`` would return
    them.
    """

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message, timeout=timeout)
        self.done: set[Future[Any]] = set()
        """The futures that had completed or been cancelled when time ran out."""
        self.not_done: set[Future[Any]] = set()
        """The futures still pending or running when time ran out."""


class PoolDeadline(DeadlineExceeded, multiprocessing.TimeoutError):
    """A pool wait timed out: both ``DeadlineExceeded`` and ``multiprocessing.TimeoutError``."""


class ShutdownDeadline(DeadlineExceeded):
    """``ThreadPoolExecutor.shutdown(timeout=...)`` ran out with tasks unfinished.

    ``unfinished`` lists their futures in submission order: tasks that ignored (or
    have not yet reached a check of) their stop, and, when the shutdown neither
    stopped nor cancelled, the tasks still queued. Their worker threads are left
    running; a later ``shutdown(timeout=...)`` waits for them again.
    """

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message, timeout=timeout)
        self.unfinished: list[Future[Any]] = []
        """The futures of the tasks that had not finished when time ran out."""


def _deadline_for(futures: AbstractSet[Future[Any]]) -> Callable[..., FutureDeadline]:
    """A ``FutureDeadline`` factory for ``wait_loop``: fills in done/not_done."""

    def make(message: str, *, timeout: float | None = None) -> FutureDeadline:
        done = {f for f in futures if _is_done(f)}
        not_done = set(futures) - done
        if len(futures) > 1:
            message = f"{message} ({len(not_done)} of {len(futures)} futures unfinished)"
        error = FutureDeadline(message, timeout=timeout)
        error.done, error.not_done = done, not_done
        return error

    return make


# --- waiting for one future ---------------------------------------------------------


def result(
    future: Future[T] | multiprocessing.pool.ApplyResult[T],
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> T:
    """The future's result, waiting at most ``timeout`` seconds for it.

    Takes a ``concurrent.futures.Future`` or a ``multiprocessing.pool.AsyncResult``
    (what ``Pool.apply_async``/``map_async`` return). Raises what the work raised
    (``CancelledError`` for a cancelled future), ``Stopped`` if a stop is (or
    becomes) set, and when time runs out ``FutureDeadline`` (``PoolDeadline`` for an
    ``AsyncResult``). A stop is level-triggered: it raises even if the result is
    there. Ending the wait does not end the work (see ``ThreadPoolExecutor.stop_task``).
    """
    if isinstance(future, Future):
        seconds = begin(timeout, stop)
        if not _is_done(future):
            _wait_done(Limits(seconds, stop, "future result"), future)
        return future.result(0)
    if isinstance(future, multiprocessing.pool.ApplyResult):
        seconds = begin(timeout, stop)
        _wait_pool(Limits(seconds, stop, "pool result"), future)
        return future.get(0)
    raise TypeError(
        "future must be a concurrent.futures.Future or a multiprocessing.pool.AsyncResult, "
        f"got {type(future).__name__}"
    )


def exception(
    future: Future[Any], *, timeout: float, stop: StopLike | None = None
) -> BaseException | None:
    """The exception the future's work raised, waiting at most ``timeout`` seconds.

    ``None`` if the work returned. As ``Future.exception``, raises ``CancelledError``
    for a cancelled future; and as ``result()``, ``Stopped`` on a stop and
    ``FutureDeadline`` when time runs out.
    """
    if not isinstance(future, Future):
        raise TypeError(f"future must be a concurrent.futures.Future, got {type(future).__name__}")
    seconds = begin(timeout, stop)
    if not _is_done(future):
        _wait_done(Limits(seconds, stop, "future exception"), future)
    return future.exception(0)


def _wait_done(call: Limits, future: Future[Any]) -> None:
    # The future's own condition: set_result, set_exception and cancel notify it, and
    # the wait loop registers a notify on each StopEvent of the call.
    if not _INTERNALS:  # pragma: no cover - forced by the tests

        def attempt(seconds: float) -> bool | NotYet:
            concurrent.futures.wait([future], timeout=seconds)
            return True if future.done() else NOT_YET

        wait_loop(call, attempt, wake=None, error=_deadline_for({future}))
        return
    cond = future._condition
    with cond:
        if future._state not in _DONE:
            wait_condition(
                call, cond, lambda: future._state in _DONE, error=_deadline_for({future})
            )


def _wait_pool(call: Limits, async_result: multiprocessing.pool.ApplyResult[Any]) -> None:
    # An AsyncResult is done when its threading.Event is set; wait on that event's
    # condition, which a StopEvent notifies (as stoppable.sync.wait does).
    if not _compat.POOL_RESULT_EVENT:  # pragma: no cover - forced by the tests

        def attempt(seconds: float) -> bool | NotYet:
            async_result.wait(seconds)
            return True if async_result.ready() else NOT_YET

        wait_loop(call, attempt, wake=None, error=PoolDeadline)
        return
    event = _compat.pool_result_event(async_result)
    if event.is_set():
        return
    cond = _compat.event_cond(event)
    with cond:
        if not event.is_set():
            wait_condition(call, cond, event.is_set, error=PoolDeadline)


# --- waiting for many futures -------------------------------------------------------


class _Watch:
    """Done-callbacks on many futures that wake one waiting thread.

    ``finished`` receives each future as it completes (or is cancelled), in that
    order; a future that is already done when watched is added at once. ``close()``
    removes the callback from every future it was put on.

    The callback list is handled here rather than through ``add_done_callback`` (the
    same steps, under the same lock) because ``Future`` has no way to remove a
    callback, and waits on many futures are hot: this halves their cost.
    """

    __slots__ = ("_callback", "_installed", "_track_failures", "cond", "failed", "finished")

    def __init__(self, track_failures: bool = False) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.finished: deque[Future[Any]] = deque()
        self.failed = False
        self._track_failures = track_failures
        self._callback = self._on_done  # one bound method: the one to remove
        self._installed: list[Future[Any]] = []

    def _on_done(self, future: Future[Any]) -> None:
        # Runs in the thread that completed (or cancelled) the future, outside the
        # future's lock; or in watch(), for a future already done.
        failed = self._track_failures and not future.cancelled() and future.exception(0) is not None
        with self.cond:
            self.finished.append(future)
            if failed:
                self.failed = True
            self.cond.notify()

    def watch(self, futures: Iterable[Future[Any]]) -> None:
        """Put the callback on each future (call it without holding ``cond``)."""
        callback, installed = self._callback, self._installed
        if not _INTERNALS:  # pragma: no cover - forced by the tests
            # The public way, which cannot remove the callback: it stays on the future
            # until it completes, and then only appends to a watch nobody reads.
            for future in futures:
                future.add_done_callback(callback)
            return
        for future in futures:
            cond = future._condition
            cond.acquire()  # as add_done_callback does; C-level, unlike ``with``
            try:
                pending = future._state not in _DONE
                if pending:
                    future._done_callbacks.append(callback)  # type: ignore[attr-defined]
                    installed.append(future)
            finally:
                cond.release()
            if not pending:
                callback(future)

    def close(self) -> None:
        """Remove the callback from every future it was put on."""
        callback = self._callback
        for future in self._installed:
            cond = future._condition
            cond.acquire()
            try:
                # A new list, never an in-place removal: a thread running the
                # callbacks (Future._invoke_callbacks) iterates the old list, and a
                # removal under that iteration would skip the callback after ours.
                # Every change to the list is made under the lock held here.
                callbacks = future._done_callbacks[:]  # type: ignore[attr-defined]
                with contextlib.suppress(ValueError):  # gone: someone cleared the list
                    callbacks.remove(callback)
                    future._done_callbacks = callbacks  # type: ignore[attr-defined]
            finally:
                cond.release()
        self._installed.clear()


def _future_set(fs: Iterable[Future[T]]) -> set[Future[T]]:
    futures = set(fs)
    for future in futures:
        if not isinstance(future, Future):
            raise TypeError(
                f"fs must hold concurrent.futures.Future objects, got {type(future).__name__}"
            )
    return futures


def _already(futures: set[Future[Any]], return_when: str) -> bool:
    done = [f for f in futures if _is_done(f)]
    if len(done) == len(futures):
        return True
    if return_when == FIRST_COMPLETED:
        return bool(done)
    if return_when == FIRST_EXCEPTION:
        return any(not f.cancelled() and f.exception(0) is not None for f in done)
    return False


def wait(
    fs: Iterable[Future[T]],
    *,
    timeout: float,
    stop: StopLike | None = None,
    return_when: str = ALL_COMPLETED,
) -> DoneAndNotDoneFutures[T]:
    """Wait at most ``timeout`` seconds for the futures, as ``concurrent.futures.wait``.

    ``return_when`` is ``ALL_COMPLETED`` (the default), ``FIRST_COMPLETED`` or
    ``FIRST_EXCEPTION`` (the first future to finish by raising, or all of them).
    Returns ``(done, not_done)``, a ``DoneAndNotDoneFutures`` of two sets, as soon as
    the condition holds; a cancelled future counts as done. Raises ``Stopped`` if a
    stop is (or becomes) set, and ``FutureDeadline`` when time runs out first (the
    standard library returns instead); the error's ``done`` and ``not_done`` are the
    sets it would have returned.
    """
    if return_when not in _RETURN_WHEN:
        raise ValueError(
            "return_when must be ALL_COMPLETED, FIRST_COMPLETED or FIRST_EXCEPTION, "
            f"got {return_when!r}"
        )
    futures = _future_set(fs)
    seconds = begin(timeout, stop)
    if not _already(futures, return_when):
        call = Limits(seconds, stop, "futures wait")
        watch = _Watch(track_failures=return_when == FIRST_EXCEPTION)
        total = len(futures)
        ready: Callable[[], object]
        if return_when == FIRST_COMPLETED:
            ready = lambda: watch.finished  # noqa: E731
        elif return_when == FIRST_EXCEPTION:
            ready = lambda: watch.failed or len(watch.finished) == total  # noqa: E731
        else:
            ready = lambda: len(watch.finished) == total  # noqa: E731
        try:
            watch.watch(futures)
            with watch.cond:
                wait_condition(call, watch.cond, ready, error=_deadline_for(futures))
        finally:
            watch.close()
    done = {f for f in futures if _is_done(f)}
    return DoneAndNotDoneFutures(done, futures - done)


def as_completed(
    fs: Iterable[Future[T]], *, timeout: float, stop: StopLike | None = None
) -> Iterator[Future[T]]:
    """Yield the futures as they complete, within ``timeout`` seconds in all.

    As ``concurrent.futures.as_completed``: futures already done come first, then
    each as it completes (or is cancelled); duplicates are yielded once. The deadline
    is fixed when this function is called and covers the whole iteration, the time
    spent in the loop body included. ``next()`` raises ``Stopped`` if a stop is (or
    becomes) set, and ``FutureDeadline`` (its ``not_done`` the futures not yielded)
    once time is up and no completed future is left to yield. Arguments are checked
    when called, not at the first ``next()``.

    The callbacks it puts on the futures are removed when the iteration ends: when it
    is exhausted, raises, or is closed (a ``for`` loop left by ``break`` closes it
    as soon as the iterator is dropped).
    """
    futures = _future_set(fs)
    seconds = begin(timeout, stop)
    return _completions(Limits(seconds, stop, "as_completed"), futures)


def _completions(call: Limits, futures: set[Future[T]]) -> Iterator[Future[T]]:
    # The callbacks go on at the first next(): a generator that never starts never
    # runs its finally, so it must not have installed anything.
    watch = _Watch()
    error = _deadline_for(futures)
    finished = watch.finished
    left = len(futures)
    try:
        watch.watch(futures)
        while left:
            with watch.cond:
                call.raise_if_stopped()  # level-triggered, even with futures to yield
                if not finished:
                    wait_condition(call, watch.cond, lambda: finished, error=error)
                future = finished.popleft()
            left -= 1
            yield future
    finally:
        watch.close()


# --- multiprocessing pools ----------------------------------------------------------


def _check_pool_call(pool: object, func: object, chunksize: object) -> None:
    _args.check_type(pool, multiprocessing.pool.Pool, "pool", "a multiprocessing.pool.Pool")
    _args.check_callable(func, "func")
    if chunksize is not None:
        _args.check_int(chunksize, "chunksize", 1)


def pool_apply(
    pool: multiprocessing.pool.Pool,
    func: Callable[..., T],
    args: Iterable[Any] = (),
    kwds: Mapping[str, Any] | None = None,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> T:
    """``pool.apply(func, args, kwds)``, waiting at most ``timeout`` seconds in all.

    Raises what ``func`` raised, ``Stopped``, or ``PoolDeadline`` (a
    ``multiprocessing.TimeoutError``). The deadline covers handing the work to the
    pool. A stopped or timed-out call leaves the work running in the pool.
    """
    _check_pool_call(pool, func, None)
    _args.check_iterable(args, "args")
    _args.check_mapping(kwds, "kwds", optional=True)
    seconds = begin(timeout, stop)
    call = Limits(seconds, stop, "pool apply")
    async_result = pool.apply_async(func, tuple(args), dict(kwds or {}))
    _wait_pool(call, async_result)
    return async_result.get(0)


def pool_map(
    pool: multiprocessing.pool.Pool,
    func: Callable[[Any], T],
    iterable: Iterable[Any],
    chunksize: int | None = None,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> list[T]:
    """``pool.map(func, iterable, chunksize)``, waiting at most ``timeout`` seconds in all.

    Returns the list of results in order. Raises as ``pool_apply`` does; the
    deadline covers splitting ``iterable`` into tasks and handing them to the pool.
    """
    _check_pool_call(pool, func, chunksize)
    _args.check_iterable(iterable, "iterable")
    seconds = begin(timeout, stop)
    call = Limits(seconds, stop, "pool map")
    async_result = pool.map_async(func, iterable, chunksize)
    _wait_pool(call, async_result)
    return async_result.get(0)


def pool_starmap(
    pool: multiprocessing.pool.Pool,
    func: Callable[..., T],
    iterable: Iterable[Iterable[Any]],
    chunksize: int | None = None,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> list[T]:
    """``pool.starmap(func, iterable, chunksize)``, waiting at most ``timeout`` seconds in all.

    Each item of ``iterable`` is unpacked into ``func``'s arguments. Raises as
    ``pool_apply`` does.
    """
    _check_pool_call(pool, func, chunksize)
    _args.check_iterable(iterable, "iterable")
    seconds = begin(timeout, stop)
    call = Limits(seconds, stop, "pool starmap")
    async_result = pool.starmap_async(func, iterable, chunksize)
    _wait_pool(call, async_result)
    return async_result.get(0)


# --- the executor -------------------------------------------------------------------

_task_stop: ContextVar[StopEvent | None] = ContextVar("stoppable_task_stop", default=None)


def current_stop() -> StopEvent | None:
    """The ``StopEvent`` of the ``ThreadPoolExecutor`` task running in this thread.

    ``None`` outside such a task. A task needs it only to hand its stop to something
    that is not a ``stoppable`` call (an ``add_callback`` that closes a resource, a
    ``stoppable.sync.Thread(parent=...)``): ``stoppable`` calls and
    ``stoppable.checkpoint()`` in the task honour it already.
    """
    return _task_stop.get()


def _run_task(
    executor_stop: StopEvent,
    stop: StopEvent,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    guarded: bool = False,
) -> T:
    """Run one task with its stop in force; a task stopped before it starts never runs."""
    if executor_stop._flag:  # a queued task's stop is set only when it starts
        stop.set(executor_stop.reason)
    if stop._flag:
        raise Stopped(stop.reason)
    context, fn, args, kwargs = _split_context(fn, args, kwargs)
    if context is not None:
        # asyncio.to_thread submits partial(context.run, func): the stop (and the
        # guard, both contextvars) must be entered inside that context to reach func.
        return context.run(_run_in_stop, stop, fn, args, kwargs, guarded)
    return _run_in_stop(stop, fn, args, kwargs, guarded)


def _run_in_stop(
    stop: StopEvent,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    guarded: bool,
) -> T:
    token = _task_stop.set(stop)
    try:
        if not guarded:
            with scope(stop=stop):
                return fn(*args, **kwargs)
        with guard(stop=stop):
            return _install.resolve(fn)(*args, **kwargs)  # type: ignore[no-any-return]
    finally:
        _task_stop.reset(token)


def _is_context_run(fn: object) -> bool:
    return isinstance(getattr(fn, "__self__", None), contextvars.Context) and (
        getattr(fn, "__name__", None) == "run"
    )


def _split_context(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[contextvars.Context | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """``(context, func, args, kwargs)`` of a call that runs ``func`` in a copied context.

    ``asyncio.to_thread`` submits ``partial(context.run, func, *args)``, and
    ``aio.to_thread`` ``context.run`` with ``func`` as its first argument. A scope or
    guard (``contextvars`` state) entered around ``context.run`` would not be seen
    inside it: it must be entered inside the context. Other ways of switching
    context inside a task are not recognised.
    """
    if isinstance(fn, functools.partial):
        if fn.args and _is_context_run(fn.func):
            return (
                fn.func.__self__,  # type: ignore[attr-defined]
                fn.args[0],
                fn.args[1:] + args,
                {**fn.keywords, **kwargs},
            )
    elif args and _is_context_run(fn):
        return fn.__self__, args[0], args[1:], kwargs  # type: ignore[attr-defined]
    return None, fn, args, kwargs


class _Task:
    __slots__ = ("fn", "stop")

    def __init__(self, stop: StopEvent, fn: Callable[..., Any]) -> None:
        self.stop = stop
        self.fn = fn


class _Tasks:
    """The executor's unfinished tasks, by future; each leaves when its future is done.

    Kept apart from the executor so that the futures' done-callbacks do not keep the
    executor alive. No lock: each step is one dict operation, atomic on its own, and
    ``submit`` is a hot path.
    """

    __slots__ = ("_by_future", "_forget")

    def __init__(self) -> None:
        by_future: dict[Future[Any], _Task] = {}
        self._by_future = by_future
        pop = by_future.pop
        self._forget: Callable[[Future[Any]], object] = lambda future: pop(future, None)

    def add(self, future: Future[Any], task: _Task) -> None:
        self._by_future[future] = task
        future.add_done_callback(self._forget)  # at once if already done

    def get(self, future: Future[Any]) -> _Task | None:
        return self._by_future.get(future)

    def stop_running(self, reason: object) -> None:
        """Set the stop of every running task.

        Queued tasks are left alone, for speed (a shutdown may cancel thousands of
        them): each checks the executor's stop when it starts (``_run_task``).
        """
        for future, task in self._by_future.copy().items():
            if future.running():
                task.stop.set(reason)

    def unfinished(self) -> list[tuple[Future[Any], _Task]]:
        return [(f, task) for f, task in self._by_future.copy().items() if not _is_done(f)]


def _describe(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else str(name)


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """A ``concurrent.futures.ThreadPoolExecutor`` whose tasks can be stopped.

    Each task runs with a ``StopEvent`` of its own, set whenever the executor's
    ``stop`` is (as a ``child()`` of it would be), inside a
    ``stoppable.scope(stop=...)``: every ``stoppable`` call in the task ends with
    ``Stopped`` when the task is stopped, without passing the stop along, and
    ``current_stop()`` returns it. A task stopped before it starts never runs (its
    future's exception is ``Stopped``); one that ends by ``Stopped`` has it as its
    future's exception.

    - ``shutdown(stop=True, timeout=...)``: stop every running task, cancel the queued
      ones, and join the workers within ``timeout``; ``ShutdownDeadline`` names the
      tasks that did not stop in time.
    - ``stop_task(future)``: stop one task (cancel it if it has not started).
    - ``parent``: the executor's ``stop`` is a child of it, so setting the parent
      stops every task (later tasks end with ``Stopped`` without running).
    - ``shutdown_timeout``: the timeout of the shutdown when a ``with`` block ends
      (``SHUTDOWN_TIMEOUT``, 60 s, by default: unlike the standard library's, no
      shutdown of this executor waits without a limit). A block left by
      ``Stopped``, ``KeyboardInterrupt`` or another ``BaseException`` that is not an
      ``Exception`` stops the tasks first; one left by an ordinary exception, or
      normally, lets them finish.

    - ``guard=True``: each task runs inside a ``stoppable.guard(stop=...)`` with its
      stop, not only a scope: every blocking call it makes through any library (a
      plain ``time.sleep``, a driver's socket read) ends when the task is stopped, so
      ``shutdown(stop=True)`` ends tasks that know nothing of stoppable.

    Tasks run in the workers' context, not the submitter's: a ``stoppable.scope``
    around ``submit()`` does not reach the task (give the executor a ``parent``).
    At interpreter exit Python joins every worker, so a task that ignores its stop
    keeps the process alive: shut the executor down with ``stop=True`` first.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        parent: StopEvent | None = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        guard: bool = False,
    ) -> None:
        if not isinstance(guard, bool):
            raise TypeError(f"guard must be a bool, got {type(guard).__name__} {guard!r}")
        self._stoppable_guard = guard
        if parent is not None and not isinstance(parent, StopEvent):
            raise TypeError(f"parent must be a StopEvent, got {type(parent).__name__}")
        self._stoppable_shutdown_timeout = validate_timeout(shutdown_timeout, "shutdown_timeout")
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)
        self.stop: StopEvent = StopEvent() if parent is None else parent.child()
        """The executor's stop: setting it stops every task, running or queued."""
        tasks = self._stoppable_tasks = _Tasks()
        stop = self.stop
        # Not child() per task: setting a thousand queued tasks' stops, only to cancel
        # them, would double the time a shutdown takes (see _Tasks.stop_running).
        self.stop.add_callback(lambda: tasks.stop_running(stop.reason))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` with a stop of its own; returns its future."""
        stop = StopEvent()
        future = super().submit(_run_task, self.stop, stop, fn, args, kwargs, self._stoppable_guard)
        self._stoppable_tasks.add(future, _Task(stop, fn))
        executor_stop = self.stop
        if executor_stop._flag:
            # Set while the task was not yet listed: stop_running may have missed it.
            stop.set(executor_stop.reason)
        return future

    def stop_task(self, future: Future[Any], reason: object = "task stopped") -> bool:
        """Stop one task of this executor: cancel it if queued, else set its stop.

        Returns ``False`` if the task had already finished (nothing changes), ``True``
        otherwise. A running task ends at its next ``stoppable`` call (or
        ``checkpoint()``) with ``Stopped(reason)`` as its future's exception; this
        does not wait for that (``result(future, timeout=...)`` does).
        """
        task = self._stoppable_tasks.get(future)
        if task is None:
            if future.done():
                return False
            raise ValueError("future is not a task of this executor")
        task.stop.set(reason)  # first: a task that starts now does not run
        future.cancel()  # a queued task never starts
        return True

    def shutdown(
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        stop: bool = False,
        timeout: float = SHUTDOWN_TIMEOUT,
        reason: object = "executor shutdown",
    ) -> None:
        """Shut down as the standard executor does, optionally stopping the tasks.

        - ``stop=True``: set the executor's ``stop`` (with ``reason``), so every
          running task ends at its next ``stoppable`` call, and cancel the queued
          tasks (``cancel_futures`` is implied): no task starts after this call.
        - ``wait=True``: join the workers within ``timeout`` seconds in all
          (``SHUTDOWN_TIMEOUT``, 60 s, by default); if tasks are still running then,
          raise ``ShutdownDeadline`` listing them (their workers are left running).
          ``timeout`` is ignored when ``wait`` is false.

        No new task can be submitted afterwards. Calling it again is harmless (and
        waits again).
        """
        seconds = validate_timeout(timeout)
        deadline = time.monotonic() + seconds
        super().shutdown(wait=False, cancel_futures=cancel_futures or stop)
        if stop:
            # After the queue is drained: a worker freed by the stop would otherwise
            # take a queued task first, which would end Stopped instead of cancelled.
            self.stop.set(reason)
        if not wait:
            return
        threads = list(self._threads)
        for thread in threads:
            # Thread.join is woken by the thread's end; only the shutdown's own
            # deadline bounds it (a day at a time: join takes no more).
            while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
                thread.join(min(left, MAX_BLOCK))
        alive = sum(thread.is_alive() for thread in threads)
        if alive:
            raise self._shutdown_error(seconds, alive)

    def _shutdown_error(self, seconds: float, alive: int) -> ShutdownDeadline:
        unfinished = self._stoppable_tasks.unfinished()
        if unfinished:
            shown = ", ".join(_describe(task.fn) for _, task in unfinished[:5])
            more = f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else ""
            what = f"{len(unfinished)} task(s) did not finish: {shown}{more}"
        else:
            what = f"{alive} worker thread(s) still running"
        error = ShutdownDeadline(
            f"executor shutdown timed out after {seconds:g} s: {what}", timeout=seconds
        )
        error.unfinished = [future for future, _ in unfinished]
        return error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (see the class docstring); never swallows the block's exception."""
        stopping = exc is not None and not isinstance(exc, Exception)
        try:
            self.shutdown(wait=True, stop=stopping, timeout=self._stoppable_shutdown_timeout)
        except ShutdownDeadline as err:
            if exc is None:
                raise
            # Do not replace the exception that ends the block (a KeyboardInterrupt
            # must stay one): report the shutdown's failure beside it.
            _log.warning("%s (while leaving the block by %r)", err, exc)


# Process pools live in their own module; their public names are this module's.
from ._poolimap import pool_imap, pool_imap_unordered  # noqa: E402
from ._procpool import ProcessPoolExecutor, TaskKilled  # noqa: E402


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

"""Waiting on futures and pool results: one future, many, and ``multiprocessing.pool`` work.

``result``/``exception`` wait on the future's own condition; ``wait``/``as_completed``
put one done-callback on each future (``_Watch``) that wakes the waiting thread, and
take it off when the wait ends; the pool calls wait on the ``AsyncResult``'s event.
A ``StopEvent`` wakes each of them the same way (see ``futures``' docstring).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.pool
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Future
from typing import TYPE_CHECKING, Any, TypeVar

from . import _args, _compat
from ._errors import DeadlineExceeded
from ._limits import Limits, StopLike, begin
from ._wait import NOT_YET, NotYet, wait_condition, wait_loop

if TYPE_CHECKING:
    from concurrent.futures._base import DoneAndNotDoneFutures

T = TypeVar("T")

# The private state and condition of a Future, where they are as relied on (see
# _compat: the done states are known only where they are); the public API, polled,
# where they are not.
_DONE = _compat.FUTURE_DONE_STATES
_INTERNALS = _compat.FUTURE_INTERNALS and bool(_DONE)


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
    return _compat.DONE_AND_NOT_DONE(done, futures - done)  # type: ignore[no-any-return]


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

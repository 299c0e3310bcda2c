"""``futures.pool_imap`` and ``pool_imap_unordered``: lazy pool iteration, bounded and stoppable.

``multiprocessing.pool.Pool.imap`` returns an iterator whose ``next(timeout)`` is
bounded per item, cannot be stopped, and whose plain ``for`` loop waits forever.
These wrappers iterate the same ``IMapIterator`` under one deadline for the whole
iteration, waking on its own condition (which the pool's result thread notifies and
a ``StopEvent`` notifies too): no polling.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing.pool
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from . import _compat
from ._limits import Limits, StopLike, begin
from ._wait import NOT_YET, wait_condition, wait_loop

__all__ = ["pool_imap", "pool_imap_unordered"]

T = TypeVar("T")


def pool_imap(
    pool: multiprocessing.pool.Pool,
    func: Callable[[Any], T],
    iterable: Iterable[Any],
    chunksize: int = 1,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> Iterator[T]:
    """``pool.imap(func, iterable, chunksize)``: results in order, within ``timeout`` in all.

    The deadline is fixed when this is called and covers the whole iteration, the
    loop body included. ``next()`` raises what ``func`` raised for that item,
    ``Stopped`` if a stop is (or becomes) set, and ``PoolDeadline`` (a
    ``multiprocessing.TimeoutError``) once time is up with the next result not in.
    Arguments are checked when called. Ending the iteration early leaves the
    remaining work running in the pool (hand the tasks a shared ``StopEvent`` to stop
    them too: it crosses into the workers).
    """
    return _iterate(pool, "imap", func, iterable, chunksize, timeout, stop)


def pool_imap_unordered(
    pool: multiprocessing.pool.Pool,
    func: Callable[[Any], T],
    iterable: Iterable[Any],
    chunksize: int = 1,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> Iterator[T]:
    """``pool.imap_unordered(...)``: results as they complete, within ``timeout`` in all.

    Otherwise as ``pool_imap``.
    """
    return _iterate(pool, "imap_unordered", func, iterable, chunksize, timeout, stop)


def _iterate(
    pool: multiprocessing.pool.Pool,
    how: str,
    func: Callable[[Any], T],
    iterable: Iterable[Any],
    chunksize: int,
    timeout: object,
    stop: StopLike | None,
) -> Iterator[T]:
    if not isinstance(pool, multiprocessing.pool.Pool):
        raise TypeError(f"pool must be a multiprocessing.pool.Pool, got {type(pool).__name__}")
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be an int >= 1, got {chunksize!r}")
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__}")
    seconds = begin(timeout, stop)
    call = Limits(seconds, stop, f"pool {how}")
    if chunksize == 1 and _compat.IMAP_INTERNALS:
        results = getattr(pool, how)(func, iterable, chunksize)
        return _results(call, results)
    if _compat.IMAP_INTERNALS and _compat.IMAP_CHUNKS:
        # With chunksize > 1 the pool returns a generator over an IMapIterator of
        # chunks: iterate that iterator (the generator's argument) and flatten here.
        chunks = _compat.imap_chunks(getattr(pool, how)(func, iterable, chunksize))
        if chunks is None:  # pragma: no cover - checked by _compat
            raise RuntimeError(f"Pool.{how} returned no IMapIterator: not supported")
        return (item for chunk in _results(call, chunks) for item in chunk)
    # Where the pool's own iterator is not as relied on: chunks of our own, each run
    # as the pool runs its chunks (one task computes a list), through public calls.
    own = getattr(pool, how)(functools.partial(_apply_each, func), _chunked(iterable, chunksize))
    wait = _results if _compat.IMAP_INTERNALS else _polled
    return _flatten(wait(call, own))


class _Raised:
    """A ``multiprocessing.TimeoutError`` raised by ``func``, carried back as a value.

    Only for the polled wait, where ``next(timeout)``'s own ``TimeoutError`` must
    not be mistaken for the task's.
    """

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _apply_each(func: Callable[[Any], Any], chunk: tuple[Any, ...]) -> Any:
    """One chunk's results, as the pool's own chunked task computes them."""
    try:
        return [func(item) for item in chunk]
    except multiprocessing.TimeoutError as exc:
        return _Raised(exc)


def _chunked(iterable: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    items = iter(iterable)
    while chunk := tuple(itertools.islice(items, size)):
        yield chunk


def _flatten(chunks: Iterator[Any]) -> Iterator[Any]:
    for chunk in chunks:
        if isinstance(chunk, _Raised):
            raise chunk.error
        yield from chunk


def _results(call: Limits, results: multiprocessing.pool.IMapIterator[Any]) -> Iterator[Any]:
    from .futures import PoolDeadline

    # The iterator's own state, read under its own condition, as its next() does.
    cond = _compat.imap_condition(results)

    def ready() -> bool:
        return _compat.imap_ready(results)

    while True:
        with cond:
            call.raise_if_stopped()  # level-triggered, even with results to yield
            if not ready():
                wait_condition(call, cond, ready, error=PoolDeadline)
        try:
            value = results.next(0)
        except StopIteration:
            return
        yield value


_END = object()


def _polled(call: Limits, results: multiprocessing.pool.IMapIterator[Any]) -> Iterator[Any]:
    """``_results`` without the iterator's internals: its ``next(timeout)`` in slices.

    A stop is then seen within the poll interval (``stoppable.set_poll_interval``).
    """
    from .futures import PoolDeadline

    def attempt(seconds: float) -> Any:
        try:
            return results.next(seconds)
        except multiprocessing.TimeoutError:  # nothing yet (the task's own is a _Raised)
            return NOT_YET
        except StopIteration:
            return _END

    while True:
        value = wait_loop(call, attempt, wake=None, error=PoolDeadline)
        if value is _END:
            return
        yield value

"""``futures.pool_imap`` and ``pool_imap_unordered``: lazy pool iteration, bounded and stoppable.

``multiprocessing.pool.Pool.imap`` returns an iterator whose ``next(timeout)`` is
bounded per item, cannot be stopped, and whose plain ``for`` loop waits forever.
These wrappers iterate the same ``IMapIterator`` under one deadline for the whole
iteration, waking on its own condition (which the pool's result thread notifies and
a ``StopEvent`` notifies too): no polling.
"""

from __future__ import annotations

import multiprocessing.pool
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ._limits import Limits, StopLike, begin
from ._wait import wait_condition

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
    seconds = begin(timeout, stop)
    call = Limits(seconds, stop, f"pool {how}")
    results = getattr(pool, how)(func, iterable, chunksize)
    if isinstance(results, multiprocessing.pool.IMapIterator):
        return _results(call, results)
    # With chunksize > 1 the pool returns a generator over an IMapIterator of
    # chunks: iterate that iterator (the generator's argument) and flatten here.
    frame = getattr(results, "gi_frame", None)
    chunks = None if frame is None else frame.f_locals.get(".0")
    if not isinstance(chunks, multiprocessing.pool.IMapIterator):  # pragma: no cover
        raise RuntimeError(f"Pool.{how} returned {type(results).__name__}: not supported")
    return (item for chunk in _results(call, chunks) for item in chunk)


def _results(call: Limits, results: multiprocessing.pool.IMapIterator[Any]) -> Iterator[Any]:
    from .futures import PoolDeadline

    # IMapIterator's own state, read under its own condition, as its next() does.
    cond = results._cond  # type: ignore[attr-defined]
    items = results._items  # type: ignore[attr-defined]

    def ready() -> bool:
        return bool(items) or results._index == results._length  # type: ignore[attr-defined]

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

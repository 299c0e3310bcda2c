"""Queue gets and puts with a total deadline, woken at once by a stop.

``queue.Queue`` and its subclasses (``LifoQueue``, ``PriorityQueue``, your own) are
waited on through the queue's own condition, which a ``StopEvent`` notifies: no
polling. ``queue.SimpleQueue`` and ``multiprocessing`` queues (``Queue``,
``JoinableQueue``) have no condition to notify, so their waits are sliced by the poll
interval, each slice an atomic get or put with a timeout.

Nothing is lost: a get returns the item or leaves it in the queue, and a put either
enqueues the item or raises. ``take`` goes further for workers: the item goes back on
the queue if the worker is stopped before it has finished with it.

A timeout is a ``QueueEmptyDeadline`` (get) or ``QueueFullDeadline`` (put): each is
both a ``stoppable.DeadlineExceeded`` and the ``queue.Empty``/``queue.Full`` the
standard library raises.

A queue shut down (``Queue.shutdown()``, Python 3.13) behaves as in the standard
library: ``get`` returns what is left, then raises ``queue.ShutDown`` (at once after
``shutdown(immediate=True)``), ``put`` raises ``queue.ShutDown``; a waiting call is
woken by the ``shutdown()``.
"""

from __future__ import annotations

import multiprocessing.queues
import queue
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar, Union

from . import _compat
from ._errors import QueueEmptyDeadline, QueueFullDeadline
from ._limits import Limits, StopLike, begin
from ._wait import NOT_YET, NotYet, wait_condition, wait_loop

__all__ = ["QueueEmptyDeadline", "QueueFullDeadline", "get", "join", "put", "take"]

T = TypeVar("T")
R = TypeVar("R")

AnyQueue = Union[queue.Queue[T], queue.SimpleQueue[T], "multiprocessing.queues.Queue[T]"]

# Queues whose get/put with a timeout is atomic (an item moves whole or not at all)
# but which have no condition a stop could notify: waited on in polled slices.
_SLICED: tuple[type, ...] = (queue.SimpleQueue, multiprocessing.queues.Queue)
# queue.Queue waited on through its own hooks and conditions (see _compat), where
# they are as relied on; otherwise through its public get/put, in polled slices.


class _NoQueue:
    """Matches no queue: ``_Queue`` when the fallback is in force."""


_Queue: type[queue.Queue[Any]] = queue.Queue  # bound once: get and put are hot paths
_SLICED_PUT: tuple[type, ...] = ()
_internals = True


def _use_internals(internals: bool) -> None:
    """Choose how a ``queue.Queue`` is waited on (at import; tests force the fallback)."""
    global _Queue, _SLICED, _SLICED_PUT, _internals
    _internals = internals
    sliced: tuple[type, ...] = (queue.SimpleQueue, multiprocessing.queues.Queue)
    _Queue = queue.Queue if internals else _NoQueue  # type: ignore[assignment]
    _SLICED = sliced if internals else (queue.Queue, *sliced)
    _SLICED_PUT = (
        (multiprocessing.queues.Queue,)
        if internals
        else (queue.Queue, multiprocessing.queues.Queue)
    )


_use_internals(_compat.QUEUE_INTERNALS)
_SHUTDOWN = _compat.QUEUE_SHUTDOWN
_ShutDown: type[BaseException] = getattr(queue, "ShutDown", Exception)


def _unsupported(q: object) -> TypeError:
    return TypeError(
        "q must be a queue.Queue (or subclass), queue.SimpleQueue or multiprocessing "
        f"Queue/JoinableQueue, got {type(q).__name__}"
    )


def get(q: AnyQueue[T], *, timeout: float, stop: StopLike | None = None) -> T:
    """Remove and return an item, waiting at most ``timeout`` seconds in all.

    Raises ``Stopped`` if a stop is (or becomes) set, leaving every item in the
    queue, and ``QueueEmptyDeadline`` (a ``queue.Empty``) when time runs out.
    """
    seconds = begin(timeout, stop)
    if isinstance(q, _Queue):
        # The queue's mutex is the lock of its three conditions (checked in _compat):
        # taken directly, it spares the two Python-level calls of Condition's
        # __enter__/__exit__, a fifth of an uncontended put or get.
        with q.mutex:
            if not q._qsize():
                if _SHUTDOWN:
                    _wait_item_or_shutdown(q, seconds, stop)
                else:
                    call = Limits(seconds, stop, "queue get")
                    wait_condition(call, q.not_empty, q._qsize, error=QueueEmptyDeadline)
            item = q._get()
            # notify() with nobody waiting only checks lock ownership, at a cost
            # comparable to the rest of the get; skipping it is what keeps an
            # uncontended get near the plain Queue.get's speed.
            if q.not_full._waiters:  # type: ignore[attr-defined]
                q.not_full.notify()
            return item
    if isinstance(q, _SLICED):
        return _sliced(Limits(seconds, stop, "queue get"), q.get, queue.Empty)
    raise _unsupported(q)


def put(
    q: AnyQueue[T],
    item: T,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> None:
    """Put ``item`` in the queue, waiting at most ``timeout`` seconds for room.

    Raises ``Stopped`` or ``QueueFullDeadline`` (a ``queue.Full``) without having
    enqueued the item. An unbounded queue never waits, but a set stop still raises.
    """
    seconds = begin(timeout, stop)
    if isinstance(q, _Queue):
        with q.mutex:  # as in get()
            if _SHUTDOWN and q.is_shutdown:  # type: ignore[attr-defined]
                raise _ShutDown
            if 0 < q.maxsize <= q._qsize():
                room = q  # narrowed, for the closure
                wait_condition(
                    Limits(seconds, stop, "queue put"),
                    q.not_full,
                    lambda: (
                        not 0 < room.maxsize <= room._qsize() or _compat.queue_is_shutdown(room)
                    ),
                    error=QueueFullDeadline,
                )
                if _SHUTDOWN and q.is_shutdown:  # type: ignore[attr-defined]
                    raise _ShutDown
            q._put(item)
            q.unfinished_tasks += 1
            if q.not_empty._waiters:  # type: ignore[attr-defined] # as in get()
                q.not_empty.notify()
            return
    if isinstance(q, queue.SimpleQueue):
        q.put(item)  # unbounded: never blocks
        return
    if isinstance(q, _SLICED_PUT):
        sliced_queue: Any = q  # for the closure
        call = Limits(seconds, stop, "queue put")
        _sliced(call, lambda block, seconds: sliced_queue.put(item, block, seconds), queue.Full)
        return
    raise _unsupported(q)


def _wait_item_or_shutdown(q: queue.Queue[Any], seconds: float, stop: StopLike | None) -> None:
    """Wait (holding ``q.not_empty``) for an item, or raise ``ShutDown`` as ``Queue.get``.

    A shut-down queue still gives its items; once empty, it raises at once.
    """
    if q.is_shutdown:  # type: ignore[attr-defined]
        raise _ShutDown
    call = Limits(seconds, stop, "queue get")
    wait_condition(
        call,
        q.not_empty,
        lambda: q._qsize() or q.is_shutdown,  # type: ignore[attr-defined]
        error=QueueEmptyDeadline,
    )
    if not q._qsize():
        raise _ShutDown


def _sliced(
    call: Limits,
    operation: Callable[[bool, float | None], R],
    nothing: type[queue.Empty] | type[queue.Full],
) -> R:
    """Wait in polled slices, each an atomic ``operation(block, timeout)``."""
    error = QueueEmptyDeadline if nothing is queue.Empty else QueueFullDeadline

    def attempt(seconds: float) -> R | NotYet:
        try:
            return operation(seconds > 0, seconds if seconds > 0 else None)
        except nothing:
            return NOT_YET

    return wait_loop(call, attempt, wake=None, error=error)


class take(Generic[T]):  # a context manager used like a function
    """Take a work item that goes back on the queue if the worker is stopped.

    ::

        with queues.take(q, timeout=1, stop=stop) as item:
            handle(item)

    The item is taken (as ``get`` would) when the block is entered. If the block
    ends normally, or by an ordinary exception (the item's own failure, re-raised),
    the item counts as handled: ``task_done()`` is called where the queue has it. If
    it ends by a ``Stopped``, ``KeyboardInterrupt`` or any other ``BaseException``
    that is not an ``Exception`` (a request to stop, not a fault of the item), the
    item is put back, so another worker handles it: never lost, never done twice.

    Put back means the queue's own ordering (``_put``: the back of a FIFO queue, the
    top of a LIFO one, its place in a priority queue), without waiting for room, so
    a bounded queue can briefly hold one item more than ``maxsize``, rather than the
    put-back blocking or failing. ``queue.Queue`` (and subclasses) and
    ``queue.SimpleQueue`` are supported; ``multiprocessing`` queues are not, as their
    put can block or fail.
    """

    __slots__ = ("_item", "_q", "_stop", "_taken", "_timeout")

    def __init__(
        self,
        q: queue.Queue[T] | queue.SimpleQueue[T],
        *,
        timeout: float,
        stop: StopLike | None = None,
    ) -> None:
        if not isinstance(q, queue.Queue | queue.SimpleQueue):
            raise TypeError(
                "take() needs a queue.Queue (or subclass) or queue.SimpleQueue, "
                f"got {type(q).__name__}"
            )
        self._q = q
        self._timeout = timeout
        self._stop = stop
        self._taken = False

    def __enter__(self) -> T:
        if self._taken:
            raise RuntimeError("take() can be entered only once")
        self._item: T = get(self._q, timeout=self._timeout, stop=self._stop)
        self._taken = True
        return self._item

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        q, item = self._q, self._item
        del self._item  # the block is done with it; do not keep it alive
        if exc is None or isinstance(exc, Exception):
            if isinstance(q, queue.Queue):
                q.task_done()
        elif isinstance(q, queue.Queue) and _internals:
            with q.mutex:
                q._put(item)
                # unfinished_tasks unchanged: the item is still one unfinished task.
                q.not_empty.notify()
        elif isinstance(q, queue.Queue):  # pragma: no cover - forced by the tests
            # The public put, without the internals: it may wait for room (the item
            # must not be dropped), and counts one more task, which task_done() evens.
            q.put(item)  # the item is never dropped: a getter frees room
            q.task_done()
        else:
            q.put(item)


def join(q: queue.Queue[Any], *, timeout: float, stop: StopLike | None = None) -> None:
    """``q.join()``, waiting at most ``timeout`` seconds for every item to be done.

    Returns once ``task_done()`` has been called for every item put (at once if
    none is pending). Raises ``Stopped`` if a stop is (or becomes) set and
    ``DeadlineExceeded`` when time runs out; the queue is left as it was either way.
    ``queue.Queue`` and its subclasses only: a ``multiprocessing.JoinableQueue`` has
    no condition a stop could notify.
    """
    seconds = begin(timeout, stop)
    if not isinstance(q, _Queue):
        raise TypeError(f"q must be a queue.Queue (or subclass), got {type(q).__name__}")
    with q.all_tasks_done:
        if q.unfinished_tasks:
            pending = q  # narrowed, for the closure
            wait_condition(
                Limits(seconds, stop, "queue join"),
                q.all_tasks_done,
                lambda: not pending.unfinished_tasks,
            )


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

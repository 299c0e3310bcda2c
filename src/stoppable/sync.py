"""Locks, events, conditions, barriers and thread joins with a deadline and a stop.

How each wait is woken by a ``StopEvent``:

- ``threading.Event``, ``Condition``, ``Semaphore``/``BoundedSemaphore`` and
  ``StopEvent``: through their own condition, which the stop notifies (no polling).
- ``Barrier``: the stop aborts the barrier. A barrier whose party has stopped can
  never fill, so the other parties get ``BrokenBarrierError`` at once, as they do in
  the standard library when one party times out.
- ``Lock``/``RLock`` and ``Thread.join`` (of a thread not made by this module):
  nothing can wake these waits, so they run in slices of the poll interval
  (``stoppable.set_poll_interval``; 50 ms by default).

A waiter stopped while waiting for a lock never holds it: ``acquire`` either returns
with the lock held or raises without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar, overload

from . import _args, _compat, _limits
from ._errors import DeadlineExceeded, Stopped
from ._guard import guard as _guard
from ._limits import Limits, StopLike, limits, scope
from ._stop import StopEvent
from ._wait import (
    NOT_YET,
    NotYet,
    _notify_all,
    _register,
    wait_condition,
    wait_loop,
)

__all__ = ["BarrierDeadline", "Held", "Thread", "acquire", "join", "wait"]

T = TypeVar("T")


class BarrierDeadline(DeadlineExceeded, threading.BrokenBarrierError):
    """A barrier wait timed out: both ``DeadlineExceeded`` and ``BrokenBarrierError``."""


class _Lockable(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


L = TypeVar("L", bound=_Lockable)


class Held:
    """An acquired lock or semaphore; a context manager that releases it on exit.

    ``acquire`` returns it with the lock already held, so both forms work::

        with sync.acquire(lock, timeout=1, stop=stop):
            ...                                   # released however the block ends

        held = sync.acquire(lock, timeout=1, stop=stop)
        try: ...
        finally: held.release()
    """

    __slots__ = ("_lock",)

    def __init__(self, lock: _Lockable) -> None:
        self._lock: _Lockable | None = lock

    def release(self) -> None:
        """Release the lock; a second call is an error, as for the lock itself."""
        lock, self._lock = self._lock, None
        if lock is None:
            raise RuntimeError("release() called twice")
        lock.release()

    def __enter__(self) -> Held:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def acquire(lock: _Lockable, *, timeout: float, stop: StopLike | None = None) -> Held:
    """Acquire ``lock``, waiting at most ``timeout`` seconds in all.

    Takes a Lock, RLock, Semaphore, BoundedSemaphore, or any object with
    ``acquire(blocking, timeout)``.
    Returns a ``Held`` (a context manager that releases). Raises ``Stopped`` or
    ``DeadlineExceeded`` without holding the lock.
    """
    call = limits(timeout, stop, "lock acquire")
    if not callable(getattr(lock, "acquire", None)) or not callable(getattr(lock, "release", None)):
        raise TypeError(
            "lock must be a Lock, RLock, Semaphore or an object with acquire(blocking, "
            f"timeout) and release(), got {type(lock).__name__}"
        )
    if isinstance(lock, threading.Semaphore) and _compat.SEMAPHORE_INTERNALS:
        _acquire_semaphore(call, lock)
    elif not lock.acquire(False):

        def attempt(seconds: float) -> bool | NotYet:
            got = lock.acquire(True, seconds) if seconds > 0 else lock.acquire(False)
            return True if got else NOT_YET

        wait_loop(call, attempt, wake=None)
    return Held(lock)


def _acquire_semaphore(call: Limits, semaphore: threading.Semaphore) -> None:
    # threading.Semaphore is a counter under a condition; waiting on that condition
    # (as Semaphore.acquire itself does) lets a stop wake the wait. The internals are
    # checked by _compat (SEMAPHORE_INTERNALS).
    cond = _compat.semaphore_cond(semaphore)
    with cond:
        if _compat.semaphore_value(semaphore) <= 0:
            wait_condition(call, cond, lambda: _compat.semaphore_value(semaphore) > 0)
        _compat.semaphore_take(semaphore)


@overload
def wait(waitable: threading.Barrier, *, timeout: float, stop: StopLike | None = None) -> int: ...
@overload
def wait(
    waitable: threading.Condition,
    *,
    timeout: float,
    stop: StopLike | None = None,
    predicate: Callable[[], T],
) -> T: ...
@overload
def wait(
    waitable: threading.Event | StopEvent | threading.Condition,
    *,
    timeout: float,
    stop: StopLike | None = None,
) -> bool: ...
def wait(
    waitable: threading.Event | StopEvent | threading.Condition | threading.Barrier,
    *,
    timeout: float,
    stop: StopLike | None = None,
    predicate: Callable[[], Any] | None = None,
) -> Any:
    """Wait for an event, a condition or a barrier, at most ``timeout`` seconds.

    - ``threading.Event`` / ``StopEvent``: until it is set; returns ``True``.
    - ``threading.Condition`` (held by the caller, as for ``Condition.wait``): with a
      ``predicate``, until it returns a true value, which is returned (as
      ``wait_for`` does); without, until notified, returning ``True``.
    - ``threading.Barrier``: until all parties arrive; returns the index, as
      ``Barrier.wait`` does. A stop aborts the barrier (see the module docstring).

    Raises ``Stopped``, or when time runs out ``DeadlineExceeded`` (a
    ``BarrierDeadline`` for a barrier, which the barrier is broken by, as in the
    standard library). Waiting on the very ``StopEvent`` that is also this call's
    stop raises ``Stopped`` when it is set.
    """
    if predicate is not None and not isinstance(waitable, threading.Condition):
        raise TypeError("predicate is only for a threading.Condition")
    _args.check_callable(predicate, "predicate", optional=True)
    if isinstance(waitable, threading.Barrier):
        return _wait_barrier(limits(timeout, stop, "barrier wait"), waitable)
    if isinstance(waitable, threading.Event):
        call = limits(timeout, stop, "event wait")
        _wait_event(call, waitable)
        return True
    if isinstance(waitable, StopEvent):
        return _wait_stop_event(limits(timeout, stop, "event wait"), waitable)
    if isinstance(waitable, threading.Condition):
        call = limits(timeout, stop, "condition wait")
        if predicate is not None:
            return _wait_for(call, waitable, predicate)
        return _wait_notified(call, waitable)
    raise TypeError(
        "waitable must be a threading.Event, StopEvent, Condition or Barrier, "
        f"got {type(waitable).__name__}"
    )


def _wait_event(call: Limits, event: threading.Event) -> None:
    if event.is_set():
        return
    if not _compat.EVENT_COND:  # pragma: no cover - forced by the tests

        def attempt(seconds: float) -> bool | NotYet:
            return True if event.wait(seconds) else NOT_YET

        wait_loop(call, attempt, wake=None)
        return
    cond = _compat.event_cond(event)
    with cond:
        if not event.is_set():
            wait_condition(call, cond, event.is_set)


def _wait_stop_event(call: Limits, event: StopEvent) -> bool:
    # A condition of this wait's own, notified by a callback on the awaited event:
    # waiting under the event's internal lock would deadlock when the event is also
    # one of the call's stops (registering the stop's wake-up takes that lock).
    cond = threading.Condition(threading.Lock())
    with cond:
        key = event._register(lambda: _notify_all(cond))
        if key is None:
            return True
        try:
            wait_condition(call, cond, event.is_set)
        finally:
            event._unregister(key)
    call.raise_if_stopped()  # the awaited event may be the call's own stop
    return True


def _wait_for(call: Limits, cond: threading.Condition, predicate: Callable[[], T]) -> T:
    last: list[T] = []

    def ready() -> T:
        value = predicate()
        last[:] = [value]
        return value

    wait_condition(call, cond, ready)
    return last[0]


def _wait_notified(call: Limits, cond: threading.Condition) -> bool:
    def attempt(seconds: float) -> bool | NotYet:
        if seconds <= 0 or not cond.wait(seconds):
            return NOT_YET
        # A stop wakes this wait with notify_all: that is not the notify awaited.
        return NOT_YET if any(stop.is_set() for stop in call.stops) else True

    try:
        return wait_loop(call, attempt, wake=lambda: _notify_all(cond))
    except Stopped:
        # The stop's wake-up may have coincided with a real notify(); pass one on so
        # it is not lost (a spurious wake-up elsewhere is harmless by contract).
        cond.notify()
        raise


def _wait_barrier(call: Limits, barrier: threading.Barrier) -> int:
    # Slicing is impossible here (a Barrier.wait that times out breaks the barrier),
    # so a stop wakes it by aborting, and a stop that is only polled is watched by a
    # helper thread for the length of the wait.
    finished = threading.Lock()
    done = False

    def abort() -> None:
        with finished:
            if not done:
                barrier.abort()

    registered = _register(call, abort)
    watcher = _PolledStopWatcher(call, abort) if call.has_polled_stop() else None
    try:
        try:
            # Clamped to half what a lock accepts (146 years: Barrier.wait adds and
            # subtracts the clock, whose rounding must not push it over), not to
            # MAX_BLOCK: a Barrier.wait that times out breaks the barrier for good.
            index = barrier.wait(timeout=min(max(call.remaining(), 0.0), _BARRIER_MAX))
        finally:
            with finished:
                done = True
    except threading.BrokenBarrierError as err:
        call.raise_if_stopped()
        if call.remaining() <= 0:
            raise call.deadline_error(BarrierDeadline) from err
        raise
    finally:
        for event, key in registered:
            event._unregister(key)
        if watcher is not None:
            watcher.close()
    return index


_BARRIER_MAX = threading.TIMEOUT_MAX / 2


class _PolledStopWatcher:
    """A helper thread that runs ``on_stop`` when one of ``call``'s stops is set."""

    def __init__(self, call: Limits, on_stop: Callable[[], object]) -> None:
        self._closed = threading.Event()
        self._call = call
        self._on_stop = on_stop
        self._thread = threading.Thread(target=self._watch, name="stoppable-stop-watcher")
        self._thread.daemon = True
        self._thread.start()

    def _watch(self) -> None:
        interval = _limits.get_poll_interval()
        while not self._closed.wait(interval):
            if any(stop.is_set() for stop in self._call.stops):
                self._on_stop()
                return

    def close(self) -> None:
        self._closed.set()
        self._thread.join()  # noqa: STP100 - it ends within a poll interval of _closed


def join(thread: threading.Thread, *, timeout: float, stop: StopLike | None = None) -> None:
    """Wait at most ``timeout`` seconds for ``thread`` to end.

    A ``stoppable.sync.Thread`` (not subclassed with its own ``run``) signals its end,
    which wakes the wait at once; any other thread is joined in slices of the poll
    interval. Raises ``Stopped`` or ``DeadlineExceeded`` if it is still running.
    """
    if not isinstance(thread, threading.Thread):
        raise TypeError(f"thread must be a threading.Thread, got {type(thread).__name__}")
    call = limits(timeout, stop, f"join of thread {thread.name!r}")
    thread.join(0)  # the standard errors: not started yet, or joining itself
    if not thread.is_alive():
        return
    if isinstance(thread, Thread) and type(thread).run is Thread.run:
        _wait_event(call, thread._ran)

    def attempt(seconds: float) -> NotYet | None:
        thread.join(seconds)
        return NOT_YET if thread.is_alive() else None

    # After run() returns, the thread needs microseconds more to finish.
    wait_loop(call, attempt, wake=None)


class Thread(threading.Thread):
    """A thread that owns a ``StopEvent`` and hands it to its target.

    ::

        def work(q, *, stop):
            while True:
                handle(queues.get(q, timeout=60, stop=stop))

        t = sync.Thread(target=work, args=(q,))
        t.start()
        ...
        t.stop_and_join(timeout=2)

    The target is called as ``target(*args, stop=self.stop, **kwargs)``, inside a
    ``stoppable.scope(stop=self.stop)``, so every ``stoppable`` call it makes honours
    the stop even without passing it. With ``guard=True`` it runs inside a
    ``stoppable.guard(stop=self.stop)`` instead: every blocking call it makes, through
    any library (a plain ``q.get()``, a redis-py or botocore call), ends with
    ``Stopped`` when the thread is stopped. A target that ends by ``Stopped`` ends the
    thread quietly (the exception is kept in ``stopped``); other exceptions are
    reported by ``threading.excepthook`` as usual. With ``parent``, the thread's stop
    is a ``child()`` of it: stopping the parent stops the thread.

    The arguments are ``threading.Thread``'s, in its order (``group`` must be
    ``None``), plus ``parent``.
    """

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
        parent: StopEvent | None = None,
        guard: bool = False,
    ) -> None:
        if group is not None:
            # threading.Thread's order: Thread(fn, ...) would make fn the group.
            raise TypeError(
                f"group must be None, as for threading.Thread, got {type(group).__name__}; "
                "pass the function as target=..."
            )
        _args.check_callable(target, "target", optional=True)
        if name is not None:
            _args.check_type(name, str, "name", "a str or None")
        _args.check_iterable(args, "args")
        _args.check_mapping(kwargs, "kwargs", optional=True)
        if daemon is not None:
            _args.check_type(daemon, bool, "daemon", "a bool or None")
        if not isinstance(guard, bool):
            raise TypeError(f"guard must be a bool, got {type(guard).__name__} {guard!r}")
        if parent is not None and not isinstance(parent, StopEvent):
            raise TypeError(f"parent must be a StopEvent, got {type(parent).__name__}")
        super().__init__(name=name, daemon=daemon)
        self._guarded = guard
        self.stop: StopEvent = StopEvent() if parent is None else parent.child()
        """This thread's stop: set it (or its parent) to ask the thread to end."""
        self.stopped: Stopped | None = None
        """The ``Stopped`` the target ended with, if it ended by a stop."""
        self._work = target
        self._work_args = tuple(args)
        self._work_kwargs = dict(kwargs or {})
        self._ran = threading.Event()

    def run(self) -> None:
        """Call the target with the thread's stop; a ``Stopped`` ends it quietly."""
        try:
            if self._work is not None:
                with _guard(stop=self.stop) if self._guarded else scope(stop=self.stop):
                    self._work(*self._work_args, stop=self.stop, **self._work_kwargs)
        except Stopped as exc:
            self.stopped = exc
        finally:
            # Drop the references, as threading.Thread does, and signal join().
            self._work, self._work_args, self._work_kwargs = None, (), {}
            self._ran.set()

    def stop_and_join(self, *, timeout: float, reason: object = None) -> None:
        """Set this thread's stop and wait at most ``timeout`` seconds for it to end.

        Raises ``DeadlineExceeded`` if it is still running then (a target that
        ignores its stop).
        """
        self.stop.set(reason)
        join(self, timeout=timeout)


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

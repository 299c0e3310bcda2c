"""The one waiting loop every family uses, and the ways a wait can be woken.

A family describes its wait by an ``attempt(seconds)`` function: try the operation,
blocking for at most ``seconds`` (``0`` means do not block), and return its result,
or ``NOT_YET``. The loop owns everything else: the stop check before each attempt,
the deadline arithmetic, the final non-blocking attempt when time is up, the slice
for stops that must be polled, and registering (then unregistering) the wake-up.

Families differ only in how a ``StopEvent`` interrupts their blocking step:

- ``wake=<callable>``: the blocking step is a condition wait; the callable (which
  notifies that condition) is registered on each ``StopEvent`` for the length of the
  wait and removed when it ends.
- ``wake=WAKE_BY_FD``: the blocking step is a ``poll`` that includes each
  ``StopEvent``'s wake-up descriptor (see ``fd_waiter``).
- ``wake=None``: nothing can interrupt the blocking step (``Lock.acquire``,
  ``Thread.join``), so it runs in slices of the poll interval.

A plain ``threading.Event`` as a stop cannot wake anything, so any wait that has one
also runs in slices.
"""

from __future__ import annotations

import contextlib
import enum
import math
import select
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

from . import _limits
from ._errors import DeadlineExceeded, Stopped
from ._limits import Limits, StopLike, begin, validate_timeout
from ._stop import StopEvent

__all__ = [
    "NOT_YET",
    "WAKE_BY_FD",
    "NotYet",
    "fd_waiter",
    "sleep",
    "wait_condition",
    "wait_loop",
]

T = TypeVar("T")


class NotYet(enum.Enum):
    """The type of ``NOT_YET``."""

    NOT_YET = enum.auto()


NOT_YET: Final = NotYet.NOT_YET


class _WakeByFd(enum.Enum):
    WAKE_BY_FD = enum.auto()


WAKE_BY_FD: Final = _WakeByFd.WAKE_BY_FD

_monotonic = time.monotonic


def wait_loop(
    call: Limits,
    attempt: Callable[[float], T | NotYet],
    *,
    wake: Callable[[], object] | _WakeByFd | None,
    error: Callable[..., DeadlineExceeded] = DeadlineExceeded,
) -> T:
    """Run ``attempt`` until it returns a result, a stop is set, or time is up.

    Raises ``Stopped`` or ``call.deadline_error(error)``. Each attempt blocks for the
    time left, or for the poll interval where the stop cannot wake it.
    """
    registered = _register(call, wake) if callable(wake) else []
    sliced = wake is None or call.has_polled_stop()
    interval = _limits.get_poll_interval()
    try:
        while True:
            call.raise_if_stopped()
            remaining = call.deadline - _monotonic()
            if remaining <= 0:
                # One last try without blocking, as the standard library does: a
                # result that is already there is returned, not thrown away.
                result = attempt(0.0)
                if result is not NOT_YET:
                    return result
                raise call.deadline_error(error)
            result = attempt(min(remaining, interval) if sliced else remaining)
            if result is not NOT_YET:
                return result
    finally:
        for event, key in registered:
            event._unregister(key)


def _register(call: Limits, wake: Callable[[], object]) -> list[tuple[StopEvent, int]]:
    registered: list[tuple[StopEvent, int]] = []
    for event in call.stop_events():
        key = event._register(wake)
        if key is None:  # set since the entry check
            for other, other_key in registered:
                other._unregister(other_key)
            raise Stopped(event.reason)
        registered.append((event, key))
    return registered


def _notify_all(cond: threading.Condition) -> None:
    with cond:
        cond.notify_all()


class _Waiter:
    """A waiter in a ``threading.Condition``'s queue that a stop can release too.

    ``Condition.notify`` releases the lock of each waiter it wakes; so does a stop's
    callback, directly: no condition lock is taken in ``StopEvent.set()``, which
    makes waking a thousand condition waiters as cheap as releasing a thousand locks,
    and ``set()`` free of any lock a waiter's owner may hold. Whichever releases
    first wakes the waiter; the second release is a no-op.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rearm()  # held until a notify() or a stop releases it

    def release(self) -> None:
        # Called by Condition.notify() (which then counts this waiter as woken) or by
        # a stop. A wake-up "spent" on a waiter that a stop had already woken is not
        # lost: the waiter takes what is ready before it looks at the stop, and
        # passes a notify on if it leaves without taking it (wait_condition).
        with contextlib.suppress(RuntimeError):
            self._lock.release()

    def rearm(self) -> None:
        self._lock.acquire(False)

    def block(self, seconds: float) -> None:
        self._lock.acquire(True, seconds)


def wait_condition(
    call: Limits,
    cond: threading.Condition,
    ready: Callable[[], object],
    *,
    error: Callable[..., DeadlineExceeded] = DeadlineExceeded,
) -> None:
    """Wait, holding ``cond`` as the caller does, until ``ready()`` is true.

    Returns with ``cond`` held and ``ready()`` true, or raises with ``cond`` held.
    The wait is ``Condition.wait``'s own protocol (a waiter lock in the condition's
    ``_waiters`` queue, the lock released with ``_release_save`` and taken back with
    ``_acquire_restore``, unchanged since Python 2 and checked by the tests), with a
    ``_Waiter`` that a stop releases directly. When this waiter leaves by raising
    while ``ready()`` is true, it may have absorbed the ``notify()`` meant for the
    waiter that should take the item, so it passes one on: no wake-up is lost.
    """
    if not cond._is_owned():  # type: ignore[attr-defined]
        raise RuntimeError("cannot wait on un-acquired lock")
    waiter = _Waiter()
    waiters = cond._waiters  # type: ignore[attr-defined]

    def attempt(seconds: float) -> bool | NotYet:
        if ready():
            return True
        if seconds > 0:
            waiter.rearm()
            waiters.append(waiter)
            # Armed first, then the stop checked: a stop set in between released
            # the armed lock, so the block below returns at once.
            if not any(stop.is_set() for stop in call.stops):
                saved = cond._release_save()  # type: ignore[attr-defined]
                try:
                    waiter.block(seconds)
                finally:
                    cond._acquire_restore(saved)  # type: ignore[attr-defined]
            with contextlib.suppress(ValueError):  # notify() removed it already
                waiters.remove(waiter)
            if ready():
                return True
        return NOT_YET

    try:
        wait_loop(call, attempt, wake=waiter.release, error=error)
    except BaseException:
        if ready():
            cond.notify()
        raise


def fd_waiter(call: Limits, fd: int, mask: int) -> Callable[[float], bool]:
    """A blocking step for ``wait_loop(..., wake=WAKE_BY_FD)`` on descriptor ``fd``.

    The returned function polls ``fd`` for ``mask`` (``select.POLLIN``/``POLLOUT``)
    together with each ``StopEvent``'s wake-up descriptor, for at most ``seconds``,
    and says whether ``fd`` itself is ready. ``poll`` has no ``FD_SETSIZE`` limit.
    """
    poller = select.poll()
    poller.register(fd, mask)
    for event in call.stop_events():
        poller.register(event.fileno(), select.POLLIN)

    def block(seconds: float) -> bool:
        # Rounded up: a remainder below 1 ms must still block, not spin.
        events = poller.poll(math.ceil(seconds * 1000))
        return any(ready_fd == fd for ready_fd, _ in events)

    return block


def sleep(seconds: float, *, stop: StopLike | None = None) -> None:
    """``time.sleep(seconds)`` that a stop ends at once (``Stopped``).

    Returns after ``seconds``, as ``time.sleep`` does. Raises ``Stopped`` as soon as
    ``stop`` or an enclosing scope's stop is set (a ``StopEvent`` wakes it, a plain
    ``threading.Event`` is polled), and ``DeadlineExceeded`` if an enclosing scope's
    deadline comes before the end of the sleep: a retry loop's back-off never
    outlives the budget of the work it retries.
    """
    seconds = begin(validate_timeout(seconds, "seconds"), stop)
    if seconds == 0:
        return
    call = Limits(seconds, stop, "sleep")
    waiter = _Waiter()  # its lock stays held: only a stop releases it

    def attempt(slice_: float) -> NotYet:
        if slice_ > 0:
            waiter.block(slice_)
            waiter.rearm()
        return NOT_YET

    try:
        wait_loop(call, attempt, wake=waiter.release)
    except DeadlineExceeded:
        if call.from_scope:
            raise

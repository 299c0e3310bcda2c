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
  ``StopEvent``'s wake-up descriptor, held for the length of the wait (see
  ``StopFds``).
- ``wake=None``: nothing can interrupt the blocking step (``Lock.acquire``,
  ``Thread.join``), so it runs in slices of the poll interval.

A plain ``threading.Event`` as a stop cannot wake anything, so any wait that has one
also runs in slices.

Whatever the timeout, one blocking step lasts at most ``MAX_BLOCK`` seconds (a
day): every primitive below accepts that much (``Lock.acquire`` up to
``threading.TIMEOUT_MAX``, ``poll`` up to 2**31 - 1 ms, about 24.8 days), and the loop
goes on while time is left, so ``timeout=1e300`` is a long wait, not an
``OverflowError``.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, TypeVar

from . import _compat, _limits
from ._errors import DeadlineExceeded, Stopped
from ._limits import Limits, StopLike, begin
from ._stop import StopEvent

__all__ = [
    "MAX_BLOCK",
    "NOT_YET",
    "WAKE_BY_FD",
    "NotYet",
    "StopFds",
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

# The longest single blocking step, in seconds: below every primitive's maximum.
MAX_BLOCK: Final = 86_400.0


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
    registered: list[tuple[StopEvent, int]] = []
    sliced = wake is None or call.has_polled_stop()
    interval = _limits.get_poll_interval()
    try:
        if callable(wake):
            registered = _register(call, wake)
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
            result = attempt(min(remaining, interval if sliced else MAX_BLOCK))
            if result is not NOT_YET:
                return result
    finally:
        for event, key in registered:
            # Once set, the event has dropped its callbacks already (_unregister would
            # do nothing): no call on the way out of each of a thousand woken waiters.
            if not event._flag:
                event._unregister(key)


def _register(call: Limits, wake: Callable[[], object]) -> list[tuple[StopEvent, int]]:
    registered: list[tuple[StopEvent, int]] = []
    try:
        for event in call.stop_events():
            key = event._register(wake)
            if key is None:  # set since the entry check
                raise Stopped(event.reason)
            registered.append((event, key))
    except BaseException:  # a Ctrl-C among the registrations too: none stays behind
        for other, other_key in registered:
            other._unregister(other_key)
        raise
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
        # A bare try, not contextlib.suppress: this runs in StopEvent.set() before the
        # waiter can wake, and the context manager's two calls are most of its cost.
        try:  # noqa: SIM105
            self._lock.release()
        except RuntimeError:
            pass

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
    if not _compat.CONDITION_PROTOCOL:
        _wait_condition_polled(call, cond, ready, error)
        return
    if not _compat.condition_is_owned(cond):
        raise RuntimeError("cannot wait on un-acquired lock")
    waiter = _Waiter()
    waiters = _compat.condition_waiters(cond)
    release_save, acquire_restore = _compat.condition_save_restore(cond)

    def attempt(seconds: float) -> bool | NotYet:
        if ready():
            return True
        if seconds > 0:
            waiter.rearm()
            # Whatever ends this step (a notify, a stop, the time, or an exception
            # raised by a signal handler inside the block or the lock's retaking),
            # the waiter leaves the queue: a waiter left behind would absorb the
            # next notify() meant for a live one, which would then never wake.
            try:
                waiters.append(waiter)
                # Armed first, then the stop checked: a stop set in between released
                # the armed lock, so the block below returns at once.
                if not any(stop.is_set() for stop in call.stops):
                    saved = release_save()
                    try:
                        waiter.block(seconds)
                    finally:
                        acquire_restore(saved)
            finally:
                # On the woken waiter's way out (a bare try for speed, as in release()).
                try:  # noqa: SIM105
                    waiters.remove(waiter)
                except ValueError:  # notify() removed it already
                    pass
            if ready():
                return True
        return NOT_YET

    try:
        wait_loop(call, attempt, wake=waiter.release, error=error)
    except BaseException:
        if ready():
            cond.notify()
        raise


def _wait_condition_polled(
    call: Limits,
    cond: threading.Condition,
    ready: Callable[[], object],
    error: Callable[..., DeadlineExceeded],
) -> None:
    """``wait_condition`` through the public ``Condition.wait``, in polled slices.

    The fallback where ``Condition``'s private protocol is not as relied on: correct,
    but a stop is noticed within a poll interval instead of at once.
    """

    def attempt(seconds: float) -> bool | NotYet:
        if ready():
            return True
        if seconds > 0:
            cond.wait(seconds)
            if ready():
                return True
        return NOT_YET

    try:
        wait_loop(call, attempt, wake=None, error=error)
    except BaseException:
        if ready():
            cond.notify()
        raise


class StopFds:
    """Hold the wake-up descriptors of ``call``'s ``StopEvent``s for one wait.

    ``with StopFds(call) as fds:`` gives the descriptors to ``poll`` beside the
    waited-on one; they stay open until the block ends, then each closes unless
    another wait (or a caller of ``fileno()``) still holds it. Can be entered again
    once exited (a waiter kept between waits).
    """

    __slots__ = ("_events", "fds")

    def __init__(self, call: Limits) -> None:
        self._events = call.stop_events()
        self.fds: list[int] = []

    def __enter__(self) -> list[int]:
        fds = self.fds
        try:
            for event in self._events:
                fds.append(event._hold_fd())
        except BaseException:  # EMFILE, or Ctrl-C: give back what was taken
            self._release()
            raise
        return fds

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        held, self.fds = len(self.fds), []
        for event in self._events[:held]:
            event._release_fd()


def sleep(seconds: float, *, stop: StopLike | None = None) -> None:
    """``time.sleep(seconds)`` that a stop ends at once (``Stopped``).

    Returns after ``seconds``, as ``time.sleep`` does. Raises ``Stopped`` as soon as
    ``stop`` or an enclosing scope's stop is set (a ``StopEvent`` wakes it, a plain
    ``threading.Event`` is polled), and ``DeadlineExceeded`` if an enclosing scope's
    deadline comes before the end of the sleep: a retry loop's back-off never
    outlives the budget of the work it retries.
    """
    seconds = begin(seconds, stop, "seconds")
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

"""Waits inside a guard: ``time.sleep``, ``threading`` waits and joins, subprocess waits.

- ``time.sleep``: a ``poll`` of the stops' wake-up descriptors for the time asked, so a
  stop ends it at once; the guard's deadline ends it with ``DeadlineExceeded``.
- ``threading.Condition.wait``: the waiter that ``Condition.wait`` itself uses, which a
  stop releases directly. ``Event``, ``Semaphore``, ``Barrier``, ``queue.Queue`` and
  ``concurrent.futures`` all wait through it, so all are reached. Its own timeout
  still returns ``False`` as usual. A barrier party interrupted by the guard breaks
  the barrier, as one that times out does.
- ``Thread.join``: nothing can wake it, so it runs in slices of the poll interval.
- ``subprocess.Popen.wait``: a pidfd polled beside the stops where the kernel has one,
  slices otherwise; ``communicate()`` without a timeout is given one the guard bounds,
  so it reads the pipes through a (guarded) selector instead of a blocking ``read()``.
  An interrupted wait leaves the child running, as the standard library's timeout
  does (``subprocess.run`` kills it on the way out).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import subprocess
import threading
import time

from .._errors import Stopped
from .._wait import NOT_YET, WAKE_BY_FD, NotYet, _Waiter
from ._install import Patch, wraps_all
from ._state import (
    OwnTimeout,
    active,
    call_limits,
    check,
    current_state,
    note,
    run_wait,
)

__all__ = ["patches"]

_sleep = time.sleep
_new_poll = select.poll
_cond_wait = threading.Condition.wait
_join = threading.Thread.join
_barrier_wait = threading.Barrier.wait
_popen_wait = subprocess.Popen.wait
_popen_communicate = subprocess.Popen.communicate
_POLLIN = select.POLLIN
_pidfd_open = getattr(os, "pidfd_open", None)


def _ms(seconds: float) -> int:
    return min(math.ceil(seconds * 1000), 86_400_000)


def sleep(secs: float) -> None:
    record = active.get()
    if record is None:
        _sleep(secs)
        return
    if not isinstance(secs, int | float) or not secs >= 0:  # NaN too
        _sleep(secs)  # the standard TypeError/ValueError
        return
    state = current_state()
    check(record, state, "sleep")
    call = call_limits(float(secs), "sleep")
    poller = _new_poll()
    for event in call.stop_events():
        poller.register(event.fileno(), _POLLIN)

    def attempt(seconds: float) -> NotYet:
        if seconds > 0:
            poller.poll(_ms(seconds))
        return NOT_YET

    with contextlib.suppress(OwnTimeout):  # slept the whole time
        run_wait(record, state, call, attempt, WAKE_BY_FD)


def condition_wait(self: threading.Condition, timeout: float | None = None) -> bool:
    record = active.get()
    if record is None:
        return _cond_wait(self, timeout)
    if not self._is_owned():  # type: ignore[attr-defined]
        raise RuntimeError("cannot wait on un-acquired lock")
    own = None if timeout is None else max(float(timeout), 0.0)
    if own == 0.0:
        return _cond_wait(self, 0)  # does not wait
    state = current_state()
    check(record, state, "condition wait")
    call = call_limits(own, "condition wait")
    # Condition.wait's own protocol (a waiter lock in the condition's queue, released
    # by notify(), which also takes it out of the queue), with a waiter that a stop
    # releases too: no condition lock is taken by StopEvent.set().
    waiter = _Waiter()
    waiters = self._waiters  # type: ignore[attr-defined]
    waiters.append(waiter)
    lock = waiter._lock

    def attempt(seconds: float) -> bool | NotYet:
        got = lock.acquire(True, seconds) if seconds > 0 else lock.acquire(False)
        return True if got else NOT_YET

    released: bool | None = None
    saved = self._release_save()  # type: ignore[attr-defined]
    try:
        try:
            run_wait(record, state, call, attempt, waiter.release)
            released = True
        except OwnTimeout:
            released = False
    finally:
        self._acquire_restore(saved)  # type: ignore[attr-defined]
        # Under the condition's lock again: a notify() that woke this waiter has
        # taken it out of the queue by now; a stop's wake-up has not.
        notified = waiter not in waiters
        if not notified:
            waiters.remove(waiter)
        elif released is None:
            self.notify()  # leaving by an exception: pass the notify on, never lose it
    if notified:
        return True
    if released:
        try:
            call.raise_if_stopped()
        except Stopped as exc:
            note(record, exc)
            raise
        return True  # a spurious wake-up, which Condition.wait allows
    return False


def patches() -> tuple[list[Patch], list[Patch]]:
    """``time.sleep`` stays (code captures it); the methods are in while a guard is open."""
    while_open = [Patch(threading.Condition, "wait", condition_wait)]
    permanent = [Patch(time, "sleep", sleep)]
    return wraps_all(while_open), wraps_all(permanent)

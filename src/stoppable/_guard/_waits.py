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
from typing import Any

from .. import _compat
from .._errors import DeadlineExceeded, Stopped
from .._limits import get_poll_interval
from .._wait import NOT_YET, WAKE_BY_FD, NotYet, StopFds, _Waiter
from ._install import Patch, permanent, wraps_all
from ._state import (
    FOREVER,
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
_start = threading.Thread.start
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
    # The stops' descriptors are held for this sleep only (closed after, if unused).
    with StopFds(call) as held, contextlib.suppress(OwnTimeout):  # suppress: slept it all
        for fd in held:
            poller.register(fd, _POLLIN)

        def attempt(seconds: float) -> NotYet:
            if seconds > 0:
                poller.poll(_ms(seconds))
            return NOT_YET

        run_wait(record, state, call, attempt, WAKE_BY_FD)


def condition_wait(self: threading.Condition, timeout: float | None = None) -> bool:
    record = active.get()
    if record is None:
        return _cond_wait(self, timeout)
    if not _compat.condition_is_owned(self):
        raise RuntimeError("cannot wait on un-acquired lock")
    own = None if timeout is None else max(float(timeout), 0.0)
    if own == 0.0:
        return _cond_wait(self, 0)  # does not wait
    state = current_state()
    check(record, state, "condition wait")
    call = call_limits(own, "condition wait")
    if not _compat.CONDITION_PROTOCOL:
        return _sliced_condition_wait(self, record, state, call)
    # Condition.wait's own protocol (a waiter lock in the condition's queue, released
    # by notify(), which also takes it out of the queue), with a waiter that a stop
    # releases too: no condition lock is taken by StopEvent.set().
    waiter = _Waiter()
    waiters = _compat.condition_waiters(self)
    waiters.append(waiter)
    lock = waiter._lock

    def attempt(seconds: float) -> bool | NotYet:
        got = lock.acquire(True, seconds) if seconds > 0 else lock.acquire(False)
        return True if got else NOT_YET

    released: bool | None = None
    saved = _compat.condition_release_save(self)
    try:
        try:
            run_wait(record, state, call, attempt, waiter.release)
            released = True
        except OwnTimeout:
            released = False
    finally:
        _compat.condition_acquire_restore(self, saved)
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


def _sliced_condition_wait(cond: threading.Condition, record: Any, state: Any, call: Any) -> bool:
    """Where ``Condition``'s internals are not as relied on: its own wait, in slices.

    A stop is then seen within the poll interval (``stoppable.set_poll_interval``)
    instead of at once; the deadline as exactly.
    """

    def attempt(seconds: float) -> bool | NotYet:
        return True if _cond_wait(cond, min(seconds, get_poll_interval())) else NOT_YET

    try:
        run_wait(record, state, call, attempt, None)
    except OwnTimeout:
        return False
    return True


def thread_join(self: threading.Thread, timeout: float | None = None) -> None:
    record = active.get()
    if record is None or not self.is_alive() or self is threading.current_thread():
        _join(self, timeout)  # at once, or the standard errors
        return
    own = None if timeout is None else max(float(timeout), 0.0)
    if own == 0.0:
        _join(self, 0)
        return
    state = current_state()
    check(record, state, f"join of thread {self.name!r}")
    call = call_limits(own, f"join of thread {self.name!r}")

    def attempt(seconds: float) -> bool | NotYet:
        _join(self, seconds)
        return NOT_YET if self.is_alive() else True

    # Nothing wakes a join: it runs in slices of the poll interval.
    with contextlib.suppress(OwnTimeout):  # its own timeout: returns, as join does
        run_wait(record, state, call, attempt, None)


def thread_start(self: threading.Thread) -> None:
    if active.get() is None:
        _start(self)
        return
    # start() waits for the new thread to say it runs: a wait the OS bounds, not the
    # work's. Outside the guard, so that a thread can still be started (a client's
    # cleanup, a pool growing) after the guard fired.
    token = active.set(None)
    try:
        _start(self)
    finally:
        active.reset(token)


def barrier_wait(self: threading.Barrier, timeout: float | None = None) -> int:
    if active.get() is None:
        return _barrier_wait(self, timeout)
    try:
        return _barrier_wait(self, timeout)
    except (Stopped, DeadlineExceeded):
        # A party that leaves breaks the barrier, as one that times out does: the
        # others could never pass it.
        self.abort()
        raise


def popen_wait(self: subprocess.Popen[Any], timeout: float | None = None) -> int | None:
    record = active.get()
    if record is None or self.poll() is not None:
        return _popen_wait(self, timeout)
    own = None if timeout is None else float(timeout)
    if own is not None and own <= 0:
        return _popen_wait(self, timeout)
    state = current_state()
    try:
        check(record, state, "subprocess wait")
    except BaseException:
        _reap_if_ending(self)
        raise
    call = call_limits(own, "subprocess wait")
    pidfd = None
    if _pidfd_open is not None:
        with contextlib.suppress(OSError):  # reaped already, or no pidfds here
            pidfd = _pidfd_open(self.pid)
    held = StopFds(call)  # the stops' descriptors, for this wait only
    try:
        if pidfd is not None:
            poller = _new_poll()
            poller.register(pidfd, _POLLIN)
            for fd in held.__enter__():
                poller.register(fd, _POLLIN)

            def attempt(seconds: float) -> int | NotYet:
                if seconds > 0:
                    poller.poll(_ms(seconds))
                code = self.poll()
                return NOT_YET if code is None else code

            wake: Any = WAKE_BY_FD
        else:

            def attempt(seconds: float) -> int | NotYet:
                try:
                    return _popen_wait(self, seconds)
                except subprocess.TimeoutExpired:
                    return NOT_YET

            wake = None
        return run_wait(record, state, call, attempt, wake)
    except OwnTimeout:
        raise subprocess.TimeoutExpired(self.args, FOREVER if own is None else own) from None
    finally:
        held.__exit__(None, None, None)  # gives back only what was taken
        if pidfd is not None:
            os.close(pidfd)


_REAP_GRACE = 0.1  # how long a child killed on the way out gets to end (SIGKILL: ms)


def _reap_if_ending(popen: subprocess.Popen[Any]) -> None:
    # The guard fired already, so this wait raises: but a child that is ending (killed
    # by subprocess.run on its way out, whose __exit__ then waits) is reaped first, in
    # a short wait outside the guard, so no zombie or ResourceWarning is left.
    token = active.set(None)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            _popen_wait(popen, _REAP_GRACE)
    finally:
        active.reset(token)


def popen_communicate(
    self: subprocess.Popen[Any], input: Any = None, timeout: float | None = None
) -> Any:
    if timeout is None and active.get() is not None:
        # Without a timeout, communicate() may read a lone pipe with a plain read(),
        # which nothing can interrupt; with one it waits in a selector, which the guard
        # reaches. The guard's deadline bounds it; this one never ends first.
        return _popen_communicate(self, input, FOREVER)
    return _popen_communicate(self, input, timeout)


def patches() -> tuple[list[Patch], list[Patch]]:
    """All permanent: a check costs nothing next to a wait (see ``_install``)."""
    methods = [
        Patch(threading.Condition, "wait", condition_wait),
        Patch(threading.Thread, "join", thread_join),
        Patch(threading.Thread, "start", thread_start),
        Patch(threading.Barrier, "wait", barrier_wait),
        Patch(subprocess.Popen, "wait", popen_wait),
        Patch(subprocess.Popen, "communicate", popen_communicate),
    ]
    return [], [*wraps_all(methods), permanent(time, "sleep", sleep)]

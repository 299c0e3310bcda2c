"""``select``, ``poll`` and ``selectors`` waits inside a guard.

Each guarded wait adds the stops' wake-up descriptors to the set it waits on, so a stop
ends it at once, and filters them out of what it returns; the guard's deadline ends it
with ``DeadlineExceeded``, its own timeout as usual (nothing ready).

- ``select.select``: replaced in the module (and where captured: ``selectors``'
  ``SelectSelector`` keeps it as a class attribute).
- ``select.poll()``: called inside a guard, returns a poll object whose ``poll()`` is
  guarded (a thin wrapper); outside a guard it returns the standard object itself. A
  poll object made outside a guard and waited on inside is not reached.
- ``selectors.PollSelector``/``EpollSelector``/``DevpollSelector.select`` (what
  ``subprocess``, ``multiprocessing`` and ``asyncio`` wait in): the stops' descriptors
  are registered in the selector's own poll object for the length of the wait.
- An ``epoll`` object used directly (``select.epoll().poll()``) is not reached: its
  type cannot be patched without changing ``select.epoll`` for everyone.
"""

from __future__ import annotations

import contextlib
import math
import select
import selectors
from typing import Any

from .. import _compat
from .._wait import NOT_YET, WAKE_BY_FD, NotYet, StopFds
from ._install import Patch, permanent, wraps_all
from ._state import (
    OwnTimeout,
    active,
    call_limits,
    called_from_stoppable,
    check,
    current_state,
    run_wait,
)

__all__ = ["patches"]

_select = select.select
_new_poll = select.poll
_POLLIN = select.POLLIN


def _fileno(obj: Any) -> int:
    return obj if isinstance(obj, int) else int(obj.fileno())


def select_(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any:
    record = active.get()
    if record is None or (timeout is not None and not timeout > 0) or called_from_stoppable():
        return _select(rlist, wlist, xlist, timeout)
    state = current_state()
    check(record, state, "select")
    call = call_limits(None if timeout is None else float(timeout), "select")
    readers, writers, exceptional = list(rlist), list(wlist), list(xlist)
    # The stops' descriptors are held for this wait only (closed after, if unused).
    with StopFds(call) as held:
        mine = set(held) - {_fileno(obj) for obj in readers}  # the caller's own, if any
        waited = readers + list(mine)

        def attempt(seconds: float) -> Any:
            r, w, x = _select(waited, writers, exceptional, seconds)
            if mine:
                r = [obj for obj in r if not (isinstance(obj, int) and obj in mine)]
            return (r, w, x) if r or w or x else NOT_YET

        try:
            return run_wait(record, state, call, attempt, WAKE_BY_FD)
        except OwnTimeout:
            return [], [], []


class _GuardedPoll:
    """A ``select.poll`` object made inside a guard: its ``poll()`` honours the guard."""

    __slots__ = ("_fds", "_poll")

    def __init__(self, poll: Any) -> None:
        self._poll = poll
        self._fds: set[int] = set()

    def register(
        self, fd: Any, eventmask: int = select.POLLIN | select.POLLPRI | select.POLLOUT
    ) -> None:
        self._poll.register(fd, eventmask)
        self._fds.add(_fileno(fd))

    def modify(self, fd: Any, eventmask: int) -> None:
        self._poll.modify(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        self._poll.unregister(fd)
        self._fds.discard(_fileno(fd))

    def poll(self, timeout: float | None = None) -> Any:
        record = active.get()
        if record is None or (timeout is not None and timeout == 0):
            return self._poll.poll(timeout)
        own = None if timeout is None or timeout < 0 else float(timeout) / 1000
        state = current_state()
        check(record, state, "poll")
        call = call_limits(own, "poll")
        inner = self._poll
        with StopFds(call) as held:
            mine = set(held) - self._fds
            for fd in mine:
                inner.register(fd, _POLLIN)

            def attempt(seconds: float) -> Any:
                ready = inner.poll(math.ceil(seconds * 1000))
                if mine:
                    ready = [(fd, events) for fd, events in ready if fd not in mine]
                return ready or NOT_YET

            try:
                return run_wait(record, state, call, attempt, WAKE_BY_FD)
            except OwnTimeout:
                return []
            finally:
                for fd in mine:
                    with contextlib.suppress(KeyError, OSError):
                        inner.unregister(fd)


def poll() -> Any:
    made = _new_poll()
    if active.get() is None or called_from_stoppable():
        return made
    return _GuardedPoll(made)


def _selector_select(original: Any) -> Any:
    def select(self: Any, timeout: float | None = None) -> Any:
        record = active.get()
        if record is None or (timeout is not None and not timeout > 0):
            return original(self, timeout)
        state = current_state()
        check(record, state, "selector select")
        call = call_limits(None if timeout is None else float(timeout), "selector select")
        found = _compat.selector_poller(self)  # the selector's own poll/epoll object
        if found is None:
            return _sliced_select(original, self, record, state, call)
        inner, read = found
        added: list[int] = []
        with StopFds(call) as held:
            for fd in held:
                if not _compat.selector_watches(self, fd):
                    try:
                        inner.register(fd, read)
                    except (FileExistsError, OSError):
                        continue
                    added.append(fd)

            def attempt(seconds: float) -> Any | NotYet:
                # The stops' descriptors have no key: the original select leaves them out.
                return original(self, seconds) or NOT_YET

            try:
                return run_wait(record, state, call, attempt, WAKE_BY_FD)
            except OwnTimeout:
                return []
            finally:
                for fd in added:
                    with contextlib.suppress(KeyError, OSError):
                        inner.unregister(fd)

    return select


def _sliced_select(original: Any, selector: Any, record: Any, state: Any, call: Any) -> Any:
    """Where a selector's poll object is not as relied on: its own select, in slices.

    A stop is then seen within the poll interval (``stoppable.set_poll_interval``)
    instead of at once; the deadline as exactly.
    """

    def attempt(seconds: float) -> Any | NotYet:
        return original(selector, seconds) or NOT_YET

    try:
        return run_wait(record, state, call, attempt, None)
    except OwnTimeout:
        return []


def patches() -> tuple[list[Patch], list[Patch]]:
    """All permanent: a check costs nothing next to a wait (see ``_install``)."""
    methods = []
    for name in ("PollSelector", "EpollSelector", "DevpollSelector"):
        cls = getattr(selectors, name, None)
        if cls is None:
            continue
        methods.append(Patch(cls, "select", _selector_select(cls.select)))
    permanent_ = [
        permanent(select, "select", select_),
        permanent(select, "poll", poll),
    ]
    return [], wraps_all(methods) + permanent_

"""``StopEvent``: the shared stop request, and how it wakes waiters.

A ``StopEvent`` wakes three kinds of waiter, each without polling:

- threads in its own ``wait()``, through its condition;
- threads blocked in a family's condition wait (queues, events, semaphores), through
  a callback the waiting loop registers for the length of its wait;
- threads blocked in ``select``/``poll`` (sockets, pipes, pidfds), through a wake-up
  file descriptor that becomes readable when the event is set and stays readable.

The wake-up descriptor exists only while something uses it: each ``poll`` wait holds
it (``_hold_fd``/``_release_fd``) for its length, and the last to let go closes it; a
caller of the public ``fileno()`` holds it until ``close()`` (or until the event is
freed). So the descriptors the library holds are bounded by the waits in progress,
not by the events alive or awaiting the garbage collector.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._shared import _Link

__all__ = ["CallbackHandle", "StopEvent"]

_log = logging.getLogger("stoppable")


# Whether wake-ups are eventfds; False uses the pipe that other POSIX systems need
# (tests set it to cover that path on Linux).
use_eventfd: bool = hasattr(os, "eventfd")


class _Wakeup:
    """A file descriptor that turns readable, for good, when fired.

    An eventfd where the kernel has one (one descriptor), a pipe elsewhere on POSIX.
    It is never read: staying readable is what makes the stop level-triggered for
    every later ``select``.
    """

    __slots__ = ("_write_fd", "fileno")

    def __init__(self) -> None:
        if use_eventfd:
            self.fileno = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._write_fd = self.fileno
        else:
            self.fileno, self._write_fd = os.pipe()  # both close-on-exec (PEP 446)
            os.set_blocking(self._write_fd, False)

    def fire(self) -> None:
        if self._write_fd == self.fileno:
            os.eventfd_write(self._write_fd, 1)
        else:
            os.write(self._write_fd, b"\0")  # one byte in an empty pipe: cannot block

    def close(self) -> None:
        os.close(self.fileno)
        if self._write_fd != self.fileno:
            os.close(self._write_fd)


class CallbackHandle:
    """Returned by ``StopEvent.add_callback``: ``remove()`` unregisters the callback.

    Also a context manager that removes the callback on exit, so a callback can be
    scoped to a block.
    """

    __slots__ = ("_event", "_key")

    def __init__(self, event: StopEvent | None, key: int) -> None:
        self._event = event
        self._key = key

    def remove(self) -> None:
        """Unregister the callback; harmless if it already ran or was removed."""
        event, self._event = self._event, None
        if event is not None:
            event._unregister(self._key)

    def __enter__(self) -> CallbackHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


class StopEvent:
    """A request to stop, shared by the threads that should honour it.

    A drop-in superset of ``threading.Event`` for stopping: ``set()``, ``is_set()``
    and ``wait(timeout)`` behave the same, and setting it also wakes at once every
    thread blocked in a ``stoppable`` wrapper that uses it. There is no ``clear()``:
    a stop is one-way, so every later call with it raises ``Stopped`` (use a new
    event, or a ``child()``, for a new run of work).
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_children",
        "_cond",
        "_fd_users",
        "_finalizer",
        "_flag",
        "_lock",
        "_next_key",
        "_reason",
        "_shared",
        "_wakeup",
    )

    def __init__(self) -> None:
        # A plain lock guards the state; the condition for wait() shares it and is made
        # on first use, as most events are only ever set and polled (a Condition costs
        # more to make than the rest of the event together).
        self._lock = threading.Lock()
        self._cond: threading.Condition | None = None
        self._flag = False
        self._reason: object = None
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._next_key = 0
        self._children: weakref.WeakSet[StopEvent] | None = None
        self._wakeup: _Wakeup | None = None
        # Waits holding the wake-up descriptor, plus one while fileno() pins it.
        self._fd_users = 0
        self._finalizer: weakref.finalize[[], StopEvent] | None = None  # set while pinned
        # Its slot in shared memory once handed to another process (see _shared).
        self._shared: _Link | None = None

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled for another process, it stays the same stop there (see ``_shared``)."""
        from ._shared import reduce_event

        return reduce_event(self)

    def __copy__(self) -> StopEvent:
        return self  # one stop: a copy would be a second, unrelated one

    def __deepcopy__(self, memo: dict[int, object]) -> StopEvent:
        return self

    def __repr__(self) -> str:
        state = f"set, reason={self._reason!r}" if self._flag else "unset"
        return f"<{type(self).__name__} {state}>"

    def is_set(self) -> bool:
        """Whether a stop has been requested."""
        return self._flag

    @property
    def reason(self) -> object:
        """The reason given to the first ``set()``; ``None`` before, or if none was given."""
        return self._reason

    def set(self, reason: object = None) -> None:
        """Request the stop; the first call wins, later ones change nothing.

        Wakes every waiter at once: threads in ``wait()``, threads blocked in the
        library's wrappers, and readers of ``fileno()``. Then runs the callbacks, in
        the order they were added, and sets the children. A callback that raises is
        logged to the ``stoppable`` logger and does not keep the others from running.
        Thread-safe, but not safe inside a signal handler (it takes locks that the
        interrupted code may hold): ``stoppable.process.stop_on_signals`` is.

        An event shared with other processes is set in all of them, and the reason
        that wins is the first one given in any of them.
        """
        # Iterative, not recursive: a chain of 20,000 children is set to its end.
        # Depth first, each event's callbacks before its children, as the
        # recursive order was; each child gets its parent's reason (the one that
        # won, for an event shared with other processes).
        pending: list[tuple[StopEvent, object]] = [(self, reason)]
        interrupted: BaseException | None = None
        while pending:
            event, why = pending.pop()
            callbacks, children, why = event._mark_set(why)
            # Outside the lock: callbacks take other locks (a queue's mutex), and a
            # callback may add callbacks or set other events.
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    _log.exception("StopEvent callback %r raised", callback)
                except BaseException as exc:  # KeyboardInterrupt: finish waking first
                    interrupted = interrupted or exc
            if children:
                pending.extend((child, why) for child in reversed(children))
        if interrupted is not None:
            raise interrupted

    def _mark_set(
        self, reason: object
    ) -> tuple[list[Callable[[], object]], list[StopEvent], object]:
        """Set the flag and wake the fd and ``wait()`` waiters; what is left to run.

        Returns the callbacks, the children (none if it was set already) and the
        reason in force.
        """
        shared = self._shared
        if shared is not None and not self._flag:
            reason = shared.publish(reason)
        with self._lock:
            if self._flag:
                return [], [], self._reason
            self._flag = True
            self._reason = reason
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
            children = list(self._children) if self._children else []
            self._children = None
            if self._wakeup is not None:
                self._wakeup.fire()
            if self._cond is not None:
                self._cond.notify_all()
        return callbacks, children, reason

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or until ``timeout`` seconds pass; return ``is_set()``.

        Same as ``threading.Event.wait``, including ``timeout=None`` for no limit; a
        timeout longer than a lock can wait (``threading.TIMEOUT_MAX``) is waited in
        parts rather than refused.
        """
        with self._lock:
            if not self._flag:
                if self._cond is None:
                    self._cond = threading.Condition(self._lock)
                if timeout is None or timeout <= threading.TIMEOUT_MAX:
                    self._cond.wait(timeout)
                else:
                    deadline = time.monotonic() + timeout
                    while not self._flag and (left := deadline - time.monotonic()) > 0:
                        self._cond.wait(min(left, threading.TIMEOUT_MAX))
            return self._flag

    def add_callback(self, callback: Callable[[], object]) -> CallbackHandle:
        """Run ``callback()`` once when the event is set; at once if it already is.

        When already set, the callback runs now, in this thread, and its exception
        (if any) propagates. Otherwise it runs in the thread that calls ``set()``.
        ``remove()`` on the returned handle unregisters it.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        key = self._register(callback)
        if key is None:
            callback()
            return CallbackHandle(None, 0)
        return CallbackHandle(self, key)

    def child(self) -> StopEvent:
        """A new event that is set when this one is (with its reason), not the reverse.

        The parent holds its children weakly: a child nobody uses any more is freed.
        """
        child = StopEvent()
        with self._lock:
            if not self._flag:
                if self._children is None:
                    self._children = weakref.WeakSet()
                self._children.add(child)
                return child
            reason = self._reason
        child.set(reason)
        return child

    def fileno(self) -> int:
        """A file descriptor that becomes readable when the event is set, for good.

        For ``select``/``poll`` beside other descriptors; it is never to be read or
        closed by the caller. Made on first use; it stays open until ``close()`` is
        called (or the event is freed), so a caller that is done with it should call
        ``close()`` rather than wait for the garbage collector.
        """
        with self._lock:
            wakeup = self._wakeup
            if self._finalizer is None:
                wakeup = self._open_fd()
                self._fd_users += 1
                self._finalizer = weakref.finalize(self, wakeup.close)
            assert wakeup is not None
            return wakeup.fileno

    def close(self) -> None:
        """Give back the descriptor ``fileno()`` made; the event works on as before.

        The descriptor closes at once unless a wait in progress uses it, in which
        case it closes when the last such wait ends. A later ``fileno()`` makes a new
        one. Harmless when there is none.
        """
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            if finalizer is None:
                return
            finalizer.detach()
            self._drop_fd()

    def _open_fd(self) -> _Wakeup:
        # Called with the lock held.
        wakeup = self._wakeup
        if wakeup is None:
            wakeup = self._wakeup = _Wakeup()
            if self._flag:
                wakeup.fire()
        return wakeup

    def _drop_fd(self) -> None:
        # Called with the lock held: one user fewer; the last one closes it.
        self._fd_users -= 1
        if self._fd_users == 0 and self._wakeup is not None:
            wakeup, self._wakeup = self._wakeup, None
            wakeup.close()

    def _hold_fd(self) -> int:
        """The wake-up descriptor, held open for a wait until ``_release_fd()``."""
        with self._lock:
            wakeup = self._open_fd()
            self._fd_users += 1
            return wakeup.fileno

    def _release_fd(self) -> None:
        """End one ``_hold_fd()``; the descriptor closes when nothing holds it."""
        with self._lock:
            self._drop_fd()

    # The waiting loop's registration: unlike add_callback, never runs the callback
    # inline, because the caller holds the lock that the callback takes.
    def _register(self, callback: Callable[[], object]) -> int | None:
        """Register ``callback``; ``None`` (and nothing registered) if already set."""
        with self._lock:
            if self._flag:
                return None
            key = self._next_key
            self._next_key = key + 1
            self._callbacks[key] = callback
            return key

    def _unregister(self, key: int) -> None:
        # Once set, the callbacks are gone already; not taking the lock then spares a
        # crowd of just-stopped waiters from queueing on it one by one.
        if not self._flag:
            with self._lock:
                self._callbacks.pop(key, None)

    def _callback_count(self) -> int:
        """How many callbacks are registered (for leak tests)."""
        with self._lock:
            return len(self._callbacks)


StopEvent.__module__ = CallbackHandle.__module__ = "stoppable"

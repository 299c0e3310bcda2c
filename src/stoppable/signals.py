"""Graceful shutdown: the signals an orchestrator or an operator sends become a stop.

``stop_on_signals`` turns ``SIGTERM``/``SIGINT`` (an orchestrator's stop, Ctrl-C) into
``StopEvent.set(reason="SIGTERM")``, which wakes every thread blocked in a
``stoppable`` call at once; a second signal gets the default action (a hard exit).
The set is made by a watcher thread fed through ``signal.set_wakeup_fd``, never by
the signal handler: a handler runs between two bytecodes of the main thread, which
may hold the event's lock, and it runs late when the signal lands on another thread.
Its docstring has the details. Also importable as ``stoppable.stop_on_signals``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any, Generic, TypeVar, overload

from ._stop import StopEvent

__all__ = ["stop_on_signals"]

E = TypeVar("E", StopEvent, threading.Event)


class stop_on_signals(Generic[E]):  # a context manager used like a function, as contextlib's are
    """In the main thread, make ``signals`` set ``stop`` (reason: the signal's name).

    ::

        stop = StopEvent()
        with stop_on_signals(stop):               # SIGINT and SIGTERM by default
            workers = start_workers(stop)         # all blocked in stoppable calls
            stop.wait()                           # until the orchestrator's SIGTERM
            for worker in workers:
                sync.join(worker, timeout=5)

    On the first of the signals, ``stop`` is set with ``reason="SIGTERM"`` (or
    ``"SIGINT"``, ...), which wakes every ``stoppable`` call that uses it at once. A
    second one gets the default action: the process ends hard, without cleanup (an
    impatient operator's second Ctrl-C). On exit the previous handlers and wake-up
    descriptor are restored (a handler installed from C, which Python cannot
    reinstate, becomes the default action), and a signal that came inside the block
    has been set on ``stop``. ``stop`` defaults to a new ``StopEvent``; entering
    returns it. ``received`` and ``received_at`` (``time.monotonic()``) tell which
    signal came first, and when.

    How, and why not simply a handler that calls ``stop.set()``:

    - Python runs a signal handler in the main thread, between two bytecodes of
      whatever that thread was doing. ``StopEvent.set()`` takes the event's lock (and
      its callbacks may take others, such as a queue's mutex): had the main thread
      been holding one of those, the handler would wait forever for a lock its own
      thread holds.
    - Python runs that handler late, or never: when the kernel delivers the signal
      to another thread (any thread may get a process's signal), a main thread
      blocked in a lock or ``Event.wait`` is not interrupted, and keeps waiting.

    So the set happens in a small watcher thread (started on entry, joined on exit)
    that reads a pipe which ``signal.set_wakeup_fd`` makes the interpreter's C-level
    handler write the signal number to, at once, whichever thread the signal
    interrupted. The Python handler only switches the signals to their default
    action. Should a second signal come before the main thread has run that
    handler, the watcher ends the process itself with ``os._exit(128 + signal)``,
    the status a shell reports for a death by that signal. Bytes for other signals
    are passed on to the wake-up descriptor that was set before (asyncio's, say).

    Refused with ``RuntimeError`` outside the main thread (Python installs handlers
    only there), and with ``ValueError`` for a signal that cannot be caught
    (``SIGKILL``, ``SIGSTOP``). Entered once per instance.
    """

    @overload
    def __init__(
        self: stop_on_signals[StopEvent],
        stop: None = None,
        signals: Iterable[int] = ...,
    ) -> None: ...
    @overload
    def __init__(self, stop: E, signals: Iterable[int] = ...) -> None: ...
    def __init__(
        self,
        stop: E | None = None,
        signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
    ) -> None:
        if stop is not None and not callable(getattr(stop, "set", None)):
            raise TypeError(
                f"stop must be a StopEvent or threading.Event, got {type(stop).__name__}"
            )
        chosen: list[signal.Signals] = []
        for number in signals:
            sig = signal.Signals(number)  # ValueError for a number that is no signal
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                raise ValueError(f"{sig.name} cannot be caught")
            if sig not in chosen:
                chosen.append(sig)
        if not chosen:
            raise ValueError("signals must name at least one signal")
        self.stop: E = StopEvent() if stop is None else stop  # type: ignore[assignment]
        """The event the signals set."""
        self.signals: tuple[signal.Signals, ...] = tuple(chosen)
        """The signals handled."""
        self.received: signal.Signals | None = None
        """The first of the signals that arrived, or ``None``."""
        self.received_at: float | None = None
        """When it arrived, as ``time.monotonic()`` (read by the watcher, microseconds later)."""
        self._numbers = frozenset(int(sig) for sig in chosen)
        self._previous: dict[signal.Signals, Any] = {}
        self._previous_wakeup = -1
        self._read_fd = -1
        self._write_fd = -1
        self._watcher: threading.Thread | None = None
        self._entered = False
        self._set = False

    def __enter__(self) -> E:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "stop_on_signals() must be entered in the main thread: Python installs "
                "signal handlers only there"
            )
        if self._entered:
            raise RuntimeError("stop_on_signals() can be entered only once")
        self._entered = True
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # set_wakeup_fd requires it
        try:
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
            self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        except BaseException:
            self._restore()
            self._close()
            raise
        # Started last: it forwards bytes to the previous wake-up descriptor, now known.
        self._watcher = threading.Thread(
            target=self._watch, name="stoppable-signal-watcher", daemon=True
        )
        self._watcher.start()
        return self.stop

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
        self._close()
        # A signal whose byte the watcher could not see (it came between restoring
        # the wake-up descriptor and the handlers): set here, in plain code, safely.
        if self.received is not None and not self._set:
            self._set_stop(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread, between two bytecodes of whatever it was doing: no
        # locks (see the class docstring). The watcher has the signal already.
        if self.received is None:
            self.received = signal.Signals(signum)
            self.received_at = time.monotonic()
        for sig in self.signals:
            signal.signal(sig, signal.SIG_DFL)  # the next one: the default action

    def _watch(self) -> None:
        seen = 0
        while True:
            try:
                data = os.read(self._read_fd, 512)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if not data:
                return  # the write end was closed: __exit__
            others = bytes(number for number in data if number not in self._numbers)
            if others and self._previous_wakeup >= 0:
                with contextlib.suppress(OSError):  # as the interpreter does: never block
                    os.write(self._previous_wakeup, others)
            for number in data:
                if number not in self._numbers:
                    continue
                seen += 1
                if seen > 1:  # the main thread has not run the handler yet: hard exit
                    os._exit(128 + number)
                if self.received is None:
                    self.received = signal.Signals(number)
                    self.received_at = time.monotonic()
                self._set_stop(signal.Signals(number))

    def _set_stop(self, sig: signal.Signals) -> None:
        self._set = True
        if isinstance(self.stop, StopEvent):
            self.stop.set(reason=sig.name)
        else:
            self.stop.set()

    def _restore(self) -> None:
        if self._write_fd >= 0:
            current = signal.set_wakeup_fd(self._previous_wakeup)
            if current != self._write_fd:  # not ours (any more): leave it as it was
                signal.set_wakeup_fd(current)
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def _close(self) -> None:
        write_fd, self._write_fd = self._write_fd, -1
        if write_fd >= 0:
            os.close(write_fd)
        watcher, self._watcher = self._watcher, None
        # It ends at once (end of file) unless the stop's callbacks take long: those
        # are part of stopping, so they get time to finish.
        if watcher is not None:
            watcher.join(timeout=60)
            if watcher.is_alive():  # pragma: no cover - a stop callback that hangs
                return  # keep its pipe open rather than close it under its read
        read_fd, self._read_fd = self._read_fd, -1
        if read_fd >= 0:
            os.close(read_fd)


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

"""Shared test helpers: timeout constants, ready signals, leak counters.

Bounds are generous for a loaded 2-core machine: tests assert that a stop is noticed
"well before the timeout", never a micro-benchmark figure (those are in benchmarks/).
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stoppable import StopEvent, Stopped

# Every way a timeout can be wrong, and the error each must raise (naming "timeout").
BAD_TIMEOUTS: list[tuple[object, type[Exception]]] = [
    (None, TypeError),
    (True, TypeError),
    (False, TypeError),
    ("1", TypeError),
    (b"1", TypeError),
    ([1], TypeError),
    (-1, ValueError),
    (-0.001, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
]

# A wait that must end by a stop, not by its timeout, gets LONG; a bound that a stop
# or deadline must be noticed within is WAKE_BOUND (huge against the microseconds it
# takes, small against LONG); a wait meant to time out gets SHORT.
SHORT = 0.2
LONG = 30.0
WAKE_BOUND = 2.0


def wait_until(predicate: Callable[[], object], timeout: float = LONG, what: str = "") -> None:
    """Spin (yielding the CPU) until ``predicate()`` is true: a ready signal, not a sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.001)


# Functions a thread is "blocked in" when its innermost Python frame is one of them:
# the C-level blocking call below them has no frame of its own.
BLOCKING_FRAMES = frozenset(
    {"wait", "block", "attempt", "acquire", "join", "_wait_for_tstate_lock", "select", "poll"}
)


def wait_until_blocked(
    thread: threading.Thread, in_functions: frozenset[str] = BLOCKING_FRAMES
) -> None:
    """Wait until ``thread`` is blocked in one of ``in_functions`` (a ready signal)."""

    def blocked() -> bool:
        # No garbage collection inside sys._current_frames(): on CPython 3.11 a
        # finalizer run there (closing a file descriptor releases the GIL) while it
        # holds the runtime's thread-list lock deadlocks with any thread starting or
        # ending (python/cpython#106883).
        collecting = gc.isenabled()
        gc.disable()
        try:
            frame = sys._current_frames().get(thread.ident or -1)
        finally:
            if collecting:
                gc.enable()
        return frame is not None and frame.f_code.co_name in in_functions

    wait_until(blocked, what=f"{thread.name} to block")


@dataclass
class Outcome:
    """What a call run in a thread did, and when it ended."""

    result: Any = None
    error: BaseException | None = None
    ended_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


def start_call(fn: Callable[[], Any], name: str = "caller") -> tuple[threading.Thread, Outcome]:
    """Run ``fn`` in a new thread; the ``Outcome`` records its result or exception."""
    outcome = Outcome()

    def run() -> None:
        try:
            outcome.result = fn()
        except BaseException as exc:  # Stopped is a BaseException
            outcome.error = exc
        finally:
            outcome.ended_at = time.perf_counter()
            outcome.done.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread, outcome


def stop_while_blocked(block: Callable[[StopEvent], object], reason: str = "shutdown") -> Outcome:
    """Run ``block(stop)`` in a thread, set the stop once it is blocked, check the ending.

    The call must end by ``Stopped`` with ``reason`` well within ``WAKE_BOUND`` of the
    ``set()``, and leave no callback on the stop.
    """
    stop = StopEvent()
    thread, outcome = start_call(lambda: block(stop))
    wait_until_blocked(thread)
    set_at = time.perf_counter()
    stop.set(reason)
    assert outcome.done.wait(WAKE_BOUND), "the stop did not end the call"
    assert isinstance(outcome.error, Stopped), outcome.error
    assert outcome.error.reason == reason
    assert outcome.ended_at is not None
    assert outcome.ended_at - set_at < WAKE_BOUND
    assert stop._callback_count() == 0
    return outcome


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))

"""The errors every family raises, and the one place their timeout errors are made.

The tree::

    BaseException
     ├── Stopped                      a stop was requested (carries .reason)
     └── Exception
          └── OSError
               └── TimeoutError       (also socket.timeout)
                    └── DeadlineExceeded          the timeout ran out (.timeout)
                         ├── QueueEmptyDeadline   also queue.Empty    (stoppable.queues)
                         ├── QueueFullDeadline    also queue.Full     (stoppable.queues)
                         └── ... each family adds its own, each also the exception the
                             wrapped API raises on timeout, so existing ``except``
                             clauses keep working.

Why ``Stopped`` derives from ``BaseException``, not ``Exception``: a stop is not an
error in the work, it is a request to end the work, like trio's ``Cancelled``,
asyncio's ``CancelledError`` and ``KeyboardInterrupt``. Worker loops very often read::

    while True:
        try:
            handle(stoppable.queues.get(q, timeout=1, stop=stop))
        except Exception:
            log.exception("item failed")

A stop is level-triggered (every later call raises it at once), so if ``Stopped``
were an ``Exception`` that loop would catch it, log it, and call again, forever, at
full speed, instead of ending. As a ``BaseException`` it passes through ``except
Exception`` and ends the loop, while ``finally`` blocks and ``with`` statements
still run, so locks are released and items go back to their queues. Code that wants
to end quietly on a stop catches ``Stopped`` by name (``stoppable.sync.Thread``
does this for its target).

A timeout, in contrast, is an ordinary failure of one call, which the caller may
retry or report, so ``DeadlineExceeded`` is an ``Exception`` (a ``TimeoutError``).
"""

from __future__ import annotations

import queue

__all__ = [
    "DeadlineExceeded",
    "QueueEmptyDeadline",
    "QueueFullDeadline",
    "Stopped",
]


class Stopped(BaseException):
    """A stop was requested while waiting, or before the call began.

    ``reason`` is the reason given to ``StopEvent.set(reason=...)`` (``None`` when
    none was given, or when the stop is a plain ``threading.Event``).
    """

    def __init__(self, reason: object = None) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return "stopped" if self.reason is None else f"stopped: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r})"


class DeadlineExceeded(TimeoutError):
    """The call's timeout (or an enclosing scope's deadline) ran out.

    ``timeout`` is the budget in seconds that ran out. Each family raises a subclass
    that is also the exception its wrapped API raises on timeout.
    """

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args[0], self.timeout))


def _rebuild(cls: type[DeadlineExceeded], message: str, timeout: float | None) -> DeadlineExceeded:
    # Keyword-only arguments do not survive pickling by default, and a deadline error
    # may cross a process boundary (multiprocessing, concurrent.futures).
    return cls(message, timeout=timeout)


class QueueEmptyDeadline(DeadlineExceeded, queue.Empty):
    """A queue get timed out: both ``DeadlineExceeded`` and ``queue.Empty``."""


class QueueFullDeadline(DeadlineExceeded, queue.Full):
    """A queue put timed out: both ``DeadlineExceeded`` and ``queue.Full``."""


# Tracebacks and reprs name the public modules these are imported from.
Stopped.__module__ = DeadlineExceeded.__module__ = "stoppable"
QueueEmptyDeadline.__module__ = QueueFullDeadline.__module__ = "stoppable.queues"

"""stoppable: blocking I/O in threads, bounded by a total deadline and stoppable at once.

Layout: the core lives in private modules and its public names are re-exported here.

- ``_stop``: ``StopEvent``, the shared stop request, and how it wakes waiters.
- ``_errors``: ``Stopped``, ``DeadlineExceeded`` and the exception tree.
- ``_limits``: timeout validation, the absolute deadline of each call, ``scope``.
- ``_wait``: the one waiting loop every family uses.
- ``_guard``: ``guard``, which bounds and stops the blocking calls of code that knows
  nothing of stoppable (imported here, but it installs nothing until first entered).

Each I/O family is a public module, imported on demand so that ``import stoppable``
stays light (``stoppable.http`` alone would pull in requests): ``stoppable.queues``,
``stoppable.sync``, ``stoppable.net``, ``stoppable.http``, ``stoppable.process``,
``stoppable.futures``, and the lint rule ``stoppable.lint``. Their private helpers
(``_netio``, ``_resolve``, ...) follow the same rule: public names live in the
family's module.
"""

from ._errors import DeadlineExceeded, Stopped
from ._guard import guard
from ._limits import (
    StopLike,
    checkpoint,
    get_poll_interval,
    scope,
    set_poll_interval,
)
from ._stop import CallbackHandle, StopEvent

__all__ = [
    "CallbackHandle",
    "DeadlineExceeded",
    "StopEvent",
    "StopLike",
    "Stopped",
    "checkpoint",
    "get_poll_interval",
    "guard",
    "scope",
    "set_poll_interval",
]

"""stoppable: blocking I/O in threads, bounded by a total deadline and stoppable at once.

Layout: the core lives in private modules and its public names are re-exported here.

- ``_stop``: ``StopEvent``, the shared stop request, and how it wakes waiters.
- ``_errors``: ``Stopped``, ``DeadlineExceeded`` and the exception tree.
- ``_limits``: timeout validation, the absolute deadline of each call, ``scope``.
- ``_wait``: the one waiting loop every family uses (and ``sleep``, its simplest use).
- ``_shared`` and ``_arena``: a ``StopEvent`` handed to another process stays the same
  stop there (imported here for its at-fork hook; it costs nothing until used).
- ``_guard``: ``guard``, which bounds and stops the blocking calls of code that knows
  nothing of stoppable (imported here, but it installs nothing until first entered).

Each I/O family is a public module, loaded on first use (PEP 562) so that ``import
stoppable`` stays light (``stoppable.http`` alone would pull in requests) while
``import stoppable; stoppable.queues.get(...)`` still works: ``stoppable.queues``,
``stoppable.sync``, ``stoppable.net``, ``stoppable.http``, ``stoppable.process``,
``stoppable.futures``, ``stoppable.signals``, and the lint rule ``stoppable.lint``.
Their private helpers (``_netio``, ``_resolve``, ...) follow the same rule: public
names live in the family's module. ``stop_on_signals`` is re-exported here from
``stoppable.signals``, loaded on first use like the families.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _shared  # noqa: F401 - its at-fork hook shares events handed to a forked Process
from ._errors import DeadlineExceeded, Stopped
from ._guard import guard
from ._limits import (
    UNTIL_STOPPED,
    StopLike,
    checkpoint,
    get_poll_interval,
    scope,
    set_poll_interval,
)
from ._stop import CallbackHandle, StopEvent
from ._wait import sleep

if TYPE_CHECKING:  # for type checkers and IDEs; at run time they load on first use
    from . import futures as futures
    from . import http as http
    from . import lint as lint
    from . import net as net
    from . import process as process
    from . import queues as queues
    from . import signals as signals
    from . import sync as sync
    from .signals import stop_on_signals

__all__ = [
    "UNTIL_STOPPED",
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
    "sleep",
    "stop_on_signals",
]

# Not in __all__: ``from stoppable import *`` must not import requests.
_FAMILIES = frozenset({"futures", "http", "lint", "net", "process", "queues", "signals", "sync"})
# Top-level names that live in a family: name -> module.
_LAZY_NAMES = {"stop_on_signals": "signals"}


def __getattr__(name: str) -> Any:
    # Called only for names not found the usual way: importing a submodule binds it
    # as an attribute of this package, so each family goes through here once.
    if name in _FAMILIES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY_NAMES.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_FAMILIES})

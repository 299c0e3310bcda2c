"""Futures, executors and worker pools with a total deadline and a stop.

``concurrent.futures`` waits forever by default (``Future.result()``, ``wait()``,
``as_completed()``), no wait in it can be interrupted, and nothing stops a task once
it runs: ``Future.cancel()`` and ``shutdown(cancel_futures=True)`` only drop tasks
that have not started. This module closes both gaps.

Waiting, for any ``concurrent.futures.Future`` (thread or process pools, or futures
you make yourself):

- ``result(future, timeout=..., stop=...)`` and ``exception(...)`` wait on the
  future's own condition, which a ``StopEvent`` notifies: no polling.
- ``wait(futures, ...)`` and ``as_completed(futures, ...)`` put a done-callback on
  each future, which wakes the one waiting thread when a future completes (or is
  cancelled); a ``StopEvent`` wakes it the same way. The callbacks are removed when
  the wait ends, however it ends: a future waited on many times collects none.
- ``result(async_result, ...)``, ``pool_map``, ``pool_starmap`` and ``pool_apply``
  do the same for ``multiprocessing.pool.Pool`` (and ``ThreadPool``) work, and
  ``pool_imap``/``pool_imap_unordered`` for its lazy iteration. A stopped or timed-out
  wait leaves the work running in the pool, unless its tasks were handed the
  ``StopEvent`` (it crosses into the workers).

Process pools: ``ProcessPoolExecutor`` (in ``_procpool``) gives each task a stop that
crosses into its worker process, and ends the tasks that ignore it.

A timeout raises ``FutureDeadline``: a ``stoppable.DeadlineExceeded`` and the
``concurrent.futures.TimeoutError`` the standard library raises (the builtin
``TimeoutError`` from Python 3.11, a class of its own on 3.10); for pool waits it is
``PoolDeadline``, also a ``multiprocessing.TimeoutError``. Unlike the standard
library's ``wait()``, which returns when its timeout runs out and leaves the caller
to notice the unfinished futures, ``wait()`` here raises, like every ``stoppable``
wrapper; the error carries ``done`` and ``not_done`` so nothing is lost.

A cancelled future counts as done at once. (The standard library's ``wait()`` and
``as_completed()`` count it only once an executor's worker has dequeued it, so they
hang on a future cancelled by ``shutdown(cancel_futures=True)`` or on one made by
hand.)

Stopping tasks: ``ThreadPoolExecutor`` here is a drop-in subclass of the standard
one whose every task runs with a ``StopEvent`` of its own, set whenever the
executor's ``stop`` is (as a ``child()`` would be), inside a ``stoppable.scope``
with that stop: every ``stoppable`` call the task makes (``queues.get``,
``net.recv``, ``sync.wait``, ...) ends with ``Stopped`` as soon as the task is
stopped, without passing the stop along. ``current_stop()`` hands it to code that
needs it (a CPU loop calling ``stoppable.checkpoint()`` needs nothing).
``shutdown(stop=True, timeout=...)`` stops the running tasks, cancels the queued
ones (none of them starts) and joins the workers within the timeout, raising
``ShutdownDeadline`` with the tasks that did not stop in time rather than waiting
for them forever; ``stop_task(future)`` stops one::

    with futures.ThreadPoolExecutor(8, shutdown_timeout=5) as pool:
        fs = [pool.submit(fetch, url) for url in urls]     # fetch uses stoppable.http
        for f in futures.as_completed(fs, timeout=30, stop=shutdown):
            handle(f.result())

A task that ends by ``Stopped`` has that ``Stopped`` as its future's exception.
"""

from __future__ import annotations

from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION

from ._futwait import (
    FutureDeadline,
    PoolDeadline,
    as_completed,
    exception,
    pool_apply,
    pool_map,
    pool_starmap,
    result,
    wait,
)
from ._limits import SHUTDOWN_TIMEOUT
from ._poolimap import pool_imap, pool_imap_unordered
from ._procpool import ProcessPoolExecutor, TaskKilled
from ._tasks import _describe as _describe  # read by _procpool
from ._tasks import _split_context as _split_context  # read by aio
from ._tasks import _task_stop as _task_stop  # read by _procworker
from ._tasks import current_stop
from ._threadpool import ShutdownDeadline, ThreadPoolExecutor

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "SHUTDOWN_TIMEOUT",
    "FutureDeadline",
    "PoolDeadline",
    "ProcessPoolExecutor",
    "ShutdownDeadline",
    "TaskKilled",
    "ThreadPoolExecutor",
    "as_completed",
    "current_stop",
    "exception",
    "pool_apply",
    "pool_imap",
    "pool_imap_unordered",
    "pool_map",
    "pool_starmap",
    "result",
    "wait",
]

# The rooms' public names are this module's, as before they moved: named, shown and
# pickled as such.
_ROOMS = ("stoppable._futwait", "stoppable._tasks", "stoppable._threadpool")
for _public in map(globals().__getitem__, __all__):
    if getattr(_public, "__module__", None) in _ROOMS:
        _public.__module__ = __name__
del _public


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

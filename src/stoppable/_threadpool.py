"""``futures.ThreadPoolExecutor``: the standard executor, whose tasks can be stopped.

Each task runs with a stop of its own (``_tasks``); the executor's ``stop`` reaches
every running task, and ``shutdown`` is bounded (``ShutdownDeadline``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from . import _compat
from ._errors import DeadlineExceeded
from ._futwait import FutureDeadline, wait
from ._limits import SHUTDOWN_TIMEOUT, validate_timeout
from ._stop import StopEvent
from ._tasks import _describe, _run_task, _Task, _Tasks
from ._wait import MAX_BLOCK

T = TypeVar("T")
P = ParamSpec("P")

_log = logging.getLogger("stoppable")


class ShutdownDeadline(DeadlineExceeded):
    """``ThreadPoolExecutor.shutdown(timeout=...)`` ran out with tasks unfinished.

    ``unfinished`` lists their futures in submission order: tasks that ignored (or
    have not yet reached a check of) their stop, and, when the shutdown neither
    stopped nor cancelled, the tasks still queued. Their worker threads are left
    running; a later ``shutdown(timeout=...)`` waits for them again.
    """

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message, timeout=timeout)
        self.unfinished: list[Future[Any]] = []
        """The futures of the tasks that had not finished when time ran out."""


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """A ``concurrent.futures.ThreadPoolExecutor`` whose tasks can be stopped.

    Each task runs with a ``StopEvent`` of its own, set whenever the executor's
    ``stop`` is (as a ``child()`` of it would be), inside a
    ``stoppable.scope(stop=...)``: every ``stoppable`` call in the task ends with
    ``Stopped`` when the task is stopped, without passing the stop along, and
    ``current_stop()`` returns it. A task stopped before it starts never runs (its
    future's exception is ``Stopped``); one that ends by ``Stopped`` has it as its
    future's exception.

    - ``shutdown(stop=True, timeout=...)``: stop every running task, cancel the queued
      ones, and join the workers within ``timeout``; ``ShutdownDeadline`` names the
      tasks that did not stop in time.
    - ``stop_task(future)``: stop one task (cancel it if it has not started).
    - ``parent``: the executor's ``stop`` is a child of it, so setting the parent
      stops every task (later tasks end with ``Stopped`` without running).
    - ``shutdown_timeout``: the timeout of the shutdown when a ``with`` block ends
      (``SHUTDOWN_TIMEOUT``, 60 s, by default: unlike the standard library's, no
      shutdown of this executor waits without a limit). A block left by
      ``Stopped``, ``KeyboardInterrupt`` or another ``BaseException`` that is not an
      ``Exception`` stops the tasks first; one left by an ordinary exception, or
      normally, lets them finish.

    - ``guard=True``: each task runs inside a ``stoppable.guard(stop=...)`` with its
      stop, not only a scope: every blocking call it makes through any library (a
      plain ``time.sleep``, a driver's socket read) ends when the task is stopped, so
      ``shutdown(stop=True)`` ends tasks that know nothing of stoppable.

    Tasks run in the workers' context, not the submitter's: a ``stoppable.scope``
    around ``submit()`` does not reach the task (give the executor a ``parent``).
    At interpreter exit Python joins every worker, so a task that ignores its stop
    keeps the process alive: shut the executor down with ``stop=True`` first.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        parent: StopEvent | None = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        guard: bool = False,
    ) -> None:
        if not isinstance(guard, bool):
            raise TypeError(f"guard must be a bool, got {type(guard).__name__} {guard!r}")
        self._stoppable_guard = guard
        if parent is not None and not isinstance(parent, StopEvent):
            raise TypeError(f"parent must be a StopEvent, got {type(parent).__name__}")
        self._stoppable_shutdown_timeout = validate_timeout(shutdown_timeout, "shutdown_timeout")
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)
        self.stop: StopEvent = StopEvent() if parent is None else parent.child()
        """The executor's stop: setting it stops every task, running or queued."""
        tasks = self._stoppable_tasks = _Tasks()
        stop = self.stop
        # Not child() per task: setting a thousand queued tasks' stops, only to cancel
        # them, would double the time a shutdown takes (see _Tasks.stop_running).
        self.stop.add_callback(lambda: tasks.stop_running(stop.reason))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` with a stop of its own; returns its future."""
        stop = StopEvent()
        future = super().submit(_run_task, self.stop, stop, fn, args, kwargs, self._stoppable_guard)
        self._stoppable_tasks.add(future, _Task(stop, fn))
        executor_stop = self.stop
        if executor_stop._flag:
            # Set while the task was not yet listed: stop_running may have missed it.
            stop.set(executor_stop.reason)
        return future

    def stop_task(self, future: Future[Any], reason: object = "task stopped") -> bool:
        """Stop one task of this executor: cancel it if queued, else set its stop.

        Returns ``False`` if the task had already finished (nothing changes), ``True``
        otherwise. A running task ends at its next ``stoppable`` call (or
        ``checkpoint()``) with ``Stopped(reason)`` as its future's exception; this
        does not wait for that (``result(future, timeout=...)`` does).
        """
        task = self._stoppable_tasks.get(future)
        if task is None:
            if future.done():
                return False
            raise ValueError("future is not a task of this executor")
        task.stop.set(reason)  # first: a task that starts now does not run
        future.cancel()  # a queued task never starts
        return True

    def shutdown(
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        stop: bool = False,
        timeout: float = SHUTDOWN_TIMEOUT,
        reason: object = "executor shutdown",
    ) -> None:
        """Shut down as the standard executor does, optionally stopping the tasks.

        - ``stop=True``: set the executor's ``stop`` (with ``reason``), so every
          running task ends at its next ``stoppable`` call, and cancel the queued
          tasks (``cancel_futures`` is implied): no task starts after this call.
        - ``wait=True``: join the workers within ``timeout`` seconds in all
          (``SHUTDOWN_TIMEOUT``, 60 s, by default); if tasks are still running then,
          raise ``ShutdownDeadline`` listing them (their workers are left running).
          ``timeout`` is ignored when ``wait`` is false.

        No new task can be submitted afterwards. Calling it again is harmless (and
        waits again).
        """
        seconds = validate_timeout(timeout)
        deadline = time.monotonic() + seconds
        super().shutdown(wait=False, cancel_futures=cancel_futures or stop)
        if stop:
            # After the queue is drained: a worker freed by the stop would otherwise
            # take a queued task first, which would end Stopped instead of cancelled.
            self.stop.set(reason)
        if not wait:
            return
        threads = _compat.executor_threads(self)
        if threads is None:  # pragma: no cover - forced by the tests
            alive = self._join_tasks(deadline)
        else:
            for thread in threads:
                # Thread.join is woken by the thread's end; only the shutdown's own
                # deadline bounds it (a day at a time: join takes no more).
                while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
                    thread.join(min(left, MAX_BLOCK))
            alive = sum(thread.is_alive() for thread in threads)
        if alive:
            raise self._shutdown_error(seconds, alive)

    def _join_tasks(self, deadline: float) -> int:
        """Where the workers cannot be known: wait for the tasks; how many are left."""
        unfinished = [future for future, _ in self._stoppable_tasks.unfinished()]
        try:
            wait(unfinished, timeout=max(deadline - time.monotonic(), 0.0))
        except FutureDeadline as err:
            return len(err.not_done)
        return 0

    def _shutdown_error(self, seconds: float, alive: int) -> ShutdownDeadline:
        unfinished = self._stoppable_tasks.unfinished()
        if unfinished:
            names = _named(task.fn for _, task in unfinished)
            what = f"{len(unfinished)} task(s) did not finish: {names}"
        else:
            what = f"{alive} worker thread(s) still running"
        error = ShutdownDeadline(
            f"executor shutdown timed out after {seconds:g} s: {what}", timeout=seconds
        )
        error.unfinished = [future for future, _ in unfinished]
        return error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (see the class docstring); never swallows the block's exception."""
        _leave_block(
            lambda stop: self.shutdown(
                wait=True, stop=stop, timeout=self._stoppable_shutdown_timeout
            ),
            exc,
        )


def _named(fns: Iterable[Callable[..., Any]]) -> str:
    """The first five tasks by name, then how many more: for a shutdown's error."""
    names = [_describe(fn) for fn in fns]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(names[:5]) + more


def _leave_block(shutdown: Callable[[bool], object], exc: BaseException | None) -> None:
    """An executor's ``__exit__``: ``shutdown(stop)``, never replacing the block's exception.

    ``stop`` is true when the block ends by an exception that is not an ``Exception``
    (Ctrl-C, ``SystemExit``): the tasks are stopped rather than waited for.
    """
    try:
        shutdown(exc is not None and not isinstance(exc, Exception))
    except ShutdownDeadline as err:
        if exc is None:
            raise
        # Do not replace the exception that ends the block (a KeyboardInterrupt
        # must stay one): report the shutdown's failure beside it.
        _log.warning("%s (while leaving the block by %r)", err, exc)

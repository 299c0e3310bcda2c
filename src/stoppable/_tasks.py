"""What a ``ThreadPoolExecutor`` task runs in: its stop, its scope or guard, its context.

``_run_task`` is what the executor's workers run for each task: the task's own
``StopEvent`` set as ``current_stop()`` and entered as a ``scope`` (or a ``guard``),
inside the ``contextvars.Context`` the task was submitted to run in. ``_Tasks`` is
the executor's registry of unfinished tasks, by future, for ``stop_task`` and for
stopping every running task at once.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any, TypeVar

from ._errors import Stopped
from ._futwait import _is_done
from ._guard import _install, guard
from ._limits import scope
from ._stop import StopEvent

T = TypeVar("T")

_task_stop: ContextVar[StopEvent | None] = ContextVar("stoppable_task_stop", default=None)


def current_stop() -> StopEvent | None:
    """The ``StopEvent`` of the ``ThreadPoolExecutor`` task running in this thread.

    ``None`` outside such a task. A task needs it only to hand its stop to something
    that is not a ``stoppable`` call (an ``add_callback`` that closes a resource, a
    ``stoppable.sync.Thread(parent=...)``): ``stoppable`` calls and
    ``stoppable.checkpoint()`` in the task honour it already.
    """
    return _task_stop.get()


def _run_task(
    executor_stop: StopEvent,
    stop: StopEvent,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    guarded: bool = False,
) -> T:
    """Run one task with its stop in force; a task stopped before it starts never runs."""
    if executor_stop._flag:  # a queued task's stop is set only when it starts
        stop.set(executor_stop.reason)
    if stop._flag:
        raise Stopped(stop.reason)
    context, fn, args, kwargs = _split_context(fn, args, kwargs)
    if context is not None:
        # asyncio.to_thread submits partial(context.run, func): the stop (and the
        # guard, both contextvars) must be entered inside that context to reach func.
        return context.run(_run_in_stop, stop, fn, args, kwargs, guarded)
    return _run_in_stop(stop, fn, args, kwargs, guarded)


def _run_in_stop(
    stop: StopEvent,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    guarded: bool,
) -> T:
    token = _task_stop.set(stop)
    try:
        # The pool's own StopEvent: valid by construction, not checked again per task.
        if not guarded:
            with scope._trusted(None, stop):
                return fn(*args, **kwargs)
        with guard._trusted(None, stop):
            return _install.resolve(fn)(*args, **kwargs)  # type: ignore[no-any-return]
    finally:
        _task_stop.reset(token)


def _is_context_run(fn: object) -> bool:
    return isinstance(getattr(fn, "__self__", None), contextvars.Context) and (
        getattr(fn, "__name__", None) == "run"
    )


def _split_context(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[contextvars.Context | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """``(context, func, args, kwargs)`` of a call that runs ``func`` in a copied context.

    ``asyncio.to_thread`` submits ``partial(context.run, func, *args)``, and
    ``aio.to_thread`` ``context.run`` with ``func`` as its first argument. A scope or
    guard (``contextvars`` state) entered around ``context.run`` would not be seen
    inside it: it must be entered inside the context. Other ways of switching
    context inside a task are not recognised.
    """
    if isinstance(fn, functools.partial):
        if fn.args and _is_context_run(fn.func):
            return (
                fn.func.__self__,  # type: ignore[attr-defined]
                fn.args[0],
                fn.args[1:] + args,
                {**fn.keywords, **kwargs},
            )
    elif args and _is_context_run(fn):
        return fn.__self__, args[0], args[1:], kwargs  # type: ignore[attr-defined]
    return None, fn, args, kwargs


class _Task:
    __slots__ = ("fn", "stop")

    def __init__(self, stop: StopEvent, fn: Callable[..., Any]) -> None:
        self.stop = stop
        self.fn = fn


class _Tasks:
    """The executor's unfinished tasks, by future; each leaves when its future is done.

    Kept apart from the executor so that the futures' done-callbacks do not keep the
    executor alive. No lock: each step is one dict operation, atomic on its own, and
    ``submit`` is a hot path.
    """

    __slots__ = ("_by_future", "_forget")

    def __init__(self) -> None:
        by_future: dict[Future[Any], _Task] = {}
        self._by_future = by_future
        pop = by_future.pop
        self._forget: Callable[[Future[Any]], object] = lambda future: pop(future, None)

    def add(self, future: Future[Any], task: _Task) -> None:
        self._by_future[future] = task
        future.add_done_callback(self._forget)  # at once if already done

    def get(self, future: Future[Any]) -> _Task | None:
        return self._by_future.get(future)

    def stop_running(self, reason: object) -> None:
        """Set the stop of every running task.

        Queued tasks are left alone, for speed (a shutdown may cancel thousands of
        them): each checks the executor's stop when it starts (``_run_task``).
        """
        for future, task in self._by_future.copy().items():
            if future.running():
                task.stop.set(reason)

    def unfinished(self) -> list[tuple[Future[Any], _Task]]:
        return [(f, task) for f, task in self._by_future.copy().items() if not _is_done(f)]


def _describe(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else str(name)

"""asyncio code that runs blocking work in threads, and can really stop it.

``asyncio.to_thread`` and ``loop.run_in_executor`` cannot stop their thread:
cancelling the awaiting task abandons it, the thread runs on, and ``asyncio.run()``
then waits for it at exit (up to 300 s on 3.12+, for ever before). trio and anyio
can only abandon the thread or make it poll. Here the thread runs inside a
``stoppable.guard`` with a ``StopEvent`` of its own, so cancelling the task stops the
thread's blocking call (a plain ``time.sleep``, ``socket.recv``, ``queue.Queue.get``
in code that knows nothing of stoppable) at once.

Threads, from asyncio:

- ``to_thread(func, /, *args, timeout, stop=None, **kwargs)``: ``asyncio.to_thread``
  with a deadline and a stop. The await ends with ``CancelledError`` only once the
  thread has ended.
- ``Executor``: a ``ThreadPoolExecutor`` for ``loop.run_in_executor`` and
  ``loop.set_default_executor`` whose tasks run inside a guard; cancelling a task's
  future stops it, and ``shutdown()`` (what ``asyncio.run()`` calls at exit) stops
  every task and is bounded.

asyncio, from a stop:

- ``await wait(stop)``: until a ``StopEvent`` (set from any thread) is set.
- ``cancel_on(stop)``: a block whose task is cancelled when the stop is set, ending
  with ``Stopped``; so one SIGTERM stop drives threads and tasks alike.

Everything here needs a running asyncio loop (anyio's asyncio backend included);
under trio it raises ``RuntimeError`` (the README shows what to do there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from . import futures as _futures
from ._errors import DeadlineExceeded, Stopped
from ._guard import guard as _guard
from ._guard._install import resolve as _resolve_patch
from ._limits import (
    UNTIL_STOPPED,
    StopLike,
    begin,
    get_poll_interval,
    scope,
    validate_stop,
    validate_timeout,
)
from ._stop import StopEvent

__all__ = ["Executor", "cancel_on", "to_thread", "wait"]

T = TypeVar("T")

_log = logging.getLogger("stoppable")
_monotonic = time.monotonic
_INF = math.inf


def _running_loop(what: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"stoppable.aio.{what} needs a running asyncio event loop (asyncio, or anyio's "
            "asyncio backend); under trio, see the README's stoppable.aio section"
        ) from None


def _describe(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return repr(func) if name is None else str(name)


# --- to_thread ----------------------------------------------------------------------


class _Call:
    """One ``to_thread`` call: what the worker thread runs, its stop, and its end."""

    __slots__ = (
        "args",
        "claim",
        "deadline",
        "end",
        "finished",
        "func",
        "kwargs",
        "loop",
        "outer",
        "stop",
        "timeout",
        "waiter",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float,
        stop: StopLike | None,
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.timeout = timeout
        self.deadline = _monotonic() + timeout  # inf for UNTIL_STOPPED
        # The thread's own stop: a child of the caller's StopEvent (its set reaches the
        # thread without polling); a plain Event as the caller's stop is polled.
        self.outer: StopLike | None = None
        if stop is None:
            self.stop = StopEvent()
        elif isinstance(stop, StopEvent):
            self.stop = stop.child()
        else:
            self.stop = StopEvent()
            self.outer = stop
        # Taken once, by whichever comes first: the worker starting the call, or the
        # task cancelled while the call is still queued. A dropped call never starts;
        # a started one is stopped and waited for.
        self.claim = threading.Lock()
        # Taken once, by whichever comes first: the worker as the call ends, or a
        # cancelled task that must wait for that end (which the worker then signals).
        # The executor's future cannot tell it: the task's cancellation cancelled it.
        self.end = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        # Only for a cancelled task, in the loop's thread: whether the worker is done,
        # and the future the task awaits meanwhile (a new one after each cancel).
        self.finished = False
        self.waiter: asyncio.Future[None] | None = None

    def run(self) -> Any:
        """Run the call in the worker thread (in the caller's copied context)."""
        if not self.claim.acquire(False):
            return None  # dropped while queued: nobody awaits this
        try:
            stop = self.stop
            if stop._flag:
                raise Stopped(stop._reason)
            # The deadline was fixed when to_thread was called; the guard takes what is
            # left of it (the wait for a free worker counts).
            remaining = self.deadline - _monotonic()
            if remaining <= 0:
                raise DeadlineExceeded(
                    f"to_thread({_describe(self.func)}) timed out after {self.timeout:g} s "
                    "waiting for a free worker thread",
                    timeout=self.timeout,
                )
            limit = None if remaining == _INF else remaining  # UNTIL_STOPPED: the stop only
            # Both are valid by construction (a positive finite number or None, our own
            # StopEvent): the guard need not check them again on every call.
            if self.outer is not None:
                with scope(stop=self.outer), _guard._trusted(limit, stop):
                    return self.func(*self.args, **self.kwargs)
            with _guard._trusted(limit, stop):
                return self.func(*self.args, **self.kwargs)
        except StopIteration as exc:
            # A future refuses StopIteration (it would end the awaiting coroutine's
            # frame): asyncio.to_thread leaves the task waiting for ever. As PEP 479
            # does for generators:
            raise RuntimeError(f"{_describe(self.func)} raised StopIteration") from exc
        finally:
            if not self.end.acquire(False):  # a cancelled task waits for this
                assert self.loop is not None
                _wake(self.loop, self._finish)

    def _finish(self) -> None:  # in the loop's thread
        self.finished = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def ended(self, loop: asyncio.AbstractEventLoop) -> None:
        """Return once the worker has finished the call, through any cancellation."""
        self.loop = loop
        if not self.end.acquire(False):
            return  # finished already
        # Awaited directly, not through asyncio.wait or shield: this runs between the
        # stop's set() and the loop's next select(), while the woken worker waits for
        # the GIL. A cancellation cancels the waiter; the next one is a new future,
        # and _finish (in this thread too) resolves whichever is current.
        while not self.finished:
            self.waiter = loop.create_future()
            try:
                await self.waiter
            except asyncio.CancelledError:
                # anyio re-delivers its cancellation at every loop iteration until the
                # task leaves its scope; the thread is ending, and must be waited for.
                continue
        self.waiter = None


async def to_thread(
    func: Callable[..., T],
    /,
    *args: Any,
    timeout: float,
    stop: StopLike | None = None,
    **kwargs: Any,
) -> T:
    """Run ``func(*args, **kwargs)`` in a worker thread that cancelling the task stops.

    As ``asyncio.to_thread``: the call runs in the loop's default executor, in a copy
    of the caller's context (``contextvars``), and its result or exception passes
    through unchanged. In addition, it runs inside ``stoppable.guard(timeout=...,
    stop=...)`` with a ``StopEvent`` of its own (a ``child()`` of ``stop``, when
    given), so every blocking call it makes, in any code, is bounded and stoppable:

    - cancelling the awaiting task sets that stop as soon as the task runs again,
      with the cancel message as its reason; the await ends with ``CancelledError``
      only once the thread has ended (a call still queued for a worker is dropped at
      once and never runs). The outcome of a call whose task was cancelled is
      dropped, as asyncio's is;
    - ``timeout`` (seconds, required, counted from this call, the wait for a free
      worker included) is the thread's deadline: a blocking call still waiting then
      raises ``DeadlineExceeded`` (a ``TimeoutError``, as ``asyncio.timeout``
      raises), and the guard makes sure that is what comes out. A call whose
      deadline passed while every worker was busy does not run: it raises as soon
      as a worker takes it (to bound that wait too, use ``asyncio.timeout``);
    - ``timeout=stoppable.UNTIL_STOPPED``: no deadline of its own; the thread runs
      until the task is cancelled, ``stop`` (or an enclosing scope's stop) is set,
      or an enclosing scope's deadline passes. Accepted without ``stop`` too: the
      task's cancellation is a stop that can always end the wait;
    - setting ``stop`` (or the stop of an enclosing ``stoppable.scope``) ends the
      call with ``Stopped``; already set, the call raises at once without starting.

    Arguments named ``timeout`` or ``stop`` cannot be passed through to ``func``: use
    ``functools.partial``. Bad ``timeout``/``stop``/``func`` raise ``TypeError`` or
    ``ValueError`` before any thread is involved.
    """
    if timeout is UNTIL_STOPPED:
        # Always accepted: cancelling the awaiting task sets the thread's stop, so a
        # stop that can end the wait is there even without ``stop`` or a scope.
        begin(0.0, stop)  # validates stop; raises Stopped if a stop is set already
        seconds = _INF
    else:
        seconds = begin(timeout, stop)
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__} {func!r}")
    loop = _running_loop("to_thread()")
    call = _Call(func, args, kwargs, seconds, stop)
    future = loop.run_in_executor(None, contextvars.copy_context().run, call.run)
    try:
        result: T = await future
    except asyncio.CancelledError as cancelled:
        if call.claim.acquire(False):
            # Not started: cancelling the future took it out of the executor's queue
            # (or, taken by a worker just now, it does nothing).
            raise
        call.stop.set(_cancel_reason(cancelled))
        await call.ended(loop)
        raise
    return result


def _cancel_reason(cancelled: asyncio.CancelledError) -> object:
    return cancelled.args[0] if cancelled.args and cancelled.args[0] is not None else "cancelled"


# --- the executor --------------------------------------------------------------------


class _TaskFuture(concurrent.futures.Future[Any]):
    """An ``Executor`` task's future: ``cancel()`` of a running task stops it."""

    _stoppable_stop: StopEvent

    def cancel(self) -> bool:
        """Cancel the task if it has not started; if it is running, stop it.

        Returns ``True`` only for a task that will not run (as the standard future
        does). For a running one it sets the task's stop (``reason="cancelled"``) and
        returns ``False``: the task ends at its next blocking call.
        """
        if super().cancel():
            return True
        if not self.done():
            self._stoppable_stop.set("cancelled")
        return False


class Executor(_futures.ThreadPoolExecutor):
    """A thread pool for asyncio whose tasks run inside a guard and can be stopped.

    A ``stoppable.futures.ThreadPoolExecutor`` (each task has a ``StopEvent`` of its
    own; ``stop``, ``stop_task``, ``parent`` as there) that also:

    - runs each task inside ``stoppable.guard(timeout=task_timeout, stop=<its stop>)``,
      so a plain ``time.sleep`` or ``sock.recv`` in it ends when it is stopped;
      ``task_timeout`` (``None`` or ``stoppable.UNTIL_STOPPED``: no deadline, the
      task runs until stopped) counts from the task's start;
    - stops a running task when its future is cancelled, which is what asyncio does
      when a task awaiting ``loop.run_in_executor(executor, ...)`` (or, with this as
      the default executor, ``asyncio.to_thread``) is cancelled. The await ends at
      once, as asyncio's does; the thread ends a few microseconds later, and
      ``shutdown()`` waits for it. ``to_thread`` waits for the thread itself;
    - shuts down by stopping every task, bounded: ``shutdown()`` (what ``with``,
      ``asyncio.run()`` and ``loop.shutdown_default_executor()`` call) stops the
      running tasks, cancels the queued ones, and waits at most ``shutdown_timeout``
      seconds (default 5) for the threads; a task still running then is logged (a
      warning on the ``stoppable`` logger, naming it), not waited for. An explicit
      ``shutdown(timeout=...)`` raises ``ShutdownDeadline`` instead.

    Use it as the default executor, so that ``asyncio.run()`` exits promptly with
    threads in flight::

        async def main():
            asyncio.get_running_loop().set_default_executor(aio.Executor(64))
            ...

    A task that ignores its stop (a C extension doing its own I/O, a CPU loop) still
    keeps the interpreter from exiting until it ends: Python joins every worker of a
    ``concurrent.futures`` pool at exit.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        parent: StopEvent | None = None,
        task_timeout: float | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        # UNTIL_STOPPED is None spelled out: every task has a stop (its future's
        # cancel(), stop_task(), shutdown()) that can end it.
        self.task_timeout = (
            None
            if task_timeout is None or task_timeout is UNTIL_STOPPED
            else validate_timeout(task_timeout, "task_timeout")
        )
        """Each task's deadline, in seconds from its start (``None``: none)."""
        super().__init__(
            max_workers,
            thread_name_prefix,
            initializer,
            initargs,
            parent=parent,
            shutdown_timeout=shutdown_timeout,
            # Without a deadline the base executor's own guard (with the task's stop)
            # is all a task needs: no wrapper, no second scope, per task.
            guard=self.task_timeout is None,
        )
        self.shutdown_timeout = self._stoppable_shutdown_timeout
        """How long ``shutdown()`` without a ``timeout`` waits for the threads."""

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Schedule ``fn(*args, **kwargs)`` inside a guard; cancelling its future stops it."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
        if self.task_timeout is None:
            future = super().submit(fn, *args, **kwargs)  # in the base's guard
        else:
            future = super().submit(_guarded(fn, args, kwargs, self.task_timeout))
        task = self._stoppable_tasks.get(future)
        if task is not None:
            # ShutdownDeadline and the shutdown warning name the task by this: the
            # function itself, not asyncio.to_thread's partial(context.run, ...).
            task.fn = _futures._split_context(fn, args, kwargs)[1]
            # A class of the same layout, chosen after the fact: the standard executor
            # makes the future itself, and asyncio cancels a running task only
            # through its future's cancel(). A per-instance override would be a
            # reference cycle per task.
            future.__class__ = _TaskFuture
            future._stoppable_stop = task.stop  # type: ignore[attr-defined]
        return future

    def shutdown(
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        stop: bool = True,
        timeout: float | None = None,
        reason: object = "executor shutdown",
    ) -> None:
        """Stop the tasks and wait for their threads, within a bound.

        As ``stoppable.futures.ThreadPoolExecutor.shutdown``, except that ``stop``
        defaults to ``True`` (running tasks are stopped, queued ones cancelled) and
        that without a ``timeout`` the wait is bounded by ``shutdown_timeout``: tasks
        still running then are logged as a warning and left running. An explicit
        ``timeout`` raises ``ShutdownDeadline`` instead.
        """
        if timeout is not None or not wait:
            super().shutdown(
                wait,
                cancel_futures=cancel_futures,
                stop=stop,
                timeout=self.shutdown_timeout if timeout is None else timeout,
                reason=reason,
            )
            return
        try:
            super().shutdown(
                wait,
                cancel_futures=cancel_futures,
                stop=stop,
                timeout=self.shutdown_timeout,
                reason=reason,
            )
        except _futures.ShutdownDeadline as err:
            _log.warning("%s; not waiting for them any longer", err)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down: stop the tasks, bounded (see ``shutdown``)."""
        self.shutdown()


def _guarded(
    fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
) -> Callable[[], T]:
    """``fn(*args, **kwargs)`` as an executor task that runs inside a guard."""
    context, func, args, kwargs = _futures._split_context(fn, args, kwargs)

    def run_guarded() -> T:
        stop = _futures.current_stop()
        result: T
        if context is None:
            result = _call_in_guard(timeout, stop, func, args, kwargs)
        else:
            result = context.run(_call_in_guard, timeout, stop, func, args, kwargs)
        return result

    return run_guarded


def _call_in_guard(
    timeout: float | None,
    stop: StopEvent | None,
    func: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    with _guard(timeout=timeout, stop=stop):
        return _resolve_patch(func)(*args, **kwargs)  # type: ignore[no-any-return]


# --- from a stop to asyncio ----------------------------------------------------------


def _wake(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    # Runs in the thread that set the stop (maybe the loop's own).
    with contextlib.suppress(RuntimeError):  # the loop is closed: the waiter is long gone
        loop.call_soon_threadsafe(callback)


def _resolve(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(True)


async def wait(stop: StopLike) -> bool:
    """Wait until ``stop`` is set (from any thread); returns ``True``.

    A ``StopEvent`` wakes the waiting task at once, through a callback removed when
    the wait ends (however it ends: a cancelled wait leaves nothing behind). A plain
    ``threading.Event`` (or anything with ``is_set()``) is polled every poll interval
    (``stoppable.get_poll_interval()``). For a time limit, wrap it in
    ``asyncio.timeout``.
    """
    stop = validate_stop(stop)
    if stop.is_set():
        return True
    loop = _running_loop("wait()")
    if isinstance(stop, StopEvent):
        future: asyncio.Future[bool] = loop.create_future()
        handle = stop.add_callback(
            functools.partial(_wake, loop, functools.partial(_resolve, future))
        )
        try:
            return await future
        finally:
            handle.remove()
    while not stop.is_set():
        await asyncio.sleep(get_poll_interval())
    return True


class cancel_on:  # a context manager used like a function, as asyncio.timeout is
    """A block whose task is cancelled when ``stop`` is set; it then raises ``Stopped``.

    ::

        async with aio.cancel_on(shutdown):         # or a plain ``with``
            request = await reader.readline()      # cancelled at once on shutdown.set()
            reply = await aio.to_thread(client.get, request, timeout=10)

    When ``stop`` is set (from any thread), the task running the block is cancelled,
    and the block's ``CancelledError`` comes out of it as ``Stopped(reason)``, chained
    from it, as ``asyncio.timeout`` turns its cancellation into ``TimeoutError``. A
    cancellation from elsewhere passes through unchanged. A stop already set on entry
    raises ``Stopped`` at once. The block is also a ``stoppable.scope(stop=stop)``:
    ``stoppable`` calls and ``to_thread`` threads in it honour the stop directly.

    A ``StopEvent`` cancels the task at once; a plain ``threading.Event`` is polled
    every poll interval. Must be entered inside an asyncio task; entered once.
    """

    __slots__ = (
        "_cancelled",
        "_cancelling",
        "_exited",
        "_handle",
        "_loop",
        "_poller",
        "_scope",
        "_stop",
        "_task",
    )

    def __init__(self, stop: StopLike) -> None:
        self._stop = validate_stop(stop)
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope: scope | None = None
        self._handle: Any = None
        self._poller: asyncio.TimerHandle | None = None
        self._cancelled = False
        self._cancelling = 0
        self._exited = False

    @property
    def stopped(self) -> bool:
        """Whether the stop cancelled the block."""
        return self._cancelled

    def __enter__(self) -> cancel_on:
        if self._task is not None:
            raise RuntimeError("cancel_on() can be entered only once")
        loop = _running_loop("cancel_on()")
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("cancel_on() must be entered inside an asyncio task")
        stop = self._stop
        if stop.is_set():
            raise Stopped(getattr(stop, "reason", None))
        self._loop, self._task = loop, task
        if sys.version_info >= (3, 11):
            self._cancelling = task.cancelling()
        self._scope = scope(stop=stop)
        self._scope.__enter__()
        if isinstance(stop, StopEvent):
            self._handle = stop.add_callback(functools.partial(_wake, loop, self._cancel))
        else:
            self._poller = loop.call_later(get_poll_interval(), self._poll)
        return self

    def _poll(self) -> None:
        if self._stop.is_set():
            self._cancel()
        elif not self._exited:
            assert self._loop is not None
            self._poller = self._loop.call_later(get_poll_interval(), self._poll)

    def _cancel(self) -> None:  # in the loop's thread
        if self._exited or self._cancelled:
            return
        assert self._task is not None
        self._cancelled = True
        self._task.cancel(f"stopped: {getattr(self._stop, 'reason', None)}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exited = True
        if self._handle is not None:
            self._handle.remove()
        if self._poller is not None:
            self._poller.cancel()
        assert self._scope is not None
        assert self._task is not None
        self._scope.__exit__(exc_type, exc, tb)
        if not self._cancelled:
            return
        ours = True
        if sys.version_info >= (3, 11):
            # As asyncio.timeout: a cancellation requested since, by someone else,
            # is theirs to handle.
            ours = self._task.uncancel() <= self._cancelling
        if ours and isinstance(exc, asyncio.CancelledError):
            raise Stopped(getattr(self._stop, "reason", None)) from exc

    async def __aenter__(self) -> cancel_on:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

"""Dramatiq actors stopped through their stop, not killed: ``install(broker)``.

Dramatiq's own ``TimeLimit`` middleware (on by default, 10 minutes) and its
``ShutdownNotifications`` raise an asynchronous exception into the worker thread
(``PyThreadState_SetAsyncExc``). That exception is only seen when the thread next runs
Python bytecode: an actor blocked in ``socket.recv``, ``queue.Queue.get`` or
``time.sleep`` stays blocked until the call returns on its own, and when it does fire it
can fire anywhere, inside a ``with lock:`` block (the lock stays held) or between taking
an item and recording it (the item is lost).

``install(broker)`` replaces both with ``stoppable.integrations.dramatiq.TimeLimit``::

    broker = RedisBroker(url=...)
    stoppable.integrations.dramatiq.install(broker)

    @dramatiq.actor(time_limit=30_000)          # the same option, in milliseconds
    def fetch(url): ...

Each message's actor runs inside ``stoppable.guard`` with what is left of its time limit
and a stop that the worker's shutdown sets (in Dramatiq's worker processes, as soon as
the SIGTERM arrives). Every blocking call the actor makes, in any
library, ends at the limit (``DeadlineExceeded``, a ``socket.timeout`` the client handles
as its own timeout) or at once on shutdown (``Stopped``), and the actor's call then ends
with this module's ``TimeLimitExceeded`` or ``Shutdown`` (subclasses of Dramatiq's, so
existing ``except`` clauses and middleware keep working), chained from what the guard
raised, the reason in its message and in the log.

What happens to the message is what Dramatiq does with a failed one: it is not acked as
done; ``Retries`` retries it as its policy says (``max_retries``, backoff, ``retry_when``,
``throws``), and once retries are exhausted it is dead-lettered. A message stopped by a
shutdown on a broker without a ``Retries`` middleware is enqueued again before its
delivery is acked, so it is never lost.

Options (actor or message, as with Dramatiq):

- ``time_limit``: milliseconds; ``float("inf")`` for none. The default is the replaced
  middleware's (Dramatiq's is 600 000 ms), or ``install(broker, time_limit=...)``.
- ``notify_shutdown``: ``False`` lets this actor finish its message during a shutdown
  (Dramatiq's worker waits for it) instead of being stopped. Every actor is stopped by
  default (``install(broker, stop_on_shutdown=False)`` makes opting in the default).

Limits: a thread busy in pure Python computation is not interrupted (no blocking call
to end); check ``stoppable.checkpoint()`` in long loops. Blocking calls made inside C
extensions that do their own I/O are not reached (see ``stoppable.guard``). ``async``
actors run on Dramatiq's event loop thread: they are cancelled (``CancelledError`` at
their ``await``) at the limit or on shutdown. gevent workers are not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import numbers
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, TypeVar

import dramatiq
import dramatiq.middleware as dramatiq_middleware
from dramatiq.asyncio import async_to_sync

from .. import guard
from .._stop import StopEvent

__all__ = [
    "InvalidTimeLimitType",
    "InvalidTimeLimitValue",
    "Shutdown",
    "TimeLimit",
    "TimeLimitExceeded",
    "install",
]

_log = logging.getLogger("stoppable.integrations.dramatiq")

#: Dramatiq's default time limit, in milliseconds (10 minutes).
DEFAULT_TIME_LIMIT = 600_000

SHUTDOWN_REASON = "worker shutdown"

R = TypeVar("R")


class TimeLimitExceeded(dramatiq_middleware.TimeLimitExceeded):
    """An actor ran past its time limit; the blocking call it was in was ended.

    A subclass of Dramatiq's ``TimeLimitExceeded`` (a ``BaseException``), raised by the
    actor's call, chained from what the guard raised inside (``DeadlineExceeded``, or
    the error the actor's client turned it into).
    """

    def __init__(self, reason: str, *, actor_name: str, message_id: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.actor_name = actor_name
        self.message_id = message_id

    def __str__(self) -> str:
        return f"actor {self.actor_name!r} (message {self.message_id}) stopped: {self.reason}"


class Shutdown(dramatiq_middleware.Shutdown):
    """The worker is shutting down; the actor's blocking call was ended at once.

    A subclass of Dramatiq's ``Shutdown`` (a ``BaseException``), raised by the actor's
    call, chained from the guard's ``Stopped``.
    """

    def __init__(self, reason: str, *, actor_name: str, message_id: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.actor_name = actor_name
        self.message_id = message_id

    def __str__(self) -> str:
        return f"actor {self.actor_name!r} (message {self.message_id}) stopped: {self.reason}"


def _validate_time_limit(value: object, name: str) -> float:
    """A time limit in milliseconds (``inf`` for none), or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number of milliseconds (float('inf') for none), "
            f"got {type(value).__name__} {value!r}"
        )
    limit = float(value)
    if math.isnan(limit) or limit <= 0:
        raise ValueError(f"{name} must be > 0 milliseconds (float('inf') for none), got {value!r}")
    return limit


class InvalidTimeLimitType(dramatiq_middleware.MiddlewareError, TypeError):
    """An actor's ``time_limit`` is not a number (refused when the actor is declared)."""


class InvalidTimeLimitValue(dramatiq_middleware.MiddlewareError, ValueError):
    """An actor's ``time_limit`` is not > 0 (refused when the actor is declared)."""


class _Run:
    """The limits of the message a worker thread is processing."""

    __slots__ = ("actor_name", "deadline", "entered", "message_id", "stop", "time_limit")

    def __init__(
        self, actor_name: str, message_id: str, time_limit: float, stop: StopEvent | None
    ) -> None:
        self.actor_name = actor_name
        self.message_id = message_id
        self.time_limit = time_limit
        # The limit counts from the moment the worker takes the message, as Dramatiq's.
        self.deadline = None if math.isinf(time_limit) else time.monotonic() + time_limit / 1000
        self.stop = stop
        self.entered = False

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def interruption(self, cause: BaseException | None) -> BaseException | None:
        """What the actor's call raises instead of ``cause``, if a limit ended it."""
        if self.stop is not None and self.stop.is_set():
            error: BaseException = Shutdown(
                str(self.stop.reason or SHUTDOWN_REASON),
                actor_name=self.actor_name,
                message_id=self.message_id,
            )
        elif self.expired():
            error = TimeLimitExceeded(
                f"time limit of {self.time_limit:g} ms exceeded",
                actor_name=self.actor_name,
                message_id=self.message_id,
            )
        else:
            return None
        _log.warning("%s", error)
        error.__cause__ = cause
        return error


_current = threading.local()


def _current_run() -> _Run | None:
    run: _Run | None = getattr(_current, "run", None)
    return run


def _guard_sync(fn: Callable[..., R]) -> Callable[..., R]:
    @functools.wraps(fn)
    def run_actor(*args: Any, **kwargs: Any) -> R:
        run = _current_run()
        # Outside a worker (a test calling the actor) or called from inside another
        # actor's guarded call: the enclosing guard, if any, already applies.
        if run is None or run.entered or (run.deadline is None and run.stop is None):
            return fn(*args, **kwargs)
        run.entered = True
        try:
            with guard(timeout=run.remaining(), stop=run.stop):
                return fn(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:
            replacement = run.interruption(err)
            if replacement is None:
                raise
            raise replacement from err
        finally:
            run.entered = False

    run_actor.__stoppable_guarded__ = True  # type: ignore[attr-defined]
    return run_actor


def _guard_async(async_fn: Callable[..., Awaitable[R]]) -> Callable[..., R]:
    # An async actor runs on Dramatiq's event loop thread, which a guard in the worker
    # thread does not reach: its task is cancelled instead, by the stop or the limit.
    async def run_coroutine(run: _Run | None, args: Any, kwargs: Any) -> R:
        if run is None or (run.deadline is None and run.stop is None):
            return await async_fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        handles: list[Callable[[], object]] = []
        if run.stop is not None:
            callback = run.stop.add_callback(lambda: loop.call_soon_threadsafe(task.cancel))
            handles.append(callback.remove)
        remaining = run.remaining()
        if remaining is not None:
            handles.append(loop.call_later(remaining, task.cancel).cancel)
        try:
            return await async_fn(*args, **kwargs)
        except asyncio.CancelledError as err:
            replacement = run.interruption(err)
            if replacement is None:
                raise
            raise replacement from err
        finally:
            for remove in handles:
                remove()

    def make_coroutine(*args: Any, **kwargs: Any) -> Awaitable[R]:
        # Called in the worker thread, where the message's limits are known.
        return run_coroutine(_current_run(), args, kwargs)

    run_actor = async_to_sync(functools.wraps(async_fn)(make_coroutine))
    run_actor.__stoppable_guarded__ = True  # type: ignore[attr-defined]
    return run_actor


def _guard_actor(actor: dramatiq.Actor[Any, Any]) -> None:
    """Make ``actor`` run its function inside the guard (once)."""
    fn = actor.fn
    if getattr(fn, "__stoppable_guarded__", False):
        return
    original = getattr(fn, "__wrapped__", None)
    if original is not None and inspect.iscoroutinefunction(original):
        actor.fn = _guard_async(original)
    else:
        actor.fn = _guard_sync(fn)


class TimeLimit(dramatiq.Middleware):
    """Stops actors that run too long, or whose worker shuts down, through a guard.

    Replaces Dramatiq's ``TimeLimit`` and ``ShutdownNotifications`` (``install`` does
    the replacing): same actor and message option ``time_limit`` (milliseconds,
    ``float("inf")`` for none), same default; see the module docstring.

    Parameters
    ----------
      time_limit: the default limit in milliseconds (Dramatiq's: 600 000).
      stop_on_shutdown: whether a worker shutdown stops running actors; an actor or
        message option ``notify_shutdown`` overrides it for that actor.
    """

    def __init__(
        self, *, time_limit: float = DEFAULT_TIME_LIMIT, stop_on_shutdown: bool = True
    ) -> None:
        self.time_limit = _validate_time_limit(time_limit, "time_limit")
        if not isinstance(stop_on_shutdown, bool):
            raise TypeError(
                f"stop_on_shutdown must be a bool, got {type(stop_on_shutdown).__name__}"
            )
        self.stop_on_shutdown = stop_on_shutdown
        self.shutdown = StopEvent()
        """Set (reason ``"worker shutdown"``) when the worker starts shutting down."""
        self._sigterm: tuple[Any, int] | None = None

    @property
    def actor_options(self) -> set[str]:
        """The actor options this middleware reads."""
        return {"time_limit", "notify_shutdown"}

    def before_declare_actor(
        self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]
    ) -> None:
        """Refuse a bad ``time_limit`` when the actor is declared, not at its first message."""
        # Dramatiq propagates only a MiddlewareError out of a hook: it logs the others.
        if actor.options.get("time_limit") is not None:
            try:
                _validate_time_limit(actor.options["time_limit"], "time_limit")
            except TypeError as err:
                raise InvalidTimeLimitType(str(err)) from None
            except ValueError as err:
                raise InvalidTimeLimitValue(str(err)) from None

    def after_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
        """Make the actor run its function guarded."""
        _guard_actor(actor)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Start the message's time limit (in the worker thread that runs it)."""
        actor = broker.get_actor(message.actor_name)
        limit = message.options.get("time_limit") or actor.options.get(
            "time_limit", self.time_limit
        )
        notify = message.options.get("notify_shutdown")
        if notify is None:
            notify = actor.options.get("notify_shutdown")
        if notify is None:
            notify = self.stop_on_shutdown
        _current.run = _Run(
            message.actor_name,
            message.message_id,
            _validate_time_limit(limit, "time_limit"),
            self.shutdown if notify else None,
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        """End the message's limits; requeue a shutdown-stopped one nothing retries."""
        _current.run = None
        if isinstance(exception, Shutdown) and not any(
            isinstance(m, dramatiq_middleware.Retries) for m in broker.middleware
        ):
            # Without Retries the worker would ack it as done: enqueue it again first.
            _log.info("requeueing message %s stopped by the shutdown", message.message_id)
            broker.enqueue(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """End the message's limits."""
        _current.run = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        """In Dramatiq's worker process, stop the actors as soon as SIGTERM arrives."""
        # Dramatiq's worker process notes a SIGTERM in a Python handler and looks at
        # it once a second before it calls Worker.stop(). Chained onto that handler
        # (only where there is one, in the main thread), the stop comes at once. The
        # handler only writes a byte: a StopEvent's set() takes locks the interrupted
        # code may hold, so a watcher thread does the setting.
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            with contextlib.suppress(OSError):
                os.write(write_fd, b"\0")
            previous(signum, frame)

        def watch() -> None:
            with contextlib.suppress(OSError):
                if os.read(read_fd, 1):
                    _log.info("SIGTERM: stopping running actors")
                    self.before_worker_shutdown(broker, worker)
            os.close(read_fd)

        threading.Thread(target=watch, name="stoppable-sigterm", daemon=True).start()
        signal.signal(signal.SIGTERM, on_sigterm)
        self._sigterm = (previous, write_fd)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Put the SIGTERM handler back; end the watcher."""
        sigterm, self._sigterm = self._sigterm, None
        if sigterm is not None:
            previous, write_fd = sigterm
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
            os.close(write_fd)  # the watcher reads end of file and ends

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Stop every running actor that honours shutdowns, at once."""
        if self.shutdown.is_set():
            return
        # First tell the worker threads to take no new message (Worker.stop() does so
        # next, after this hook): a thread freed by the stop would otherwise start a
        # prefetched message only to have it stopped, and retried, at once.
        for thread in getattr(worker, "workers", ()):
            stop_taking = getattr(thread, "stop", None)
            if callable(stop_taking):
                stop_taking()
        _log.info("worker shutdown: stopping running actors")
        self.shutdown.set(reason=SHUTDOWN_REASON)


def install(
    broker: dramatiq.Broker,
    *,
    time_limit: float | None = None,
    stop_on_shutdown: bool = True,
) -> TimeLimit:
    """Replace ``broker``'s ``TimeLimit`` and ``ShutdownNotifications`` with ours.

    The new ``TimeLimit`` takes the replaced one's place in the middleware order and its
    default limit (unless ``time_limit`` is given, in milliseconds); it is added when the
    broker had none. Actors already declared on the broker are guarded too. Installing
    twice returns the middleware installed first. Call it in the module that makes the
    broker, so every worker process runs it.
    """
    if not isinstance(broker, dramatiq.Broker):
        raise TypeError(f"broker must be a dramatiq.Broker, got {type(broker).__name__}")
    if time_limit is not None:
        _validate_time_limit(time_limit, "time_limit")
    for existing in broker.middleware:
        if isinstance(existing, TimeLimit):
            return existing
    position = None
    default = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    kept: list[dramatiq.Middleware] = []
    for middleware in broker.middleware:
        if isinstance(middleware, dramatiq_middleware.TimeLimit):
            if position is None:
                position = len(kept)
            if time_limit is None:
                default = middleware.time_limit
        elif not isinstance(middleware, dramatiq_middleware.ShutdownNotifications):
            kept.append(middleware)
    ours = TimeLimit(time_limit=default, stop_on_shutdown=stop_on_shutdown)
    kept.insert(len(kept) if position is None else position, ours)
    broker.middleware[:] = kept
    broker.actor_options |= ours.actor_options
    for actor in list(broker.actors.values()):
        ours.after_declare_actor(broker, actor)
    return ours

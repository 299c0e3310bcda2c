"""Celery time limits and revokes for the ``threads`` and ``solo`` pools: ``install(app)``.

Celery enforces ``time_limit``, ``soft_time_limit`` and ``revoke(terminate=True)`` by
signalling or killing a pool *process*: the ``threads`` pool has none of them (a task
runs for as long as it likes, celery#9203) and the ``solo`` pool runs tasks in the
worker's own main thread, which nothing may kill. ``install(app)`` gives both pools all
three, by running each task inside ``stoppable.guard``::

    app = Celery("proj", broker=...)
    stoppable.integrations.celery.install(app)

    @app.task(time_limit=30, soft_time_limit=25, acks_late=True)
    def fetch(url): ...

- ``time_limit`` (the message's, else the task's, else the worker's ``task_time_limit``
  or ``--time-limit``): every blocking call the task makes, in any library, ends at the
  limit (the guard raises ``DeadlineExceeded``, a ``socket.timeout``, inside it) and the
  task ends with Celery's ``TimeLimitExceeded``, chained from it. The message is then
  acked or requeued as Celery does for a time limit (``acks_late`` with
  ``acks_on_failure_or_timeout``).
- ``soft_time_limit`` (same sources), when it comes before the hard one: the blocking
  call the task is in at the soft limit (or its next one) raises
  ``SoftTimeLimitExceeded`` once, as prefork's signal handler does in the middle of
  the call. It is Celery's (this module's subclass) and a ``stoppable.Stopped``, not a
  socket error or a timeout, so a client lets it through as it lets prefork's through:
  redis-py, which makes its own ``TimeoutError`` of a socket timeout and retries it,
  drops the connection and re-raises it; urllib3's retries (socket, TLS and HTTP
  errors only) do not retry it. The
  task's ``except SoftTimeLimitExceeded:`` block runs and may clean up, blocking calls
  included (the call that raised it is dead: its connection is shut down), until the
  hard limit, which still ends it. Not caught, it ends the task (``FAILURE``); what the
  task raises instead (``self.retry()``'s ``Retry``, an error of its own) is what it
  ends with. A client that catches every ``Exception`` and raises its own error hides
  it from the task, as it would prefork's (the task ends with that error, the soft
  limit's as its cause), and one that retries on any ``Exception`` runs on until the
  hard limit. Unlike prefork's, a task running pure Python sees it only at its next
  blocking call, and ``stoppable``'s own calls in the task (``stoppable.checkpoint()``,
  ``stoppable.queues``...) see the soft limit as a plain deadline (their family's
  ``DeadlineExceeded``), each one from then on, at once: a loop that retries them on
  their timeout spins until the hard limit.
- ``revoke(task_id, terminate=True)``, ``terminate(task_id)`` and
  ``revoke_by_stamped_headers(headers, terminate=True)``: each running task Celery
  would terminate (for the stamped form, those with a stamp among the given values, as
  Celery matches them) has its blocking call stopped at once, and Celery marks it
  ``REVOKED``, acks its message and sends ``task_revoked(terminated=True)``, as for a
  terminated prefork process. The task ends with ``Revoked`` (an ``Ignore``), chained
  from what it saw (``Stopped``, in its blocked call). The ``solo`` pool reads control
  messages only between tasks, in the main thread the task holds: a helper thread
  reads these broadcasts on a queue of its own meanwhile, and the task does what
  Celery would have done as it ends. The ``signal`` argument has no process to go to:
  any signal stops the task the same way.
- ``install(app, stop_on_shutdown=True)``: a warm shutdown stops running ``acks_late``
  tasks at once and requeues their messages (they run again on the next worker)
  instead of waiting for them; other tasks finish, as Celery's warm shutdown lets them.

Other pools (prefork, eventlet, gevent) keep Celery's own handling: nothing changes.
Limits: computation in pure Python is not interrupted (no blocking call to end); C
extensions doing their own I/O are not reached (see ``stoppable.guard``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import celery
from celery import bootsteps, signals
from celery.concurrency import solo as solo_pool
from celery.concurrency import thread as thread_pool
from celery.exceptions import Ignore, Reject, TimeLimitExceeded
from celery.exceptions import SoftTimeLimitExceeded as CelerySoftTimeLimitExceeded
from celery.utils.functional import maybe_list
from celery.worker import state as worker_state
from celery.worker.request import Request

from .. import _guard, guard
from .._errors import Stopped
from .._stop import StopEvent

__all__ = ["Revoked", "ShutdownRequeued", "SoftTimeLimitExceeded", "install"]

_log = logging.getLogger("stoppable.integrations.celery")

REVOKED_REASON = "revoked (terminate=True)"
SOLO_CHECK = 0.2  # how often the solo pool's helper looks for a shutdown signal
SHUTDOWN_REASON = "worker shutdown"
# The control commands that can terminate a running task.
_TERMINATING = frozenset({"revoke", "terminate", "revoke_by_stamped_headers"})


class SoftTimeLimitExceeded(CelerySoftTimeLimitExceeded, Stopped):  # type: ignore[misc]
    """The task's soft time limit passed: raised in the blocking call the task was in.

    Celery's ``SoftTimeLimitExceeded`` (an ``Exception``, so the task's handlers for it
    or for ``Exception`` catch it) and a ``stoppable.Stopped``, never a socket error or
    a timeout: a client that rewrites those (redis-py's ``TimeoutError``, urllib3's
    ``ReadTimeoutError``) or retries them lets it through unchanged, as it does the
    exception prefork's signal handler raises in the middle of its read.
    ``timeout`` is the soft limit, in seconds.
    """

    def __init__(self, message: str = "", *, timeout: float | None = None) -> None:
        Stopped.__init__(self, message)
        self.timeout = timeout


class Revoked(Ignore):  # type: ignore[misc]
    """A task stopped by ``revoke(terminate=True)``.

    An ``Ignore``: Celery has already marked it ``REVOKED`` and acked its message, as it
    does for a terminated process, so the task's end records nothing more.
    """


class ShutdownRequeued(Reject):  # type: ignore[misc]
    """An ``acks_late`` task stopped by a warm shutdown; its message goes back to the queue."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, requeue=True)


class _Run:
    """One task being run by a worker thread: its limits and its stop."""

    __slots__ = (
        "hard",
        "soft",
        "stamps",
        "started",
        "stop",
        "task_id",
        "task_name",
    )

    def __init__(
        self,
        task_id: str,
        task_name: str,
        hard: float | None,
        soft: float | None,
        stamps: dict[str, Any],
    ):
        self.task_id = task_id
        self.task_name = task_name
        self.stamps = stamps  # the message's stamped headers, as Celery's Request reads them
        self.started = time.monotonic()
        self.hard = hard
        self.soft = soft
        self.stop = StopEvent()

    def passed(self, limit: float | None) -> bool:
        return limit is not None and time.monotonic() - self.started >= limit


class _Worker:
    """What install() knows of the worker process running the app's tasks."""

    def __init__(self, stop_on_shutdown: bool) -> None:
        self.stop_on_shutdown = stop_on_shutdown
        self.enabled = False  # a threads or solo pool runs the tasks
        self.pool: Any = None
        self.solo = False
        self.time_limit: float | None = None
        self.soft_time_limit: float | None = None
        self.lock = threading.Lock()
        self.running: dict[str, tuple[_Run, bool]] = {}  # task id -> (run, acks_late)
        # Task id -> the signal its terminate named (for the solo pool's announcement).
        self.terminate_requested: dict[str, Any] = {}
        self.shutting_down = False
        self.closing = threading.Event()  # the worker is stopping: end helper threads
        # Set by the shutdown signal's handler: a plain store, safe in a handler.
        self.shutdown_signalled = False

    def terminate(self, task_ids: Any, signal: Any = None) -> None:
        """Stop these tasks, running or when they start: a revoke terminates them."""
        with self.lock:
            for task_id in task_ids:
                self.terminate_requested.setdefault(task_id, signal)
            runs = [self.running[tid][0] for tid in task_ids if tid in self.running]
        for run in runs:
            run.stop.set(REVOKED_REASON)

    def running_stamped(self, headers: Any) -> list[str]:
        """The running tasks ``revoke_by_stamped_headers(headers)`` matches."""
        with self.lock:
            runs = [run for run, _ in self.running.values()]
        return [run.task_id for run in runs if _stamps_match(run.stamps, headers)]

    def stop_for_shutdown(self) -> None:
        """Stop every running ``acks_late`` task (its message can be requeued)."""
        with self.lock:
            self.shutting_down = True
            runs = [run for run, acks_late in self.running.values() if acks_late]
        for run in runs:
            run.stop.set(SHUTDOWN_REASON)


def _limit(*values: object) -> float | None:
    for value in values:
        if value:
            return float(value)  # type: ignore[arg-type]
    return None


def _stamps_match(stamps: dict[str, Any], headers: Any) -> bool:
    """Whether a task's stamps match ``revoke_by_stamped_headers``'s, as Celery matches them.

    ``headers``: ``{name: value or values}``, or the command line's ``["name=value"]``;
    a task matches when, for one name, one of its values is one of the given values.
    """
    if isinstance(headers, (list, tuple)):
        headers = dict(str(item).split("=", 1) for item in headers if "=" in str(item))
    if not isinstance(headers, dict):
        return False
    for name, expected in headers.items():
        actual = stamps.get(name)
        if actual is None:
            continue
        try:
            if set(maybe_list(actual)) & set(maybe_list(expected)):
                return True
        except TypeError:  # an unhashable stamp, which Celery cannot match either
            continue
    return False


def _soft_limit_error(run: _Run, message: str) -> NoReturn:
    """Raise, in the blocked call, what the soft limit raises there (logged as it fires).

    Raised here rather than returned to the guard: it is not the ``DeadlineExceeded``
    the soft guard's deadline would raise (see ``SoftTimeLimitExceeded``).
    """
    _log.warning(
        "task %s[%s]: soft time limit (%g s) exceeded (%s)",
        run.task_name,
        run.task_id,
        run.soft,
        message,
    )
    raise SoftTimeLimitExceeded(
        f"task {run.task_name}[{run.task_id}]: soft time limit ({run.soft:g} s) exceeded",
        timeout=run.soft,
    )


def _translate(run: _Run, err: BaseException) -> BaseException | None:
    """What the task raises instead of ``err``, when one of its limits ended it."""
    reason = run.stop.reason
    replacement: BaseException
    if run.stop.is_set() and reason == REVOKED_REASON:
        replacement = Revoked(f"task {run.task_name}[{run.task_id}] stopped: {reason}")
    elif run.stop.is_set():
        replacement = ShutdownRequeued(f"task {run.task_name}[{run.task_id}] stopped: {reason}")
    elif run.passed(run.hard):
        reason = f"hard time limit ({run.hard:g} s) exceeded"
        replacement = TimeLimitExceeded(run.hard)
    else:
        # Past the soft limit too: what the task raised (the soft limit's error, or what
        # its handler or a client made of it, self.retry()'s Retry...) is what it ends
        # with, as with prefork's.
        return None
    _log.warning("task %s[%s] stopped: %s", run.task_name, run.task_id, reason)
    replacement.__cause__ = err
    return replacement


_inside = threading.local()


def _guarded_run(task: celery.Task, state: _Worker) -> Callable[..., Any]:
    run_task = task.run

    @functools.wraps(run_task)
    def run_guarded(*args: Any, **kwargs: Any) -> Any:
        request = task.request
        if (
            not state.enabled
            or request.called_directly
            or request.is_eager
            or getattr(_inside, "task", False)  # a task called from inside another
        ):
            return run_task(*args, **kwargs)
        hard_default, soft_default = request.timelimit or (None, None)
        stamps = request.stamps or {}
        run = _Run(
            request.id,
            task.name,
            _limit(hard_default, task.time_limit, state.time_limit),
            _limit(soft_default, task.soft_time_limit, state.soft_time_limit),
            {name: stamps.get(name) for name in request.stamped_headers or ()},
        )
        acks_late = bool(task.acks_late)
        with state.lock:
            state.running[run.task_id] = (run, acks_late)
            if run.task_id in state.terminate_requested:
                run.stop.set(REVOKED_REASON)
            elif state.shutting_down and acks_late:
                run.stop.set(SHUTDOWN_REASON)
        _inside.task = True
        try:
            with guard(timeout=run.hard, stop=run.stop):
                if run.soft is None or (run.hard is not None and run.soft >= run.hard):
                    return run_task(*args, **kwargs)
                # The soft limit raises SoftTimeLimitExceeded in the blocked call, once:
                # the task may catch it and clean up until the hard limit.
                with _guard.soft(run.soft, functools.partial(_soft_limit_error, run)):
                    return run_task(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:
            replacement = _translate(run, err)
            if replacement is None:
                raise
            if isinstance(replacement, Revoked) and state.solo:
                _announce_terminated(state, run)
            raise replacement from err
        finally:
            _inside.task = False
            with state.lock:
                state.running.pop(run.task_id, None)
                state.terminate_requested.pop(run.task_id, None)

    run_guarded.__stoppable_guarded__ = True  # type: ignore[attr-defined]
    return run_guarded


def _guard_tasks(app: celery.Celery, state: _Worker) -> None:
    for task in list(app.tasks.values()):
        if task.name.startswith("celery.") or getattr(task.run, "__stoppable_guarded__", False):
            continue
        # An instance attribute: the worker's tracer calls ``task.run``.
        task.run = _guarded_run(task, state)


def _announce_terminated(state: _Worker, run: _Run) -> None:
    """For the solo pool: what Celery does for a terminated task, which it cannot do here.

    Celery's revoke commands terminate a running task through ``Request.terminate``,
    which marks it ``REVOKED``, acks its message and sends ``task_revoked``; the solo
    pool reads those commands only once the task has ended, when there is no running
    request left to terminate. The task's own thread does it instead, as it ends.
    """
    request = worker_state.requests.get(run.task_id)
    if request is None:
        return
    with state.lock:
        signal = state.terminate_requested.get(run.task_id)
    try:
        request.terminate(state.pool, signal=signal)
    except Exception:
        _log.exception("task %s[%s]: could not mark it revoked", run.task_name, run.task_id)


def _noop_terminate_job(pid: object, signal: object = None) -> None:
    # The threads and solo pools have no process to signal: Request.terminate, patched
    # below, stops the task through its guard instead.
    return None


_installed: list[_Worker] = []
_patch_lock = threading.Lock()
_patched = False


def _patch_celery() -> None:
    """Make ``Request.terminate`` stop the task's guard on the pools install() runs.

    Every way Celery terminates a running task (``revoke``, ``terminate``,
    ``revoke_by_stamped_headers``, with ``terminate=True``) ends in ``terminate(pool,
    signal)`` of each request it matched, which signals the pool process (prefork) and
    marks the task ``REVOKED``: on a threads or solo pool set up here, it stops the
    task's guard instead (a task accepted but not yet in its guard is stopped as it
    enters it), then goes on as Celery does.
    """
    global _patched
    with _patch_lock:
        if _patched:
            return
        original = Request.terminate

        @functools.wraps(original)
        def terminate(self: Request, pool: Any, signal: Any = None) -> Any:
            # A request not accepted yet is terminated again when it is (Celery keeps
            # it for then): noted only then, none is kept for a task that never runs.
            ours = [s for s in _installed if s.enabled and s.pool is pool and self.time_start]
            try:
                return original(self, pool, signal)
            finally:
                # Stopped once Celery has marked it REVOKED and acked it, as a signalled
                # process ends after that too: the task's end has nothing left to do.
                for state in ours:
                    state.terminate([self.id], signal)

        Request.terminate = terminate
        # Request.terminate ends with the pool result's terminate(); the threads
        # pool's has none.
        if not hasattr(thread_pool.ApplyResult, "terminate"):
            thread_pool.ApplyResult.terminate = lambda self, signal=None: None
        _patched = True


def _listen_for_revokes(app: celery.Celery, hostname: str, state: _Worker) -> None:
    """For the solo pool: hear revokes and shutdowns while a task holds the main thread.

    The solo pool runs each task in the worker's main thread, which reads control
    messages only between tasks. This thread reads the same broadcasts on a queue of
    its own (bound to the same fanout exchange) and stops the running task at once on a
    ``revoke``, ``terminate`` or ``revoke_by_stamped_headers`` that terminates it (the
    task then marks itself ``REVOKED`` as it ends, as Celery would have); Celery's own
    handling of the message follows when the task has ended. It also carries out a
    shutdown signal's stop, which the signal handler (in the main thread) only notes.
    """
    try:
        with app.connection_for_read() as connection:
            node = app.control.mailbox(connection).Node(
                f"{hostname}.stoppable-revokes", channel=connection.channel()
            )

            def on_message(body: dict[str, Any], message: Any) -> None:
                destination = body.get("destination")
                arguments = body.get("arguments") or {}
                method = body.get("method")
                if (
                    method not in _TERMINATING
                    or not (method == "terminate" or arguments.get("terminate"))
                    or (destination and hostname not in destination)
                    or (not destination and body.get("pattern"))  # not ours to match
                ):
                    return
                if method == "revoke_by_stamped_headers":
                    task_ids = state.running_stamped(arguments.get("headers"))
                else:
                    task_ids = list(maybe_list(arguments.get("task_id")) or [])
                state.terminate(task_ids, arguments.get("signal"))

            node.listen(callback=on_message)
            while not state.closing.is_set():
                if state.shutdown_signalled and state.stop_on_shutdown:
                    state.stop_for_shutdown()
                try:
                    connection.drain_events(timeout=SOLO_CHECK)
                except TimeoutError:
                    continue
    except Exception:
        _log.exception("revoke listener for the solo pool failed: revokes wait for the task")


def _make_step(state: _Worker) -> type[bootsteps.StartStopStep]:
    class StoppableLimits(bootsteps.StartStopStep):  # type: ignore[misc]
        """Enables the guard per task once the worker's pool is known."""

        requires = ("celery.worker.components:Pool",)

        def start(self, worker: Any) -> None:
            pool = worker.pool
            if not isinstance(pool, (thread_pool.TaskPool, solo_pool.TaskPool)):
                return  # prefork, eventlet, gevent: Celery's own limits apply
            state.time_limit = _limit(worker.time_limit)
            state.soft_time_limit = _limit(worker.soft_time_limit)
            _guard_tasks(worker.app, state)
            pool.terminate_job = _noop_terminate_job
            _patch_celery()
            state.pool = pool
            state.solo = isinstance(pool, solo_pool.TaskPool)
            state.enabled = True
            if isinstance(pool, solo_pool.TaskPool):
                threading.Thread(
                    target=_listen_for_revokes,
                    args=(worker.app, worker.hostname, state),
                    name="stoppable-revoke-listener",
                    daemon=True,
                ).start()
            _log.info(
                "stoppable guards tasks on the %s pool (time limits, revoke terminate%s)",
                type(pool).__module__.rsplit(".", 1)[-1],
                ", shutdown" if state.stop_on_shutdown else "",
            )

        def stop(self, worker: Any) -> None:
            # Runs before the pool's stop, which waits for the running tasks.
            state.closing.set()
            if state.enabled and state.stop_on_shutdown:
                _log.info("worker shutdown: stopping running acks_late tasks")
                state.stop_for_shutdown()

    return StoppableLimits


def install(app: celery.Celery, *, stop_on_shutdown: bool = False) -> None:
    """Enforce time limits and ``revoke(terminate=True)`` through a guard per task.

    Takes effect in worker processes running the ``threads`` or ``solo`` pool (see the
    module docstring); elsewhere (other pools, clients that only send tasks) it changes
    nothing. ``stop_on_shutdown=True`` also makes a warm shutdown stop running
    ``acks_late`` tasks and requeue their messages. Call it where the app is made,
    before the worker starts. Installing twice on one app does nothing more.
    """
    if not isinstance(app, celery.Celery):
        raise TypeError(f"app must be a celery.Celery, got {type(app).__name__}")
    if not isinstance(stop_on_shutdown, bool):
        raise TypeError(f"stop_on_shutdown must be a bool, got {type(stop_on_shutdown).__name__}")
    if getattr(app, "_stoppable_installed", False):
        return
    state = _Worker(stop_on_shutdown)
    _installed.append(state)
    app.steps["worker"].add(_make_step(state))

    def on_shutdown_signal(**kwargs: Any) -> None:
        # In a signal handler: a StopEvent's set() takes locks the interrupted code may
        # hold, so only note it (the solo pool's helper thread sets the stops).
        state.shutdown_signalled = True

    signals.worker_shutting_down.connect(on_shutdown_signal, weak=False)
    app._stoppable_installed = True

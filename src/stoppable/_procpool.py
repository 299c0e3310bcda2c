"""``futures.ProcessPoolExecutor``: worker processes whose running tasks can be stopped.

The standard ``concurrent.futures.ProcessPoolExecutor`` cannot stop a task once it
runs, hands ``max_workers + 1`` tasks to its workers' queue at once (so cancelling
"the queued ones" misses some), and breaks for good when a worker dies. This one:

- keeps the queue in the parent and hands a task to a worker only when that worker
  is free, so a cancelled or stopped task that has not started never starts;
- gives each task a ``StopEvent`` of its own, shared with the worker (see
  ``_shared``), inside a ``stoppable.scope`` there: every ``stoppable`` call in the
  task ends with ``Stopped`` at once when it is stopped, and ``current_stop()``
  returns it;
- ends a task that ignores its stop: ``SIGTERM``, then ``SIGKILL`` ``kill_after``
  seconds later, reaps its process and starts a new worker when there is work,
  so the pool stays usable;
- bounds every shutdown.

One manager thread in the parent owns the workers: it hands out tasks, reads the
results, notices a worker's death through its sentinel and sends the signals. It is
woken by a descriptor (a submit, a stop, a shutdown) and sleeps otherwise.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from multiprocessing.reduction import ForkingPickler
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

from . import _compat, _shared
from ._errors import Stopped
from ._limits import SHUTDOWN_TIMEOUT, validate_timeout
from ._procworker import _RemoteTraceback, _worker_main
from ._stop import StopEvent
from ._threadpool import _leave_block, _named
from ._wait import MAX_BLOCK

__all__ = ["KILL_AFTER", "ProcessPoolExecutor", "TaskKilled"]

T = TypeVar("T")
P = ParamSpec("P")

_log = logging.getLogger("stoppable")

KILL_AFTER: Final = 1.0
"""Default grace, in seconds, between ``SIGTERM`` and ``SIGKILL`` for a task being ended."""
TERMINATE_AFTER: Final = 5.0
"""Default time, in seconds, a task given ``stop_task`` has to end before it is ended."""
# After SIGKILL a process ends within microseconds unless stuck in the kernel.
_REAP_AFTER_KILL: Final = 10.0


class TaskKilled(Stopped):
    """A task ignored its stop and its worker process was ended (``SIGTERM``/``SIGKILL``).

    A ``Stopped`` with the stop's ``reason``; ``signal`` is the signal that ended the
    process. It is the future's exception of such a task.
    """

    def __init__(self, reason: object = None, signal: int | None = None) -> None:
        super().__init__(reason)
        self.signal = signal

    def __str__(self) -> str:
        how = "" if self.signal is None else f" (ended by {_signame(self.signal)})"
        return f"{super().__str__()}{how}"


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


# --- the parent's side ------------------------------------------------------------------


class _Work:
    __slots__ = (
        "args",
        "fn",
        "future",
        "kill_at",
        "kwargs",
        "marked",
        "stop",
        "task_id",
        "term_at",
        "why",
    )

    def __init__(
        self,
        task_id: int,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.task_id = task_id
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.stop = StopEvent()
        self.term_at: float | None = None  # when to send SIGTERM if still running
        self.kill_at: float | None = None  # when to send SIGKILL (once SIGTERM went)
        self.why: object = None  # the reason it is being ended
        self.marked = False  # its future is RUNNING (handed out at least once)


class _Worker:
    __slots__ = ("conn", "process", "signal", "work")

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Any) -> None:
        self.process = process
        self.conn: multiprocessing.connection.Connection = conn
        self.work: _Work | None = None
        self.signal: int | None = None  # the last signal sent to it


_live: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()


class ProcessPoolExecutor(concurrent.futures.Executor):
    """A process pool whose running tasks can be stopped, and whose shutdown is bounded.

    The contract of ``futures.ThreadPoolExecutor``, for worker processes:

    - Each task runs in a worker process with a ``StopEvent`` of its own, shared with
      the parent, inside a ``stoppable.scope(stop=...)``: every ``stoppable`` call in
      it ends with ``Stopped`` as soon as it is stopped, and
      ``stoppable.futures.current_stop()`` returns it. A task stopped before it
      starts never runs (its future's exception is ``Stopped``); one that ends by
      ``Stopped`` has it as its future's exception.
    - Tasks wait in the parent and go to a worker only when it is free, so a task
      cancelled (``Future.cancel``, ``shutdown(cancel_futures=True)``) never starts.
    - ``stop_task(future)`` stops one task; ``shutdown(stop=True, timeout=...)``
      stops every running task and cancels the queued ones.
    - A task that does not end within its grace after its stop (it ignores it, or
      is in code that nothing can wake) is ended: ``SIGTERM``, then ``SIGKILL``
      ``kill_after`` seconds later (for workers that catch ``SIGTERM``); its process
      is reaped, its future's exception is ``TaskKilled`` (a ``Stopped``), and a
      new worker takes its place. A worker that dies on its own fails only its
      task (``BrokenProcessPool``); the pool stays usable.
    - ``shutdown`` is bounded: by ``timeout``, else by ``shutdown_timeout``
      (``SHUTDOWN_TIMEOUT``, 60 s, by default), after which the tasks still running
      are ended as above and ``ShutdownDeadline`` names them.
    - ``parent``: the executor's ``stop`` is a child of it. Leaving a ``with`` block
      by ``Stopped``, ``KeyboardInterrupt`` or another non-``Exception`` stops the
      tasks; leaving it normally lets them finish (within ``shutdown_timeout``).
    - Workers ignore ``SIGINT`` (Ctrl-C reaches the whole process group: the parent
      decides), and a worker whose parent dies stops its running task.

    Arguments, results and exceptions cross by pickling, as with the standard
    executor; ``mp_context`` picks the start method (fork, spawn, forkserver).
    Unlike the standard one, this is not a subclass of
    ``concurrent.futures.ProcessPoolExecutor`` (it shares none of its machinery);
    it is a ``concurrent.futures.Executor``.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        parent: StopEvent | None = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        kill_after: float = KILL_AFTER,
    ) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif isinstance(max_workers, bool) or not isinstance(max_workers, int):
            raise TypeError(f"max_workers must be an int, got {type(max_workers).__name__}")
        if max_workers <= 0:
            raise ValueError(f"max_workers must be greater than 0, got {max_workers}")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if parent is not None and not isinstance(parent, StopEvent):
            raise TypeError(f"parent must be a StopEvent, got {type(parent).__name__}")
        if mp_context is not None and not isinstance(mp_context, BaseContext):
            raise TypeError(
                f"mp_context must be a multiprocessing context, got {type(mp_context).__name__}"
            )
        self._shutdown_timeout = validate_timeout(shutdown_timeout, "shutdown_timeout")
        self._kill_after = validate_timeout(kill_after, "kill_after")
        self._max_workers = max_workers
        self._ctx: BaseContext = mp_context or multiprocessing.get_context()
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self.stop: StopEvent = StopEvent() if parent is None else parent.child()
        """The executor's stop: setting it stops every task, running or queued."""
        self._lock = threading.Lock()
        self._pending: deque[_Work] = deque()
        self._works: dict[Future[Any], _Work] = {}
        self._workers: list[_Worker] = []
        self._next_id = 0
        self._shutting_down = False
        self._deadline: float | None = None  # of the shutdown
        self._broken: str | None = None
        self._killed: list[_Work] = []  # ended by the shutdown's deadline
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._manager: threading.Thread | None = None
        self.stop.add_callback(self._stop_running)

    # -- the public API -------------------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` to run in a worker process; returns its future."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        future: Future[T] = Future()
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if self._shutting_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._next_id += 1
            work = _Work(self._next_id, future, fn, args, kwargs)
            self._works[future] = work
            self._pending.append(work)
            if self._manager is None:
                self._manager = threading.Thread(
                    target=self._manage, name="stoppable-procpool-manager", daemon=True
                )
                self._manager.start()
                _live.add(self)
        future.add_done_callback(self._forget)
        self._wake()
        return future

    def stop_task(
        self,
        future: Future[Any],
        reason: object = "task stopped",
        *,
        terminate_after: float | None = TERMINATE_AFTER,
    ) -> bool:
        """Stop one task: cancel it if queued, else set its stop.

        A running task that has not ended ``terminate_after`` seconds later is ended
        (``SIGTERM``, then ``SIGKILL`` after ``kill_after``; its future's exception
        is ``TaskKilled``); ``None`` leaves it running. Returns ``False`` if the task
        had already finished, ``True`` otherwise; does not wait.
        """
        grace = (
            None
            if terminate_after is None
            else validate_timeout(terminate_after, "terminate_after")
        )
        with self._lock:
            work = self._works.get(future)
            if work is None:
                if future.done():
                    return False
                raise ValueError("future is not a task of this executor")
            queued = work in self._pending
            if queued:
                self._pending.remove(work)
            elif grace is not None:
                term_at = time.monotonic() + grace
                if work.term_at is None or term_at < work.term_at:
                    work.term_at, work.why = term_at, reason
        work.stop.set(reason)
        if queued:
            future.cancel()  # outside the lock: it runs the done-callbacks
        else:
            self._wake()
        return True

    def shutdown(
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        stop: bool = False,
        timeout: float | None = None,
        reason: object = "executor shutdown",
    ) -> None:
        """Shut down within ``timeout`` seconds (``shutdown_timeout`` if not given).

        - ``stop=True``: set the executor's ``stop`` (with ``reason``), so every
          running task ends at its next ``stoppable`` call, and cancel the queued
          tasks (``cancel_futures`` is implied): no task starts after this call.
        - Otherwise the running and queued tasks run on (unless ``cancel_futures``),
          until the timeout.
        - When the timeout runs out, the tasks still running are ended (``SIGTERM``,
          then ``SIGKILL`` after ``kill_after``) and reaped, the queued ones are
          cancelled, and with ``wait=True`` ``ShutdownDeadline`` names them.
        - ``wait=False`` returns at once; the same happens in the background.

        With ``wait=True`` this returns (or raises) once every worker process has
        been reaped. No task can be submitted afterwards; calling it again is harmless.
        """
        seconds = self._shutdown_timeout if timeout is None else validate_timeout(timeout)
        with self._lock:
            self._shutting_down = True
            deadline = time.monotonic() + seconds
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
            cancelled = list(self._pending) if (cancel_futures or stop) else []
            if cancelled:
                self._pending.clear()
            manager = self._manager
        for work in cancelled:
            work.future.cancel()
        # After the queue is emptied under the lock: a worker freed by the stop could
        # otherwise be handed a queued task first, which would end as Stopped, not
        # cancelled.
        if stop:
            self.stop.set(reason)
        self._wake()
        if manager is None:
            self._close()
            return
        if not wait:
            return
        # The manager ends the tasks at the deadline; this bounds the wait for it.
        bound = time.monotonic() + seconds + 2 * self._kill_after + _REAP_AFTER_KILL
        while manager.is_alive() and (left := bound - time.monotonic()) > 0:
            manager.join(min(left, MAX_BLOCK))  # a day at a time: join takes no more
        with self._lock:
            killed, self._killed = self._killed, []
        if killed:
            error = _futures.ShutdownDeadline(
                f"executor shutdown timed out after {seconds:g} s: {len(killed)} task(s) "
                f"did not finish and were ended: {_named(work.fn for work in killed)}",
                timeout=seconds,
            )
            error.unfinished = [work.future for work in killed]
            raise error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (see the class docstring); never swallows the block's exception."""
        _leave_block(lambda stop: self.shutdown(wait=True, stop=stop), exc)

    def _workers_alive(self) -> int:
        """How many worker processes are running (for tests)."""
        with self._lock:
            return sum(worker.process.is_alive() for worker in self._workers)

    # -- the manager thread ---------------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:  # not a descriptor closed (and its number reused) meanwhile
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._works.pop(future, None)

    def _stop_running(self) -> None:
        # The executor's stop was set: stop each dispatched task. Queued ones are
        # stopped as they are handed out (or cancelled by the shutdown).
        reason = self.stop.reason
        with self._lock:
            running = [worker.work for worker in self._workers if worker.work is not None]
        with _shared.wakes_batched():
            for work in running:
                work.stop.set(reason)

    def _manage(self) -> None:
        try:
            while self._step():
                pass
        except BaseException:  # pragma: no cover - a defect: fail what is left, loudly
            _log.exception("the process pool's manager failed")
            self._fail_all("the process pool's manager failed")
            raise
        finally:
            self._close()
            _live.discard(self)

    def _step(self) -> bool:
        """One round of the manager; False once shut down and every worker is reaped."""
        now = time.monotonic()
        self._dispatch()
        with self._lock:
            workers = list(self._workers)
            done = self._shutting_down and not self._pending
            expired = self._deadline is not None and now >= self._deadline
        if expired:
            self._end_at_deadline(workers, now)
        if done:
            for worker in workers:
                if worker.work is None and worker.signal is None:
                    self._retire(worker)
            if not workers:
                return False
        poller = select.poll()
        poller.register(self._wake_fd, select.POLLIN)
        by_fd: dict[int, tuple[_Worker, bool]] = {}
        for worker in workers:
            by_fd[worker.conn.fileno()] = (worker, True)
            poller.register(worker.conn.fileno(), select.POLLIN)
            by_fd[worker.process.sentinel] = (worker, False)
            poller.register(worker.process.sentinel, select.POLLIN)
        wait_ms = self._next_timer(workers, now)
        for fd, _ in poller.poll(wait_ms):
            if fd == self._wake_fd:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
                continue
            worker, is_conn = by_fd[fd]
            if is_conn:
                self._receive(worker)
            elif not worker.process.is_alive():
                self._buried(worker)
        self._signal_due(time.monotonic())
        return True

    def _next_timer(self, workers: list[_Worker], now: float) -> int:
        times = [self._deadline] if self._deadline is not None else []
        for worker in workers:
            work = worker.work
            if work is not None:
                times.extend(t for t in (work.term_at, work.kill_at) if t is not None)
        if not times:
            return -1
        # At most a day: poll() takes an int of ms; the manager loops while time is left.
        return max(0, int(min(min(times) - now, MAX_BLOCK) * 1000) + 1)

    def _dispatch(self) -> None:
        """Hand queued tasks to free workers, starting workers up to ``max_workers``."""
        while True:
            with self._lock:
                if not self._pending or self._broken is not None:
                    return
                worker = next(
                    (w for w in self._workers if w.work is None and w.signal is None), None
                )
                if worker is None and len(self._workers) >= self._max_workers:
                    return
                work = self._pending.popleft()
            if not work.marked:
                if not work.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued: it never starts
                work.marked = True
            if self.stop._flag:
                work.stop.set(self.stop.reason)
            if work.stop._flag:
                work.future.set_exception(Stopped(work.stop.reason))
                continue
            try:
                # Lent: the parent keeps the stop until the result is in.
                data = ForkingPickler.dumps(
                    (work.task_id, work.fn, work.args, work.kwargs, _shared.Lent(work.stop))
                )
            except BaseException as exc:
                work.future.set_exception(exc)
                continue
            if worker is None:
                try:
                    worker = self._spawn()
                except BaseException as exc:
                    work.future.set_exception(exc)
                    continue
            with self._lock:
                worker.work = work
            try:
                worker.conn.send_bytes(data)
            except OSError:  # it died before taking it: the task never started
                # Its sentinel tells the manager; the next round buries it.
                with self._lock:
                    worker.work = None
                    worker.signal = 0
                    self._pending.appendleft(work)
                return

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        forked = self._ctx.get_start_method() == "fork"
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=_worker_main,
            args=(
                child_conn,
                parent_conn if forked else None,
                self._initializer,
                self._initargs,
                max(self._kill_after, 1.0),
            ),
            name=f"stoppable-procpool-worker-{len(self._workers) + 1}",
            daemon=True,
        )
        try:
            process.start()
        finally:
            child_conn.close()
        worker = _Worker(process, parent_conn)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _receive(self, worker: _Worker) -> None:
        try:
            message = ForkingPickler.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            return  # it ended: its sentinel says so
        except BaseException as exc:  # a result that does not unpickle here
            message = (None, False, exc, None)
        if message[0] == "init":
            self._broken = f"a worker's initializer failed:\n{message[1]}"
            self._fail_all(self._broken)
            return
        _, ok, value, tb = message
        with self._lock:
            work, worker.work = worker.work, None
        if work is None:
            return
        if ok:
            work.future.set_result(value)
        else:
            if tb is not None:
                value.__cause__ = _RemoteTraceback(tb)
            work.future.set_exception(value)

    def _buried(self, worker: _Worker) -> None:
        """A worker ended: reap it, settle its task; a new one starts when needed."""
        if worker.work is not None:
            with contextlib.suppress(EOFError, OSError):
                if worker.conn.poll():  # a result it sent before it ended
                    self._receive(worker)
        worker.process.join(_REAP_AFTER_KILL)
        worker.conn.close()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            work, worker.work = worker.work, None
        if work is None or work.future.done():
            return
        code = worker.process.exitcode
        if worker.signal is not None or work.why is not None:
            sig = -code if code is not None and code < 0 else worker.signal
            reason = work.stop.reason if work.stop.is_set() else work.why
            work.future.set_exception(TaskKilled(reason, sig))
        else:
            work.future.set_exception(
                BrokenProcessPool(
                    f"the worker process running {_futures._describe(work.fn)} ended unexpectedly "
                    f"(exit code {code}); the pool replaces it"
                )
            )
        worker.process.close()

    def _retire(self, worker: _Worker) -> None:
        """Tell an idle worker to exit (shutdown): an empty message."""
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(b"")
        worker.signal = 0  # retiring: no new task for it

    def _end_at_deadline(self, workers: list[_Worker], now: float) -> None:
        """The shutdown's time is up: cancel the queued tasks, end the running ones."""
        with self._lock:
            pending, self._pending = list(self._pending), deque()
            for worker in workers:
                work = worker.work
                if work is not None:
                    if work not in self._killed:
                        self._killed.append(work)
                    if work.term_at is None or work.term_at > now:
                        work.term_at, work.why = now, "executor shutdown timed out"
            # Checked again when the last ended task's SIGKILL is due.
            self._deadline = now + self._kill_after + 0.01
        for work in pending:
            work.future.cancel()
        for worker in workers:
            if worker.work is None and worker.process.exitcode is None:
                # An idle worker that did not exit when told to: SIGTERM, then SIGKILL.
                self._send(worker, signal.SIGKILL if worker.signal else signal.SIGTERM)

    def _signal_due(self, now: float) -> None:
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            work = worker.work
            if work is None:
                continue
            if work.term_at is not None and now >= work.term_at and work.kill_at is None:
                work.stop.set(work.why)
                work.kill_at = now + self._kill_after
                self._send(worker, signal.SIGTERM if self._kill_after > 0 else signal.SIGKILL)
            elif work.kill_at is not None and now >= work.kill_at:
                work.kill_at = now + _REAP_AFTER_KILL
                self._send(worker, signal.SIGKILL)

    def _send(self, worker: _Worker, sig: int) -> None:
        worker.signal = sig
        with contextlib.suppress(ProcessLookupError, ValueError):
            pid = worker.process.pid
            if worker.process.exitcode is None and pid is not None:
                os.kill(pid, sig)  # not reaped yet: the pid is still its own

    def _fail_all(self, message: str) -> None:
        with self._lock:
            pending, self._pending = list(self._pending), deque()
            running = [w.work for w in self._workers if w.work is not None]
        for work in pending + running:
            future = work.future
            if not future.done() and (future.running() or future.set_running_or_notify_cancel()):
                future.set_exception(BrokenProcessPool(message))

    def _close(self) -> None:
        with self._lock:
            fd, self._wake_fd = self._wake_fd, -1
        if fd >= 0:
            os.close(fd)


# A forked worker inherits the parent's executors: not its to shut down at its exit.
os.register_at_fork(after_in_child=_live.clear)


def _at_exit() -> None:
    # Before Python joins its threads at exit: shut every pool down, bounded.
    for executor in list(_live):
        with contextlib.suppress(BaseException):
            executor.shutdown(wait=True)


# Before Python joins the non-daemon threads where it can (as concurrent.futures);
# after, with atexit, is still in time for ours.
_compat.at_thread_shutdown(_at_exit)

# Last: ``futures`` re-exports this module's names, and a spawned worker imports this
# module first; what is used from ``futures`` is read at call time.
from . import futures as _futures  # noqa: E402

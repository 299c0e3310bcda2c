"""The worker process of ``futures.ProcessPoolExecutor``: take a task, run it, reply.

A worker reads one task at a time from its pipe (the parent sends one only when the
worker is free), runs it inside a ``stoppable.scope`` with the task's own stop (lent
by the parent, see ``_shared.Lent``), and sends back the result or the exception
with its traceback as text. An empty message ends it. It ignores ``SIGINT`` (the
parent decides what Ctrl-C does) and, should the parent die, stops the running task
and ends after a grace: it has nobody left to report to.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from typing import Any

from . import _shared
from ._errors import Stopped
from ._limits import scope
from ._stop import StopEvent

__all__: list[str] = []


class _RemoteTraceback(Exception):
    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _worker_main(
    conn: multiprocessing.connection.Connection,
    parent_end: multiprocessing.connection.Connection | None,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    grace: float,
) -> None:
    # A forked worker holds a copy of the parent's end of its pipe: closed, so that
    # the parent's death reads as the end of the pipe.
    if parent_end is not None:
        parent_end.close()
        # Nor does it need the parent's shared events (other tasks' stops), which a
        # kill would otherwise leave held.
        _shared.forget_inherited((initializer, initargs))
    # Ctrl-C reaches the whole process group: the parent decides (its with-block
    # exit stops the tasks), so a worker does not die of it in the middle of a task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    current: list[StopEvent] = []
    idle = threading.Event()
    idle.set()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_stop_when_parent_ends,
            args=(parent.sentinel, current, idle, grace),
            daemon=True,
        ).start()
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            conn.send_bytes(ForkingPickler.dumps(("init", traceback.format_exc())))
            return
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent has gone
        if not data:
            return  # shutdown
        try:
            task_id, fn, args, kwargs, stop = ForkingPickler.loads(data)
        except BaseException as exc:  # a task that does not unpickle here
            _reply(conn, -1, False, exc)  # the parent knows which one it sent
            continue
        current[:] = [stop]
        idle.clear()
        ok, value = _run(stop, fn, args, kwargs)
        current.clear()
        idle.set()
        _reply(conn, task_id, ok, value)
        del data, fn, args, kwargs, stop, value


def _run(
    stop: StopEvent, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    if stop._flag:  # stopped before it started: it does not run
        return False, Stopped(stop.reason)
    token = _futures._task_stop.set(stop)
    try:
        with scope(stop=stop):
            return True, fn(*args, **kwargs)
    except BaseException as exc:
        return False, exc
    finally:
        _futures._task_stop.reset(token)


def _reply(conn: multiprocessing.connection.Connection, task_id: int, ok: bool, value: Any) -> None:
    if ok:
        message: tuple[Any, ...] = (task_id, True, value, None)
    else:
        tb = "".join(traceback.format_exception(type(value), value, value.__traceback__))
        value.__traceback__ = None
        message = (task_id, False, value, tb)
    try:
        data = ForkingPickler.dumps(message)
    except Exception as err:  # the result or exception does not pickle
        what = "result" if ok else f"exception {value!r}"
        error = RuntimeError(f"the task's {what} could not be sent back: {err!r}")
        data = ForkingPickler.dumps((task_id, False, error, message[3]))
    conn.send_bytes(data)


def _stop_when_parent_ends(
    sentinel: int, current: list[StopEvent], idle: threading.Event, grace: float
) -> None:
    # The parent's end closes its sentinel: stop the running task, give it its grace,
    # and end the worker, which has nobody left to report to.
    multiprocessing.connection.wait([sentinel])  # noqa: STP100 - a daemon thread, for life
    for stop in list(current):
        stop.set("parent process ended")
    idle.wait(grace)
    os._exit(0 if idle.is_set() else 1)


# Last: ``futures`` imports the executor, which imports this module; a spawned
# worker imports this module first. ``_task_stop`` is read at call time.
from . import futures as _futures  # noqa: E402

"""The internals of processes and their pools: who forks, reaping, exit, pool results.

``multiprocessing.pool``'s ``ApplyResult`` event and ``IMapIterator``, the fork
hook's ``popen_fork``/``subprocess`` frames, ``threading``'s hook before the threads
are joined at exit, and ``Popen``'s ``waitpid`` lock (table in ``_compat``).
"""

from __future__ import annotations

import inspect
import multiprocessing.pool
import multiprocessing.process
import queue
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from . import _waits
from ._probe import _check


def _probe_pool_result() -> None:
    pool: Any = _FakePool()
    result: multiprocessing.pool.ApplyResult[int] = multiprocessing.pool.ApplyResult(
        pool, None, None
    )
    event = result._event  # type: ignore[attr-defined]
    assert isinstance(event, threading.Event)
    assert not result.ready()
    event.set()
    assert result.ready()


class _FakePool:
    """The least an ``ApplyResult`` needs of its pool, for the probe."""

    def __init__(self) -> None:
        self._cache: dict[int, object] = {}


POOL_RESULT_EVENT: bool = _waits.EVENT_COND and _check(_probe_pool_result)
"""A ``multiprocessing.pool`` result is ready when its ``threading.Event`` is set."""


def pool_result_event(result: multiprocessing.pool.ApplyResult[Any]) -> threading.Event:
    """The event set when ``result`` is ready (only where ``POOL_RESULT_EVENT``)."""
    event: threading.Event = result._event  # type: ignore[attr-defined]
    return event


# --- subprocess.Popen ----------------------------------------------------------------


def popen_waitpid_lock(popen: subprocess.Popen[Any]) -> Any:
    """The lock ``Popen`` holds around ``waitpid``, or ``None`` where it has none.

    Holding it keeps a concurrent ``Popen.wait``/``poll`` from reaping the child
    while a pidfd is opened for it. Without it (``None``) the pidfd is opened
    unguarded, and a child reaped meanwhile is seen by ``Popen.poll()``.
    """
    lock = getattr(popen, "_waitpid_lock", None)
    if lock is None or not callable(getattr(lock, "acquire", None)):
        return None
    return lock


# --- the fork hook: who is forking (_shared) -------------------------------------------


def _launch_code() -> types.CodeType | None:
    """The code of ``multiprocessing.popen_fork.Popen._launch(process_obj)``, if loaded."""
    popen_fork = sys.modules.get("multiprocessing.popen_fork")
    launch = getattr(getattr(popen_fork, "Popen", None), "_launch", None)
    code = getattr(launch, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _probe_fork_launch() -> None:
    import multiprocessing.popen_fork  # noqa: F401 - what _launch_code reads

    code = _launch_code()
    assert code is not None
    assert "process_obj" in code.co_varnames[: code.co_argcount]
    assert "fork" in code.co_names  # it is where os.fork() is called


FORK_LAUNCH: bool = _check(_probe_fork_launch)
"""``multiprocessing`` forks a ``Process`` in ``popen_fork.Popen._launch(process_obj)``."""

_START_CODE = multiprocessing.process.BaseProcess.start.__code__
_START_DEPTH = 8  # start() -> _Popen -> Popen() -> __init__ -> _launch: a few frames


def forked_process(frame: types.FrameType) -> Any:
    """The ``multiprocessing`` process being forked by ``frame`` (``os.fork``'s caller).

    ``None`` if the fork is not a ``Process`` being started. Read from
    ``Popen._launch``'s argument where ``FORK_LAUNCH``; otherwise from the
    ``Process.start()`` below which the fork happens (public, a few frames up).
    """
    if FORK_LAUNCH:
        code = _launch_code()
        return frame.f_locals.get("process_obj") if frame.f_code is code else None
    caller: types.FrameType | None = frame
    for _ in range(_START_DEPTH):
        if caller is None:
            return None
        if caller.f_code is _START_CODE:
            return caller.f_locals.get("self")
        caller = caller.f_back
    return None


def _probe_execute_child() -> None:
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    code = execute_child.__code__
    assert code.co_name == "_execute_child"
    assert any("fork_exec" in name for name in code.co_names)  # where the fork happens


SUBPROCESS_EXECUTE_CHILD: bool = _check(_probe_execute_child)
"""``subprocess`` forks (for a ``preexec_fn``) in ``Popen._execute_child``."""


def forked_to_exec(frame: types.FrameType) -> bool:
    """Whether the fork made by ``frame`` is ``subprocess``'s, whose child execs at once.

    By the name ``_execute_child`` where ``SUBPROCESS_EXECUTE_CHILD``; otherwise by
    the module of the forking code (``subprocess`` forks nowhere else).
    """
    if SUBPROCESS_EXECUTE_CHILD:
        return frame.f_code.co_name == "_execute_child"
    return frame.f_globals.get("__name__") == "subprocess"


# --- threading's hook before the threads are joined at exit (_procpool) ----------------


def _probe_thread_shutdown_hook() -> None:
    register = threading._register_atexit  # type: ignore[attr-defined]
    assert callable(register)
    inspect.signature(register).bind(print)  # register(func, *args, **kwargs)


THREAD_SHUTDOWN_HOOK: bool = _check(_probe_thread_shutdown_hook)
"""``threading._register_atexit`` exists (what ``concurrent.futures`` uses)."""


def at_thread_shutdown(func: Callable[[], object]) -> None:
    """Call ``func`` at exit, before Python joins the non-daemon threads if it can.

    ``threading._register_atexit`` where ``THREAD_SHUTDOWN_HOOK``; otherwise
    ``atexit``, which runs after the join: still in time for work done by daemon
    threads (a non-daemon thread waiting on that work still gets it).
    """
    if THREAD_SHUTDOWN_HOOK:
        threading._register_atexit(func)  # type: ignore[attr-defined]
        return
    import atexit

    atexit.register(func)


# --- multiprocessing.pool's IMapIterator (_poolimap) -----------------------------------


class _FakeImapPool:
    """The least ``Pool.imap`` and an ``IMapIterator`` need of a pool, for the probes."""

    def __init__(self) -> None:
        self._cache: dict[int, object] = {}
        self._taskqueue: queue.SimpleQueue[object] = queue.SimpleQueue()

    def _check_running(self) -> None:
        pass

    def _guarded_task_generation(self, *args: object) -> None:
        pass


def imap_chunks(results: Any) -> multiprocessing.pool.IMapIterator[Any] | None:
    """The ``IMapIterator`` of chunks behind ``Pool.imap(..., chunksize > 1)``'s generator.

    That generator (``item for chunk in result for item in chunk``) holds it as its
    argument. ``None`` where it is not found (the caller then chunks by itself).
    """
    if not IMAP_CHUNKS:
        return None
    frame = getattr(results, "gi_frame", None)
    chunks = None if frame is None else frame.f_locals.get(".0")
    return chunks if isinstance(chunks, multiprocessing.pool.IMapIterator) else None


def _probe_imap_chunks() -> None:
    for how in ("imap", "imap_unordered"):
        pool = _FakeImapPool()
        results = getattr(multiprocessing.pool.Pool, how)(pool, abs, [], 2)
        frame = results.gi_frame
        chunks = frame.f_locals.get(".0")
        assert isinstance(chunks, multiprocessing.pool.IMapIterator)
        assert chunks in pool._cache.values()  # the one the pool's results reach
        results.close()


IMAP_CHUNKS: bool = _check(_probe_imap_chunks)
"""``Pool.imap``/``imap_unordered`` with ``chunksize > 1`` flatten an ``IMapIterator``."""


def imap_condition(results: multiprocessing.pool.IMapIterator[Any]) -> threading.Condition:
    """The condition the pool's result thread notifies for ``results`` (``IMAP_INTERNALS``)."""
    cond: threading.Condition = results._cond  # type: ignore[attr-defined]
    return cond


def imap_ready(results: multiprocessing.pool.IMapIterator[Any]) -> bool:
    """Whether ``results.next(0)`` has an item or the end to give, under its condition."""
    it: Any = results
    return bool(it._items) or it._index == it._length


def _probe_imap_iterator() -> None:
    pool: Any = _FakeImapPool()
    results: Any = multiprocessing.pool.IMapIterator(pool)
    cond = imap_condition(results)
    assert isinstance(cond, threading.Condition)
    waiter = threading.Lock()
    assert waiter.acquire(False)
    with cond:
        assert not imap_ready(results)
        cond._waiters.append(waiter)  # type: ignore[attr-defined]
    results._set(0, (True, 5))  # as the pool's result thread hands an item over
    assert not waiter.locked()  # ... notifying the condition
    with cond:
        assert imap_ready(results)
    assert results.next(0) == 5
    with cond:
        assert not imap_ready(results)
    results._set_length(1)
    with cond:
        assert imap_ready(results)  # the end is there to give
    try:
        results.next(0)
    except StopIteration:
        return
    raise AssertionError("the iterator did not end")


IMAP_INTERNALS: bool = _waits.CONDITION_PROTOCOL and _check(_probe_imap_iterator)
"""An ``IMapIterator``'s items and end are read under ``_cond``, which a new item notifies."""

"""futures.ProcessPoolExecutor: tasks in worker processes that stop, are ended, and never leak."""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from stoppable import DeadlineExceeded, StopEvent, Stopped, _arena, _shared, futures

from . import proc_support as ps
from .support import BAD_TIMEOUTS, LONG, WAKE_BOUND, open_fds, wait_until

pytestmark = [
    ps.FORK_WARNING,
    pytest.mark.skipif(not _shared.SUPPORTED, reason="cross-process stops need Linux"),
]


@pytest.fixture(scope="module", params=ps.METHODS)
def pool(request: pytest.FixtureRequest) -> Iterator[futures.ProcessPoolExecutor]:
    """One pool per start method, shared by the tests that leave it usable."""
    before = ps.children()
    executor = futures.ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context(request.param), kill_after=0.2
    )
    yield executor
    executor.shutdown(stop=True, timeout=LONG)
    assert executor._workers_alive() == 0
    wait_until(lambda: ps.children() == before, timeout=10, what="workers to be reaped")


@pytest.fixture
def own_pool() -> Iterator[Any]:
    """Pools a test shuts down itself (fork: quick to start); checked for leftovers."""
    StopEvent().__reduce__()  # this process's arena and watcher: made once, kept
    before_children, before_fds, before_slots = ps.children(), open_fds(), live_slots()
    made: list[futures.ProcessPoolExecutor] = []

    def make(workers: int = 2, **kwargs: Any) -> futures.ProcessPoolExecutor:
        kwargs.setdefault("mp_context", multiprocessing.get_context("fork"))
        kwargs.setdefault("kill_after", 0.2)
        executor = futures.ProcessPoolExecutor(workers, **kwargs)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.shutdown(stop=True, timeout=LONG)
    wait_until(lambda: ps.children() == before_children, timeout=10, what="children reaped")
    wait_until(lambda: open_fds() <= before_fds, timeout=5, what="descriptors closed")
    # Every task's stop gave its slot back, killed workers' holds included.
    made.clear()
    gc.collect()
    wait_until(lambda: live_slots() <= before_slots, timeout=5, what="slots given back")


def live_slots() -> int:
    """Slots taken in this process's arenas."""
    state = _shared._state()
    if state is None:
        return 0
    count = 0
    for arena in state.arenas.values():
        for slot in range(_arena._SLOTS):
            count += arena.slot.unpack_from(arena.mm, arena._at(slot))[0] != _arena._FREE
    return count


def marker(tmp_path: Path, name: str) -> str:
    return str(tmp_path / name)


def test_results_exceptions_and_the_tasks_own_stop(pool: futures.ProcessPoolExecutor) -> None:
    assert list(pool.map(ps.square, range(6))) == [0, 1, 4, 9, 16, 25]
    failing = pool.submit(ps.fail, "boom")
    with pytest.raises(ValueError, match="boom") as info:
        futures.result(failing, timeout=LONG)
    assert "in fail" in str(info.value.__cause__)  # the worker's traceback comes along
    pid, has_stop = futures.result(pool.submit(ps.pid_and_stop), timeout=LONG)
    assert pid != os.getpid()
    assert has_stop
    assert futures.current_stop() is None


def test_stop_task_stops_a_running_task_at_once(
    pool: futures.ProcessPoolExecutor, tmp_path: Path
) -> None:
    started = marker(tmp_path, "started")
    future = pool.submit(ps.blocked, started)
    ps.wait_for_file(started)
    time.sleep(0.05)  # into its blocking call (a stop before it is level-triggered anyway)
    set_at = time.monotonic()
    assert pool.stop_task(future, "enough") is True
    with pytest.raises(Stopped) as info:
        futures.result(future, timeout=LONG)
    assert not isinstance(info.value, futures.TaskKilled)
    assert info.value.reason == "enough"
    assert time.monotonic() - set_at < WAKE_BOUND
    assert pool.stop_task(future) is False  # finished already
    assert futures.result(pool.submit(ps.square, 3), timeout=LONG) == 9


def test_a_task_that_ignores_its_stop_is_killed_and_its_worker_replaced(
    pool: futures.ProcessPoolExecutor, tmp_path: Path
) -> None:
    started = marker(tmp_path, "started")
    future = pool.submit(ps.stubborn, started)
    pid = ps.wait_for_file(started)
    pool.stop_task(future, "go away", terminate_after=0.1)
    with pytest.raises(futures.TaskKilled) as info:
        futures.result(future, timeout=LONG)
    assert info.value.reason == "go away"
    assert info.value.signal == 9  # it ignored SIGTERM: SIGKILL after kill_after
    assert not ps.alive(pid)
    assert pid not in ps.children()  # reaped
    pids = {futures.result(pool.submit(ps.pid_and_stop), timeout=LONG)[0] for _ in range(4)}
    assert pid not in pids  # served by the replacement


def test_a_worker_that_dies_fails_only_its_task(pool: futures.ProcessPoolExecutor) -> None:
    with pytest.raises(BrokenProcessPool, match="ended unexpectedly"):
        futures.result(pool.submit(ps.die, 3), timeout=LONG)
    assert futures.result(pool.submit(ps.square, 5), timeout=LONG) == 25


def test_stop_task_cancels_a_queued_task(own_pool: Any, tmp_path: Path) -> None:
    executor = own_pool(1)
    running = executor.submit(ps.blocked, marker(tmp_path, "running"))
    queued = executor.submit(ps.blocked, marker(tmp_path, "queued"))
    ps.wait_for_file(marker(tmp_path, "running"))
    assert executor.stop_task(queued) is True
    assert queued.cancelled()
    executor.stop_task(running)
    with pytest.raises(Stopped):
        futures.result(running, timeout=LONG)
    assert not (tmp_path / "queued").exists()
    with pytest.raises(ValueError, match="not a task of this executor"):
        executor.stop_task(futures.ThreadPoolExecutor(1).submit(time.sleep, 0.01).__class__())


def test_shutdown_stop_stops_running_tasks_and_none_queued_starts(
    own_pool: Any, tmp_path: Path
) -> None:
    executor = own_pool(2)
    running = [executor.submit(ps.blocked, marker(tmp_path, f"run{i}")) for i in range(2)]
    queued = [executor.submit(ps.blocked, marker(tmp_path, f"queued{i}")) for i in range(5)]
    for i in range(2):
        ps.wait_for_file(marker(tmp_path, f"run{i}"))
    started = time.monotonic()
    executor.shutdown(stop=True, timeout=LONG, reason="deploy")
    assert time.monotonic() - started < WAKE_BOUND
    for future in running:
        with pytest.raises(Stopped, match="deploy"):
            future.result(0)
    assert all(future.cancelled() for future in queued)
    assert not list(tmp_path.glob("queued*"))  # none of them started
    assert executor._workers_alive() == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(ps.square, 1)


def test_shutdown_deadline_ends_and_names_the_stubborn_tasks(own_pool: Any, tmp_path: Path) -> None:
    executor = own_pool(2)
    stubborn = executor.submit(ps.stubborn, marker(tmp_path, "stubborn"))
    polite = executor.submit(ps.blocked, marker(tmp_path, "polite"))
    queued = executor.submit(ps.square, 2)
    pid = ps.wait_for_file(marker(tmp_path, "stubborn"))
    ps.wait_for_file(marker(tmp_path, "polite"))
    started = time.monotonic()
    with pytest.raises(futures.ShutdownDeadline) as info:
        executor.shutdown(stop=True, timeout=0.3)
    took = time.monotonic() - started
    assert isinstance(info.value, DeadlineExceeded)
    assert info.value.unfinished == [stubborn]
    assert "proc_support.stubborn" in str(info.value)
    assert took < 0.3 + 0.2 + WAKE_BOUND  # timeout + kill_after, and the reap
    with pytest.raises(futures.TaskKilled):
        stubborn.result(0)
    with pytest.raises(Stopped):
        polite.result(0)
    with pytest.raises(CancelledError):
        queued.result(0)
    assert not ps.alive(pid)


def test_leaving_the_block_by_an_interrupt_stops_the_tasks(own_pool: Any, tmp_path: Path) -> None:
    executor = own_pool(1)
    with pytest.raises(KeyboardInterrupt), executor:
        future = executor.submit(ps.blocked, marker(tmp_path, "m"))
        ps.wait_for_file(marker(tmp_path, "m"))
        raise KeyboardInterrupt
    with pytest.raises(Stopped):
        future.result(0)


def test_a_parent_stop_stops_every_task(own_pool: Any, tmp_path: Path) -> None:
    parent = StopEvent()
    executor = own_pool(1, parent=parent)
    running = executor.submit(ps.blocked, marker(tmp_path, "m"))
    ps.wait_for_file(marker(tmp_path, "m"))
    parent.set("parent")
    with pytest.raises(Stopped, match="parent"):
        futures.result(running, timeout=LONG)
    later = executor.submit(ps.square, 2)
    with pytest.raises(Stopped, match="parent"):
        futures.result(later, timeout=LONG)


def test_a_failing_initializer_breaks_the_pool(own_pool: Any) -> None:
    executor = own_pool(1, initializer=ps.bad_initializer)
    with pytest.raises(BrokenProcessPool, match="initializer broke"):
        futures.result(executor.submit(ps.square, 2), timeout=LONG)
    with pytest.raises(BrokenProcessPool):
        executor.submit(ps.square, 2)


def test_shutdown_without_stop_lets_tasks_finish(own_pool: Any) -> None:
    executor = own_pool(2)
    fs = [executor.submit(ps.square, i) for i in range(8)]
    executor.shutdown(timeout=LONG)
    assert [f.result(0) for f in fs] == [i * i for i in range(8)]


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
def test_bad_arguments_are_refused(timeout: Any, error: type) -> None:
    if timeout is not None:
        with pytest.raises(error, match="shutdown_timeout"):
            futures.ProcessPoolExecutor(1, shutdown_timeout=timeout)
    with pytest.raises(error, match="kill_after"):
        futures.ProcessPoolExecutor(1, kill_after=timeout)


def test_bad_pool_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        futures.ProcessPoolExecutor(0)
    with pytest.raises(TypeError, match="max_workers"):
        futures.ProcessPoolExecutor("2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parent"):
        futures.ProcessPoolExecutor(1, parent=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mp_context"):
        futures.ProcessPoolExecutor(1, mp_context="fork")  # type: ignore[arg-type]
    executor = futures.ProcessPoolExecutor(1)
    with pytest.raises(TypeError, match="fn"):
        executor.submit(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        executor.shutdown(timeout=-1)
    executor.shutdown()


# --- multiprocessing.Pool iteration ------------------------------------------------------


def test_pool_imap_is_bounded_and_stoppable() -> None:
    before = ps.children()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as mp_pool:
        assert list(futures.pool_imap(mp_pool, ps.square, range(5), timeout=LONG)) == [
            0,
            1,
            4,
            9,
            16,
        ]
        got = sorted(
            futures.pool_imap_unordered(mp_pool, ps.square, range(7), chunksize=3, timeout=LONG)
        )
        assert got == [i * i for i in range(7)]
        stop = StopEvent()
        results = futures.pool_imap(mp_pool, ps.wait_in_task, [stop], timeout=LONG, stop=stop)
        timer = time.monotonic()
        stop.set("no more")  # stops the wait, and the task with it: the stop crossed
        with pytest.raises(Stopped, match="no more"):
            next(results)
        assert time.monotonic() - timer < WAKE_BOUND
        slow = futures.pool_imap(mp_pool, ps.wait_in_task, [StopEvent()], timeout=0.1)
        with pytest.raises(futures.PoolDeadline):
            next(slow)
        mp_pool.terminate()
    with pytest.raises(ValueError, match="chunksize"):
        futures.pool_imap(mp_pool, ps.square, [], chunksize=0, timeout=1)
    wait_until(lambda: ps.children() == before, timeout=10, what="pool workers reaped")


def test_a_worker_whose_parent_dies_stops_its_task(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = str(tmp_path / "reason")
    root = Path(__file__).resolve().parent.parent
    parent = subprocess.Popen([sys.executable, "-c", ps.ORPHAN_SCRIPT, path], cwd=root)
    try:
        worker = ps.wait_for_file(path + ".pid")
    finally:
        parent.kill()  # SIGKILL: no shutdown runs in the parent
        parent.wait(LONG)
    wait_until(lambda: Path(path).exists(), what="the orphaned task to be stopped")
    assert Path(path).read_text() == "parent process ended"
    wait_until(lambda: not ps.alive(worker), timeout=10, what="the orphaned worker to exit")

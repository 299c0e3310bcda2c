"""One StopEvent across processes: fork, spawn and forkserver children see the same stop."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stoppable import StopEvent, Stopped, _arena, _shared, futures, queues

from . import proc_support as ps
from .support import LONG, WAKE_BOUND, open_fds, start_call, wait_until

pytestmark = [
    ps.FORK_WARNING,
    pytest.mark.skipif(not _shared.SUPPORTED, reason="cross-process stops need Linux"),
]


@pytest.fixture(params=ps.METHODS)
def ctx(request: pytest.FixtureRequest) -> Iterator[Any]:
    context = multiprocessing.get_context(request.param)
    before = ps.children()
    yield context
    # No zombie and no orphan: every child this test made has been reaped.
    wait_until(
        lambda: ps.children() == before,
        timeout=10,
        what=f"children to be reaped: {before} before",
    )
    assert ps.children() == before


def start(ctx: Any, target: Any, *args: Any) -> Any:
    process = ctx.Process(target=target, args=args)
    process.start()
    return process


def test_an_event_never_handed_over_costs_nothing() -> None:
    stop = StopEvent()
    stop.set("local")
    assert stop._shared is None
    assert stop.reason == "local"


def test_a_set_in_the_parent_wakes_the_childs_stoppable_wait(ctx: Any) -> None:
    stop, ready, out = StopEvent(), ctx.Event(), ctx.Queue()
    process = start(ctx, ps.wait_for_stop, stop, ready, out)
    assert ready.wait(LONG)
    set_at = time.monotonic()
    stop.set({"why": "deploy"})
    reason, seen_set, _waited = out.get(timeout=LONG)
    assert reason == {"why": "deploy"}
    assert seen_set is True
    assert time.monotonic() - set_at < WAKE_BOUND
    process.join(LONG)
    assert process.exitcode == 0
    out.close()


def test_the_childs_descriptor_wait_is_woken(ctx: Any) -> None:
    stop, ready, out = StopEvent(), ctx.Event(), ctx.Queue()
    process = start(ctx, ps.wait_on_fd, stop, ready, out)
    assert ready.wait(LONG)
    stop.set("fd")
    assert out.get(timeout=WAKE_BOUND * 5) == (True, True, "fd")
    process.join(LONG)
    out.close()


def test_a_set_in_the_child_wakes_the_parents_waiters(ctx: Any) -> None:
    stop = StopEvent()
    stop.fileno()  # already shared below; the parent's own wake-ups must fire too
    thread, outcome = start_call(lambda: queues.get(queue.Queue(), timeout=LONG, stop=stop))
    child = stop.child()
    process = start(ctx, ps.set_it, stop, "from the child")
    assert outcome.done.wait(LONG)
    assert isinstance(outcome.error, Stopped)
    assert outcome.error.reason == "from the child"
    assert stop.reason == "from the child"
    assert child.wait(WAKE_BOUND)  # set by the same set(), just after the callbacks
    assert child.reason == "from the child"
    process.join(LONG)
    thread.join(LONG)
    # The child gave its hold back once at exit: the parent's own hold remains.
    wait_until(lambda: _refs(stop) == 1, timeout=5, what="the child's hold to be given back")


def test_the_first_reason_wins_in_every_process(ctx: Any) -> None:
    stop, go, out = StopEvent(), ctx.Event(), ctx.Queue()
    processes = [start(ctx, ps.race_to_set, stop, go, f"child {i}", out) for i in range(2)]
    time.sleep(0.05 if ctx.get_start_method() == "fork" else 0.3)  # let them reach the wait
    go.set()
    seen = {out.get(timeout=LONG) for _ in processes}
    for process in processes:
        process.join(LONG)
    assert len(seen) == 1, seen
    assert stop.wait(LONG)
    assert stop.reason in seen
    out.close()


def test_a_pool_task_is_stopped_by_the_parent_and_sees_an_earlier_set(ctx: Any) -> None:
    early, stop = StopEvent(), StopEvent()
    early.set("early")
    with ctx.Pool(1) as pool:
        assert futures.pool_apply(pool, ps.report, (early,), timeout=LONG) == (True, "early")
        result = pool.apply_async(ps.wait_in_task, (stop,))
        # The task holds the stop once it is attached in the worker.
        wait_until(lambda: _refs(stop) >= 2, what="the worker to attach the stop")
        stop.set("pool stop")
        assert futures.result(result, timeout=LONG) == "pool stop"


def _refs(stop: StopEvent) -> int:
    link = stop._shared
    if link is None:
        return 0
    return int(link.arena.slot.unpack_from(link.arena.mm, link.arena._at(link.slot))[1])


def test_a_reason_too_big_or_unpicklable_crosses_as_its_text() -> None:
    big = "x" * 1000
    data = _shared._encode(big)
    assert len(data) <= _shared.REASON_BYTES
    decoded = _shared._decode(data)
    assert isinstance(decoded, str)
    assert decoded.startswith("xxx")
    assert decoded.endswith("...")
    assert str(_shared._decode(_shared._encode(threading.Lock()))).startswith("<unlocked")


def test_the_same_event_arrives_as_one_object_and_slots_are_freed() -> None:
    stop = StopEvent()
    data = pickle.dumps(stop)
    assert pickle.loads(data) is stop  # same process: the same object
    link = stop._shared
    assert link is not None
    arena, slot = link.arena, link.slot
    del stop, link
    state = _shared._state()
    assert state is not None
    wait_until(lambda: arena.slot.unpack_from(arena.mm, arena._at(slot))[0] == _arena._FREE)


def test_sharing_leaks_no_descriptor_and_no_thread(ctx: Any) -> None:
    StopEvent().__reduce__()  # this process's arena and watcher exist from here on
    fds, threads = open_fds(), threading.active_count()
    for _ in range(1):
        stop = StopEvent()
        process = start(ctx, ps.set_it, stop, "x")
        assert stop.wait(LONG)
        process.join(LONG)
        process.close()
    wait_until(lambda: open_fds() <= fds, timeout=5, what=f"fds back to {fds}: {open_fds()}")
    assert threading.active_count() == threads


def test_a_forked_child_sees_events_shared_before_the_fork() -> None:
    stop = StopEvent()
    _shared.share(stop)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0 if stop.wait(30) and stop.reason == "after fork" else 1
        os._exit(code)
    try:
        time.sleep(0.05)
        stop.set("after fork")
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class _Holder:
    def __init__(self, stop: StopEvent) -> None:
        self.stop = stop

    def run(self) -> None:
        os._exit(0 if self.stop.wait(30) and self.stop.reason == "held" else 1)


def test_the_fork_hook_finds_events_in_methods_partials_closures_and_attributes() -> None:
    import functools

    a, b, c, d = StopEvent(), StopEvent(), StopEvent(), StopEvent()

    def closure() -> object:
        return c

    found = _shared._handed_over((_Holder(a).run, functools.partial(print, b), closure, {"k": [d]}))
    assert {id(e) for e in found} == {id(a), id(b), id(c), id(d)}


def test_an_event_held_by_a_forked_process_target_is_shared() -> None:
    ctx = multiprocessing.get_context("fork")
    stop = StopEvent()
    process = ctx.Process(target=_Holder(stop).run)
    process.start()
    assert stop._shared is not None  # shared by the fork hook, not by pickling
    stop.set("held")
    process.join(LONG)
    assert process.exitcode == 0


def test_subprocess_with_preexec_fn_is_unaffected() -> None:
    import subprocess
    import sys

    StopEvent().__reduce__()
    done = subprocess.run(
        [sys.executable, "-c", "print('ok')"],
        preexec_fn=lambda: None,
        capture_output=True,
        text=True,
        timeout=LONG,
        check=True,
    )
    assert done.stdout == "ok\n"

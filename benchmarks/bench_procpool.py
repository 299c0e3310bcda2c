"""Processes: a stop across processes, the process pool's shutdown and its cost per task.

Each figure is measured in this run beside what a user would otherwise write:
``multiprocessing.Event`` or a pipe for the wake-up, and the standard
``concurrent.futures.ProcessPoolExecutor`` with a hand-written polling loop in the
tasks for the shutdown.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.connection
import queue
import select
import statistics
import time
from typing import Any

from benchmarks._harness import Table, ms, p50_p99, percentile, verdict
from stoppable import StopEvent, Stopped, futures, queues

LONG = 60.0
SLICE = 0.1  # the hand-written pattern's poll slice


# --- children ------------------------------------------------------------------------


def _stop_child(conn: Any) -> None:
    # Each round: receive a fresh StopEvent (it crosses by pickling), say ready,
    # block in a stoppable wait, report the monotonic time it woke.
    while True:
        stop = conn.recv()
        if stop is None:
            return
        conn.send("ready")
        try:
            queues.get(queue.Queue(), timeout=LONG, stop=stop)
        except Stopped:
            conn.send(time.monotonic())


def _mp_event_child(conn: Any, event: Any, reset: Any) -> None:
    while True:
        if conn.recv() is None:
            return
        conn.send("ready")
        event.wait()
        conn.send(time.monotonic())


def _pipe_child(conn: Any, wake: Any) -> None:
    while True:
        if conn.recv() is None:
            return
        conn.send("ready")
        select.select([wake], [], [])  # noqa: STP100 - the reference: a bare pipe wait
        wake.recv_bytes()
        conn.send(time.monotonic())


def _rounds(conn: Any, runs: int, make: Any, fire: Any) -> list[float]:
    samples = []
    for _ in range(runs):
        payload = make()
        conn.send(payload)
        assert conn.recv() == "ready"
        time.sleep(0.02)  # let it block (a benchmark may sleep, a test may not)
        fired = time.monotonic()
        fire(payload)
        samples.append(conn.recv() - fired)
    conn.send(None)
    return samples


def wake_table() -> Table:
    table = Table(
        "A stop set in the parent wakes a child blocked in a wait (p50 / p99)",
        ["start method", "how", "set to child awake", "target p50 < 1 ms"],
    )
    runs = 40
    for method in ("fork", "spawn", "forkserver"):
        ctx = multiprocessing.get_context(method)
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_stop_child, args=(child,))  # type: ignore[attr-defined]
        process.start()
        samples = _rounds(parent, runs, StopEvent, lambda stop: stop.set("go"))
        process.join(LONG)
        table.add(
            method,
            "StopEvent, child in stoppable.queues.get",
            p50_p99(samples),
            verdict(statistics.median(samples) < 1e-3),
        )
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    event = ctx.Event()
    process = ctx.Process(target=_mp_event_child, args=(child, event, None))
    process.start()

    def fire_event(_: object) -> None:
        event.set()

    def fresh(_: object = None) -> bool:
        event.clear()
        return True

    samples = _rounds(parent, runs, fresh, fire_event)
    process.join(LONG)
    table.add(
        "fork",
        "multiprocessing.Event.wait() (cannot wait beside anything)",
        p50_p99(samples),
        "(reference)",
    )
    parent, child = ctx.Pipe()
    wake_r, wake_w = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_pipe_child, args=(child, wake_r))
    process.start()
    samples = _rounds(parent, runs, lambda: True, lambda _: wake_w.send_bytes(b"x"))
    process.join(LONG)
    table.add(
        "fork", "a pipe and select (no reason, no first-wins)", p50_p99(samples), "(reference)"
    )
    table.notes.append(
        f"{runs} rounds each, a fresh StopEvent per round handed over by pickling; the child "
        "stamps time.monotonic() (one clock for all processes) when its wait returns."
    )
    return table


# --- shutdown ---------------------------------------------------------------------------


def _blocked_task() -> None:
    queues.get(queue.Queue(), timeout=LONG)  # the task's stop comes from its scope


def _polling_task(flag: Any) -> None:
    q: queue.Queue[object] = queue.Queue()
    while not flag.is_set():
        with contextlib.suppress(queue.Empty):
            q.get(timeout=SLICE)


def shutdown_table() -> Table:
    table = Table(
        "Shutdown of 8 workers whose tasks are blocked (median of 5)",
        ["pool", "tasks", "shutdown call to return, workers reaped", "target < 100 ms"],
    )
    workers, runs = 8, 5
    ours, theirs = [], []
    ctx = multiprocessing.get_context("fork")
    for _ in range(runs):
        pool = futures.ProcessPoolExecutor(workers, mp_context=ctx)
        fs = [pool.submit(_blocked_task) for _ in range(workers)]
        _wait_running(pool, workers)
        started = time.perf_counter()
        pool.shutdown(stop=True, timeout=LONG)
        ours.append(time.perf_counter() - started)
        assert all(isinstance(f.exception(), Stopped) for f in fs)
    manager = ctx.Manager()
    for _ in range(runs):
        flag = manager.Event()
        std = concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx)
        fs = [std.submit(_polling_task, flag) for _ in range(workers)]
        time.sleep(0.5)
        started = time.perf_counter()
        flag.set()
        std.shutdown(wait=True, cancel_futures=True)
        theirs.append(time.perf_counter() - started)
    manager.shutdown()
    table.add(
        "stoppable.futures.ProcessPoolExecutor",
        "blocked in stoppable.queues.get",
        ms(statistics.median(ours)),
        verdict(statistics.median(ours) < 0.1),
    )
    table.add(
        "concurrent.futures.ProcessPoolExecutor",
        f"Queue.get(timeout={SLICE:g}) loop checking a Manager Event",
        ms(statistics.median(theirs)),
        "(reference)",
    )
    table.notes.append(
        "Ours: shutdown(stop=True) sets each task's stop in its worker, the tasks raise "
        "Stopped, the workers exit and are reaped. Theirs: flag.set() then "
        "shutdown(cancel_futures=True)."
    )
    return table


def _wait_running(pool: futures.ProcessPoolExecutor, count: int) -> None:
    deadline = time.monotonic() + LONG
    while sum(w.work is not None for w in pool._workers) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the tasks did not start")
        time.sleep(0.01)
    time.sleep(0.3)  # into their blocking calls


# --- cost per task ------------------------------------------------------------------------


def _tiny(x: int) -> int:
    return x + 1


def _throughput(pool: Any, tasks: int) -> float:
    for f in [pool.submit(_tiny, i) for i in range(50)]:  # warm: workers started
        f.result(LONG)
    started = time.perf_counter()
    fs = [pool.submit(_tiny, i) for i in range(tasks)]
    for f in fs:
        f.result(LONG)
    return (time.perf_counter() - started) / tasks


def overhead_table() -> Table:
    table = Table(
        "Cost per task: 2 workers, 1000 tiny tasks submitted at once (9 interleaved pairs)",
        ["pool", "per task", "ratio to concurrent.futures", "target <= 1.1x"],
    )
    ctx = multiprocessing.get_context("fork")
    ours_pool = futures.ProcessPoolExecutor(2, mp_context=ctx)
    std_pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx)
    ours, theirs = [], []
    for _ in range(9):
        ours.append(_throughput(ours_pool, 1000))
        theirs.append(_throughput(std_pool, 1000))
    ours_pool.shutdown()
    std_pool.shutdown()
    # The median of each pair's ratio: a pair shares the machine's load of the moment.
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    table.add(
        "concurrent.futures.ProcessPoolExecutor",
        f"{statistics.median(theirs) * 1e6:.0f} us",
        "1.00",
        "",
    )
    table.add(
        "stoppable.futures.ProcessPoolExecutor",
        f"{statistics.median(ours) * 1e6:.0f} us",
        f"{ratio:.2f}",
        verdict(ratio <= 1.1),
    )
    table.notes.append(
        "Ours also makes and shares a StopEvent per task, runs it in a scope, and hands a "
        "task to a worker only once the worker is free (no task waits in a worker's pipe), "
        "so a worker idles for one round trip per task. Spread of our runs: "
        f"{percentile(ours, 0) * 1e6:.0f}-{percentile(ours, 1) * 1e6:.0f} us; theirs: "
        f"{percentile(theirs, 0) * 1e6:.0f}-{percentile(theirs, 1) * 1e6:.0f} us."
    )
    return table


def run() -> list[Table]:
    """All process benchmark tables."""
    return [wake_table(), shutdown_table(), overhead_table()]


if __name__ == "__main__":
    for t in run():
        print(t.markdown(), end="\n\n")

"""Futures: stop latency of result()/wait()/as_completed(), executor shutdown, overheads.

Every figure is measured in this run beside what a user would otherwise write: the
standard library's waits, and the hand-written pattern (a stop ``Event`` checked
between ``Future.result(timeout=slice)`` calls, or in the task between
``Queue.get(timeout=slice)`` calls, with ``shutdown(cancel_futures=True)``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import importlib.util
import multiprocessing.pool
import queue
import random
import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from benchmarks._harness import Table, ms, p50_p99, percentile, us, verdict
from stoppable import StopEvent, StopLike, Stopped, futures, queues, sync

LONG = 60.0
WORKERS = 100
QUEUED = 1000


def latencies(
    make: Callable[[], tuple[Callable[[], object], Callable[[], object]]],
    runs: int,
    jitter: float = 0.0,
) -> list[float]:
    """Seconds from ``release()`` until the blocked ``block()`` returned, ``runs`` times.

    ``make()`` returns a fresh ``(block, release)`` pair per run. The release comes
    3 ms after the waiter starts (a benchmark may sleep to let it block; a test may
    not), plus a random share of ``jitter``, so that a polled wait is caught at a
    random point of its slice rather than always at the same one.
    """
    rng = random.Random(1)
    samples: list[float] = []
    for _ in range(runs):
        block, release = make()
        ended: list[float] = []

        def waiter(block: Callable[[], object] = block, ended: list[float] = ended) -> None:
            with contextlib.suppress(Stopped):
                block()
            ended.append(time.perf_counter())

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.003 + rng.uniform(0, jitter))
        started = time.perf_counter()
        release()
        thread.join(LONG)
        if thread.is_alive():
            raise RuntimeError(f"the waiter did not return within {LONG:g} s of release()")
        samples.append(ended[0] - started)
    return samples


def _met(samples: list[float]) -> str:
    return verdict(statistics.median(samples) < 100e-6 and percentile(samples, 0.99) < 1e-3)


# --- stop latency ------------------------------------------------------------------


def stop_latency_table() -> Table:
    table = Table(
        "Stop latency: one thread blocked waiting on futures, then stopped (p50 / p99)",
        ["blocked in", "stop", "latency p50 / p99", "target p50 < 100 us, p99 < 1 ms"],
    )

    def ours(
        wait: Callable[[list[Future[Any]], StopLike], object], n: int
    ) -> Callable[[], tuple[Callable[[], object], Callable[[], object]]]:
        def make() -> tuple[Callable[[], object], Callable[[], object]]:
            fs: list[Future[Any]] = [Future() for _ in range(n)]
            stop = StopEvent()
            return (lambda: wait(fs, stop)), stop.set

        return make

    rows: list[tuple[str, Callable[[list[Future[Any]], StopLike], object], int, int]] = [
        (
            "stoppable.futures.result(future)",
            lambda fs, stop: futures.result(fs[0], timeout=LONG, stop=stop),
            1,
            300,
        ),
        (
            "stoppable.futures.wait(100 futures)",
            lambda fs, stop: futures.wait(fs, timeout=LONG, stop=stop),
            100,
            200,
        ),
        (
            "stoppable.futures.as_completed(100 futures)",
            lambda fs, stop: next(futures.as_completed(fs, timeout=LONG, stop=stop)),
            100,
            200,
        ),
    ]
    for name, wait, n, runs in rows:
        samples = latencies(ours(wait, n), runs)
        table.add(name, "StopEvent", p50_p99(samples), _met(samples))

    pool = multiprocessing.pool.ThreadPool(1)
    gate = threading.Event()
    pending = pool.apply_async(gate.wait)

    def pool_wait() -> tuple[Callable[[], object], Callable[[], object]]:
        stop = StopEvent()
        return (lambda: futures.result(pending, timeout=LONG, stop=stop)), stop.set

    samples = latencies(pool_wait, 200)
    table.add(
        "stoppable.futures.result(Pool AsyncResult)", "StopEvent", p50_p99(samples), _met(samples)
    )
    gate.set()
    pending.get(LONG)  # its one task done (or TimeoutError); join() could not be bounded
    pool.terminate()

    def hand_result() -> tuple[Callable[[], object], Callable[[], object]]:
        future: Future[Any] = Future()
        flag = threading.Event()

        def block() -> None:
            while not flag.is_set():
                with contextlib.suppress(concurrent.futures.TimeoutError):
                    future.result(timeout=0.1)

        return block, flag.set

    def hand_as_completed() -> tuple[Callable[[], object], Callable[[], object]]:
        fs: list[Future[Any]] = [Future() for _ in range(100)]
        flag = threading.Event()

        def block() -> None:
            while not flag.is_set():
                with contextlib.suppress(concurrent.futures.TimeoutError):
                    for _ in concurrent.futures.as_completed(fs, timeout=0.1):
                        pass

        return block, flag.set

    for name, make in (
        ("hand-written Future.result(timeout=0.1) loop", hand_result),
        ("hand-written as_completed(100, timeout=0.1) loop", hand_as_completed),
    ):
        samples = latencies(make, 30, jitter=0.1)
        table.add(name, "threading.Event", p50_p99(samples), "(reference)")
    return table


# --- wake-up by completion ---------------------------------------------------------


def completion_table() -> Table:
    table = Table(
        "Wake-up by completion: set_result() until the blocked waiter returned (p50 / p99)",
        ["waiter", "standard library", "stoppable.futures (timeout + StopEvent)"],
    )
    runs = 300

    def pair(
        plain: Callable[[list[Future[Any]]], object],
        ours: Callable[[list[Future[Any]], StopEvent], object],
        n: int,
    ) -> tuple[str, str]:
        def make_plain() -> tuple[Callable[[], object], Callable[[], object]]:
            fs: list[Future[Any]] = [Future() for _ in range(n)]
            return (lambda: plain(fs)), (lambda: fs[-1].set_result(0))

        def make_ours() -> tuple[Callable[[], object], Callable[[], object]]:
            fs: list[Future[Any]] = [Future() for _ in range(n)]
            stop = StopEvent()
            return (lambda: ours(fs, stop)), (lambda: fs[-1].set_result(0))

        return p50_p99(latencies(make_plain, runs)), p50_p99(latencies(make_ours, runs))

    table.add(
        "result(future)",
        *pair(
            lambda fs: fs[0].result(),
            lambda fs, stop: futures.result(fs[0], timeout=LONG, stop=stop),
            1,
        ),
    )
    table.add(
        "wait(100 futures, FIRST_COMPLETED)",
        *pair(
            lambda fs: concurrent.futures.wait(  # noqa: STP100 - stdlib baseline
                fs, return_when=concurrent.futures.FIRST_COMPLETED
            ),
            lambda fs, stop: futures.wait(
                fs, timeout=LONG, stop=stop, return_when=futures.FIRST_COMPLETED
            ),
            100,
        ),
    )
    table.add(
        "next(as_completed(100 futures))",
        *pair(
            lambda fs: next(concurrent.futures.as_completed(fs)),  # noqa: STP100 - stdlib baseline
            lambda fs, stop: next(futures.as_completed(fs, timeout=LONG, stop=stop)),
            100,
        ),
    )
    return table


# --- executor shutdown -------------------------------------------------------------


_HAVE_NET = importlib.util.find_spec("stoppable.net") is not None
KINDS = ["queues.get", "sync.wait(Event)", "futures.result"] + (["net.recv"] if _HAVE_NET else [])


def _stoppable_tasks(
    n: int, kinds: list[str]
) -> tuple[list[Callable[[], object]], Callable[[], None]]:
    """``n`` task bodies blocked in the ``kinds`` of stoppable calls, in turn, and a cleanup.

    The waits of one kind share what they wait on (one queue, one event, one future),
    as a pool's workers do; each ``net.recv`` has a socket of its own.
    """
    q: queue.Queue[int] = queue.Queue()
    event = threading.Event()
    never: Future[Any] = Future()
    sockets: list[socket.socket] = []
    bodies: list[Callable[[], object]] = []
    net: Any = importlib.import_module("stoppable.net") if "net.recv" in kinds else None
    for index in range(n):
        kind = kinds[index % len(kinds)]
        if kind == "queues.get":
            bodies.append(lambda: queues.get(q, timeout=LONG))
        elif kind == "sync.wait(Event)":
            bodies.append(lambda: sync.wait(event, timeout=LONG))
        elif kind == "futures.result":
            bodies.append(lambda: futures.result(never, timeout=LONG))
        else:
            left, right = socket.socketpair()
            sockets += [left, right]
            bodies.append(lambda left=left: net.recv(left, 1024, timeout=LONG))  # type: ignore[misc]

    def cleanup() -> None:
        for sock in sockets:
            sock.close()

    return bodies, cleanup


def _start_all(
    executor: concurrent.futures.ThreadPoolExecutor, bodies: list[Callable[[], object]]
) -> tuple[list[int], Callable[[], float]]:
    """Submit ``bodies`` (all running at once), then QUEUED tasks that count their runs.

    Returns the run counter of the queued tasks and an idle-CPU probe.
    """
    running = threading.Semaphore(0)

    def task(body: Callable[[], object]) -> object:
        running.release()
        return body()

    for body in bodies:
        executor.submit(task, body)
    for _ in bodies:
        if not running.acquire(timeout=LONG):
            raise RuntimeError(f"a task did not start within {LONG:g} s")
    time.sleep(0.2)  # all blocked
    ran = [0]

    def queued() -> None:
        ran[0] += 1

    for _ in range(QUEUED):
        executor.submit(queued)

    def idle_cpu() -> float:
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(1.0)
        return (time.process_time() - cpu) / (time.monotonic() - wall)

    return ran, idle_cpu


def shutdown_ours(kinds: list[str], measure_cpu: bool) -> tuple[float, int, float | None]:
    bodies, cleanup = _stoppable_tasks(WORKERS, kinds)
    executor = futures.ThreadPoolExecutor(WORKERS)
    ran, idle_cpu = _start_all(executor, bodies)
    cpu = idle_cpu() if measure_cpu else None
    started = time.perf_counter()
    executor.shutdown(stop=True, timeout=LONG)
    took = time.perf_counter() - started
    cleanup()
    return took, ran[0], cpu


def shutdown_hand_written(
    slice_seconds: float, measure_cpu: bool
) -> tuple[float, int, float | None]:
    flag = threading.Event()

    def polling() -> None:
        q: queue.Queue[int] = queue.Queue()
        while not flag.is_set():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=slice_seconds)

    executor = concurrent.futures.ThreadPoolExecutor(WORKERS)
    ran, idle_cpu = _start_all(executor, [polling] * WORKERS)
    cpu = idle_cpu() if measure_cpu else None
    started = time.perf_counter()
    flag.set()
    executor.shutdown(wait=True, cancel_futures=True)
    return time.perf_counter() - started, ran[0], cpu


def shutdown_floor() -> float:
    event = threading.Event()
    ready = threading.Barrier(WORKERS + 1)

    def block() -> None:
        ready.wait(LONG)
        event.wait()  # noqa: STP100 - the plain Event.wait() floor measured

    threads = [threading.Thread(target=block) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    ready.wait(LONG)
    time.sleep(0.2)
    started = time.perf_counter()
    event.set()
    for thread in threads:
        thread.join(LONG)
    return time.perf_counter() - started


def shutdown_table() -> Table:
    table = Table(
        f"Shut down an executor of {WORKERS} workers, all blocked, {QUEUED} more tasks queued",
        [
            "tasks blocked in",
            "shutdown took (median / max)",
            "vs floor",
            "queued tasks that ran",
            "idle CPU while blocked",
        ],
    )
    runs = 5
    variants: dict[str, list[str]] = {"all in queues.get": ["queues.get"]}
    if _HAVE_NET:
        variants["all in net.recv"] = ["net.recv"]
    variants["mixed: " + ", ".join(KINDS)] = KINDS
    floor: list[float] = []
    ours: dict[str, list[float]] = {name: [] for name in variants}
    ran_ours = dict.fromkeys(variants, 0)
    cpu_ours: dict[str, float | None] = {}
    hand: dict[float, list[float]] = {0.1: [], 0.01: []}
    ran_hand = dict.fromkeys(hand, 0)
    cpu_hand: dict[float, float | None] = {}
    for run in range(runs):  # interleaved: all see the same machine load
        first = run == 0
        floor.append(shutdown_floor())
        for name, kinds in variants.items():
            took, ran, cpu = shutdown_ours(kinds, first)
            ours[name].append(took)
            ran_ours[name] += ran
            if first:
                cpu_ours[name] = cpu
        for slice_seconds in hand:
            took, ran, cpu = shutdown_hand_written(slice_seconds, first)
            hand[slice_seconds].append(took)
            ran_hand[slice_seconds] += ran
            if first:
                cpu_hand[slice_seconds] = cpu
    base = statistics.median(floor)

    def cell(samples: list[float]) -> str:
        return f"{ms(statistics.median(samples))} / {ms(max(samples))}"

    table.add(
        f"threading.Event.wait(), {WORKERS} raw threads (the floor)", cell(floor), "1.00", "-", "-"
    )
    for name, samples in ours.items():
        table.add(
            f"stoppable.futures.ThreadPoolExecutor, shutdown(stop=True): {name}",
            cell(samples),
            f"{statistics.median(samples) / base:.2f}",
            str(ran_ours[name]),
            f"{cpu_ours.get(name) or 0.0:.2%}",
        )
    for slice_seconds, samples in hand.items():
        table.add(
            "concurrent.futures.ThreadPoolExecutor, flag.set() + shutdown(cancel_futures=True): "
            f"hand-written Queue.get(timeout={slice_seconds:g}) loop",
            cell(samples),
            f"{statistics.median(samples) / base:.2f}",
            str(ran_hand[slice_seconds]),
            f"{cpu_hand.get(slice_seconds) or 0.0:.2%}",
        )
    table.notes.append(
        f"{runs} interleaved runs each; the time runs from the stop (or flag.set()) until "
        "shutdown() returned with every worker joined. Queued tasks that ran: summed over "
        "the runs (0 means every queued task was cancelled). The floor has no queue: the "
        "executors also cancel the 1000 queued tasks. Idle CPU: share of one core over 1 s "
        "of the first run, while the tasks were blocked."
    )
    return table


# --- overheads ---------------------------------------------------------------------


def _per_call(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def _tasks_per_second(executor: concurrent.futures.ThreadPoolExecutor, n: int) -> float:
    started = time.perf_counter()
    fs = [executor.submit(int) for _ in range(n)]
    _, not_done = concurrent.futures.wait(fs, timeout=LONG)
    took = time.perf_counter() - started
    if not_done:
        raise RuntimeError(f"{len(not_done)} tasks not done within {LONG:g} s")
    return n / took


def overhead_table() -> Table:
    table = Table(
        "Cost when nothing has to wait (best of 5, interleaved)",
        ["call", "standard library", "stoppable.futures", "ratio"],
    )
    done: Future[int] = Future()
    done.set_result(1)
    many: list[Future[int]] = []
    for _ in range(100):
        future: Future[int] = Future()
        future.set_result(1)
        many.append(future)
    stop = StopEvent()
    rows: list[tuple[str, Callable[[], object], Callable[[], object], int]] = [
        (
            "result(done future)",
            done.result,
            lambda: futures.result(done, timeout=1, stop=stop),
            200_000,
        ),
        (
            "wait(100 done futures)",
            lambda: concurrent.futures.wait(many),  # noqa: STP100 - false alarm: all done above
            lambda: futures.wait(many, timeout=1, stop=stop),
            5_000,
        ),
    ]
    for name, plain_call, ours_call, n in rows:
        plain_runs, ours_runs = [], []
        for _ in range(5):
            plain_runs.append(_per_call(plain_call, n))
            ours_runs.append(_per_call(ours_call, n))
        plain, ours = min(plain_runs), min(ours_runs)
        table.add(
            name,
            us(plain) if plain >= 1e-5 else f"{plain * 1e9:.0f} ns",
            us(ours) if ours >= 1e-5 else f"{ours * 1e9:.0f} ns",
            f"{plain / ours:.2f}",
        )
    n = 20_000
    plain_rates, ours_rates = [], []
    plain_executor = concurrent.futures.ThreadPoolExecutor(4)
    ours_executor = futures.ThreadPoolExecutor(4)
    for _ in range(5):
        plain_rates.append(_tasks_per_second(plain_executor, n))
        ours_rates.append(_tasks_per_second(ours_executor, n))
    plain_executor.shutdown()
    ours_executor.shutdown(timeout=LONG)
    plain_rate, ours_rate = max(plain_rates), max(ours_rates)
    table.add(
        f"submit + run {n:,} trivial tasks, 4 workers (tasks/s)",
        f"{plain_rate:,.0f}",
        f"{ours_rate:,.0f}",
        f"{ours_rate / plain_rate:.2f}",
    )
    table.notes.append(
        "ratio = stoppable speed / standard library speed (1.00 = as fast). Each stoppable "
        "task gets a StopEvent of its own and runs inside a scope; result() and wait() "
        "validate the timeout and check the stop. The standard wait() locks every future "
        "at once; stoppable's checks their states first."
    )
    return table


def run() -> list[Table]:
    """All futures benchmark tables."""
    return [stop_latency_table(), completion_table(), shutdown_table(), overhead_table()]

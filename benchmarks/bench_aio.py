"""asyncio bridge: to_thread overhead, cancel-to-thread-end latency, asyncio.run() exit.

Every figure is measured in this run beside what asyncio users write today:
``asyncio.to_thread`` on the default executor, whose cancellation abandons the
thread and whose ``asyncio.run()`` exit waits for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from benchmarks._harness import Table, ms, p50_p99, percentile, us, verdict
from stoppable import aio

LONG = 60.0
THREADS = 100
PLAIN_BLOCK = 2.0  # how long the plain threads block in the exit benchmark


def _noop() -> None:
    return None


# --- overhead per call ----------------------------------------------------------------


def overhead_table() -> Table:
    table = Table(
        "Overhead per call: a no-op function run in a thread and awaited",
        ["call", "awaited", "per call", "ratio to asyncio.to_thread", "target <= 1.2x"],
    )
    calls = 2000
    rounds = 7

    async def measure(
        executor: concurrent.futures.ThreadPoolExecutor,
        call: Callable[[], Awaitable[object]],
        streams: int,
    ) -> float:
        asyncio.get_running_loop().set_default_executor(executor)

        async def stream(n: int) -> None:
            for _ in range(n):
                await call()

        await stream(100)  # warm the executor
        started = time.perf_counter()
        await asyncio.gather(*(stream(calls // streams) for _ in range(streams)))
        return (time.perf_counter() - started) / calls

    variants: list[tuple[str, Callable[[], concurrent.futures.ThreadPoolExecutor], Any]] = [
        (
            "asyncio.to_thread(f)",
            concurrent.futures.ThreadPoolExecutor,
            lambda: asyncio.to_thread(_noop),
        ),
        (
            "aio.to_thread(f, timeout=60)",
            concurrent.futures.ThreadPoolExecutor,
            lambda: aio.to_thread(_noop, timeout=LONG),
        ),
        (
            "asyncio.to_thread(f), aio.Executor as the default",
            aio.Executor,
            lambda: asyncio.to_thread(_noop),
        ),
        (
            "aio.to_thread(f, timeout=60), its guard a no-op (aio's own cost)",
            concurrent.futures.ThreadPoolExecutor,
            lambda: aio.to_thread(_noop, timeout=LONG),
        ),
    ]
    for streams, how in ((1, "one at a time"), (8, "8 tasks at once")):
        samples: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for _ in range(rounds):  # interleaved: a loaded machine slows every variant alike
            for name, make_executor, call in variants:
                with _guard_replaced("no-op" in name):
                    samples[name].append(asyncio.run(measure(make_executor(), call, streams)))
        base = statistics.median(samples[variants[0][0]])
        for name, _, _ in variants:
            per_call = statistics.median(samples[name])
            ratio = per_call / base
            met = "" if name == variants[0][0] else verdict(ratio <= 1.2)
            table.add(name, how, us(per_call), f"{ratio:.2f}", met)
    table.notes.append(
        f"Median of {rounds} interleaved rounds of {calls} calls each, every round in a "
        "fresh asyncio.run() with a fresh default executor. The last row, with the guard "
        "replaced by a no-op, is aio's own cost: the rest is entering and leaving the guard "
        "in the worker (its socket patches stay installed between calls: they linger 0.5 s "
        "after the last guard closed)."
    )
    return table


class _NoGuard:
    def __init__(self, **_: object) -> None:
        pass

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


@contextlib.contextmanager
def _guard_replaced(replace: bool) -> Iterator[None]:
    # Only to split the figure: the worker looks the guard up as it runs each call.
    real = vars(aio)["_guard"]
    if replace:
        vars(aio)["_guard"] = _NoGuard
    try:
        yield
    finally:
        vars(aio)["_guard"] = real


# --- cancel to thread end ---------------------------------------------------------------


class _Plain:
    """A blocking call in code that knows nothing of stoppable, and when it ended."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ended = 0.0
        self._close: Callable[[], None] = _noop
        if kind == "socket.recv":
            server = socket.create_server(("127.0.0.1", 0))
            server.settimeout(LONG)
            client = socket.create_connection(server.getsockname(), timeout=LONG)
            peer, _ = server.accept()
            server.close()
            self._sock, self._peer = client, peer

            def close() -> None:
                client.close()
                peer.close()

            self._close = close

    def __call__(self) -> None:
        try:
            if self.kind == "time.sleep":
                time.sleep(LONG)
            elif self.kind == "queue.Queue.get":
                queue.Queue().get(timeout=LONG)
            else:
                self._sock.recv(1024)  # in timeout mode (LONG); the guard stops it
        finally:
            self.ended = time.perf_counter()
            self._close()


def latency_table() -> Table:
    table = Table(
        "Cancel to thread end: a task awaiting aio.to_thread of plain blocking code, cancelled",
        [
            "thread blocked in",
            "cancel to thread end p50 / p99",
            "cancel to await end p50 / p99",
            "target p50 < 200 us, p99 < 2 ms",
        ],
    )
    runs = 300

    async def measure(kind: str) -> tuple[list[float], list[float]]:
        to_end: list[float] = []
        to_await: list[float] = []
        for _ in range(runs):
            plain = _Plain(kind)
            task = asyncio.create_task(aio.to_thread(plain, timeout=LONG))
            await asyncio.sleep(0.003)  # a benchmark may sleep to let it block; a test may not
            started = time.perf_counter()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            to_await.append(time.perf_counter() - started)
            to_end.append(plain.ended - started)
        return to_end, to_await

    for kind in ("time.sleep", "queue.Queue.get", "socket.recv"):
        to_end, to_await = asyncio.run(measure(kind))
        met = statistics.median(to_end) < 200e-6 and percentile(to_end, 0.99) < 2e-3
        table.add(kind, p50_p99(to_end), p50_p99(to_await), verdict(met))
    table.notes.append(
        "Plain asyncio.to_thread cannot end the thread at all: cancelling returns at once "
        "and the thread blocks on until its own call returns."
    )
    return table


# --- asyncio.run() exit with threads in flight --------------------------------------------


def exit_table() -> Table:
    table = Table(
        f"asyncio.run() exit with {THREADS} threads blocked in time.sleep: main() returns",
        ["threads started by", "main() return to asyncio.run() return", "threads stopped"],
    )

    def measure(
        executor: concurrent.futures.ThreadPoolExecutor,
        start: Callable[[Callable[[], None]], Awaitable[object]],
        block: Callable[[], None],
    ) -> tuple[float, int]:
        started = threading.Semaphore(0)
        stopped: list[BaseException] = []

        def work() -> None:
            started.release()
            try:
                block()
            except BaseException as exc:
                stopped.append(exc)
                raise

        def all_started() -> None:
            for _ in range(THREADS):
                started.acquire(True, LONG)

        returned = [0.0]

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(executor)
            tasks = [asyncio.ensure_future(start(work)) for _ in range(THREADS)]
            with concurrent.futures.ThreadPoolExecutor(1) as watcher:
                await loop.run_in_executor(watcher, all_started)
            await asyncio.sleep(0.01)  # every thread in its sleep
            del tasks  # left to asyncio.run(), which cancels them
            returned[0] = time.perf_counter()

        asyncio.run(main())
        return time.perf_counter() - returned[0], len(stopped)

    def plain_sleep() -> None:
        time.sleep(PLAIN_BLOCK)

    def long_sleep() -> None:
        time.sleep(LONG)

    rows: list[tuple[str, Callable[[], concurrent.futures.ThreadPoolExecutor], Any, Any]] = [
        (
            f"asyncio.to_thread(time.sleep, {PLAIN_BLOCK:g}), default executor",
            lambda: concurrent.futures.ThreadPoolExecutor(THREADS),
            asyncio.to_thread,
            plain_sleep,
        ),
        (
            f"aio.to_thread(time.sleep, {LONG:g}, timeout={2 * LONG:g})",
            lambda: concurrent.futures.ThreadPoolExecutor(THREADS),
            lambda fn: aio.to_thread(fn, timeout=2 * LONG),
            long_sleep,
        ),
        (
            f"asyncio.to_thread(time.sleep, {LONG:g}), aio.Executor as the default",
            lambda: aio.Executor(THREADS),
            asyncio.to_thread,
            long_sleep,
        ),
    ]
    for name, make_executor, start, block in rows:
        elapsed, stopped = measure(make_executor(), start, block)
        table.add(name, ms(elapsed), f"{stopped} of {THREADS}")
    table.notes.append(
        f"The plain threads block for {PLAIN_BLOCK:g} s only, to keep the run short: "
        "asyncio.run() waits for every one of them (on 3.12+ for up to 300 s, then warns "
        "and leaves them running)."
    )
    return table


def run() -> list[Table]:
    """All asyncio bridge benchmark tables."""
    return [overhead_table(), latency_table(), exit_table()]

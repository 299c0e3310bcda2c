"""A pipeline with I/O in threads and CPU work in processes that stops cleanly on SIGTERM.

Run it with ``.venv/bin/python examples/pipeline.py`` and press Ctrl-C (or send it
SIGTERM) while it works::

    fetch (2 threads) --> crunch (process pool) --> store (1 thread)

Each item is fetched (I/O, in a thread), crunched (CPU, in a worker process of a
``stoppable.futures.ProcessPoolExecutor``) and stored (I/O, in a thread). One
``StopEvent`` runs the whole pipeline: ``stop_on_signals`` sets it on SIGTERM or
SIGINT, the threads' waits end with ``Stopped`` at once, and the pool, whose stop is
a child of it, stops the CPU work in its worker processes (their ``checkpoint()``
raises), then reaps them. Nothing passes the stop to the CPU code: each task runs
with a stop of its own, which crosses into the worker.

At the end it prints one JSON line that accounts for every item: ``done`` (stored),
``stopped`` (in flight when the stop came, by stage) or ``not_started`` (still in the
source queue, where it can be picked up again), plus the worker pids (all reaped).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import threading
import time
from concurrent.futures import Future
from functools import partial

from stoppable import StopEvent, Stopped, checkpoint, futures, queues, sync
from stoppable.process import stop_on_signals

HOUR = 3600.0


def crunch(item: int, seconds: float) -> tuple[int, int]:
    """CPU work in a worker process; ``checkpoint()`` raises once the task is stopped."""
    deadline = time.monotonic() + seconds
    total = item
    while time.monotonic() < deadline:
        total = (total * 31 + sum(range(500))) % 1_000_003
        checkpoint()
    return total, os.getpid()


class Ledger:
    """Where each item is: queued, fetching, crunching, storing, done."""

    def __init__(self, items: int) -> None:
        self.lock = threading.Lock()
        self.state = dict.fromkeys(range(items), "queued")
        self.pids: set[int] = set()

    def move(self, item: int, state: str) -> None:
        with self.lock:
            self.state[item] = state

    def summary(self, source: queue.Queue[int], reason: object) -> dict[str, object]:
        left = set()
        while True:
            try:
                left.add(source.get_nowait())
            except queue.Empty:
                break
        with self.lock:
            states = dict(self.state)
        not_started = sorted(i for i, s in states.items() if s == "queued")
        assert set(not_started) == left, "the ledger and the source queue disagree"
        return {
            "reason": reason,
            "done": sorted(i for i, s in states.items() if s == "done"),
            "stopped": {
                str(i): s for i, s in sorted(states.items()) if s not in ("queued", "done")
            },
            "not_started": not_started,
            "workers": sorted(self.pids),
        }


def fetch(
    source: queue.Queue[int],
    pool: futures.ProcessPoolExecutor,
    results: queue.Queue[tuple[int, Future[tuple[int, int]]]],
    ledger: Ledger,
    slots: threading.Semaphore,
    io_seconds: float,
    work: float,
    *,
    stop: StopEvent,
) -> None:
    while True:
        # At most so many items in flight: the rest stay in the source queue.
        sync.acquire(slots, timeout=HOUR, stop=stop)
        try:
            item = source.get_nowait()
        except queue.Empty:
            slots.release()
            return
        ledger.move(item, "fetching")
        try:
            # Stands for a network read made with stoppable (net, http): it ends at
            # once when the stop is set.
            if stop.wait(io_seconds):
                return
            future = pool.submit(crunch, item, work)
        except RuntimeError:  # the pool is shutting down: the stop came meanwhile
            return
        ledger.move(item, "crunching")
        future.add_done_callback(partial(_finished, results, item))


def _finished(
    results: queue.Queue[tuple[int, Future[tuple[int, int]]]],
    item: int,
    future: Future[tuple[int, int]],
) -> None:
    results.put((item, future))


def store(
    results: queue.Queue[tuple[int, Future[tuple[int, int]]]],
    ledger: Ledger,
    slots: threading.Semaphore,
    items: int,
    io_seconds: float,
    finished: StopEvent,
    *,
    stop: StopEvent,
) -> None:
    for _ in range(items):
        item, future = queues.get(results, timeout=HOUR, stop=stop)
        slots.release()
        try:
            _, pid = future.result(0)
        except Stopped:
            continue  # stopped in its worker: the ledger says "crunching"
        ledger.pids.add(pid)
        ledger.move(item, "storing")
        if stop.wait(io_seconds):  # stands for a stoppable write
            return
        ledger.move(item, "done")
        print(f"done {item}", flush=True)
    finished.set("all items done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=float, default=0.3, help="CPU seconds per item")
    parser.add_argument("--io", type=float, default=0.05, help="I/O seconds per item and stage")
    args = parser.parse_args()

    source: queue.Queue[int] = queue.Queue()
    for item in range(args.items):
        source.put(item)
    results: queue.Queue[tuple[int, Future[tuple[int, int]]]] = queue.Queue()
    ledger = Ledger(args.items)
    slots = threading.Semaphore(2 * args.workers)
    with stop_on_signals() as stop:
        # The pool's stop is a child of the pipeline's: a SIGTERM stops its tasks.
        with futures.ProcessPoolExecutor(args.workers, parent=stop, shutdown_timeout=10) as pool:
            threads = [
                sync.Thread(
                    target=fetch,
                    args=(source, pool, results, ledger, slots, args.io, args.work),
                    name=f"fetch-{i}",
                    parent=stop,  # each thread's stop is a child of the pipeline's
                )
                for i in range(2)
            ]
            threads.append(
                sync.Thread(
                    target=store,
                    args=(results, ledger, slots, args.items, args.io, stop),
                    name="store",
                    parent=stop,
                )
            )
            for thread in threads:
                thread.start()
            print(f"started {args.items} items, pid {os.getpid()}", flush=True)
            while not stop.wait(HOUR):
                pass
            for thread in threads:
                sync.join(thread, timeout=10)
            stopped_at = time.monotonic()
        # The with block has stopped and reaped the workers.
        summary = ledger.summary(source, stop.reason)
        summary["shutdown_seconds"] = round(time.monotonic() - stopped_at, 3)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

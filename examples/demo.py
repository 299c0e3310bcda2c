"""Worker threads blocked on queues, locks, events and more, all stopped by one StopEvent.

Run it with ``make demo``. Each worker blocks in a different ``stoppable`` call with a
timeout of a minute; one ``stop.set()`` ends them all, and each reports how long after
the ``set()`` it noticed. Waits that the stop can wake notice in microseconds; a
``Lock.acquire`` cannot be woken by anything, so it notices within one poll slice
(50 ms by default). The worker that was in the middle of an item puts it back.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from stoppable import StopEvent, Stopped, checkpoint, queues, sync

MINUTE = 60.0


def main() -> int:
    stop = StopEvent()
    work: queue.Queue[str] = queue.Queue()
    full: queue.Queue[str] = queue.Queue(maxsize=1)
    full.put_nowait("occupied")
    lock = threading.Lock()
    lock.acquire(timeout=1)  # held by main: the lock worker waits
    semaphore = threading.Semaphore(0)
    event = threading.Event()
    condition = threading.Condition()
    barrier = threading.Barrier(2)
    item_taken = threading.Event()

    def in_the_middle_of_an_item() -> None:
        with queues.take(work, timeout=MINUTE, stop=stop):
            item_taken.set()
            sync.wait(threading.Event(), timeout=MINUTE, stop=stop)  # "processing"

    def condition_wait() -> None:
        with condition:
            sync.wait(condition, timeout=MINUTE, stop=stop, predicate=lambda: False)

    waits: dict[str, Callable[[], object]] = {
        "queue get (empty queue)": lambda: queues.get(queue.Queue(), timeout=MINUTE, stop=stop),
        "queue put (full queue)": lambda: queues.put(full, "more", timeout=MINUTE, stop=stop),
        "item in progress (take)": in_the_middle_of_an_item,
        "event wait": lambda: sync.wait(event, timeout=MINUTE, stop=stop),
        "condition wait": condition_wait,
        "semaphore acquire": lambda: sync.acquire(semaphore, timeout=MINUTE, stop=stop),
        "barrier wait": lambda: sync.wait(barrier, timeout=MINUTE, stop=stop),
        "lock acquire (polled)": lambda: sync.acquire(lock, timeout=MINUTE, stop=stop),
    }
    noticed: dict[str, float] = {}

    def worker(name: str, wait: Callable[[], object]) -> None:
        try:
            wait()
        except Stopped:
            noticed[name] = time.perf_counter()

    work.put("invoice-42")
    threads = [threading.Thread(target=worker, args=item, name=item[0]) for item in waits.items()]
    for thread in threads:
        thread.start()
    item_taken.wait(MINUTE)
    time.sleep(0.2)  # let every worker settle into its wait, for the show
    print(f"{len(threads)} workers blocked, each with a {MINUTE:.0f} s timeout; stopping them all.")
    set_at = time.perf_counter()
    stop.set(reason="demo")
    for thread in threads:
        sync.join(thread, timeout=5)
    lock.release()

    print(f"\n{'worker':<28} noticed the stop after")
    for name in waits:
        print(f"{name:<28} {(noticed[name] - set_at) * 1e3:8.3f} ms")
    print(f"\nthe item in progress went back on the queue: {list(work.queue)}")
    try:
        checkpoint(stop)
    except Stopped as stopped:
        print(f"and every later call raises at once: {stopped!r}")
    missing = set(waits) - set(noticed)
    return 1 if missing or list(work.queue) != ["invoice-42"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

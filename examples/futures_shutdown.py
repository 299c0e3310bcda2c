"""An executor whose running tasks stop on shutdown, and one task that does not.

Run it with ``.venv/bin/python examples/futures_shutdown.py``. Four tasks run in a
``stoppable.futures.ThreadPoolExecutor`` and a hundred more wait in its queue. The
tasks never pass a stop around: each runs with a stop of its own, which every
``stoppable`` call in it (and ``checkpoint()``) honours. ``shutdown(stop=True, ...)``
ends three of them within microseconds, cancels the queued ones, and reports the
fourth, which blocks in a plain ``Event.wait`` that nothing can interrupt, instead of
waiting for it forever.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from stoppable import Stopped, checkpoint, futures, queues

MINUTE = 60.0


def consume(q: queue.Queue[str]) -> str:
    return queues.get(q, timeout=MINUTE)  # no stop passed: the task's own applies


def crunch() -> int:
    total = 0
    while True:  # CPU work: checkpoint() raises Stopped once the task is stopped
        total += sum(range(1000))
        checkpoint()


def await_other(future: Future[int]) -> int:
    return futures.result(future, timeout=MINUTE)


def stubborn(release: threading.Event) -> str:
    release.wait(1.0)  # not a stoppable call: the stop cannot reach it
    return "finished on its own"


def main() -> int:
    release = threading.Event()
    executor = futures.ThreadPoolExecutor(4, thread_name_prefix="demo")
    running: dict[str, Future[object]] = {
        "queues.get": executor.submit(consume, queue.Queue()),
        "CPU loop + checkpoint()": executor.submit(crunch),
        "futures.result": executor.submit(await_other, Future()),
        "plain Event.wait": executor.submit(stubborn, release),
    }
    queued = [executor.submit(print, "never printed") for _ in range(100)]
    time.sleep(0.1)  # let every task start and block

    began = time.perf_counter()
    try:
        executor.shutdown(stop=True, timeout=0.5)
    except futures.ShutdownDeadline as err:
        print(f"shutdown reported after {time.perf_counter() - began:.2f} s: {err}")
    for name, future in running.items():
        if future.done():
            stopped = isinstance(future.exception(), Stopped)
            print(f"  {name:25s} {'stopped' if stopped else 'returned'}")
        else:
            print(f"  {name:25s} still running (reported)")
    print(f"  queued tasks cancelled: {sum(f.cancelled() for f in queued)} of {len(queued)}")
    executor.shutdown(timeout=5)  # the stubborn task ends by itself within a second
    print(f"  plain Event.wait          {running['plain Event.wait'].result()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

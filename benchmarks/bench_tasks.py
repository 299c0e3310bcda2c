"""Task queues: Dramatiq's own TimeLimit against stoppable's, side by side in one run.

Real Dramatiq workers (``dramatiq.Worker``, its worker threads and middleware) on the
in-memory ``StubBroker``, so the figures are about the middleware, not a network broker.
Two brokers are built the same way; one keeps Dramatiq's ``TimeLimit`` (its checker
thread set to look every 1 ms, its best case: the default looks once a second), the
other gets ``stoppable.integrations.dramatiq.install``.

1. The danger: 100 messages, each an actor looping ``with lock: counter += 1`` then
   ``item = q.get(); done.append(item)`` while a producer feeds its queue bursts of
   1000 items every 2 ms (the actor alternates between running hot and waiting in
   ``q.get()``), each stopped by a time limit drawn between 5 and 50 ms. Counted afterwards:
   locks left held (the actor's lock, the queue's mutex: the next ``q.put`` or
   ``q.qsize()`` on it hangs forever), items lost (taken off the queue, never appended),
   actors that ended.
2. The wait: actors blocked in ``sock.recv`` on a server that answers only after 2 s,
   with a 100 ms time limit: time from the limit to the actor's end (Dramatiq's
   exception waits for the read to return on its own).
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import statistics
import threading
import time
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from dramatiq.middleware import TimeLimit as DramatiqTimeLimit

import stoppable.integrations.dramatiq as integration
from benchmarks._harness import Table, ms

TASKS = 100
ROUNDS = 3
THREADS = 4
ANSWER_AFTER = 2.0  # the slow server's delay in the blocked-read scenario
READS = 8
BURST = 1000  # items the producer adds at once...
BURST_EVERY = 0.002  # ...this often (seconds)


class Recorder(dramatiq.Middleware):
    """When each message started and ended (outside the actor and its guard)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.started[message.message_id] = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        self.ended[message.message_id] = time.monotonic()
        if exception is not None:
            self.errors[message.message_id] = type(exception).__name__


def make_broker(use_stoppable: bool) -> tuple[StubBroker, Recorder]:
    recorder = Recorder()
    broker = StubBroker(middleware=[recorder, DramatiqTimeLimit(interval=1), Retries()])
    if use_stoppable:
        integration.install(broker)
    broker.emit_after("process_boot")  # starts Dramatiq's TimeLimit checker thread
    return broker, recorder


class Churn:
    """One actor's lock, queue, producer and record of what it consumed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counter = 0
        self.q: queue.Queue[int] = queue.Queue()
        self.done: list[int] = []
        self.produced = 0
        self.stop_producer = threading.Event()
        self.producer = threading.Thread(target=self.produce, daemon=True)
        self.producer_stuck = False

    def produce(self) -> None:
        # Bursts: the consumer alternates between running hot and waiting in q.get().
        while not self.stop_producer.is_set():
            time.sleep(BURST_EVERY)
            # A mutex the consumer left held would hang put() forever: look first.
            if not self.q.mutex.acquire(timeout=0.5):
                self.producer_stuck = True
                return
            burst = range(self.produced, self.produced + BURST)
            self.q.queue.extend(burst)
            self.produced += BURST
            self.q.not_empty.notify()
            self.q.mutex.release()

    def lost(self) -> int:
        taken = self.produced - len(self.q.queue)  # no mutex: it may be held forever
        return taken - len(self.done)


def danger(use_stoppable: bool, seed: int) -> tuple[int, int, int, int, list[float]]:
    """Locks held, queue mutexes held, items lost, actors ended, limit-to-end seconds."""
    broker, recorder = make_broker(use_stoppable)
    churns = [Churn() for _ in range(TASKS)]

    @dramatiq.actor(broker=broker, max_retries=0)
    def churn(index: int) -> None:
        state = churns[index]
        state.producer.start()
        while True:
            with state.lock:
                state.counter += 1
            item = state.q.get()
            state.done.append(item)

    rng = random.Random(seed)
    worker = dramatiq.Worker(broker, worker_threads=THREADS, worker_timeout=50)
    worker.start()
    limits = {}
    for index in range(TASKS):
        limit = rng.uniform(5, 50)
        message = churn.send_with_options(args=(index,), time_limit=limit)
        limits[message.message_id] = limit / 1000
    deadline = time.monotonic() + 120
    while len(recorder.ended) < TASKS and time.monotonic() < deadline:
        time.sleep(0.01)
    ended = len(recorder.ended)
    for state in churns:
        state.stop_producer.set()
    for state in churns:
        if state.producer.ident is not None:
            state.producer.join(1.0)
    worker.stop(timeout=1000)
    locks = sum(state.lock.locked() for state in churns)
    mutexes = sum(state.q.mutex.locked() for state in churns)
    lost = sum(max(0, state.lost()) for state in churns)
    overshoot = [recorder.ended[m] - (recorder.started[m] + limits[m]) for m in recorder.ended]
    return locks, mutexes, lost, ended, overshoot


def slow_server() -> tuple[socket.socket, threading.Event]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(60)  # ends the accept loop if close() never comes
    quit_event = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            if not quit_event.wait(ANSWER_AFTER):
                conn.sendall(b"x")
            quit_event.wait(5)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, quit_event


def blocked_read(use_stoppable: bool) -> list[float]:
    """Seconds from each actor's 100 ms limit to its end, blocked in ``recv``."""
    broker, recorder = make_broker(use_stoppable)
    listener, quit_event = slow_server()
    port = listener.getsockname()[1]

    @dramatiq.actor(broker=broker, max_retries=0, time_limit=100)
    def read() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.recv(1)

    worker = dramatiq.Worker(broker, worker_threads=READS, worker_timeout=50)
    worker.start()
    for _ in range(READS):
        read.send()
    deadline = time.monotonic() + 60
    while len(recorder.ended) < READS and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop(timeout=1000)
    quit_event.set()
    listener.close()
    return [recorder.ended[m] - (recorder.started[m] + 0.1) for m in recorder.ended]


def run() -> list[Table]:
    # Every stopped actor is a logged failure: thousands of tracebacks otherwise.
    for name in ("dramatiq", "stoppable"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    danger_table = Table(
        f"Dramatiq: {TASKS} actors looping `with lock` + `q.get(); done.append()`, "
        f"each stopped by a 5-50 ms time limit ({ROUNDS} runs: total, and per run)",
        [
            "middleware",
            "locks left held",
            "queue mutexes left held",
            "items lost",
            "ended",
            "limit to end, median / max",
        ],
    )
    for name, use in (("Dramatiq TimeLimit (async exception)", False), ("stoppable", True)):
        runs = [danger(use, seed) for seed in range(ROUNDS)]
        overshoot = [sample for run in runs for sample in run[4]]

        def total(column: int, runs: list[Any] = runs) -> str:
            values = [run[column] for run in runs]
            return f"{sum(values)} ({'/'.join(str(v) for v in values)})"

        danger_table.add(
            name,
            total(0),
            total(1),
            total(2),
            f"{sum(run[3] for run in runs)}/{TASKS * ROUNDS}",
            f"{ms(statistics.median(overshoot))} / {ms(max(overshoot))}",
        )
    danger_table.notes.append(
        "Dramatiq's checker thread looks every 1 ms here (its default: every 1 s). A held "
        "queue mutex hangs the next put() or qsize() on that queue forever. stoppable "
        "ends an actor at its next blocking call: here the next q.get() that has to wait "
        "(an actor with a backlog runs on until it has drained it)."
    )
    wait_table = Table(
        f"Dramatiq: {READS} actors blocked in `sock.recv` (the server answers after "
        f"{ANSWER_AFTER:g} s), time limit 100 ms: from the limit to the actor's end",
        ["middleware", "median", "max"],
    )
    for name, use in (("Dramatiq TimeLimit (async exception)", False), ("stoppable", True)):
        samples = blocked_read(use)
        wait_table.add(name, ms(statistics.median(samples)), ms(max(samples)))
    return [danger_table, wait_table]

"""A worker service that shuts down cleanly on SIGTERM: every item done or back in its queue.

Run it, then stop it as an orchestrator would (``kill -TERM <pid>``, or Ctrl-C)::

    python examples/service.py --workers 8 --items 40 --work 0.5

Everything runs on one ``StopEvent``:

- ``stoppable.process.stop_on_signals`` turns SIGTERM/SIGINT into ``stop.set()`` with
  the signal's name as the reason (a second signal exits hard);
- worker threads take items from a queue with ``stoppable.queues.take`` (an item whose
  worker is stopped goes back in the queue), and per item make an HTTP call (see
  ``Service.call_upstream``) and run a child process with ``stoppable.process.run``
  (a stopped child is terminated, killed after a grace period, and reaped);
- a small TCP status listener answers each connection with one JSON line (``done``,
  ``busy``, ``queued``...).

On the stop, every thread notices at once, wherever it is blocked; the service
prints how long each took (from the signal), then a last line of JSON with the
items done, the items in the queue (those never started plus those put back), and
exits with status 0. A second signal ends the process at once, without any of this.

Children run in their own session (``start_new_session``): the terminal's Ctrl-C
goes to the service only, and the service ends its children itself, so an item
interrupted by Ctrl-C goes back in the queue instead of failing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from stoppable import StopEvent, Stopped, process, queues, scope, sync

# A child per item: the work (sleeping stands in for it), then its result on stdout.
CHILD = "import sys, time; time.sleep(float(sys.argv[1])); print('processed', sys.argv[2])"

IDLE_WAIT = 60.0  # how long an idle worker waits for an item before looking again


@dataclass
class Config:
    workers: int = 4
    items: int = 20
    work: float = 0.5  # seconds each item's child runs
    item_timeout: float = 30.0  # total deadline of one item (HTTP call + child)
    kill_after: float = 0.5  # grace between SIGTERM and SIGKILL for a stopped child
    host: str = "127.0.0.1"
    port: int = 0
    lifetime: float = 24 * 3600.0  # the service stops by itself after this long


@dataclass
class Stats:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    busy: dict[str, str] = field(default_factory=dict)  # worker name -> item
    noticed: dict[str, float] = field(default_factory=dict)  # thread -> monotonic time


class Service:
    def __init__(self, config: Config, stop: StopEvent) -> None:
        self.config = config
        self.stop = stop
        self.queue: queue.Queue[str] = queue.Queue()
        for number in range(config.items):
            self.queue.put(f"item-{number:03d}")
        self.stats = Stats()
        self.listener = socket.create_server((config.host, config.port))
        self.listener.setblocking(False)
        self.threads = [
            threading.Thread(target=self.work, name=f"worker-{n}") for n in range(config.workers)
        ]
        self.threads.append(threading.Thread(target=self.serve_status, name="status"))

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return host, port

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> list[str]:
        """Wait for every thread (all within ``timeout`` s); the names of those still running."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            with contextlib.suppress(TimeoutError):  # reported below
                sync.join(thread, timeout=max(0.0, deadline - time.monotonic()))
        self.listener.close()
        return [thread.name for thread in self.threads if thread.is_alive()]

    # --- workers ------------------------------------------------------------------

    def work(self) -> None:
        name = threading.current_thread().name
        try:
            while True:
                try:
                    with queues.take(self.queue, timeout=IDLE_WAIT, stop=self.stop) as item:
                        self.stats.busy[name] = item
                        try:
                            self.handle(item)
                        except Stopped:
                            self.stats.requeued.append(item)  # take() puts it back
                            raise
                        except Exception as exc:
                            print(f"{name}: {item} failed: {exc!r}", file=sys.stderr, flush=True)
                            self.stats.failed.append(item)
                        else:
                            self.stats.done.append(item)
                        finally:
                            del self.stats.busy[name]
                except queues.QueueEmptyDeadline:
                    continue  # idle for a while: wait again
        except Stopped:
            self.stats.noticed[name] = time.monotonic()

    def handle(self, item: str) -> None:
        """One item: an HTTP call, then a child process, within one deadline."""
        with scope(timeout=self.config.item_timeout, stop=self.stop):
            self.call_upstream(item)
            process.run(
                [sys.executable, "-c", CHILD, str(self.config.work), item],
                timeout=self.config.item_timeout,
                capture_output=True,
                text=True,
                check=True,
                kill_after=self.config.kill_after,
                start_new_session=True,
            )

    def call_upstream(self, item: str) -> None:
        """The HTTP call per item: the one place it goes, once ``stoppable.http`` lands.

        It will read::

            response = http.get(f"{upstream}/items/{item}", timeout=HTTP_TIMEOUT)
            response.raise_for_status()

        inside ``handle``'s scope, so the item's deadline and the service's stop bound
        it with no more arguments. Until then the service makes no HTTP call.
        """

    # --- status listener ----------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {
            "done": len(self.stats.done),
            "failed": len(self.stats.failed),
            "busy": len(self.stats.busy),
            "queued": self.queue.qsize(),
            "workers": self.config.workers,
            "stopping": self.stop.is_set(),
        }

    def serve_status(self) -> None:
        # Plain sockets: the listener's poll includes the stop's wake-up descriptor, so
        # a stop ends it at once (stoppable.net's accept will replace this loop).
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(self.stop.fileno(), select.POLLIN)
        while not self.stop.is_set():
            ready = poller.poll(1000)  # bounded all the same
            if self.stop.is_set() or not ready:
                continue
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:  # the client went away first
                continue
            with conn:
                conn.settimeout(1.0)  # a client that does not read gets a second
                with contextlib.suppress(OSError):  # the client's loss
                    conn.sendall(json.dumps(self.status()).encode() + b"\n")
        self.stats.noticed[threading.current_thread().name] = time.monotonic()


def parse(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Config()
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--items", type=int, default=defaults.items)
    parser.add_argument("--work", type=float, default=defaults.work, help="seconds per item")
    parser.add_argument("--item-timeout", type=float, default=defaults.item_timeout)
    parser.add_argument("--kill-after", type=float, default=defaults.kill_after)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--lifetime", type=float, default=defaults.lifetime)
    args = parser.parse_args(argv)
    return Config(**{name.replace("-", "_"): value for name, value in vars(args).items()})


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    stop = StopEvent()
    signals = process.stop_on_signals(stop)
    with signals:
        service = Service(config, stop)
        service.start()
        host, port = service.address
        print(f"listening on {host}:{port}, pid {os.getpid()}", flush=True)
        if not stop.wait(config.lifetime):
            stop.set(reason="lifetime over")
        stopped_at = signals.received_at or time.monotonic()
        still_running = service.join(timeout=10)
    stats = service.stats
    print(f"stopped ({stop.reason}); each thread noticed the stop after:")
    latencies = {
        name: (noticed - stopped_at) * 1e3 for name, noticed in sorted(stats.noticed.items())
    }
    for name, latency in latencies.items():
        print(f"  {name:<12} {latency:8.3f} ms")
    queued = sorted(service.queue.queue)
    print(
        f"{len(stats.done)} items done, {len(stats.failed)} failed, {len(queued)} in the queue "
        f"({len(stats.requeued)} of them put back by stopped workers)"
    )
    summary = {
        "reason": stop.reason,
        "items": config.items,
        "done": sorted(stats.done),
        "failed": sorted(stats.failed),
        "queued": queued,
        "requeued": sorted(stats.requeued),
        "stop_latency_ms": latencies,
        "still_running": still_running,
        "shutdown_ms": (time.monotonic() - stopped_at) * 1e3,
    }
    print(json.dumps(summary), flush=True)
    return 1 if still_running else 0


if __name__ == "__main__":
    raise SystemExit(main())

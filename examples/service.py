"""A worker service that shuts down cleanly on SIGTERM: every item done or back in its queue.

Run it, then stop it as an orchestrator would (``kill -TERM <pid>``, or Ctrl-C)::

    python examples/service.py --workers 8 --items 40 --work 0.5

Its upstream is ``--upstream URL``; without one it starts a small loopback HTTP
server of its own that answers each item after ``--upstream-delay`` seconds.

Everything runs on one ``StopEvent``:

- ``stoppable.process.stop_on_signals`` turns SIGTERM/SIGINT into ``stop.set()`` with
  the signal's name as the reason (a second signal exits hard);
- worker threads take items from a queue with ``stoppable.queues.take`` (an item whose
  worker is stopped goes back in the queue), and per item make an HTTP call with
  ``stoppable.http.get`` (a stopped request is cut off in any phase, its connection
  closed) and run a child process with ``stoppable.process.run`` (a stopped child is
  terminated, killed after a grace period, and reaped), both within the item's one
  deadline;
- a small TCP status listener (``stoppable.net.accept`` / ``sendall``) answers each
  connection with one JSON line (``done``, ``busy``, ``queued``...).

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
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from stoppable import DeadlineExceeded, StopEvent, Stopped, http, net, process, queues, scope, sync

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
    upstream: str | None = None  # base URL; None: start a loopback upstream of our own
    upstream_delay: float = 0.1  # how long our own upstream takes to answer


@dataclass
class Stats:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    http_calls: list[str] = field(default_factory=list)  # items whose HTTP call succeeded
    http_stopped: list[str] = field(default_factory=list)  # items stopped mid-request
    busy: dict[str, str] = field(default_factory=dict)  # worker name -> item
    noticed: dict[str, float] = field(default_factory=dict)  # thread -> monotonic time


class Upstream:
    """A loopback HTTP server standing in for the service's upstream: slow, but it answers."""

    def __init__(self, delay: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(delay)  # the upstream's own work
                body = json.dumps({"item": self.path.rsplit("/", 1)[-1], "ok": True}).encode()
                # A stopped service hangs up mid-request: that is its right, not an error.
                with contextlib.suppress(ConnectionError):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="upstream", daemon=True
        )
        self.thread.start()


class Service:
    def __init__(self, config: Config, stop: StopEvent, upstream: str) -> None:
        self.config = config
        self.stop = stop
        self.upstream = upstream
        self.queue: queue.Queue[str] = queue.Queue()
        for number in range(config.items):
            self.queue.put_nowait(f"item-{number:03d}")
        self.stats = Stats()
        self.listener = socket.create_server((config.host, config.port))
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
        """The HTTP call per item, inside ``handle``'s scope: the item's deadline and
        the service's stop bound it with no more arguments."""
        try:
            response = http.get(f"{self.upstream}/items/{item}", timeout=self.config.item_timeout)
        except Stopped:
            self.stats.http_stopped.append(item)
            raise
        response.raise_for_status()
        self.stats.http_calls.append(item)

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
        name = threading.current_thread().name
        try:
            while True:
                try:
                    conn, _ = net.accept(self.listener, timeout=IDLE_WAIT, stop=self.stop)
                except DeadlineExceeded:
                    continue  # nobody asked for a while: wait again
                with conn, contextlib.suppress(OSError):  # a client that does not read
                    reply = json.dumps(self.status()).encode() + b"\n"
                    net.sendall(conn, reply, timeout=1.0, stop=self.stop)
        except Stopped:
            self.stats.noticed[name] = time.monotonic()


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
    parser.add_argument("--upstream", default=defaults.upstream, help="base URL of the upstream")
    parser.add_argument("--upstream-delay", type=float, default=defaults.upstream_delay)
    args = parser.parse_args(argv)
    return Config(**{name.replace("-", "_"): value for name, value in vars(args).items()})


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    stop = StopEvent()
    signals = process.stop_on_signals(stop)
    own_upstream = None if config.upstream else Upstream(config.upstream_delay)
    upstream = own_upstream.url if own_upstream is not None else str(config.upstream)
    with signals:
        service = Service(config, stop, upstream)
        service.start()
        host, port = service.address
        print(f"listening on {host}:{port}, pid {os.getpid()}", flush=True)
        if not stop.wait(config.lifetime):
            stop.set(reason="lifetime over")
        stopped_at = signals.received_at or time.monotonic()
        still_running = service.join(timeout=10)
    # The stand-in upstream is not part of the service: it ends with the process (a
    # daemon thread), rather than hold up the exit by its serve_forever poll.
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
        f"({len(stats.requeued)} of them put back by stopped workers); "
        f"{len(stats.http_calls)} HTTP calls answered, "
        f"{len(stats.http_stopped)} stopped mid-request"
    )
    summary = {
        "reason": stop.reason,
        "items": config.items,
        "done": sorted(stats.done),
        "failed": sorted(stats.failed),
        "queued": queued,
        "requeued": sorted(stats.requeued),
        "http_calls": sorted(stats.http_calls),
        "http_stopped": sorted(stats.http_stopped),
        "stop_latency_ms": latencies,
        "still_running": still_running,
        "shutdown_ms": (time.monotonic() - stopped_at) * 1e3,
    }
    print(json.dumps(summary), flush=True)
    return 1 if still_running else 0


if __name__ == "__main__":
    raise SystemExit(main())

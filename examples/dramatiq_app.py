"""A Dramatiq app whose actors call an HTTP API and Redis, stopped at once on SIGTERM.

The app (the module a worker loads)::

    REDIS_URL=redis://127.0.0.1:6379/0 python -m dramatiq examples.dramatiq_app

Each ``mirror`` message fetches a page with ``requests`` (no timeout of its own) and
stores it in Redis with redis-py: code that knows nothing of stoppable. One line,
``stoppable.integrations.dramatiq.install(broker)``, runs every actor inside a guard:
its 10 s ``time_limit`` ends the HTTP call however the server dawdles, and a worker's
SIGTERM ends it at once; the message is retried, not lost.

The demo (``REDIS_URL=... python examples/dramatiq_app.py``) serves pages from a
loopback HTTP server that hangs, starts a worker on this module, sends four messages,
sends the worker SIGTERM once they are all stuck in their HTTP call, and shows how long
the actors took to stop and that the four messages are still in Redis; then lets the
server answer, starts a second worker, and shows the four pages stored, once each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dramatiq
import redis
import requests
from dramatiq.brokers.redis import RedisBroker

import stoppable.integrations.dramatiq

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
NAMESPACE = os.environ.get("EXAMPLE_NAMESPACE", "example")

broker = RedisBroker(url=REDIS_URL, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
stoppable.integrations.dramatiq.install(broker)
dramatiq.set_broker(broker)
store = redis.Redis.from_url(REDIS_URL)


@dramatiq.actor(time_limit=10_000, min_backoff=200, max_backoff=500)
def mirror(url: str, key: str) -> None:
    """Fetch ``url`` and keep its body in Redis under ``key``."""
    store.rpush(f"{NAMESPACE}:started", key)
    # No timeout here on purpose: the guard the integration runs us in bounds it.
    body = requests.get(url).text  # noqa: STP100
    store.set(f"{NAMESPACE}:page:{key}", body)
    store.incr(f"{NAMESPACE}:stored:{key}")


# -- the demo -------------------------------------------------------------------------

answering = threading.Event()


class SlowPages(BaseHTTPRequestHandler):
    """Answers once ``answering`` is set; until then the request just hangs."""

    def do_GET(self) -> None:
        while not answering.wait(0.1):
            if stopping.is_set():
                return
        body = f"page {self.path}".encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # a client the worker's shutdown disconnected

    def log_message(self, format: str, *args: object) -> None:
        pass


stopping = threading.Event()


def start_worker() -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "REDIS_URL": REDIS_URL, "EXAMPLE_NAMESPACE": NAMESPACE}
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "examples.dramatiq_app", "-p", "1", "-t", "4"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowPages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    keys = [f"doc-{n}" for n in range(4)]

    worker = start_worker()
    for key in keys:
        mirror.send(f"{url}/{key}", key)
    wait_for(lambda: store.llen(f"{NAMESPACE}:started") >= len(keys), "the actors to start")
    print(f"{len(keys)} actors are stuck in requests.get(); sending the worker SIGTERM")
    sent = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    print(f"worker exited {time.monotonic() - sent:.1f} s after SIGTERM")
    waiting = broker.do_qsize("default")
    print(f"messages still in Redis: {waiting} of {len(keys)}")

    answering.set()
    worker = start_worker()
    stored = [f"{NAMESPACE}:stored:{key}" for key in keys]
    wait_for(lambda: all(store.get(k) for k in stored), "the pages to be stored")
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    counts = [int(store.get(k) or 0) for k in stored]
    print(f"pages stored: {sum(1 for c in counts if c)} of {len(keys)}, each once: {counts}")
    stopping.set()
    server.shutdown()


if __name__ == "__main__":
    main()

"""A crawler with a total time budget per page, stopped at once by Ctrl-C.

Run it with ``python examples/crawler.py`` (``--workers``, ``--budget``, ``--pages``).
It starts its own loopback web server, whose pages answer at different speeds:

- ``/fast/<n>``: at once;
- ``/late/<n>``: after 0.3 s, well within the budget;
- ``/drip/<n>``: headers at once, then the body one byte every 0.1 s for 3 s. A
  per-read timeout never fires on such a page (each byte comes quickly): with plain
  requests, ``timeout=1`` waits the whole 3 s, or forever for an endless drip;
- ``/never``: accepts the request and never answers.

Worker threads take URLs from a queue (``stoppable.queues.get``) and fetch each with
``stoppable.http``: the whole page, connect, headers and body together, within
``--budget`` seconds. A page over budget is abandoned when the budget is spent, and its
connection closed; the worker goes on with the next URL.

Ctrl-C (or SIGTERM) stops everything at once: ``stoppable.process.stop_on_signals``
sets one ``StopEvent`` that every worker's session and queue wait share, so a worker in
the middle of a page, or waiting for the next URL, ends within microseconds, and no
page is reported half-read. Each worker prints how long after the signal it stopped;
then the crawler prints a summary and exits with status 0.

With no arguments it runs to completion on its own in a couple of seconds.
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from stoppable import StopEvent, Stopped, http, process, queues, sync

DRIP_SECONDS = 3.0  # how long a dripping page takes, a byte every 0.1 s
LATE_SECONDS = 0.3  # how long a late page takes to answer
IDLE_WAIT = 60.0  # how long a worker waits for the next URL


# --- the loopback site ------------------------------------------------------------------


class Site:
    """A loopback web server with fast, late, dripping and silent pages."""

    def __init__(self) -> None:
        closing = threading.Event()  # ends the slow pages when the site closes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                kind = self.path.split("/")[1]
                if kind == "never":
                    closing.wait(IDLE_WAIT)  # accepts, never answers
                    return
                if kind == "late":
                    closing.wait(LATE_SECONDS)
                if kind == "drip":
                    count = int(DRIP_SECONDS / 0.1)
                    self._head(count)
                    for _ in range(count):
                        if closing.wait(0.1):
                            return
                        try:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                        except OSError:  # the crawler gave up on the page
                            return
                    return
                body = f"<html><body>page {self.path}</body></html>".encode()
                self._head(len(body))
                self.wfile.write(body)

            def _head(self, length: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self._closing = closing
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    def pages(self, count: int) -> list[str]:
        """``count`` URLs, the slow ones last (so they end up in flight together)."""
        slow = [f"{self.base}/drip/1", f"{self.base}/drip/2", f"{self.base}/never"]
        late = [f"{self.base}/late/{n}" for n in (1, 2)]
        fast = [f"{self.base}/fast/{n}" for n in range(1, count - len(slow) - len(late) + 1)]
        return (fast + late + slow)[-count:] if count > 0 else []

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        sync.join(self._thread, timeout=5)


# --- the crawler -------------------------------------------------------------------------


@dataclass
class Crawl:
    """What the workers did."""

    outcomes: Counter[str] = field(default_factory=Counter)
    stopped_at: dict[str, float] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    remaining: int = 0  # URLs not taken yet
    lock: threading.Lock = field(default_factory=threading.Lock)


def worker(
    name: str,
    urls: queue.Queue[str | None],
    budget: float,
    stop: StopEvent,
    crawl: Crawl,
    workers: int,
) -> None:
    """Fetch URLs until the queue says done, or until the stop."""
    url: str | None = None
    with http.Session(stop=stop) as session:
        try:
            while True:
                url = queues.get(urls, timeout=IDLE_WAIT, stop=stop)
                if url is None:
                    return
                with crawl.lock:
                    crawl.busy.add(name)
                    crawl.remaining -= 1
                    if len(crawl.busy) == workers and not crawl.remaining:
                        print("all workers busy", flush=True)  # on the last pages
                started = time.monotonic()
                try:
                    response = session.get(url, timeout=budget)  # the whole page
                    outcome = f"{response.status_code}"
                    detail = f"{len(response.content)} bytes"
                except http.RequestDeadline as exc:
                    outcome, detail = "over budget", f"({exc})"
                except Exception as exc:  # a refused connection, a reset...
                    outcome, detail = "failed", f"({type(exc).__name__}: {exc})"
                elapsed = time.monotonic() - started
                with crawl.lock:  # one line at a time
                    crawl.busy.discard(name)
                    crawl.outcomes[outcome if outcome != "200" else "ok"] += 1
                    print(f"  {name}  {outcome:>11}  {url}  {detail}  {elapsed:.2f} s", flush=True)
                url = None
        except Stopped:
            with crawl.lock:
                crawl.stopped_at[name] = time.monotonic()
                if url is not None:
                    crawl.outcomes["stopped mid-page"] += 1


def main(argv: list[str] | None = None) -> int:
    """Crawl the loopback site; Ctrl-C stops every worker at once."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per page, in all")
    parser.add_argument("--pages", type=int, default=12)
    args = parser.parse_args(argv)

    crawl = Crawl()
    started = time.monotonic()
    with Site() as site:
        pages = site.pages(args.pages)
        urls: queue.Queue[str | None] = queue.Queue()
        for url in pages:
            urls.put(url)
        crawl.remaining = len(pages)
        for _ in range(args.workers):
            urls.put(None)  # one "done" per worker
        print(
            f"crawling {len(pages)} pages with {args.workers} workers, "
            f"{args.budget:g} s budget per page (Ctrl-C stops everything)",
            flush=True,
        )
        signals = process.stop_on_signals()
        with signals as stop:
            threads = [
                threading.Thread(
                    target=worker,
                    args=(f"worker {n}", urls, args.budget, stop, crawl, args.workers),
                    name=f"worker {n}",
                )
                for n in range(1, args.workers + 1)
            ]
            for thread in threads:
                thread.start()
            limit = len(pages) * args.budget + 10  # even if every page ran out its budget
            for thread in threads:
                sync.join(thread, timeout=limit)
        if signals.received_at is not None and signals.received is not None:
            for name, when in sorted(crawl.stopped_at.items()):
                latency = (when - signals.received_at) * 1000
                print(f"{name} stopped {latency:.1f} ms after {signals.received.name}")
    done = sum(crawl.outcomes.values()) - crawl.outcomes["stopped mid-page"]
    print(
        f"done in {time.monotonic() - started:.1f} s: {crawl.outcomes['ok']} ok, "
        f"{crawl.outcomes['over budget']} over budget, {crawl.outcomes['failed']} failed, "
        f"{len(pages) - done} not crawled"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""An asyncio server whose handlers call a blocking client in threads; SIGTERM stops them all.

Run it, talk to it, then stop it as an orchestrator would::

    python examples/aio_server.py --port 8470 &
    printf 'alice\\n' | nc 127.0.0.1 8470       # waits on the slow upstream...
    kill -TERM %1                              # ...every handler and thread ends at once

Each connection sends one line, a key; the handler looks it up with a *blocking*
client that knows nothing of asyncio or stoppable (``urllib.request.urlopen``), run
in a worker thread through ``stoppable.aio.to_thread``, and writes the answer back.
The upstream is ``--upstream URL``; without one the server starts a stand-in on
loopback that answers after ``--upstream-delay`` seconds (30 by default: slow).

One ``StopEvent`` drives everything on SIGTERM (or SIGINT):

- ``loop.add_signal_handler`` sets it, in the loop's thread (never inside a real
  signal handler);
- every ``aio.to_thread`` call was given it as ``stop``: each worker thread runs
  inside a ``stoppable.guard`` with a child of it, so ``urlopen``, blocked in a
  plain ``socket.recv``, raises ``Stopped`` at once and the thread ends;
- every handler runs in ``aio.cancel_on(stop)``: one waiting for its client's line
  (an idle connection) is cancelled at once too;
- ``main`` waits with ``await aio.wait(stop)``, closes the listener, waits for the
  handlers (each tells its client it is shutting down), and prints how long that
  took, with the number of threads still running (0), as one JSON line.

asyncio.run() then returns at once: no thread is left for it to wait for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from stoppable import StopEvent, Stopped, aio

REQUEST_TIMEOUT = 60.0  # each lookup's total deadline, in its thread


@dataclass
class Stats:
    threads: int = 0  # lookups running in a worker thread now
    lock: threading.Lock = field(default_factory=threading.Lock)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    stopped: int = 0
    answered: int = 0
    in_flight: int = 0  # handlers running when the signal came
    signalled_at: float | None = None


def lookup(upstream: str, key: str, stats: Stats) -> str:
    """The blocking client: plain urllib, no stop, no deadline of its own."""
    with stats.lock:
        stats.threads += 1
    try:
        with urllib.request.urlopen(f"{upstream}/{key}", timeout=REQUEST_TIMEOUT) as response:
            return str(response.read().decode())
    finally:
        with stats.lock:
            stats.threads -= 1


async def handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream: str,
    stop: StopEvent,
    stats: Stats,
) -> None:
    try:
        async with aio.cancel_on(stop):
            key = (await reader.readline()).decode().strip()
            if not key:
                return
            value = await aio.to_thread(
                lookup, upstream, key, stats, timeout=REQUEST_TIMEOUT, stop=stop
            )
        writer.write(f"{key}: {value}\n".encode())
        stats.answered += 1
    except Stopped as stopped:
        stats.stopped += 1
        writer.write(f"unavailable: {stopped}\n".encode())
    except TimeoutError:
        writer.write(b"unavailable: the upstream timed out\n")
    finally:
        writer.close()


async def stand_in_upstream(delay: float, stop: StopEvent) -> asyncio.Server:
    """A slow HTTP upstream on loopback: one answer per request, after ``delay`` s."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with aio.cancel_on(stop):
                request = await reader.readline()
                while (await reader.readline()).strip():  # the headers
                    pass
                key = request.split()[1].decode().lstrip("/")
                print(f"upstream: request for {key}", flush=True)
                await asyncio.sleep(delay)
                body = f"value of {key}".encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
        except (Stopped, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def main(args: argparse.Namespace) -> int:
    stop = StopEvent()
    stats = Stats()

    def on_signal(name: str) -> None:  # in the loop's thread, not in a signal handler
        stats.signalled_at = time.perf_counter()
        stats.in_flight = len(stats.handlers)
        stop.set(name)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)

    upstream_server = None
    upstream = args.upstream
    if upstream is None:
        upstream_server = await stand_in_upstream(args.upstream_delay, stop)
        host, port = upstream_server.sockets[0].getsockname()[:2]
        upstream = f"http://{host}:{port}"

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        stats.handlers.add(task)
        try:
            await handle(reader, writer, upstream, stop, stats)
        finally:
            stats.handlers.discard(task)

    server = await asyncio.start_server(on_connect, "127.0.0.1", args.port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}, upstream {upstream}", flush=True)

    await aio.wait(stop)
    server.close()
    if stats.handlers:
        await asyncio.wait(set(stats.handlers))
    if upstream_server is not None:
        upstream_server.close()
    took = time.perf_counter() - (stats.signalled_at or time.perf_counter())
    print(
        json.dumps(
            {
                "reason": stop.reason,
                "handlers_in_flight": stats.in_flight,
                "handlers_stopped": stats.stopped,
                "answered": stats.answered,
                "threads_running": stats.threads,
                "stop_ms": round(took * 1000, 1),  # from the signal to every handler ended
            }
        ),
        flush=True,
    )
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--upstream", help="the upstream's base URL (default: a stand-in)")
    parser.add_argument(
        "--upstream-delay", type=float, default=30.0, help="the stand-in's answer delay (s)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))

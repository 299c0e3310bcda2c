"""stoppable.http beside requests, urllib3 and httpx: speed, stop latency, deadline overshoot.

Every client talks to the same loopback HTTP/1.1 server, run as a separate process (so
it does not compete for this process's GIL), with the same timeout. Speed figures are
ratios against the plain library measured in the same run, rounds interleaved. Stop
latency is from ``stop.set()`` to the blocked request having raised ``Stopped`` in its
thread (the connection closed, every layer unwound), per phase of a request.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import requests
import urllib3
from urllib3.util.retry import Retry

from benchmarks._harness import Table, percentile, verdict
from stoppable import StopEvent, Stopped, http, net

LONG = 60.0
TIMEOUT = 5.0  # the timeout every client gets where none should fire
KEEPALIVE_REQUESTS = 1500  # per round
ROUNDS = 5
DOWNLOAD_ROUNDS = 15  # a download takes ~0.1 s: more rounds against the noise
DOWNLOAD_BYTES = 512 << 20  # per round
DRIP_TIMEOUT = 1.0  # the overshoot rows: each client's timeout ...
DRIP_SECONDS = 4.0  # ... on a body that takes this long, a byte every 0.1 s
LATENCY_RUNS = 100  # per phase

# The server, run as a separate process: prints its port, then serves keep-alive
# connections, a thread each. /ok: a 2-byte body; /bytes?n=N: N bytes; /silent: never
# answers; /drip?interval=S&count=N: one byte every S seconds (Content-Length: N);
# /status: 503.
_SERVER = r"""
import socket, sys, threading, time
from urllib.parse import parse_qs, urlsplit

listener = socket.create_server(("127.0.0.1", 0), backlog=512)
print(listener.getsockname()[1], flush=True)
BLOCK = memoryview(bytes(1 << 20))

def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            parts = urlsplit(head.split(b" ", 2)[1].decode())
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/ok":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif parts.path == "/bytes":
                left = int(query["n"])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % left)
                while left:
                    step = min(left, len(BLOCK))
                    conn.sendall(BLOCK[:step])
                    left -= step
            elif parts.path == "/silent":
                while conn.recv(65536):
                    pass
                return
            elif parts.path == "/drip":
                count, interval = int(query["count"]), float(query["interval"])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % count)
                for index in range(count):
                    if index:
                        time.sleep(interval)
                    conn.sendall(b"x")
            else:
                conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    finally:
        conn.close()

while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@contextlib.contextmanager
def _server() -> Iterator[str]:
    """The server process; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.communicate(timeout=LONG)


def _settle(seconds: float = 0.02) -> None:
    # Let a just-started request reach its blocking phase: a benchmark may sleep.
    time.sleep(seconds)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


# --- requests per second on keep-alive, and download throughput ----------------------------


def _rate(call: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - started)


def _paired(
    plain: Callable[[], float], ours: Callable[[], float], rounds: int = ROUNDS
) -> tuple[float, float, float]:
    """Median plain figure, median stoppable figure, median of the per-round ratios."""
    plains, ourses, ratios = [], [], []
    for _ in range(rounds):
        p, o = plain(), ours()
        plains.append(p)
        ourses.append(o)
        ratios.append(o / p)
    return statistics.median(plains), statistics.median(ourses), statistics.median(ratios)


def speed_table(base: str) -> Table:
    """Requests per second on one keep-alive connection; download throughput."""
    table = Table(
        "stoppable.http speed beside the plain client (loopback, same server, same run)",
        ["measure", "plain", "stoppable.http", "ratio", "target >= 0.95"],
    )
    url = f"{base}/ok"
    plain_session, our_session = requests.Session(), http.Session()
    # Every request below passes its timeout: the pool-level default is not needed.
    plain_pool = urllib3.PoolManager()
    our_pool = http.PoolManager()
    with plain_session, our_session, contextlib.ExitStack() as stack:
        stack.callback(plain_pool.clear)
        stack.callback(our_pool.clear)
        plain_session.get(url, timeout=TIMEOUT)
        our_session.get(url, timeout=TIMEOUT)
        p, o, ratio = _paired(
            lambda: _rate(lambda: plain_session.get(url, timeout=TIMEOUT), KEEPALIVE_REQUESTS),
            lambda: _rate(lambda: our_session.get(url, timeout=TIMEOUT), KEEPALIVE_REQUESTS),
        )
        table.add(
            "requests.Session vs http.Session, req/s (keep-alive)",
            f"{p:.0f}",
            f"{o:.0f}",
            f"{ratio:.3f}",
            verdict(ratio >= 0.95),
        )
        p, o, ratio = _paired(
            lambda: _rate(
                lambda: plain_pool.request("GET", url, timeout=TIMEOUT), KEEPALIVE_REQUESTS
            ),
            lambda: _rate(
                lambda: our_pool.request("GET", url, timeout=TIMEOUT), KEEPALIVE_REQUESTS
            ),
        )
        table.add(
            "urllib3.PoolManager vs http.PoolManager, req/s (keep-alive)",
            f"{p:.0f}",
            f"{o:.0f}",
            f"{ratio:.3f}",
            verdict(ratio >= 0.95),
        )
        big = f"{base}/bytes?n={DOWNLOAD_BYTES}"

        def download(session: requests.Session) -> float:
            started = time.perf_counter()
            with session.get(big, stream=True, timeout=LONG) as response:
                received = sum(len(chunk) for chunk in response.iter_content(1 << 20))
            assert received == DOWNLOAD_BYTES
            return received / (time.perf_counter() - started) / 1e6

        download(plain_session)
        download(our_session)
        p, o, ratio = _paired(
            lambda: download(plain_session), lambda: download(our_session), DOWNLOAD_ROUNDS
        )
        table.add(
            f"download {DOWNLOAD_BYTES >> 20} MiB (iter_content), MB/s",
            f"{p:.0f}",
            f"{o:.0f}",
            f"{ratio:.3f}",
            verdict(ratio >= 0.95),
        )
    with httpx.Client() as client:
        rate = statistics.median(
            _rate(lambda: client.get(url, timeout=TIMEOUT), KEEPALIVE_REQUESTS) for _ in range(3)
        )
    table.notes.append(
        f"For reference, httpx.Client on the same server: {rate:.0f} req/s. Each figure is "
        f"the median of interleaved rounds ({ROUNDS} of {KEEPALIVE_REQUESTS} requests; "
        f"{DOWNLOAD_ROUNDS} downloads); the ratio is the median of the per-round ratios."
    )
    return table


# --- stop latency per phase -----------------------------------------------------------------


def _latency(call: Callable[[StopEvent], object], runs: int, settle: float = 0.01) -> list[float]:
    """Seconds from ``stop.set()`` until ``call(stop)``, blocked, raised ``Stopped``.

    One run more than asked for, the first not counted: it pays for first use (a TLS
    context loading its CA bundle, a resolver thread starting...), not for the stop.
    """
    samples = []
    for _ in range(runs + 1):
        stop = StopEvent()
        ended: list[float] = []

        def requester(stop: StopEvent = stop, ended: list[float] = ended) -> None:
            try:
                call(stop)
            except Stopped:
                ended.append(time.perf_counter())

        thread = threading.Thread(target=requester)
        thread.start()
        _settle(settle)
        set_at = time.perf_counter()
        stop.set()
        thread.join(LONG)
        if not ended:
            raise RuntimeError("the request was not stopped")
        samples.append(ended[0] - set_at)
    return samples[1:]


@contextlib.contextmanager
def _full_backlog() -> Iterator[int]:
    """A port whose connects hang: a listener with a full accept queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    try:
        yield listener.getsockname()[1]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextlib.contextmanager
def _never_accepting() -> Iterator[int]:
    """A port whose TCP connect succeeds (the backlog) and whose TLS hello is never read."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        yield listener.getsockname()[1]


@contextlib.contextmanager
def _stuck_resolver() -> Iterator[None]:
    release = threading.Event()

    def resolver(host: Any, port: Any, *args: Any) -> list[Any]:
        release.wait(LONG)
        return socket.getaddrinfo("127.0.0.1", port, *args)

    previous = net.set_resolver(resolver)
    try:
        yield
    finally:
        net.set_resolver(previous)
        release.set()


def latency_table(base: str) -> Table:
    """Stop latency in each phase of a request (p50/p99), target p99 < 1 ms."""
    table = Table(
        f"Stop latency of a blocked stoppable.http request, by phase ({LATENCY_RUNS} runs each)",
        ["phase", "p50", "p99", "max", "target p99 < 1 ms"],
    )

    def add(phase: str, samples: list[float]) -> None:
        p99 = percentile(samples, 0.99)
        table.add(
            phase,
            _ms(statistics.median(samples)),
            _ms(p99),
            _ms(max(samples)),
            verdict(p99 < 1e-3),
        )

    with _stuck_resolver():
        add(
            "name lookup (resolver stuck)",
            _latency(lambda s: http.get("http://stuck.test/", timeout=LONG, stop=s), LATENCY_RUNS),
        )
    with _full_backlog() as port:
        add(
            "connect (accept queue full)",
            _latency(
                lambda s: http.get(f"http://127.0.0.1:{port}/", timeout=LONG, stop=s),
                LATENCY_RUNS,
            ),
        )
    with _never_accepting() as port:
        add(
            "TLS handshake (never answered)",
            _latency(
                lambda s: http.get(f"https://127.0.0.1:{port}/", timeout=LONG, stop=s),
                LATENCY_RUNS,
            ),
        )
    with http.Session(timeout=LONG) as session:
        add(
            "waiting for the headers",
            _latency(lambda s: session.get(f"{base}/silent", stop=s), LATENCY_RUNS),
        )
        drip = f"{base}/drip?interval=1&count=100"
        add("reading the body", _latency(lambda s: session.get(drip, stop=s), LATENCY_RUNS))

        def streamed(stop: StopEvent) -> None:
            with session.get(drip, stream=True, stop=stop) as response:
                for _ in response.iter_content(1):
                    pass

        add("streamed body (iter_content)", _latency(streamed, LATENCY_RUNS))
    with http.Session(timeout=LONG) as session:
        session.mount("http://", http.HTTPAdapter(pool_maxsize=1, pool_block=True))
        with session.get(f"{base}/drip?interval=1&count=100", stream=True):
            add(
                "waiting for a pooled connection",
                _latency(lambda s: session.get(f"{base}/ok", stop=s), LATENCY_RUNS),
            )
    retry = Retry(total=3, status_forcelist=[503], backoff_factor=10)
    with http.Session(timeout=LONG) as session:
        session.mount("http://", http.HTTPAdapter(max_retries=retry))
        add(
            "retry backoff",
            _latency(lambda s: session.get(f"{base}/status", stop=s), LATENCY_RUNS, 0.03),
        )
    table.notes.append(
        "From stop.set() in the main thread to the request's thread catching Stopped: the "
        "wait woken through the StopEvent's descriptor, the connection closed, and every "
        "layer (http.client, urllib3, requests) unwound. Plain requests, urllib3 and httpx "
        "have no way to stop a request in flight."
    )
    return table


# --- deadline overshoot on a dripping body ----------------------------------------------------


def _timed(call: Callable[[], Any]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        result = call()
        outcome = f"{getattr(result, 'status_code', getattr(result, 'status', '?'))} OK, whole body"
    except Exception as exc:
        outcome = type(exc).__name__
    return time.perf_counter() - started, outcome


def overshoot_table(base: str) -> Table:
    """Each client with the same timeout on a body that drips past it, and on a silent server."""
    count = int(DRIP_SECONDS / 0.1)
    drip = f"{base}/drip?interval=0.1&count={count}"
    silent = f"{base}/silent"
    t = DRIP_TIMEOUT
    table = Table(
        f"The same timeout={t:g} s on a body that drips a byte every 0.1 s for "
        f"{DRIP_SECONDS:g} s, and on a server that never answers",
        ["client", "dripping body", "never answers"],
    )
    runs = []
    for _ in range(10):
        elapsed, outcome = _timed(lambda: http.get(drip, timeout=t))
        runs.append((elapsed, outcome))
    worst = max(elapsed for elapsed, _ in runs)
    silent_elapsed, silent_outcome = _timed(lambda: http.get(silent, timeout=t))
    table.add(
        "stoppable.http.get",
        f"{worst:.3f} s, {runs[0][1]} (worst of 10; overshoot {(worst - t) * 1e3:.1f} ms, "
        f"target < 50 ms: {verdict(worst - t < 0.05)})",
        f"{silent_elapsed:.3f} s, {silent_outcome}",
    )
    manager = urllib3.PoolManager()
    with httpx.Client() as client:
        for name, call in (
            ("requests.get", lambda url: requests.get(url, timeout=t)),
            (
                "urllib3 PoolManager, Timeout(total=...)",
                lambda url: manager.request("GET", url, timeout=urllib3.Timeout(total=t)),
            ),
            ("httpx.Client.get", lambda url: client.get(url, timeout=t)),
        ):
            drip_elapsed, drip_outcome = _timed(functools.partial(call, drip))
            silent_elapsed, silent_outcome = _timed(functools.partial(call, silent))
            table.add(
                name,
                f"{drip_elapsed:.3f} s, {drip_outcome}",
                f"{silent_elapsed:.3f} s, {silent_outcome}",
            )
    manager.clear()
    table.notes.append(
        "A per-read timeout never fires on a body whose bytes each come in time: the plain "
        "clients wait for the whole body, however long the server makes it. urllib3's "
        "default retries repeat a timed-out read on a silent server."
    )
    return table


def run() -> list[Table]:
    """All the HTTP benchmark tables."""
    with _server() as base:
        return [speed_table(base), latency_table(base), overshoot_table(base)]

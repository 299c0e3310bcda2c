"""stoppable.net: stop latency, bulk throughput, ping-pong overhead, one deadline for connect.

Every ratio is against the raw socket call measured in the same run, interleaved, with
the peer in a separate process (so the peer does not compete for this process's GIL).
Stop latency is from ``stop.set()`` to the blocked call having raised, as in
``bench_core``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from benchmarks._harness import Table, ms, p50_p99, percentile, verdict
from stoppable import StopEvent, Stopped, net

LONG = 60.0
BULK_BYTES = 1 << 30  # 1 GiB per run
CHUNK = 64 * 1024

# The peer, run as a separate process: "sink PORT N" connects and sends N bytes, then
# closes; "echo" listens, prints its port, and echoes one connection until EOF.
_PEER = r"""
import socket, sys
if sys.argv[1] == "send":
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    left, block = int(sys.argv[3]), memoryview(bytes(1 << 20))
    while left:
        step = min(left, len(block))
        sock.sendall(block[:step])
        left -= step
    sock.close()
else:
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(65536):
        conn.sendall(data)
"""


def _settle(seconds: float = 0.003) -> None:
    # Give a just-started waiter time to block: a benchmark may sleep, a test may not.
    time.sleep(seconds)


# --- stop latency ------------------------------------------------------------------------


def _latency(block: Callable[[StopEvent], object], runs: int, settle: float = 0.003) -> list[float]:
    """Seconds from ``stop.set()`` to ``block(stop)`` having raised ``Stopped``."""
    samples: list[float] = []
    for _ in range(runs):
        stop = StopEvent()
        ended: list[float] = []
        failure: list[BaseException] = []

        def waiter(
            stop: StopEvent = stop,
            ended: list[float] = ended,
            failure: list[BaseException] = failure,
        ) -> None:
            try:
                result = block(stop)
                failure.append(RuntimeError(f"returned {result!r} instead of being stopped"))
            except Stopped:
                ended.append(time.perf_counter())
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        _settle(settle)
        started = time.perf_counter()
        stop.set()
        thread.join(LONG)
        if thread.is_alive():
            raise RuntimeError(f"a blocked call was not stopped within {LONG:g} s")
        if failure:
            raise RuntimeError("a blocked call was not stopped") from failure[0]
        samples.append(ended[0] - started)
    return samples


@contextlib.contextmanager
def _holding_server(ssl_context: ssl.SSLContext | None = None) -> Iterator[tuple[str, int]]:
    """A listener that accepts and holds every connection (never answers) until closed."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.settimeout(LONG)  # accept() follows select(); connections still come out blocking
    held: list[socket.socket] = []
    quit_r, quit_w = socket.socketpair()

    def accept_loop() -> None:
        import select

        while True:
            # Idle for LONG: give up accepting (the backlog still takes connections).
            ready, _, _ = select.select([listener, quit_r], [], [], LONG)
            if quit_r in ready or not ready:
                return
            conn, _ = listener.accept()
            held.append(conn)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        quit_w.send(b"x")
        thread.join(LONG)
        for conn in held:
            conn.close()
        for sock in (listener, quit_r, quit_w):
            sock.close()
        if thread.is_alive():
            raise RuntimeError(f"the holding server did not quit within {LONG:g} s")


@contextlib.contextmanager
def _full_backlog() -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full: connects to it hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = [socket.create_connection(listener.getsockname(), 5)]
    try:
        yield listener.getsockname()
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server never answers: nothing to verify
    return context


def latency_table() -> Table:
    table = Table(
        "Stop latency: one thread blocked in stoppable.net, then stopped (p50 / p99)",
        ["blocked in", "runs", "latency p50 / p99", "target p50 < 100 us, p99 < 1 ms"],
    )
    runs = 200
    rows: list[tuple[str, list[float]]] = []
    with _holding_server() as silent, socket.create_connection(silent, 5) as quiet:
        quiet.settimeout(None)
        rows.append(
            (
                "net.recv (peer silent)",
                _latency(lambda s: net.recv(quiet, 10, timeout=LONG, stop=s), runs),
            )
        )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        rows.append(
            (
                "net.accept (no client)",
                _latency(lambda s: net.accept(listener, timeout=LONG, stop=s), runs),
            )
        )
    with _holding_server() as never_reads:
        sender = socket.socket()
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sender.settimeout(LONG)
        sender.connect(never_reads)
        sender.settimeout(None)  # noqa: STP101 - net.sendall measured on a blocking socket
        megabyte = bytes(1 << 20)

        def sendall(stop: StopEvent) -> object:
            with contextlib.suppress(BlockingIOError):  # fill the buffers first
                while True:
                    sender.send(megabyte[:65536], socket.MSG_DONTWAIT)
            net.sendall(sender, megabyte, timeout=LONG, stop=stop)
            return None

        rows.append(("net.sendall (peer never reads)", _latency(sendall, runs)))
        sender.close()
    with _full_backlog() as full:
        rows.append(
            (
                "net.connect (accept queue full)",
                _latency(lambda s: net.connect(full, timeout=LONG, stop=s), runs),
            )
        )
    context = _client_context()
    with _holding_server() as mute:
        rows.append(
            (
                "net.connect TLS handshake (server mute)",
                _latency(
                    lambda s: net.connect(mute, timeout=LONG, stop=s, ssl_context=context),
                    runs,
                    settle=0.01,
                ),
            )
        )
    for name, samples in rows:
        met = statistics.median(samples) < 100e-6 and percentile(samples, 0.99) < 1e-3
        table.add(name, len(samples), p50_p99(samples), verdict(met))

    # The reference: what users write by hand, a short socket timeout and a flag.
    def hand_written(stop: threading.Event, sock: socket.socket) -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                sock.recv(10)
        raise Stopped()

    with _holding_server() as silent, socket.create_connection(silent, 5) as quiet:
        samples = _latency(lambda s: hand_written(s, quiet), 20)  # type: ignore[arg-type]
    table.add(
        "hand-written: recv with settimeout(0.1), flag checked", 20, p50_p99(samples), "(reference)"
    )
    return table


# --- throughput and per-call overhead ----------------------------------------------------


def _peer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _PEER, *args], stdout=subprocess.PIPE, text=True)


def _bulk_receive(receive_into: Callable[[socket.socket, memoryview], int]) -> float:
    """Bytes per second received from a peer process sending ``BULK_BYTES``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = _peer("send", str(listener.getsockname()[1]), str(BULK_BYTES))
        listener.settimeout(LONG)  # the connection comes out blocking all the same
        conn, _ = listener.accept()
        buffer = memoryview(bytearray(CHUNK))
        total = 0
        started = time.perf_counter()
        with conn:
            while count := receive_into(conn, buffer):
                total += count
        elapsed = time.perf_counter() - started
        peer.wait(LONG)
    if total != BULK_BYTES:
        raise RuntimeError(f"received {total} bytes, expected {BULK_BYTES}")
    return total / elapsed


def throughput_table() -> Table:
    table = Table(
        "Bulk receive over loopback: 1 GiB in 64 KiB recv_into calls, sender in another process",
        ["receiver", "throughput", "ratio to raw", "target >= 0.9"],
    )
    stop = StopEvent()

    def raw(conn: socket.socket, buffer: memoryview) -> int:
        return conn.recv_into(buffer)

    def ours(conn: socket.socket, buffer: memoryview) -> int:
        return net.recv_into(conn, buffer, timeout=LONG, stop=stop)

    raw_runs, our_runs = [], []
    for _ in range(3):  # interleaved, best of three: both see the same machine load
        raw_runs.append(_bulk_receive(raw))
        our_runs.append(_bulk_receive(ours))
    base, value = max(raw_runs), max(our_runs)
    table.add("socket.recv_into (raw)", f"{base / 2**30:.2f} GiB/s", "1.00", "")
    table.add(
        "net.recv_into (timeout, StopEvent)",
        f"{value / 2**30:.2f} GiB/s",
        f"{value / base:.2f}",
        verdict(value / base >= 0.9),
    )
    return table


def _round_trips(sock: socket.socket, exchange: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        exchange()
    return count / (time.perf_counter() - started)


def ping_pong_table() -> Table:
    table = Table(
        "1-byte ping-pong with an echo process (sendall + recv per round trip)",
        ["calls", "round trips per second", "ratio to raw", "target >= 0.8"],
    )
    peer = _peer("echo")
    assert peer.stdout is not None
    port = int(peer.stdout.readline())
    sock = socket.create_connection(("127.0.0.1", port), 5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)  # noqa: STP101 - the raw baseline is a plain blocking socket
    stop = StopEvent()

    def raw() -> object:
        sock.sendall(b"x")
        return sock.recv(1)  # noqa: STP102 - the raw baseline measured

    def ours() -> object:
        net.sendall(sock, b"x", timeout=LONG, stop=stop)
        return net.recv(sock, 1, timeout=LONG, stop=stop)

    count = 10_000
    _round_trips(sock, raw, 1000)  # warm up
    raw_runs, our_runs = [], []
    for _ in range(5):
        raw_runs.append(_round_trips(sock, raw, count))
        our_runs.append(_round_trips(sock, ours, count))
    sock.close()
    peer.wait(LONG)
    base, value = max(raw_runs), max(our_runs)
    table.add("socket.sendall + socket.recv (raw)", f"{base:,.0f}", "1.00", "")
    table.add(
        "net.sendall + net.recv (timeout, StopEvent)",
        f"{value:,.0f}",
        f"{value / base:.2f}",
        verdict(value / base >= 0.8),
    )
    table.notes.append(
        f"Best of 5 runs of {count:,} round trips each, interleaved. Each net.recv here "
        "finds no data yet, so it takes the full path: a try, then poll on the socket and "
        "the stop's wake-up descriptor."
    )
    return table


# --- connect: one deadline ------------------------------------------------------------


def _elapsed(call: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        call()
        outcome = "connected"
    except TimeoutError:
        outcome = "timeout"
    except OSError as exc:
        outcome = type(exc).__name__
    return time.perf_counter() - started, outcome


def connect_table() -> Table:
    table = Table(
        "connect(timeout=0.5) when the network misbehaves",
        ["case", "socket.create_connection", "net.connect", "net.connect within the timeout"],
    )
    timeout = 0.5
    stuck_for = 3.0
    with _full_backlog() as first, _full_backlog() as second:
        answer = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", first),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", second),
        ]

        def two_addresses(*args: Any) -> list[Any]:
            return answer

        with mock.patch("socket.getaddrinfo", two_addresses):
            raw, raw_outcome = _elapsed(lambda: socket.create_connection(("two.test", 80), timeout))
        ours, our_outcome = _elapsed(
            lambda: net.connect(("two.test", 80), timeout=timeout, resolver=two_addresses)
        )
    table.add(
        "a name with 2 addresses, both hanging",
        f"{raw:.2f} s ({raw_outcome})",
        f"{ours:.2f} s ({our_outcome})",
        verdict(ours < timeout + 0.1),
    )
    release = threading.Event()

    def stuck(*args: Any) -> list[Any]:
        # As a resolver whose DNS server never answers: it gives up after a while.
        release.wait(stuck_for)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with mock.patch("socket.getaddrinfo", stuck):
        raw, raw_outcome = _elapsed(lambda: socket.create_connection(("stuck.test", 80), timeout))
    ours, our_outcome = _elapsed(
        lambda: net.connect(("stuck.test", 80), timeout=timeout, resolver=stuck)
    )
    release.set()
    table.add(
        f"resolver stuck {stuck_for:g} s",
        f"{raw:.2f} s ({raw_outcome})",
        f"{ours:.2f} s ({our_outcome})",
        verdict(ours < timeout + 0.1),
    )
    table.notes.append(
        "socket.create_connection is given the same resolver by patching "
        "socket.getaddrinfo (for this comparison only); net.connect takes it through "
        "its resolver= hook."
    )
    return table


# --- mass wake ----------------------------------------------------------------------


def mass_wake_table() -> Table:
    table = Table(
        "1000 threads blocked in net.recv, one set(): time until every call has returned",
        ["waiters blocked in", "all returned after", "vs raw Event floor"],
    )
    count, runs = 1000, 3
    pairs = [socket.socketpair() for _ in range(count)]
    floor, ours = [], []
    try:
        for _ in range(runs):
            raw = threading.Event()
            floor.append(_mass(count, lambda i, raw=raw: raw.wait(), raw.set))  # type: ignore[misc]
            stop = StopEvent()
            ours.append(
                _mass(
                    count,
                    lambda i, stop=stop: net.recv(pairs[i][0], 1, timeout=LONG, stop=stop),  # type: ignore[misc]
                    stop.set,
                )
            )
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    base, value = statistics.median(floor), statistics.median(ours)
    table.add("threading.Event.wait() (the floor)", ms(base), "1.00")
    table.add("net.recv on a socketpair, StopEvent", ms(value), f"{value / base:.2f}")
    table.notes.append(f"Median of {runs} runs each, interleaved.")
    return table


def _mass(count: int, block: Callable[[int], object], release: Callable[[], None]) -> float:
    ready = threading.Barrier(count + 1)
    ended: list[float] = []

    def waiter(index: int) -> None:
        ready.wait(LONG)
        with contextlib.suppress(Stopped):
            block(index)
        ended.append(time.perf_counter())

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait(LONG)
    time.sleep(0.3)  # all blocked
    started = time.perf_counter()
    release()
    for thread in threads:
        thread.join(LONG)
    return max(ended) - started


def run() -> list[Table]:
    """All stoppable.net benchmark tables."""
    return [
        latency_table(),
        throughput_table(),
        ping_pong_table(),
        connect_table(),
        mass_wake_table(),
    ]

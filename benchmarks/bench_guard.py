"""stoppable.guard: speed outside and inside a guard, stop latency, deadline overshoot, botocore.

- Speed outside: socket ping-pong and bulk receive, plain socket calls, in a process
  that never entered a guard (nothing installed: a fresh interpreter) against one that
  did (a guard entered and left first). Each is its own child process, alternated, best
  of the runs: "never installed" is real, not a guess about what an uninstall leaves.
- Speed inside: the same plain socket calls inside ``guard(timeout=..., stop=...)``,
  in the process that used one, against the process that never did.
- Stop latency: a thread blocked in a plain ``sock.recv``, ``Condition.wait()`` or
  ``time.sleep`` inside ``guard(stop=stop)``; ``stop.set()`` until it raised.
- Deadline overshoot: how late ``guard(timeout=0.05)`` ends those same calls.
- botocore: ``list_buckets`` at a silent loopback endpoint, inside ``guard(timeout=1)``,
  beside botocore alone (its own limits: 60 s reads, retried) in a child process killed
  after a bounded wait, and beside botocore with ``read_timeout=1`` (the usual fix,
  which its retries multiply, botocore#634).
"""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import stoppable
from benchmarks._harness import Table, ms, p50_p99, percentile, verdict
from benchmarks.bench_net import _bulk_receive, _holding_server, _latency, _peer, _round_trips
from stoppable import DeadlineExceeded, StopEvent
from stoppable._guard import _install

LONG = 60.0
PING_PONGS = 10_000
CHILD_RUNS = 3  # child processes of each kind, alternated
PLAIN_BOTOCORE_CAP = 10.0  # how long plain botocore is given before it is killed


# --- speed: child processes -----------------------------------------------------------


def _ping_pong_rate(inside: bool) -> float:
    """Round trips per second with an echo process, plain ``sendall`` + ``recv``."""
    peer = _peer("echo")
    assert peer.stdout is not None
    port = int(peer.stdout.readline())
    sock = socket.create_connection(("127.0.0.1", port), 5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)  # noqa: STP101 - the plain blocking socket a client uses

    def exchange() -> object:
        sock.sendall(b"x")  # measured plain, as a client calls it
        return sock.recv(1)  # noqa: STP102 - measured plain, as a client calls it

    _round_trips(sock, exchange, 1000)  # warm up
    if inside:
        with stoppable.guard(timeout=LONG, stop=StopEvent()):
            rate = max(_round_trips(sock, exchange, PING_PONGS) for _ in range(3))
    else:
        rate = max(_round_trips(sock, exchange, PING_PONGS) for _ in range(3))
    sock.close()
    peer.wait(LONG)
    return rate


def _bulk_rate(inside: bool) -> float:
    """Bytes per second received from a sender process, plain ``recv_into``."""

    def receive_into(conn: socket.socket, buffer: memoryview) -> int:
        return conn.recv_into(buffer)

    if inside:
        with stoppable.guard(timeout=LONG, stop=StopEvent()):
            return max(_bulk_receive(receive_into) for _ in range(3))
    return max(_bulk_receive(receive_into) for _ in range(3))


def _use_a_guard() -> None:
    """Enter and leave a guard, with a socket wait, a sleep and a condition wait in it."""
    a, b = socket.socketpair()
    with a, b, stoppable.guard(timeout=LONG, stop=StopEvent()):
        b.sendall(b"x")  # one byte into a new socketpair
        a.recv(1)  # noqa: STP102 - the byte is there
        time.sleep(0)
        condition = threading.Condition()
        with condition:
            condition.wait(0)
    # The socket methods linger after the last guard closes (LINGER), then go.
    deadline = time.monotonic() + LONG
    while _install.is_installed() and time.monotonic() < deadline:
        time.sleep(_install.LINGER / 10)


def _child(kind: str) -> dict[str, float]:
    """What a child process measures: ``never`` (no guard ever) or ``used``."""
    if kind == "never":
        return {"ping_outside": _ping_pong_rate(False), "bulk_outside": _bulk_rate(False)}
    _use_a_guard()
    results = {"ping_outside": _ping_pong_rate(False), "bulk_outside": _bulk_rate(False)}
    results["ping_inside"] = _ping_pong_rate(True)
    results["bulk_inside"] = _bulk_rate(True)
    results["ping_beside"] = _beside_a_guard(lambda: _ping_pong_rate(False))
    return results


def _beside_a_guard(measure: Callable[[], float]) -> float:
    """``measure()`` outside any guard while another thread sits inside one."""
    stop = StopEvent()
    inside = threading.Event()

    def holder() -> None:
        try:
            with stoppable.guard(stop=stop):
                inside.set()
                stop.wait()
        except stoppable.Stopped:
            pass

    thread = threading.Thread(target=holder)
    thread.start()
    inside.wait(LONG)
    try:
        return measure()
    finally:
        stop.set()
        thread.join(LONG)


def _run_child(kind: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_guard", "--child", kind],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} child failed:\n{done.stderr}")
    results: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return results


def speed_tables() -> list[Table]:
    never: list[dict[str, float]] = []
    used: list[dict[str, float]] = []
    for _ in range(CHILD_RUNS):  # alternated: both kinds see the same machine load
        never.append(_run_child("never"))
        used.append(_run_child("used"))

    def best(runs: list[dict[str, float]], key: str) -> float:
        return max(run[key] for run in runs)

    base_ping, base_bulk = best(never, "ping_outside"), best(never, "bulk_outside")
    outside = Table(
        "Plain socket calls outside any guard: a process that used a guard vs one that never did",
        ["calls", "never used a guard", "used one, now outside", "ratio", "target >= 0.95"],
    )
    for label, key, base, unit in [
        ("1-byte ping-pong (round trips/s)", "ping_outside", base_ping, 1.0),
        ("bulk recv_into, 64 KiB (GiB/s)", "bulk_outside", base_bulk, 2**30),
    ]:
        value = best(used, key)
        outside.add(
            label,
            f"{base / unit:,.2f}" if unit > 1 else f"{base:,.0f}",
            f"{value / unit:,.2f}" if unit > 1 else f"{value:,.0f}",
            f"{value / base:.2f}",
            verdict(value / base >= 0.95),
        )
    beside = best(used, "ping_beside")
    outside.add(
        "ping-pong while another thread is inside a guard",
        f"{base_ping:,.0f}",
        f"{beside:,.0f}",
        f"{beside / base_ping:.2f}",
        "(for information)",
    )
    outside.notes.append(
        f"Each column: the best of {CHILD_RUNS} child processes (alternated), each the best "
        f"of 3 runs of {PING_PONGS:,} round trips and of 3 runs of 1 GiB, peers in their own "
        "processes. A child that never used a guard imports stoppable and nothing more."
    )
    inside = Table(
        "Plain socket calls inside guard(timeout=60, stop=StopEvent()) vs a process without one",
        ["calls", "never used a guard", "inside a guard", "ratio", "target >= 0.8"],
    )
    for label, key, base, unit in [
        ("1-byte ping-pong (round trips/s)", "ping_inside", base_ping, 1.0),
        ("bulk recv_into, 64 KiB (GiB/s)", "bulk_inside", base_bulk, 2**30),
    ]:
        value = best(used, key)
        inside.add(
            label,
            f"{base / unit:,.2f}" if unit > 1 else f"{base:,.0f}",
            f"{value / unit:,.2f}" if unit > 1 else f"{value:,.0f}",
            f"{value / base:.2f}",
            verdict(value / base >= 0.8),
        )
    return [outside, inside]


# --- stop latency and deadline overshoot --------------------------------------------------


def _silent_recv() -> object:
    """A plain ``recv`` on a blocking socket whose peer never sends.

    A fresh pair each time: a connection the guard interrupted is shut down (dead).
    """
    a, b = socket.socketpair()
    with a, b:
        return a.recv(10)  # noqa: STP102 - the guard bounds it


def _condition_wait() -> object:
    condition = threading.Condition()
    with condition:
        return condition.wait()  # noqa: STP100 - the guard bounds it


BLOCKING_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("socket.recv (peer silent)", _silent_recv),
    ("threading.Condition.wait()", _condition_wait),
    ("time.sleep(60)", lambda: time.sleep(LONG)),
]


def latency_table() -> Table:
    table = Table(
        "Stop latency inside guard(stop=stop): a plain blocking call, then stop.set() (p50 / p99)",
        ["blocked in", "runs", "latency p50 / p99", "target p50 < 100 us, p99 < 1 ms"],
    )
    runs = 200
    for name, call in BLOCKING_CALLS:

        def block(stop: StopEvent, call: Callable[[], object] = call) -> object:
            with stoppable.guard(stop=stop):
                return call()

        samples = _latency(block, runs)
        met = statistics.median(samples) < 100e-6 and percentile(samples, 0.99) < 1e-3
        table.add(name, runs, p50_p99(samples), verdict(met))

    def floor(stop: StopEvent) -> object:
        stop.wait()  # the floor: a wait that only set() ends
        raise stoppable.Stopped()

    table.add(
        "floor: StopEvent.wait() woken by set(), no guard",
        runs,
        p50_p99(_latency(floor, runs)),
        "(reference, same run)",
    )
    return table


def overshoot_table() -> Table:
    timeout = 0.05
    table = Table(
        f"Deadline overshoot: guard(timeout={timeout:g}) around a plain blocking call",
        ["blocked in", "runs", "overshoot p50 / p99 / max", "target < 5 ms"],
    )
    runs = 50
    for name, call in BLOCKING_CALLS:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            try:
                with stoppable.guard(timeout=timeout):
                    call()
            except DeadlineExceeded:
                samples.append(time.perf_counter() - started - timeout)
            else:
                raise RuntimeError(f"{name} returned inside a guard that should end it")
        worst = max(samples)
        table.add(
            name,
            runs,
            f"{ms(statistics.median(samples))} / {ms(percentile(samples, 0.99))} / {ms(worst)}",
            verdict(percentile(samples, 0.99) < 5e-3),
        )
    table.notes.append("Measured on a machine that may not be idle: the target is for an idle one.")
    return table


# --- botocore at a silent endpoint ----------------------------------------------------------

_PLAIN_BOTOCORE = r"""
import sys
import botocore.session

s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id="bench", aws_secret_access_key="bench",
)
print("calling", flush=True)
s3.list_buckets()
print("returned", flush=True)
"""


def _s3(endpoint: str, **config: Any) -> Any:
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=botocore.config.Config(**config),
    )


def _timed(call: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        call()
        outcome = "returned"
    except Exception as exc:
        outcome = type(exc).__name__
    return time.perf_counter() - started, outcome


def _plain_botocore(endpoint: str) -> str:
    """How long plain botocore waits, up to ``PLAIN_BOTOCORE_CAP``, in a child killed then."""
    child = subprocess.Popen(
        [sys.executable, "-c", _PLAIN_BOTOCORE, endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], LONG)
    if not ready or child.stdout.readline().strip() != "calling":
        child.kill()
        child.wait(LONG)
        raise RuntimeError("the plain botocore child did not start")
    started = time.perf_counter()
    try:
        child.wait(PLAIN_BOTOCORE_CAP)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(LONG)
        return f"> {PLAIN_BOTOCORE_CAP:g} s (still waiting; killed)"
    return f"{time.perf_counter() - started:.2f} s (exit {child.returncode})"


def botocore_table() -> Table:
    timeout = 1.0
    table = Table(
        "botocore list_buckets at a silent loopback endpoint",
        ["client", "ended after", "target"],
    )
    with _holding_server() as address:
        endpoint = f"http://{address[0]}:{address[1]}"
        s3 = _s3(endpoint)

        def guarded() -> object:
            with stoppable.guard(timeout=timeout):
                return s3.list_buckets()

        runs = [_timed(guarded) for _ in range(3)]
        worst = max(elapsed for elapsed, _ in runs)
        outcomes = sorted({outcome for _, outcome in runs})
        table.add(
            f"inside guard(timeout={timeout:g}), botocore's defaults (worst of 3)",
            f"{worst:.3f} s ({', '.join(outcomes)})",
            f"<= 1.05 s: {verdict(worst <= timeout + 0.05)}",
        )
        s3.close()
        short = _s3(endpoint, read_timeout=timeout)
        elapsed, outcome = _timed(short.list_buckets)
        short.close()
        table.add(
            f"Config(read_timeout={timeout:g}), no guard: its retries multiply it",
            f"{elapsed:.2f} s ({outcome})",
            "(reference)",
        )
        table.add(
            "botocore's defaults, no guard (60 s read timeout, retried)",
            _plain_botocore(endpoint),
            "(reference)",
        )
    return table


def run() -> list[Table]:
    """All guard benchmark tables."""
    return [*speed_tables(), latency_table(), overshoot_table(), botocore_table()]


if __name__ == "__main__":  # a measuring child process (see speed_tables)
    if sys.argv[1:2] != ["--child"]:
        sys.exit("run the guard benchmark with: python -m benchmarks guard")
    print(json.dumps(_child(sys.argv[2])), flush=True)

"""Process family and graceful shutdown: stop latency, exit detection, SIGTERM to exit.

Each figure is measured in this run beside what a user would otherwise write: the
hand-written pattern (a stop ``threading.Event`` checked between
``Popen.communicate(timeout=0.1)`` calls), the standard library's own waits, and the
example service (``examples/service.py``) beside the same service written with that
pattern, which this module also holds (``python -m benchmarks.bench_process
polling-service``).
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import Table, ms, percentile, verdict
from stoppable import StopEvent, Stopped, _child, process

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(60)"]
SLICE = 0.1  # the hand-written pattern's poll slice (the one users pick most)
LONG = 60.0


def _settle() -> None:
    # Let a just-started child and its waiter settle: a benchmark may sleep, a test may not.
    time.sleep(0.05)


def _ms_pair(samples: list[float]) -> str:
    return f"{ms(statistics.median(samples))} / {ms(percentile(samples, 0.99))}"


# --- stop latency -------------------------------------------------------------------


def _hand_written_wait(popen: subprocess.Popen[bytes], flag: threading.Event) -> None:
    """What users write today: poll the flag between bounded waits, then end the child."""
    while True:
        try:
            popen.communicate(timeout=SLICE)
            return
        except subprocess.TimeoutExpired:
            if flag.is_set():
                popen.terminate()
                popen.communicate(timeout=LONG)
                raise Stopped("flag") from None


def stop_latency(
    call: Callable[[Any], object], make_stop: Callable[[], Any], runs: int
) -> list[float]:
    """Seconds from ``stop.set()`` until ``call(stop)`` raised (child ended and reaped)."""
    samples = []
    for _ in range(runs):
        stop = make_stop()
        ended: list[float] = []

        def waiter(stop: Any = stop, ended: list[float] = ended) -> None:
            try:
                call(stop)
            except Stopped:
                ended.append(time.perf_counter())

        thread = threading.Thread(target=waiter)
        thread.start()
        _settle()
        started = time.perf_counter()
        stop.set()
        thread.join(LONG)
        samples.append(ended[0] - started)
    return samples


def stop_table() -> Table:
    table = Table(
        "Stop latency: a thread waiting on a sleeping child, then stopped (p50 / p99)",
        ["call", "stop", "stop to call raised, child reaped", "target p50 < 5 ms"],
    )
    runs = 40

    def ours_run(stop: Any) -> None:
        process.run(SLEEPER, timeout=LONG, stop=stop, capture_output=True)

    def ours_wait(stop: Any) -> None:
        with subprocess.Popen(SLEEPER) as popen:
            process.wait(popen, timeout=LONG, stop=stop)

    def hand_written(stop: Any) -> None:
        with subprocess.Popen(SLEEPER, stdout=subprocess.PIPE) as popen:
            _hand_written_wait(popen, stop)

    for name, call in (("stoppable.process.run", ours_run), ("stoppable.process.wait", ours_wait)):
        samples = stop_latency(call, StopEvent, runs)
        table.add(name, "StopEvent", _ms_pair(samples), verdict(statistics.median(samples) < 5e-3))
    samples = stop_latency(hand_written, threading.Event, runs)
    table.add(
        f"hand-written Popen.communicate(timeout={SLICE:g}) loop",
        "threading.Event",
        _ms_pair(samples),
        "(reference)",
    )
    table.add("subprocess.run(timeout=60)", "-", "cannot be stopped: waits out its timeout", "")
    table.notes.append(
        f"{runs} runs each. The child ends on SIGTERM at once; the time includes sending it, "
        "the child's exit and the reap."
    )
    return table


# --- noticing the child's exit -----------------------------------------------------

EXITS_AND_STAMPS = (
    "import os, sys, time; time.sleep(float(sys.argv[1]))\n"
    "sys.stdout.write(repr(time.monotonic())); sys.stdout.flush(); os._exit(0)\n"
)


def exit_latency(wait: Callable[[subprocess.Popen[bytes]], object], runs: int) -> list[float]:
    """Seconds from the child's last act until ``wait`` returned (it includes the exit)."""
    rng = random.Random(5)
    samples = []
    for _ in range(runs):
        delay = rng.uniform(0.05, 0.15)  # random, so a polling wait's phase is fair
        with subprocess.Popen(
            [PY, "-c", EXITS_AND_STAMPS, str(delay)], stdout=subprocess.PIPE
        ) as popen:
            wait(popen)
            returned = time.monotonic()
            assert popen.stdout is not None
            stamped = float(popen.stdout.read())
        samples.append(returned - stamped)
    return samples


def exit_table() -> Table:
    table = Table(
        "A waited-on child exits: time until the wait returns (p50 / p99)",
        ["wait", "how it notices", "exit to return", "target p50 < 1 ms"],
    )
    runs = 25

    def ours(popen: subprocess.Popen[bytes]) -> None:
        process.wait(popen, timeout=LONG, stop=StopEvent())

    def ours_polled(popen: subprocess.Popen[bytes]) -> None:
        saved, _child._use_pidfd = _child._use_pidfd, False
        try:
            process.wait(popen, timeout=LONG, stop=StopEvent())
        finally:
            _child._use_pidfd = saved

    rows: list[tuple[str, str, Callable[[subprocess.Popen[bytes]], object], str]] = [
        ("Popen.wait()", "blocking waitpid (the floor)", lambda p: p.wait(), ""),
        ("stoppable.process.wait, StopEvent", "pidfd in poll", ours, "target"),
        ("stoppable.process.wait, no pidfd", "poll, 1-50 ms backoff", ours_polled, "(fallback)"),
        ("Popen.wait(timeout=60)", "sleep, 1-50 ms backoff", lambda p: p.wait(timeout=LONG), ""),
    ]
    for name, how, wait, mark in rows:
        samples = exit_latency(wait, runs)
        met = verdict(statistics.median(samples) < 1e-3) if mark == "target" else mark
        table.add(name, how, _ms_pair(samples), met)
    table.notes.append(
        f"{runs} runs each; the child stamps time.monotonic() just before os._exit, after a "
        "random 50-150 ms."
    )
    return table


# --- the example service, SIGTERM to exit --------------------------------------------


class Service:
    """A service process (ours or the hand-written one), driven over its status port."""

    def __init__(self, command: list[str]) -> None:
        self.popen = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line.startswith("listening on "):
            process.terminate(self.popen)
            raise RuntimeError(f"the service did not start: {line!r}")
        host, port = line.split()[2].rstrip(",").rsplit(":", 1)
        self.address = (host, int(port))

    def status(self) -> dict[str, Any]:
        with socket.create_connection(self.address, timeout=10) as conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    raise RuntimeError("the status listener closed early")
                data += chunk
        status: dict[str, Any] = json.loads(data)
        return status

    def children(self) -> int:
        count = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.popen.pid:
                    count += 1
        return count

    def wait_until(self, ready: Callable[[], bool], limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while not ready():
            if time.monotonic() > deadline:
                process.terminate(self.popen, kill_after=0)
                raise RuntimeError("the service did not get ready")
            time.sleep(0.05)

    def sigterm_to_exit(self) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        self.popen.send_signal(signal.SIGTERM)
        process.wait(self.popen, timeout=LONG)  # woken by the exit itself (pidfd)
        elapsed = time.perf_counter() - started
        out, err = process.communicate(self.popen, timeout=LONG)
        if self.popen.returncode != 0:
            raise RuntimeError(f"the service exited with {self.popen.returncode}: {err}")
        summary: dict[str, Any] = json.loads(out.splitlines()[-1])
        return elapsed, summary


def shutdown_run(command: list[str], workers: int, busy: bool) -> tuple[float, float]:
    """SIGTERM to exit, and the slowest thread's stop latency, for one service run."""
    service = Service(command)
    if busy:
        service.wait_until(lambda: service.status()["busy"] == workers)
        service.wait_until(lambda: service.children() == workers)
        time.sleep(1.0)  # the children finish starting and sleep
    else:
        time.sleep(0.5)  # every worker waiting for an item
    elapsed, summary = service.sigterm_to_exit()
    if busy and len(summary["requeued"]) != workers:
        raise RuntimeError(f"expected {workers} items put back, got {summary['requeued']}")
    return elapsed, max(summary["stop_latency_ms"].values()) / 1e3


def shutdown_table() -> Table:
    table = Table(
        "Example service with 100 workers: SIGTERM to process exit (median of runs)",
        [
            "service",
            "workers blocked in",
            "SIGTERM to exit",
            "slowest thread noticed",
            "target < 200 ms",
        ],
    )
    workers, runs = 100, 3
    ours = [PY, str(ROOT / "examples" / "service.py")]
    hand = [PY, "-m", "benchmarks.bench_process", "polling-service"]
    for blocked_in, args, busy in (
        ("its item's child process", ["--items", str(workers), "--work", "60"], True),
        ("an empty queue", ["--items", "0"], False),
    ):
        for name, command in (
            ("examples/service.py (stoppable)", ours),
            (f"hand-written, {SLICE:g} s polls", hand),
        ):
            results = [
                shutdown_run([*command, "--workers", str(workers), *args], workers, busy)
                for _ in range(runs)
            ]
            exit_after = statistics.median(result[0] for result in results)
            noticed = statistics.median(result[1] for result in results)
            mark = verdict(exit_after < 0.2) if "stoppable" in name else "(reference)"
            table.add(name, blocked_in, ms(exit_after), ms(noticed), mark)
    table.notes.append(
        f"{runs} runs each. Time from os.kill(SIGTERM) to the exit, seen by a pidfd; every "
        "in-flight item back in the queue, every child ended and reaped, exit status 0. "
        "'Slowest thread' is from the signal's arrival to the last worker noticing."
    )
    return table


def run() -> list[Table]:
    """All process benchmark tables."""
    return [stop_table(), exit_table(), shutdown_table()]


# --- the hand-written service ---------------------------------------------------------

HAND_CHILD = "import sys, time; time.sleep(float(sys.argv[1])); print('processed', sys.argv[2])"


class _Quit(Exception):
    pass


def polling_service(argv: list[str]) -> int:
    """examples/service.py as users write it without stoppable: poll a flag every 0.1 s."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--work", type=float, default=0.5)
    args = parser.parse_args(argv)

    flag = threading.Event()
    received_at: list[float] = []

    def on_signal(signum: int, frame: object) -> None:
        received_at.append(time.monotonic())
        flag.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    work: queue.Queue[str] = queue.Queue()
    for number in range(args.items):
        work.put(f"item-{number:03d}")
    done: list[str] = []
    requeued: list[str] = []
    busy: dict[str, str] = {}
    noticed: dict[str, float] = {}

    def worker() -> None:
        name = threading.current_thread().name
        try:
            while not flag.is_set():
                try:
                    item = work.get(timeout=SLICE)
                except queue.Empty:
                    continue
                busy[name] = item
                try:
                    child = subprocess.Popen(
                        [PY, "-c", HAND_CHILD, str(args.work), item],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        start_new_session=True,
                    )
                    while True:
                        try:
                            child.communicate(timeout=SLICE)
                            done.append(item)
                            break
                        except subprocess.TimeoutExpired:
                            if flag.is_set():
                                child.terminate()
                                child.communicate(timeout=LONG)
                                work.put(item)
                                requeued.append(item)
                                raise _Quit from None
                finally:
                    del busy[name]
        except _Quit:
            pass
        noticed[name] = time.monotonic()

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(SLICE)

    def serve_status() -> None:
        while not flag.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                status = {"done": len(done), "busy": len(busy), "queued": work.qsize()}
                conn.sendall(json.dumps(status).encode() + b"\n")
        noticed["status"] = time.monotonic()

    threads = [threading.Thread(target=worker, name=f"worker-{n}") for n in range(args.workers)]
    threads.append(threading.Thread(target=serve_status, name="status"))
    for thread in threads:
        thread.start()
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}, pid {os.getpid()}", flush=True)
    while not flag.is_set():
        flag.wait(SLICE)
    for thread in threads:
        thread.join(LONG)
    listener.close()
    stopped_at = received_at[0]
    summary = {
        "done": sorted(done),
        "queued": sorted(work.queue),
        "requeued": sorted(requeued),
        "stop_latency_ms": {name: (at - stopped_at) * 1e3 for name, at in noticed.items()},
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["polling-service"]:
        raise SystemExit(polling_service(sys.argv[2:]))
    for table in run():
        print(table.markdown(), end="\n\n", flush=True)

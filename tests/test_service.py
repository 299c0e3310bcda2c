"""examples/service.py, run as a real process and sent a real SIGTERM (or SIGINT)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stoppable import process

from .support import LONG, wait_until

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "service.py"
EXIT_BOUND = 2.0  # the bound: SIGTERM to exit


class Running:
    """The service as a child process, and its status listener's address."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(SERVICE), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], LONG)
        assert ready, "the service did not start"
        line = self.popen.stdout.readline()
        assert line.startswith("listening on "), line
        host, port = line.split()[2].rstrip(",").rsplit(":", 1)
        self.address = (host, int(port))

    def status(self) -> dict[str, Any]:
        with socket.create_connection(self.address, timeout=LONG) as conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                assert chunk, "the status listener closed early"
                data += chunk
        status: dict[str, Any] = json.loads(data)
        return status

    def signal_and_finish(self, sig: signal.Signals) -> tuple[float, dict[str, Any], str]:
        """Send ``sig``; seconds until the process ended, its summary, its whole stdout."""
        sent_at = time.monotonic()
        self.popen.send_signal(sig)
        out, err = process.communicate(self.popen, timeout=LONG)
        exited_after = time.monotonic() - sent_at
        assert self.popen.returncode == 0, err
        summary: dict[str, Any] = json.loads(out.splitlines()[-1])
        return exited_after, summary, out

    def kill(self) -> None:
        if self.popen.poll() is None:
            process.terminate(self.popen, kill_after=0)


@pytest.fixture
def services() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for service in started:
        service.kill()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_sigterm_with_items_in_flight_exits_within_2s_and_loses_no_item(
    services: list[Running],
) -> None:
    # Each item is an HTTP call to the service's own slow upstream (0.1 s), then a
    # child process (0.2 s): a signal finds workers in either.
    items, workers = 30, 3
    service = Running("--workers", str(workers), "--items", str(items), "--work", "0.2")
    services.append(service)
    # Some items done, every worker in the middle of one.
    wait_until(
        lambda: (status := service.status())["done"] >= workers and status["busy"] == workers,
        what="items done and every worker busy",
    )
    exited_after, summary, out = service.signal_and_finish(signal.SIGTERM)
    assert exited_after < EXIT_BOUND
    assert summary["reason"] == "SIGTERM"
    done, queued = set(summary["done"]), set(summary["queued"])
    everything = {f"item-{n:03d}" for n in range(items)}
    # Every item is done or back in the queue; none is both, none is lost.
    assert done | queued == everything
    assert not done & queued
    assert len(summary["done"]) + len(summary["queued"]) == items
    assert summary["failed"] == []
    assert done  # the service did work before the signal
    # Every item done made its HTTP call; no HTTP call was made for an item never taken.
    assert done <= set(summary["http_calls"])
    assert set(summary["http_calls"]) | set(summary["http_stopped"]) <= everything - (
        queued - set(summary["requeued"])
    )
    # The items in flight were put back, and are in the queue.
    assert summary["requeued"]
    assert set(summary["requeued"]) <= queued
    assert summary["still_running"] == []
    assert set(summary["stop_latency_ms"]) == {f"worker-{n}" for n in range(workers)} | {"status"}
    assert "each thread noticed the stop after" in out


def test_sigterm_mid_request_cuts_the_http_calls_and_requeues_their_items(
    services: list[Running],
) -> None:
    workers = 4
    service = Running(
        "--workers", str(workers), "--items", "12", "--work", "0.01", "--upstream-delay", "60"
    )
    services.append(service)
    wait_until(lambda: service.status()["busy"] == workers, what="every worker in its HTTP call")
    exited_after, summary, _ = service.signal_and_finish(signal.SIGTERM)
    assert exited_after < EXIT_BOUND
    assert summary["http_calls"] == []
    assert len(summary["http_stopped"]) == workers
    assert set(summary["http_stopped"]) == set(summary["requeued"])
    assert len(summary["queued"]) == 12
    assert summary["failed"] == []


def test_sigint_with_every_worker_blocked_in_a_long_child(services: list[Running]) -> None:
    workers = 8
    service = Running("--workers", str(workers), "--items", "20", "--work", "60")
    services.append(service)
    wait_until(lambda: service.status()["busy"] == workers, what="every worker busy")
    wait_until(lambda: len(children_of(service.popen.pid)) == workers, what="every child started")
    children = children_of(service.popen.pid)
    exited_after, summary, _ = service.signal_and_finish(signal.SIGINT)
    assert exited_after < EXIT_BOUND
    assert summary["reason"] == "SIGINT"
    assert summary["done"] == []
    assert len(summary["requeued"]) == workers
    assert len(summary["http_calls"]) == workers  # each answered before its child started
    assert len(summary["queued"]) == 20
    for child in children:
        assert not Path(f"/proc/{child}").exists()  # ended and reaped, not orphaned

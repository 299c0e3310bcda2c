"""examples/guard_worker.py, run as a real process on the test Redis and sent a real SIGTERM."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stoppable import process

from .redis_server import RedisServer
from .support import LONG, WAKE_BOUND

WORKER = Path(__file__).resolve().parent.parent / "examples" / "guard_worker.py"
# SIGTERM to the process's exit: the stop itself takes milliseconds (each worker reports
# it, checked against WAKE_BOUND); the rest is clean-up and the interpreter's teardown,
# slow for botocore's models on a loaded machine.
EXIT_BOUND = 5.0


class Worker:
    """The example as a child process; ``lines`` is what it printed so far."""

    def __init__(self, redis_url: str, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(WORKER), "--redis-url", redis_url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.wait_for(lambda line: line.startswith("ready:"))

    def wait_for(self, wanted: Callable[[str], bool], count: int = 1) -> list[str]:
        """Read lines until ``count`` of them match ``wanted``; return those."""
        assert self.popen.stdout is not None
        deadline = time.monotonic() + LONG
        while len([line for line in self.lines if wanted(line)]) < count:
            ready, _, _ = select.select([self.popen.stdout], [], [], deadline - time.monotonic())
            assert ready, f"the worker printed only {self.lines}"
            line = self.popen.stdout.readline()
            if not line:  # it ended: its stderr is complete
                assert self.popen.stderr is not None
                raise AssertionError(f"the worker ended: {self.lines}\n{self.popen.stderr.read()}")
            self.lines.append(line.rstrip("\n"))
        return [line for line in self.lines if wanted(line)]

    def terminate(self) -> tuple[float, dict[str, Any], list[str]]:
        """SIGTERM; seconds until it exited (status 0), its summary, every line."""
        sent_at = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        out, err = process.communicate(self.popen, timeout=LONG)
        exited_after = time.monotonic() - sent_at
        assert self.popen.returncode == 0, err
        self.lines += out.splitlines()
        summary: dict[str, Any] = json.loads(self.lines[-1])
        return exited_after, summary, self.lines

    def kill(self) -> None:
        if self.popen.poll() is None:
            process.terminate(self.popen, kill_after=0)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def test_sigterm_stops_workers_blocked_in_botocore_and_in_redis_at_once(
    redis_server: RedisServer, workers: list[Worker]
) -> None:
    # 3 workers, 2 jobs, uploads that never finish: two workers are in botocore's
    # put_object (its own limit: 60 s reads, retried), one in BLMOVE 0 (no limit at all).
    forever = str(LONG * 10)
    worker = Worker(
        redis_server.url,
        "--workers", "3",
        "--jobs", "2",
        "--upload-delay", forever,
        "--deadline", forever,
    )  # fmt: skip
    workers.append(worker)
    worker.wait_for(lambda line: " uploading " in line, count=2)
    exited_after, summary, lines = worker.terminate()
    assert exited_after < EXIT_BOUND, lines
    stopped_after = [float(line.split()[-2]) for line in lines if " stopped after " in line]
    assert len(stopped_after) == 3, lines
    assert max(stopped_after) < WAKE_BOUND * 1000, lines  # milliseconds from the signal
    assert summary["reason"] == "SIGTERM"
    assert summary["done"] == []
    assert sorted(summary["requeued"]) == ["job-0", "job-1"]
    assert sorted(summary["queued"]) == ["job-0", "job-1"]  # nothing lost
    assert sum("was uploading job-" in line for line in lines) == 2, lines
    assert sum("was waiting for a job (redis BLMOVE)" in line for line in lines) == 1, lines


def test_an_upload_past_its_deadline_is_requeued(
    redis_server: RedisServer, workers: list[Worker]
) -> None:
    deadline = 0.5
    worker = Worker(
        redis_server.url,
        "--workers", "1",
        "--jobs", "1",
        "--upload-delay", str(LONG * 10),
        "--deadline", str(deadline),
    )  # fmt: skip
    workers.append(worker)
    [line] = worker.wait_for(lambda line: "upload deadline passed" in line)
    took = float(line.split("after ")[1].split()[0])
    assert deadline <= took < deadline + WAKE_BOUND, line
    exited_after, summary, lines = worker.terminate()
    assert exited_after < EXIT_BOUND, lines
    assert summary["done"] == []
    assert summary["queued"] == ["job-0"]  # back in the list after each attempt


def test_jobs_are_done_until_the_sigterm(redis_server: RedisServer, workers: list[Worker]) -> None:
    worker = Worker(redis_server.url, "--workers", "2", "--jobs", "4", "--upload-delay", "0.01")
    workers.append(worker)
    worker.wait_for(lambda line: " uploaded " in line, count=4)
    exited_after, summary, lines = worker.terminate()
    assert exited_after < EXIT_BOUND, lines
    assert sorted(summary["done"]) == ["job-0", "job-1", "job-2", "job-3"]
    assert summary["queued"] == []
    assert sum("was waiting for a job (redis BLMOVE)" in line for line in lines) == 2, lines

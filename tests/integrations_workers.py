"""Real task-queue worker processes for the integration tests, and what they recorded.

A ``WorkerProcess`` runs a task queue's own command line (``python -m dramatiq ...``,
``python -m celery ... worker``) in its own session, its output in a log file; the test
sends it SIGTERM like an orchestrator would, and ``close()`` kills whatever is left.
``Records`` reads what the test apps write to Redis (who started, finished, how it
ended), so a test observes the workers from outside and waits on facts, not sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import redis

from .support import LONG, wait_until

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """A worker command run from the project root, logging to ``log_path``."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = [sys.executable, *argv]
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # close() can kill its children with it
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> float:
        """Send SIGTERM (to the worker's main process); returns when it was sent."""
        assert self.popen is not None
        sent_at = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        return sent_at

    def wait(self, timeout: float = LONG) -> int:
        """Wait for the worker to exit; its exit status."""
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker still running after {timeout} s; its log:\n{self.log()}"
            ) from None

    def close(self) -> None:
        """Kill the worker's whole session (anything a test left running), and reap it."""
        if self.popen is None:
            return
        popen, self.popen = self.popen, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(LONG)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Records:
    """What the test apps wrote under ``prefix`` in Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}:test:{name}"

    def started(self) -> list[str]:
        return [str(entry) for entry in self.client.lrange(self.key("started"), 0, -1)]

    def ended(self) -> list[str]:
        return [str(entry) for entry in self.client.lrange(self.key("ended"), 0, -1)]

    def finished(self, task_id: str) -> int:
        return int(self.client.get(self.key(f"finished:{task_id}")) or 0)

    def release(self) -> None:
        self.client.set(self.key("release"), 1)

    def wait_started(self, count: int, worker: WorkerProcess) -> None:
        wait_until(
            lambda: len(self.started()) >= count or _exited(worker),
            what=f"{count} tasks to start",
        )
        assert len(self.started()) >= count, f"the worker exited; its log:\n{worker.log()}"

    def wait_ended(self, count: int, worker: WorkerProcess) -> None:
        wait_until(
            lambda: len(self.ended()) >= count or _exited(worker),
            what=f"{count} tasks to end",
        )
        assert len(self.ended()) >= count, f"the worker exited; its log:\n{worker.log()}"

    def wait_revoked(self, count: int, worker: WorkerProcess) -> list[str]:
        """What the app recorded of Celery's ``task_revoked`` signals, once ``count`` are in."""
        revoked = self.key("revoked")
        wait_until(
            lambda: self.client.llen(revoked) >= count or _exited(worker),
            what=f"{count} tasks announced revoked",
        )
        return [str(entry) for entry in self.client.lrange(revoked, 0, -1)]

    def wait_finished(self, task_ids: list[str], worker: WorkerProcess) -> None:
        wait_until(
            lambda: all(self.finished(t) for t in task_ids) or _exited(worker),
            what=f"tasks {task_ids} to finish",
        )
        missing = [t for t in task_ids if not self.finished(t)]
        assert not missing, f"never finished: {missing}; the worker's log:\n{worker.log()}"


def _exited(worker: WorkerProcess) -> bool:
    return worker.popen is None or worker.popen.poll() is not None

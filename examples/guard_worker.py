"""A worker built on clients that know nothing of stoppable, stopped at once on SIGTERM.

Run it, then stop it as an orchestrator would (``kill -TERM <pid>``, or Ctrl-C)::

    python examples/guard_worker.py --workers 2 --jobs 10 --upload-delay 0.3

Each worker thread takes a job from a Redis list with redis-py's ``BLMOVE`` (no
timeout: it waits until a job comes), which moves it into the worker's own
"processing" list, then uploads a result with botocore's S3 ``put_object``. Neither
client takes a stop, and their own limits are long (BLMOVE 0 waits forever; botocore
reads for 60 s, four times over with its retries). Two guards make them bounded and
stoppable, unchanged:

- ``with stoppable.guard(stop=stop):`` around the ``BLMOVE``: a SIGTERM ends the
  wait at once (``Stopped``), and redis-py drops the interrupted connection, so
  the client's next command works;
- ``with stoppable.guard(timeout=--deadline, stop=stop):`` around the upload: an
  upload that outlasts the deadline ends with ``DeadlineExceeded`` (botocore's
  retries included) and its job goes back in the list; a SIGTERM ends it at once,
  and its job goes back once every worker has stopped (so that no worker still
  waiting takes it).

Why ``BLMOVE`` and not ``BLPOP``: a stop can come after Redis has handed a job out
and before the client has read the reply. The guard ends the read, the connection
is dropped, and with ``BLPOP`` that job would be gone. With ``BLMOVE`` it is in the
worker's processing list, and goes back with the others at the end. A guard bounds
and stops a client's calls; what a call already did on the server stays done.

``stoppable.process.stop_on_signals`` turns SIGTERM/SIGINT into ``stop.set()``. Every worker
prints where the stop found it and how long after the signal it had stopped; the
last line is JSON: jobs ``done``, ``requeued`` and left ``queued`` (nothing is lost:
done + queued = every job fed). Exit status 0.

Stand-ins: Redis is ``--redis-url``, or else a ``redis-server`` (Debian's package)
this example starts on a private Unix socket; S3 is a small loopback HTTP server of
its own that answers each upload after ``--upload-delay`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.config
import botocore.session
import redis

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped
from stoppable.process import stop_on_signals

QUEUE = "guard-worker:jobs"


def processing(worker: str) -> str:
    """The list holding ``worker``'s job while it works on it."""
    return f"guard-worker:processing:{worker}"


LONG = 30.0  # bounds set-up and clean-up steps


# --- stand-ins --------------------------------------------------------------------------


class _SlowS3(BaseHTTPRequestHandler):
    """Answers every PUT (an upload) after the server's ``delay``, unless it closes."""

    protocol_version = "HTTP/1.1"
    server: S3StandIn

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.server.closing.wait(self.server.delay):
            return
        self.send_response(200)
        self.send_header("ETag", '"0"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class S3StandIn(ThreadingHTTPServer):
    """A loopback S3 endpoint that takes ``delay`` seconds per upload."""

    daemon_threads = True

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _SlowS3)
        self.delay = delay
        self.closing = threading.Event()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="s3-stand-in"
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self._thread.join(LONG)
        self.server_close()


@contextmanager
def redis_stand_in() -> Iterator[str]:
    """A ``redis-server`` on a private Unix socket, for as long as the block runs."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed: pass --redis-url, or apt-get install redis-server")
    directory = Path(tempfile.mkdtemp(prefix="guard-worker-"))
    path = directory / "redis.sock"
    server = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(path), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        cwd=directory,
    )
    try:
        client = redis.Redis(unix_socket_path=str(path))
        # A guard bounds the whole start-up wait: the polling sleep included.
        with stoppable.guard(timeout=LONG):
            while not path.exists() or not _pings(client):
                time.sleep(0.01)
        client.close()
        yield f"unix://{path}"
    finally:
        server.terminate()
        server.wait(LONG)
        shutil.rmtree(directory, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


# --- the worker ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the workers did, under one lock."""

    done: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # worker -> where it was
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, value: str) -> None:
        with self.lock:
            getattr(self, kind).append(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def say(line: str) -> None:
    sys.stdout.write(line + "\n")  # one write: threads' lines never interleave
    sys.stdout.flush()


def give_back(client: redis.Redis, worker: str) -> list[str]:
    """Move ``worker``'s jobs back to the head of the queue; return them.

    A guard with a deadline and no stop (the stop may be set by now): the moves are
    bounded but not refused. Each ``LMOVE`` is atomic: a job is in one list or the other.
    """
    moved = []
    with stoppable.guard(timeout=LONG):
        while (job := client.lmove(processing(worker), QUEUE, "RIGHT", "LEFT")) is not None:
            moved.append(_text(job))
    return moved


def finish(client: redis.Redis, worker: str, job: str) -> None:
    """Drop ``job`` from ``worker``'s processing list: it is done."""
    with stoppable.guard(timeout=LONG):
        client.lrem(processing(worker), 1, job)


def work(
    name: str,
    stop: StopEvent,
    client: redis.Redis,
    s3: Any,
    deadline: float,
    tally: Tally,
) -> None:
    """Take jobs until the stop: BLMOVE, then an upload, each inside a guard."""
    while True:
        try:
            with stoppable.guard(stop=stop):
                taken = client.blmove(QUEUE, processing(name), 0, "LEFT", "RIGHT")
        except Stopped:
            tally.stopped[name] = "waiting for a job (redis BLMOVE)"
            return
        assert taken is not None  # BLMOVE 0 returns a job or waits
        job = _text(taken)
        say(f"{name} uploading {job}")
        started = time.monotonic()
        try:
            with stoppable.guard(timeout=deadline, stop=stop):
                s3.put_object(Bucket="results", Key=job, Body=f"result of {job}".encode())
        except DeadlineExceeded:
            say(f"{name} {job}: upload deadline passed after {time.monotonic() - started:.2f} s")
            for moved in give_back(client, name):
                tally.note("requeued", moved)
            continue
        except Stopped:
            # The job stays in this worker's processing list until every worker stopped.
            tally.stopped[name] = f"uploading {job} (botocore put_object)"
            return
        finish(client, name, job)
        say(f"{name} uploaded {job} in {time.monotonic() - started:.2f} s")
        tally.note("done", job)


def s3_client(endpoint: str) -> Any:
    """botocore's S3 client with botocore's own limits (60 s reads, retried)."""
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="example",
        aws_secret_access_key="example",
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


def run(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    stand_in = S3StandIn(args.upload_delay)
    feeder = redis.Redis.from_url(redis_url)
    jobs = [f"job-{index}" for index in range(args.jobs)]
    names = [f"w{index}" for index in range(args.workers)]
    with stoppable.guard(timeout=LONG):
        feeder.delete(QUEUE, *map(processing, names))
        if jobs:
            feeder.rpush(QUEUE, *jobs)
    tally = Tally()
    signals = stop_on_signals()
    with signals as stop:
        # One botocore client for every thread (they are thread-safe, and slow to build);
        # a redis-py client each, so that each BLMOVE has its own connection.
        s3 = s3_client(stand_in.url)
        threads = [
            threading.Thread(
                target=work,
                args=(
                    name,
                    stop,
                    # No socket timeout (redis-py's default is 5 s): the guards bound it.
                    redis.Redis.from_url(redis_url, socket_timeout=None),
                    s3,
                    args.deadline,
                    tally,
                ),
                name=name,
            )
            for name in names
        ]
        for thread in threads:
            thread.start()
        say(f"ready: {args.workers} workers, {args.jobs} jobs, pid {os.getpid()}")
        stop.wait()  # a worker runs until SIGTERM/SIGINT, by design
        signalled_at = signals.received_at or time.monotonic()
        for thread in threads:
            thread.join(LONG)
            say(f"{thread.name} stopped after {(time.monotonic() - signalled_at) * 1000:.1f} ms")
    for name, where in sorted(tally.stopped.items()):
        say(f"{name} was {where}")
    # Only now: a worker still waiting could have taken a job given back earlier. This
    # also returns a job Redis handed out as the stop ended a wait (the reply unread).
    for name in names:
        for job in give_back(feeder, name):
            tally.note("requeued", job)
    stand_in.close()
    with stoppable.guard(timeout=LONG):
        queued = [_text(item) for item in feeder.lrange(QUEUE, 0, -1)]
    feeder.close()
    return {
        "reason": stop.reason,
        "done": tally.done,
        "requeued": tally.requeued,
        "queued": queued,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--upload-delay", type=float, default=0.3, help="S3 stand-in's delay")
    parser.add_argument("--deadline", type=float, default=5.0, help="each upload's guard")
    parser.add_argument("--redis-url", help="a Redis to use (default: start a redis-server)")
    args = parser.parse_args()
    if args.redis_url:
        summary = run(args, args.redis_url)
    else:
        with redis_stand_in() as url:
            summary = run(args, url)
    say(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Dramatiq app the integration tests run in real ``dramatiq`` worker processes.

Configured by the environment the test gives the worker: ``TASKS_REDIS_URL`` (the test
Redis server), ``TASKS_NAMESPACE`` (this test's keys) and ``TASKS_STOPPABLE`` (``1``:
``stoppable.integrations.dramatiq.install(broker)``; ``0``: Dramatiq's own middleware).

Each actor records in Redis, under the namespace, when it starts (``started``, a list of
ids) and when it finishes (``finished:<id>``, a counter: more than 1 would be a task run
twice to completion); the ``Recorder`` middleware records each failed delivery after the
actor's call, outside its guard (``ended``: ``id:exception:first cause:time``, the first
cause being what the actor's own code saw), so the test observes the workers from outside.
"""

from __future__ import annotations

import os
import queue
import socket
import time
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

import stoppable.integrations.dramatiq

URL = os.environ.get("TASKS_REDIS_URL", "redis://127.0.0.1:6379/0")
NAMESPACE = os.environ.get("TASKS_NAMESPACE", "tasks-test")
LONG = 60.0  # a blocked call that is not stopped lasts this long

# Bookkeeping goes through its own connection.
_records = redis.Redis.from_url(URL)


def key(name: str) -> str:
    """A key of this test's namespace."""
    return f"{NAMESPACE}:test:{name}"


class Recorder(dramatiq.Middleware):
    """Records how each failed delivery ended, once the actor's call is over."""

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: object = None,
        exception: BaseException | None = None,
    ) -> None:  # fmt: skip
        if exception is None:
            return
        first: BaseException = exception
        while first.__cause__ is not None or first.__context__ is not None:
            first = first.__cause__ or first.__context__  # type: ignore[assignment]
        name = f"{type(exception).__module__}.{type(exception).__name__}"
        _records.rpush(
            key("ended"), f"{message.args[0]}|{name}|{type(first).__name__}|{time.time()}"
        )


broker = RedisBroker(url=URL, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
broker.add_middleware(Recorder())
if os.environ.get("TASKS_STOPPABLE", "1") == "1":
    stoppable.integrations.dramatiq.install(broker)
dramatiq.set_broker(broker)


def _started(task_id: str) -> None:
    _records.rpush(key("started"), task_id)


def _finished(task_id: str) -> None:
    _records.incr(key(f"finished:{task_id}"))


def _block(how: str, port: int) -> None:
    """Block in one of the ways the tests cover, for LONG unless stopped."""
    # Deliberately unbounded: the integration's guard is what must end each of these.
    if how == "recv":  # a socket read from a server that never answers
        with socket.create_connection(("127.0.0.1", port)) as sock:  # noqa: STP100
            sock.recv(1)
    elif how == "queue":  # a plain queue wait that nothing feeds
        queue.Queue[int]().get()
    elif how == "sleep":
        time.sleep(LONG)
    elif how == "redis":  # a third-party client: a blocking pop on an empty list
        client = redis.Redis.from_url(URL)
        client.blpop([key("never-filled")], timeout=0)
    else:
        raise ValueError(how)


def _released() -> bool:
    return bool(_records.exists(key("release")))


@dramatiq.actor(max_retries=3, min_backoff=50, max_backoff=100)
def job(task_id: str, how: str, port: int) -> None:
    """Block until stopped, unless the test released the jobs; then finish."""
    _started(task_id)
    if not _released():
        _block(how, port)
    _finished(task_id)


@dramatiq.actor(time_limit=500, max_retries=0)
def limited(task_id: str, how: str, port: int) -> None:
    """Blocked well past its 500 ms time limit; dead-lettered once it is stopped."""
    _started(task_id)
    _block(how, port)
    _finished(task_id)


@dramatiq.actor(time_limit=500, max_retries=1, min_backoff=50, max_backoff=100)
def retried(task_id: str, how: str, port: int) -> None:
    """Stopped by its time limit on the first try, finishes on the retry."""
    _started(task_id)
    if _records.incr(key(f"tries:{task_id}")) == 1:
        _block(how, port)
    _finished(task_id)


@dramatiq.actor(notify_shutdown=False, max_retries=0)
def patient(task_id: str, seconds: float) -> None:
    """Opts out of being stopped by a shutdown: the worker waits for it."""
    _started(task_id)
    time.sleep(seconds)
    _finished(task_id)

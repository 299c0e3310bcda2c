"""The Celery app the integration tests run in real ``celery worker`` processes.

Configured by the environment the test gives the worker: ``TASKS_REDIS_URL`` (the test
Redis server, broker and result backend), ``TASKS_NAMESPACE`` (this test's keys and
queue), ``TASKS_STOPPABLE`` (``1``: ``stoppable.integrations.celery.install(app)``),
``TASKS_STOP_ON_SHUTDOWN`` and ``TASKS_TIME_LIMIT`` (the global ``task_time_limit``).

Tasks record in Redis when they start (``started``) and finish (``finished:<id>``, a
counter: more than 1 would be a task run twice to completion); a ``task_postrun``
receiver records how each run ended (``ended``: ``id|state|exception|first cause|time``,
the first cause being what the task's own code saw), outside the task's guard, and a
``task_revoked`` receiver which tasks Celery announced revoked (``revoked``).
"""

from __future__ import annotations

import os
import queue
import socket
import time
from typing import Any

import redis
from celery import Celery, signals
from celery.exceptions import SoftTimeLimitExceeded

import stoppable.integrations.celery

URL = os.environ.get("TASKS_REDIS_URL", "redis://127.0.0.1:6379/0")
NAMESPACE = os.environ.get("TASKS_NAMESPACE", "tasks-test")
LONG = 60.0  # a blocked call that is not stopped lasts this long

app = Celery("integrations_celery_app", broker=URL, backend=URL)
app.conf.task_default_queue = NAMESPACE
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_hijack_root_logger = True
if os.environ.get("TASKS_TIME_LIMIT"):
    app.conf.task_time_limit = float(os.environ["TASKS_TIME_LIMIT"])
if os.environ.get("TASKS_STOPPABLE", "1") == "1":
    stoppable.integrations.celery.install(
        app, stop_on_shutdown=os.environ.get("TASKS_STOP_ON_SHUTDOWN") == "1"
    )

_records = redis.Redis.from_url(URL)


def key(name: str) -> str:
    """A key of this test's namespace."""
    return f"{NAMESPACE}:test:{name}"


@signals.task_postrun.connect  # type: ignore[untyped-decorator]
def record_end(
    task_id: str, state: str, retval: object = None, args: Any = (), **kwargs: Any
) -> None:
    """Record how a run ended (after the task, outside its guard)."""
    if not isinstance(retval, BaseException):
        name = first = ""
    else:
        first_exc: BaseException = retval
        while first_exc.__cause__ is not None or first_exc.__context__ is not None:
            first_exc = first_exc.__cause__ or first_exc.__context__  # type: ignore[assignment]
        name = f"{type(retval).__module__}.{type(retval).__name__}"
        first = type(first_exc).__name__
    _records.rpush(
        key("ended"), f"{args[0] if args else task_id}|{state}|{name}|{first}|{time.time()}"
    )


@signals.task_revoked.connect  # type: ignore[untyped-decorator]
def record_revoked(request: Any, terminated: bool, signum: Any, **kwargs: Any) -> None:
    """Record that Celery announced a task revoked (``revoked``: ``id|terminated|signum``)."""
    args = getattr(request, "args", None) or ()
    _records.rpush(key("revoked"), f"{args[0] if args else request.id}|{terminated}|{signum}")


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
        redis.Redis.from_url(URL).blpop([key("never-filled")], timeout=0)
    elif how == "wrapping":  # a client that makes its own error of every other one
        try:
            _block("recv", port)
        except Exception as err:
            raise RuntimeError("the client failed") from err
    else:
        raise ValueError(how)


def _run(task_id: str, how: str, port: int) -> None:
    _records.rpush(key("started"), task_id)
    if not _records.exists(key("release")):
        _block(how, port)
    _records.incr(key(f"finished:{task_id}"))


@app.task(time_limit=0.5)  # type: ignore[untyped-decorator]
def limited(task_id: str, how: str, port: int) -> None:
    """Blocked well past its 0.5 s time limit."""
    _run(task_id, how, port)


@app.task(soft_time_limit=0.5, time_limit=30)  # type: ignore[untyped-decorator]
def soft_limited(task_id: str, how: str, port: int) -> None:
    """Blocked well past its 0.5 s soft time limit."""
    _run(task_id, how, port)


@app.task(soft_time_limit=0.5, time_limit=30)  # type: ignore[untyped-decorator]
def soft_cleanup(task_id: str, how: str, port: int) -> str:
    """Catches its soft time limit where it blocks, and cleans up (blocking) before 30 s."""
    _records.rpush(key("started"), task_id)
    client = redis.Redis.from_url(URL)
    try:
        if how == "redis":  # the client the clean-up uses is the one interrupted
            client.blpop([key("never-filled")], timeout=0)
        else:
            _block(how, port)
    except SoftTimeLimitExceeded:
        time.sleep(0.2)  # a clean-up that waits: not refused after the soft limit
        client.rpush(key("cleaned"), task_id)
        return "cleaned"
    finally:
        client.close()
    return "finished"


@app.task(bind=True, soft_time_limit=0.5, time_limit=30, max_retries=1)  # type: ignore[untyped-decorator]
def soft_retry(self: Any, task_id: str, how: str, port: int) -> str:
    """Retries when its soft time limit passes, as Celery's documentation shows."""
    _records.rpush(key("started"), task_id)
    if self.request.retries:
        _records.incr(key(f"finished:{task_id}"))
        return "retried"
    try:
        _block(how, port)
    except SoftTimeLimitExceeded as exc:
        raise self.retry(exc=exc, countdown=0) from exc
    return "finished"


@app.task(soft_time_limit=0.5, time_limit=1.5)  # type: ignore[untyped-decorator]
def soft_then_hard(task_id: str, how: str, port: int) -> None:
    """Catches its soft time limit, then blocks again: the hard limit ends it."""
    _records.rpush(key("started"), task_id)
    try:
        _block(how, port)
    except SoftTimeLimitExceeded:
        _records.rpush(key("cleaned"), task_id)
        time.sleep(LONG)


@app.task  # type: ignore[untyped-decorator]
def blocked(task_id: str, how: str, port: int) -> None:
    """No limit of its own: the global one, a revoke or a shutdown ends it."""
    _run(task_id, how, port)


@app.task(acks_late=True)  # type: ignore[untyped-decorator]
def job(task_id: str, how: str, port: int) -> None:
    """Blocks until the test releases the jobs; requeued if a shutdown stops it."""
    _run(task_id, how, port)


@app.task(time_limit=0.5, acks_late=True, acks_on_failure_or_timeout=False)  # type: ignore[untyped-decorator]
def requeued(task_id: str, how: str, port: int) -> None:
    """Stopped by its time limit on the first run, its message requeued; finishes next."""
    _records.rpush(key("started"), task_id)
    if _records.incr(key(f"tries:{task_id}")) == 1:
        _block(how, port)
    _records.incr(key(f"finished:{task_id}"))

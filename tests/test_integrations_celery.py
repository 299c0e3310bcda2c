"""stoppable.integrations.celery: real ``celery worker`` processes on a real Redis server.

Each worker test starts ``celery worker`` (the ``threads`` or ``solo`` pool) on
``integrations_celery_app`` with its own queue, sends tasks blocked in a socket read, a
plain queue wait, a sleep and redis-py's blocking pop, and watches from outside (Redis
records, the result backend, the worker's log) what a time limit, a revoke or a SIGTERM
does to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import celery
import pytest
from celery.result import AsyncResult

from stoppable.integrations import celery as integration

from .integrations_workers import Records, WorkerProcess
from .net_servers import LoopbackServer, silent
from .redis_server import RedisServer
from .support import LONG, WAKE_BOUND, wait_until

HOWS = ["recv", "queue", "sleep", "redis"]

# Celery's worker looks at its shutdown flag between two turns of its event loop.
SHUTDOWN_BOUND = WAKE_BOUND + 2.0


@pytest.fixture
def silent_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(silent) as server:
        yield server


class App:
    """The test app as a client sees it, and its workers, on one queue."""

    def __init__(self, redis_server: RedisServer, tmp_path: Path, **env: str) -> None:
        self.namespace = redis_server.key("celery")
        self.url = redis_server.url
        self.tmp_path = tmp_path
        self.env = {"TASKS_REDIS_URL": self.url, "TASKS_NAMESPACE": self.namespace, **env}
        self.records = Records(self.url, self.namespace)
        self.client = celery.Celery("client", broker=self.url, backend=self.url)
        self.workers: list[WorkerProcess] = []

    def send(self, task: str, task_id: str, how: str, port: int, **options: Any) -> AsyncResult:
        return self.client.send_task(
            f"tests.integrations_celery_app.{task}",
            args=(task_id, how, port),
            queue=self.namespace,
            **options,
        )

    def worker(self, pool: str = "threads", concurrency: int = 4) -> WorkerProcess:
        name = f"w{len(self.workers)}"
        worker = WorkerProcess(
            [
                "-m",
                "celery",
                "-A",
                "tests.integrations_celery_app",
                "worker",
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-Q",
                self.namespace,
                "-n",
                f"{name}.{self.namespace}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--prefetch-multiplier",
                "1",
            ],
            self.env,
            self.tmp_path / f"{name}.log",
        )
        self.workers.append(worker)
        return worker.start()

    def state(self, result: AsyncResult) -> str:
        return str(AsyncResult(result.id, app=self.client).state)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.client.close()


@pytest.fixture
def make_app(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(**env: str) -> App:
        application = App(redis_server, tmp_path, **env)
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.close()


def ended(app: App) -> dict[str, list[str]]:
    return {entry.split("|")[0]: entry.split("|") for entry in app.records.ended()}


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_time_limit_ends_each_kind_of_blocked_call(
    make_app: Callable[..., App], silent_server: LoopbackServer, pool: str
) -> None:
    app = make_app()
    worker = app.worker(pool)
    results = {how: app.send("limited", how, how, silent_server.port) for how in HOWS}
    app.records.wait_ended(len(HOWS), worker)
    for how, (_, state, exc_name, first, _at) in ended(app).items():
        assert state == "FAILURE", (how, state)
        assert exc_name == "billiard.exceptions.TimeLimitExceeded", (how, exc_name)
        assert first == "DeadlineExceeded", (how, first)  # what the task's code saw
        assert app.records.finished(how) == 0
        assert app.state(results[how]) == "FAILURE"
    assert "hard time limit (0.5 s) exceeded" in worker.log()


def test_an_acks_late_task_past_its_limit_is_requeued_when_celery_says_so(
    make_app: Callable[..., App], silent_server: LoopbackServer
) -> None:
    # acks_late with acks_on_failure_or_timeout=False: Celery rejects a timed-out
    # task's message with requeue, so it runs again (and finishes, the second time).
    app = make_app()
    worker = app.worker()
    app.send("requeued", "again", "recv", silent_server.port)
    app.records.wait_finished(["again"], worker)
    assert app.records.started() == ["again", "again"]
    assert app.records.finished("again") == 1


def test_soft_and_global_time_limits(
    make_app: Callable[..., App], silent_server: LoopbackServer
) -> None:
    app = make_app(TASKS_TIME_LIMIT="0.5")  # the app's task_time_limit
    worker = app.worker()
    soft = app.send("soft_limited", "soft", "recv", silent_server.port)  # its own limits
    # A client that makes its own error of every other one (an `except Exception:`): the
    # task ends with that error, as with prefork's soft limit.
    wrapped = app.send("soft_limited", "wrapped", "wrapping", silent_server.port)
    app.send("blocked", "global", "sleep", silent_server.port)  # none of its own
    app.records.wait_started(3, worker)
    seen = time.time()  # the worker records wall-clock times
    app.records.wait_ended(3, worker)
    for name, result, error in [
        ("soft", soft, "stoppable.integrations.celery.SoftTimeLimitExceeded"),
        ("wrapped", wrapped, "builtins.RuntimeError"),  # what the client made of it
    ]:
        _, state, exc_name, first, at = ended(app)[name]
        assert float(at) - seen < 0.5 + WAKE_BOUND  # not the 30 s hard limit
        assert (state, exc_name, first) == (
            "FAILURE",
            error,
            "SoftTimeLimitExceeded",  # what was raised in the task's blocked recv
        )
        assert app.state(result) == "FAILURE"
    assert "soft time limit (0.5 s) exceeded" in worker.log()
    assert ended(app)["global"][2] == "billiard.exceptions.TimeLimitExceeded"


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_a_task_catches_its_soft_time_limit_where_it_blocks_and_cleans_up(
    make_app: Callable[..., App], silent_server: LoopbackServer, pool: str
) -> None:
    app = make_app()
    worker = app.worker(pool)
    # redis-py makes its own TimeoutError of a socket timeout (and retries it): the
    # soft limit must reach the task's handler through it, as prefork's does.
    hows = HOWS
    results = {how: app.send("soft_cleanup", how, how, silent_server.port) for how in hows}
    hard = app.send("soft_then_hard", "hard", "sleep", silent_server.port)
    app.records.wait_ended(len(hows) + 1, worker)
    records = ended(app)
    for how in hows:
        _, state, exc_name, _first, _at = records[how]
        assert (state, exc_name) == ("SUCCESS", ""), (how, records[how])
        assert results[how].get(timeout=WAKE_BOUND) == "cleaned"
    assert sorted(app.records.client.lrange(app.records.key("cleaned"), 0, -1)) == sorted(
        [*hows, "hard"]
    )
    # Cleaning up past the soft limit, it is the hard one (1.5 s, not LONG) that ends it.
    _, state, exc_name, _first, _at = records["hard"]
    assert (state, exc_name) == ("FAILURE", "billiard.exceptions.TimeLimitExceeded")
    assert app.state(hard) == "FAILURE"
    assert "soft time limit (0.5 s) exceeded" in worker.log()


def test_a_task_may_retry_or_raise_its_own_error_when_its_soft_limit_passes(
    make_app: Callable[..., App], silent_server: LoopbackServer
) -> None:
    # What the task raises after catching it is what it ends with, as with prefork's.
    app = make_app()
    worker = app.worker()
    retried = app.send("soft_retry", "retry", "redis", silent_server.port)
    app.records.wait_ended(2, worker)
    assert app.records.started() == ["retry", "retry"]
    assert sorted(entry.split("|")[1] for entry in app.records.ended()) == ["RETRY", "SUCCESS"]
    assert retried.get(timeout=LONG) == "retried"
    assert "soft time limit (0.5 s) exceeded" in worker.log()


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_revoke_terminate_stops_the_running_task_at_once(
    make_app: Callable[..., App], silent_server: LoopbackServer, pool: str
) -> None:
    app = make_app()
    worker = app.worker(pool)
    hows = HOWS if pool == "threads" else ["recv"]  # solo: one task at a time
    results = {how: app.send("blocked", how, how, silent_server.port) for how in hows}
    app.records.wait_started(len(hows), worker)
    revoked_at = time.monotonic()
    app.client.control.revoke(results["recv"].id, terminate=True)
    app.records.wait_ended(1, worker)
    assert time.monotonic() - revoked_at < WAKE_BOUND
    (only,) = ended(app).values()
    assert only[:4] == ["recv", "IGNORED", "stoppable.integrations.celery.Revoked", "Stopped"]
    wait_until(lambda: app.state(results["recv"]) == "REVOKED", what="REVOKED")
    # As for a terminated prefork process: task_revoked(terminated=True, signum=SIGTERM).
    assert app.records.wait_revoked(1, worker) == ["recv|True|15"]
    assert "revoked (terminate=True)" in worker.log()
    if pool == "threads":
        # The others run on; a revoke without terminate leaves a running task alone.
        app.client.control.revoke(results["sleep"].id)
        time.sleep(0.5)  # nothing to wait for: checking that nothing happens
        assert len(app.records.ended()) == 1


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_revoke_by_stamped_headers_terminate_stops_the_matching_running_tasks(
    make_app: Callable[..., App], silent_server: LoopbackServer, pool: str
) -> None:
    app = make_app()
    worker = app.worker(pool)

    def stamped(how: str, batch: object) -> AsyncResult:
        return app.send(
            "blocked", how, how, silent_server.port, stamped_headers=["batch"], batch=batch
        )

    if pool == "threads":
        results = {
            "recv": stamped("recv", "b1"),
            "redis": stamped("redis", ["b0", "b1"]),  # one of its values matches
            "queue": stamped("queue", "b2"),
            "sleep": app.send("blocked", "sleep", "sleep", silent_server.port),  # no stamps
        }
        matching = ["recv", "redis"]
    else:  # one task at a time
        results = {"recv": stamped("recv", "b1")}
        matching = ["recv"]
    app.records.wait_started(len(results), worker)
    revoked_at = time.monotonic()
    app.client.control.revoke_by_stamped_headers({"batch": "b1"}, terminate=True)
    app.records.wait_ended(len(matching), worker)
    assert time.monotonic() - revoked_at < WAKE_BOUND
    records = ended(app)
    assert sorted(records) == matching
    for how in matching:
        assert records[how][:4] == [
            how,
            "IGNORED",
            "stoppable.integrations.celery.Revoked",
            "Stopped",
        ]
        assert app.records.finished(how) == 0
    wait_until(
        lambda: all(app.state(results[how]) == "REVOKED" for how in matching), what="REVOKED"
    )
    revoked = app.records.wait_revoked(len(matching), worker)
    assert sorted(revoked) == [f"{how}|True|15" for how in matching]
    assert "revoked (terminate=True)" in worker.log()
    if pool == "threads":
        # Headers that match no running task, and a revoke without terminate, stop nothing.
        app.client.control.revoke_by_stamped_headers({"batch": "b9"}, terminate=True)
        app.client.control.revoke_by_stamped_headers({"batch": "b2"})
        time.sleep(0.5)  # nothing to wait for: checking that nothing happens
        assert len(app.records.ended()) == len(matching)


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_sigterm_stops_acks_late_tasks_at_once_and_loses_nothing(
    make_app: Callable[..., App], silent_server: LoopbackServer, pool: str
) -> None:
    app = make_app(TASKS_STOP_ON_SHUTDOWN="1")
    running = 4 if pool == "threads" else 1
    task_ids = [f"{how}-{n}" for n in range(2) for how in HOWS][: 2 * running]
    first = app.worker(pool, concurrency=running)
    for task_id in task_ids:
        app.send("job", task_id, task_id.split("-")[0], silent_server.port)
    app.records.wait_started(running, first)  # blocked; as many others waiting
    sent_at = time.time()  # the worker records wall-clock times
    first.terminate()
    first.wait()
    stopped = list(ended(app).values())
    assert sorted(entry[0] for entry in stopped) == sorted(app.records.started())
    assert len(stopped) == running
    for _, state, exc_name, cause, at in stopped:
        assert (state, exc_name, cause) == (
            "REJECTED",
            "stoppable.integrations.celery.ShutdownRequeued",
            "Stopped",
        )
        assert float(at) - sent_at < SHUTDOWN_BOUND, first.log()  # not the 60 s blocks
    assert "worker shutdown" in first.log()

    app.records.release()
    second = app.worker(pool, concurrency=running)
    app.records.wait_finished(task_ids, second)
    second.terminate()
    second.wait()
    assert all(app.records.finished(task_id) == 1 for task_id in task_ids)


def test_install_refuses_what_is_not_an_app() -> None:
    with pytest.raises(TypeError, match="app"):
        integration.install(object())
    with pytest.raises(TypeError, match="stop_on_shutdown"):
        integration.install(celery.Celery("x"), stop_on_shutdown="yes")  # type: ignore[arg-type]


def test_soft_time_limit_exceeded_is_celerys_and_no_timeout_a_client_would_rewrite() -> None:
    import pickle
    import socket

    from celery.exceptions import SoftTimeLimitExceeded

    import stoppable

    error = integration.SoftTimeLimitExceeded("soft", timeout=1.0)
    assert isinstance(error, SoftTimeLimitExceeded)
    assert isinstance(error, Exception)  # the task's `except Exception:` sees it too
    assert isinstance(error, stoppable.Stopped)
    assert not isinstance(error, OSError)  # no client's `except socket.timeout:` takes it
    assert not isinstance(error, socket.timeout)
    assert error.timeout == 1.0
    again = pickle.loads(pickle.dumps(error))  # results backends and billiard pickle it
    assert (type(again), again.args, again.timeout) == (type(error), ("soft",), 1.0)

"""stoppable.integrations.dramatiq: real ``dramatiq`` workers on a real Redis server.

Each worker test starts the ``dramatiq`` command line on ``integrations_dramatiq_app``
(its own Redis namespace), sends messages to actors blocked in a socket read, a plain
queue wait, a sleep and redis-py's blocking pop, and watches from outside (Redis records
and the worker's log) what a time limit or a SIGTERM does to them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, Retries, ShutdownNotifications
from dramatiq.middleware import Shutdown as DramatiqShutdown
from dramatiq.middleware import TimeLimit as DramatiqTimeLimit
from dramatiq.middleware import TimeLimitExceeded as DramatiqTimeLimitExceeded

import stoppable
from stoppable.integrations import dramatiq as integration

from .integrations_workers import ROOT, Records, WorkerProcess
from .net_servers import LoopbackServer, silent
from .redis_server import RedisServer
from .support import LONG, WAKE_BOUND, wait_until

HOWS = ["recv", "queue", "sleep", "redis"]  # the blocking calls integrations_dramatiq_app has
_namespaces = itertools.count()

# From the SIGTERM to the actors' end (the integration hooks Dramatiq's SIGTERM handler;
# Dramatiq itself looks at its shutdown flag once a second).
SHUTDOWN_BOUND = WAKE_BOUND


@pytest.fixture
def silent_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(silent) as server:
        yield server


class App:
    """The test app as a client sees it, and its workers, in one Redis namespace."""

    def __init__(self, redis_server: RedisServer, tmp_path: Path, *, stoppable: bool) -> None:
        self.namespace = redis_server.key("dramatiq")
        self.url = redis_server.url
        self.tmp_path = tmp_path
        self.env = {
            "TASKS_REDIS_URL": self.url,
            "TASKS_NAMESPACE": self.namespace,
            "TASKS_STOPPABLE": os.environ.get("TASKS_STOPPABLE", "1" if stoppable else "0"),
        }
        self.records = Records(self.url, self.namespace)
        self.broker = RedisBroker(url=self.url, namespace=self.namespace)  # type: ignore[no-untyped-call]
        self.workers: list[WorkerProcess] = []

    def send(self, actor_name: str, *args: Any) -> None:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name="default", actor_name=actor_name, args=args, kwargs={}, options={}
        )
        self.broker.enqueue(message)

    def worker(self, threads: int = 4) -> WorkerProcess:
        name = f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(
            [
                "-m",
                "dramatiq",
                "tests.integrations_dramatiq_app",
                "--processes",
                "1",
                "--threads",
                str(threads),
                "--worker-shutdown-timeout",
                str(int(LONG * 1000)),
            ],
            self.env,
            self.tmp_path / name,
        )
        self.workers.append(worker)
        return worker.start()

    def dead_lettered(self) -> int:
        client = redis.Redis.from_url(self.url)
        return int(client.zcard(f"{self.namespace}:default.XQ"))

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.broker.close()


@pytest.fixture
def app(redis_server: RedisServer, tmp_path: Path) -> Iterator[App]:
    application = App(redis_server, tmp_path, stoppable=True)
    yield application
    application.close()


def test_time_limit_ends_each_kind_of_blocked_call(app: App, silent_server: LoopbackServer) -> None:
    worker = app.worker(threads=len(HOWS))
    for how in HOWS:
        app.send("limited", how, how, silent_server.port)
    app.records.wait_started(len(HOWS), worker)
    seen = time.time()  # the worker records wall-clock times
    app.records.wait_ended(len(HOWS), worker)
    ended = {entry.split("|")[0]: entry.split("|") for entry in app.records.ended()}
    assert set(ended) == set(HOWS)
    for how, (_, exc_name, first, at) in ended.items():
        assert exc_name == "stoppable.integrations.dramatiq.TimeLimitExceeded"
        # What the actor's code saw: the guard's error inside the blocked call.
        assert first == "DeadlineExceeded", (how, first)
        # Within a bound of the 500 ms limit, not when the call would have returned
        # on its own (never: the server is silent, the list stays empty...).
        assert float(at) - seen < 0.5 + WAKE_BOUND, how
        assert app.records.finished(how) == 0
    # max_retries=0: Retries dead-letters each stopped message: none acked as done.
    wait_until(lambda: app.dead_lettered() == len(HOWS), what="4 dead-lettered messages")
    log = worker.log()
    assert log.count("time limit of 500 ms exceeded") >= len(HOWS), log
    assert "stoppable.integrations.dramatiq.TimeLimitExceeded" in log, log


def test_a_stopped_message_is_retried_as_retries_says(
    app: App, silent_server: LoopbackServer
) -> None:
    worker = app.worker(threads=2)
    app.send("retried", "r-recv", "recv", silent_server.port)
    app.send("retried", "r-sleep", "sleep", silent_server.port)
    app.records.wait_finished(["r-recv", "r-sleep"], worker)
    assert app.records.started().count("r-recv") == 2  # stopped once, retried once
    assert app.records.finished("r-recv") == app.records.finished("r-sleep") == 1
    assert app.dead_lettered() == 0


def test_sigterm_stops_blocked_actors_at_once_and_loses_nothing(
    app: App, silent_server: LoopbackServer
) -> None:
    task_ids = [f"{how}-{n}" for n in range(2) for how in HOWS]
    first = app.worker(threads=5)
    app.send("patient", "patient", 1.0)  # opts out: finishes during the shutdown
    app.records.wait_started(1, first)
    for task_id in task_ids:
        app.send("job", task_id, task_id.split("-")[0], silent_server.port)
    app.records.wait_started(5, first)  # four jobs blocked, the other four waiting
    sent_at = time.time()  # the worker records wall-clock times
    first.terminate()
    first.wait()  # Dramatiq's own loops take a few seconds more to exit
    assert app.records.finished("patient") == 1
    stopped = [entry.split("|") for entry in app.records.ended()]
    # Every job that started was stopped (none finished): the ones blocked when the
    # SIGTERM came, and no other (the shutdown lets no thread take a new message).
    assert sorted(entry[0] for entry in stopped) == sorted(app.records.started()[1:])
    assert len(stopped) == 4
    for _, exc_name, cause, at in stopped:
        assert exc_name == "stoppable.integrations.dramatiq.Shutdown"
        assert cause == "Stopped"
        # Not the 60 s the blocked calls would take.
        assert float(at) - sent_at < SHUTDOWN_BOUND, first.log()
    assert "SIGTERM: stopping running actors" in first.log()  # at once, not a second later
    assert "stoppable.integrations.dramatiq.Shutdown: actor 'job'" in first.log()

    # Every message, stopped or never started, is still there for the next worker...
    app.records.release()
    second = app.worker(threads=4)
    app.records.wait_finished(task_ids, second)
    # ...and none ran twice to completion.
    second.terminate()
    second.wait()
    assert all(app.records.finished(task_id) == 1 for task_id in task_ids)
    assert app.dead_lettered() == 0


# -- install() and the middleware, in process (no worker) -------------------------


def stub_broker(**kwargs: Any) -> StubBroker:
    return StubBroker(**kwargs)


def test_install_replaces_time_limit_and_shutdown_notifications_in_place() -> None:
    broker = stub_broker()
    before = [type(m) for m in broker.middleware]
    ours = integration.install(broker)
    after = [type(m) for m in broker.middleware]
    assert DramatiqTimeLimit not in after
    assert ShutdownNotifications not in after
    assert after.index(integration.TimeLimit) == before.index(DramatiqTimeLimit)
    assert [t for t in after if t is not integration.TimeLimit] == [
        t for t in before if t not in (DramatiqTimeLimit, ShutdownNotifications)
    ]
    assert ours.time_limit == 600_000  # Dramatiq's default
    assert integration.install(broker) is ours  # twice: the same middleware
    assert {"time_limit", "notify_shutdown"} <= broker.actor_options


def test_install_keeps_a_configured_default_and_adds_one_when_missing() -> None:
    broker = stub_broker(middleware=[DramatiqTimeLimit(time_limit=1234), Retries()])
    assert integration.install(broker).time_limit == 1234
    broker = stub_broker(middleware=[Retries()])
    assert integration.install(broker, time_limit=99).time_limit == 99
    assert any(isinstance(m, integration.TimeLimit) for m in broker.middleware)


def test_actors_declared_before_and_after_install_are_guarded() -> None:
    broker = stub_broker()

    @dramatiq.actor(broker=broker)
    def before() -> None: ...

    integration.install(broker)

    @dramatiq.actor(broker=broker)
    def after() -> None: ...

    assert getattr(before.fn, "__stoppable_guarded__", False)
    assert getattr(after.fn, "__stoppable_guarded__", False)
    before()  # called directly, outside a worker: runs as it is
    after()


@pytest.mark.parametrize(
    ("value", "error"),
    [("5", TypeError), ([1], TypeError), (True, TypeError), (0, ValueError), (-1, ValueError)],
)
def test_bad_time_limits_are_refused_naming_the_argument(
    value: object, error: type[Exception]
) -> None:
    broker = stub_broker()
    with pytest.raises(error, match="time_limit"):
        integration.install(broker, time_limit=value)  # type: ignore[arg-type]
    integration.install(broker)
    with pytest.raises(error, match="time_limit"):
        dramatiq.actor(broker=broker, time_limit=value)(lambda: None)


def test_install_refuses_what_is_not_a_broker() -> None:
    with pytest.raises(TypeError, match="broker"):
        integration.install(object())  # type: ignore[arg-type]


def test_exceptions_are_dramatiqs_own_and_name_the_reason() -> None:
    limit = integration.TimeLimitExceeded(
        "time limit of 5 ms exceeded", actor_name="a", message_id="m"
    )
    assert isinstance(limit, DramatiqTimeLimitExceeded)
    assert "time limit of 5 ms exceeded" in str(limit)
    assert "'a'" in str(limit)
    shutdown = integration.Shutdown("worker shutdown", actor_name="a", message_id="m")
    assert isinstance(shutdown, DramatiqShutdown)
    assert "worker shutdown" in str(shutdown)


def test_in_process_worker_stops_a_blocked_actor_on_shutdown() -> None:
    # The same path without a subprocess: Worker.stop() sets the stop, the blocked
    # actor's sleep ends at once, Retries re-enqueues the message.
    broker = stub_broker()
    middleware = integration.install(broker)
    entered = stoppable.StopEvent()
    outcome: list[BaseException] = []

    @dramatiq.actor(broker=broker, max_retries=0)
    def sleeper() -> None:
        entered.set()
        try:
            time.sleep(LONG)
        except BaseException as exc:
            outcome.append(exc)
            raise

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    sleeper.send()
    assert entered.wait(LONG)
    started = time.monotonic()
    worker.stop(timeout=int(LONG * 1000))
    assert time.monotonic() - started < WAKE_BOUND
    assert middleware.shutdown.is_set()
    assert isinstance(outcome[0], stoppable.Stopped)
    assert outcome[0].reason == "worker shutdown"


def test_the_example_app_stops_on_sigterm_and_loses_nothing(redis_server: RedisServer) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "EXAMPLE_NAMESPACE": redis_server.key("example"),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dramatiq_app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    exited = next(line for line in lines if line.startswith("worker exited"))
    # Well before the actors' 10 s time limit: the SIGTERM ended their HTTP calls.
    assert float(exited.split()[2]) < 10 - WAKE_BOUND, result.stdout
    assert "messages still in Redis: 4 of 4" in lines, result.stdout
    assert "pages stored: 4 of 4, each once: [1, 1, 1, 1]" in lines, result.stdout


@pytest.mark.parametrize("stop_by", ["time limit", "shutdown"])
def test_an_async_actor_is_cancelled_at_its_await(stop_by: str) -> None:
    broker = stub_broker(middleware=[AsyncIO(), DramatiqTimeLimit(), Retries(max_retries=0)])
    integration.install(broker)
    entered = threading.Event()
    outcome: list[BaseException] = []
    ended: list[BaseException] = []

    class Ended(dramatiq.Middleware):
        def after_process_message(
            self, broker: dramatiq.Broker, message: Any, *, result: object = None,
            exception: BaseException | None = None,
        ) -> None:  # fmt: skip
            if exception is not None:
                ended.append(exception)

    broker.add_middleware(Ended())
    limit = 200 if stop_by == "time limit" else float("inf")

    @dramatiq.actor(broker=broker, time_limit=limit)
    async def waiter() -> None:
        entered.set()
        try:
            await asyncio.sleep(LONG)
        except BaseException as exc:
            outcome.append(exc)
            raise

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        waiter.send()
        assert entered.wait(LONG)
        if stop_by == "shutdown":
            started = time.monotonic()
            worker.stop(timeout=int(LONG * 1000))
            assert time.monotonic() - started < WAKE_BOUND
        wait_until(lambda: bool(ended), what="the actor to end")
    finally:
        if stop_by != "shutdown":
            worker.stop(timeout=int(LONG * 1000))
    assert isinstance(outcome[0], asyncio.CancelledError)
    expected = integration.TimeLimitExceeded if stop_by == "time limit" else integration.Shutdown
    assert isinstance(ended[0], expected)


def test_without_retries_a_message_stopped_by_the_shutdown_is_enqueued_again(
    redis_server: RedisServer,
) -> None:
    # Without Retries, Dramatiq acks a failed message as done: the stopped one would
    # be lost, so the middleware enqueues it again first.
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=redis_server.url,
        namespace=redis_server.key("no-retries"),
        middleware=[DramatiqTimeLimit(), ShutdownNotifications()],
    )
    integration.install(broker)
    entered = threading.Event()

    @dramatiq.actor(broker=broker)
    def sleeper() -> None:
        entered.set()
        time.sleep(LONG)

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    sent = sleeper.send()
    assert entered.wait(LONG)
    worker.stop(timeout=int(LONG * 1000))
    consumer = broker.consume("default", timeout=100)
    again = next(message for message in consumer if message is not None)
    assert again.message_id == sent.message_id
    consumer.close()
    broker.close()

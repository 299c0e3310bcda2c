"""The API a user meets first: lazy families, sleep, queues.join, scope results, Thread's order."""

from __future__ import annotations

import concurrent.futures
import contextlib
import inspect
import pickle
import queue
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator

import pytest

import stoppable
from stoppable import (
    UNTIL_STOPPED,
    DeadlineExceeded,
    StopEvent,
    StopLike,
    Stopped,
    futures,
    net,
    process,
    queues,
    sync,
)

from .support import LONG, SHORT, WAKE_BOUND, start_call, stop_while_blocked, wait_until_blocked

# --- the package: light to import, every family one attribute away -----------------


def test_import_stoppable_loads_no_family_yet_each_loads_on_first_use() -> None:
    script = (
        "import sys, queue, stoppable\n"
        "assert 'requests' not in sys.modules and 'stoppable.queues' not in sys.modules\n"
        "q = queue.Queue(); q.put(1)\n"
        "assert stoppable.queues.get(q, timeout=1) == 1\n"
        "assert 'requests' not in sys.modules\n"
        "assert stoppable.http.Session is not None and 'requests' in sys.modules\n"
        "assert stoppable.stop_on_signals is stoppable.signals.stop_on_signals\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=LONG, check=False
    )
    assert done.stdout == "ok\n", done.stderr


def test_an_unknown_attribute_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_family"):
        stoppable.no_such_family  # noqa: B018


@pytest.mark.parametrize("family", ["queues", "sync", "net", "process", "futures", "signals"])
def test_dir_of_a_family_is_its_public_api(family: str) -> None:
    module = getattr(stoppable, family)
    assert dir(module) == sorted(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, types.GenericAlias):
            continue  # a type alias (net.Resolver); Python 3.10 calls it a class
        if inspect.isclass(value) or inspect.isroutine(value):
            assert value.__doc__, f"{family}.{name} has no docstring"


def test_dir_of_the_package_shows_core_names_and_families() -> None:
    names = dir(stoppable)
    assert {"StopEvent", "scope", "sleep", "stop_on_signals", "queues", "http"} <= set(names)
    assert "importlib" not in names


def test_process_still_exports_stop_on_signals() -> None:
    assert stoppable.process.stop_on_signals is stoppable.stop_on_signals


# --- sleep -------------------------------------------------------------------------


def test_sleep_returns_after_its_time() -> None:
    started = time.monotonic()
    stoppable.sleep(SHORT)
    assert time.monotonic() - started >= SHORT
    stoppable.sleep(0)


def test_sleep_is_ended_at_once_by_a_stop() -> None:
    stop_while_blocked(lambda stop: stoppable.sleep(LONG, stop=stop))


def test_sleep_honours_a_scope_stop_and_a_set_stop_raises_at_once() -> None:
    stop = StopEvent()
    stop.set("done")
    with stoppable.scope(stop=stop), pytest.raises(Stopped, match="done"):
        stoppable.sleep(LONG)


def test_sleep_past_the_scope_deadline_raises_at_the_deadline() -> None:
    started = time.monotonic()
    with stoppable.scope(timeout=SHORT), pytest.raises(DeadlineExceeded, match="scope"):
        stoppable.sleep(LONG)
    assert time.monotonic() - started < SHORT + WAKE_BOUND


@pytest.mark.parametrize("bad", [None, -1, "1", float("nan")])
def test_sleep_refuses_bad_seconds_naming_them(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="seconds"):
        stoppable.sleep(bad)  # type: ignore[arg-type]


# --- queues.join -------------------------------------------------------------------


def test_join_returns_at_once_when_nothing_is_pending() -> None:
    queues.join(queue.Queue(), timeout=0)


def test_join_returns_once_every_item_is_done() -> None:
    q: queue.Queue[int] = queue.Queue()
    for item in range(3):
        q.put(item)
    thread, outcome = start_call(lambda: queues.join(q, timeout=LONG))
    wait_until_blocked(thread)
    for _ in range(3):
        q.get_nowait()
        q.task_done()
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.error is None


def test_join_is_stopped_at_once_and_times_out_leaving_the_queue_as_it_was() -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    stop_while_blocked(lambda stop: queues.join(q, timeout=LONG, stop=stop))
    with pytest.raises(DeadlineExceeded, match="queue join"):
        queues.join(q, timeout=SHORT)
    assert q.unfinished_tasks == 1
    assert not q.all_tasks_done._waiters  # type: ignore[attr-defined]
    q.get_nowait()
    q.task_done()
    queues.join(q, timeout=0)


def test_join_refuses_what_is_not_a_queue_and_bad_timeouts() -> None:
    with pytest.raises(TypeError, match="q must be"):
        queues.join(queue.SimpleQueue(), timeout=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout"):
        queues.join(queue.Queue(), timeout=None)  # type: ignore[arg-type]


# --- a scope tells what happened ---------------------------------------------------


def test_scope_expired_is_false_when_the_block_ends_in_time() -> None:
    with stoppable.scope(timeout=LONG) as block:
        assert not block.expired
    assert not block.expired
    with stoppable.scope(stop=StopEvent()) as unlimited:
        pass
    assert not unlimited.expired


def test_scope_expired_records_a_deadline_the_code_inside_swallowed() -> None:
    # contextlib.suppress: the kind of handler that hides a timeout.
    with stoppable.scope(timeout=SHORT) as block, contextlib.suppress(queue.Empty):
        queues.get(queue.Queue(), timeout=LONG)
    assert block.expired


def test_raise_if_expired_raises_at_exit_chained_from_what_left_the_block() -> None:
    with (
        pytest.raises(DeadlineExceeded, match="scope") as raised,
        stoppable.scope(timeout=SHORT, raise_if_expired=True),
    ):
        try:
            queues.get(queue.Queue(), timeout=LONG)
        except queue.Empty:
            raise ConnectionError("the client's own error") from None
    assert isinstance(raised.value.__cause__, ConnectionError)


def test_raise_if_expired_keeps_a_deadline_error_and_base_exceptions() -> None:
    with pytest.raises(queue.Empty), stoppable.scope(timeout=SHORT, raise_if_expired=True):
        queues.get(queue.Queue(), timeout=LONG)
    stop = StopEvent()
    with pytest.raises(Stopped), stoppable.scope(timeout=0, raise_if_expired=True):
        stop.set()
        queues.get(queue.Queue(), timeout=LONG, stop=stop)


def test_raise_if_expired_does_nothing_in_time_and_is_validated() -> None:
    with stoppable.scope(timeout=LONG, raise_if_expired=True):
        pass
    with pytest.raises(TypeError, match="raise_if_expired"):
        stoppable.scope(timeout=1, raise_if_expired=1)  # type: ignore[arg-type]


# --- sync.Thread takes threading.Thread's arguments in threading.Thread's order -----


def test_thread_takes_threading_threads_arguments_in_its_order() -> None:
    seen: list[object] = []
    thread = sync.Thread(None, lambda item, *, stop: seen.append(item), "worker", ("x",))
    thread.start()
    sync.join(thread, timeout=LONG)
    assert seen == ["x"]
    assert thread.name == "worker"


def test_thread_with_the_function_in_groups_place_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="target="):
        sync.Thread(print, ("x",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="target must be callable"):
        sync.Thread(target="print")  # type: ignore[arg-type]


# --- every executor's shutdown is bounded by default --------------------------------


def test_executor_shutdown_is_bounded_by_default() -> None:
    for function in (
        futures.ThreadPoolExecutor.shutdown,
        futures.ThreadPoolExecutor.__init__,
        futures.ProcessPoolExecutor.__init__,
    ):
        parameters = inspect.signature(function).parameters
        bound = parameters.get("timeout") or parameters["shutdown_timeout"]
        assert bound.default == futures.SHUTDOWN_TIMEOUT < float("inf")
    executor = futures.ThreadPoolExecutor(1)
    with pytest.raises(TypeError, match="timeout"):
        executor.shutdown(timeout=None)  # type: ignore[arg-type]
    executor.shutdown(timeout=LONG)


def test_executor_shutdown_reports_a_task_that_ignores_its_stop() -> None:
    release = threading.Event()
    executor = futures.ThreadPoolExecutor(1)
    executor.submit(release.wait, LONG)
    with pytest.raises(futures.ShutdownDeadline, match="wait"):
        executor.shutdown(stop=True, timeout=SHORT)
    release.set()
    executor.shutdown(timeout=LONG)


# --- UNTIL_STOPPED: waits that last until a stop -----------------------------------


UNTIL_STOPPED_WAITS = [
    "futures.result",
    "net.accept",
    "queues.get",
    "sleep",
    "sync.acquire",
    "sync.wait",
]

Wait = Callable[[StopLike | None], object]


@pytest.fixture
def until_stopped_waits() -> Iterator[dict[str, Wait]]:
    """One wait per family, each with ``timeout=UNTIL_STOPPED``."""
    held = threading.Lock()
    held.acquire(blocking=False)  # a fresh lock: taken at once
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield {
            "queues.get": lambda stop: queues.get(queue.Queue(), timeout=UNTIL_STOPPED, stop=stop),
            "sync.acquire": lambda stop: sync.acquire(held, timeout=UNTIL_STOPPED, stop=stop),
            "sync.wait": lambda stop: sync.wait(
                threading.Event(), timeout=UNTIL_STOPPED, stop=stop
            ),
            "net.accept": lambda stop: net.accept(listener, timeout=UNTIL_STOPPED, stop=stop),
            "futures.result": lambda stop: futures.result(
                concurrent.futures.Future(), timeout=UNTIL_STOPPED, stop=stop
            ),
            "sleep": lambda stop: stoppable.sleep(UNTIL_STOPPED, stop=stop),
        }


@pytest.mark.parametrize("name", UNTIL_STOPPED_WAITS)
def test_until_stopped_lasts_until_the_stop(
    name: str, until_stopped_waits: dict[str, Wait], fast_polling: None
) -> None:
    stop_while_blocked(until_stopped_waits[name])


@pytest.mark.parametrize("name", UNTIL_STOPPED_WAITS)
def test_until_stopped_without_any_stop_is_refused_naming_timeout(
    name: str, until_stopped_waits: dict[str, Wait]
) -> None:
    with pytest.raises(ValueError, match=r"(timeout|seconds)=UNTIL_STOPPED needs a stop"):
        until_stopped_waits[name](None)


def test_until_stopped_takes_an_enclosing_scopes_stop_and_its_deadline() -> None:
    stop_while_blocked(
        lambda stop: _in_scope(stop, lambda: queues.get(queue.Queue(), timeout=UNTIL_STOPPED))
    )
    started = time.monotonic()
    with (
        pytest.raises(DeadlineExceeded, match="scope"),
        stoppable.scope(timeout=SHORT, stop=StopEvent()),
    ):
        queues.get(queue.Queue(), timeout=UNTIL_STOPPED)
    assert time.monotonic() - started < SHORT + WAKE_BOUND


def _in_scope(stop: StopLike, call: Callable[[], object]) -> object:
    with stoppable.scope(stop=stop):
        return call()


def test_until_stopped_is_refused_where_nothing_waits_for_a_stop() -> None:
    with pytest.raises(ValueError, match="UNTIL_STOPPED"):
        stoppable.scope(timeout=UNTIL_STOPPED)
    executor = futures.ThreadPoolExecutor(1)
    with pytest.raises(ValueError, match="UNTIL_STOPPED"):
        executor.shutdown(timeout=UNTIL_STOPPED)
    executor.shutdown(timeout=LONG)


def test_until_stopped_connects_and_ends_a_child_on_stop() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, net.connect(listener.getsockname(), timeout=UNTIL_STOPPED, stop=StopEvent()):
        pass
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_while_blocked(lambda stop: process.wait(child, timeout=UNTIL_STOPPED, stop=stop))
    assert child.returncode is not None


def test_until_stopped_is_one_object_that_pickles_to_itself() -> None:
    assert pickle.loads(pickle.dumps(UNTIL_STOPPED)) is UNTIL_STOPPED
    assert repr(UNTIL_STOPPED) == "stoppable.UNTIL_STOPPED"


# --- one rule for error names: every timeout error is named for what ran out --------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Timeout", "RequestDeadline"),
        ("ConnectTimeout", "ConnectDeadline"),
        ("ReadTimeout", "ReadDeadline"),
        ("PoolTimeout", "PoolWaitDeadline"),
    ],
)
def test_http_timeout_names_of_0_1_are_deprecated_aliases(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"use stoppable.http.{new}"):
        alias = getattr(stoppable.http, old)
    assert alias is getattr(stoppable.http, new)
    assert old not in dir(stoppable.http)


def test_every_timeout_error_is_named_for_what_ran_out() -> None:
    for family in ("queues", "sync", "net", "http", "process", "futures"):
        module = getattr(stoppable, family)
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, DeadlineExceeded):
                assert name.endswith("Deadline"), f"{family}.{name}"

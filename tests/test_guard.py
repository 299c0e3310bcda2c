"""stoppable.guard: foreign blocking calls in the guarded thread, bounded and stoppable.

Real sockets, threads and processes; no mocks. Each test checks a blocking operation
made by plain standard-library code (not a stoppable wrapper) inside a guard.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped, guard
from stoppable._guard import _install

from .support import LONG, SHORT, WAKE_BOUND, start_call, wait_until, wait_until_blocked


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def stopped_in_guard(block: Callable[[], object], reason: str = "shutdown") -> BaseException:
    """Run ``block`` inside ``guard(stop=...)`` in a thread, stop it once blocked."""
    stop = StopEvent()

    def run() -> object:
        with guard(stop=stop):
            return block()

    thread, outcome = start_call(run)
    wait_until_blocked(thread)
    set_at = time.perf_counter()
    stop.set(reason)
    assert outcome.done.wait(WAKE_BOUND), "the stop did not end the call"
    assert outcome.ended_at is not None
    assert outcome.ended_at - set_at < WAKE_BOUND
    assert isinstance(outcome.error, Stopped), repr(outcome.error)
    assert outcome.error.reason == reason
    assert stop._callback_count() == 0
    return outcome.error


def expires_in_guard(block: Callable[[], object], timeout: float = SHORT) -> BaseException:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info, guard(timeout=timeout):
        block()
    elapsed = time.monotonic() - started
    assert timeout * 0.9 <= elapsed < timeout + WAKE_BOUND
    return info.value


# --- the API ---------------------------------------------------------------------------


def test_guard_is_exported_and_needs_a_limit() -> None:
    assert stoppable.guard is guard
    with pytest.raises(TypeError, match="timeout, a stop"):
        guard()
    with pytest.raises(ValueError, match="timeout"):
        guard(timeout=-1)
    with pytest.raises(TypeError, match="stop"):
        guard(stop=object())  # type: ignore[arg-type]


def test_a_guard_is_entered_once() -> None:
    g = guard(timeout=LONG)
    with g:
        pass
    with pytest.raises(RuntimeError, match="once"), g:
        pass


# --- sockets ------------------------------------------------------------------------


def test_recv_on_a_blocking_socket_is_stopped(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    stopped_in_guard(lambda: a.recv(10))


def test_recv_deadline_is_a_socket_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    error = expires_in_guard(lambda: a.recv(10))
    assert isinstance(error, socket.timeout)
    assert "guard" in str(error)


def test_data_already_there_is_returned(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.sendall(b"hello")
    with guard(timeout=LONG):
        assert a.recv(10) == b"hello"


def test_sleep_is_stopped_and_bounded() -> None:
    stopped_in_guard(lambda: time.sleep(LONG))
    expires_in_guard(lambda: time.sleep(LONG))
    with guard(timeout=LONG):
        started = time.monotonic()
        time.sleep(0.05)  # its own length still applies
        assert time.monotonic() - started >= 0.05


def test_queue_get_is_stopped_and_bounded() -> None:
    q: queue.Queue[int] = queue.Queue()
    stopped_in_guard(lambda: q.get())
    expires_in_guard(lambda: q.get())


def test_socket_methods_are_removed_when_no_guard_is_open() -> None:
    original = socket.socket.__dict__.get("recv")
    with guard(timeout=LONG):
        assert _install.is_installed()
        assert socket.socket.__dict__.get("recv") is not original
    assert not _install.is_installed()
    assert socket.socket.__dict__.get("recv") is original


def test_other_threads_are_untouched(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    stop = StopEvent()
    stop.set("already")
    ready = threading.Event()
    release = threading.Event()

    def guarded() -> None:
        try:
            with guard(stop=stop):
                ready.set()
                release.wait(LONG)  # noqa: STP100 - raises at once: the stop is set
        except Stopped:
            ready.set()
            release.wait(LONG)  # noqa: STP100 - a plain wait, outside the guard

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    wait_until(ready.is_set)
    # This thread is outside every guard: its plain recv waits for data as usual.
    reader, outcome = start_call(lambda: a.recv(10))
    wait_until_blocked(reader, frozenset({"recv", "<lambda>", "run"}))
    b.sendall(b"x")
    assert outcome.done.wait(LONG)
    assert outcome.result == b"x"
    release.set()
    thread.join(LONG)

"""stoppable.process: run/wait/communicate on real children, and stop_on_signals on real signals."""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped, _child, process, queues

from .support import LONG, SHORT, WAKE_BOUND, open_fds, start_call, wait_until, wait_until_blocked

PY = sys.executable

# Children are Python scripts (portable). A child that has done its part and is about to
# block creates the file named by its last argument: the test's ready signal.
SLEEPER = "import time; time.sleep(60)"
PARTIAL = (
    "import sys, time, pathlib\n"
    "sys.stdout.write('partial out'); sys.stdout.flush()\n"
    "sys.stderr.write('partial err'); sys.stderr.flush()\n"
    "pathlib.Path(sys.argv[-1]).touch()\n"
    "time.sleep(60)\n"
)
IGNORES_SIGTERM = (
    "import signal, sys, time, pathlib\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\n"
    "pathlib.Path(sys.argv[-1]).touch()\n"
    "time.sleep(60)\n"
)
CLEANS_UP = (
    "import signal, sys, time, pathlib\n"
    "def bye(*_):\n"
    "    print('cleaned up', flush=True); sys.exit(3)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "pathlib.Path(sys.argv[-1]).touch()\n"
    "time.sleep(60)\n"
)


@pytest.fixture(params=["pidfd", "polled"])
def exit_wake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of noticing a child's exit: the pidfd, and the bounded poll without one."""
    if request.param == "pidfd":
        if not _child._use_pidfd:
            pytest.skip("no pidfd on this system")
    else:
        monkeypatch.setattr(_child, "_use_pidfd", False)
    return str(request.param)


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    return tmp_path / "ready"


def my_children() -> list[tuple[int, str, str]]:
    """This process's children: (pid, state, command line); zombies have state Z."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            found.append((int(entry), fields[0], cmdline))
    return found


def my_child_commands() -> list[tuple[int, str]]:
    """This process's children as (pid, command line): which exist, not their state
    (a long-lived child such as the session's redis-server may be running or asleep)."""
    return [(pid, cmdline) for pid, _state, cmdline in my_children()]


def gone(pid: int) -> bool:
    """Whether ``pid`` has been reaped (not even a zombie is left)."""
    return not Path(f"/proc/{pid}").exists()


def stop_when_ready(stop: StopEvent, ready: Path, reason: str = "test") -> float:
    """Set ``stop`` once the child has made ``ready``; when it was set."""
    wait_until(ready.exists, what="the child to be ready")
    set_at = time.perf_counter()
    stop.set(reason=reason)
    return set_at


# --- arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(None, TypeError), (-1, ValueError), (float("nan"), ValueError), (True, TypeError)],
)
def test_bad_timeout_is_refused_before_anything_happens(timeout: Any, error: type) -> None:
    before = my_child_commands()
    with pytest.raises(error, match="timeout"):
        process.run([PY, "-c", "pass"], timeout=timeout)
    assert my_child_commands() == before  # nothing was started
    with subprocess.Popen([PY, "-c", SLEEPER]) as popen:
        for call in (process.wait, process.communicate):
            with pytest.raises(error, match="timeout"):
                call(popen, timeout=timeout)
        assert popen.poll() is None  # the child was not touched
        popen.kill()


def test_bad_kill_after_and_input_are_refused() -> None:
    with pytest.raises(ValueError, match="kill_after"):
        process.run([PY, "-c", "pass"], timeout=1, kill_after=-1)
    with pytest.raises(TypeError, match="kill_after"):
        process.run([PY, "-c", "pass"], timeout=1, kill_after=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="input must be bytes"):
        process.run([PY, "-c", "pass"], timeout=1, input="text")
    with pytest.raises(TypeError, match="input must be str"):
        process.run([PY, "-c", "pass"], timeout=1, input=b"bytes", text=True)
    with pytest.raises(ValueError, match="capture_output"):
        process.run([PY, "-c", "pass"], timeout=1, capture_output=True, stdout=subprocess.PIPE)
    with subprocess.Popen([PY, "-c", "pass"]) as popen:
        with pytest.raises(ValueError, match="stdin is not a pipe"):
            process.communicate(popen, b"data", timeout=1)
        assert process.wait(popen, timeout=LONG) == 0


# --- run: as subprocess.run -----------------------------------------------------


def test_run_returns_a_completed_process_like_subprocess_run(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "data = sys.stdin.read()\n"
        "print(data.upper(), os.getcwd(), os.environ['PROBE'], end='')\n"
        "print('warn', file=sys.stderr)\n"
        "sys.exit(7)\n"
    )
    env = {**os.environ, "PROBE": "probe"}
    result = process.run(
        [PY, "-c", script],
        timeout=LONG,
        input="abc\r\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    expected = subprocess.run(
        [PY, "-c", script],
        timeout=LONG,
        input="abc\r\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert isinstance(result, subprocess.CompletedProcess)
    assert (result.args, result.returncode, result.stdout, result.stderr) == (
        expected.args,
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )
    assert result.returncode == 7
    assert result.stdout == f"ABC\n {tmp_path} probe"
    with pytest.raises(subprocess.CalledProcessError) as caught:
        process.run(
            [PY, "-c", script], timeout=LONG, input=b"x", capture_output=True, check=True, env=env
        )
    assert caught.value.returncode == 7
    assert caught.value.stdout.startswith(b"X")


def test_run_without_capture_and_with_stderr_into_stdout() -> None:
    result = process.run([PY, "-c", "import sys; sys.exit(0)"], timeout=LONG)
    assert (result.returncode, result.stdout, result.stderr) == (0, None, None)
    result = process.run(
        [PY, "-c", "import sys; print('o', flush=True); print('e', file=sys.stderr)"],
        timeout=LONG,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert result.stdout == b"o\ne\n"
    assert result.stderr is None


def test_run_moves_megabytes_both_ways_without_deadlock() -> None:
    data = os.urandom(3_000_000)
    result = process.run(
        [
            PY,
            "-c",
            "import sys; d = sys.stdin.buffer.read(); "
            "sys.stderr.buffer.write(d[:1000]); sys.stdout.buffer.write(d)",
        ],
        timeout=LONG,
        input=data,
        capture_output=True,
    )
    assert result.stdout == data
    assert result.stderr == data[:1000]


def test_a_child_that_does_not_read_its_input_is_not_an_error() -> None:
    result = process.run([PY, "-c", "pass"], timeout=LONG, input=b"x" * 1_000_000)
    assert result.returncode == 0


# --- deadline ---------------------------------------------------------------------


def test_timeout_is_deadline_exceeded_and_timeout_expired_with_the_output_so_far(
    ready: Path,
) -> None:
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        process.run([PY, "-c", PARTIAL, str(ready)], timeout=1.0, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    error = caught.value
    assert isinstance(error, DeadlineExceeded)
    assert isinstance(error, process.ProcessDeadline)
    assert isinstance(error, TimeoutError)
    assert error.timeout == 1.0
    assert error.cmd == [PY, "-c", PARTIAL, str(ready)]
    # Bytes even in text mode, as subprocess.TimeoutExpired documents.
    assert (error.output, error.stdout, error.stderr) == (
        b"partial out",
        b"partial out",
        b"partial err",
    )
    assert error.returncode == -signal.SIGTERM
    assert "timed out after 1 s" in str(error)
    assert "partial" not in str(error)  # the program, not its arguments
    assert 1.0 <= elapsed < 1.0 + WAKE_BOUND


def test_wait_timeout_ends_and_reaps_the_child() -> None:
    with subprocess.Popen([PY, "-c", SLEEPER]) as popen:
        with pytest.raises(process.ProcessDeadline) as caught:
            process.wait(popen, timeout=SHORT)
        assert caught.value.output is None
        assert popen.returncode == -signal.SIGTERM
        assert gone(popen.pid)


def test_the_deadline_covers_input_that_the_child_never_reads() -> None:
    # A full pipe: the write would block forever without the deadline.
    with pytest.raises(process.ProcessDeadline):
        process.run([PY, "-c", SLEEPER], timeout=SHORT, input=b"x" * 10_000_000)


def test_a_scope_deadline_bounds_the_run() -> None:
    with stoppable.scope(timeout=SHORT), pytest.raises(process.ProcessDeadline) as caught:
        process.run([PY, "-c", SLEEPER], timeout=LONG)
    assert "scope" in str(caught.value)


def test_deadline_error_pickles_with_its_output() -> None:
    error = process.ProcessDeadline("m", timeout=2.0, cmd=["x"], output=b"o", stderr=b"e")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, subprocess.TimeoutExpired)
    assert (str(copy), copy.timeout, copy.cmd, copy.output, copy.stderr) == (
        "m",
        2.0,
        ["x"],
        b"o",
        b"e",
    )


# --- stop -------------------------------------------------------------------------


def test_stop_ends_the_run_at_once_and_keeps_the_partial_output(
    ready: Path, no_polling: None
) -> None:
    stop = StopEvent()
    _, outcome = start_call(
        lambda: process.run(
            [PY, "-c", PARTIAL, str(ready)], timeout=LONG, stop=stop, capture_output=True
        )
    )
    set_at = stop_when_ready(stop, ready, reason="shutdown")
    assert outcome.done.wait(LONG)
    error = outcome.error
    assert isinstance(error, process.ProcessStopped)
    assert isinstance(error, Stopped)
    assert error.reason == "shutdown"
    assert (error.output, error.stdout, error.stderr) == (
        b"partial out",
        b"partial out",
        b"partial err",
    )
    assert error.returncode == -signal.SIGTERM
    assert outcome.ended_at is not None
    assert outcome.ended_at - set_at < WAKE_BOUND  # woken, not polled (LONG slices)


def test_stop_ends_wait_at_once(exit_wake: str, no_polling: None) -> None:
    stop = StopEvent()
    with subprocess.Popen([PY, "-c", SLEEPER]) as popen:
        thread, outcome = start_call(lambda: process.wait(popen, timeout=LONG, stop=stop))
        wait_until_blocked(thread)
        set_at = time.perf_counter()
        stop.set(reason="now")
        assert outcome.done.wait(LONG)
        assert isinstance(outcome.error, process.ProcessStopped)
        assert outcome.error.reason == "now"
        assert outcome.ended_at is not None
        assert outcome.ended_at - set_at < WAKE_BOUND
        assert popen.returncode == -signal.SIGTERM
        assert gone(popen.pid)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(ready: Path) -> None:
    stop = StopEvent()
    grace = 0.5
    _, outcome = start_call(
        lambda: process.run(
            [PY, "-c", IGNORES_SIGTERM, str(ready)],
            timeout=LONG,
            stop=stop,
            capture_output=True,
            kill_after=grace,
        )
    )
    set_at = stop_when_ready(stop, ready)
    assert outcome.done.wait(LONG)
    error = outcome.error
    assert isinstance(error, process.ProcessStopped)
    assert error.returncode == -signal.SIGKILL
    assert error.output == b"ignoring SIGTERM\n"
    assert outcome.ended_at is not None
    assert grace <= outcome.ended_at - set_at < grace + WAKE_BOUND


def test_a_child_that_handles_sigterm_exits_in_its_grace_and_its_last_words_are_kept(
    ready: Path,
) -> None:
    stop = StopEvent()
    _, outcome = start_call(
        lambda: process.run(
            [PY, "-c", CLEANS_UP, str(ready)], timeout=LONG, stop=stop, capture_output=True
        )
    )
    stop_when_ready(stop, ready)
    assert outcome.done.wait(LONG)
    error = outcome.error
    assert isinstance(error, process.ProcessStopped)
    assert error.returncode == 3
    assert error.output == b"cleaned up\n"


def test_kill_after_zero_kills_at_once(ready: Path) -> None:
    stop = StopEvent()
    _, outcome = start_call(
        lambda: process.run(
            [PY, "-c", CLEANS_UP, str(ready)], timeout=LONG, stop=stop, kill_after=0
        )
    )
    stop_when_ready(stop, ready)
    assert outcome.done.wait(LONG)
    assert isinstance(outcome.error, process.ProcessStopped)
    assert outcome.error.returncode == -signal.SIGKILL


def test_a_stop_already_set_starts_nothing_and_ends_a_given_child() -> None:
    stop = StopEvent()
    stop.set(reason="early")
    before = my_child_commands()
    with pytest.raises(Stopped, match="early"):
        process.run([PY, "-c", "pass"], timeout=LONG, stop=stop)
    assert my_child_commands() == before
    for call in (process.wait, process.communicate):
        with subprocess.Popen([PY, "-c", SLEEPER], stdout=subprocess.PIPE) as popen:
            with pytest.raises(process.ProcessStopped) as caught:
                call(popen, timeout=LONG, stop=stop)
            assert caught.value.reason == "early"
            assert popen.returncode is not None
            assert gone(popen.pid)


def test_a_polled_stop_ends_the_run(fast_polling: None) -> None:
    flag = threading.Event()
    thread, outcome = start_call(lambda: process.run([PY, "-c", SLEEPER], timeout=LONG, stop=flag))
    wait_until_blocked(thread)
    flag.set()
    assert outcome.done.wait(LONG)
    assert isinstance(outcome.error, process.ProcessStopped)
    assert outcome.error.reason is None


def test_a_scope_stop_ends_the_run() -> None:
    stop = StopEvent()

    def call() -> object:
        with stoppable.scope(stop=stop):
            return process.run([PY, "-c", SLEEPER], timeout=LONG)

    thread, outcome = start_call(call)
    wait_until_blocked(thread)
    stop.set(reason="scoped")
    assert outcome.done.wait(LONG)
    assert isinstance(outcome.error, process.ProcessStopped)
    assert outcome.error.reason == "scoped"


def test_no_zombies_no_children_no_fds_after_200_stopped_runs() -> None:
    marker = "stoppable-200-runs"
    script = f"import time; time.sleep(60)  # {marker}"
    gc.collect()
    fds = open_fds()
    for _ in range(200):
        stop = StopEvent()
        thread, outcome = start_call(
            lambda stop=stop: process.run(
                [PY, "-c", script], timeout=LONG, stop=stop, capture_output=True
            )  # type: ignore[misc]
        )
        wait_until_blocked(thread)  # blocked means the child exists
        stop.set()
        assert outcome.done.wait(LONG)
        assert isinstance(outcome.error, process.ProcessStopped)
        thread.join(LONG)
    children = my_children()
    assert [child for child in children if child[1] == "Z"] == []
    assert [child for child in children if marker in child[2]] == []
    del stop, thread, outcome  # the last run's StopEvent has an fd
    gc.collect()  # the test's own Outcome/traceback cycles hold StopEvents (and their fds)
    assert open_fds() == fds


# --- the child's exit -------------------------------------------------------------


def test_a_child_that_exits_early_is_reaped_at_once(exit_wake: str, fast_polling: None) -> None:
    # The child exits when its stdin closes: the test decides when.
    with subprocess.Popen(
        [PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as popen:
        thread, outcome = start_call(lambda: process.wait(popen, timeout=LONG))
        wait_until_blocked(thread)
        assert popen.stdin is not None
        closed_at = time.perf_counter()
        popen.stdin.close()
        assert outcome.done.wait(LONG)
        assert outcome.result == 0
        assert outcome.ended_at is not None
        assert outcome.ended_at - closed_at < WAKE_BOUND
        assert gone(popen.pid)


def test_the_pidfd_wakes_the_wait_without_polling(no_polling: None) -> None:
    if not _child._use_pidfd:
        pytest.skip("no pidfd on this system")
    with subprocess.Popen(
        [PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as popen:
        thread, outcome = start_call(lambda: process.wait(popen, timeout=LONG))
        wait_until_blocked(thread)
        assert popen.stdin is not None
        popen.stdin.close()
        assert outcome.done.wait(WAKE_BOUND)  # a poll slice is LONG here
        assert outcome.result == 0


def test_wait_returns_at_once_for_a_child_already_reaped() -> None:
    with subprocess.Popen([PY, "-c", "import sys; sys.exit(4)"]) as popen:
        popen.wait(timeout=LONG)
        assert process.wait(popen, timeout=0) == 4


def test_wait_beside_another_thread_in_popen_wait(no_polling: None) -> None:
    # The other thread holds the Popen's waitpid lock while it reaps: no spin, no hang.
    with subprocess.Popen(
        [PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as popen:
        # Popen.wait() without a timeout is the point here: it holds the lock throughout.
        other, other_outcome = start_call(popen.wait, name="plain-wait")
        wait_until_blocked(other, frozenset({"_try_wait"}))
        ours, outcome = start_call(lambda: process.wait(popen, timeout=LONG))
        wait_until_blocked(ours)
        assert popen.stdin is not None
        popen.stdin.close()
        assert outcome.done.wait(WAKE_BOUND * 2)
        assert other_outcome.done.wait(LONG)
        assert outcome.result == other_outcome.result == 0


def test_terminate_ends_and_reaps(ready: Path) -> None:
    with subprocess.Popen(
        [PY, "-c", IGNORES_SIGTERM, str(ready)], stdout=subprocess.DEVNULL
    ) as popen:
        wait_until(ready.exists)
        assert process.terminate(popen, kill_after=SHORT) == -signal.SIGKILL
        assert gone(popen.pid)
        assert process.terminate(popen) == -signal.SIGKILL  # already ended: at once


# --- communicate --------------------------------------------------------------------


def test_communicate_on_a_callers_popen(exit_wake: str) -> None:
    with subprocess.Popen(
        [PY, "-c", "import sys; sys.stdout.write(sys.stdin.read()[::-1])"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as popen:
        assert process.communicate(popen, "abc\n", timeout=LONG) == ("\ncba", None)
        assert popen.returncode == 0


def test_communicate_sends_what_the_caller_wrote_first() -> None:
    with subprocess.Popen(
        [PY, "-c", "import sys; sys.stdout.write(sys.stdin.read())"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as popen:
        assert popen.stdin is not None
        popen.stdin.write(b"first ")  # buffered, not yet flushed
        out, err = process.communicate(popen, b"second", timeout=LONG)
        assert (out, err) == (b"first second", None)


def test_stopped_communicate_closes_the_pipes_and_keeps_the_output(ready: Path) -> None:
    stop = StopEvent()
    with subprocess.Popen(
        [PY, "-c", PARTIAL, str(ready)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as popen:
        _, outcome = start_call(lambda: process.communicate(popen, timeout=LONG, stop=stop))
        stop_when_ready(stop, ready)
        assert outcome.done.wait(LONG)
        error = outcome.error
        assert isinstance(error, process.ProcessStopped)
        assert (error.output, error.stderr) == (b"partial out", b"partial err")
        assert popen.stdin is not None
        assert popen.stdin.closed
        assert popen.stdout is not None
        assert popen.stdout.closed
        assert popen.stderr is not None
        assert popen.stderr.closed
        assert gone(popen.pid)


def test_a_grandchild_holding_the_pipe_does_not_hold_up_a_stopped_run(ready: Path) -> None:
    # The grandchild inherits stdout and outlives the child: the drain must not wait for it.
    script = (
        "import subprocess, sys, pathlib\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(5)'])\n"
        "print('spawned', flush=True)\n"
        "pathlib.Path(sys.argv[-1]).touch()\n"
        "import time; time.sleep(60)\n"
    )
    stop = StopEvent()
    _, outcome = start_call(
        lambda: process.run(
            [PY, "-c", script, str(ready)], timeout=LONG, stop=stop, capture_output=True
        )
    )
    set_at = stop_when_ready(stop, ready)
    assert outcome.done.wait(LONG)
    assert isinstance(outcome.error, process.ProcessStopped)
    assert outcome.error.output == b"spawned\n"
    assert outcome.ended_at is not None
    assert outcome.ended_at - set_at < WAKE_BOUND


# --- stop_on_signals ------------------------------------------------------------------


def test_a_real_signal_sets_the_stop_with_its_name_and_handlers_are_restored() -> None:
    def previous(signum: int, frame: object) -> None:
        raise AssertionError("the previous handler must not run while we handle SIGTERM")

    old = signal.signal(signal.SIGTERM, previous)
    old_int = signal.getsignal(signal.SIGINT)  # not always Python's: SIG_IGN in a background job
    try:
        guard = process.stop_on_signals()
        with guard as stop:
            assert signal.getsignal(signal.SIGTERM) != previous
            os.kill(os.getpid(), signal.SIGTERM)
            wait_until(stop.is_set, what="the watcher to set the stop")
            assert stop.reason == "SIGTERM"
            assert guard.received == signal.SIGTERM
            assert guard.received_at is not None
            # A second signal now gets the default action (not sent here: it would end pytest).
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.getsignal(signal.SIGINT) == old_int
    finally:
        signal.signal(signal.SIGTERM, old)


def test_the_signal_wakes_a_thread_blocked_in_the_library(no_polling: None) -> None:
    import queue

    stop = StopEvent()
    with process.stop_on_signals(stop, signals=[signal.SIGINT]):
        thread, outcome = start_call(lambda: queues.get(queue.Queue(), timeout=LONG, stop=stop))
        wait_until_blocked(thread)
        sent_at = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)
        assert outcome.done.wait(LONG)
    assert isinstance(outcome.error, Stopped)
    assert outcome.error.reason == "SIGINT"
    assert outcome.ended_at is not None
    assert outcome.ended_at - sent_at < WAKE_BOUND


def test_no_deadlock_when_the_signal_lands_while_the_main_thread_holds_the_stops_lock() -> None:
    # Calling stop.set() from the handler here would wait forever for this very lock.
    stop = StopEvent()
    with process.stop_on_signals(stop):
        with stop._lock:
            signal.raise_signal(signal.SIGTERM)  # the handler has run when this returns
        wait_until(stop.is_set, what="the watcher to set the stop")
    assert stop.reason == "SIGTERM"


def test_a_signal_delivered_to_another_thread_sets_the_stop_while_main_is_blocked() -> None:
    # Any thread may receive a process's signal; the main thread, blocked in a lock wait,
    # is then not interrupted and runs no Python handler until its wait ends (LONG here).
    stop = StopEvent()
    with process.stop_on_signals(stop):
        sender = threading.Thread(
            target=lambda: signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        )
        sender.start()
        blocked = threading.Lock()
        assert blocked.acquire(blocking=False)

        def release_when_stopped() -> None:
            stop.wait(LONG)
            blocked.release()

        waiter = threading.Thread(target=release_when_stopped)
        waiter.start()
        started = time.monotonic()
        assert blocked.acquire(timeout=LONG)  # the main thread blocked until the stop is set
        assert time.monotonic() - started < WAKE_BOUND
        assert stop.reason == "SIGTERM"
        sender.join(LONG)
        waiter.join(LONG)


def test_a_signal_just_before_exit_is_set_on_the_stop_when_exit_returns() -> None:
    stop = StopEvent()
    with process.stop_on_signals(stop):
        signal.raise_signal(signal.SIGTERM)
    assert stop.reason == "SIGTERM"


def test_a_plain_event_can_be_the_stop() -> None:
    flag = threading.Event()
    with process.stop_on_signals(flag):
        signal.raise_signal(signal.SIGINT)
    assert flag.is_set()


def test_refused_outside_the_main_thread_and_for_uncatchable_signals() -> None:
    before = signal.getsignal(signal.SIGTERM)
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            with process.stop_on_signals():
                pass
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join(LONG)
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
    assert signal.getsignal(signal.SIGTERM) == before
    with pytest.raises(ValueError, match="SIGKILL"):
        process.stop_on_signals(signals=[signal.SIGTERM, signal.SIGKILL])
    with pytest.raises(ValueError, match="at least one"):
        process.stop_on_signals(signals=[])
    guard = process.stop_on_signals()
    with guard:
        pass
    with pytest.raises(RuntimeError, match="once"), guard:
        pass
    assert signal.getsignal(signal.SIGTERM) == before


def read_line(stream: Any, timeout: float = LONG) -> str:
    """One line from a child's stdout, waiting at most ``timeout``."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the child said nothing"
    line: str = stream.readline()
    return line.strip()


SHUTS_DOWN_SLOWLY = (
    "import sys, signal\n"
    "from stoppable import StopEvent, process\n"
    "stop = StopEvent()\n"
    "with process.stop_on_signals(stop):\n"
    "    print('ready', flush=True)\n"
    "    stop.wait(60)\n"
    "    print('stopping:', stop.reason, flush=True)\n"
    "    sys.stdin.readline()  # a slow shutdown: until the test says\n"
    "print('handler restored:', signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)\n"
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_falls_through_to_the_default_action(sig: signal.Signals) -> None:
    with subprocess.Popen(
        [PY, "-c", SHUTS_DOWN_SLOWLY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as popen:
        assert read_line(popen.stdout) == "ready"
        popen.send_signal(sig)
        assert read_line(popen.stdout) == f"stopping: {sig.name}"
        popen.send_signal(sig)
        assert process.wait(popen, timeout=LONG) == -sig  # ended by the signal itself


def test_one_signal_then_a_clean_exit_restores_the_handler() -> None:
    with subprocess.Popen(
        [PY, "-c", SHUTS_DOWN_SLOWLY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as popen:
        assert read_line(popen.stdout) == "ready"
        popen.send_signal(signal.SIGTERM)
        assert read_line(popen.stdout) == "stopping: SIGTERM"
        out, _ = process.communicate(popen, "go on\n", timeout=LONG)
        assert out == "handler restored: True\n"
        assert popen.returncode == 0


MAIN_THREAD_NEVER_RUNS_THE_HANDLER = (
    "import os, signal, threading\n"
    "from stoppable import StopEvent, process\n"
    "stop = StopEvent()\n"
    "with process.stop_on_signals(stop):\n"
    "    def report():\n"
    "        stop.wait(60)\n"
    "        print('stopping:', stop.reason, flush=True)\n"
    "    threading.Thread(target=report).start()\n"
    "    # Signals go to other threads; this one is in a C call that no signal interrupts\n"
    "    # (a shell that says ready, then waits for stdin), so it runs no Python handler.\n"
    "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
    "    os.system('echo ready; read line')\n"
)


def test_a_second_signal_ends_the_process_even_if_main_never_ran_the_handler() -> None:
    with subprocess.Popen(
        [PY, "-c", MAIN_THREAD_NEVER_RUNS_THE_HANDLER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as popen:
        assert read_line(popen.stdout) == "ready"
        popen.send_signal(signal.SIGTERM)
        assert read_line(popen.stdout) == "stopping: SIGTERM"
        popen.send_signal(signal.SIGTERM)
        assert process.wait(popen, timeout=LONG) == 128 + signal.SIGTERM


class _Marker:
    """A frame-local object: alive after the call only if a cycle holds the frame."""


def _frame_survives(call: Callable[[subprocess.Popen[bytes], StopEvent], object]) -> bool:
    stop = StopEvent()
    stop.set("enough")
    popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def run() -> weakref.ref[_Marker]:
        marker = _Marker()
        try:
            call(popen, stop)
        except process.ProcessStopped:
            pass
        else:  # pragma: no cover - the stop is set
            raise AssertionError("not stopped")
        return weakref.ref(marker)

    was_enabled = gc.isenabled()
    gc.disable()  # only reference counting may free the frame: a cycle would keep it
    try:
        ref = run()
        survives = ref() is not None
    finally:
        if was_enabled:
            gc.enable()
    assert popen.returncode is not None  # ended and reaped
    return survives


def test_a_stopped_wait_leaves_no_reference_cycle() -> None:
    # The replacement exception's traceback holds the frames it passed through: kept
    # in a local of the frame that raised it, it would keep every caller's locals
    # alive until the cyclic collector runs.
    assert not _frame_survives(lambda popen, stop: process.wait(popen, timeout=LONG, stop=stop))


def test_a_stopped_communicate_leaves_no_reference_cycle() -> None:
    assert not _frame_survives(
        lambda popen, stop: process.communicate(popen, timeout=LONG, stop=stop)
    )

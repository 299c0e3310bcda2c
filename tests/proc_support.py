"""Helpers for tests with real child processes: start methods, /proc checks, task bodies.

Task and child bodies live here, at module level, so that spawn and forkserver
children can import them.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from stoppable import StopEvent, Stopped, futures, queues

METHODS = ["fork", "spawn", "forkserver"]

# Python 3.12+ warns when a process with threads forks (the watcher is a thread);
# multiprocessing's own pools do the same.
FORK_WARNING = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)

# multiprocessing's helper processes (started once, shared by every pool)
_HELPERS = ("resource_tracker", "forkserver")


def children(pid: int | None = None) -> set[int]:
    """This process's children (zombies included), multiprocessing's helpers left out.

    Their pids only: a long-lived child of another test's fixture (a Redis server)
    flips between running and sleeping, and is the same child either way. A child
    left behind, zombie or not, is a new pid.
    """
    parent = os.getpid() if pid is None else pid
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if int(ppid) == parent and not any(h.encode() in cmdline for h in _HELPERS):
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- bodies run in children ----------------------------------------------------------


def wait_for_stop(stop: StopEvent, ready: Any, out: Any) -> None:
    """Block in a stoppable queue get until ``stop``; report what was seen."""
    ready.set()
    started = time.monotonic()
    try:
        queues.get(queue.Queue(), timeout=60, stop=stop)
        out.put(("not stopped", None, None))
    except Stopped as exc:
        out.put((exc.reason, stop.is_set(), time.monotonic() - started))


def wait_on_fd(stop: StopEvent, ready: Any, out: Any) -> None:
    """Block in poll on the stop's descriptor alone."""
    import select

    poller = select.poll()
    poller.register(stop.fileno(), select.POLLIN)
    ready.set()
    events = poller.poll(60_000)
    out.put((bool(events), stop.is_set(), stop.reason))


def set_it(stop: StopEvent, reason: object) -> None:
    """Set ``stop`` from a child."""
    stop.set(reason)


def race_to_set(stop: StopEvent, go: Any, reason: str, out: Any) -> None:
    """Set ``stop`` as soon as ``go`` is set; report the reason that won."""
    go.wait(30)
    stop.set(reason)
    out.put(stop.reason)


def report(stop: StopEvent) -> tuple[bool, object]:
    """A pool task: the stop as the worker sees it."""
    return stop.is_set(), stop.reason


def wait_in_task(stop: StopEvent) -> object:
    """A pool task blocked until ``stop``."""
    try:
        queues.get(queue.Queue(), timeout=60, stop=stop)
    except Stopped as exc:
        return exc.reason
    return "not stopped"


# --- executor tasks -----------------------------------------------------------------------


def square(x: int) -> int:
    return x * x


def fail(message: str) -> None:
    raise ValueError(message)


def pid_and_stop() -> tuple[int, bool]:
    """The worker's pid, and whether the task sees a stop of its own."""
    stop = futures.current_stop()
    return os.getpid(), isinstance(stop, StopEvent) and not stop.is_set()


def blocked(marker: str | None = None) -> str:
    """Mark that the task started, then block in a stoppable call (no stop passed)."""
    if marker:
        Path(marker).write_text(str(os.getpid()))
    queues.get(queue.Queue(), timeout=60)
    return "not stopped"


def stubborn(marker: str | None = None) -> str:
    """Ignore SIGTERM and every stop: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if marker:
        Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.01)  # plain sleep: nothing stoppable
    return "not killed"


def die(code: int) -> None:
    os._exit(code)


def bad_initializer() -> None:
    raise RuntimeError("initializer broke")


def wait_for_file(path: str, timeout: float = 30) -> int:
    """The pid a task wrote to ``path`` (a ready signal), waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = Path(path).read_text()
        except OSError:
            text = ""
        if text:
            return int(text)
        time.sleep(0.005)
    raise AssertionError(f"{path} was not written")


def note_stop(path: str) -> None:
    """Block in a stoppable call; write the stop's reason to ``path`` when stopped."""
    Path(path + ".pid").write_text(str(os.getpid()))
    try:
        queues.get(queue.Queue(), timeout=60)
    except Stopped as exc:
        # Written whole, then renamed: a reader that sees the file sees the reason.
        Path(path + ".tmp").write_text(str(exc.reason))
        os.replace(path + ".tmp", path)
        raise


# Run as a script: a pool whose parent is then killed (test_procpool).
ORPHAN_SCRIPT = """
import multiprocessing, sys, time
from stoppable import futures
from tests import proc_support as ps
pool = futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
pool.submit(ps.note_stop, sys.argv[1])
time.sleep(60)
"""

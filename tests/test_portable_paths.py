"""The non-Linux code paths, forced on Linux: a pipe for wake-ups, no pidfd.

macOS and the BSDs have no eventfd (a ``StopEvent`` wakes ``poll`` through a pipe)
and no pidfd (a child's exit is noticed by a bounded poll). Until a machine for them
exists, those paths are exercised here, beside the Linux ones.
"""

from __future__ import annotations

import gc
import select
import socket
import subprocess
import sys

import pytest

from stoppable import StopEvent, _child, _stop, net, process

from .support import LONG, open_fds, stop_while_blocked


@pytest.fixture(params=["eventfd", "pipe"])
def wakeup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both kinds of wake-up descriptor (an eventfd where Linux has one, a pipe elsewhere)."""
    if request.param == "eventfd":
        if not _stop.use_eventfd:
            pytest.skip("no eventfd here")
    else:
        monkeypatch.setattr(_stop, "use_eventfd", False)
    kind: str = request.param
    return kind


def _descriptors_per_wakeup(kind: str) -> int:
    return 1 if kind == "eventfd" else 2


def test_fileno_turns_readable_for_good_and_is_given_back(wakeup: str) -> None:
    before = open_fds()
    stop = StopEvent()
    fd = stop.fileno()
    assert open_fds() == before + _descriptors_per_wakeup(wakeup)
    assert select.select([fd], [], [], 0)[0] == []
    stop.set()
    for _ in range(2):  # level-triggered: never read, it stays readable
        assert select.select([fd], [], [], 0)[0] == [fd]
    stop.close()
    assert open_fds() == before


@pytest.mark.usefixtures("no_polling")
def test_a_socket_wait_is_woken_at_once(wakeup: str) -> None:
    gc.collect()  # sockets an earlier test dropped in a cycle: not closed during this one
    before = open_fds()
    a, b = socket.socketpair()
    with a, b:
        stop_while_blocked(lambda stop: net.recv(a, 1, timeout=LONG, stop=stop))
    assert open_fds() == before


@pytest.mark.usefixtures("no_polling")
@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no-pidfd"])
def test_a_child_wait_is_woken_at_once(
    wakeup: str, pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.setattr(_child, "_use_pidfd", False)
    elif not _child._use_pidfd:
        pytest.skip("no pidfd here")
    before = open_fds()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as child:
        stop_while_blocked(lambda stop: process.wait(child, timeout=LONG, stop=stop, kill_after=0))
        assert child.returncode is not None
    assert open_fds() == before

"""The child process of a ``process`` call: woken by its exit, ended, and reaped.

``_Child`` holds a ``Popen`` and, where the kernel has them, a pidfd for it: the
exit is then one more descriptor in the ``poll`` of a wait (beside the stops'), and
signals go through the pidfd, so a reaped child's pid reused by another process is
never signalled. Without a pidfd the child is polled with a backoff. ``end()`` is
the one way a child is ended: ``SIGTERM``, a grace, ``SIGKILL``, reaped.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from . import _compat, _limits
from ._wait import MAX_BLOCK, NOT_YET, NotYet

# After SIGKILL a process ends within microseconds unless it is stuck in the kernel
# (uninterruptible I/O on a dead NFS server); then it is left to the standard
# library's own reaper (subprocess reaps finished children when it next starts one).
_REAP_AFTER_KILL = 10.0

_POLLIN: Final = select.POLLIN

# Whether to wake by pidfd; set to False to use the bounded poll (tests do, to cover it).
_use_pidfd: bool = hasattr(os, "pidfd_open")


def _ms(seconds: float) -> int:
    # Rounded up: a remainder below 1 ms must still block, not spin. At most a day:
    # poll() takes an int of milliseconds, and the callers loop while time is left.
    return math.ceil(min(seconds, MAX_BLOCK) * 1000) if seconds > 0 else 0


def _open_pidfd(popen: subprocess.Popen[Any]) -> int | None:
    """A pidfd for the child, or ``None`` (no pidfd here, or the child is already reaped).

    Opened under the ``Popen``'s own waitpid lock where it is free, so the child cannot
    be reaped, and its pid reused, between the check and the open.
    """
    if not _use_pidfd or popen.returncode is not None:
        return None
    lock = _compat.popen_waitpid_lock(popen)
    locked = lock is not None and lock.acquire(False)
    try:
        if popen.returncode is not None:
            return None
        return os.pidfd_open(popen.pid)
    except OSError:  # ESRCH: reaped by someone else; ENOSYS/EPERM: no pidfds here
        return None
    finally:
        if locked:
            lock.release()


class _Child:
    """A child process being waited on: its ``Popen`` and, where it can have one, a pidfd."""

    __slots__ = ("pidfd", "popen")

    def __init__(self, popen: subprocess.Popen[Any]) -> None:
        self.popen = popen
        self.pidfd = _open_pidfd(popen)

    def exit_step(self, stop_fds: Iterable[int]) -> Callable[[float], int | NotYet]:
        """A blocking step for ``wait_loop``: the exit status, or ``NOT_YET``.

        Blocks at most ``seconds`` in a ``poll`` of the pidfd and ``stop_fds``; without a
        pidfd, at most one backoff delay (1 ms doubling to the poll interval) of a
        ``poll`` of ``stop_fds``, so a stop still wakes it at once.
        """
        popen, pidfd = self.popen, self.pidfd
        poller = select.poll()
        for fd in stop_fds:
            poller.register(fd, _POLLIN)
        if pidfd is not None:
            poller.register(pidfd, _POLLIN)
        interval = _limits.get_poll_interval()
        delay = 0.0005

        def attempt(seconds: float) -> int | NotYet:
            nonlocal delay
            code = popen.poll()
            if code is not None:
                return code
            if seconds <= 0:
                return NOT_YET
            if pidfd is None:
                delay = min(delay * 2, interval)
                poller.poll(_ms(min(seconds, delay)))
                code = popen.poll()
            elif any(fd == pidfd for fd, _ in poller.poll(_ms(seconds))):
                code = popen.poll()
                if code is None:
                    # It has exited, but another thread holds the Popen's waitpid lock
                    # (it is reaping the child): wait for that lock, not in a spin.
                    lock = _compat.popen_waitpid_lock(popen)
                    if lock is not None and lock.acquire(True, min(seconds, interval)):
                        lock.release()
                    else:
                        time.sleep(min(seconds, 0.001))
                    code = popen.poll()
            return NOT_YET if code is None else code

        return attempt

    def wait_for_exit(self, seconds: float) -> bool:
        """Wait at most ``seconds`` (no stop can cut it short); whether it was reaped."""
        step = self.exit_step(())
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if step(max(remaining, 0.0)) is not NOT_YET:
                return True
            if remaining <= 0:
                return False

    def send(self, sig: int) -> None:
        """Send ``sig`` unless the child is known to have exited; by pidfd where there is one."""
        popen = self.popen
        if popen.poll() is not None:
            return
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):  # exited since the poll
                signal.pidfd_send_signal(self.pidfd, sig)
        else:
            popen.send_signal(sig)

    def end(self, kill_after: float) -> None:
        """``SIGTERM``, up to ``kill_after`` s of grace, ``SIGKILL``; then reap."""
        if self.popen.poll() is not None:
            return
        try:
            if kill_after > 0:
                self.send(signal.SIGTERM)
                self.wait_for_exit(kill_after)
        finally:  # also if interrupted during the grace (a second Ctrl-C)
            if self.popen.poll() is None:
                self.send(signal.SIGKILL)
                self.wait_for_exit(_REAP_AFTER_KILL)

    def close(self) -> None:
        """Close the pidfd."""
        pidfd, self.pidfd = self.pidfd, None
        if pidfd is not None:
            os.close(pidfd)


def _terminate(popen: subprocess.Popen[Any], kill_after: float) -> None:
    child = _Child(popen)
    try:
        child.end(kill_after)
    finally:
        child.close()

"""Subprocesses with a total deadline, stopped at once and always reaped.

``run``, ``wait`` and ``communicate`` are the ``subprocess`` calls with a ``timeout``
that is a total deadline (spawning, writing input, reading output and waiting for the
exit all count) and a ``stop``. When either ends the call, the child is ended the
same way every time:

1. ``SIGTERM``, so it can clean up;
2. up to ``kill_after`` seconds of grace (``KILL_AFTER``, 1 s, by default; ``0`` skips
   straight to the kill);
3. ``SIGKILL`` if it is still running;
4. reaped (no zombie), its remaining output read without blocking, and the pipes the
   call used closed (no orphaned pipe).

So a stopped or timed-out call returns up to ``kill_after`` seconds after the stop or
deadline if the child ignores ``SIGTERM``, and within microseconds of the child's
exit otherwise.

How a wait is woken, without a busy loop:

- the child's exit: a pidfd (``os.pidfd_open``, Linux 5.3 and later) polled beside
  everything else, so the exit is noticed at once; where there is none (another
  POSIX system, or a sandbox that refuses it), the child is polled with a backoff
  from 1 ms up to the poll interval (``stoppable.set_poll_interval``, 50 ms), as
  ``subprocess`` itself does;
- a ``StopEvent``: its wake-up descriptor is in the same ``poll``, so a stop is
  noticed at once in both cases (a plain ``threading.Event`` stop is checked every
  poll interval);
- output and input (``communicate``, ``run``): the pipes are in the same ``poll``.

Errors: a timeout raises ``ProcessDeadline``, which is both a
``stoppable.DeadlineExceeded`` and the ``subprocess.TimeoutExpired`` the standard
library raises, so existing ``except subprocess.TimeoutExpired`` clauses keep working.
A stop raises ``ProcessStopped``, a ``stoppable.Stopped``. Both carry ``cmd``, the
output captured so far (``output``/``stdout`` and ``stderr``: always ``bytes``, even in
text mode, as ``TimeoutExpired`` documents; ``None`` for a stream that was not
captured) and the ``returncode`` the ended child left. Stops are level-triggered: a
call whose stop is already set raises at once; ``run`` then starts nothing, while
``wait`` and ``communicate`` end the child they were given, as a stop a moment later
would.

``terminate(popen)`` ends a child the same way, for code that manages its own
``Popen``.

``stop_on_signals`` (graceful shutdown on SIGTERM/SIGINT) lives in ``stoppable.signals``;
it is re-exported here for code written against 0.1.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from typing import Any, Final, Union

from ._child import _Child, _terminate
from ._childio import _bytes_input, _close_all, _encode_input, _Pipes
from ._errors import DeadlineExceeded, Stopped
from ._limits import (
    Limits,
    StopLike,
    begin,
    limits,
    validate_stop,
    validate_timeout,
    validate_wait_timeout,
)
from ._wait import WAKE_BY_FD, StopFds, wait_loop
from .signals import stop_on_signals

__all__ = [
    "KILL_AFTER",
    "ProcessDeadline",
    "ProcessStopped",
    "communicate",
    "run",
    "stop_on_signals",
    "terminate",
    "wait",
]

KILL_AFTER: Final = 1.0
"""Default grace, in seconds, between ``SIGTERM`` and ``SIGKILL`` for a child being ended."""


Args = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", Sequence[Any]]


class ProcessDeadline(DeadlineExceeded, subprocess.TimeoutExpired):  # type: ignore[misc]
    """A process call timed out: both ``DeadlineExceeded`` and ``subprocess.TimeoutExpired``.

    ``cmd`` is the child's ``args``, ``timeout`` the budget that ran out, ``output``
    (also ``stdout``) and ``stderr`` the bytes captured before it was ended (``None``
    for a stream that was not captured), ``returncode`` the status it ended with. By
    the time this is raised the child has been ended and reaped.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout: float | None = None,
        cmd: Any = None,
        output: bytes | None = None,
        stderr: bytes | None = None,
        returncode: int | None = None,
    ) -> None:
        DeadlineExceeded.__init__(self, message, timeout=timeout)
        # subprocess.TimeoutExpired's attributes, set as its __init__ would.
        self.cmd = cmd
        self.output = output
        self.stderr = stderr
        self.returncode = returncode

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_deadline,
            (self.args[0], self.timeout, self.cmd, self.output, self.stderr, self.returncode),
        )


def _rebuild_deadline(
    message: str,
    timeout: float | None,
    cmd: Any,
    output: bytes | None,
    stderr: bytes | None,
    returncode: int | None,
) -> ProcessDeadline:
    return ProcessDeadline(
        message, timeout=timeout, cmd=cmd, output=output, stderr=stderr, returncode=returncode
    )


class ProcessStopped(Stopped):
    """A process call was stopped: a ``stoppable.Stopped`` that keeps the child's output.

    ``reason`` is the stop's reason; ``cmd``, ``output`` (also ``stdout``), ``stderr``
    and ``returncode`` are as for ``ProcessDeadline``. The child has been ended and
    reaped by the time this is raised.
    """

    def __init__(
        self,
        reason: object = None,
        *,
        cmd: Any = None,
        output: bytes | None = None,
        stderr: bytes | None = None,
        returncode: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.cmd = cmd
        self.output = output
        self.stderr = stderr
        self.returncode = returncode

    @property
    def stdout(self) -> bytes | None:
        """The same as ``output``, as on ``subprocess.TimeoutExpired``."""
        return self.output

    @stdout.setter
    def stdout(self, value: bytes | None) -> None:
        self.output = value


def _describe(args: Args, pid: int | None = None) -> str:
    """The program, without its arguments (they may hold secrets), for messages."""
    if isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
        program = text.split()[0] if text.split() else text
    elif args:
        program = (
            os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else str(args[0])
        )
    else:
        program = "?"
    if len(program) > 60:
        program = "..." + program[-57:]
    return f"process {program!r}" + ("" if pid is None else f" (pid {pid})")


def _deadline_error(cmd: Any) -> Callable[..., DeadlineExceeded]:
    def make(message: str, *, timeout: float | None = None) -> DeadlineExceeded:
        return ProcessDeadline(message, timeout=timeout, cmd=cmd)

    return make


def _ended(
    child: _Child, pipes: _Pipes | None, kill_after: float, exc: BaseException
) -> BaseException:
    """End the child after ``exc`` interrupted a call; the exception to raise for it.

    The caller raises the result directly (``raise _ended(...)``), never through a
    local name: the raised exception's traceback holds the caller's frame, so a local
    holding the exception would be a reference cycle keeping every frame it passed
    through (and their locals) alive until the cyclic collector runs. A replacement
    comes with its cause suppressed, as ``raise ... from None`` would.
    """
    popen = child.popen
    try:
        child.end(kill_after)
    finally:
        if pipes is not None:
            try:
                pipes.drain()
            finally:
                pipes.close()
    output, stderr = (None, None) if pipes is None else pipes.raw()
    if isinstance(exc, ProcessDeadline):
        exc.output, exc.stderr, exc.returncode = output, stderr, popen.returncode
        return exc
    if isinstance(exc, Stopped) and not isinstance(exc, ProcessStopped):
        stopped = ProcessStopped(
            exc.reason, cmd=popen.args, output=output, stderr=stderr, returncode=popen.returncode
        )
        stopped.__cause__ = None  # as "from None": the Stopped it replaces is not news
        return stopped
    return exc  # KeyboardInterrupt and the like: the child is ended all the same


def _check_popen(popen: object) -> None:
    if not isinstance(popen, subprocess.Popen):
        raise TypeError(f"popen must be a subprocess.Popen, got {type(popen).__name__}")


def _validate_common(timeout: object, stop: object, kill_after: object) -> float:
    """Refuse bad arguments before anything happens to the child; returns kill_after."""
    validate_wait_timeout(timeout, stop)
    if stop is not None:
        validate_stop(stop)
    return validate_timeout(kill_after, "kill_after")


def _communicate(
    popen: subprocess.Popen[Any],
    data: bytes | None,
    kill_after: float,
    make_call: Callable[[], Limits],
) -> tuple[Any, Any]:
    child: _Child | None = None
    pipes: _Pipes | None = None
    try:
        child = _Child(popen)
        call = make_call()  # raises Stopped if the stop is already set
        pipes = _Pipes(popen, data)
        error = _deadline_error(popen.args)
        with StopFds(call) as stop_fds:
            wait_loop(call, pipes.step(stop_fds), wake=WAKE_BY_FD, error=error)
            wait_loop(call, child.exit_step(stop_fds), wake=WAKE_BY_FD, error=error)
        return pipes.results()
    except BaseException as exc:
        if child is None:
            raise
        if pipes is None:  # stopped before any I/O: the pipes are this call's all the same
            pipes = _Pipes(popen, None)
        # Raised directly, never bound to a name (see _ended); B904: _ended sets the cause.
        raise _ended(child, pipes, kill_after, exc)  # noqa: B904
    finally:
        if child is not None:
            child.close()


# --- the public calls -------------------------------------------------------------


def wait(
    popen: subprocess.Popen[Any],
    *,
    timeout: float,
    stop: StopLike | None = None,
    kill_after: float = KILL_AFTER,
) -> int:
    """Wait at most ``timeout`` seconds for ``popen``'s child to exit; its return code.

    Woken at once by the child's exit (a pidfd, where the kernel has one) and by a
    ``StopEvent``. On a stop or at the deadline the child is ended (``SIGTERM``,
    ``kill_after`` seconds of grace, ``SIGKILL``) and reaped, then ``ProcessStopped``
    or ``ProcessDeadline`` is raised (``output``/``stderr`` are ``None``: ``wait``
    reads no pipe). The ``Popen``'s pipes are left to the caller. As with
    ``Popen.wait``, a child writing more than a pipe holds to a pipe nobody reads
    blocks: use ``communicate`` for those.
    """
    _check_popen(popen)
    grace = _validate_common(timeout, stop, kill_after)
    child: _Child | None = None
    try:
        seconds = begin(timeout, stop)
        code = popen.poll()
        if code is not None:
            return code
        call = Limits(seconds, stop, f"wait for {_describe(popen.args, popen.pid)}")
        child = _Child(popen)
        with StopFds(call) as stop_fds:
            return wait_loop(
                call,
                child.exit_step(stop_fds),
                wake=WAKE_BY_FD,
                error=_deadline_error(popen.args),
            )
    except BaseException as exc:
        if child is None:
            child = _Child(popen)
        # Raised directly, never bound to a name (see _ended); B904: _ended sets the cause.
        raise _ended(child, None, grace, exc)  # noqa: B904
    finally:
        if child is not None:
            child.close()


def communicate(
    popen: subprocess.Popen[Any],
    input: Any = None,
    *,
    timeout: float,
    stop: StopLike | None = None,
    kill_after: float = KILL_AFTER,
) -> tuple[Any, Any]:
    """``Popen.communicate`` with a total deadline and a stop: ``(stdout, stderr)``.

    Writes ``input`` (``bytes``; ``str`` in text mode) to the child's stdin, then
    closes it; reads stdout and stderr (those that are pipes) to their end; waits
    for the exit. All in one ``poll`` with the stops: no thread per pipe. In text
    mode the output is decoded with universal newlines, as ``subprocess`` does.

    On a stop or at the deadline the child is ended and reaped, what it had written
    is kept, the pipes are closed, and ``ProcessStopped``/``ProcessDeadline`` carries
    that output (bytes). Unlike ``Popen.communicate`` after a ``TimeoutExpired``, there
    is nothing to retry: the child is gone. Input given without ``stdin=PIPE`` is a
    ``ValueError`` (``subprocess`` ignores it silently).
    """
    _check_popen(popen)
    grace = _validate_common(timeout, stop, kill_after)
    data = _encode_input(popen, input)
    operation = f"communicate with {_describe(popen.args, popen.pid)}"
    return _communicate(popen, data, grace, lambda: limits(timeout, stop, operation))


def run(
    args: Args,
    *,
    timeout: float,
    stop: StopLike | None = None,
    input: Any = None,
    capture_output: bool = False,
    check: bool = False,
    kill_after: float = KILL_AFTER,
    **popen_kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with a total deadline and a stop.

    Takes the same arguments: ``input``, ``capture_output``, ``check``, and anything
    ``Popen`` takes (``stdin``, ``stdout``, ``stderr``, ``text``, ``encoding``,
    ``errors``, ``cwd``, ``env``, ``shell``, ``start_new_session``...). Returns a
    ``subprocess.CompletedProcess``; with ``check=True`` a non-zero exit raises
    ``subprocess.CalledProcessError``, as ``subprocess.run`` does.

    The deadline covers starting the child, the input, the output and the exit. If
    the stop is already set, no child is started. On a stop or at the deadline the
    child is ended (``SIGTERM``, ``kill_after`` seconds of grace, ``SIGKILL``) and
    reaped, and ``ProcessStopped`` or ``ProcessDeadline`` carries the output captured
    so far (bytes). Only the child is signalled: a shell's own children (``shell=True``)
    are not; run them with ``exec`` in the shell command.
    """
    grace = _validate_common(timeout, stop, kill_after)
    if input is not None:
        text_mode = any(popen_kwargs.get(key) for key in _TEXT_MODE_KEYS)
        if text_mode and not isinstance(input, str):
            raise TypeError(f"input must be str in text mode, got {type(input).__name__}")
        if not text_mode:
            _bytes_input(input)  # refused here, before a child is started
    seconds = begin(timeout, stop)
    if input is not None:
        if popen_kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        popen_kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        if popen_kwargs.get("stdout") is not None or popen_kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        popen_kwargs["stdout"] = subprocess.PIPE
        popen_kwargs["stderr"] = subprocess.PIPE
    call = Limits(seconds, stop, f"run of {_describe(args)}")
    popen: subprocess.Popen[Any] = subprocess.Popen(args, **popen_kwargs)
    try:
        data = _encode_input(popen, input)
    except BaseException:  # an input the encoding refuses: the child is not wanted
        _terminate(popen, 0)
        _close_all(popen)
        raise
    stdout, stderr = _communicate(popen, data, grace, lambda: call)
    code = popen.returncode
    if check and code:
        raise subprocess.CalledProcessError(code, popen.args, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(popen.args, code, stdout, stderr)


_TEXT_MODE_KEYS = ("text", "encoding", "errors", "universal_newlines")


def terminate(popen: subprocess.Popen[Any], *, kill_after: float = KILL_AFTER) -> int:
    """End ``popen``'s child as a stopped call does, and reap it; its return code.

    ``SIGTERM``, up to ``kill_after`` seconds for it to exit, then ``SIGKILL``. Returns
    at once if the child has already exited. Leaves the pipes to the caller.
    """
    _check_popen(popen)
    _terminate(popen, validate_timeout(kill_after, "kill_after"))
    code = popen.poll()
    if code is None:  # pragma: no cover - stuck in the kernel even after SIGKILL
        raise ProcessLookupError(f"{_describe(popen.args, popen.pid)} survived SIGKILL")
    return code


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

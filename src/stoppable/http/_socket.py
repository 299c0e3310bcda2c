"""The connection's socket: a ``net.Socket`` keeping its request's budget."""

from __future__ import annotations

import contextlib
import math
import select
import socket
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final

from .. import net
from .._errors import DeadlineExceeded, Stopped
from .._limits import (
    Limits,
    _current_scope,
    _ScopeState,
)
from .._netio import Waiter, wait_ready
from ._budget import _Budget, _within

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

_monotonic = time.monotonic

# --- the socket ------------------------------------------------------------------------


_PLAIN = socket.socket
_DONTWAIT: int = int(getattr(socket, "MSG_DONTWAIT", 0))  # an int: IntFlag | is slow


class _Installed:
    """Install a scope state for a block, and put the caller's back after it."""

    __slots__ = ("_state", "_token")

    def __init__(self, state: _ScopeState) -> None:
        self._state = state

    def __enter__(self) -> None:
        self._token = _current_scope.set(self._state)

    def __exit__(self, *exc_info: object) -> None:
        _current_scope.reset(self._token)


_NOTHING: Final = contextlib.nullcontext()


def _late(budget: _Budget) -> DeadlineExceeded:
    return DeadlineExceeded("the request's deadline passed", timeout=budget.timeout)


class _Socket(net.Socket):
    """The connection's ``net.Socket``, keeping the budget of its current request.

    During a call the budget is the installed scope; a read or write made after the
    call returned (a streamed body) installs it again, merged with whatever scope the
    reader is in, so the body keeps its deadline and stops until it is consumed.
    """

    __slots__ = ("_waiter", "budget")

    def __init__(self, sock: socket.socket, budget: _Budget | None) -> None:
        super().__init__(sock)
        self.budget = budget
        self._waiter: tuple[_Budget, int, Limits, Waiter] | None = None

    def _installed(self) -> AbstractContextManager[object]:
        """The budget installed for one read or write, merged with the caller's scope.

        Nothing to do (a shared no-op) during the call itself, where the budget already
        is the scope, or when the socket has no budget.
        """
        budget = self.budget
        state = _current_scope.get()
        if budget is None or state is budget:
            return _NOTHING
        return _Installed(budget if state is None else _within(budget, state))

    def recv_into(
        self,
        buffer: WriteableBuffer,
        nbytes: int = 0,
        flags: int = 0,
        *,
        timeout: float | None = None,
    ) -> int:
        budget = self.budget
        if budget is None or timeout is not None:
            return super().recv_into(buffer, nbytes, flags, timeout=timeout)
        state = _current_scope.get()
        if state is not budget and state is not None:  # read inside another scope
            with _Installed(_within(budget, state)):
                return super().recv_into(buffer, nbytes, flags)
        # The body's hot path: the stops and the deadline first (a body that keeps
        # flowing must still end by the deadline), then one try that cannot block.
        for stop in budget.stops:
            if stop.is_set():
                raise Stopped(getattr(stop, "reason", None))
        if _monotonic() >= budget.deadline:
            raise _late(budget)
        sock = self._sock
        if _DONTWAIT and sock.__class__ is _PLAIN and sock.gettimeout() is None:
            try:
                return sock.recv_into(buffer, nbytes, flags | _DONTWAIT)
            except BlockingIOError:
                pass
            if state is budget:
                return self._wait_recv_into(budget, buffer, nbytes, flags)
            with _Installed(budget):
                return self._wait_recv_into(budget, buffer, nbytes, flags)
        with self._installed():  # state is None or the budget
            return super().recv_into(buffer, nbytes, flags)

    def _wait_recv_into(self, budget: _Budget, buffer: Any, nbytes: int, flags: int) -> int:
        """Wait (the one waiting loop, woken by the stops' descriptors), then receive.

        What ``net`` does for a blocked ``recv_into``, with the call's limits and its
        ``poll`` waiter kept for the whole request instead of made for each wait: a
        body arriving faster than it is read waits hundreds of times per megabyte.
        Called with ``budget`` installed as the scope: the limits are its.
        """
        sock = self._sock
        fd = sock.fileno()
        cached = self._waiter
        if cached is None or cached[0] is not budget or cached[1] != fd:
            call = Limits(math.inf, None, "recv_into")  # the budget's deadline and stops
            cached = self._waiter = (budget, fd, call, Waiter(call, fd, select.POLLIN))
        _, _, call, waiter = cached

        def op(target: Any, extra: int) -> int:
            count: int = target.recv_into(buffer, nbytes, flags | extra)
            return count

        return wait_ready(
            call, sock, sock, _DONTWAIT, op, select.POLLIN, DeadlineExceeded, waiter=waiter
        )

    def recv(self, bufsize: int, flags: int = 0, *, timeout: float | None = None) -> bytes:
        with self._installed():
            return super().recv(bufsize, flags, timeout=timeout)

    def send(self, data: ReadableBuffer, flags: int = 0, *, timeout: float | None = None) -> int:
        with self._installed():
            return super().send(data, flags, timeout=timeout)

    def sendall(
        self, data: ReadableBuffer, flags: int = 0, *, timeout: float | None = None
    ) -> None:
        budget = self.budget
        if budget is not None and _monotonic() >= budget.deadline:
            raise _late(budget)  # an upload that keeps flowing must still end in time
        with self._installed():
            return super().sendall(data, flags, timeout=timeout)

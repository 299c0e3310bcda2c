"""The response: a body interrupted by a stop or a deadline never looks complete."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_

from .._errors import Stopped
from .._limits import (
    _current_scope,
)
from ._errors import RequestDeadline, translate

if TYPE_CHECKING:
    from ._budget import _Budget

    pass

_monotonic = time.monotonic

# --- the response ----------------------------------------------------------------------


def _again(error: BaseException) -> Callable[[], BaseException]:
    """What every later read of a response interrupted by ``error`` raises."""
    if isinstance(error, Stopped):
        reason = error.reason
        return lambda: Stopped(reason)
    if isinstance(error, RequestDeadline):
        cls, message, timeout, phase = type(error), error.message, error.timeout, error.phase
        wrapped = error.wrapped
        return lambda: cls(message, timeout=timeout, phase=phase, wrapped=wrapped)
    return lambda: urllib3.exceptions.ProtocolError(
        "Connection broken: an earlier read of this response failed", error
    )


class _Response(urllib3.response.HTTPResponse):
    """urllib3's response that never lets an interrupted body look complete.

    Made by changing the class of the response urllib3 built (it adds no state of its
    own beyond two attributes). Once a read fails (a stop, a deadline, a reset), every
    later read raises again: urllib3 alone would find the connection closed and
    report the end of a body delimited by the connection's close. After the call
    returned (a streamed body), this is also the edge that translates errors; during
    the call, errors go up and the call's edge translates them.
    """

    _stoppable_budget: _Budget | None = None
    _stoppable_broken: Callable[[], BaseException] | None = None

    def _stoppable_check(self) -> None:
        broken = self._stoppable_broken
        if broken is not None:
            raise broken()

    @contextlib.contextmanager
    def _error_catcher(self) -> Generator[None]:
        self._stoppable_check()
        try:
            with super()._error_catcher():
                yield
            self._stoppable_check()  # shut down meanwhile: its "end" is not the end
        except BaseException as exc:
            self._stoppable_broken = _again(exc)
            budget = self._stoppable_budget
            if budget is None or _current_scope.get() is budget or not isinstance(exc, Exception):
                raise
            error = translate(exc, budget)
            if error is None:
                raise
            self._stoppable_broken = _again(error)
            raise error from exc

    def shutdown(self) -> None:
        """As urllib3's ``shutdown``, but the body it cuts short never looks complete.

        Shutting the socket down wakes a blocked read with an end of file, which would
        make a body delimited by the connection's close look whole: every read from
        now on (the woken one included) raises ``ProtocolError`` instead.
        """
        self._stoppable_broken = lambda: urllib3.exceptions.ProtocolError(
            "Connection broken: the response was shut down (HTTPResponse.shutdown) before its end"
        )
        try:
            super().shutdown()
        except BaseException:
            self._stoppable_broken = None
            raise

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes]:
        """As urllib3's ``stream``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        yield from super().stream(amt, decode_content)

    def read(
        self,
        amt: int | None = None,
        decode_content: bool | None = None,
        cache_content: bool = False,
    ) -> bytes:
        """As urllib3's ``read``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        return super().read(amt, decode_content, cache_content)

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        """As urllib3's ``read1``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        return super().read1(amt, decode_content)

    def read_chunked(
        self, amt: int | None = None, decode_content: bool | None = None
    ) -> Generator[bytes]:
        """As urllib3's ``read_chunked``; raises again if an earlier read was interrupted."""
        self._stoppable_check()
        yield from super().read_chunked(amt, decode_content)

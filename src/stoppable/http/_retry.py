"""urllib3's retries, with stoppable waits that never run past the deadline."""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_
from urllib3.util.retry import Retry

from .._errors import DeadlineExceeded
from .._limits import (
    Limits,
)
from .._wait import wait_condition
from ._budget import current
from ._errors import RETRY

if TYPE_CHECKING:
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

_monotonic = time.monotonic

# --- waiting between attempts ---------------------------------------------------------


def _pause(seconds: float, why: str) -> None:
    """Wait ``seconds`` before a retry: stoppable, and never past the request's deadline.

    A wait that would end after the deadline is not started: the request fails now.
    """
    if seconds <= 0:
        return
    budget = current()
    if budget is None:  # pragma: no cover - retries only run under an edge
        return
    if seconds >= budget.deadline - _monotonic():
        budget.kind, budget.phase = RETRY, "waiting to retry"
        budget.detail = f"waiting {seconds:g} s to retry ({why})"
        raise DeadlineExceeded(budget.detail, timeout=budget.timeout)
    call = Limits(seconds, None, why)  # the installed budget's stops end it at once
    cond = threading.Condition(threading.Lock())
    with cond, contextlib.suppress(DeadlineExceeded):
        wait_condition(call, cond, lambda: False)


class BoundedRetry(Retry):
    """urllib3's ``Retry``, bounded by the request's budget.

    Its waits (backoff, ``Retry-After``) are stoppable and never run past the deadline,
    and once the deadline has passed it retries nothing: the last error is raised.
    ``bounded_retry`` makes one from any ``Retry`` (subclasses keep their methods).
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> BoundedRetry:
        budget = current()
        if budget is not None and budget.deadline <= _monotonic():
            if error is not None:  # as urllib3 when it may retry no more
                if self.total is False:
                    raise error
                raise urllib3.exceptions.MaxRetryError(
                    cast(Any, _pool), url or "", error
                ) from error
            budget.kind, budget.phase = RETRY, "about to follow a redirect or retry"
            raise DeadlineExceeded("no time left to retry", timeout=budget.timeout)
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after:
            _pause(retry_after, "Retry-After")
            return True
        return False

    def _sleep_backoff(self) -> None:
        _pause(self.get_backoff_time(), "retry backoff")


_bounded_classes: dict[type[Retry], type[BoundedRetry]] = {Retry: BoundedRetry}


def bounded_retry(retry: Retry) -> BoundedRetry:
    """``retry`` as a ``BoundedRetry`` (a copy; ``retry`` itself is not changed)."""
    if isinstance(retry, BoundedRetry):
        return retry
    cls = type(retry)
    bounded = _bounded_classes.get(cls)
    if bounded is None:
        bounded = type(f"Bounded{cls.__name__}", (BoundedRetry, cls), {"__module__": __name__})
        _bounded_classes[cls] = bounded
    result = copy.copy(retry)
    result.__class__ = bounded
    return result  # type: ignore[return-value]


def _retries(retries: object, redirect: bool, default: Any) -> BoundedRetry:
    if isinstance(retries, BoundedRetry):
        return retries
    if not isinstance(retries, Retry):
        retries = Retry.from_int(retries, redirect=redirect, default=default)  # type: ignore[arg-type]
    return bounded_retry(retries)

"""``stoppable.guard``: bound and stop the blocking calls of code that knows nothing of stoppable.

The package, one concern per module:

- ``_state``: which thread is inside a guard, the checks and errors every guarded
  operation shares;
- ``_install``: what is installed, when (first guard entry; never at import) and how it
  is removed again (while-open patches) or rebound where code captured it (permanent);
- ``_sockets``: socket methods; ``_tls``: TLS methods; ``_dns``: name lookups; ``_select``:
  ``select``/``poll``/``selectors``; ``_waits``: ``time.sleep``, ``threading`` waits and
  joins, subprocess waits.

See ``docs/guard.md`` for what is reached, what is not, and the error rules.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .._errors import DeadlineExceeded, Stopped
from .._limits import StopLike, _current_scope, _ScopeState, scope
from .._stop import StopEvent
from . import _install
from ._state import Record, SoftState, active

__all__ = ["guard", "reach"]

_monotonic = time.monotonic


# Exceptions a guard never turns into its own: they end the program or a generator.
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


class guard:  # a context manager used like a function, as scope is
    """Bound and stop every blocking operation made by *any* code in this thread.

    ::

        with stoppable.guard(timeout=5, stop=shutdown):
            client.get_object(Bucket="b", Key="k")     # botocore, redis-py, smtplib...

    Inside the block, in the current thread only, socket connects, accepts, sends and
    receives (plain or TLS, on sockets made before the guard too, in any timeout
    mode), DNS lookups, ``select``/``poll``/``selectors`` waits, ``threading``
    condition, event, semaphore, barrier and join waits, ``queue`` waits,
    ``time.sleep`` and subprocess waits end at the deadline or at once when ``stop``
    (or an enclosing scope's stop) is set. It is also a ``stoppable.scope``: the
    ``stoppable`` calls inside honour it, and guards and scopes nest (the earliest
    deadline, every stop).

    Errors: inside, the operation raises ``DeadlineExceeded`` (a ``socket.timeout``,
    so a client handles it as its own timeout) or ``Stopped``, and every later
    blocking operation raises at once (no retry runs past the deadline). Whatever the
    client turns that into (``SMTPServerDisconnected``, a retry that gives up...), the
    guard's exit raises ``DeadlineExceeded``/``Stopped`` chained from what came out of
    the block, once the deadline passed or the stop was set. A block that finishes in
    time, or whose error has nothing to do with the guard, ends as it would without it.
    A connection the guard interrupted is shut down, so no client reuses it half-read.

    ``timeout`` (seconds) and/or ``stop`` are required. The first guard in the process
    installs what it needs (nothing is installed by ``import stoppable``); threads not
    inside a guard run the standard library's code unchanged.
    """

    __slots__ = ("_entered", "_interrupted", "_record", "_scope", "_token")

    def __init__(self, *, timeout: float | None = None, stop: StopLike | None = None) -> None:
        if timeout is None and stop is None:
            raise TypeError("guard() needs a timeout, a stop, or both")
        self._scope = scope(timeout=timeout, stop=stop)  # validates both
        self._record = Record()
        self._token: object = None
        self._entered = False
        self._interrupted: weakref.ref[BaseException] | None = None

    @classmethod
    def _trusted(cls, timeout: float | None, stop: StopLike | None) -> guard:
        """A guard from a ``timeout``/``stop`` its caller already validated; private.

        For the library's own callers that open a guard per call (``aio.to_thread``'s
        worker, an executor's task): the same object ``guard(timeout=..., stop=...)``
        makes, without validating again what they validated at their own edge.
        """
        self = cls.__new__(cls)
        self._scope = scope._trusted(timeout, stop)
        self._record = Record()
        self._token = None
        self._entered = False
        self._interrupted = None
        return self

    @staticmethod
    def install(*, keep_sockets: bool = False) -> None:
        """Install now what the first guard would install (it is idempotent).

        Early, at start-up, so that references to ``time.sleep`` and friends are
        rebound before anything else captures them in an unusual place. With
        ``keep_sockets=True``, the socket and TLS methods also stay installed for
        good, instead of only while a guard is open: bound methods taken at any time
        (``recv = sock.recv``) are then reached too, for a small cost on every socket
        call outside a guard (see ``docs/guard.md``).
        """
        if not isinstance(keep_sockets, bool):
            raise TypeError(f"keep_sockets must be a bool, got {keep_sockets!r}")
        _install.install_permanent()
        if keep_sockets:
            _install.keep()

    @property
    def deadline(self) -> float | None:
        """The absolute ``time.monotonic()`` deadline in force inside, or ``None``."""
        return self._scope.deadline

    def remaining(self) -> float | None:
        """Seconds left until the deadline in force (``0.0`` once passed), or ``None``."""
        return self._scope.remaining()

    @property
    def expired(self) -> bool:
        """Whether the deadline in force inside has passed (as of the block's end, after it)."""
        return self._scope.expired

    @property
    def interrupted(self) -> BaseException | None:
        """The first ``Stopped``/``DeadlineExceeded`` the guard raised inside, if any.

        After the block, only while something else still holds that exception (the
        guard's own error has it as its cause): the guard does not keep it, nor the
        frames of its traceback, alive.
        """
        if self._interrupted is not None:
            return self._interrupted()
        return self._record.fired

    def __enter__(self) -> guard:
        if self._entered:
            raise RuntimeError("a guard can be entered only once")
        self._entered = True
        _install.acquire()
        try:
            self._scope.__enter__()
            self._token = active.set(self._record)
        except BaseException:
            _install.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state = _current_scope.get()
        try:
            active.reset(self._token)  # type: ignore[arg-type]
            now = self._scope._close()
        finally:
            _install.release()
        # The record lets go of what it interrupted: that exception's traceback holds
        # the frames of the block, one of which holds this guard, and the cycle would
        # keep them (and their locals) alive until a garbage collection.
        fired = self._record.fired
        self._record.fired = None
        if fired is not None:
            self._interrupted = weakref.ref(fired)
        if state is None:  # pragma: no cover - entered, so there is a state
            return
        error = self._fired(state, now)
        if error is None:
            return
        cause: BaseException
        if exc is None:
            if fired is None:
                return  # done in time, or past the deadline without being interrupted
            cause = fired
        elif isinstance(exc, _PASS_THROUGH):
            return
        elif isinstance(exc, Stopped) and isinstance(error, Stopped):
            return  # already what the guard would raise
        elif isinstance(exc, DeadlineExceeded) and isinstance(error, DeadlineExceeded):
            return
        else:
            cause = exc
        try:
            raise error from cause
        finally:
            # This frame, kept by the error's traceback, must not hold the error itself.
            del error, cause, fired

    def _fired(self, state: _ScopeState, now: float | None) -> BaseException | None:
        """``Stopped`` if a stop is set, ``DeadlineExceeded`` if the deadline passed.

        ``now``: the instant the scope judged ``expired`` by (one clock reading for
        both, so ``expired`` and the exit's error agree), or ``None`` if it read none.
        """
        for stop in state.stops:
            if stop.__class__ is StopEvent:  # read directly, as _limits does: no call
                if stop._flag:
                    return Stopped(stop._reason)
            elif stop.is_set():
                return Stopped(getattr(stop, "reason", None))
        deadline = state.deadline
        if deadline is not None and deadline <= (_monotonic() if now is None else now):
            budget = "" if state.timeout is None else f" (timeout={state.timeout:g} s)"
            return DeadlineExceeded(
                f"the stoppable.guard's deadline{budget} passed", timeout=state.timeout
            )
        return None


class soft:  # a context manager used like a function, as guard is
    """A guard whose deadline fires once, with an error of the caller's; private.

    For a limit the code inside may catch and act on (Celery's soft time limit): inside
    the block, the first blocking operation the deadline ends raises ``error(message)``
    (a ``DeadlineExceeded``, made at that moment) instead of the guard's
    ``DeadlineExceeded``, or what ``error`` raises itself (an exception that must not
    look like a timeout to a client, as Celery's integration raises; a ``Stopped``
    subclass, so the guard's clean-ups still run); from then on the block runs under
    the limits around it (an enclosing guard, usually with a later, hard deadline, or
    none), so it can clean up.
    Its exit raises nothing of its own: what leaves the block leaves it unchanged.
    ``stoppable`` calls, and scopes entered inside, see its deadline as a plain one.
    """

    __slots__ = ("_error", "_record", "_scope", "_state", "_tokens")

    def __init__(self, timeout: float, error: Callable[[str], DeadlineExceeded]) -> None:
        if not callable(error):
            raise TypeError(f"error must be callable, got {type(error).__name__}")
        self._scope = scope(timeout=timeout)  # validates it
        self._error = error
        self._record = Record()
        self._state: SoftState | None = None
        self._tokens: tuple[Any, Any] | None = None

    @property
    def fired(self) -> bool:
        """Whether the soft deadline ended an operation in the block."""
        return self._state is not None and self._state.spent

    def __enter__(self) -> soft:
        if self._state is not None:
            raise RuntimeError("a soft guard can be entered only once")
        outer, outer_record = _current_scope.get(), active.get()
        _install.acquire()
        try:
            self._scope.__enter__()
            merged = _current_scope.get()
            assert merged is not None  # the scope just set it
            self._state = SoftState(merged, outer, outer_record, self._error)
            self._tokens = (_current_scope.set(self._state), active.set(self._record))
        except BaseException:
            _install.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tokens is not None:
                state_token, record_token = self._tokens
                active.reset(record_token)
                _current_scope.reset(state_token)
            self._scope.__exit__(exc_type, exc, tb)
        finally:
            self._record.fired = None  # no cycle through the error's frames
            _install.release()


class reach:  # a context manager used like a function, as guard is
    """Reach foreign blocking calls with the limits already in force, and nothing more.

    For a family that installs its own scope state below (``stoppable.http``'s budget):
    the block's foreign calls honour that state as a guard's would, while the family
    keeps its own errors (no exit rules here). Used inside such a state only.
    """

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: object = None

    def __enter__(self) -> reach:
        _install.acquire()
        try:
            self._token = active.set(Record())
        except BaseException:
            _install.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            active.reset(self._token)  # type: ignore[arg-type]
        finally:
            _install.release()

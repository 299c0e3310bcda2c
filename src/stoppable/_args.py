"""Argument checks at the API edge: a clear error naming the argument, before any I/O.

Timeouts and stops are checked by ``_limits``; these are the other arguments. Each
check is meant to sit in front of a fast test (``x.__class__ is int``), so a call
with good arguments pays a comparison, and only a bad one builds a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "check_buffer",
    "check_bytes",
    "check_callable",
    "check_int",
    "check_iterable",
    "check_mapping",
    "check_type",
]


def _show(value: object) -> str:
    return f"{type(value).__name__} {value!r:.60}"


def check_type(value: object, types: type | tuple[type, ...], name: str, what: str) -> None:
    """``TypeError`` naming ``name`` unless ``value`` is one of ``types`` (``what``)."""
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, got {_show(value)}")


def check_int(value: object, name: str, minimum: int | None = None) -> None:
    """An ``int`` (not a ``bool``), at least ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def check_callable(value: object, name: str, *, optional: bool = False) -> None:
    """A callable (or ``None`` where ``optional``)."""
    if not (callable(value) or (optional and value is None)):
        raise TypeError(f"{name} must be callable, got {_show(value)}")


def check_bytes(value: object, name: str) -> None:
    """A bytes-like object (what ``send`` takes)."""
    try:
        memoryview(value).release()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, got {_show(value)}") from None


def check_buffer(value: object, name: str) -> None:
    """A writable bytes-like object (what ``recv_into`` fills)."""
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or view.readonly:
        if view is not None:
            view.release()
        raise TypeError(f"{name} must be a writable bytes-like object, got {_show(value)}")
    view.release()


def check_iterable(value: object, name: str) -> None:
    """Something ``iter()`` accepts."""
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be iterable, got {_show(value)}")


def check_mapping(value: object, name: str, *, optional: bool = False) -> None:
    """A mapping (or ``None`` where ``optional``)."""
    if not (isinstance(value, Mapping) or (optional and value is None)):
        raise TypeError(f"{name} must be a mapping, got {_show(value)}")

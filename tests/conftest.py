"""Fixtures shared by every family's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import stoppable

from .redis_server import redis_server
from .support import LONG

__all__ = ["fast_polling", "no_polling", "redis_server"]  # redis_server: for every test file


@pytest.fixture
def no_polling() -> Iterator[None]:
    """A poll interval longer than any bound: only a real wake-up ends a wait in time."""
    previous = stoppable.set_poll_interval(LONG)
    yield
    stoppable.set_poll_interval(previous)


@pytest.fixture
def fast_polling() -> Iterator[None]:
    """A short poll interval, for waits that can only be polled (a plain Event stop)."""
    previous = stoppable.set_poll_interval(0.01)
    yield
    stoppable.set_poll_interval(previous)

"""Fixtures shared by every family's tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import stoppable

from .redis_server import redis_server
from .support import LONG

__all__ = ["fast_polling", "no_polling", "redis_server"]  # redis_server: for every test file


@pytest.fixture(autouse=True, scope="module")
def _collect_after_each_module() -> Iterator[None]:
    """Free each module's cyclic garbage before the next module starts.

    An object that warns when the collector frees it (a socket whose file still held
    it open) then warns in the teardown of the module that left it, not in whatever
    test a later collection happens to interrupt (CI saw one such warning, once, in
    an http test, from an object no http test made).
    """
    yield
    gc.collect()


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

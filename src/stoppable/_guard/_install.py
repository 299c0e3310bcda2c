"""What the guard installs, when, and how it is removed again.

Nothing is installed by ``import stoppable``. The first guard entered in the process
installs two kinds of patch, under one lock:

- *while-open* patches: the methods of ``socket.socket`` and ``ssl.SSLSocket``, whose
  calls are hot (a check left on every ``recv`` costs about 10 % of a loopback
  ping-pong). They are in place while at least one guard is open anywhere in the
  process, and removed ``LINGER`` after the last one closed (by a daemon thread that
  lives only until then), so a process that is not inside any guard runs the standard
  library's own methods at their own speed, and guards opened one after another do not
  pay for installing and removing them each time.
- *permanent* patches: everything else, where a check costs nothing next to a call
  that blocks anyway (``threading.Condition.wait``, ``Thread.join``, ``Barrier.wait``,
  ``subprocess.Popen.wait``/``communicate``, the ``selectors`` classes' ``select``)
  and the module functions (``time.sleep``, ``select.select``, ``select.poll``,
  ``socket.getaddrinfo``...). Code captures module functions (``from time import
  sleep``, ``def f(sleep=time.sleep)``), so when they are first installed every
  reference to the original in an already imported module's globals, in its
  functions' default arguments and in its classes' attributes is rebound to the patch
  (``rebind``); modules imported later capture the patch itself.

Each patched function first asks whether *its* thread is inside a guard (one
``ContextVar.get``) and calls the original at once when it is not: other threads are
untouched.

What stays out of reach: references held elsewhere (in an instance attribute, a
closure cell, a C extension), bound methods taken before the patch was in place
(``recv = sock.recv`` kept from outside any guard; ``wait = cond.wait`` kept from
before the first guard of the process), and anything done in C (``docs/guard.md``).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import operator
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "Patch",
    "acquire",
    "install_permanent",
    "is_installed",
    "is_open",
    "keep",
    "permanent",
    "rebind",
    "release",
    "resolve",
    "settle",
    "wraps_all",
]

_MISSING = object()


class Patch:
    """``setattr(owner, name, new)``, remembering what to put back."""

    __slots__ = ("_had", "_old", "name", "new", "owner", "rebind")

    def __init__(self, owner: Any, name: str, new: Any, *, rebind: bool = False) -> None:
        self.owner = owner
        self.name = name
        self.new = new
        self.rebind = rebind  # a module function: rebind the references captured to it
        self._old: Any = _MISSING
        self._had = False

    def original(self) -> Any:
        """The attribute as it is before the patch (inherited or the owner's own)."""
        return getattr(self.owner, self.name)

    def apply(self) -> None:
        """Install the patch."""
        self._had = self.name in vars(self.owner)
        self._old = vars(self.owner).get(self.name, _MISSING)
        setattr(self.owner, self.name, self.new)

    def revert(self) -> None:
        """Put back what was there (or remove the attribute if it was inherited)."""
        if self._had:
            setattr(self.owner, self.name, self._old)
        else:
            delattr(self.owner, self.name)


_lock = threading.Lock()
_open = 0
_while_open: list[Patch] = []
_permanent_done = False
# The modules of the package that patch something, each with a ``patches()`` returning
# ``(while_open, permanent)``. Imported at the first install, not with the package, so
# that ``import stoppable`` does not pay for ssl, selectors and subprocess.
_CONCERNS = ("_sockets", "_tls", "_waits", "_select", "_dns")


def _collect() -> tuple[list[Patch], list[Patch]]:
    while_open: list[Patch] = []
    permanent: list[Patch] = []
    for name in _CONCERNS:
        module = importlib.import_module(f"{__package__}.{name}")
        opened, kept = module.patches()
        while_open += opened
        permanent += kept
    return while_open, permanent


def install_permanent() -> None:
    """Install the permanent patches now (idempotent), and rebind captured references."""
    global _permanent_done, _while_open
    with _lock:
        if _permanent_done:
            return
        while_open, permanent = _collect()
        replacements: dict[int, tuple[object, object]] = {}
        for patch in permanent:
            original = patch.original()
            patch.apply()
            if patch.rebind:
                replacements[id(original)] = (original, patch.new)
        rebind(replacements)
        _replacements.update(replacements)
        _while_open = while_open
        _permanent_done = True


_replacements: dict[int, tuple[object, object]] = {}


def resolve(function: Any) -> Any:
    """The patch of ``function`` if it is an original the guard replaced, else itself.

    For a function taken before the first install and handed over as a value
    (``to_thread(time.sleep, 60)`` evaluated before any guard was open).
    """
    found = _replacements.get(id(function))
    return found[1] if found is not None and found[0] is function else function


# The while-open patches stay this long after the last guard closed, so a process that
# opens guards one after another (aio.to_thread, a guarded executor's tasks) does not
# pay for installing and removing them every time; a process that stops using guards
# gets the standard library's socket methods back within this time.
LINGER = 0.5

_installed = False  # the while-open patches are in place
_closed_at = 0.0  # when the last guard closed (time.monotonic())
_remover: threading.Thread | None = None
_wake = threading.Condition(_lock)


def acquire() -> None:
    """A guard opens: install what is missing."""
    global _open, _installed
    if not _permanent_done:
        install_permanent()
    with _lock:
        if not _installed:
            for patch in _while_open:
                patch.apply()
            _installed = True
        _open += 1


def release() -> None:
    """A guard closes: the while-open patches go ``LINGER`` after the last one out."""
    global _open, _closed_at, _remover
    with _lock:
        _open -= 1
        if _open == 0:
            _closed_at = time.monotonic()
            if _remover is None:
                _remover = threading.Thread(
                    target=_remove_when_idle, name="stoppable-guard-remover", daemon=True
                )
                _remover.start()


def _remove_when_idle() -> None:
    """Remove the while-open patches once no guard has been open for ``LINGER``."""
    global _remover, _installed
    with _lock:
        try:
            while True:
                if _kept:
                    return
                if _open == 0:
                    idle = time.monotonic() - _closed_at
                    if idle >= LINGER:
                        _revert()
                        return
                    _wake.wait(LINGER - idle)
                else:
                    _wake.wait(LINGER)
        finally:
            _remover = None


def _revert() -> None:
    global _installed
    if _installed:
        for patch in reversed(_while_open):
            patch.revert()
        _installed = False


def settle() -> None:
    """Remove the while-open patches now if no guard is open (tests, and at fork)."""
    with _lock:
        if _open == 0 and not _kept:
            _revert()
        _wake.notify_all()


def _after_fork_in_child() -> None:
    # The remover thread does not exist in a child: start one on its next release.
    global _remover, _lock, _wake
    _lock = threading.Lock()
    _wake = threading.Condition(_lock)
    _remover = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_kept = False


def keep() -> None:
    """Keep the while-open patches installed for good (``guard.install(keep_sockets=True)``)."""
    global _kept
    with _lock:
        if _kept:
            return
        _kept = True
    acquire()  # a hold that is never released


def is_installed() -> bool:
    """Whether the while-open patches are in place (a guard is open, or closed lately)."""
    return _installed


def is_open() -> bool:
    """Whether some guard is open anywhere in the process."""
    return _open > 0


# --- rebinding captured references ---------------------------------------------------

_SKIPPED = frozenset({"stoppable", "_socket"})


def _skipped(name: str) -> bool:
    # stoppable keeps the originals on purpose (it bounds its own waits, and the
    # patches call the originals through it); _socket is where they come from.
    return name.split(".")[0] in _SKIPPED


_defaults = operator.attrgetter("__defaults__")
_kwdefaults = operator.attrgetter("__kwdefaults__")


def _refers(wanted: set[int], values: Iterable[object]) -> bool:
    """Whether any of ``values`` is one of the originals (by id), without a Python loop."""
    return not wanted.isdisjoint(map(id, values))


def _defaults_refer(wanted: set[int], functions: list[Any]) -> bool:
    """Whether a default argument of one of ``functions`` is one of the originals."""
    positional = itertools.chain.from_iterable(filter(None, map(_defaults, functions)))
    if _refers(wanted, positional):
        return True
    keywords = filter(None, map(_kwdefaults, functions))
    return _refers(wanted, itertools.chain.from_iterable(map(dict.values, keywords)))


def _class_functions(members: list[Any]) -> list[Any]:
    plain = [value for value in members if type(value) is types.FunctionType]
    wrapped = [
        value.__func__ for value in members if issubclass(type(value), staticmethod | classmethod)
    ]
    return plain + [function for function in wrapped if type(function) is types.FunctionType]


def rebind(replacements: dict[int, tuple[object, object]]) -> int:
    """Replace references to the originals in loaded modules; returns how many.

    Looks at each module's globals, the default arguments of its functions and of its
    classes' methods, and its classes' attributes (a builtin function stored as a class
    attribute, such as ``selectors.SelectSelector._select = select.select``, is
    rebound as a ``staticmethod`` so it does not become a method).

    It runs on the first guard's entry, over every loaded module: each namespace is
    first asked, in C (``set.isdisjoint`` over ``map(id, ...)``), whether it holds an
    original at all; only the few that do are walked in Python.
    """
    count = 0
    wanted = set(replacements)

    def swap(value: object) -> object:
        found = replacements.get(id(value))
        return found[1] if found is not None and found[0] is value else _MISSING

    def fix_defaults(function: object) -> int:
        if not isinstance(function, types.FunctionType):
            return 0
        fixed = 0
        defaults = function.__defaults__
        if defaults:
            new = tuple(swap(value) for value in defaults)
            if any(value is not _MISSING for value in new):
                function.__defaults__ = tuple(
                    old if value is _MISSING else value
                    for old, value in zip(defaults, new, strict=True)
                )
                fixed += 1
        kwdefaults = function.__kwdefaults__
        if kwdefaults:
            for key, old in list(kwdefaults.items()):
                value = swap(old)
                if value is not _MISSING:
                    kwdefaults[key] = value
                    fixed += 1
        return fixed

    for name, module in list(sys.modules.items()):
        if module is None or _skipped(name):
            continue
        try:
            namespace = vars(module)
            values = list(namespace.values())
            if _refers(wanted, values):
                for key, value in list(namespace.items()):
                    new = swap(value)
                    if new is not _MISSING:
                        namespace[key] = new
                        count += 1
            functions = [value for value in values if type(value) is types.FunctionType]
            if _defaults_refer(wanted, functions):
                for function in functions:
                    count += fix_defaults(function)
            # issubclass(type(...)), not isinstance: that would ask each object for its
            # __class__, and a lazy proxy (six.moves, a lazy-loading module attribute)
            # would import or build its target on the first guard's entry.
            classes = [value for value in values if issubclass(type(value), type)]
        except Exception:  # an exotic module object: leave it as it is
            continue
        for cls in classes:
            try:
                if cls.__module__ != name:
                    continue  # rebound where it is defined
                members = list(vars(cls).values())
                if _refers(wanted, members) or _defaults_refer(wanted, _class_functions(members)):
                    count += _rebind_class(cls, swap, fix_defaults)
            except Exception:  # an exotic class: leave it as it is
                continue
    return count


def _rebind_class(
    cls: type, swap: Callable[[object], object], fix_defaults: Callable[[object], int]
) -> int:
    count = 0
    for key, value in list(vars(cls).items()):
        new = swap(value)
        if new is not _MISSING:
            if not isinstance(new, staticmethod):
                new = staticmethod(new)  # type: ignore[arg-type]
            setattr(cls, key, new)
            count += 1
            continue
        inner = value.__func__ if issubclass(type(value), staticmethod | classmethod) else value
        count += fix_defaults(inner)
    return count


def wraps_all(patches: Iterable[Patch]) -> list[Patch]:
    """``patches`` with the originals' names and docstrings copied onto the new functions."""
    result = list(patches)
    for patch in result:
        original = patch.original()
        for attribute in ("__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(patch.new, attribute, getattr(original, attribute))
        with contextlib.suppress(AttributeError, TypeError):
            patch.new.__wrapped__ = original
    return result


def permanent(owner: Any, name: str, function: Callable[..., Any]) -> Patch:
    """A permanent patch of a module function, as a callable ``staticmethod``.

    A ``staticmethod`` (callable since Python 3.10) so that code which stores it as a
    class attribute (``_select = select.select`` in a class body, run after the patch
    was installed) gets a plain function there, as it did with the builtin, not a
    method bound to its instances.
    """
    original = getattr(owner, name)
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(function, attribute, getattr(original, attribute))
    function.__wrapped__ = original  # type: ignore[attr-defined]
    return Patch(owner, name, staticmethod(function), rebind=True)

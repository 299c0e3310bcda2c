"""One ``StopEvent`` across processes: shared state, first reason wins, wake-ups.

A ``StopEvent`` costs nothing more until it is handed to another process: pickled
(a ``multiprocessing`` pool task, a ``Process`` argument under spawn or forkserver,
a queue item) or found among the arguments of a ``multiprocessing.Process`` being
forked. Then it gets a *slot* in an *arena*, a block of shared memory, and from then
on every copy of it in every process is the same stop:

- **State and reason.** The slot holds the set flag and the first reason (pickled;
  one that does not pickle into ``REASON_BYTES`` crosses as its ``str``, shortened).
  Setting takes the arena's inter-process lock (a POSIX record lock on the arena's
  file, which the kernel drops if its holder dies) and writes only if no process
  has, so the first reason wins across processes too.
- **Wake-ups.** Each process that holds shared events has one datagram socket
  (abstract Unix namespace, so nothing on disk) listed in each arena it uses. The
  setter sends one empty datagram to every process listed; each process's *watcher*
  thread, blocked in ``poll`` on that socket, wakes, finds which of its events
  turned set and sets them locally. That local ``set()`` wakes everything the
  process has waiting on the event: descriptor waits, condition waits, ``wait()``,
  callbacks and children, exactly as a set made in the process would. Nothing polls.
- **``is_set()``** stays the local flag the watcher keeps in sync.

Attaching an arena: a child started by spawn or forkserver receives the arena's
descriptor with its start (``multiprocessing``'s own descriptor passing); a process
that receives an event later (a pool task) opens the sender's descriptor through
``/proc/<pid>/fd/<fd>`` (Linux). A forked child inherits the arenas and its events:
an at-fork hook lists the child in each arena and starts its watcher, and the events
among the arguments of a ``multiprocessing.Process`` being forked are shared just
before the fork (other events reach a forked child only if they were shared already).

Slots are reference counted by the processes holding them and freed when the last
one lets go. A process killed by ``SIGKILL`` cannot let go: its slots stay taken
until every process using the arena has ended (the arena is then freed by the
kernel); a new arena is made when one is full. The process pool lends each task's
stop to its worker (``Lent``): the worker takes no hold, so a killed worker leaves
nothing taken.

Linux only (memfd, abstract sockets, ``/proc``); elsewhere handing a ``StopEvent``
to another process raises ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from . import _compat
from ._arena import _ARENA_SIZE, REASON_BYTES, _address, _Arena

if TYPE_CHECKING:  # pragma: no cover
    from ._stop import StopEvent

__all__ = ["REASON_BYTES", "reduce_event", "share"]

_log = logging.getLogger("stoppable")

_RELEASE_EVERY: Final = 0.1  # seconds between batches of slots given back

SUPPORTED: Final = (
    sys.platform.startswith("linux") and hasattr(os, "memfd_create") and os.path.isdir("/proc")
)


class _ArenaHandle:
    """How an arena travels in a pickle: its descriptor at a spawn, else where to find it."""

    def __init__(self, arena: _Arena) -> None:
        self.arena = arena

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocessing import context, reduction

        arena = self.arena
        if context.get_spawning_popen() is not None:
            return (_attach_fd, (arena.token, reduction.DupFd(arena.fd)))
        return (_attach_proc, (arena.token, os.getpid(), arena.fd))


class _Link:
    """What a shared ``StopEvent`` holds: its slot, and the reason once settled."""

    __slots__ = ("arena", "reason", "released", "serial", "settled", "slot")

    def __init__(self, arena: _Arena, slot: int, serial: int) -> None:
        self.arena = arena
        self.slot = slot
        self.serial = serial
        self.released = False  # this process's hold on the slot is given back (or queued)
        self.settled = False
        self.reason: object = None

    def publish(self, reason: object) -> object:
        """Called by ``StopEvent.set()``: the reason that wins across processes."""
        if self.settled:
            return self.reason
        data = _encode(reason)
        winner, listed = self.arena.publish(self.slot, self.serial, data)
        if winner is data:
            state = _state()
            batch = getattr(_batch, "wakes", None)
            if batch is not None:  # inside wakes_batched(): one wake-up per process
                batch.setdefault(id(self.arena), (self.arena, {}))[1].update(
                    {(pid, nonce): (i, pid, nonce) for i, pid, nonce in listed}
                )
            elif state is not None:
                self.arena.wake(state.sock, listed, (state.pid, state.nonce))
        elif winner is not None:
            reason = _decode(winner)
        self.reason, self.settled = reason, True
        return reason


_batch = threading.local()


@contextlib.contextmanager
def wakes_batched() -> Any:
    """Set many shared events in this block: each process is woken once, at its end.

    Each woken process's watcher scans all its events anyway, so setting eight pool
    tasks' stops costs eight datagrams, not eight to every process.
    """
    if getattr(_batch, "wakes", None) is not None:  # nested: the outer block sends
        yield
        return
    wakes: dict[int, tuple[_Arena, dict[tuple[int, int], tuple[int, int, int]]]] = {}
    _batch.wakes = wakes
    try:
        yield
    finally:
        _batch.wakes = None
        state = _state()
        if state is not None:
            for arena, listed in wakes.values():
                arena.wake(state.sock, list(listed.values()), (state.pid, state.nonce))


def _encode(reason: object) -> bytes:
    import pickle

    try:
        data = pickle.dumps(reason, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        data = b""
    if not data or len(data) > REASON_BYTES:
        text = str(reason)
        while True:
            data = pickle.dumps(text, protocol=pickle.HIGHEST_PROTOCOL)
            if len(data) <= REASON_BYTES:
                break
            text = text[: max(0, len(text) - (len(data) - REASON_BYTES) - 4)] + "..."
    return data


def _decode(data: bytes) -> object:
    import pickle

    try:
        return pickle.loads(data)
    except Exception:  # a class this process cannot import
        return repr(data)


# --- this process's side -------------------------------------------------------------


class _State:
    """The arenas, shared events, wake-up socket and watcher of this process."""

    def __init__(self) -> None:
        import socket

        self.pid = os.getpid()
        self.nonce = int.from_bytes(os.urandom(6), "little")
        self.sock: Any = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(_address(self.pid, self.nonce))
        self.sock.setblocking(False)
        self.arenas: dict[bytes, _Arena] = {}
        self.home: _Arena | None = None
        self.events: dict[tuple[bytes, int], weakref.ref[StopEvent]] = {}
        # Slots of events this process dropped, let go of by the watcher: a finalizer
        # may run inside any code, an arena's locked section included.
        self.pending: deque[tuple[tuple[bytes, int], _Link]] = deque()
        self.flush_at: float | None = None  # when the watcher gives them back
        self.released = False
        self.inherited: list[tuple[bytes, int]] = []  # the events a fork handed down
        self.watcher = threading.Thread(target=self._watch, name="stoppable-stop-watcher")
        self.watcher.daemon = True
        self.watcher.start()

    def _watch(self) -> None:
        import select

        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        while True:
            # Dropped events' slots are given back in batches, _RELEASE_EVERY apart:
            # a pool task's stop is dropped per task, and waking this thread for
            # each would cost more than the rest of the sharing.
            wait = -1
            if self.flush_at is not None:
                wait = max(0, math.ceil((self.flush_at - time.monotonic()) * 1000))
            try:
                woken = poller.poll(wait)  # -1 (for life) only when nothing is queued
                while woken:  # drain: one scan answers every wake-up queued so far
                    self.sock.recv(16)
            except BlockingIOError:
                pass
            except OSError:  # closed: this process is letting go of everything
                return
            if self.flush_at is not None and time.monotonic() >= self.flush_at:
                self.flush_at = None  # first: a release queued from now on schedules anew
                self.let_go()
            if woken:
                self.scan()

    def let_go(self) -> None:
        """Give back the slots of the events this process dropped."""
        pending = self.pending
        by_arena: dict[int, tuple[_Arena, list[tuple[int, int]]]] = {}
        with _glock:
            if self.released:
                return
            while pending:
                key, link = pending.popleft()
                ref = self.events.get(key)
                if ref is not None and ref() is None:
                    del self.events[key]
                entry = by_arena.setdefault(id(link.arena), (link.arena, []))
                entry[1].append((link.slot, link.serial))
        for arena, slots in by_arena.values():
            arena.decref_many(slots)

    def scan(self) -> None:
        """Set locally each event some other process has set."""
        with _glock:
            events = list(self.events.items())
        for (_token, _), ref in events:
            event = ref()
            link = None if event is None else event._shared
            if event is None or link is None or event._flag:
                continue
            if link.arena.is_set(link.slot, link.serial):
                link.reason, link.settled = _decode(link.arena.reason(link.slot)), True
                try:
                    event.set(link.reason)
                except Exception:  # pragma: no cover - set() logs callback errors itself
                    _log.exception("setting a shared StopEvent failed")

    def arena_for_new(self) -> tuple[_Arena, int, int]:
        home = self.home
        if home is not None:
            got = home.alloc()
            if got is not None:
                return (home, *got)
        fd = os.memfd_create("stoppable-stop", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, _ARENA_SIZE)  # pages are given only when touched
            arena = _Arena(fd)
        except BaseException:
            os.close(fd)
            raise
        self.adopt(arena)
        self.home = arena
        got = arena.alloc()
        assert got is not None
        return (arena, *got)

    def adopt(self, arena: _Arena) -> None:
        arena.handle = _ArenaHandle(arena)
        arena.enlist(self.pid, self.nonce, self.sock)
        self.arenas[arena.token] = arena

    def link(self, event: StopEvent, arena: _Arena, slot: int, serial: int) -> _Link:
        """Make ``event`` the one this process holds for the slot (already held once)."""
        link = _Link(arena, slot, serial)
        event._shared = link
        key = (arena.token, slot)
        self.events[key] = weakref.ref(event)
        weakref.finalize(event, _release, self, key, link)
        return link

    def release_all(self) -> None:
        """At exit: let go of every slot and listing (idempotent)."""
        with _glock:
            if self.released or self.pid != os.getpid():
                return
            self.released = True
            events, self.events = self.events, {}
            for _, link in self.pending:
                link.arena.decref(link.slot, link.serial)
            self.pending.clear()
            for (token, slot), ref in events.items():
                event = ref()
                held = None if event is None else event._shared
                arena = self.arenas.get(token)
                if arena is not None and held is not None and not held.released:
                    held.released = True
                    arena.decref(slot, held.serial)
            for arena in self.arenas.values():
                arena.delist(self.pid, self.nonce)


def _release(state: _State, key: tuple[bytes, int], link: _Link) -> None:
    # An event's finalizer: no lock here (see _State.pending); the watcher does it.
    if state.released or state.pid != os.getpid() or link.released:
        return
    # At exit weakref runs the finalizers of live objects too, maybe before
    # release_all: marked here, the hold is given back once, from the queue.
    link.released = True
    state.pending.append((key, link))
    if state.flush_at is None:
        state.flush_at = time.monotonic() + _RELEASE_EVERY
        with contextlib.suppress(OSError):  # the watcher arms its timer
            state.sock.sendto(b"", _address(state.pid, state.nonce))


_glock = threading.RLock()
_process: _State | None = None


def _state() -> _State | None:
    return _process if _process is not None and _process.pid == os.getpid() else None


def _require_state() -> _State:
    global _process
    state = _state()
    if state is None:
        if not SUPPORTED:
            raise RuntimeError(
                "a StopEvent can be shared with other processes only on Linux "
                "(memfd, abstract Unix sockets, /proc)"
            )
        state = _process = _State()
        _at_exit_release(state)
    return state


def _at_exit_release(state: _State) -> None:
    import atexit
    from multiprocessing import util

    atexit.register(state.release_all)
    # A multiprocessing child ends by os._exit, after running multiprocessing's own
    # finalizers (not atexit's); those are cleared when the child starts, so the
    # finalizer is (re)made from an after-fork hook, which runs after the clearing.
    util.Finalize(None, state.release_all, exitpriority=0)
    util.register_after_fork(state, lambda s: util.Finalize(None, s.release_all, exitpriority=0))


def share(event: StopEvent) -> None:
    """Give ``event`` a slot, so that every process it reaches holds the same stop."""
    if event._shared is not None:
        return
    with _glock:
        if event._shared is not None:
            return
        state = _require_state()
        arena, slot, serial = state.arena_for_new()
        link = state.link(event, arena, slot, serial)
        if event._flag:  # set before it was shared: the slot says so too
            link.publish(event._reason)


class Lent:
    """Pickles a ``StopEvent`` lent for a while: the receiver takes no hold on its slot.

    For a sender that keeps the event until the receiver is done with it (a pool
    task's stop, kept by the parent until the task's result is in): the receiver
    then costs no inter-process lock and leaves nothing held if it is killed. Should
    the receiver keep it longer, once the sender lets go its copy stops being shared.
    """

    __slots__ = ("event",)

    def __init__(self, event: StopEvent) -> None:
        self.event = event

    def __reduce__(self) -> tuple[Any, ...]:
        share(self.event)
        link = self.event._shared
        assert link is not None
        return (_rebuild_lent, (link.arena.handle, link.slot, link.serial))


def _rebuild_lent(arena: _Arena, slot: int, serial: int) -> StopEvent:
    from ._stop import StopEvent

    event = StopEvent()
    with _glock:
        state = _require_state()
        link = _Link(arena, slot, serial)
        link.released = True  # nothing to give back
        event._shared = link
        # Keyed by slot: a later event in the same slot replaces the entry.
        state.events[(arena.token, slot)] = weakref.ref(event)
    if arena.is_set(slot, serial):  # set before it arrived
        state.scan()
    return event


def forget_inherited(keep: object = None) -> None:
    """In a forked child: let go of the events inherited from the parent.

    Those reachable from ``keep`` stay shared; the others become local copies. For a
    child that knows it uses none of them (a pool worker): its holds would outlive
    it if it were killed, keeping their slots taken.
    """
    state = _state()
    if state is None or not state.inherited:
        return
    kept = {id(event) for event in _handed_over(keep)}
    with _glock:
        inherited, state.inherited = state.inherited, []
        dropped = []
        for key in inherited:
            ref = state.events.get(key)
            event = None if ref is None else ref()
            link = None if event is None else event._shared
            if event is None or link is None or id(event) in kept or link.released:
                continue
            link.released = True
            del state.events[key]
            event._shared = None
            dropped.append(link)
    for link in dropped:
        link.arena.decref(link.slot, link.serial)


def reduce_event(event: StopEvent) -> tuple[Any, ...]:
    """``StopEvent.__reduce__``: share it, then travel as a reference to its slot."""
    share(event)
    link = event._shared
    assert link is not None
    return (_rebuild, (link.arena.handle, link.slot, link.serial))


def _attach_fd(token: bytes, dup: Any) -> _Arena:
    fd = dup.detach()
    with _glock:
        state = _require_state()
        arena = state.arenas.get(token)
        if arena is not None:
            os.close(fd)
            return arena
        os.set_inheritable(fd, False)
        arena = _Arena(fd, token)
        state.adopt(arena)
        return arena


def _attach_proc(token: bytes, pid: int, fd: int) -> _Arena:
    with _glock:
        state = _require_state()
        arena = state.arenas.get(token)
        if arena is not None:
            return arena
        try:
            new_fd = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
        except OSError as err:
            raise RuntimeError(
                f"cannot reach the shared StopEvent of process {pid}: it has ended, or "
                f"/proc/{pid}/fd is not readable here ({err})"
            ) from err
        try:
            arena = _Arena(new_fd, token)
        except BaseException:
            os.close(new_fd)
            raise
        state.adopt(arena)
        return arena


def _rebuild(arena: _Arena, slot: int, serial: int) -> StopEvent:
    from ._stop import StopEvent

    with _glock:
        state = _require_state()
        ref = state.events.get((arena.token, slot))
        event = None if ref is None else ref()
        if event is not None and event._shared is not None and event._shared.serial == serial:
            return event
        event = StopEvent()
        if not arena.incref(slot, serial):
            _log.warning(
                "a StopEvent arrived after every process had let go of it: it is not "
                "shared any more (keep a reference to it until the receiver has it)"
            )
            return event
        state.link(event, arena, slot, serial)
    if arena.is_set(slot, serial):  # set before it arrived
        state.scan()
    return event


# --- fork ------------------------------------------------------------------------------


# How many objects the fork hook looks at, at most, among a Process's arguments.
_WALK_LIMIT: Final = 10_000


def _handed_over(root: object) -> list[StopEvent]:
    """The ``StopEvent``s reachable from ``root``: containers, attributes, closures."""
    import functools
    import types

    from ._stop import StopEvent

    found: list[StopEvent] = []
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack and len(seen) < _WALK_LIMIT:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > 8:
            continue
        seen.add(id(obj))
        if isinstance(obj, StopEvent):
            found.append(obj)
            continue
        if obj is None or isinstance(obj, (str, bytes, int, float, type)):
            continue
        children: list[object] = []
        if isinstance(obj, (tuple, list, set, frozenset)):
            children.extend(obj)
        elif isinstance(obj, dict):
            children.extend(obj.values())
        elif isinstance(obj, types.MethodType):
            children.extend((obj.__self__, obj.__func__))
        elif isinstance(obj, functools.partial):
            children.extend((obj.func, obj.args, obj.keywords))
        elif isinstance(obj, types.FunctionType):
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    children.append(cell.cell_contents)
        else:
            # An instance's attributes, read without running any of its code.
            try:
                attrs = object.__getattribute__(obj, "__dict__")
            except AttributeError:
                attrs = None
            if isinstance(attrs, dict):
                children.extend(attrs.values())
        stack.extend((child, depth + 1) for child in children)
    return found


_exec_fork = False  # the fork is subprocess's, for a preexec_fn: the child execs


def _before_fork() -> None:
    global _exec_fork
    try:
        frame = sys._getframe(1)
    except ValueError:  # forked from C, with no Python caller
        _glock.acquire()  # noqa: STP100 - see below
        return
    # subprocess runs these hooks only for a preexec_fn; its child runs no Python of
    # ours and execs: it must not start a watcher or hold slots.
    _exec_fork = _compat.forked_to_exec(frame)
    # multiprocessing forks a Process with nothing pickled: the events among its
    # arguments are shared here, before the fork.
    process = _compat.forked_process(frame) if SUPPORTED else None
    if process is not None:
        for event in _handed_over(process):
            try:
                share(event)
            except Exception:  # the fork goes ahead; the event stays local
                _log.exception("could not share a StopEvent with a forked process")
    _glock.acquire()  # noqa: STP100 - held only for short steps; a fork must not split one


def _after_fork_parent() -> None:
    _glock.release()


def _after_fork_child() -> None:
    global _glock, _process
    _glock = threading.RLock()
    parent = _process
    if parent is None or parent.released or _exec_fork:
        _process = None
        return
    # The child holds copies of every shared event: it becomes one more holder of
    # each, listed in each arena, with a watcher of its own.
    try:
        _process = None
        state = _require_state()
        for arena in parent.arenas.values():
            arena.tlock = threading.Lock()
            state.adopt(arena)
        state.home = None  # the parent's; this process makes its own when it shares
        for key, ref in parent.events.items():
            event = ref()
            link = None if event is None else event._shared
            if event is None or link is None:
                continue
            if link.arena.incref(link.slot, link.serial):
                state.events[key] = ref
                state.inherited.append(key)
                weakref.finalize(event, _release, state, key, link)
            else:
                event._shared = None
        parent.sock.close()
        state.scan()
    except Exception:  # pragma: no cover - the child runs on, its events local
        _log.exception("could not connect a forked child's shared StopEvents")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_parent,
        after_in_child=_after_fork_child,
    )

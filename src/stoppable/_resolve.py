"""Name resolution with a deadline: ``getaddrinfo`` in a small, bounded pool of threads.

``getaddrinfo`` cannot be interrupted or given a timeout, so each lookup runs in a
helper thread while the caller waits on a condition that its deadline and its stops
can end. A caller that gives up *abandons* the lookup: it does not wait for it. The
helper thread stays blocked until the resolver returns, and is then reused.

So that a resolver stuck for good cannot make threads pile up, while lookups that
were given up cannot hold back the ones still wanted:

- at most ``set_resolver_threads()`` threads (8 by default) serve lookups that a
  caller still waits for; when all are busy, a new lookup waits for one within its
  own deadline, and its timeout error says that it never got a thread;
- a thread still running a lookup that every caller gave up (*orphaned*: a name the
  resolver is slow for, say one that waits for a DNS timeout) does not count
  against that limit: it finishes in the background, and new lookups get threads
  of their own meanwhile. Orphans are bounded too: ``ORPHAN_FACTOR`` times the limit
  is the most threads there can be in all;
- identical lookups in flight at the same time share one thread and one answer (a
  lookup joined again is no longer orphaned);
- a lookup whose callers have all given up before it started is dropped unrun.

IP literals never reach the resolver: they are parsed inline (``AI_NUMERICHOST``),
which cannot block. Neither do names the system answers from ``/etc/hosts`` alone
(``localhost``, names an administrator pinned there): on Linux, where
``/etc/nsswitch.conf`` says ``hosts: files ...`` (the hosts file first, with the default
action), no ``nscd`` is running, and the hosts file has the name for the family asked,
``getaddrinfo`` reads the file and returns without asking the network, so it is called
inline (about 0.1 ms, against 0.3 ms for a pool thread and several for a new one). The
files are checked (``stat``) on every lookup and read again when they change: a name
removed from the hosts file goes to the pool at once. Any other resolver, name or
system takes the pool. Idle threads exit after a few seconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import DeadlineExceeded
from ._limits import Limits
from ._wait import wait_condition

__all__ = [
    "AddrInfo",
    "Resolver",
    "get_resolver",
    "lookup",
    "set_resolver",
    "set_resolver_threads",
]

AddrInfo = tuple[
    socket.AddressFamily, socket.SocketKind, int, str, "tuple[str, int] | tuple[str, int, int, int]"
]
"""One entry of ``getaddrinfo``'s answer: ``(family, type, proto, canonname, sockaddr)``."""

Resolver = Callable[..., Sequence[Any]]
"""A function with ``socket.getaddrinfo``'s signature and answer:
``resolver(host, port, family, type, proto, flags) -> [(family, type, proto, canonname,
sockaddr), ...]``, raising ``socket.gaierror`` (or any ``OSError``) when the name does
not resolve."""

_IDLE_SECONDS = 5.0  # an idle helper thread exits after this long

ORPHAN_FACTOR = 8
"""At most this many times ``set_resolver_threads()`` threads in all, orphans included."""

_SYSTEM: Resolver = socket.getaddrinfo  # captured: a guard may replace the module's
_default_resolver: Resolver = _SYSTEM


def set_resolver(resolver: Resolver | None) -> Resolver:
    """Resolve names with ``resolver`` from now on; returns the previous resolver.

    ``resolver`` has ``socket.getaddrinfo``'s signature and return value (see
    ``Resolver``). It is called in a helper thread, with no deadline of its own: a
    resolver that hangs is abandoned by its callers when their deadline passes or a
    stop is set. ``None`` restores ``socket.getaddrinfo``: the standard library's, as
    it was when stoppable was imported, never a patch installed since (a guard's). An
    explicit ``resolver=`` argument (``stoppable.net.connect``, ``resolve``) takes
    precedence. Tests use this hook to simulate a stuck or failing resolver without
    patching the socket module.
    """
    global _default_resolver
    if resolver is not None and not callable(resolver):
        raise TypeError(f"resolver must be callable, got {type(resolver).__name__} {resolver!r}")
    previous = _default_resolver
    _default_resolver = _SYSTEM if resolver is None else resolver
    return previous


def get_resolver() -> Resolver:
    """The resolver used when a call gives none (``socket.getaddrinfo`` by default)."""
    return _default_resolver


def set_resolver_threads(threads: int) -> int:
    """Allow at most ``threads`` helper threads for lookups; returns the previous limit.

    The default is 8. The limit counts the threads running lookups that a caller
    still waits for; threads still running lookups that every caller gave up do not
    count, up to ``ORPHAN_FACTOR`` times the limit in all. A lookup that finds every
    thread busy (say, each blocked in a stuck resolver) waits for one within its own
    deadline. Lowering the limit lets busy threads finish their lookups; idle threads
    above it exit.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    with _pool.lock:
        previous, _pool.size = _pool.size, threads
        _pool.work.notify_all()  # idle threads above the new limit exit now
    return previous


class _Lookup:
    """One ``resolver(*args)`` call, shared by every caller waiting for its answer."""

    __slots__ = (
        "args",
        "cond",
        "done",
        "error",
        "finished",
        "key",
        "orphaned",
        "resolver",
        "result",
        "started",
        "waiters",
    )

    def __init__(self, key: tuple[object, ...], resolver: Resolver, args: tuple[object, ...]):
        self.key = key
        self.resolver = resolver
        self.args = args
        self.cond = threading.Condition(threading.Lock())
        self.done = False
        self.started = False
        self.finished = False  # the resolver returned (the pool's view, under its lock)
        self.orphaned = False  # running, and no caller waits for it any more
        self.waiters = 0
        self.result: list[Any] = []
        self.error: BaseException | None = None


class _Pool:
    """At most ``size`` daemon threads running lookups from a FIFO queue."""

    def __init__(self, size: int = 8) -> None:
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)
        self.queue: deque[_Lookup] = deque()
        self.inflight: dict[tuple[object, ...], _Lookup] = {}
        self.size = size
        self.threads = 0
        self.idle = 0
        self.orphans = 0  # threads running a lookup nobody waits for

    def submit(self, resolver: Resolver, args: tuple[object, ...]) -> _Lookup:
        """The lookup for ``resolver(*args)``: the one in flight, or a new queued one."""
        # Keyed by the resolver's identity (any callable, hashable or not); the job
        # holds the resolver, so the id cannot be reused while the key is in use.
        key: tuple[object, ...] = (id(resolver), *args)
        try:
            hash(key)
        except TypeError:  # an unhashable argument: a lookup of its own, not shared
            key = (object(),)
        with self.lock:
            job = self.inflight.get(key)
            if job is None:
                job = _Lookup(key, resolver, args)
                self.inflight[key] = job
                self.queue.append(job)
                self._serve()
            elif job.orphaned:  # wanted again: it counts as served work once more
                job.orphaned = False
                self.orphans -= 1
            job.waiters += 1
            return job

    def _serve(self) -> None:
        """A thread for the queued work: an idle one woken, else a new one if allowed.

        Called with the lock held. Orphans do not count against ``size``: a lookup
        that was given up must not hold back one that is still wanted.
        """
        if self.idle >= len(self.queue):
            self.work.notify()
        elif self.threads - self.orphans < self.size and self.threads < self.size * ORPHAN_FACTOR:
            self.threads += 1
            thread = threading.Thread(target=self._run, name="stoppable-resolver", daemon=True)
            try:
                thread.start()
            except BaseException:
                self.threads -= 1
                raise

    def abandon(self, job: _Lookup) -> None:
        """A caller stops waiting for ``job``; unstarted work nobody waits for is dropped."""
        with self.lock:
            job.waiters -= 1
            if job.waiters:
                return
            if job.started:
                if not job.finished and not job.orphaned:
                    job.orphaned = True
                    self.orphans += 1
                    if self.queue:  # its thread no longer counts: queued work may start
                        self._serve()
                return
            with contextlib.suppress(ValueError):  # taken by a thread meanwhile
                self.queue.remove(job)
            if self.inflight.get(job.key) is job:
                del self.inflight[job.key]

    def _run(self) -> None:
        with self.lock:
            while True:
                while not self.queue:
                    self.idle += 1
                    try:
                        notified = self.work.wait(_IDLE_SECONDS)
                    finally:
                        self.idle -= 1
                    if not self.queue and (not notified or self.threads > self.size):
                        self.threads -= 1
                        return
                job = self.queue.popleft()
                if not job.waiters:  # every caller gave up before it started
                    if self.inflight.get(job.key) is job:
                        del self.inflight[job.key]
                    continue
                job.started = True
                self.lock.release()
                try:
                    try:
                        job.result = list(job.resolver(*job.args))
                    except BaseException as exc:  # handed to the callers, never lost
                        job.error = exc
                finally:
                    # The with block's lock again: held only for bookkeeping, never across
                    # a lookup, and it must be held when the block ends.
                    self.lock.acquire()  # noqa: STP100 - re-take the short internal lock
                job.finished = True
                if job.orphaned:
                    job.orphaned = False
                    self.orphans -= 1
                if self.inflight.get(job.key) is job:
                    del self.inflight[job.key]
                with job.cond:
                    job.done = True
                    job.cond.notify_all()
                del job  # no reference to the answer kept while idle


_pool = _Pool()


def _reset_after_fork() -> None:
    # The parent's helper threads do not exist in a forked child, and their locks
    # may have been held at the fork.
    global _pool
    size = _pool.size
    _pool = _Pool(size)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _numeric(
    host: str | bytes | None,
    port: str | int | None,
    family: int,
    type: int,
    proto: int,
    flags: int,
) -> list[Any] | None:
    """``getaddrinfo`` for an IP literal (it cannot block), or ``None`` for a name."""
    if host is None:
        return None
    try:
        return list(
            socket.getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        )
    except (socket.gaierror, UnicodeError, TypeError):
        return None


# --- names answered from the hosts file ---------------------------------------------

_HOSTS = "/etc/hosts"
_NSSWITCH = "/etc/nsswitch.conf"
_NSCD_SOCKET = "/var/run/nscd/socket"  # glibc's _PATH_NSCDSOCKET
_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


class _HostsFile:
    """The names the system resolves from the hosts file alone, kept fresh by ``stat``.

    ``names`` maps a lower-case name to the address families the file gives it;
    it is empty where the system may ask the network first (or where that cannot
    be told): not Linux, no ``nsswitch.conf``, its ``hosts:`` line not starting with
    a plain ``files``, or an ``nscd`` socket (its cache answers instead of the file).
    """

    def __init__(self, hosts: str = _HOSTS, nsswitch: str = _NSSWITCH) -> None:
        self.hosts = hosts
        self.nsswitch = nsswitch
        self.lock = threading.Lock()
        self.stamp: tuple[object, ...] | None = None
        self.names: dict[str, frozenset[int]] = {}

    def families(self, name: str) -> frozenset[int]:
        """The families the hosts file answers ``name`` for, without the network."""
        stamp = (self._stat(self.hosts), self._stat(self.nsswitch), self._nscd())
        if stamp != self.stamp:
            with self.lock:
                if stamp != self.stamp:
                    self.names = self._read() if self._files_first() else {}
                    self.stamp = stamp
        return self.names.get(name.lower(), frozenset())

    @staticmethod
    def _stat(path: str) -> tuple[int, int, int, int] | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    @staticmethod
    def _nscd() -> bool:
        return os.path.exists(_NSCD_SOCKET)

    def _files_first(self) -> bool:
        if not sys.platform.startswith("linux") or self._nscd():
            return False
        try:
            with open(self.nsswitch, encoding="utf-8", errors="replace") as config:
                lines = [line.split("#", 1)[0].split() for line in config]
        except OSError:  # no file: glibc asks DNS before the hosts file
            return False
        hosts = [line for line in lines if line and line[0] == "hosts:"]
        # "files" first, with its default action (return on success): a bracketed
        # action after it could go on to the next source.
        return (
            len(hosts) == 1
            and len(hosts[0]) > 1
            and hosts[0][1] == "files"
            and (len(hosts[0]) == 2 or not hosts[0][2].startswith("["))
        )

    def _read(self) -> dict[str, frozenset[int]]:
        found: dict[str, set[int]] = {}
        try:
            with open(self.hosts, encoding="utf-8", errors="replace") as table:
                for line in table:
                    fields = line.split("#", 1)[0].split()
                    if len(fields) < 2:
                        continue
                    try:
                        version = ipaddress.ip_address(fields[0].split("%", 1)[0]).version
                    except ValueError:
                        continue  # a line the resolver skips too
                    for name in fields[1:]:
                        found.setdefault(name.lower(), set()).add(_FAMILIES[version])
        except OSError:
            return {}
        return {name: frozenset(families) for name, families in found.items()}


_hosts_file = _HostsFile()


def _from_hosts_file(host: str | bytes | None, family: int, resolver: Resolver) -> bool:
    """Whether ``resolver(host, ..., family, ...)`` is answered from the hosts file alone."""
    if resolver is not _SYSTEM or not isinstance(host, str) or not host.isascii():
        return False
    families = _hosts_file.families(host)
    if family == socket.AF_UNSPEC:
        return bool(families)
    return family in families


def lookup(
    call: Limits,
    host: str | bytes | None,
    port: str | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
    resolver: Resolver | None = None,
) -> list[Any]:
    """``getaddrinfo(host, port, ...)`` within ``call``'s deadline and stops.

    An IP literal, or a name the system answers from the hosts file, is answered
    inline; a name goes to the pool. Raises ``Stopped``,
    ``DeadlineExceeded`` (whose message says whether the lookup was running or still
    waiting for a thread), or the resolver's own error (``socket.gaierror``).
    """
    answer = _numeric(host, port, family, type, proto, flags)
    if answer is not None:
        return answer
    chosen = _default_resolver if resolver is None else resolver
    if _from_hosts_file(host, family, chosen):
        return list(chosen(host, port, family, type, proto, flags))
    job = _pool.submit(chosen, (host, port, family, type, proto, flags))
    busy = _pool.size

    def timed_out(message: str, *, timeout: float | None = None) -> DeadlineExceeded:
        if job.started:
            hint = f"the resolver did not answer for {host!r} (lookup abandoned)"
        else:
            hint = (
                f"no resolver thread was free for {host!r}: all {busy} are busy, "
                "maybe with a stuck resolver"
            )
        return DeadlineExceeded(f"{message} ({hint})", timeout=timeout)

    try:
        with job.cond:
            if not job.done:
                wait_condition(call, job.cond, lambda: job.done, error=timed_out)
    except BaseException:
        _pool.abandon(job)
        raise
    _pool.abandon(job)  # done: just drop this caller's claim
    if job.error is not None:
        raise _copy(job.error) from None
    if not job.result:
        raise socket.gaierror(f"getaddrinfo returned no address for {host!r}")
    return list(job.result)


def _copy(error: BaseException) -> BaseException:
    # The answer may be shared by callers in several threads: each raises its own
    # exception object, so tracebacks do not pile up on one shared instance.
    try:
        fresh = type(error)(*error.args)
    except Exception:
        return error
    fresh.__cause__ = error.__cause__
    return fresh

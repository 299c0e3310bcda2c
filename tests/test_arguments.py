"""Every public function and argument: a bad value is refused, naming it, before any I/O.

``CASES`` holds, for each (function, argument), a call with a bad value for it and
the error it must raise; ``ANY_VALUE`` the arguments that take anything (or that a
library below validates the same way, before I/O), each with its reason. A test
walks the public API and fails for any argument in neither table, so a new function
or argument cannot slip through. Timeouts and stops are covered for every family by
the generic tables (``BAD_TIMEOUTS``) and are checked here once per function.

"Before any I/O" is observed, not assumed: each call aims at a listening socket
that must see no connection, no child process may be started, no descriptor left
open, and the queue, lock and event used keep their state.
"""

# These calls are ill-typed on purpose: what is tested is the refusal at run time.
# mypy: disable-error-code="arg-type, call-overload, list-item, call-arg, misc"
from __future__ import annotations

import asyncio
import inspect
import multiprocessing.pool
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pytest

import stoppable
from stoppable import StopEvent, aio, futures, http, net, process, queues, sync

from .support import LONG, open_fds

MODULES = {
    "stoppable": stoppable,
    "queues": queues,
    "sync": sync,
    "net": net,
    "http": http,
    "process": process,
    "futures": futures,
    "aio": aio,
}


@dataclass
class Target:
    """What a call must not touch: a listener (no connection), a queue, a lock, an event."""

    address: tuple[str, int]
    q: queue.Queue[int]
    lock: threading.Lock
    event: threading.Event
    url: str


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


@pytest.fixture
def target(listener: socket.socket) -> Target:
    _pool()  # made before the descriptors are counted
    _popen()
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    address = listener.getsockname()
    return Target(
        address, q, threading.Lock(), threading.Event(), f"http://{address[0]}:{address[1]}/"
    )


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.add(int(pid))
    return found


_POPEN: subprocess.Popen[bytes] | None = None


def _popen() -> subprocess.Popen[bytes]:
    """One finished child, reaped, for the calls that take a Popen."""
    global _POPEN
    if _POPEN is None:
        _POPEN = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
        _POPEN.communicate(timeout=LONG)
    return _POPEN


_THREAD_POOL: multiprocessing.pool.ThreadPool | None = None


def _pool() -> multiprocessing.pool.ThreadPool:
    global _THREAD_POOL
    if _THREAD_POOL is None:
        _THREAD_POOL = multiprocessing.pool.ThreadPool(1)
    return _THREAD_POOL


def _sock() -> socket.socket:
    sock = socket.socket()
    _SOCKETS.append(sock)
    return sock


_SOCKETS: list[socket.socket] = []

Call = Callable[[Target], object]
T = LONG  # a good timeout

# (function, argument) -> (a call with a bad value for it, the error, what the message names)
CASES: dict[tuple[str, str], tuple[Call, type[Exception]]] = {
    # core
    ("stoppable.StopEvent.add_callback", "callback"): (
        lambda t: StopEvent().add_callback(5),
        TypeError,
    ),
    ("stoppable.checkpoint", "stop"): (lambda t: stoppable.checkpoint("x"), TypeError),
    ("stoppable.scope", "timeout"): (lambda t: stoppable.scope(timeout="x"), TypeError),
    ("stoppable.scope", "stop"): (lambda t: stoppable.scope(stop="x"), TypeError),
    ("stoppable.set_poll_interval", "seconds"): (
        lambda t: stoppable.set_poll_interval(-1),
        ValueError,
    ),
    # queues
    ("queues.get", "q"): (lambda t: queues.get(object(), timeout=T), TypeError),
    ("queues.put", "q"): (lambda t: queues.put(object(), 1, timeout=T), TypeError),
    ("queues.take", "q"): (lambda t: queues.take(object(), timeout=T), TypeError),
    # sync
    ("sync.acquire", "lock"): (lambda t: sync.acquire(object(), timeout=T), TypeError),
    ("sync.join", "thread"): (lambda t: sync.join("x", timeout=T), TypeError),
    ("sync.wait", "waitable"): (lambda t: sync.wait(object(), timeout=T), TypeError),
    ("sync.wait", "predicate"): (
        lambda t: sync.wait(threading.Condition(), timeout=T, predicate=5),
        TypeError,
    ),
    ("sync.Thread", "target"): (lambda t: sync.Thread(target=5), TypeError),
    ("sync.Thread", "args"): (lambda t: sync.Thread(target=print, args=5), TypeError),
    ("sync.Thread", "kwargs"): (lambda t: sync.Thread(target=print, kwargs=5), TypeError),
    ("sync.Thread", "parent"): (lambda t: sync.Thread(target=print, parent="x"), TypeError),
    ("sync.Thread", "daemon"): (lambda t: sync.Thread(target=print, daemon="x"), TypeError),
    ("sync.Thread", "name"): (lambda t: sync.Thread(target=print, name=5), TypeError),
    # net
    ("net.connect", "address"): (lambda t: net.connect("x", timeout=T), TypeError),
    ("net.connect", "ssl_context"): (
        lambda t: net.connect(t.address, timeout=T, ssl_context=5),
        TypeError,
    ),
    ("net.connect", "server_hostname"): (
        lambda t: net.connect(t.address, timeout=T, server_hostname=5),
        TypeError,
    ),
    ("net.connect", "source_address"): (
        lambda t: net.connect(t.address, timeout=T, source_address=5),
        TypeError,
    ),
    ("net.connect", "family"): (
        lambda t: net.connect(t.address, timeout=T, family="x"),
        TypeError,
    ),
    ("net.connect", "resolver"): (
        lambda t: net.connect(t.address, timeout=T, resolver=5),
        TypeError,
    ),
    ("net.start_tls", "sock"): (lambda t: net.start_tls(5, _tls(), timeout=T), TypeError),
    ("net.start_tls", "context"): (lambda t: net.start_tls(_sock(), 5, timeout=T), TypeError),
    ("net.start_tls", "server_hostname"): (
        lambda t: net.start_tls(_sock(), _tls(), timeout=T, server_hostname=5),
        TypeError,
    ),
    ("net.start_tls", "server_side"): (
        lambda t: net.start_tls(_sock(), _tls(), timeout=T, server_side="x"),
        TypeError,
    ),
    ("net.Socket", "sock"): (lambda t: net.Socket(5), TypeError),
    ("net.Socket", "stop"): (lambda t: net.Socket(_sock(), stop="x"), TypeError),
    ("net.accept", "sock"): (lambda t: net.accept(5, timeout=T), TypeError),
    ("net.recv", "sock"): (lambda t: net.recv(5, 1, timeout=T), TypeError),
    ("net.recv", "bufsize"): (lambda t: net.recv(_sock(), "x", timeout=T), TypeError),
    ("net.recv", "flags"): (lambda t: net.recv(_sock(), 1, "x", timeout=T), TypeError),
    ("net.recv_into", "sock"): (lambda t: net.recv_into(5, bytearray(1), timeout=T), TypeError),
    ("net.recv_into", "buffer"): (lambda t: net.recv_into(_sock(), b"ro", timeout=T), TypeError),
    ("net.recv_into", "nbytes"): (
        lambda t: net.recv_into(_sock(), bytearray(1), "x", timeout=T),
        TypeError,
    ),
    ("net.recv_into", "flags"): (
        lambda t: net.recv_into(_sock(), bytearray(1), 0, "x", timeout=T),
        TypeError,
    ),
    ("net.recvfrom", "sock"): (lambda t: net.recvfrom(5, 1, timeout=T), TypeError),
    ("net.recvfrom", "bufsize"): (lambda t: net.recvfrom(_sock(), "x", timeout=T), TypeError),
    ("net.recvfrom", "flags"): (lambda t: net.recvfrom(_sock(), 1, "x", timeout=T), TypeError),
    ("net.recvfrom_into", "sock"): (
        lambda t: net.recvfrom_into(5, bytearray(1), timeout=T),
        TypeError,
    ),
    ("net.recvfrom_into", "buffer"): (
        lambda t: net.recvfrom_into(_sock(), b"ro", timeout=T),
        TypeError,
    ),
    ("net.recvfrom_into", "nbytes"): (
        lambda t: net.recvfrom_into(_sock(), bytearray(1), "x", timeout=T),
        TypeError,
    ),
    ("net.recvfrom_into", "flags"): (
        lambda t: net.recvfrom_into(_sock(), bytearray(1), 0, "x", timeout=T),
        TypeError,
    ),
    ("net.send", "sock"): (lambda t: net.send(5, b"x", timeout=T), TypeError),
    ("net.send", "data"): (lambda t: net.send(_sock(), 5, timeout=T), TypeError),
    ("net.send", "flags"): (lambda t: net.send(_sock(), b"x", "x", timeout=T), TypeError),
    ("net.sendall", "sock"): (lambda t: net.sendall(5, b"x", timeout=T), TypeError),
    ("net.sendall", "data"): (lambda t: net.sendall(_sock(), 5, timeout=T), TypeError),
    ("net.sendall", "flags"): (
        lambda t: net.sendall(_sock(), b"x", "x", timeout=T),
        TypeError,
    ),
    ("net.sendto", "sock"): (lambda t: net.sendto(5, b"x", t.address, timeout=T), TypeError),
    ("net.sendto", "data"): (lambda t: net.sendto(_udp(), 5, t.address, timeout=T), TypeError),
    ("net.sendto", "address"): (lambda t: net.sendto(_udp(), b"x", 5, timeout=T), TypeError),
    ("net.sendto", "flags"): (
        lambda t: net.sendto(_udp(), b"x", t.address, "x", timeout=T),
        TypeError,
    ),
    ("net.resolve", "host"): (lambda t: net.resolve(5, 80, timeout=T), TypeError),
    ("net.resolve", "port"): (lambda t: net.resolve("localhost", [80], timeout=T), TypeError),
    ("net.resolve", "family"): (
        lambda t: net.resolve("localhost", 80, timeout=T, family="x"),
        TypeError,
    ),
    ("net.resolve", "type"): (
        lambda t: net.resolve("localhost", 80, timeout=T, type="x"),
        TypeError,
    ),
    ("net.resolve", "proto"): (
        lambda t: net.resolve("localhost", 80, timeout=T, proto="x"),
        TypeError,
    ),
    ("net.resolve", "flags"): (
        lambda t: net.resolve("localhost", 80, timeout=T, flags="x"),
        TypeError,
    ),
    ("net.resolve", "resolver"): (
        lambda t: net.resolve("localhost", 80, timeout=T, resolver=5),
        TypeError,
    ),
    ("net.set_resolver", "resolver"): (lambda t: net.set_resolver(5), TypeError),
    ("net.set_resolver_threads", "threads"): (lambda t: net.set_resolver_threads(0), ValueError),
    # http
    ("http.request", "method"): (lambda t: http.request(5, t.url, timeout=T), TypeError),
    ("http.request", "url"): (lambda t: http.request("GET", "5", timeout=T), ValueError),
    ("http.request", "stall_timeout"): (
        lambda t: http.request("GET", t.url, timeout=T, stall_timeout=-1),
        ValueError,
    ),
    ("http.get", "url"): (lambda t: http.get("5", timeout=T), ValueError),
    ("http.head", "url"): (lambda t: http.head("5", timeout=T), ValueError),
    ("http.options", "url"): (lambda t: http.options("5", timeout=T), ValueError),
    ("http.delete", "url"): (lambda t: http.delete("5", timeout=T), ValueError),
    ("http.post", "url"): (lambda t: http.post("5", timeout=T), ValueError),
    ("http.put", "url"): (lambda t: http.put("5", timeout=T), ValueError),
    ("http.patch", "url"): (lambda t: http.patch("5", timeout=T), ValueError),
    ("http.Session", "stop"): (lambda t: http.Session(stop="x"), TypeError),
    ("http.Session", "timeout"): (lambda t: http.Session(timeout="x"), TypeError),
    ("http.Session", "stall_timeout"): (lambda t: http.Session(stall_timeout=-1), ValueError),
    ("http.HTTPAdapter", "stop"): (lambda t: http.HTTPAdapter(stop="x"), TypeError),
    ("http.PoolManager", "timeout"): (lambda t: http.PoolManager(timeout="x"), TypeError),
    ("http.PoolManager", "stop"): (lambda t: http.PoolManager(stop="x"), TypeError),
    ("http.PoolManager", "stall_timeout"): (
        lambda t: http.PoolManager(stall_timeout=-1),
        ValueError,
    ),
    # process
    ("process.run", "input"): (lambda t: process.run(["true"], timeout=T, input=5), TypeError),
    ("process.run", "kill_after"): (
        lambda t: process.run(["true"], timeout=T, kill_after=-1),
        ValueError,
    ),
    ("process.wait", "popen"): (lambda t: process.wait("x", timeout=T), TypeError),
    ("process.wait", "kill_after"): (
        lambda t: process.wait(_popen(), timeout=T, kill_after="x"),
        TypeError,
    ),
    ("process.communicate", "popen"): (
        lambda t: process.communicate("x", timeout=T),
        TypeError,
    ),
    ("process.communicate", "input"): (
        lambda t: process.communicate(_popen(), [65, 66], timeout=T),
        TypeError,
    ),
    ("process.communicate", "kill_after"): (
        lambda t: process.communicate(_popen(), timeout=T, kill_after=-1),
        ValueError,
    ),
    ("process.terminate", "popen"): (lambda t: process.terminate("x"), TypeError),
    ("process.terminate", "kill_after"): (
        lambda t: process.terminate(_popen(), kill_after=-1),
        ValueError,
    ),
    ("process.stop_on_signals", "stop"): (lambda t: process.stop_on_signals("x"), TypeError),
    ("process.stop_on_signals", "signals"): (
        lambda t: process.stop_on_signals(StopEvent(), ["x"]),
        TypeError,
    ),
    # futures
    ("futures.result", "future"): (lambda t: futures.result(5, timeout=T), TypeError),
    ("futures.exception", "future"): (lambda t: futures.exception(5, timeout=T), TypeError),
    ("futures.wait", "fs"): (lambda t: futures.wait([5], timeout=T), TypeError),
    ("futures.wait", "return_when"): (
        lambda t: futures.wait([Future()], timeout=T, return_when="x"),
        ValueError,
    ),
    ("futures.as_completed", "fs"): (
        lambda t: list(futures.as_completed([5], timeout=T)),
        TypeError,
    ),
    ("futures.pool_apply", "pool"): (lambda t: futures.pool_apply(5, print, timeout=T), TypeError),
    ("futures.pool_apply", "func"): (
        lambda t: futures.pool_apply(_pool(), 5, timeout=T),
        TypeError,
    ),
    ("futures.pool_apply", "args"): (
        lambda t: futures.pool_apply(_pool(), print, 5, timeout=T),
        TypeError,
    ),
    ("futures.pool_apply", "kwds"): (
        lambda t: futures.pool_apply(_pool(), print, (), 5, timeout=T),
        TypeError,
    ),
    ("futures.pool_map", "pool"): (lambda t: futures.pool_map(5, print, [], timeout=T), TypeError),
    ("futures.pool_map", "func"): (
        lambda t: futures.pool_map(_pool(), 5, [1], timeout=T),
        TypeError,
    ),
    ("futures.pool_map", "iterable"): (
        lambda t: futures.pool_map(_pool(), print, 5, timeout=T),
        TypeError,
    ),
    ("futures.pool_map", "chunksize"): (
        lambda t: futures.pool_map(_pool(), print, [1], "x", timeout=T),
        TypeError,
    ),
    ("futures.pool_starmap", "pool"): (
        lambda t: futures.pool_starmap(5, print, [], timeout=T),
        TypeError,
    ),
    ("futures.pool_starmap", "func"): (
        lambda t: futures.pool_starmap(_pool(), 5, [()], timeout=T),
        TypeError,
    ),
    ("futures.pool_starmap", "iterable"): (
        lambda t: futures.pool_starmap(_pool(), print, 5, timeout=T),
        TypeError,
    ),
    ("futures.pool_starmap", "chunksize"): (
        lambda t: futures.pool_starmap(_pool(), print, [()], "x", timeout=T),
        TypeError,
    ),
    ("futures.ThreadPoolExecutor", "max_workers"): (
        lambda t: futures.ThreadPoolExecutor(max_workers=0),
        ValueError,
    ),
    ("futures.ThreadPoolExecutor", "initializer"): (
        lambda t: futures.ThreadPoolExecutor(initializer=5),
        TypeError,
    ),
    ("futures.ThreadPoolExecutor", "parent"): (
        lambda t: futures.ThreadPoolExecutor(parent="x"),
        TypeError,
    ),
    ("futures.ThreadPoolExecutor", "shutdown_timeout"): (
        lambda t: futures.ThreadPoolExecutor(shutdown_timeout=-1),
        ValueError,
    ),
    # added in 0.2
    ("aio.Executor", "max_workers"): (lambda t: aio.Executor(max_workers=0), ValueError),
    ("aio.Executor", "initializer"): (lambda t: aio.Executor(initializer=5), TypeError),
    ("aio.Executor", "parent"): (lambda t: aio.Executor(parent="x"), TypeError),
    ("aio.Executor", "task_timeout"): (lambda t: aio.Executor(task_timeout=-1), ValueError),
    ("aio.Executor", "shutdown_timeout"): (lambda t: aio.Executor(shutdown_timeout=-1), ValueError),
    ("aio.to_thread", "func"): (lambda t: asyncio.run(aio.to_thread(5, timeout=T)), TypeError),
    ("sync.Thread", "guard"): (lambda t: sync.Thread(target=print, guard="x"), TypeError),
    ("http.Session", "guard"): (lambda t: http.Session(guard="x"), TypeError),
    ("futures.ThreadPoolExecutor", "guard"): (
        lambda t: futures.ThreadPoolExecutor(guard="x"),
        TypeError,
    ),
    ("stoppable.scope", "raise_if_expired"): (
        lambda t: stoppable.scope(timeout=1, raise_if_expired="x"),
        TypeError,
    ),
    ("stoppable.sleep", "seconds"): (lambda t: stoppable.sleep(-1), ValueError),
    ("stoppable.stop_on_signals", "stop"): (lambda t: stoppable.stop_on_signals("x"), TypeError),
    ("stoppable.stop_on_signals", "signals"): (
        lambda t: stoppable.stop_on_signals(StopEvent(), ["x"]),
        TypeError,
    ),
    ("queues.join", "q"): (lambda t: queues.join(object(), timeout=T), TypeError),
    ("sync.Thread", "group"): (lambda t: sync.Thread(print), TypeError),
    ("futures.ProcessPoolExecutor", "max_workers"): (
        lambda t: futures.ProcessPoolExecutor(max_workers=0),
        ValueError,
    ),
    ("futures.ProcessPoolExecutor", "mp_context"): (
        lambda t: futures.ProcessPoolExecutor(mp_context="x"),
        TypeError,
    ),
    ("futures.ProcessPoolExecutor", "initializer"): (
        lambda t: futures.ProcessPoolExecutor(initializer=5),
        TypeError,
    ),
    ("futures.ProcessPoolExecutor", "parent"): (
        lambda t: futures.ProcessPoolExecutor(parent="x"),
        TypeError,
    ),
    ("futures.ProcessPoolExecutor", "shutdown_timeout"): (
        lambda t: futures.ProcessPoolExecutor(shutdown_timeout=-1),
        ValueError,
    ),
    ("futures.ProcessPoolExecutor", "kill_after"): (
        lambda t: futures.ProcessPoolExecutor(kill_after=-1),
        ValueError,
    ),
    ("futures.pool_imap", "pool"): (
        lambda t: list(futures.pool_imap(5, print, [], timeout=T)),
        TypeError,
    ),
    ("futures.pool_imap", "func"): (
        lambda t: list(futures.pool_imap(_pool(), 5, [1], timeout=T)),
        TypeError,
    ),
    ("futures.pool_imap", "iterable"): (
        lambda t: list(futures.pool_imap(_pool(), print, 5, timeout=T)),
        TypeError,
    ),
    ("futures.pool_imap", "chunksize"): (
        lambda t: list(futures.pool_imap(_pool(), print, [1], "x", timeout=T)),
        ValueError,
    ),
    ("futures.pool_imap_unordered", "pool"): (
        lambda t: list(futures.pool_imap_unordered(5, print, [], timeout=T)),
        TypeError,
    ),
    ("futures.pool_imap_unordered", "func"): (
        lambda t: list(futures.pool_imap_unordered(_pool(), 5, [1], timeout=T)),
        TypeError,
    ),
    ("futures.pool_imap_unordered", "iterable"): (
        lambda t: list(futures.pool_imap_unordered(_pool(), print, 5, timeout=T)),
        TypeError,
    ),
    ("futures.pool_imap_unordered", "chunksize"): (
        lambda t: list(futures.pool_imap_unordered(_pool(), print, [1], "x", timeout=T)),
        ValueError,
    ),
}


def _tls() -> Any:
    import ssl

    return ssl.create_default_context()


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _SOCKETS.append(sock)
    return sock


# Arguments that take any value, or that the library below refuses the same way
# (before any I/O) with its own message: each with why it is not in CASES.
ANY_VALUE: dict[tuple[str, str], str] = {
    ("queues.put", "item"): "any object can be queued",
    ("http.get", "params"): "requests validates params when it prepares the request",
    ("http.post", "data"): "requests validates the body when it prepares the request",
    ("http.post", "json"): "requests serialises json when it prepares the request",
    ("http.put", "data"): "as post's data",
    ("http.patch", "data"): "as post's data",
    ("http.request", "kwargs"): "requests' own arguments, validated by requests",
    ("http.get", "kwargs"): "as request's kwargs",
    ("http.head", "kwargs"): "as request's kwargs",
    ("http.options", "kwargs"): "as request's kwargs",
    ("http.delete", "kwargs"): "as request's kwargs",
    ("http.post", "kwargs"): "as request's kwargs",
    ("http.put", "kwargs"): "as request's kwargs",
    ("http.patch", "kwargs"): "as request's kwargs",
    ("http.HTTPAdapter", "pool_connections"): "requests.adapters.HTTPAdapter's own",
    ("http.HTTPAdapter", "pool_maxsize"): "requests.adapters.HTTPAdapter's own",
    ("http.HTTPAdapter", "max_retries"): "requests.adapters.HTTPAdapter's own",
    ("http.HTTPAdapter", "pool_block"): "requests.adapters.HTTPAdapter's own",
    ("http.PoolManager", "num_pools"): "urllib3.PoolManager's own",
    ("http.PoolManager", "headers"): "urllib3.PoolManager's own",
    ("http.PoolManager", "connection_pool_kw"): "urllib3.PoolManager's own",
    ("process.run", "args"): "subprocess.Popen's own (refused before the fork)",
    ("process.run", "capture_output"): "a flag: any truth value, as subprocess.run",
    ("process.run", "check"): "a flag: any truth value, as subprocess.run",
    ("process.run", "popen_kwargs"): "subprocess.Popen's own arguments",
    ("futures.ThreadPoolExecutor", "thread_name_prefix"): "any str, as the standard one",
    ("futures.ThreadPoolExecutor", "initargs"): "passed to initializer, as the standard one",
    ("futures.ProcessPoolExecutor", "initargs"): "passed to initializer, as the standard one",
    ("aio.Executor", "initargs"): "passed to initializer, as the standard one",
    ("aio.Executor", "thread_name_prefix"): "any str, as the standard one",
    ("aio.to_thread", "args"): "passed to func, as asyncio.to_thread's",
    ("aio.to_thread", "kwargs"): "passed to func, as asyncio.to_thread's",
    ("stoppable.StopEvent.set", "reason"): "any object is a reason",
}

# Pools made with a host and port: urllib3 validates them; covered through PoolManager.
SKIPPED_CALLABLES = {
    "http.HTTPConnectionPool": "urllib3's pool; stoppable's own arguments as PoolManager's",
    "http.HTTPSConnectionPool": "urllib3's pool; stoppable's own arguments as PoolManager's",
    "http.ProxyManager": "urllib3's manager; stoppable's own arguments as PoolManager's",
    "stoppable.CallbackHandle": "made by add_callback, not by users",
    "stoppable.StopLike": "a Protocol, not a function",
    "sync.Held": "made by acquire, not by users",
    "net.AddrInfo": "a type alias",
    "net.Resolver": "a type alias",
    "http.HTTPConnection": "urllib3's connection: its arguments are urllib3's, checked by it",
    "http.HTTPSConnection": "urllib3's connection: its arguments are urllib3's, checked by it",
}


def _public_arguments() -> Iterator[tuple[str, str]]:
    """Every (public function, argument), timeout and stop aside (tables elsewhere)."""
    for prefix, module in MODULES.items():
        for name in module.__all__:
            obj = getattr(module, name)
            qualname = f"{prefix}.{name}"
            if qualname in SKIPPED_CALLABLES or not callable(obj):
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue
            callables = [(qualname, obj)]
            if obj is StopEvent:
                callables += [
                    (f"{qualname}.{method}", getattr(StopEvent, method))
                    for method in ("add_callback", "set")
                ]
            for where, function in callables:
                for parameter in inspect.signature(function).parameters:
                    if parameter in ("self", "timeout", "stop") and (where, parameter) not in CASES:
                        continue
                    yield where, parameter


def test_every_public_argument_is_in_a_table() -> None:
    missing = [key for key in _public_arguments() if key not in CASES and key not in ANY_VALUE]
    assert not missing, f"add these to CASES (or ANY_VALUE, with why): {missing}"


@pytest.mark.parametrize("key", list(CASES), ids=lambda key: f"{key[0]}({key[1]}=)")
def test_a_bad_argument_is_refused_naming_it_before_any_io(
    key: tuple[str, str], target: Target, listener: socket.socket
) -> None:
    call, error = CASES[key]
    argument = key[1]
    fds, children = open_fds(), _children()
    previous_handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(error, match=f"(?i){argument}"):
            call(target)
    finally:
        for sock in _SOCKETS:
            sock.close()
        _SOCKETS.clear()
    # No I/O happened: no connection, no child, no descriptor, nothing changed.
    connected = select.select([listener], [], [], 0)[0] != []
    while select.select([listener], [], [], 0)[0]:  # for the next case
        net.accept(listener, timeout=LONG)[0].close()
    assert not connected, "a connection was made"
    assert _children() <= children, "a child process was started"
    assert open_fds() <= fds
    assert target.q.qsize() == 1
    assert not target.lock.locked()
    assert not target.event.is_set()
    assert {sig: signal.getsignal(sig) for sig in previous_handlers} == previous_handlers


def teardown_module() -> None:
    if _THREAD_POOL is not None:
        _THREAD_POOL.terminate()
        _THREAD_POOL.join()  # noqa: STP102 - terminated just above


@pytest.mark.parametrize("bad", [5, [65, 66], object()], ids=repr)
def test_run_refuses_input_that_is_not_bytes_like_before_starting_a_child(bad: object) -> None:
    children = _children()
    with pytest.raises(TypeError, match="input"):
        process.run(["cat"], timeout=LONG, input=bad, capture_output=True)
    assert _children() <= children


@pytest.mark.parametrize("good", [b"AB", bytearray(b"AB"), memoryview(b"AB")], ids=repr)
def test_run_takes_any_bytes_like_input(good: object) -> None:
    done = process.run(["cat"], timeout=LONG, input=good, capture_output=True)
    assert done.stdout == b"AB"

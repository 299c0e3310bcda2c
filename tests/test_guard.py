"""stoppable.guard: foreign blocking calls in the guarded thread, bounded and stoppable.

Real sockets, TLS, threads and processes; no mocks. Each test makes a blocking call
the way code that knows nothing of stoppable does (``sock.recv``, ``q.get()``,
``time.sleep``...) inside a guard, and checks that a stop ends it at once, that the
deadline ends it, that its own timeout still works, and that nothing changes for
threads outside a guard.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import os
import queue
import select
import selectors
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import requests.auth

import stoppable
from stoppable import (
    DeadlineExceeded,
    StopEvent,
    Stopped,
    _guard,
    futures,
    guard,
    http,
    net,
    queues,
    sync,
)
from stoppable._guard import _install
from stoppable._netio import _switched

from .net_servers import (
    FullBacklog,
    LoopbackServer,
    StuckResolver,
    UdpEcho,
    echo,
    serving,
    silent,
    tls,
)
from .support import (
    LONG,
    SHORT,
    WAKE_BOUND,
    open_fds,
    start_call,
    stop_while_blocked,
    wait_until,
    wait_until_blocked,
)


@pytest.fixture(autouse=True)
def every_guard_closes() -> Iterator[None]:
    yield
    # No guard left open by a test: the socket methods are the standard library's again
    # (at once here, rather than after their linger).
    wait_until(lambda: not _install.is_open(), what="every guard to close")
    _install.settle()
    assert not _install.is_installed()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def run_script(script: str) -> str:
    """Run ``script`` in a fresh interpreter (nothing installed yet); its output."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=LONG,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def stopped_in_guard(block: Callable[[], object], reason: str = "shutdown") -> BaseException:
    """Run ``block`` inside ``guard(stop=...)`` in a thread; stop it once it is blocked.

    It must end by ``Stopped`` (with the reason) well within ``WAKE_BOUND``, and leave
    no callback registered on the stop.
    """
    stop = StopEvent()

    def run() -> object:
        with guard(stop=stop):
            return block()

    thread, outcome = start_call(run)
    wait_until_blocked(thread)
    set_at = time.perf_counter()
    stop.set(reason)
    assert outcome.done.wait(WAKE_BOUND), "the stop did not end the call"
    assert outcome.ended_at is not None
    assert outcome.ended_at - set_at < WAKE_BOUND
    assert isinstance(outcome.error, Stopped), repr(outcome.error)
    assert outcome.error.reason == reason
    assert stop._callback_count() == 0
    thread.join(LONG)
    return outcome.error


def expires_in_guard(block: Callable[[], object], timeout: float = SHORT) -> DeadlineExceeded:
    """Run ``block`` inside ``guard(timeout=...)``: it must end by ``DeadlineExceeded``."""
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info, guard(timeout=timeout):
        block()
    elapsed = time.monotonic() - started
    assert timeout * 0.9 <= elapsed < timeout + WAKE_BOUND
    assert isinstance(info.value, socket.timeout)  # clients treat it as their own timeout
    return info.value


# --- the API ---------------------------------------------------------------------------


def test_guard_is_exported_and_refuses_bad_input() -> None:
    assert stoppable.guard is guard
    with pytest.raises(TypeError, match="timeout, a stop"):
        guard()
    with pytest.raises(ValueError, match="timeout"):
        guard(timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        guard(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stop"):
        guard(stop=object())  # type: ignore[arg-type]


def test_a_guard_is_entered_once() -> None:
    g = guard(timeout=LONG)
    with g:
        assert g.remaining() is not None
    with pytest.raises(RuntimeError, match="once"), g:
        pass


def test_import_installs_nothing() -> None:
    script = """
        import socket, ssl, threading, time, select, subprocess
        import stoppable
        assert "recv" not in vars(socket.socket), "socket methods patched at import"
        assert "read" in vars(ssl.SSLSocket) and vars(ssl.SSLSocket)["read"].__module__ == "ssl"
        assert threading.Condition.wait.__module__ == "threading"
        assert type(time.sleep).__name__ == "builtin_function_or_method"
        assert type(select.select).__name__ == "builtin_function_or_method"
        assert socket.getaddrinfo.__module__ == "socket"
        print("clean")
    """
    assert run_script(script) == "clean"


def test_socket_methods_are_installed_only_while_a_guard_is_open_and_shortly_after() -> None:
    original = vars(socket.socket).get("recv")
    original_read = vars(ssl.SSLSocket)["read"]
    with guard(timeout=LONG):
        assert _install.is_installed()
        installed = vars(socket.socket).get("recv")
        assert installed is not original
        with guard(timeout=LONG):  # nested: still installed after the inner one closes
            pass
        assert _install.is_installed()
    # Guards opened one after another (aio.to_thread, an executor's tasks) do not pay
    # for installing and removing the socket methods each time: they linger a while.
    assert not _install.is_open()
    assert vars(socket.socket).get("recv") is installed
    with guard(timeout=LONG):
        assert vars(socket.socket).get("recv") is installed
    # ... and go once no guard has been open for that while, by themselves.
    wait_until(lambda: not _install.is_installed(), what="the socket methods to go")
    assert vars(socket.socket).get("recv") is original
    assert vars(ssl.SSLSocket)["read"] is original_read


# --- sockets ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, LONG], ids=["blocking", "timeout-mode"])
def test_recv_is_stopped_and_bounded_in_any_mode(
    pair: tuple[socket.socket, socket.socket], mode: float | None
) -> None:
    a, b = pair
    a.settimeout(mode)
    stopped_in_guard(lambda: a.recv(10))
    a, b = socket.socketpair()
    try:
        a.settimeout(mode)
        error = expires_in_guard(lambda: a.recv(10))
        assert "guard" in str(error)
        assert a.gettimeout() == mode  # the mode is left as it was
    finally:
        a.close()
        b.close()


def test_data_already_there_is_returned(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.sendall(b"hello")
    with guard(timeout=LONG):
        assert a.recv(10) == b"hello"
        buffer = bytearray(5)
        b.sendall(b"world")
        assert a.recv_into(buffer) == 5
        assert buffer == b"world"


def test_the_socket_s_own_timeout_still_applies(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    a.settimeout(SHORT)
    started = time.monotonic()
    with guard(timeout=LONG), pytest.raises(TimeoutError) as info:
        a.recv(10)
    assert time.monotonic() - started < LONG / 2
    # What the socket raises today, not the guard's error.
    assert type(info.value) is TimeoutError
    assert str(info.value) == "timed out"
    assert a.gettimeout() == SHORT


def test_recv_into_recvfrom_and_recvmsg_are_reached(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    stopped_in_guard(lambda: a.recv_into(bytearray(10)))
    with UdpEcho() as udp:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            client.bind(("127.0.0.1", 0))
            stopped_in_guard(lambda: client.recvfrom(100))  # noqa: STP102 - in a guard
            stopped_in_guard(lambda: client.recvfrom_into(bytearray(100)))  # noqa: STP102 - in a guard
            stopped_in_guard(lambda: client.recvmsg(100))  # noqa: STP102 - in a guard
            with guard(timeout=LONG):  # datagrams still flow, and UDP is never shut down
                client.sendto(b"ping", udp.address)
                assert client.recvfrom(100)[0] == b"ping"  # noqa: STP102 - in a guard
        finally:
            client.close()


def test_sendall_to_a_peer_that_never_reads_is_stopped_and_kills_the_connection(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    stopped_in_guard(lambda: a.sendall(b"x" * (64 << 20)))
    # Mid-message: the connection is dead, for both sides.
    with pytest.raises(OSError, match="Broken pipe"):
        a.send(b"more")
    b.settimeout(LONG)
    while b.recv(1 << 20):
        pass  # drains what got through, then sees end-of-file


def test_send_and_sendmsg_are_reached(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    a.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            a.send(b"x" * 65536)  # fill the buffers
    a.setblocking(True)
    expires_in_guard(lambda: a.send(b"x"))
    c, d = socket.socketpair()
    try:
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                c.send(b"x" * 65536)
        c.setblocking(True)  # noqa: STP101 - in a guard
        stopped_in_guard(lambda: c.sendmsg([b"x"]))  # noqa: STP102 - in a guard
    finally:
        c.close()
        d.close()


def test_makefile_reads_are_reached(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    reader = a.makefile("rb")
    b.sendall(b"partial line, never finished")
    stopped_in_guard(reader.readline)
    reader.close()


def test_an_interrupted_connection_is_never_reused_half_read() -> None:
    go = threading.Event()

    def late_reply(conn: socket.socket, server: LoopbackServer) -> None:
        request = conn.recv(100)
        server.wait_either(go)
        with contextlib.suppress(OSError):
            conn.sendall(b"reply to " + request)  # arrives after the client gave up
        echo(conn, server)

    with serving(late_reply) as server:
        sock = socket.create_connection(server.address, timeout=LONG)
        with sock:
            sock.settimeout(None)  # noqa: STP101 - blocking on purpose: the guard bounds it
            with pytest.raises(DeadlineExceeded), guard(timeout=SHORT):
                sock.sendall(b"first")
                sock.recv(100)  # noqa: STP102 - in a guard
            go.set()
            # The late reply to "first" must never be read as the answer to a next
            # request: the connection is shut down, so the next request fails at once.
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                sock.sendall(b"second")
            try:
                reply = sock.recv(100)  # noqa: STP102 - shut down: never blocks
            except ConnectionResetError:  # the late reply met a closed socket: a reset
                reply = b""
            assert reply == b""  # end-of-file, never the stale reply


def test_accept_is_stopped_and_the_listener_stays_usable() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        stopped_in_guard(listener.accept)
        client = socket.create_connection(listener.getsockname(), timeout=LONG)
        with guard(timeout=LONG):
            conn, _ = listener.accept()  # noqa: STP102 - in a guard
        assert conn.gettimeout() is None  # as accept makes it
        conn.close()
        client.close()
    finally:
        listener.close()


def test_connect_is_stopped_and_bounded() -> None:
    with FullBacklog() as full:
        sock = socket.socket()
        try:
            stopped_in_guard(lambda: sock.connect(full.address))  # noqa: STP102 - in a guard
        finally:
            sock.close()
        expires_in_guard(lambda: socket.create_connection(full.address))  # noqa: STP100 - in a guard
        sock = socket.socket()
        try:
            with guard(timeout=LONG), pytest.raises(TimeoutError) as info:
                sock.settimeout(SHORT)  # its own timeout, shorter: as today
                sock.connect(full.address)
            assert type(info.value) is TimeoutError
        finally:
            sock.close()


def test_tls_handshake_that_never_completes_is_stopped_and_bounded() -> None:
    with serving(silent) as server:
        raw = socket.create_connection(server.address, timeout=LONG)
        raw.settimeout(None)
        sock = tls().client.wrap_socket(
            raw, server_hostname="localhost", do_handshake_on_connect=False
        )
        stopped_in_guard(lambda: sock.do_handshake())
        sock.close()
        # Made and shaken hands with inside the guard (wrap_socket closes it on a timeout).
        expires_in_guard(
            lambda: tls().client.wrap_socket(
                socket.create_connection(server.address),  # noqa: STP100 - in a guard
                server_hostname="localhost",
            )
        )


@pytest.mark.parametrize("mode", [None, LONG], ids=["blocking", "timeout-mode"])
def test_tls_reads_and_writes_are_reached(mode: float | None) -> None:
    with serving(echo, ssl_context=tls().server) as server:
        with guard(timeout=LONG):  # connect and handshake inside the guard
            sock = tls().client.wrap_socket(
                socket.create_connection(server.address),  # noqa: STP100 - in a guard
                server_hostname="localhost",
            )
        sock.settimeout(mode)
        with guard(timeout=LONG):
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
        assert sock.gettimeout() == mode
        stopped_in_guard(lambda: sock.recv(10))
        sock.close()


def test_a_tls_socket_shared_with_an_unguarded_thread_is_not_disturbed() -> None:
    size = 8 << 20

    def count_then_answer(conn: socket.socket, server: LoopbackServer) -> None:
        got = 0
        while got < size:
            chunk = conn.recv(65536)
            if not chunk:
                return
            got += len(chunk)
            server.pause(0.0002)  # a slow reader: the writer's buffer fills
        conn.sendall(b"ok")

    with serving(count_then_answer, ssl_context=tls().server) as server:
        sock = tls().client.wrap_socket(
            socket.create_connection(server.address, timeout=LONG), server_hostname="localhost"
        )
        sock.settimeout(None)

        def guarded_read() -> bytes:
            with guard(timeout=LONG):
                return sock.recv(2)

        reader, outcome = start_call(guarded_read)
        wait_until(lambda: id(sock) in _switched, what="the guarded read to switch the socket")
        wait_until_blocked(reader)
        # This thread is in no guard: a blocking sendall, as if nothing were switched.
        sock.sendall(b"x" * size)
        assert outcome.done.wait(LONG)
        assert outcome.error is None, repr(outcome.error)
        assert outcome.result == b"ok", server.errors
        assert sock.gettimeout() is None
        sock.close()


def test_unguarded_threads_see_no_change_while_a_guard_is_open(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    stop = StopEvent()
    guarded, outcome = start_call(lambda: _sleep_in_guard(stop))
    wait_until_blocked(guarded)
    try:
        assert _install.is_installed()
        # This thread is outside every guard: its calls behave as the standard
        # library's, timeouts and errors included.
        a.settimeout(SHORT)
        with pytest.raises(TimeoutError) as info:
            a.recv(1)
        assert type(info.value) is TimeoutError
        assert str(info.value) == "timed out"
        a.settimeout(None)
        cond = threading.Condition()
        with cond:
            assert cond.wait(0.01) is False
        started = time.monotonic()
        time.sleep(0.02)
        assert time.monotonic() - started >= 0.02
        b.sendall(b"x")
        assert a.recv(1) == b"x"
        assert select.select([a], [], [], 0.01) == ([], [], [])
    finally:
        stop.set("only the guarded thread")
        assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def _sleep_in_guard(stop: StopEvent) -> None:
    with guard(stop=stop):
        time.sleep(LONG)


@pytest.mark.parametrize("call", ["accept", "recvfrom", "recvfrom_into"])
def test_stoppable_s_own_calls_are_stopped_while_another_thread_is_guarded(call: str) -> None:
    # net switches the socket to non-blocking and calls its methods, the guard's while
    # one is open anywhere: those must leave the wait (and its stop) to net.
    holder_stop = StopEvent()
    guarded, outcome = start_call(lambda: _sleep_in_guard(holder_stop))
    wait_until_blocked(guarded)
    try:
        with contextlib.ExitStack() as stack:
            a, b = socket.socketpair()
            stack.enter_context(a)
            stack.enter_context(b)
            listener = stack.enter_context(socket.socket())
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            blocks: dict[str, Callable[[StopEvent], object]] = {
                "accept": lambda stop: net.accept(listener, timeout=LONG, stop=stop),
                "recvfrom": lambda stop: net.recvfrom(a, 1, timeout=LONG, stop=stop),
                "recvfrom_into": lambda stop: net.recvfrom_into(
                    a, bytearray(1), timeout=LONG, stop=stop
                ),
            }
            stop_while_blocked(blocks[call])
    finally:
        holder_stop.set("done")
        assert outcome.done.wait(WAKE_BOUND)


def test_unguarded_socket_calls_run_as_usual_while_another_thread_is_guarded() -> None:
    stop = StopEvent()
    guarded, outcome = start_call(lambda: _sleep_in_guard(stop))
    wait_until_blocked(guarded)
    try:
        assert _install.is_installed()
        with serving(echo) as server:
            sock = socket.create_connection(server.address, timeout=LONG)
            for size in (1, 1000, 1 << 20):
                data = os.urandom(size)
                sock.sendall(data)
                got = b""
                while len(got) < size:
                    got += sock.recv(size - len(got))
                assert got == data
            sock.close()
    finally:
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)


# --- DNS --------------------------------------------------------------------------------


@pytest.fixture
def stuck_resolver() -> Iterator[StuckResolver]:
    stuck = StuckResolver()
    previous = net.set_resolver(stuck)
    yield stuck
    stuck.release()
    net.set_resolver(previous)
    stuck.wait_idle()


def test_a_stuck_name_lookup_is_stopped_and_bounded(stuck_resolver: StuckResolver) -> None:
    stopped_in_guard(lambda: socket.getaddrinfo("stuck.invalid", 80))
    expires_in_guard(lambda: socket.create_connection(("stuck.invalid", 80)))  # noqa: STP100 - in a guard
    with guard(timeout=LONG):  # literals never reach the resolver
        assert socket.getaddrinfo("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)
        assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"


def test_real_lookups_still_answer_inside_a_guard() -> None:
    with guard(timeout=LONG):
        assert socket.gethostbyname("localhost").startswith("127.")
        assert str(socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0]).startswith("127.")
        name, _, _ = socket.gethostbyname_ex("localhost")
        assert name


# --- select, poll, selectors ------------------------------------------------------------


def test_select_is_stopped_and_bounded(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    stopped_in_guard(lambda: select.select([a], [], []))  # noqa: STP100 - in a guard
    expires_in_guard(lambda: select.select([a], [], [], LONG))
    with guard(timeout=LONG):
        assert select.select([a], [], [], 0.01) == ([], [], [])  # its own timeout
        b.sendall(b"x")
        assert select.select([a], [], []) == ([a], [], [])  # noqa: STP100 - in a guard; the caller's objects


def test_poll_made_inside_a_guard_is_stopped_and_bounded(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair

    def wait() -> object:
        poller = select.poll()
        poller.register(a, select.POLLIN)
        return poller.poll()  # noqa: STP100 - in a guard

    stopped_in_guard(wait)
    expires_in_guard(wait)
    with guard(timeout=LONG):
        poller = select.poll()
        poller.register(a, select.POLLIN)
        assert poller.poll(10) == []
        b.sendall(b"x")
        assert poller.poll() == [(a.fileno(), select.POLLIN)]  # noqa: STP100 - in a guard


@pytest.mark.parametrize("kind", ["PollSelector", "EpollSelector", "SelectSelector"])
def test_selectors_are_stopped_and_bounded(
    pair: tuple[socket.socket, socket.socket], kind: str
) -> None:
    a, b = pair
    cls = getattr(selectors, kind)

    def wait() -> object:
        with cls() as selector:
            selector.register(a, selectors.EVENT_READ)
            return selector.select()

    stopped_in_guard(wait)
    expires_in_guard(wait)
    with guard(timeout=LONG), cls() as selector:
        selector.register(a, selectors.EVENT_READ)
        assert selector.select(0.01) == []
        b.sendall(b"x")
        [(key, events)] = selector.select()
        assert key.fileobj is a
        assert events == selectors.EVENT_READ


# --- threading and queue ------------------------------------------------------------------


def test_condition_event_semaphore_and_queue_waits_are_reached() -> None:
    cond = threading.Condition()

    def wait_cond() -> object:
        with cond:
            return cond.wait()  # noqa: STP100 - in a guard

    stopped_in_guard(wait_cond)
    expires_in_guard(wait_cond)
    stopped_in_guard(threading.Event().wait)
    stopped_in_guard(threading.Semaphore(0).acquire)
    q: queue.Queue[int] = queue.Queue()
    stopped_in_guard(q.get)
    expires_in_guard(q.get)
    full: queue.Queue[int] = queue.Queue(maxsize=1)
    full.put(1)  # noqa: STP100 - in a guard
    stopped_in_guard(lambda: full.put(2))  # noqa: STP100 - in a guard
    assert full.get_nowait() == 1
    assert full.empty()


def test_condition_wait_keeps_its_semantics_inside_a_guard() -> None:
    cond = threading.Condition()
    items: list[int] = []

    def producer() -> None:
        with cond:
            items.append(1)
            cond.notify()

    with guard(timeout=LONG), cond:
        assert cond.wait(0.01) is False  # its own timeout
        threading.Thread(target=producer).start()
        assert cond.wait_for(lambda: items, LONG)
        assert cond._is_owned()  # type: ignore[attr-defined]


def test_a_notify_is_never_lost_when_a_guarded_waiter_is_stopped() -> None:
    for _ in range(20):
        q: queue.Queue[int] = queue.Queue()
        stop = StopEvent()

        def guarded_get(stop: StopEvent = stop, q: queue.Queue[int] = q) -> int:
            with guard(stop=stop):
                return q.get()  # noqa: STP100 - in a guard

        guarded, outcome = start_call(guarded_get)
        plain, plain_outcome = start_call(lambda q=q: q.get(timeout=LONG))  # type: ignore[misc]
        wait_until_blocked(guarded)
        wait_until_blocked(plain)
        q.put(1)  # races with the stop: exactly one of the two takes it
        stop.set()
        assert (
            outcome.done.wait(LONG) and plain_outcome.done.wait(LONG if outcome.error else 0.2)
        ) or (outcome.result == 1)
        taken = [o.result for o in (outcome, plain_outcome) if o.done.is_set() and o.error is None]
        if not taken:
            pytest.fail("the item was lost")
        assert taken == [1]
        if not plain_outcome.done.is_set():
            q.put(2)
            assert plain_outcome.done.wait(LONG)


def test_a_stopped_barrier_party_breaks_the_barrier() -> None:
    barrier = threading.Barrier(2)
    stopped_in_guard(lambda: barrier.wait())  # noqa: STP100 - in a guard
    assert barrier.broken


def test_join_is_stopped_and_bounded() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(LONG,), daemon=True)
    worker.start()
    try:
        stopped_in_guard(lambda: worker.join())  # noqa: STP100 - in a guard
        expires_in_guard(lambda: worker.join())  # noqa: STP100 - in a guard
        with guard(timeout=LONG):
            worker.join(0.01)  # its own timeout: returns, as join does
            assert worker.is_alive()
    finally:
        release.set()
        worker.join(LONG)


def test_sleep_is_stopped_and_bounded_and_keeps_its_length() -> None:
    stopped_in_guard(lambda: time.sleep(LONG))
    expires_in_guard(lambda: time.sleep(LONG))
    with guard(timeout=LONG):
        started = time.monotonic()
        time.sleep(0.05)
        assert time.monotonic() - started >= 0.05
        with pytest.raises(ValueError, match="non-negative"):
            time.sleep(-1)


# --- subprocess ---------------------------------------------------------------------


def test_subprocess_waits_are_stopped_and_bounded() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stopped_in_guard(lambda: child.wait())  # noqa: STP100 - in a guard
        with guard(timeout=LONG), pytest.raises(subprocess.TimeoutExpired):
            child.wait(0.01)  # its own timeout, as today
    finally:
        child.kill()
        child.wait(LONG)
    expires_in_guard(lambda: subprocess.run(["sleep", "60"]))  # noqa: STP100 - in a guard
    # A lone pipe read without a timeout is a plain read() in the standard library.
    expires_in_guard(lambda: subprocess.run(["sleep", "60"], stdout=subprocess.PIPE))  # noqa: STP100 - in a guard
    with guard(timeout=LONG):
        done = subprocess.run(["echo", "ok"], capture_output=True, check=True)  # noqa: STP100 - in a guard
    assert done.stdout == b"ok\n"


# --- errors ---------------------------------------------------------------------------


class ClientError(Exception):
    """What a client library makes of the guard's error."""


def test_a_rewritten_error_comes_out_as_the_guard_s_chained(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    with pytest.raises(DeadlineExceeded) as info, guard(timeout=SHORT):
        try:
            a.recv(1)
        except OSError as exc:
            raise ClientError("server disconnected") from exc
    assert isinstance(info.value.__cause__, ClientError)
    assert "guard" in str(info.value)


def test_a_swallowed_interruption_still_raises_at_the_exit(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    stop = StopEvent()
    threading.Timer(SHORT, stop.set, args=("go away",)).start()
    with pytest.raises(Stopped) as info, guard(stop=stop):
        with contextlib.suppress(BaseException):
            a.recv(1)
        result = "default"
    assert result == "default"
    assert info.value.reason == "go away"
    assert isinstance(info.value.__cause__, Stopped)


def test_nothing_is_retried_past_the_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    attempts = 0
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), guard(timeout=SHORT):
        for _ in range(50):  # a client's retry loop: catches its timeout, backs off
            attempts += 1
            try:
                a.recv(1)
            except TimeoutError:
                with contextlib.suppress(TimeoutError):
                    time.sleep(1.0)  # the backoff: raises at once after the deadline
    assert attempts == 50
    assert time.monotonic() - started < SHORT + WAKE_BOUND


def test_errors_unrelated_to_the_guard_pass_unchanged() -> None:
    with pytest.raises(ValueError, match="mine"), guard(timeout=LONG):
        raise ValueError("mine")
    with guard(timeout=0.01):
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass  # past the deadline, but nothing blocked: the block's work stands
    with pytest.raises(KeyboardInterrupt), guard(timeout=0.01):
        with contextlib.suppress(DeadlineExceeded):
            time.sleep(1)
        raise KeyboardInterrupt


# --- a guard is a scope -----------------------------------------------------------------


def test_stoppable_calls_inside_honour_the_guard() -> None:
    q: queue.Queue[int] = queue.Queue()
    started = time.monotonic()
    with pytest.raises(queue.Empty), guard(timeout=SHORT):
        queues.get(q, timeout=LONG)
    assert time.monotonic() - started < SHORT + WAKE_BOUND


def test_guards_and_scopes_nest() -> None:
    def recv() -> object:
        a, b = socket.socketpair()  # a fresh pair each time: an interrupted one is dead
        with a, b:
            return a.recv(1)  # noqa: STP102 - in a guard

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), stoppable.scope(timeout=SHORT), guard(timeout=LONG):
        recv()  # the enclosing scope's earlier deadline
    assert time.monotonic() - started < SHORT + WAKE_BOUND
    stop = StopEvent()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), guard(stop=stop), stoppable.scope(timeout=SHORT):
        recv()  # a scope inside a guard: the guard reaches the plain call
    assert time.monotonic() - started < SHORT + WAKE_BOUND
    outer = StopEvent()
    outer.set("outer")
    with pytest.raises(Stopped, match="outer"), stoppable.scope(stop=outer), guard(timeout=LONG):
        recv()  # every stop
    inner = StopEvent()
    threading.Timer(SHORT, inner.set, args=("inner",)).start()
    with pytest.raises(Stopped, match="inner"), guard(timeout=LONG), guard(stop=inner):
        recv()  # guards nest too


# --- captured references, leaks -------------------------------------------------------------


def test_references_captured_before_the_first_guard_are_rebound() -> None:
    script = """
        import threading, time
        from time import sleep as captured

        def with_default(pause=time.sleep):
            return pause

        class Holder:
            nap = time.sleep  # a builtin as a class attribute: never bound

        import stoppable

        stop = stoppable.StopEvent()
        threading.Timer(0.2, stop.set, args=("bye",)).start()
        started = time.monotonic()
        try:
            with stoppable.guard(stop=stop):
                captured(30)
        except stoppable.Stopped:
            pass
        assert time.monotonic() - started < 10, "the captured sleep was not reached"
        assert with_default() is time.sleep
        Holder.nap(0)
        Holder().nap(0)

        class Later:  # a class body run after the install: still not bound
            nap = time.sleep
        Later().nap(0)
        print("rebound")
    """
    assert run_script(script) == "rebound"


_CAPTURES = """
import time
def keyword(*, pause=time.sleep):
    return pause
class Holder:
    @staticmethod
    def static(pause=time.sleep):
        return pause
    @classmethod
    def klass(cls, *, pause=time.sleep):
        return pause
    def method(self, pause=time.sleep):
        return pause
"""


def test_the_first_guard_rebinds_every_kind_of_capture_and_touches_nothing_else(
    tmp_path: Path,
) -> None:
    (tmp_path / "captures.py").write_text(_CAPTURES)
    script = f"""
        import sys, time
        sys.path.insert(0, {str(tmp_path)!r})
        import captures

        class Lazy:  # a lazy proxy: asking it anything (even __class__) builds its target
            touched = []

            def __getattribute__(self, name):
                Lazy.touched.append(name)
                return object.__getattribute__(self, name)

        captures.proxy = Lazy()

        import stoppable
        with stoppable.guard(timeout=60):
            pass
        assert Lazy.touched == [], Lazy.touched
        patched = time.sleep
        assert type(patched).__name__ != "builtin_function_or_method"
        assert captures.keyword() is patched
        assert captures.Holder.static() is patched
        assert captures.Holder.klass() is patched
        assert captures.Holder().method() is patched
        print("rebound")
    """
    assert run_script(script) == "rebound"


def test_stopped_waits_leak_no_descriptor_or_callback() -> None:
    stop = StopEvent()
    stop.fileno()  # made once, up front
    gc.collect()
    before = open_fds()
    for _ in range(30):
        a, b = socket.socketpair()
        with a, b, pytest.raises(DeadlineExceeded), guard(timeout=0.001, stop=stop):
            a.recv(1)  # noqa: STP102 - in a guard
        a, b = socket.socketpair()
        with a, b, pytest.raises(DeadlineExceeded), guard(timeout=0.001, stop=stop):
            select.select([a], [], [])  # noqa: STP100 - in a guard
        with pytest.raises(DeadlineExceeded), guard(timeout=0.001, stop=stop):
            time.sleep(1)
    gc.collect()
    assert open_fds() <= before
    assert stop._callback_count() == 0


# --- options elsewhere: a worker's whole body inside a guard ----------------------------------


def test_sync_thread_with_guard_stops_a_plain_wait() -> None:
    q: queue.Queue[int] = queue.Queue()
    thread = sync.Thread(target=lambda stop: q.get(), guard=True)  # noqa: STP100 - in a guard
    thread.start()
    wait_until_blocked(thread)
    started = time.monotonic()
    thread.stop_and_join(timeout=WAKE_BOUND, reason="bye")
    assert time.monotonic() - started < WAKE_BOUND
    assert isinstance(thread.stopped, Stopped)
    assert thread.stopped.reason == "bye"
    with pytest.raises(TypeError, match="guard"):
        sync.Thread(target=print, guard=1)  # type: ignore[arg-type]


class _Local:
    """An object only a frame's locals refer to."""


def _stopped_in_guard(refs: list[weakref.ref[_Local]], rewrite: bool) -> None:
    local = _Local()
    refs.append(weakref.ref(local))
    stop = StopEvent()
    with guard(stop=stop) as inside:
        stop.set("bye")
        try:
            time.sleep(LONG)
        except Stopped as exc:
            if rewrite:  # as a client that turns the error into its own
                raise ConnectionError("lost") from exc
            raise
    del inside  # pragma: no cover - never reached


@pytest.mark.parametrize("rewrite", [False, True], ids=["passed-through", "guard-raised"])
def test_a_stopped_guard_frees_its_frames_without_the_garbage_collector(rewrite: bool) -> None:
    # The guard's record of what it interrupted held the Stopped, whose traceback held
    # the frame holding the guard: a cycle, so the frames lived until a collection.
    refs: list[weakref.ref[_Local]] = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(Stopped) as info:
            _stopped_in_guard(refs, rewrite)
        assert isinstance(info.value.__cause__, ConnectionError) is rewrite
        del info
        assert refs[0]() is None
    finally:
        if collecting:
            gc.enable()


def test_executor_with_guard_stops_tasks_that_know_nothing_of_stoppable() -> None:
    executor = futures.ThreadPoolExecutor(1, guard=True)
    task = executor.submit(time.sleep, LONG)
    wait_until(task.running)
    [worker] = executor._threads
    wait_until_blocked(worker)
    started = time.monotonic()
    executor.shutdown(stop=True, timeout=WAKE_BOUND)
    assert time.monotonic() - started < WAKE_BOUND
    assert isinstance(task.exception(), Stopped)
    plain = futures.ThreadPoolExecutor(1)
    try:
        assert plain.submit(lambda: threading.current_thread().name).result(LONG)
    finally:
        plain.shutdown(timeout=LONG)


def test_executor_with_guard_reaches_asyncio_to_thread_as_the_default_executor() -> None:
    # asyncio.to_thread runs the call in a copied context (partial(context.run, ...)):
    # a guard entered outside that context would not be seen by the call.
    executor = futures.ThreadPoolExecutor(1, guard=True)
    helper = concurrent.futures.ThreadPoolExecutor(1)  # the guarded one has one worker

    async def main() -> BaseException | None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(executor)
        task = asyncio.ensure_future(asyncio.to_thread(time.sleep, LONG))
        await loop.run_in_executor(helper, wait_until, lambda: executor._threads)
        [worker] = executor._threads
        await loop.run_in_executor(helper, wait_until_blocked, worker)
        started = time.monotonic()
        await loop.run_in_executor(helper, lambda: executor.shutdown(stop=True, timeout=WAKE_BOUND))
        assert time.monotonic() - started < WAKE_BOUND
        try:
            await task
        except Stopped as exc:
            return exc
        return None

    try:
        error = asyncio.run(main())
    finally:
        helper.shutdown()
    assert isinstance(error, Stopped)


def test_http_with_guard_bounds_foreign_code_during_the_request() -> None:
    class SlowAuth(requests.auth.AuthBase):
        """An auth object that fetches a token with a client that knows no deadline."""

        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            time.sleep(LONG)  # stands for a token fetch through another client
            return request

    with serving(echo) as server:
        url = f"http://{server.host}:{server.port}/"
        started = time.monotonic()
        with pytest.raises(requests.exceptions.Timeout):
            http.get(url, timeout=SHORT, auth=SlowAuth(), guard=True)
        assert time.monotonic() - started < SHORT + WAKE_BOUND
        stop = StopEvent()
        with http.Session(stop=stop, timeout=LONG, guard=True) as session:
            threading.Timer(SHORT, stop.set, args=("bye",)).start()
            with pytest.raises(Stopped, match="bye"):
                session.get(url, auth=SlowAuth())
        with pytest.raises(TypeError, match="guard"):
            http.Session(guard="yes")  # type: ignore[arg-type]


def test_install_keep_sockets_reaches_methods_bound_outside_any_guard() -> None:
    script = """
        import socket, threading, time
        import stoppable

        a, b = socket.socketpair()
        recv = a.recv  # bound outside any guard: the C method, unless kept installed
        stoppable.guard.install(keep_sockets=True)
        recv = a.recv
        with stoppable.guard(timeout=60):
            pass
        assert "recv" in vars(socket.socket), "removed although kept"
        stop = stoppable.StopEvent()
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        try:
            with stoppable.guard(stop=stop):
                recv(1)
        except stoppable.Stopped:
            pass
        assert time.monotonic() - started < 10
        print("kept")
    """
    assert run_script(script) == "kept"


def test_a_refused_retry_is_chained_to_the_first_interruption(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    with pytest.raises(DeadlineExceeded) as info, guard(timeout=SHORT) as g:
        with contextlib.suppress(TimeoutError):
            a.recv(1)
        time.sleep(1.0)  # the backoff, refused at once
    first = g.interrupted
    assert first is not None
    assert "recv" in str(first)
    assert "sleep" in str(info.value)
    assert info.value.__cause__ is first


def test_a_connection_interrupted_before_it_was_made_is_closed() -> None:
    with FullBacklog() as full:
        sock = socket.socket()
        stopped_in_guard(lambda: sock.connect(full.address))  # noqa: STP102 - in a guard
        assert sock.fileno() == -1  # closed: create_connection would leave it to the GC
    with serving(silent) as server:
        raw = socket.create_connection(server.address, timeout=LONG)
        raw.settimeout(None)
        tls_sock = tls().client.wrap_socket(
            raw, server_hostname="localhost", do_handshake_on_connect=False
        )
        stopped_in_guard(lambda: tls_sock.do_handshake())
        assert tls_sock.fileno() == -1


def test_a_thread_can_be_started_after_the_guard_fired() -> None:
    done = threading.Event()
    started = False
    with pytest.raises(DeadlineExceeded), guard(timeout=0.01):
        with contextlib.suppress(DeadlineExceeded):
            time.sleep(1)  # the guard fires
        worker = threading.Thread(target=done.set)
        worker.start()  # its wait for the new thread is not the guard's
        started = True
    assert started, "Thread.start() raised"
    assert done.wait(LONG)
    worker.join(LONG)


# --- the soft guard (a private hook for Celery's soft time limit) ----------------------


class _SoftLimit(DeadlineExceeded):
    """The caller's own error for a soft deadline."""


def _soft_error(message: str) -> DeadlineExceeded:
    return _SoftLimit(message)


def test_a_soft_guard_fires_once_then_the_block_runs_under_the_outer_guard() -> None:
    cleaned = False
    with (
        pytest.raises(DeadlineExceeded) as info,
        guard(timeout=SHORT * 4),
        _guard.soft(SHORT, _soft_error) as soft,
    ):
        try:
            time.sleep(LONG)  # ended by the soft deadline
        except _SoftLimit:
            time.sleep(SHORT / 4)  # the clean-up's own wait is not refused...
            socket.getaddrinfo("127.0.0.1", 80)
            cleaned = True
        assert soft.fired
        time.sleep(LONG)  # ... and the hard deadline still ends the block
    assert cleaned
    assert not isinstance(info.value, _SoftLimit)


def test_a_soft_guard_alone_leaves_the_block_unguarded_once_fired() -> None:
    started = time.monotonic()
    with _guard.soft(SHORT, _soft_error):
        with pytest.raises(_SoftLimit, match="condition wait"):
            queue.Queue[int]().get()
        time.sleep(SHORT)  # not refused
    assert SHORT * 2 <= time.monotonic() - started < SHORT * 2 + WAKE_BOUND


def test_a_soft_guard_behind_an_earlier_outer_deadline_never_fires() -> None:
    with (
        pytest.raises(DeadlineExceeded) as info,
        guard(timeout=SHORT),
        _guard.soft(LONG, _soft_error) as soft,
    ):
        time.sleep(LONG)
    assert not isinstance(info.value, _SoftLimit)
    assert not soft.fired
    with pytest.raises(TypeError, match="error"):
        _guard.soft(1.0, "no")  # type: ignore[arg-type]


def test_a_condition_wait_is_stopped_without_condition_internals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Where Condition's internals are not as relied on (_compat's check), the guard
    # falls back to the condition's own wait, in slices.
    from stoppable import _compat

    monkeypatch.setattr(_compat, "CONDITION_PROTOCOL", False)
    cond = threading.Condition()

    def block(stop: StopEvent) -> None:
        with guard(stop=stop), cond:
            cond.wait()  # noqa: STP100 - in a guard

    stop_while_blocked(block)
    with guard(timeout=LONG), cond:
        assert cond.wait(0.01) is False


def _guarded_waits() -> dict[str, Callable[[], object]]:
    def popen_wait() -> object:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            return child.wait()  # noqa: STP100 - in a guard
        finally:
            child.kill()
            child.wait()

    def selector_select() -> object:
        a, b = socket.socketpair()
        with a, b, selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ)
            return selector.select()  # noqa: STP100 - in a guard

    def poll_poll() -> object:
        a, b = socket.socketpair()
        with a, b:
            poller = select.poll()
            poller.register(a, select.POLLIN)
            return poller.poll()  # noqa: STP100 - in a guard

    def select_select() -> object:
        a, b = socket.socketpair()
        with a, b:
            return select.select([a], [], [])  # noqa: STP100 - in a guard

    return {
        "time.sleep": lambda: time.sleep(LONG),
        "select.select": select_select,
        "poll.poll": poll_poll,
        "selector.select": selector_select,
        "Popen.wait": popen_wait,
    }


@pytest.mark.parametrize("name", sorted(_guarded_waits()))
def test_a_guarded_wait_holds_the_stops_descriptor_only_while_it_waits(
    name: str, no_polling: None
) -> None:
    wait = _guarded_waits()[name]
    stop = StopEvent()

    def guarded() -> object:
        with stoppable.guard(stop=stop):
            return wait()

    thread, outcome = start_call(guarded)
    wait_until(lambda: stop._wakeup is not None, what="the wait to take the descriptor")
    stop.set("done")
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped), outcome.error
    thread.join(LONG)
    assert stop._wakeup is None  # given back when the wait ended, not when the event dies
    assert stop._fd_users == 0

"""stoppable.net: every socket wait bounded and stoppable, against real loopback servers."""

from __future__ import annotations

import contextlib
import functools
import gc
import http.client
import os
import pickle
import queue
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stoppable import DeadlineExceeded, StopEvent, Stopped, net, scope
from stoppable import _resolve as resolve_module

from .net_servers import (
    FullBacklog,
    LoopbackServer,
    StuckResolver,
    UdpEcho,
    drain_when,
    drip,
    echo,
    half_close,
    has_ipv6,
    reset_after,
    send_on,
    serving,
    silent,
    static_resolver,
    tls,
)
from .support import (
    BAD_TIMEOUTS,
    LONG,
    SHORT,
    WAKE_BOUND,
    open_fds,
    start_call,
    stop_while_blocked,
    wait_until,
    wait_until_blocked,
)

HOSTS = [
    "127.0.0.1",
    pytest.param(
        "::1", marks=pytest.mark.skipif(not has_ipv6(), reason="this machine has no IPv6")
    ),
]

Block = Callable[[Any, float], object]  # (stop, timeout) -> whatever the call returns

# recv flags to look at what a socket holds without reading it, and without waiting.
PEEK_NOW = socket.MSG_PEEK | socket.MSG_DONTWAIT


@pytest.fixture
def stuck() -> Iterator[StuckResolver]:
    """A resolver stuck for 30 s, released (and its helper threads freed) at the end."""
    resolver = StuckResolver()
    yield resolver
    resolver.release()
    resolver.wait_idle()


def dead_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def recv_exactly(sock: socket.socket | net.Socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = net.recv(sock, size - len(data), timeout=LONG)
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


def small_send_buffer_connection(address: tuple[str, int]) -> socket.socket:
    """A blocking client whose send buffer fills after ~100 KB to a peer that never reads."""
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.settimeout(LONG)
    sock.connect(address)
    sock.settimeout(None)
    return sock


def fill_send_buffer(sock: socket.socket) -> None:
    """Send until the kernel refuses more, leaving ``sock``'s mode as it was."""
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.send(b"x" * 65536, socket.MSG_DONTWAIT)


def refill_then(sock: socket.socket, send: Callable[..., object], data: bytes, **kw: Any) -> object:
    """Fill the send buffer, then ``send(sock, data, **kw)``, which must wait for room.

    Filled right before the call: the kernel frees room in a full send buffer as the
    data in flight moves to the peer's receive buffer.
    """
    fill_send_buffer(sock)
    return send(sock, data, **kw)


# --- the blocked calls every stop and timeout test runs ------------------------------


@contextlib.contextmanager
def _recv(mode: float | None = None) -> Iterator[Block]:
    with serving(silent) as server, socket.create_connection(server.address, LONG) as sock:
        sock.settimeout(mode)
        yield lambda stop, timeout: net.recv(sock, 10, timeout=timeout, stop=stop)
        assert sock.gettimeout() == mode


@contextlib.contextmanager
def _recv_into() -> Iterator[Block]:
    with serving(silent) as server, socket.create_connection(server.address, LONG) as sock:
        sock.settimeout(None)
        yield lambda stop, timeout: net.recv_into(sock, bytearray(10), timeout=timeout, stop=stop)


@contextlib.contextmanager
def _recvfrom() -> Iterator[Block]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield lambda stop, timeout: net.recvfrom(sock, 10, timeout=timeout, stop=stop)


@contextlib.contextmanager
def _accept() -> Iterator[Block]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield lambda stop, timeout: net.accept(listener, timeout=timeout, stop=stop)
        assert listener.gettimeout() is None


@contextlib.contextmanager
def _send() -> Iterator[Block]:
    with (
        serving(drain_when(threading.Event())) as server,
        small_send_buffer_connection(server.address) as sock,
    ):
        yield lambda stop, timeout: refill_then(sock, net.send, b"more", timeout=timeout, stop=stop)
        server.quit.set()


@contextlib.contextmanager
def _sendall() -> Iterator[Block]:
    with (
        serving(drain_when(threading.Event())) as server,
        small_send_buffer_connection(server.address) as sock,
    ):
        data = b"x" * (1 << 20)
        yield lambda stop, timeout: net.sendall(sock, data, timeout=timeout, stop=stop)


@contextlib.contextmanager
def _connect() -> Iterator[Block]:
    with FullBacklog() as full:
        yield lambda stop, timeout: net.connect(full.address, timeout=timeout, stop=stop)


@contextlib.contextmanager
def _tls_handshake() -> Iterator[Block]:
    client = tls().client  # made here: a CA and keys take a while the first time
    with serving(silent) as server:
        yield lambda stop, timeout: net.connect(
            server.address, timeout=timeout, stop=stop, ssl_context=client
        )


@contextlib.contextmanager
def _tls_server_handshake() -> Iterator[Block]:
    # A client connects and never sends its hello: the server side waits.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(LONG)  # the connection comes out blocking all the same
        with socket.create_connection(listener.getsockname(), LONG) as client:
            conn, _ = listener.accept()
            context = tls().server
            yield lambda stop, timeout: net.start_tls(
                conn, context, server_side=True, timeout=timeout, stop=stop
            )
            conn.close()
            client.close()


@contextlib.contextmanager
def _tls_recv() -> Iterator[Block]:
    with serving(echo, ssl_context=tls().server) as server:
        sock = net.connect(server.address, timeout=LONG, ssl_context=tls().client)
        with sock:
            yield lambda stop, timeout: net.recv(sock, 10, timeout=timeout, stop=stop)
            assert sock.gettimeout() is None


@contextlib.contextmanager
def _resolve() -> Iterator[Block]:
    resolver = StuckResolver()
    try:
        yield lambda stop, timeout: net.resolve(
            "stuck.test", 80, timeout=timeout, stop=stop, resolver=resolver
        )
    finally:
        resolver.release()
        resolver.wait_idle()


@contextlib.contextmanager
def _connect_stuck_name() -> Iterator[Block]:
    resolver = StuckResolver()
    try:
        yield lambda stop, timeout: net.connect(
            ("stuck.test", 80), timeout=timeout, stop=stop, resolver=resolver
        )
    finally:
        resolver.release()
        resolver.wait_idle()


@contextlib.contextmanager
def _wrapper_recv() -> Iterator[Block]:
    with serving(silent) as server, socket.create_connection(server.address, LONG) as sock:
        yield lambda stop, timeout: net.Socket(sock, stop=stop).recv(10, timeout=timeout)


@contextlib.contextmanager
def _makefile_in_scope() -> Iterator[Block]:
    with serving(silent) as server, socket.create_connection(server.address, LONG) as sock:
        sock.settimeout(None)

        def block(stop: Any, timeout: float) -> object:
            with scope(timeout=timeout, stop=stop), net.Socket(sock).makefile("rb") as f:
                return f.readline()

        yield block


@contextlib.contextmanager
def _unix_connect_full_backlog() -> Iterator[Block]:
    with tempfile.TemporaryDirectory() as directory, socket.socket(socket.AF_UNIX) as listener:
        path = os.path.join(directory, "s")
        listener.bind(path)
        listener.listen(0)
        fillers = []
        for _ in range(8):  # fill the backlog, whatever the kernel's slack
            filler = socket.socket(socket.AF_UNIX)
            filler.setblocking(False)
            fillers.append(filler)
            if filler.connect_ex(path) != 0:
                break
        with socket.socket(socket.AF_UNIX) as sock:
            yield lambda stop, timeout: net.Socket(sock, stop=stop).connect(path, timeout=timeout)
        for filler in fillers:
            filler.close()


SCENARIOS: dict[str, Callable[[], contextlib.AbstractContextManager[Block]]] = {
    "recv (blocking socket)": _recv,
    "recv (socket with a timeout)": lambda: _recv(5.0),
    "recv (non-blocking socket)": lambda: _recv(0.0),
    "recv_into": _recv_into,
    "recvfrom (UDP)": _recvfrom,
    "accept": _accept,
    "send (full buffers)": _send,
    "sendall (peer never reads)": _sendall,
    "connect (accept queue full)": _connect,
    "connect (resolver stuck)": _connect_stuck_name,
    "resolve (resolver stuck)": _resolve,
    "TLS handshake (server never answers)": _tls_handshake,
    "TLS handshake, server side (client silent)": _tls_server_handshake,
    "TLS recv": _tls_recv,
    "Socket.recv": _wrapper_recv,
    "makefile().readline() in a scope": _makefile_in_scope,
    "Socket.connect (Unix, backlog full)": _unix_connect_full_backlog,
}


@pytest.mark.usefixtures("no_polling")
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_stop_wakes_the_blocked_call_at_once(name: str) -> None:
    with SCENARIOS[name]() as block:
        stop_while_blocked(lambda stop: block(stop, LONG))


@pytest.mark.parametrize(
    "name",
    [
        "recv (blocking socket)",
        "recv (socket with a timeout)",
        "accept",
        "sendall (peer never reads)",
        "connect (accept queue full)",
        "connect (resolver stuck)",
        "TLS handshake (server never answers)",
        "makefile().readline() in a scope",
    ],
)
def test_a_timeout_is_deadline_exceeded_and_socket_timeout(name: str) -> None:
    with SCENARIOS[name]() as block:
        started = time.monotonic()
        with pytest.raises(socket.timeout) as info:
            block(None, SHORT)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, DeadlineExceeded)
    assert info.value.timeout == SHORT
    assert SHORT <= elapsed < SHORT + WAKE_BOUND


@pytest.mark.usefixtures("fast_polling")
def test_a_plain_event_as_stop_is_polled_between_slices() -> None:
    with _recv() as block:
        stop = threading.Event()
        thread, outcome = start_call(lambda: block(stop, LONG))
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)


@pytest.mark.usefixtures("no_polling")
def test_scopes_stop_and_deadline_apply_to_net_calls() -> None:
    with _recv() as block:
        stop = StopEvent()

        def in_scope() -> object:
            with scope(stop=stop):
                return block(None, LONG)

        thread, outcome = start_call(in_scope)
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
        with scope(timeout=SHORT), pytest.raises(DeadlineExceeded, match="enclosing"):
            block(None, LONG)


# --- validation -------------------------------------------------------------------


def _calls(sock: socket.socket) -> dict[str, Callable[[Any], object]]:
    return {
        "recv": lambda t: net.recv(sock, 10, timeout=t),
        "recv_into": lambda t: net.recv_into(sock, bytearray(10), timeout=t),
        "recvfrom": lambda t: net.recvfrom(sock, 10, timeout=t),
        "recvfrom_into": lambda t: net.recvfrom_into(sock, bytearray(10), timeout=t),
        "send": lambda t: net.send(sock, b"x", timeout=t),
        "sendall": lambda t: net.sendall(sock, b"x", timeout=t),
        "sendto": lambda t: net.sendto(sock, b"x", ("127.0.0.1", 9), timeout=t),
        "accept": lambda t: net.accept(sock, timeout=t),
        "connect": lambda t: net.connect(("127.0.0.1", 9), timeout=t),
        "resolve": lambda t: net.resolve("localhost", 80, timeout=t),
        "start_tls": lambda t: net.start_tls(sock, tls().client, timeout=t),
        "Socket.recv": lambda t: net.Socket(sock).recv(10, timeout=t),
    }


@pytest.mark.parametrize(("bad", "error"), BAD_TIMEOUTS)
def test_every_bad_timeout_is_refused_before_any_io(bad: object, error: type[Exception]) -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"waiting")
        for name, call in _calls(a).items():
            with pytest.raises(error, match="timeout"):
                call(bad)
            # Nothing was read (and if it was: BlockingIOError, not a hang).
            assert a.recv(7, PEEK_NOW) == b"waiting", name
            assert a.gettimeout() is None, name


def test_a_bad_stop_is_refused_naming_it() -> None:
    a, b = socket.socketpair()
    with a, b, pytest.raises(TypeError, match="stop"):
        net.recv(a, 1, timeout=1, stop="no")  # type: ignore[arg-type]


def test_a_set_stop_raises_at_once_in_every_call() -> None:
    stop = StopEvent()
    stop.set("done")
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"waiting")
        for name, call in _calls(a).items():
            with scope(stop=stop), pytest.raises(Stopped, match="done"):
                call(LONG)
            assert a.recv(7, PEEK_NOW) == b"waiting", name
        with pytest.raises(net.SendallStopped) as info:
            net.sendall(a, b"x", timeout=1, stop=stop)
        assert info.value.bytes_sent == 0


def test_sock_must_be_a_socket() -> None:
    with pytest.raises(TypeError, match="sock"):
        net.recv(object(), 1, timeout=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="address"):
        net.connect("localhost:80", timeout=1)  # type: ignore[call-overload]


# --- data moves, in every mode, on every family -------------------------------------


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("mode", [None, 0.0, 5.0])
def test_echo_round_trip_leaves_the_timeout_mode_alone(host: str, mode: float | None) -> None:
    with serving(echo, host=host) as server, net.connect(server.address, timeout=LONG) as sock:
        assert sock.gettimeout() is None  # as create_connection without a timeout
        sock.settimeout(mode)
        assert net.send(sock, b"ping", timeout=LONG) == 4
        assert recv_exactly(sock, 4) == b"ping"
        net.sendall(sock, b"x" * 300_000, timeout=LONG)
        buffer = bytearray(300_000)
        view, got = memoryview(buffer), 0
        while got < len(buffer):
            got += net.recv_into(sock, view[got:], timeout=LONG)
        assert buffer == b"x" * 300_000
        assert sock.gettimeout() == mode


@pytest.mark.parametrize("mode", [None, 0.0, 5.0])
def test_tls_round_trip_leaves_the_timeout_mode_alone(mode: float | None) -> None:
    with serving(echo, ssl_context=tls().server) as server:
        sock = net.connect(("localhost", server.port), timeout=LONG, ssl_context=tls().client)
        with sock:
            assert isinstance(sock, ssl.SSLSocket)
            assert sock.version() is not None  # the handshake is done
            sock.settimeout(mode)
            net.sendall(sock, b"y" * 100_000, timeout=LONG)
            assert recv_exactly(sock, 100_000) == b"y" * 100_000
            assert sock.gettimeout() == mode


def test_a_blocking_socket_is_not_switched_while_a_call_waits_on_it() -> None:
    # Another thread may use the socket meanwhile, with plain blocking calls.
    with serving(echo) as server, socket.create_connection(server.address, LONG) as sock:
        sock.settimeout(None)
        thread, outcome = start_call(lambda: net.recv(sock, 5, timeout=LONG))
        wait_until_blocked(thread)
        assert sock.gettimeout() is None
        # Blocking, unbounded: would raise if the mode had changed.
        sock.sendall(b"hello")
        assert outcome.done.wait(WAKE_BOUND)
        assert outcome.result == b"hello"


def test_a_socket_with_a_timeout_keeps_it_while_a_call_waits() -> None:
    with serving(echo) as server, socket.create_connection(server.address, LONG) as sock:
        sock.settimeout(7.0)
        thread, outcome = start_call(lambda: net.recv(sock, 5, timeout=LONG))
        wait_until_blocked(thread)
        assert sock.gettimeout() == 7.0
        sock.sendall(b"hello")
        assert outcome.done.wait(WAKE_BOUND)
        assert outcome.result == b"hello"


def test_overlapping_calls_on_a_tls_socket_share_the_switch_and_restore_it() -> None:
    with serving(echo, ssl_context=tls().server) as server:
        sock = net.connect(server.address, timeout=LONG, ssl_context=tls().client)
        with sock:
            thread, outcome = start_call(lambda: net.recv(sock, 5, timeout=LONG))
            wait_until_blocked(thread)
            assert sock.gettimeout() == 0.0  # switched for the length of the call
            net.sendall(sock, b"hello", timeout=LONG)  # joins the switch
            assert outcome.done.wait(WAKE_BOUND)
            assert outcome.result == b"hello"
            assert sock.gettimeout() is None  # the last call out restored it


def test_a_stopped_recv_has_consumed_nothing() -> None:
    go = threading.Event()
    with (
        serving(send_on(go, b"the whole message")) as server,
        socket.create_connection(server.address, LONG) as sock,
    ):
        stop = StopEvent()
        thread, outcome = start_call(lambda: net.recv(sock, 100, timeout=LONG, stop=stop))
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
        with pytest.raises(DeadlineExceeded):
            net.recv(sock, 100, timeout=0)
        go.set()  # now the data comes: all of it is still there for the next call
        assert recv_exactly(sock, 17) == b"the whole message"


def test_data_that_arrives_with_the_stop_is_returned_not_dropped() -> None:
    # The stop is already set but data is there: a call started before the stop
    # returns what it read; later calls raise.
    a, b = socket.socketpair()
    with a, b:
        stop = StopEvent()
        b.sendall(b"data")
        assert net.recv(a, 10, timeout=LONG, stop=stop) == b"data"
        stop.set()
        with pytest.raises(Stopped):
            net.recv(a, 10, timeout=LONG, stop=stop)


def test_a_peer_reset_mid_stream_passes_through_as_connection_reset() -> None:
    with (
        serving(reset_after(b"first")) as server,
        socket.create_connection(server.address, LONG) as sock,
    ):
        assert recv_exactly(sock, 5) == b"first"
        net.sendall(sock, b"read it", timeout=LONG)
        with pytest.raises(ConnectionResetError):
            net.recv(sock, 10, timeout=LONG)


def test_half_close_reads_to_eof_and_the_other_direction_still_works() -> None:
    with (
        serving(half_close(b"payload")) as server,
        socket.create_connection(server.address, LONG) as sock,
    ):
        received = b""
        while chunk := net.recv(sock, 3, timeout=LONG):
            received += chunk
        assert received == b"payload"
        assert net.recv(sock, 3, timeout=LONG) == b""  # EOF stays EOF
        net.sendall(sock, b"after the half-close", timeout=LONG)
        sock.shutdown(socket.SHUT_WR)
        assert server.wait_results(1) == [20]


# --- sendall reports what was sent ------------------------------------------------


def test_a_stopped_sendall_reports_exactly_the_bytes_the_peer_gets() -> None:
    go = threading.Event()
    with (
        serving(drain_when(go)) as server,
        small_send_buffer_connection(server.address) as sock,
    ):
        data = b"z" * (4 << 20)
        stop = StopEvent()
        thread, outcome = start_call(
            lambda: net.sendall(sock, data, timeout=LONG, stop=stop), name="sender"
        )
        wait_until_blocked(thread)
        stop.set("enough")
        assert outcome.done.wait(WAKE_BOUND)
        error = outcome.error
        assert isinstance(error, net.SendallStopped)
        assert isinstance(error, Stopped)
        assert error.reason == "enough"
        assert 0 < error.bytes_sent < len(data)
        assert f"{error.bytes_sent} bytes sent" in str(error)
        sock.shutdown(socket.SHUT_WR)
        go.set()
        assert server.wait_results(1) == [error.bytes_sent]


def test_a_timed_out_sendall_reports_bytes_sent_and_can_resume() -> None:
    go = threading.Event()
    with (
        serving(drain_when(go)) as server,
        small_send_buffer_connection(server.address) as sock,
    ):
        data = bytes(range(256)) * 16384  # 4 MiB
        with pytest.raises(net.SendallDeadline) as info:
            net.sendall(sock, data, timeout=SHORT)
        error = info.value
        assert isinstance(error, socket.timeout)
        assert 0 < error.bytes_sent < len(data)
        assert f"{error.bytes_sent} of {len(data)} bytes sent" in str(error)
        go.set()
        net.sendall(sock, memoryview(data)[error.bytes_sent :], timeout=LONG)
        sock.shutdown(socket.SHUT_WR)
        assert server.wait_results(1) == [len(data)]


@pytest.mark.parametrize("how", ["stop", "timeout"])
def test_tls_sendall_reports_whole_records_and_can_resume(how: str) -> None:
    go = threading.Event()
    with serving(drain_when(go), ssl_context=tls().server) as server:
        raw = small_send_buffer_connection(server.address)
        sock = net.start_tls(raw, tls().client, server_hostname="localhost", timeout=LONG)
        with sock:
            data = b"t" * (4 << 20)
            error: net.SendallStopped | net.SendallDeadline
            if how == "stop":
                stop = StopEvent()
                thread, outcome = start_call(
                    lambda: net.sendall(sock, data, timeout=LONG, stop=stop)
                )
                wait_until_blocked(thread)
                stop.set()
                assert outcome.done.wait(WAKE_BOUND)
                assert isinstance(outcome.error, net.SendallStopped)
                error = outcome.error
            else:
                with pytest.raises(net.SendallDeadline) as info:
                    net.sendall(sock, data, timeout=SHORT)
                error = info.value
            assert 0 < error.bytes_sent < len(data)
            assert error.bytes_sent % 16384 == 0  # whole records
            go.set()
            net.sendall(sock, data[error.bytes_sent :], timeout=LONG)
            # Half-close, and close only once the server has counted: closing with the
            # server's TLS 1.3 session tickets unread makes the kernel send a reset,
            # which can reach the server before the last of the data.
            sock.shutdown(socket.SHUT_WR)
            assert server.wait_results(1) == [len(data)]


def test_sendall_errors_pickle_with_bytes_sent() -> None:
    stopped = pickle.loads(pickle.dumps(net.SendallStopped("why", bytes_sent=12)))
    assert (type(stopped), stopped.reason, stopped.bytes_sent) == (net.SendallStopped, "why", 12)
    late = pickle.loads(pickle.dumps(net.SendallDeadline("late", timeout=2.0, bytes_sent=7)))
    assert (type(late), str(late), late.timeout, late.bytes_sent) == (
        net.SendallDeadline,
        "late",
        2.0,
        7,
    )


# --- connect: one deadline for lookup, addresses, connect and handshake ----------------


@pytest.fixture
def counting_resolver() -> Iterator[list[Any]]:
    calls: list[Any] = []

    def resolver(*args: Any) -> list[Any]:
        calls.append(args[0])
        return list(socket.getaddrinfo(*args))

    previous = net.set_resolver(resolver)
    yield calls
    net.set_resolver(previous)


def test_names_go_through_the_resolver_and_ip_literals_do_not(
    counting_resolver: list[Any],
) -> None:
    with serving(echo) as server:
        with net.connect(("localhost", server.port), timeout=LONG) as sock:
            net.sendall(sock, b"hi", timeout=LONG)
            assert recv_exactly(sock, 2) == b"hi"
        assert counting_resolver == ["localhost"]
        with net.connect(server.address, timeout=LONG):
            pass
        assert counting_resolver == ["localhost"]  # 127.0.0.1 needed no lookup


def test_set_resolver_returns_the_previous_and_none_restores_the_default() -> None:
    fake = static_resolver({})
    previous = net.set_resolver(fake)
    try:
        assert net.get_resolver() is fake
        with pytest.raises(socket.gaierror):
            net.resolve("nowhere.test", 80, timeout=LONG)
    finally:
        assert net.set_resolver(None) is fake
    # The standard library's, even while socket.getaddrinfo is replaced (a guard's patch).
    assert net.get_resolver() is resolve_module._SYSTEM
    assert (resolve_module._SYSTEM.__module__, resolve_module._SYSTEM.__name__) == (
        "socket",
        "getaddrinfo",
    )
    net.set_resolver(previous)
    with pytest.raises(TypeError, match="resolver"):
        net.set_resolver("dns")  # type: ignore[arg-type]


class _NoPool:
    """A resolver pool that must not be used: a lookup that reaches it fails the test."""

    size = 8

    def submit(self, *args: object) -> Any:
        raise AssertionError(f"the lookup went to the helper threads: {args!r}")


def hosts_file(tmp_path: Path, hosts: str, nsswitch: str | None) -> Any:
    """A ``_HostsFile`` reading these contents (``nsswitch=None``: no such file)."""
    (tmp_path / "hosts").write_text(hosts)
    if nsswitch is not None:
        (tmp_path / "nsswitch.conf").write_text(nsswitch)
    return resolve_module._HostsFile(str(tmp_path / "hosts"), str(tmp_path / "nsswitch.conf"))


HOSTS_FILE = """# a comment
127.0.0.1\tlocalhost Pinned.Test  # trailing comment
::1 localhost ip6-only.test
fe80::1%lo link.test
not-an-address ghost.test
10.0.0.1
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's nsswitch.conf")
@pytest.mark.skipif(os.path.exists("/var/run/nscd/socket"), reason="nscd answers, not the file")
def test_names_in_the_hosts_file_read_first_are_known_by_family(tmp_path: Path) -> None:
    table = hosts_file(tmp_path, HOSTS_FILE, "passwd: files\nhosts:   files dns # mdns\n")
    v4, v6 = socket.AF_INET, socket.AF_INET6
    assert table.families("localhost") == {v4, v6}
    assert table.families("PINNED.test") == {v4}  # names match regardless of case
    assert table.families("ip6-only.test") == {v6}
    assert table.families("link.test") == {v6}
    assert table.families("ghost.test") == set()  # the resolver skips such a line too
    assert table.families("elsewhere.test") == set()
    (tmp_path / "hosts").write_text("127.0.0.1 other.test\n")  # read again once changed
    assert table.families("localhost") == set()
    assert table.families("other.test") == {v4}


@pytest.mark.parametrize(
    "nsswitch",
    [
        "hosts: dns files\n",  # the network is asked first
        "hosts: files [NOTFOUND=return] dns\n",
        "hosts: files [SUCCESS=continue] dns\n",  # an action that may go on
        "hosts: resolve [!UNAVAIL=return] files\n",
        "hosts: files dns\nhosts: dns\n",  # which line counts is not ours to guess
        "passwd: files\n",  # no hosts line: glibc's default asks DNS first
        None,  # no nsswitch.conf at all: the same default
    ],
)
def test_no_name_is_taken_from_the_hosts_file_unless_it_is_read_first(
    tmp_path: Path, nsswitch: str | None
) -> None:
    table = hosts_file(tmp_path, HOSTS_FILE, nsswitch)
    assert table.families("localhost") == set()


def test_a_name_the_system_answers_from_the_hosts_file_needs_no_helper_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if socket.AF_INET not in resolve_module._hosts_file.families("localhost"):
        pytest.skip("this system does not answer localhost from /etc/hosts alone")
    monkeypatch.setattr(resolve_module, "_pool", _NoPool())
    expected = socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    found = net.resolve(
        "localhost", 80, family=socket.AF_INET, type=socket.SOCK_STREAM, timeout=LONG
    )
    assert found == expected
    with serving(echo) as server, net.connect(("localhost", server.port), timeout=LONG) as sock:
        net.sendall(sock, b"hi", timeout=LONG)
        assert recv_exactly(sock, 2) == b"hi"
    # Anything else the hosts file does not settle goes to the pool, as before:
    with pytest.raises(AssertionError, match="helper threads"):
        net.resolve("not-in-hosts.invalid", 80, timeout=LONG)
    with pytest.raises(AssertionError, match="helper threads"):  # a resolver of one's own
        net.resolve("localhost", 80, timeout=LONG, resolver=static_resolver({}))
    empty = resolve_module._HostsFile("/nonexistent/hosts")  # the name removed from the file
    monkeypatch.setattr(resolve_module, "_hosts_file", empty)
    with pytest.raises(AssertionError, match="helper threads"):
        net.resolve("localhost", 80, timeout=LONG)


def test_a_refused_connection_passes_through_and_leaves_no_socket() -> None:
    fds = open_fds()
    with pytest.raises(ConnectionRefusedError):
        net.connect(("127.0.0.1", dead_port()), timeout=LONG)
    assert open_fds() <= fds


def test_connect_moves_on_from_a_refused_address() -> None:
    with serving(echo) as server:
        resolver = static_resolver(
            {"two.test": [("127.0.0.1", dead_port()), ("127.0.0.1", server.port)]}
        )
        with net.connect(("two.test", 80), timeout=LONG, resolver=resolver) as sock:
            assert sock.getpeername()[1] == server.port


def test_a_hanging_address_gets_only_its_share_of_the_deadline() -> None:
    # The standard library gives the first address the whole timeout and fails.
    with FullBacklog() as full, serving(echo) as server:
        resolver = static_resolver(
            {"two.test": [("127.0.0.1", full.port), ("127.0.0.1", server.port)]}
        )
        with net.connect(("two.test", 80), timeout=1.0, resolver=resolver) as sock:
            assert sock.getpeername()[1] == server.port


def test_one_deadline_covers_every_address() -> None:
    with FullBacklog() as first, FullBacklog() as second:
        resolver = static_resolver(
            {"two.test": [("127.0.0.1", first.port), ("127.0.0.1", second.port)]}
        )
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=r"two\.test:80 timed out after 1 s"):
            net.connect(("two.test", 80), timeout=1.0, resolver=resolver)
        # Two addresses at 1 s each would take 2 s: the deadline is total.
        assert time.monotonic() - started < 1.7


def test_the_first_error_is_raised_when_every_address_fails_in_time() -> None:
    resolver = static_resolver({"two.test": [("127.0.0.1", dead_port())] * 2})
    with pytest.raises(ConnectionRefusedError):
        net.connect(("two.test", 80), timeout=LONG, resolver=resolver)


@pytest.mark.skipif(not has_ipv6(), reason="this machine has no IPv6")
def test_connect_to_an_ipv6_literal() -> None:
    with serving(echo, host="::1") as server, net.connect(server.address, timeout=LONG) as sock:
        assert sock.family == socket.AF_INET6
        net.sendall(sock, b"six", timeout=LONG)
        assert recv_exactly(sock, 3) == b"six"


def test_a_failed_certificate_check_passes_through_and_leaves_no_socket() -> None:
    contexts = tls()
    gc.collect()
    fds = open_fds()
    with (
        serving(echo, ssl_context=contexts.server) as server,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        net.connect(
            server.address,
            timeout=LONG,
            ssl_context=contexts.client,
            server_hostname="wrong.example",
        )
    gc.collect()
    assert open_fds() <= fds


def _stopped_handshake(client_context: ssl.SSLContext) -> None:
    with serving(silent) as server:
        stop = StopEvent()
        thread, outcome = start_call(
            lambda: net.connect(server.address, timeout=LONG, stop=stop, ssl_context=client_context)
        )
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)


def test_a_stopped_handshake_closes_the_connection() -> None:
    client_context = tls().client
    gc.collect()
    fds = open_fds()
    _stopped_handshake(client_context)
    gc.collect()
    assert open_fds() <= fds  # the client socket, the server, the stop's descriptor


def test_start_tls_both_sides_and_a_tls_listener_whose_accept_does_not_handshake() -> None:
    with socket.socket() as plain_listener:
        plain_listener.bind(("127.0.0.1", 0))
        plain_listener.listen()
        listener = tls().server.wrap_socket(plain_listener, server_side=True)
        with listener:
            client = socket.create_connection(listener.getsockname(), LONG)
            client.settimeout(None)
            # accept returns although the client has not even started a handshake.
            conn, _ = net.accept(listener, timeout=LONG)
            assert isinstance(conn, ssl.SSLSocket)

            def client_side() -> None:
                tls_client = net.start_tls(
                    client, tls().client, server_hostname="localhost", timeout=LONG
                )
                with tls_client:
                    net.sendall(tls_client, b"over tls", timeout=LONG)
                    assert net.recv(tls_client, 1, timeout=LONG) == b"!"

            _thread, outcome = start_call(client_side)
            with conn:
                # The server's first read runs the handshake, bounded like the read.
                assert recv_exactly(conn, 8) == b"over tls"
                net.sendall(conn, b"!", timeout=LONG)
                assert conn.version() is not None
            assert outcome.done.wait(LONG)
            assert outcome.error is None, outcome.error


# --- resolver pool ----------------------------------------------------------------


def test_a_stuck_resolver_is_abandoned_with_a_clear_message(stuck: StuckResolver) -> None:
    with pytest.raises(DeadlineExceeded, match=r"resolver did not answer for 'stuck\.test'"):
        net.connect(("stuck.test", 80), timeout=SHORT, resolver=stuck)


def resolver_threads() -> int:
    return sum(thread.name == "stoppable-resolver" for thread in threading.enumerate())


def test_a_stuck_resolver_cannot_make_helper_threads_pile_up(stuck: StuckResolver) -> None:
    previous = net.set_resolver_threads(2)
    try:
        wait_until(lambda: resolver_threads() <= 2, what="idle helper threads to exit")
        first = StopEvent()
        occupying = [
            start_call(
                functools.partial(net.resolve, name, 80, timeout=LONG, stop=first, resolver=stuck)
            )[1]
            for name in ("one.test", "two.test")
        ]
        stuck.wait_running(2)  # both helper threads are stuck now
        outcomes = [
            start_call(
                functools.partial(net.resolve, f"host{i}.test", 80, timeout=SHORT, resolver=stuck)
            )[1]
            for i in range(10)
        ]
        for outcome in outcomes:
            assert outcome.done.wait(LONG)
            assert isinstance(outcome.error, DeadlineExceeded)
            assert "no resolver thread was free for 'host" in str(outcome.error)
            assert "all 2 are busy" in str(outcome.error)
        assert resolver_threads() == 2  # no more threads were made
        assert sorted(stuck.calls) == ["one.test", "two.test"]  # the rest never ran
        # A caller waiting for a free thread is stopped at once too.
        stop = StopEvent()
        thread, outcome = start_call(
            lambda: net.resolve("waiting.test", 80, timeout=LONG, stop=stop, resolver=stuck)
        )
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
        # The stuck lookups are abandoned at once on a stop, even while running.
        first.set()
        for outcome in occupying:
            assert outcome.done.wait(WAKE_BOUND)
            assert isinstance(outcome.error, Stopped)
        assert stuck.running == 2  # their threads are still stuck: abandoned, not waited for
        # Orphaned lookups do not hold back new ones: a new lookup gets a thread.
        stop = StopEvent()
        thread, outcome = start_call(
            lambda: net.resolve("later.test", 80, timeout=LONG, stop=stop, resolver=stuck)
        )
        stuck.wait_running(3)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
        # Once the resolver answers, the same threads serve new lookups.
        stuck.release()
        stuck.wait_idle()
        assert net.resolve("fine.test", 80, timeout=LONG, resolver=stuck)
        assert resolver_threads() <= 3
    finally:
        net.set_resolver_threads(previous)


def test_lookups_given_up_do_not_hold_back_the_next_one(stuck: StuckResolver) -> None:
    """A resolver slow for some names (a DNS timeout) must not stall the others.

    The regression: lookups abandoned at a tiny budget kept every helper thread busy
    in the slow resolver, so a fast lookup after them waited for a thread until its
    own deadline (about 5 s of a 5 s budget).
    """
    fast = static_resolver({"fast.test": [("127.0.0.1", 80)]})

    def resolver(host: Any, *args: Any) -> list[Any]:
        return fast(host, *args) if host == "fast.test" else stuck(host, *args)

    previous = net.set_resolver_threads(1)
    try:
        wait_until(lambda: resolver_threads() <= 1, what="idle helper threads to exit")
        for i in range(3):  # each is abandoned while running: its thread stays stuck
            with pytest.raises(DeadlineExceeded, match="did not answer"):
                net.resolve(f"slow{i}.test", 80, timeout=SHORT, resolver=resolver)
        assert stuck.running == 3
        started = time.monotonic()
        assert net.resolve("fast.test", 80, timeout=WAKE_BOUND, resolver=resolver)
        assert time.monotonic() - started < WAKE_BOUND
        # Still bounded: ORPHAN_FACTOR times the limit in all, then lookups wait.
        cap = resolve_module.ORPHAN_FACTOR
        for i in range(3, cap):
            with pytest.raises(DeadlineExceeded, match="did not answer"):
                net.resolve(f"slow{i}.test", 80, timeout=SHORT, resolver=resolver)
        assert stuck.running == cap
        with pytest.raises(DeadlineExceeded, match="no resolver thread was free"):
            net.resolve("fast.test", 80, timeout=SHORT, resolver=resolver)
        assert resolver_threads() == cap
        stuck.release()
        stuck.wait_idle()
        assert net.resolve("fast.test", 80, timeout=LONG, resolver=resolver)
    finally:
        stuck.release()
        net.set_resolver_threads(previous)


def test_identical_lookups_in_flight_share_one_thread(stuck: StuckResolver) -> None:
    calls = [
        start_call(lambda: net.resolve("same.test", 80, timeout=LONG, resolver=stuck))
        for _ in range(5)
    ]
    threads = [thread for thread, _ in calls]
    outcomes = [outcome for _, outcome in calls]
    stuck.wait_running(1)
    for thread in threads:
        wait_until_blocked(thread)  # each caller has joined the lookup in flight
    stuck.release()
    for outcome in outcomes:
        assert outcome.done.wait(LONG)
        assert outcome.error is None
        assert outcome.result[0][4] == ("127.0.0.1", 80)
    assert stuck.calls == ["same.test"]


def test_resolver_errors_pass_through() -> None:
    with pytest.raises(socket.gaierror):
        net.connect(("nowhere.test", 80), timeout=LONG, resolver=static_resolver({}))
    with pytest.raises(ValueError, match="threads"):
        net.set_resolver_threads(0)


# --- datagrams ------------------------------------------------------------------------


def test_udp_round_trip_with_a_name_resolved_within_the_deadline(
    counting_resolver: list[Any],
) -> None:
    with UdpEcho() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        assert net.sendto(sock, b"one", server.address, timeout=LONG) == 3
        assert net.recvfrom(sock, 100, timeout=LONG) == (b"one", server.address)
        net.sendto(sock, b"two", ("localhost", server.address[1]), timeout=LONG)
        assert counting_resolver == ["localhost"]
        buffer = bytearray(100)
        assert net.recvfrom_into(sock, buffer, timeout=LONG) == (3, server.address)
        assert buffer[:3] == b"two"


# --- the Socket wrapper ----------------------------------------------------------------


def test_socket_wrapper_methods_and_accept() -> None:
    stop = StopEvent()
    with socket.socket() as raw_listener:
        raw_listener.bind(("127.0.0.1", 0))
        raw_listener.listen()
        listener = net.Socket(raw_listener, stop=stop)
        client = net.Socket(socket.socket(), stop=stop)
        client.connect(("localhost", listener.getsockname()[1]), timeout=LONG)
        conn, address = listener.accept(timeout=LONG)
        with client, conn:
            assert isinstance(conn, net.Socket)
            assert conn.stop is stop
            assert address == client.getsockname()
            assert client.send(b"abc", timeout=LONG) == 3
            assert conn.recv(3, timeout=LONG) == b"abc"
            client.sendall(b"defg", timeout=LONG)
            buffer = bytearray(4)
            assert conn.recv_into(buffer, timeout=LONG) == 4
            assert buffer == b"defg"
            assert "stoppable.net.Socket" in repr(client)
            assert client.fileno() == client.sock.fileno()
            stop.set()
            with pytest.raises(Stopped):
                conn.recv(1, timeout=LONG)
        assert client.sock.fileno() == -1  # closed by the with block


def test_wrapper_without_timeout_needs_a_scope_or_a_socket_timeout() -> None:
    a, b = socket.socketpair()
    with a, b:
        wrapped = net.Socket(a)
        with pytest.raises(TypeError, match="timeout is required"):
            wrapped.recv(1)
        with scope(timeout=SHORT), pytest.raises(DeadlineExceeded, match="enclosing"):
            wrapped.recv(1)
        a.settimeout(SHORT)  # the socket's own timeout: per call, as the stdlib does
        with pytest.raises(DeadlineExceeded, match=f"after {SHORT:g} s"):
            wrapped.recv(1)
        a.settimeout(0.0)  # non-blocking: used as it is
        with pytest.raises(BlockingIOError):
            wrapped.recv(1)
        b.sendall(b"k")
        assert wrapped.recv(1) == b"k"


def test_wrapper_refuses_methods_it_cannot_bound() -> None:
    a, b = socket.socketpair()
    with a, b:
        wrapped = net.Socket(a)
        for name in ("recvmsg", "sendmsg", "sendfile", "connect_ex"):
            with pytest.raises(AttributeError, match="no bounded"):
                getattr(wrapped, name)
        assert wrapped.getsockname() == a.getsockname()  # the rest is the socket's
        with pytest.raises(TypeError, match="TLS"):
            wrapped.do_handshake(timeout=1)


def test_makefile_reads_lines_through_the_wrapper() -> None:
    with (
        serving(drip([b"first line\nsec", b"ond line\n"], 0.01)) as server,
        socket.create_connection(server.address, LONG) as sock,
    ):
        sock.settimeout(None)
        wrapped = net.Socket(sock)
        with scope(timeout=LONG), wrapped.makefile("rb") as f:
            assert f.readline() == b"first line\n"
            assert f.readline() == b"second line\n"
        wrapped.close()
        assert sock.fileno() == -1


def _http_server(body: list[bytes]) -> LoopbackServer:
    """Answers one HTTP/1.0 request with a body delimited by the connection's close,
    sending ``body``'s first chunk at once and the rest never (until the server ends)."""

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body[0])
        server.quit.wait(LONG)

    return LoopbackServer(handler)


@pytest.mark.usefixtures("no_polling")
@pytest.mark.parametrize("how", ["stop", "deadline"])
def test_http_client_body_cut_short_raises_never_looks_complete(how: str) -> None:
    with _http_server([b"part of the body"]) as server:
        stop = StopEvent()

        reading_body = threading.Event()

        def fetch() -> bytes:
            raw = socket.create_connection(server.address, LONG)
            raw.settimeout(None)
            conn = http.client.HTTPConnection(*server.address)
            conn.sock = net.Socket(raw)
            try:
                with scope(timeout=LONG, stop=stop):
                    conn.request("GET", "/")
                    response = conn.getresponse()
                    assert response.status == 200
                    try:
                        reading_body.set()
                        with scope(timeout=SHORT if how == "deadline" else LONG):
                            return response.read()  # close-delimited: reads to EOF
                    finally:
                        response.close()
            finally:
                conn.close()
                raw.close()

        thread, outcome = start_call(fetch)
        if how == "stop":
            assert reading_body.wait(LONG)
            wait_until_blocked(thread)  # in the body's read
            stop.set()
        assert outcome.done.wait(LONG)
        assert reading_body.is_set()
        assert outcome.result is None  # never a truncated body
        expected = Stopped if how == "stop" else socket.timeout
        assert isinstance(outcome.error, expected), outcome.error


# --- leaks ----------------------------------------------------------------------------


def fd_table() -> dict[str, str]:
    """This process's open descriptors and what they are (to name a leak)."""
    table = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            table[fd] = os.readlink(f"/proc/self/fd/{fd}")
            if table[fd].startswith("socket:"):
                with socket.socket(fileno=os.dup(int(fd))) as sock:
                    with contextlib.suppress(OSError):
                        table[fd] += f" {sock.getsockname()}"
                    with contextlib.suppress(OSError):
                        table[fd] += f" -> {sock.getpeername()}"
    return table


def _in_scope(stop: StopEvent, call: Callable[[], object]) -> object:
    with scope(stop=stop):
        return call()


def test_ten_thousand_stopped_calls_leave_no_fd_thread_or_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resolve_module, "_IDLE_SECONDS", 0.05)  # idle helpers exit soon
    client_context = tls().client
    megabyte = b"x" * (1 << 20)
    root = StopEvent()
    resolver = StuckResolver()
    # Counted before any server starts and after all have closed: a server accepts
    # (and closes) its side of a connection in its own time.
    gc.collect()
    threads_before = threading.active_count()
    fds_before = open_fds()
    fd_names = fd_table()
    with contextlib.ExitStack() as stack:
        silent_server = stack.enter_context(serving(silent))
        sink_go = threading.Event()
        sink_go.set()
        sink = stack.enter_context(serving(drain_when(sink_go)))
        never_reads = stack.enter_context(serving(drain_when(threading.Event())))
        full = stack.enter_context(FullBacklog())
        quiet = stack.enter_context(socket.create_connection(silent_server.address, LONG))
        quiet.settimeout(None)
        stuffed = stack.enter_context(small_send_buffer_connection(never_reads.address))
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        wrapped = net.Socket(quiet)

        def tls_to_sink(stop: StopEvent) -> object:
            return net.connect(sink.address, timeout=LONG, stop=stop, ssl_context=client_context)

        calls: list[tuple[int, Callable[[StopEvent], object]]] = [
            (3500, lambda s: net.recv(quiet, 10, timeout=LONG, stop=s)),
            (1500, lambda s: net.accept(listener, timeout=LONG, stop=s)),
            (1500, lambda s: refill_then(stuffed, net.sendall, megabyte, timeout=LONG, stop=s)),
            (1000, lambda s: net.connect(full.address, timeout=LONG, stop=s)),
            (1000, lambda s: _in_scope(s, lambda: wrapped.recv(10, timeout=LONG))),
            (500, lambda s: net.resolve("stuck.test", 80, timeout=LONG, stop=s, resolver=resolver)),
            (500, tls_to_sink),
            (500, lambda s: net.Socket(quiet, stop=s).recv(10, timeout=LONG)),
        ]
        # One setter thread stops each call once it is blocked: registered on its stop's
        # wake-up descriptor (a poll) or as a callback (a condition wait).
        handoff: queue.SimpleQueue[StopEvent | None] = queue.SimpleQueue()
        returned = threading.Event()  # set if a call returns before it could block

        def setter() -> None:
            while (child := handoff.get(timeout=LONG)) is not None:
                while not (child._wakeup or child._callback_count() or returned.is_set()):
                    time.sleep(0)
                child.set()

        setter_thread = threading.Thread(target=setter)
        setter_thread.start()
        done = 0
        try:
            for count, call in calls:
                for _ in range(count):
                    child = root.child()
                    handoff.put(child)
                    try:
                        result = call(child)
                    except Stopped:
                        pass
                    else:
                        returned.set()
                        raise AssertionError(f"call {done} returned {result!r}, not stopped")
                    assert child._callback_count() == 0
                    done += 1
        finally:
            handoff.put(None)
            setter_thread.join(LONG)
        assert not setter_thread.is_alive()
        assert done == 10_000
        assert root._callback_count() == 0
        assert quiet.gettimeout() is None
        assert listener.gettimeout() is None
        resolver.release()
        resolver.wait_idle()
        del child  # the last stop: its wake-up descriptor closes when it is freed
    wait_until(lambda: threading.active_count() <= threads_before, what="threads to end")
    gc.collect()
    assert open_fds() <= fds_before, fd_table().items() - fd_names.items()


# --- the example ----------------------------------------------------------------------


def test_the_net_example_stops_every_thread_and_drops_no_reply() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "net_service.py"
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every reply complete" in result.stdout

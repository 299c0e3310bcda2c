"""Loopback servers for network tests: real sockets, threads, ready and quit events.

Each server binds port 0 on a loopback address, is ready when ``start()`` returns, and
ends (listener closed, every connection shut down, every thread joined) on
``close()`` or at the end of its ``with`` block, wherever its handlers are blocked.

A ``LoopbackServer`` runs ``handler(conn, server)`` in a thread per accepted
connection. Handlers here cover the misbehaving peers a client must survive (silent,
never reading, reset mid-stream, half-closed, dripping bytes); an HTTP test builds its
own by sending bytes with ``server.pause``/``conn.sendall``. Handlers never sleep to
order things: they wait on events (``server.quit``, or one passed in), so a test
decides when a peer moves on.

None of this uses ``stoppable``: the servers must not depend on the code under test.
"""

from __future__ import annotations

import atexit
import contextlib
import select
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

LONG = 30.0  # how long a server ever waits for anything

Handler = Callable[[socket.socket, "LoopbackServer"], None]


@cache
def has_ipv6() -> bool:
    """Whether this machine can listen on and connect to ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class LoopbackServer:
    """A threaded TCP server on ``host`` (``127.0.0.1`` or ``::1``).

    ``ssl_context`` (a server context) makes each connection TLS: the handshake runs in
    the connection's thread before ``handler``. ``server.connections`` lists the
    server side of every accepted connection; ``wait_connections(n)`` waits for them.
    Exceptions in handlers are kept in ``errors`` (a peer that resets or goes away is
    normal: ``OSError`` is ignored).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        backlog: int = 128,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.ssl_context = ssl_context
        self.quit = threading.Event()
        self.connections: list[socket.socket] = []
        self.errors: list[BaseException] = []
        self.results: list[Any] = []  # what handlers report (bytes received...)
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(_family(host), socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(backlog)
        # accept() comes after select() found a connection: LONG only bounds a race.
        # Connections still come out blocking (as socket.accept makes them).
        self._listener.settimeout(LONG)
        self._wake_r, self._wake_w = socket.socketpair()
        self.port: int = self._listener.getsockname()[1]

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return (self.host, self.port)

    def start(self) -> LoopbackServer:
        """Start accepting; the server is ready when this returns."""
        thread = threading.Thread(target=self._accept_loop, name="server-accept", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self.quit.is_set():
            ready, _, _ = select.select([self._listener, self._wake_r], [], [], LONG)
            if self._wake_r in ready or self.quit.is_set():
                return
            if not ready:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            thread = threading.Thread(
                target=self._serve, args=(conn,), name="server-conn", daemon=True
            )
            with self._changed:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.ssl_context is not None:
                conn.settimeout(LONG)
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            with self._changed:
                self.connections.append(conn)
                self._changed.notify_all()
            self.handler(conn, self)
        except OSError:
            pass  # the peer reset, went away, or the server is closing
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    def wait_connections(self, count: int, timeout: float = LONG) -> None:
        """Wait until ``count`` connections have been accepted (and TLS-handshaken)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.connections) >= count, timeout):
                raise AssertionError(f"server got {len(self.connections)} connections, not {count}")

    def report(self, value: Any) -> None:
        """For handlers: record ``value`` in ``results`` and wake ``wait_results``."""
        with self._changed:
            self.results.append(value)
            self._changed.notify_all()

    def wait_results(self, count: int, timeout: float = LONG) -> list[Any]:
        """Wait until handlers have reported ``count`` results; return them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.results) >= count, timeout):
                raise AssertionError(f"handlers reported {self.results}, wanted {count}")
            return list(self.results)

    def wait_either(self, event: threading.Event, timeout: float = LONG) -> bool:
        """For handlers: wait for ``event`` (at once) or the server's close (within
        50 ms); ``True`` if ``event`` came first."""
        deadline = time.monotonic() + timeout
        while not event.wait(0.05):
            if self.quit.is_set() or time.monotonic() > deadline:
                return False
        return True

    def pause(self, seconds: float) -> bool:
        """For handlers: wait ``seconds`` unless the server closes; ``False`` if it did."""
        return not self.quit.wait(seconds)

    def close(self) -> None:
        """Stop accepting, wake every handler, join every thread, close every socket."""
        self.quit.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        with self._changed:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv/send
        for thread in list(self._threads):
            thread.join(LONG)
        with self._changed:
            threads = list(self._threads)
        for thread in threads:  # those started while closing
            thread.join(LONG)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()


# --- handlers ---------------------------------------------------------------------


def echo(conn: socket.socket, server: LoopbackServer) -> None:
    """Send back everything received, until the peer closes."""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def silent(conn: socket.socket, server: LoopbackServer) -> None:
    """Accept, then neither read nor write until the server closes.

    On a plain listener it is also the TLS server that never completes a handshake.
    """
    server.quit.wait(LONG)


def _read_to_eof(conn: socket.socket) -> int:
    """Read until the peer closes; how many bytes came."""
    total = 0
    while data := conn.recv(65536):
        total += len(data)
    return total


def drain_when(go: threading.Event) -> Handler:
    """Read nothing until ``go`` is set, then read to EOF and report the byte count.

    A peer that never reads: the client's ``sendall`` fills the buffers and blocks
    (a small ``SO_SNDBUF`` on the client makes that happen within ~100 KB).
    """

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        if not server.wait_either(go):
            return
        server.report(_read_to_eof(conn))

    return handler


def reset_after(payload: bytes) -> Handler:
    """Send ``payload``, wait for one message from the peer, then reset (RST).

    The peer's next ``recv`` gets ``ConnectionResetError``: its message tells the
    server the payload was read, so the reset comes mid-stream, not before the data.
    """

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        conn.sendall(payload)
        conn.recv(1024)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    return handler


def half_close(payload: bytes) -> Handler:
    """Send ``payload``, shut down the sending side, then read to EOF and report the count."""

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        server.report(_read_to_eof(conn))

    return handler


def drip(chunks: Sequence[bytes], interval: float, *, then_close: bool = False) -> Handler:
    """Send ``chunks`` one by one, ``interval`` seconds apart (a slow peer).

    Then hold the connection until the server closes, or close it (``then_close``: a
    body delimited by the connection's close).
    """

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        for index, chunk in enumerate(chunks):
            if index and not server.pause(interval):
                return
            conn.sendall(chunk)
        if not then_close:
            server.quit.wait(LONG)

    return handler


def send_on(go: threading.Event, payload: bytes) -> Handler:
    """Send ``payload`` once ``go`` is set, then echo until the peer closes."""

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        if not server.wait_either(go):
            return
        conn.sendall(payload)
        echo(conn, server)

    return handler


# --- listeners that do not serve -----------------------------------------------------


class FullBacklog:
    """A listener whose accept queue is full and never drained: ``connect`` hangs.

    ``listen(0)`` plus one connection nobody accepts fills the queue; the kernel then
    drops new SYNs, so a connect waits (and retransmits) with no answer.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._listener = socket.socket(_family(host), socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        filler = socket.socket(_family(host), socket.SOCK_STREAM)
        filler.settimeout(LONG)
        filler.connect(self.address)
        self._fillers.append(filler)
        self._check_full()

    def _check_full(self) -> None:
        probe = socket.socket(_family(self.host), socket.SOCK_STREAM)
        probe.setblocking(False)
        probe.connect_ex(self.address)
        poller = select.poll()
        poller.register(probe, select.POLLOUT)
        if poller.poll(100):  # the queue took one more: fill it again, and check
            self._fillers.append(probe)
            self._check_full()
        else:
            probe.close()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` whose connects hang."""
        return (self.host, self.port)

    def close(self) -> None:
        """Close the listener and the connections that fill its queue."""
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    def __enter__(self) -> FullBacklog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UdpEcho:
    """A UDP socket on loopback that sends every datagram back to its sender."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(LONG)  # recvfrom comes after select() found a datagram
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._loop, name="udp-echo", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self._wake_r], [], [], LONG)
            if self._wake_r in ready or not ready:
                return
            data, sender = self.sock.recvfrom(65536)
            self.sock.sendto(data, sender)

    def close(self) -> None:
        """Stop the echo thread and close the socket."""
        self._wake_w.send(b"x")
        self._thread.join(LONG)
        for sock in (self.sock, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> UdpEcho:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- resolvers ----------------------------------------------------------------------------


@dataclass(eq=False)
class StuckResolver:
    """A resolver that hangs (up to ``hold`` seconds) until ``release()``.

    Injected with ``stoppable.net.set_resolver`` (or ``resolver=``) to stand for a
    DNS server that never answers. ``calls`` lists the hosts asked for; ``running``
    counts the calls blocked right now, ``wait_running(n)`` waits for ``n`` of them.
    After ``release()`` it answers with ``answer`` (default: the loopback address).
    """

    hold: float = LONG
    answer: list[Any] | None = None
    calls: list[Any] = field(default_factory=list)
    running: int = 0
    _released: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        with self._changed:
            self.calls.append(host)
            self.running += 1
            self._changed.notify_all()
        try:
            self._released.wait(self.hold)
        finally:
            with self._changed:
                self.running -= 1
                self._changed.notify_all()
        if self.answer is not None:
            return self.answer
        return socket.getaddrinfo("127.0.0.1", port, family, type, proto, socket.AI_NUMERICHOST)

    def wait_running(self, count: int, timeout: float = LONG) -> None:
        """Wait until ``count`` calls are blocked in the resolver at once."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.running >= count, timeout):
                raise AssertionError(f"{self.running} resolver calls running, wanted {count}")

    def wait_idle(self, timeout: float = LONG) -> None:
        """Wait until no call is blocked in the resolver."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.running == 0, timeout):
                raise AssertionError(f"{self.running} resolver calls still running")

    def release(self) -> None:
        """Let every blocked call (and every later one) answer at once."""
        self._released.set()


def static_resolver(table: dict[str, list[tuple[str, int]]]) -> Callable[..., list[Any]]:
    """A resolver answering ``host`` with the given ``(ip, port)`` addresses, in order.

    For tests of what ``connect`` does with several addresses (one dead, one hanging).
    Unknown hosts raise ``socket.gaierror``, as a real resolver does.
    """

    def resolve(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = []
        for ip, ip_port in table[host]:
            fam = _family(ip)
            sockaddr: tuple[Any, ...] = (ip, ip_port)
            if fam == socket.AF_INET6:
                sockaddr = (ip, ip_port, 0, 0)
            answer.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return answer

    return resolve


# --- TLS -------------------------------------------------------------------------


@dataclass
class TLS:
    """A throwaway CA (``trustme``) and contexts for ``localhost``/``127.0.0.1``/``::1``.

    ``ca_path`` is the CA's PEM file, for APIs that take a path (requests' ``verify=``).
    """

    server: ssl.SSLContext
    client: ssl.SSLContext
    ca_path: str


@cache
def tls() -> TLS:
    """The test TLS contexts (made once per process; the CA file lives as long)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    directory = Path(tempfile.mkdtemp(prefix="stoppable-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return TLS(server=server, client=client, ca_path=str(ca_path))


@contextlib.contextmanager
def serving(handler: Handler, **kwargs: Any) -> Iterator[LoopbackServer]:
    """``with serving(echo) as server:``: a started ``LoopbackServer``, closed after."""
    with LoopbackServer(handler, **kwargs) as server:
        yield server

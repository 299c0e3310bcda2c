"""Loopback HTTP/HTTPS servers for the HTTP tests: the fault matrix, on real sockets.

``HTTPServer`` is a ``net_servers.LoopbackServer`` whose connection handler reads
HTTP/1.1 requests (keep-alive) and answers each by the route of its path. The routes
are the servers a client must survive: silent after accept, headers never finished, a
body dripping one byte at a time (``Content-Length``, chunked, or delimited by the
connection's close), a reset in the middle of a body, a slow redirect chain, a
``503`` with ``Retry-After``, a peer that never reads the request body; and ordinary
ones (``/ok``, ``/bytes``, ``/echo``). With ``proxy=True`` it is an HTTP proxy: it
answers forwarded requests itself and opens CONNECT tunnels.

Routes never sleep to order things: a slow one paces itself with ``server.pause``,
which the server's close ends, and a silent one reads until the client closes (so
its thread ends with the client's connection). ``server.requests`` records every
request parsed; ``wait_requests(n)`` waits for them.

None of this uses ``stoppable``: the servers must not depend on the code under test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from . import net_servers
from .net_servers import LONG, LoopbackServer

__all__ = ["HTTPServer", "Request"]


# --- TLS -------------------------------------------------------------------------


# --- requests --------------------------------------------------------------------------


@dataclass
class Request:
    """One parsed request."""

    method: str
    target: str  # as sent: a path, an absolute URL (to a proxy), or host:port (CONNECT)
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        """The path, without the query."""
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """The query parameters (the last of each name)."""
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query))


class _Reader:
    """Buffered reads from a connection (blocking: the server's close ends them)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.conn.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self._fill():
                return None
        index = self.buffer.index(marker) + len(marker)
        data = bytes(self.buffer[:index])
        del self.buffer[:index]
        return data

    def exactly(self, count: int) -> bytes | None:
        while len(self.buffer) < count:
            if not self._fill():
                return None
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def headers(self) -> tuple[str, str, dict[str, str]] | None:
        head = self.until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return method, target, headers

    def body(self, headers: dict[str, str]) -> bytes | None:
        if "content-length" in headers:
            return self.exactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self.until(b"\r\n")
                if size_line is None:
                    return None
                size = int(size_line.split(b";")[0], 16)
                chunk = self.exactly(size + 2)
                if chunk is None:
                    return None
                if size == 0:
                    return body
                body += chunk[:-2]
        return b""

    def to_eof(self) -> None:
        """Read (and drop) until the peer closes."""
        self.buffer.clear()
        while self._fill():
            self.buffer.clear()


# --- responses -------------------------------------------------------------------------


def response_head(status: int, headers: dict[str, str], reason: str = "X") -> bytes:
    """A status line and headers."""
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(conn: socket.socket, status: int, body: bytes = b"", **headers: str) -> None:
    """A complete response with ``Content-Length``."""
    fields = {"Content-Length": str(len(body))}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    conn.sendall(response_head(status, fields) + body)


# A route answers one request; it returns whether the connection stays open.
Route = Callable[[socket.socket, "HTTPServer", Request, _Reader], bool]


def _ok(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    respond(conn, 200, b"ok")
    return True


PATTERN = bytes(range(256)) * 4096  # 1 MiB


def body_bytes(size: int) -> bytes:
    """The body ``/bytes?n=size`` sends: a repeating pattern, so damage shows."""
    whole, rest = divmod(size, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


def _bytes(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    size = int(request.query.get("n", "1024"))
    conn.sendall(response_head(200, {"Content-Length": str(size)}))
    view = memoryview(PATTERN)
    sent = 0
    while sent < size:
        step = min(len(PATTERN), size - sent)
        conn.sendall(view[:step])
        sent += step
    return True


def _echo(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    respond(conn, 200, request.body)
    return True


def _silent(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    reader.to_eof()  # never answers; ends when the client closes (or the server does)
    return False


def _stall_headers(
    conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader
) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
    reader.to_eof()
    return False


def _drip(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    """Headers, then one body byte per ``interval`` (``count`` of them), framed by
    ``framing``: ``length``, ``chunked`` or ``close``."""
    framing = request.query.get("framing", "length")
    interval = float(request.query.get("interval", "0.05"))
    count = int(request.query.get("count", "100000"))
    fields = {
        "length": {"Content-Length": str(count)},
        "chunked": {"Transfer-Encoding": "chunked"},
        "close": {"Connection": "close"},
    }[framing]
    conn.sendall(response_head(200, fields))
    server.report(("drip", request.target))
    for index in range(count):
        if index and not server.pause(interval):
            return False
        conn.sendall(b"1\r\nx\r\n" if framing == "chunked" else b"x")
    if framing == "chunked":
        conn.sendall(b"0\r\n\r\n")
    return framing != "close"


def _reset(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    """Headers and part of the body (as ``framing`` says), then a reset (RST)."""
    framing = request.query.get("framing", "length")
    fields = {
        "length": {"Content-Length": "100000"},
        "chunked": {"Transfer-Encoding": "chunked"},
        "close": {"Connection": "close"},
    }[framing]
    part = b"x" * 1000
    if framing == "chunked":
        part = b"3e8\r\n" + part + b"\r\n"
    conn.sendall(response_head(200, fields) + part)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False  # closed at once, with the linger set: a reset


def _hops(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    """After ``delay`` s, redirect to ``/hops?n=<n-1>``; at ``n=0`` answer ``arrived``."""
    hops = int(request.query.get("n", "0"))
    delay = request.query.get("delay", "0")
    if float(delay) and not server.pause(float(delay)):
        return False
    if hops <= 0:
        respond(conn, 200, b"arrived")
    else:
        respond(conn, 302, Location=f"/hops?n={hops - 1}&delay={delay}")
    return True


def _status(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    extra = {}
    if "retry_after" in request.query:
        extra["Retry_After"] = request.query["retry_after"]
    respond(conn, int(request.query.get("code", "503")), b"", **extra)
    return True


def _no_read(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    server.quit.wait(LONG)  # reads nothing more: the client's upload fills the buffers
    return False


ROUTES: dict[str, Route] = {
    "/ok": _ok,
    "/bytes": _bytes,
    "/echo": _echo,
    "/silent": _silent,
    "/stall-headers": _stall_headers,
    "/drip": _drip,
    "/reset": _reset,
    "/hops": _hops,
    "/status": _status,
    "/no-read": _no_read,
}

# Routes that answer before the request body is read (or never read it).
_BODY_UNREAD = frozenset({"/no-read"})


class HTTPServer(LoopbackServer):
    """A threaded HTTP/1.1 server on loopback (``tls=True``: HTTPS, ``trustme`` CA;
    ``server_context=``: HTTPS with that server context).

    ``url`` is its base URL (``http://127.0.0.1:port``). ``proxy=True`` makes it an
    HTTP proxy instead (see the module docstring).
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        proxy: bool = False,
        host: str = "127.0.0.1",
        routes: dict[str, Route] | None = None,
        server_context: ssl.SSLContext | None = None,
    ) -> None:
        if server_context is None and tls:
            server_context = net_servers.tls().server
        super().__init__(self._serve_http, host=host, ssl_context=server_context)
        self.routes = {**ROUTES, **(routes or {})}
        self.proxy = proxy
        self.requests: list[Request] = []
        self.tls = server_context is not None

    def __enter__(self) -> HTTPServer:
        self.start()
        return self

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def wait_requests(self, count: int, timeout: float = LONG) -> list[Request]:
        """Wait until ``count`` requests have been parsed; return them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"server got {len(self.requests)} requests, not {count}")
            return list(self.requests)

    def _serve_http(self, conn: socket.socket, server: LoopbackServer) -> None:
        reader = _Reader(conn)
        while not self.quit.is_set():
            head = reader.headers()
            if head is None:
                return
            method, target, headers = head
            request = Request(method, target, headers)
            path = request.path
            if path not in _BODY_UNREAD and method != "CONNECT":
                body = reader.body(headers)
                if body is None:
                    return
                request.body = body
            with self._changed:
                self.requests.append(request)
                self._changed.notify_all()
            if self.proxy:
                if not self._proxy(conn, request, reader):
                    return
                continue
            route = self.routes.get(path)
            if route is None:
                respond(conn, 404, b"no such route")
                continue
            if not route(conn, self, request, reader):
                return

    def _proxy(self, conn: socket.socket, request: Request, reader: _Reader) -> bool:
        if request.method != "CONNECT":  # a forwarded request: answered here
            respond(conn, 200, b"proxied " + request.target.encode())
            return True
        host, _, port = request.target.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), LONG)
        with upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if reader.buffer:
                upstream.sendall(bytes(reader.buffer))
                reader.buffer.clear()
            self._relay(conn, upstream)
        return False

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self.quit.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    with contextlib.suppress(OSError):
                        peers[sock].shutdown(socket.SHUT_WR)
                    return
                peers[sock].sendall(data)

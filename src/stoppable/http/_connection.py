"""Connections whose connect, proxy tunnel and TLS handshake wait within the budget."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
import urllib3.util.connection
import urllib3.util.ssl_

from .. import _compat, net
from .._errors import DeadlineExceeded
from . import _tls
from ._budget import _phase, current, edge, open_budget
from ._errors import _BODY_TEXT, _HEADERS_TEXT, _SEND_TEXT, BODY, CONNECT, HEADERS, SEND
from ._response import _Response
from ._socket import _Socket

if TYPE_CHECKING:
    from urllib3._base_connection import _TYPE_BODY

_monotonic = time.monotonic

# --- connections ----------------------------------------------------------------------


def _show(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


if TYPE_CHECKING:
    _ConnectionBase = urllib3.connection.HTTPConnection
else:
    _ConnectionBase = object


class _Bounded(_ConnectionBase):
    """What both connection classes change.

    They connect through ``stoppable.net``, keep the budget on the socket, track the
    request's phase, and hand out a response that never looks complete when cut short.
    """

    # The pool that made this connection (a weak reference), whose timeout and stop
    # apply to the connection used directly, outside any request of the pool.
    _stoppable_pool: Callable[[], Any] | None = None
    # The total for a call outside a request when neither the pool nor the connection
    # gives one (a subclass's choice; compat/substitute.py sets it). None: refused.
    _stoppable_default_total: float | None = None

    def _wait_seconds(self) -> float:
        """``timeout=`` for a net call: the stall limit, else the whole budget."""
        budget = current()
        timeout = self.timeout
        if isinstance(timeout, int | float) and timeout > 0:
            return float(timeout)
        if budget is None:  # pragma: no cover - every entry point installs one
            raise TypeError("a stoppable.http connection used outside a request")
        return budget.timeout

    def _outside(self, method: str = "", url: str = "") -> contextlib.AbstractContextManager[Any]:
        """A budget for a call made outside any request: the connection used directly.

        As urllib3 gives such a call its pool's timeout, each call gets the pool's
        total ``timeout`` (else the connection's own ``timeout``), with the pool's stop.
        """
        if current() is not None:
            return contextlib.nullcontext()
        ref = self._stoppable_pool
        pool = None if ref is None else ref()
        seconds = getattr(pool, "total_timeout", None)
        if seconds is None:
            own = self.timeout
            if own.__class__ in (int, float) and own > 0:
                seconds = float(own)
            elif self._stoppable_default_total is not None:
                seconds = self._stoppable_default_total
            else:
                raise TypeError(
                    "timeout is required: a stoppable.http connection used outside a "
                    "request takes its pool's timeout (or its own timeout=), and has neither"
                )
        target = url if "://" in url else f"{_show(self.host, self.port)}{url}"
        budget = open_budget(
            seconds,
            None,
            getattr(pool, "stop", None),
            method,
            target,
            getattr(pool, "stall_timeout", None),
            urllib3=True,
        )
        return edge(budget)

    def connect(self) -> None:
        with self._outside():
            super().connect()

    def _new_conn(self) -> Any:
        with self._outside():
            return self._bounded_conn()

    def _bounded_conn(self) -> Any:
        host, port = _compat.urllib3_dns_host(self), self.port
        target = _show(host, port)
        _phase(
            CONNECT,
            f"connecting to the proxy {target}" if self.proxy else f"connecting to {target}",
        )
        create = urllib3.util.connection.create_connection
        try:
            if create is not _CREATE_CONNECTION:
                return self._replaced_conn(create)
            sock = net.connect(
                (host, port), timeout=self._wait_seconds(), source_address=self.source_address
            )
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        except DeadlineExceeded as exc:
            budget = current()
            if budget is not None and "resolver" in str(exc):
                budget.phase = f"resolving {host!r}"
            raise
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(
                self,
                f"Failed to establish a new connection: {exc}",
            ) from exc
        try:
            for option in self.socket_options or ():
                sock.setsockopt(*option)
        except BaseException:
            sock.close()
            raise
        sys.audit("http.client.connect", self, self.host, self.port)
        return _Socket(sock, current())

    def _replaced_conn(self, create: Callable[..., Any]) -> Any:
        """Connect with a replaced ``urllib3.util.connection.create_connection``.

        Code that replaces it (a resolver of its own, a test's mock) is honoured, as
        urllib3 honours it: it gets the time left as its timeout (its name lookup is
        its own, beyond stoppable's reach). A real socket it returns is bounded as
        usual from then on; anything else is used as it is.
        """
        try:
            sock = create(
                (_compat.urllib3_dns_host(self), self.port),
                self._wait_seconds(),
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            if isinstance(exc, DeadlineExceeded):
                raise
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out."
            ) from exc
        if issubclass(type(sock), socket.socket):  # type(): a mock may pass isinstance
            sys.audit("http.client.connect", self, self.host, self.port)
            return _Socket(sock, current())
        return sock

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: _TYPE_BODY | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        with self._outside(method, url):
            if self.sock is None:
                self.connect()
            sock = self.sock
            if sock.__class__ is _Socket:
                sock.budget = current()
            _phase(SEND, _SEND_TEXT)
            super().request(
                method,
                url,
                body=body,
                headers=headers,
                chunked=chunked,
                preload_content=preload_content,
                decode_content=decode_content,
                enforce_content_length=enforce_content_length,
            )

    def getresponse(self) -> Any:
        with self._outside():
            sock = self.sock
            if sock.__class__ is _Socket and current() is not sock.budget:
                sock.budget = current()  # a call of its own: its budget, until read
            return self._bounded_response()

    def _bounded_response(self) -> Any:
        budget = current()
        # The body is read below, once the response knows its phase (where the
        # options cannot be read, urllib3 reads it: only the phase named is less exact).
        options = _compat.urllib3_response_options(self)
        preload = options is not None and options.preload_content
        if preload and options is not None:
            _compat.set_urllib3_response_options(self, options._replace(preload_content=False))
        _phase(HEADERS, _HEADERS_TEXT)
        response = super().getresponse()
        response.__class__ = _Response
        response = cast(_Response, response)
        response._stoppable_budget = budget
        _phase(BODY, _BODY_TEXT)
        if preload and options is not None:  # as urllib3's preload, through public API
            response.read(decode_content=options.decode_content, cache_content=True)
        return response


class HTTPConnection(_Bounded, urllib3.connection.HTTPConnection):
    """urllib3's ``HTTPConnection`` whose every wait honours the request's budget."""


class HTTPSConnection(_Bounded, urllib3.connection.HTTPSConnection):
    """urllib3's ``HTTPSConnection``: connect and TLS handshake through ``stoppable.net``.

    TLS settings follow urllib3's rules, never weaker (see ``stoppable.http._tls``):
    ``cert_reqs``, the CA and client certificate files, ``assert_hostname`` and
    ``assert_fingerprint`` apply to a given ``ssl_context`` too.
    """

    def connect(self) -> None:
        with self._outside():
            sock = self._new_conn()
            self.sock = sock
            try:
                self._connect_tls(sock)
            except BaseException:
                sock.close()  # dead, but kept as urllib3 keeps it: close() is the owner's
                raise

    def _connect_tls(self, sock: _Socket) -> None:
        server_hostname = self.host
        tunnel_host, tunnel_scheme = self._tunnel_to()
        if tunnel_host is not None:
            if tunnel_scheme == "https":
                raise urllib3.exceptions.ProxySchemeUnsupported(
                    "stoppable.http does not support HTTPS proxies (TLS within TLS)"
                )
            self.proxy_is_verified = False
            _compat.set_urllib3_connected_to_proxy(self, True)
            _phase(CONNECT, "opening a tunnel through the proxy (CONNECT)")
            _compat.urllib3_open_tunnel(self)
            server_hostname = tunnel_host
        elif self.proxy is not None and self.proxy.scheme == "https":
            raise urllib3.exceptions.ProxySchemeUnsupported(
                "stoppable.http does not support HTTPS proxies"
            )
        if self.server_hostname is not None:
            server_hostname = self.server_hostname
        _tls.warn_if_clock_is_off()
        server_hostname = _tls.server_hostname(server_hostname)
        context, made_here, verify_mode = _tls.context_for(self)
        _phase(CONNECT, f"TLS handshake with {_show(self.host, self.port)}")
        bounded = issubclass(type(sock), socket.socket | net.Socket)
        if bounded:
            tls = net.start_tls(
                sock, context, timeout=self._wait_seconds(), server_hostname=server_hostname
            )
        else:  # not a socket (a replaced create_connection's): urllib3's own wrapping
            wrap: Any = getattr(  # looked up as urllib3 does, so a patch applies
                urllib3.connection, "ssl_wrap_socket", urllib3.util.ssl_.ssl_wrap_socket
            )
            tls = wrap(sock=sock, server_hostname=server_hostname, ssl_context=context)
        try:
            verified = _tls.check_peer(self, tls, context, server_hostname, made_here, verify_mode)
        except BaseException:
            tls.close()
            raise
        self.sock = _Socket(tls, current()) if bounded else tls
        self.is_verified = verified and not self.proxy_is_forwarding
        if _compat.URLLIB3_TUNNEL:
            _compat.set_urllib3_connected_to_proxy(self, bool(self.proxy))
        if self.proxy and self.proxy_is_verified is None:
            self.proxy_is_verified = verified

    def _tunnel_to(self) -> tuple[str | None, str | None]:
        """The tunnel to open, ``(host, scheme)``; refused where it cannot be read."""
        if _compat.URLLIB3_TUNNEL:
            return _compat.urllib3_tunnel(self)
        config = self.proxy_config
        forwarding = config is not None and config.use_forwarding_for_https
        if self.proxy is not None and not forwarding:
            raise urllib3.exceptions.ProxySchemeUnsupported(
                "stoppable.http cannot open a CONNECT tunnel with this urllib3: its "
                "tunnel state is not where stoppable reads it (see stoppable._compat)"
            )
        return None, None


_CREATE_CONNECTION: Final = urllib3.util.connection.create_connection

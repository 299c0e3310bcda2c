"""Sockets whose every wait is bounded by a total deadline and ended at once by a stop.

::

    from stoppable import StopEvent, net

    stop = StopEvent()
    sock = net.connect(("example.com", 443), timeout=5, stop=stop,
                       ssl_context=ssl.create_default_context())
    net.sendall(sock, request, timeout=5, stop=stop)
    reply = net.recv(sock, 65536, timeout=5, stop=stop)

    conn = net.Socket(sock, stop=stop)          # the same, as methods
    conn.sendall(request, timeout=5)

What is bounded, and how:

- ``connect``: the name lookup, every address tried and the TCP connect (and the TLS
  handshake, with ``ssl_context``) share one deadline, where the standard library
  gives each address the full timeout. Each address gets an equal share of what is
  left, so one address that swallows packets cannot use up the whole budget.
- Name lookups run ``getaddrinfo`` (or the resolver set by ``set_resolver``) in a
  small, bounded pool of helper threads, abandoned, not waited for, on a deadline or
  a stop. When every helper thread is busy (a resolver stuck for good), a new lookup
  waits for a free one within its own deadline; no more threads are made. IP
  literals never reach the resolver.
- ``recv``, ``recv_into``, ``recvfrom``, ``recvfrom_into``, ``send``, ``sendall``,
  ``sendto``, ``accept``, ``start_tls``: each tries the operation at once, then waits
  in ``poll`` on the socket and the ``StopEvent``'s wake-up descriptor, so a stop is
  noticed within microseconds; a plain ``threading.Event`` stop is polled between
  slices (``stoppable.set_poll_interval``). ``timeout`` is a total: ``sendall`` of
  a megabyte to a slow reader ends when the timeout is up, not when one ``send``
  stalls for that long.

The functions work on sockets they did not create: blocking sockets, sockets in any
timeout mode, plain or TLS (``ssl.SSLSocket``), and leave the socket's timeout mode as
they found it. A plain socket's mode is not even switched during a send or receive
(each try passes ``MSG_DONTWAIT``, or goes through a non-blocking shadow of the
socket), so another thread may use the socket meanwhile with plain calls. A TLS
socket (OpenSSL needs it), and a blocking socket in ``accept`` or ``Socket.connect``
(they take no per-call flag), are switched to non-blocking for the length of the call
and switched back after; overlapping calls through this module on one socket share
the switch, so the mode is restored only when the last one ends.

Errors:

- A timeout raises ``stoppable.DeadlineExceeded``, which is also ``socket.timeout``
  (``TimeoutError``): ``except socket.timeout`` keeps working.
- A stop raises ``stoppable.Stopped`` (a ``BaseException``, with the stop's reason).
- ``sendall`` interrupted by a stop raises ``SendallStopped``, by its timeout
  ``SendallDeadline``: both have ``bytes_sent``, the bytes the peer can receive.
- Anything else (a reset by the peer, a refused connection, a failed certificate
  check, ``socket.gaierror``) passes through as the usual ``OSError``.

Nothing is read and then dropped: a wait that ends by a stop or a deadline has
consumed no data, and the socket stays usable (a ``recv`` may simply be called again).
A ``sendall`` or TLS handshake cut short leaves the connection mid-message: close it,
or (plain sockets) resume with ``data[err.bytes_sent:]``.

``Socket`` is a socket-like wrapper for code that expects a socket object (such as
``http.client`` through ``makefile()``): its methods take the same ``timeout``, and when
called without one (as third-party code does) take their budget from the socket's own
timeout and the enclosing ``stoppable.scope``'s deadline.
"""

from __future__ import annotations

from ._netconnect import connect, resolve, start_tls
from ._netops import (
    SendallDeadline,
    SendallStopped,
    accept,
    recv,
    recv_into,
    recvfrom,
    recvfrom_into,
    send,
    sendall,
    sendto,
)
from ._netops import _rebuild_deadline as _rebuild_deadline  # in pickles of 0.1's errors
from ._netops import _rebuild_stopped as _rebuild_stopped  # in pickles of 0.1's errors
from ._netsocket import Socket
from ._resolve import AddrInfo, Resolver, get_resolver, set_resolver, set_resolver_threads

__all__ = [
    "AddrInfo",
    "Resolver",
    "SendallDeadline",
    "SendallStopped",
    "Socket",
    "accept",
    "connect",
    "get_resolver",
    "recv",
    "recv_into",
    "recvfrom",
    "recvfrom_into",
    "resolve",
    "send",
    "sendall",
    "sendto",
    "set_resolver",
    "set_resolver_threads",
    "start_tls",
]

# The rooms' public names are this module's, as before they moved: named, shown and
# pickled as such (0.1's pickled errors call the _rebuild functions by this name).
_ROOMS = ("stoppable._netops", "stoppable._netconnect", "stoppable._netsocket")
for _public in [*map(globals().__getitem__, __all__), _rebuild_deadline, _rebuild_stopped]:
    if getattr(_public, "__module__", None) in _ROOMS:
        _public.__module__ = __name__
del _public


def __dir__() -> list[str]:
    # dir() of a family shows its public API, not the imports and helpers behind it.
    return sorted(__all__)

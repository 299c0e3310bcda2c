"""Name lookups inside a guard, bounded as ``stoppable.net.connect`` bounds them.

``getaddrinfo`` and its relatives cannot be interrupted, so inside a guard each runs in
the resolver's bounded pool of helper threads (``_resolve``) while the caller waits on
a condition its deadline and stops end; a lookup given up on is abandoned, not waited
for. IP literals are answered inline, as they cannot block. The functions are replaced
in the ``socket`` module (``socket.create_connection`` and every client that looks
them up there are reached) and wherever code captured them (see ``_install``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from .. import _resolve
from .._errors import DeadlineExceeded, Stopped
from .._limits import _ScopeState
from ._install import Patch, permanent
from ._state import Record, call_limits, enter, note, soften

__all__ = ["patches"]

_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname
_gethostbyname_ex = socket.gethostbyname_ex
_gethostbyaddr = socket.gethostbyaddr
_getnameinfo = socket.getnameinfo
_NUMERIC = socket.AI_NUMERICHOST


def _bounded(operation: str, host: Any, run: Callable[[], Any]) -> Any:
    """Run ``run()`` (a lookup of ``host``) in the resolver pool within the guard."""
    entered = enter(operation)
    if entered is None:
        return run()
    record, state = entered
    call = call_limits(None, f"{operation} of {host!r}")
    try:
        # Keyed by a tuple, which the resolver never takes for an IP literal: a reverse
        # lookup of one must still go to the pool.
        key: Any = (operation, host)
        answer = _resolve.lookup(call, key, None, resolver=lambda *_: [run()])
    except (Stopped, DeadlineExceeded) as exc:
        _interrupted(record, state, exc, operation)
        raise
    return answer[0]


def _interrupted(record: Record, state: _ScopeState, exc: BaseException, operation: str) -> None:
    """Note ``exc``; raise a soft guard's error instead when its deadline is what fired."""
    soft = soften(state, exc, operation)
    if soft is None:
        note(record, exc)
        return
    note(record, soft)
    try:
        raise soft from exc
    finally:
        del soft, exc


def _literal(host: Any) -> bool:
    try:
        _getaddrinfo(host, None, 0, 0, 0, _NUMERIC)
    except (OSError, UnicodeError, TypeError, ValueError):
        return False
    return True


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> Any:
    # AI_NUMERICHOST never blocks (and is how the resolver itself answers literals).
    if flags & _NUMERIC:
        return _getaddrinfo(host, port, family, type, proto, flags)
    entered = enter("name lookup")
    if entered is None:
        return _getaddrinfo(host, port, family, type, proto, flags)
    record, state = entered
    call = call_limits(None, f"name lookup of {host!r}")
    try:
        # The resolver set by stoppable.net.set_resolver (socket.getaddrinfo by default),
        # as for stoppable.net.connect.
        return _resolve.lookup(call, host, port, family, type, proto, flags)
    except (Stopped, DeadlineExceeded) as exc:
        _interrupted(record, state, exc, "name lookup")
        raise


def gethostbyname(hostname: str) -> Any:
    if _literal(hostname):
        return _gethostbyname(hostname)
    return _bounded("gethostbyname", hostname, lambda: _gethostbyname(hostname))


def gethostbyname_ex(hostname: str) -> Any:
    if _literal(hostname):
        return _gethostbyname_ex(hostname)
    return _bounded("gethostbyname_ex", hostname, lambda: _gethostbyname_ex(hostname))


def gethostbyaddr(ip_address: str) -> Any:
    # A reverse lookup asks the resolver even for an IP literal: it can always block.
    return _bounded("gethostbyaddr", ip_address, lambda: _gethostbyaddr(ip_address))


def getnameinfo(sockaddr: Any, flags: int) -> Any:
    if flags & socket.NI_NUMERICHOST and flags & socket.NI_NUMERICSERV:
        return _getnameinfo(sockaddr, flags)
    return _bounded("getnameinfo", sockaddr, lambda: _getnameinfo(sockaddr, flags))


def patches() -> tuple[list[Patch], list[Patch]]:
    """Module functions: permanent (code captures them), rebound where captured."""
    return [], [
        permanent(socket, "getaddrinfo", getaddrinfo),
        permanent(socket, "gethostbyname", gethostbyname),
        permanent(socket, "gethostbyname_ex", gethostbyname_ex),
        permanent(socket, "gethostbyaddr", gethostbyaddr),
        permanent(socket, "getnameinfo", getnameinfo),
    ]

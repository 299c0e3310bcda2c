"""stoppable.http: requests and urllib3 with a total deadline and a stop, on loopback servers."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import pickle
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from urllib3.util.retry import Retry

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped, http, net, scope

from .http_servers import HTTPServer, body_bytes
from .net_servers import (
    FullBacklog,
    StuckResolver,
    has_ipv6,
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

OVERSHOOT = 1.0  # how far past its deadline a call may end on a loaded 2-core machine
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

Call = Callable[[Any, float], object]  # (stop, timeout) -> whatever the request returns


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    with HTTPServer() as running:
        yield running


@pytest.fixture(scope="module")
def tls_server() -> Iterator[HTTPServer]:
    with HTTPServer(tls=True) as running:
        yield running


@pytest.fixture
def no_polling() -> Iterator[None]:
    """A poll interval longer than any bound: only a real wake-up ends a wait in time."""
    previous = stoppable.set_poll_interval(LONG)
    yield
    stoppable.set_poll_interval(previous)


def pooled_connections(session: requests.Session) -> list[Any]:
    """The connections idle in a session's pools (``None`` slots left out)."""
    adapter = session.get_adapter("http://")
    assert isinstance(adapter, http.HTTPAdapter)
    conns: list[Any] = []
    for key in list(adapter.poolmanager.pools.keys()):
        pool = adapter.poolmanager.pools[key]
        conns.extend(conn for conn in list(pool.pool.queue) if conn is not None)
    return conns


def assert_no_live_pooled_connection(session: requests.Session) -> None:
    """Every connection back in the pool is closed: none was returned half-used."""
    for conn in pooled_connections(session):
        assert conn.sock is None, f"a live connection went back to the pool: {conn}"


# --- the basics ------------------------------------------------------------------------


def test_module_functions_return_real_responses(server: HTTPServer) -> None:
    url = server.url
    response = http.get(f"{url}/ok", timeout=LONG)
    assert type(response) is requests.Response
    assert (response.status_code, response.text) == (200, "ok")
    assert http.post(f"{url}/echo", data=b"posted", timeout=LONG).content == b"posted"
    assert http.post(f"{url}/echo", json={"a": 1}, timeout=LONG).json() == {"a": 1}
    assert http.put(f"{url}/echo", data=b"put", timeout=LONG).content == b"put"
    assert http.patch(f"{url}/echo", data=b"patched", timeout=LONG).content == b"patched"
    assert http.delete(f"{url}/ok", timeout=LONG).status_code == 200
    assert http.options(f"{url}/ok", timeout=LONG).status_code == 200
    assert http.head(f"{url}/ok", timeout=LONG).content == b""
    assert http.request("GET", f"{url}/ok", timeout=LONG).text == "ok"


def test_session_is_a_requests_session_and_reuses_connections(server: HTTPServer) -> None:
    with http.Session(timeout=LONG) as session:
        assert isinstance(session, requests.Session)
        for _ in range(5):
            assert session.get(f"{server.url}/ok").text == "ok"
        assert len(pooled_connections(session)) == 1  # one keep-alive connection
        body = (f"{i}".encode() for i in range(3))  # a generator: sent chunked
        assert session.post(f"{server.url}/echo", data=body).content == b"012"


def test_the_pool_classes_are_bounded_too(server: HTTPServer, tls_server: HTTPServer) -> None:
    pool = http.HTTPConnectionPool("127.0.0.1", server.port, timeout=LONG, maxsize=2)
    with pool:
        assert pool.request("GET", "/ok").data == b"ok"
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError) as info:
            pool.request("GET", "/silent", timeout=SHORT)
        assert isinstance(info.value, http.ReadDeadline)
        assert time.monotonic() - started < SHORT + OVERSHOOT
        assert pool.request("GET", "/ok").data == b"ok"
    tls_pool = http.HTTPSConnectionPool(
        "127.0.0.1", tls_server.port, timeout=LONG, ca_certs=tls().ca_path
    )
    with tls_pool:
        assert tls_pool.request("GET", "/ok").data == b"ok"


def test_a_zero_timeout_fails_at_once_without_sending(server: HTTPServer) -> None:
    before = len(server.requests)
    with pytest.raises(http.ConnectDeadline, match="after 0 s"):
        http.get(f"{server.url}/ok", timeout=0)
    assert len(server.requests) == before


@pytest.mark.skipif(not has_ipv6(), reason="this machine has no IPv6")
def test_ipv6_loopback() -> None:
    with HTTPServer(host="::1") as v6:
        assert http.get(f"{v6.url}/ok", timeout=LONG).text == "ok"
        with pytest.raises(http.ReadDeadline, match=r"\[::1\]"):
            http.get(f"{v6.url}/silent", timeout=SHORT)


def test_https_verifies_against_the_given_ca(tls_server: HTTPServer) -> None:
    ca = tls().ca_path
    assert http.get(f"{tls_server.url}/ok", timeout=LONG, verify=ca).text == "ok"
    # The default CA bundle does not know the test CA: verification is never skipped.
    with pytest.raises(requests.exceptions.SSLError):
        http.get(f"{tls_server.url}/ok", timeout=LONG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        assert http.get(f"{tls_server.url}/ok", timeout=LONG, verify=False).text == "ok"


def test_https_checks_the_host_name(tls_server: HTTPServer) -> None:
    previous = net.set_resolver(static_resolver({"wrong.test": [("127.0.0.1", tls_server.port)]}))
    try:
        with pytest.raises(requests.exceptions.SSLError, match=r"match|mismatch"):
            http.get(
                f"https://wrong.test:{tls_server.port}/ok",
                timeout=LONG,
                verify=tls().ca_path,
            )
    finally:
        net.set_resolver(previous)


def test_a_given_ssl_context_is_never_weakened(tls_server: HTTPServer) -> None:
    context = tls().client
    manager = http.PoolManager(timeout=LONG, ssl_context=context, cert_reqs="CERT_NONE")
    with pytest.raises(ValueError, match="weaken"):
        manager.request("GET", f"{tls_server.url}/ok")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    manager.clear()
    manager = http.PoolManager(timeout=LONG, ssl_context=context)
    assert manager.request("GET", f"{tls_server.url}/ok").data == b"ok"
    manager.clear()


def test_large_downloads_arrive_whole(server: HTTPServer, tls_server: HTTPServer) -> None:
    size = 24 * 1024 * 1024 + 123
    expected = body_bytes(size)
    with http.Session(timeout=LONG, stall_timeout=LONG) as session:
        assert session.get(f"{server.url}/bytes?n={size}").content == expected
        with session.get(
            f"{tls_server.url}/bytes?n={size}", stream=True, verify=tls().ca_path
        ) as r:
            assert b"".join(r.iter_content(1 << 20)) == expected
    manager = http.PoolManager(timeout=LONG)
    assert manager.request("GET", f"{server.url}/bytes?n={size}").data == expected
    manager.clear()


# --- validation ----------------------------------------------------------------------

# requests' (connect, read) tuple and urllib3's Timeout are refused too: one total.
BAD_HTTP_TIMEOUTS = [
    *BAD_TIMEOUTS,
    ((1, 5), TypeError),
    (urllib3.Timeout(connect=1, read=5), TypeError),
    (urllib3.Timeout(total=1, read=5), TypeError),
]


@pytest.mark.parametrize(("bad", "error"), BAD_HTTP_TIMEOUTS)
def test_a_bad_timeout_is_refused_before_any_io(
    server: HTTPServer, bad: object, error: type[Exception]
) -> None:
    before = len(server.connections)
    url = f"{server.url}/ok"
    with http.Session() as session:
        calls: list[Callable[[], object]] = [
            lambda: http.get(url, timeout=bad),  # type: ignore[arg-type]
            lambda: session.get(url, timeout=bad),
            lambda: http.PoolManager().request("GET", url, timeout=bad),
        ]
        for call in calls:
            with pytest.raises(error, match="timeout"):
                call()
    assert len(server.connections) == before


@pytest.mark.parametrize("bad", ["foo", True, b"1", [1], -1, math.nan, math.inf])
def test_a_bad_timeout_is_the_value_error_requests_and_urllib3_raise(
    server: HTTPServer, bad: object
) -> None:
    url = f"{server.url}/ok"
    with http.Session() as session:
        for call in (
            lambda: session.get(url, timeout=bad),
            lambda: http.PoolManager().request("GET", url, timeout=bad),
            lambda: http.PoolManager(timeout=bad),  # type: ignore[arg-type]
        ):
            with pytest.raises(ValueError, match="timeout"):
                call()


@pytest.mark.parametrize("bad", ["foo", "1", True, b"1", [1]])
def test_a_timeout_that_is_not_a_number_is_refused_in_urllib3s_words(bad: object) -> None:
    # Code that matches the message requests and urllib3 give (their users' except
    # clauses and tests) still matches; stoppable's own words follow, naming timeout=.
    with pytest.raises(ValueError, match="int, float or None") as upstream:
        urllib3.util.Timeout(connect=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int, float or None") as requests_error:
        requests.get("http://127.0.0.1:9/", timeout=bad)  # type: ignore[arg-type]
    assert str(requests_error.value) == str(upstream.value)
    for call in (
        lambda: http.get("http://127.0.0.1:9/", timeout=bad),  # type: ignore[arg-type]
        lambda: http.PoolManager().request("GET", "http://127.0.0.1:9/", timeout=bad),
    ):
        with pytest.raises(http.InvalidTimeout) as ours:
            call()
        assert str(ours.value).startswith(str(upstream.value))
        assert "timeout must be a number of seconds" in str(ours.value)


def test_timeout_errors_are_shaped_as_upstreams(server: HTTPServer) -> None:
    # requests' errors wrap urllib3's: e.args[0].args[0] is its message.
    with pytest.raises(http.ReadDeadline) as info:
        http.get(f"{server.url}/silent", timeout=SHORT)
    inner = info.value.args[0]
    assert isinstance(inner, urllib3.exceptions.ReadTimeoutError)
    assert "Read timed out" in inner.args[0]
    assert str(info.value) == inner.args[0]
    assert "while waiting for the response headers" in str(info.value)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value)
    assert str(again) == str(info.value)
    # urllib3's errors carry their message as args[0].
    manager = http.PoolManager(timeout=SHORT, retries=False)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError) as raw:
        manager.request("GET", f"{server.url}/silent")
    assert isinstance(raw.value.args[0], str)
    assert "while waiting for the response headers" in raw.value.args[0]
    manager.clear()


def test_a_timeout_is_required_unless_the_session_has_one(server: HTTPServer) -> None:
    with http.Session() as session, pytest.raises(TypeError, match="timeout is required"):
        session.get(f"{server.url}/ok")
    with pytest.raises(TypeError, match="timeout"):
        http.get(f"{server.url}/ok")  # type: ignore[call-arg]
    with http.Session(timeout=LONG) as session:
        assert session.get(f"{server.url}/ok").text == "ok"
    with pytest.raises(TypeError, match="timeout"):
        http.PoolManager().request("GET", f"{server.url}/ok")
    plain = requests.Session()
    plain.mount("http://", http.HTTPAdapter())
    with plain, pytest.raises(TypeError, match="timeout"):
        plain.get(f"{server.url}/ok")


def test_a_bad_stop_is_refused_naming_it(server: HTTPServer) -> None:
    with pytest.raises(TypeError, match="stop"):
        http.get(f"{server.url}/ok", timeout=1, stop="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stop"):
        http.Session(stop="no")  # type: ignore[arg-type]


def test_a_set_stop_raises_at_once_with_no_io(server: HTTPServer) -> None:
    stop = StopEvent()
    stop.set("done")
    before = len(server.connections)
    with pytest.raises(Stopped, match="done"):
        http.get(f"{server.url}/ok", timeout=LONG, stop=stop)
    with http.Session(stop=stop, timeout=LONG) as session, pytest.raises(Stopped):
        session.get(f"{server.url}/ok")
    with pytest.raises(Stopped):
        http.PoolManager(stop=stop).request("GET", f"{server.url}/ok", timeout=LONG)
    assert len(server.connections) == before


# --- the fault matrix ------------------------------------------------------------------


@contextlib.contextmanager
def _session_get(path: str, **kwargs: Any) -> Iterator[Call]:
    with HTTPServer() as srv, http.Session() as session:
        yield lambda stop, timeout: session.get(
            f"{srv.url}{path}", timeout=timeout, stop=stop, **kwargs
        )
        assert_no_live_pooled_connection(session)


@contextlib.contextmanager
def _streamed(path: str) -> Iterator[Call]:
    with HTTPServer() as srv, http.Session() as session:

        def call(stop: Any, timeout: float) -> bytes:
            with session.get(f"{srv.url}{path}", stream=True, timeout=timeout, stop=stop) as r:
                return b"".join(r.iter_content(1))

        yield call
        assert_no_live_pooled_connection(session)


@contextlib.contextmanager
def _https(path: str) -> Iterator[Call]:
    with HTTPServer(tls=True) as srv, http.Session() as session:
        yield lambda stop, timeout: session.get(
            f"{srv.url}{path}", timeout=timeout, stop=stop, verify=tls().ca_path
        )


@contextlib.contextmanager
def _tls_handshake() -> Iterator[Call]:
    with serving(silent) as srv:  # a plain listener: the TLS hello is never answered
        yield lambda stop, timeout: http.get(
            f"https://127.0.0.1:{srv.port}/", timeout=timeout, stop=stop
        )


@contextlib.contextmanager
def _connect() -> Iterator[Call]:
    with FullBacklog() as full:
        yield lambda stop, timeout: http.get(
            f"http://127.0.0.1:{full.port}/", timeout=timeout, stop=stop
        )


@contextlib.contextmanager
def _resolver() -> Iterator[Call]:
    resolver = StuckResolver()
    previous = net.set_resolver(resolver)  # the documented hook: no global patching
    try:
        yield lambda stop, timeout: http.get("http://stuck.test:9/", timeout=timeout, stop=stop)
    finally:
        net.set_resolver(previous)
        resolver.release()
        resolver.wait_idle()


@contextlib.contextmanager
def _pool() -> Iterator[Call]:
    with HTTPServer() as srv, http.Session() as session:
        session.mount("http://", http.HTTPAdapter(pool_maxsize=1, pool_block=True))
        holder = session.get(f"{srv.url}/drip", stream=True, timeout=LONG)  # holds the only one
        try:
            yield lambda stop, timeout: session.get(f"{srv.url}/ok", timeout=timeout, stop=stop)
        finally:
            holder.close()


@contextlib.contextmanager
def _upload() -> Iterator[Call]:
    data = b"u" * (64 << 20)  # more than any socket buffers hold
    with HTTPServer() as srv, http.Session() as session:
        yield lambda stop, timeout: session.post(
            f"{srv.url}/no-read", data=data, timeout=timeout, stop=stop
        )


@contextlib.contextmanager
def _urllib3(path: str) -> Iterator[Call]:
    with HTTPServer() as srv:
        manager = http.PoolManager()
        yield lambda stop, timeout: manager.request(
            "GET", f"{srv.url}{path}", timeout=timeout, stop=stop
        )
        manager.clear()


HEADERS = "waiting for the response headers"
BODY = "reading the response body"


@dataclass
class Scenario:
    """A request that blocks in one phase until its deadline or a stop."""

    make: Callable[[], contextlib.AbstractContextManager[Call]]
    error: type[Exception]  # what its deadline raises
    phase: str  # what its message says


SCENARIOS = {
    "silent after accept": Scenario(lambda: _session_get("/silent"), http.ReadDeadline, HEADERS),
    "headers never finished": Scenario(
        lambda: _session_get("/stall-headers"), http.ReadDeadline, HEADERS
    ),
    **{
        f"body drip ({framing})": Scenario(
            functools.partial(_session_get, f"/drip?framing={framing}"), http.ReadDeadline, BODY
        )
        for framing in ("length", "chunked", "close")
    },
    **{
        f"streamed body drip ({framing})": Scenario(
            functools.partial(_streamed, f"/drip?framing={framing}"), http.ReadDeadline, BODY
        )
        for framing in ("length", "chunked", "close")
    },
    "HTTPS body drip": Scenario(lambda: _https("/drip"), http.ReadDeadline, BODY),
    "TLS handshake stall": Scenario(_tls_handshake, http.ConnectDeadline, "TLS handshake"),
    "connect hang (accept queue full)": Scenario(_connect, http.ConnectDeadline, "connecting to"),
    "stuck resolver": Scenario(_resolver, http.ConnectDeadline, "resolving 'stuck.test'"),
    "exhausted pool (pool_block)": Scenario(_pool, http.PoolWaitDeadline, "free connection"),
    "upload to a peer that never reads": Scenario(
        _upload, http.RequestDeadline, "sending the request"
    ),
    "urllib3: silent after accept": Scenario(
        lambda: _urllib3("/silent"), urllib3.exceptions.ReadTimeoutError, HEADERS
    ),
    "urllib3: body drip": Scenario(
        lambda: _urllib3("/drip?framing=close"), urllib3.exceptions.ReadTimeoutError, BODY
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_phase_ends_by_its_deadline(name: str) -> None:
    case = SCENARIOS[name]
    with case.make() as call:
        started = time.monotonic()
        with pytest.raises(case.error) as info:
            call(None, SHORT)
        elapsed = time.monotonic() - started
    error = info.value
    assert isinstance(error, DeadlineExceeded)
    assert isinstance(error, http.RequestDeadline)
    assert isinstance(error, requests.exceptions.Timeout)
    assert isinstance(error, urllib3.exceptions.TimeoutError)
    assert isinstance(error, socket.timeout)
    assert error.timeout == SHORT
    message = str(error)
    assert case.phase in message, message
    assert f"after {SHORT:g} s" in message, message
    assert SHORT * 0.95 <= elapsed < SHORT + OVERSHOOT, elapsed


@pytest.mark.usefixtures("no_polling")
@pytest.mark.parametrize("name", SCENARIOS)
def test_each_phase_ends_at_once_by_a_stop(name: str) -> None:
    with SCENARIOS[name].make() as call:
        stop_while_blocked(lambda stop: call(stop, LONG))


def test_the_connect_phase_is_classified_by_requests_as_connect_timeout() -> None:
    with _connect() as call, pytest.raises(requests.exceptions.ConnectTimeout) as info:
        call(None, SHORT)
    assert isinstance(info.value, requests.exceptions.ConnectionError)  # as requests has it
    assert isinstance(info.value, urllib3.exceptions.ConnectTimeoutError)


# --- a body is never cut short ----------------------------------------------------------


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_reset_mid_body_raises(server: HTTPServer, framing: str) -> None:
    with pytest.raises(
        (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    ):
        http.get(f"{server.url}/reset?framing={framing}", timeout=LONG)


@pytest.mark.usefixtures("no_polling")
def test_a_stopped_close_delimited_body_never_looks_complete(server: HTTPServer) -> None:
    with http.Session(timeout=LONG) as session:
        stop = StopEvent()
        response = session.get(
            f"{server.url}/drip?framing=close&interval=0.01", stream=True, stop=stop
        )
        received = bytearray()

        def read() -> None:
            for chunk in response.iter_content(1):
                received.extend(chunk)

        _, outcome = start_call(read)
        wait_until(lambda: len(received) >= 3)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
        with pytest.raises((Stopped, requests.exceptions.RequestException, RuntimeError)):
            response.content  # noqa: B018 - never the short body as if complete


def test_a_shut_down_close_delimited_body_never_looks_complete(server: HTTPServer) -> None:
    # urllib3's HTTPResponse.shutdown() wakes a blocked read with an end of file: the
    # trap of a close-delimited body looking whole. Here it raises instead.
    with http.Session(timeout=LONG) as session:
        response = session.get(f"{server.url}/drip?framing=close&interval=5", stream=True)
        thread, outcome = start_call(lambda: b"".join(response.iter_content(1)))
        wait_until_blocked(thread)
        response.raw.shutdown()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, requests.exceptions.ChunkedEncodingError), outcome
        with pytest.raises(requests.exceptions.RequestException):
            response.content  # noqa: B018 - never the short body as if complete
        assert session.get(f"{server.url}/ok").text == "ok"


def test_a_stopped_connection_is_closed_and_the_session_goes_on(server: HTTPServer) -> None:
    with http.Session(timeout=LONG) as session:
        assert session.get(f"{server.url}/ok").text == "ok"
        for path in ("/silent", "/drip?framing=length", "/drip?framing=chunked"):
            stop = StopEvent()
            thread, outcome = start_call(
                functools.partial(session.get, f"{server.url}{path}", stop=stop)
            )
            wait_until_blocked(thread)
            stop.set()
            assert outcome.done.wait(WAKE_BOUND)
            assert isinstance(outcome.error, Stopped)
            assert_no_live_pooled_connection(session)
            assert session.get(f"{server.url}/ok").text == "ok"
        with pytest.raises(http.ReadDeadline):
            session.get(f"{server.url}/silent", timeout=SHORT)
        assert_no_live_pooled_connection(session)
        assert session.get(f"{server.url}/ok").text == "ok"


def test_100_stopped_requests_leave_no_fd_or_thread(server: HTTPServer) -> None:
    with http.Session(timeout=LONG) as session:
        assert session.get(f"{server.url}/ok").text == "ok"
        gc.collect()
        fds, threads = open_fds(), threading.active_count()
        for _ in range(100):
            stop = StopEvent()
            thread, outcome = start_call(
                functools.partial(session.get, f"{server.url}/silent", stop=stop)
            )
            wait_until_blocked(thread)
            stop.set()
            assert outcome.done.wait(WAKE_BOUND)
            thread.join(LONG)
            assert isinstance(outcome.error, Stopped)
            assert stop._callback_count() == 0
        assert session.get(f"{server.url}/ok").text == "ok"
        del stop, thread, outcome
        gc.collect()
        # At most as many as before (earlier tests' helper threads may exit meanwhile).
        wait_until(
            lambda: open_fds() <= fds and threading.active_count() <= threads, what="cleanup"
        )


def half_closed_sockets() -> list[socket.socket]:
    """Sockets closed while a ``makefile()`` file still holds them: their descriptor
    stays open until that file is closed, or, if nothing closes it, until the garbage
    collector does (a ``ResourceWarning``, "unclosed <socket.socket [closed] ...>")."""
    return [
        candidate
        for candidate in gc.get_objects()
        if isinstance(candidate, socket.socket)
        and candidate._closed  # type: ignore[attr-defined]
        and candidate.fileno() != -1
    ]


def test_half_closed_sockets_are_found() -> None:
    a, b = socket.socketpair()
    with b:
        reader = a.makefile("rb")
        a.close()
        assert half_closed_sockets() == [a]
        reader.close()
        assert half_closed_sockets() == []


@pytest.fixture(scope="module")
def https_server() -> Iterator[HTTPServer]:
    with HTTPServer(tls=True) as running:
        yield running


# (label, call(stop, urls)): each interrupted in a different phase of a request.
INTERRUPTED: dict[str, Callable[[StopEvent, dict[str, str]], object]] = {
    "headers": lambda stop, u: http.get(f"{u['http']}/silent", timeout=LONG, stop=stop),
    "half the status line": lambda stop, u: http.get(
        f"{u['http']}/stall-headers", timeout=LONG, stop=stop
    ),
    "a body with a length": lambda stop, u: http.get(
        f"{u['http']}/drip?framing=length", timeout=LONG, stop=stop
    ),
    "a chunked body": lambda stop, u: http.get(
        f"{u['http']}/drip?framing=chunked", timeout=LONG, stop=stop
    ),
    "a close-delimited body": lambda stop, u: http.get(
        f"{u['http']}/drip?framing=close", timeout=LONG, stop=stop
    ),
    "a streamed body": lambda stop, u: (
        http.get(f"{u['http']}/drip", timeout=LONG, stop=stop, stream=True).content
    ),
    "an upload": lambda stop, u: http.post(
        f"{u['http']}/no-read", data=b"x" * (64 << 20), timeout=LONG, stop=stop
    ),
    "urllib3's preload": lambda stop, u: http.PoolManager(timeout=LONG).request(
        "GET", f"{u['http']}/drip", stop=stop
    ),
    "urllib3's stream": lambda stop, u: (
        http.PoolManager(timeout=LONG)
        .request("GET", f"{u['http']}/drip", stop=stop, preload_content=False)
        .read()
    ),
    "TLS headers": lambda stop, u: http.get(
        f"{u['https']}/silent", timeout=LONG, stop=stop, verify=tls().ca_path
    ),
    "a TLS handshake": lambda stop, u: http.get(u["handshake"], timeout=LONG, stop=stop),
    "a CONNECT tunnel": lambda stop, u: http.get(
        "https://127.0.0.1:1/", timeout=LONG, stop=stop, proxies={"https": u["proxy"]}
    ),
}


# Every phase stopped; a deadline (the same clean-up, another error) in a few of them.
@pytest.mark.parametrize(
    ("phase", "how"),
    [(phase, "stop") for phase in INTERRUPTED]
    + [
        (phase, "deadline")
        for phase in ("headers", "a chunked body", "TLS headers", "a CONNECT tunnel")
    ],
)
def test_an_interrupted_request_leaves_no_file_holding_its_socket(
    server: HTTPServer, https_server: HTTPServer, phase: str, how: str
) -> None:
    # The connection is dead: closed at once, its descriptor too, even while the error
    # (and so its traceback's frames, which may hold the response's file) is kept and
    # no garbage collection runs.
    with serving(silent) as quiet:
        urls = {
            "http": server.url,
            "https": https_server.url,
            "handshake": f"https://127.0.0.1:{quiet.port}/",
            "proxy": f"http://127.0.0.1:{quiet.port}",
        }
        stop = StopEvent()
        collecting = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            if how == "stop":
                thread, outcome = start_call(lambda: INTERRUPTED[phase](stop, urls))
                wait_until_blocked(thread)
                stop.set()
                assert outcome.done.wait(WAKE_BOUND)
                error = outcome.error
            else:
                with scope(timeout=SHORT), pytest.raises(DeadlineExceeded) as info:
                    INTERRUPTED[phase](stop, urls)
                error = info.value
            assert isinstance(error, Stopped | DeadlineExceeded), error
            assert half_closed_sockets() == [], error
        finally:
            if collecting:
                gc.enable()


# --- one deadline for everything ----------------------------------------------------------


def test_redirects_share_the_deadline(server: HTTPServer) -> None:
    with http.Session() as session:
        response = session.get(f"{server.url}/hops?n=3", timeout=LONG)
        assert response.text == "arrived"
        assert len(response.history) == 3
        started = time.monotonic()
        # Each hop answers in 0.15 s, well within a per-hop timeout; five take 0.75 s.
        # (Which phase the deadline falls in depends on the machine's load: on a busy
        # one it may pass between two hops, before the next is sent.)
        with pytest.raises(http.RequestDeadline):
            session.get(f"{server.url}/hops?n=5&delay=0.15", timeout=0.4)
        assert time.monotonic() - started < 0.4 + OVERSHOOT


def test_every_address_shares_the_connect_deadline(server: HTTPServer) -> None:
    # The name has two addresses; the first never accepts. Each gets a share of the
    # one timeout, so the second is reached in time (requests gives each the whole).
    with FullBacklog() as full:
        table = {"multi.test": [("127.0.0.1", full.port), ("127.0.0.1", server.port)]}
        previous = net.set_resolver(static_resolver(table))
        try:
            started = time.monotonic()
            assert http.get("http://multi.test/ok", timeout=1.0).text == "ok"
            assert time.monotonic() - started < 1.0
        finally:
            net.set_resolver(previous)


def test_urllib3_redirects_and_retries_share_the_deadline(server: HTTPServer) -> None:
    manager = http.PoolManager(timeout=LONG)
    assert manager.request("GET", f"{server.url}/hops?n=2").data == b"arrived"
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        manager.request("GET", f"{server.url}/hops?n=5&delay=0.15", timeout=0.4)
    assert time.monotonic() - started < 0.4 + OVERSHOOT
    with FullBacklog() as full:  # default retries (3): still one deadline, not four
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ConnectTimeoutError):
            manager.request("GET", f"http://127.0.0.1:{full.port}/", timeout=SHORT)
        assert time.monotonic() - started < SHORT + OVERSHOOT
    read_retries = Retry(total=5, read=5)
    started = time.monotonic()
    with pytest.raises(http.ReadDeadline):
        manager.request("GET", f"{server.url}/silent", timeout=SHORT, retries=read_retries)
    assert time.monotonic() - started < SHORT + OVERSHOOT
    manager.clear()


def test_a_retry_after_past_the_deadline_fails_at_once(server: HTTPServer) -> None:
    retry = Retry(total=3, status_forcelist=[503], respect_retry_after_header=True)
    with http.Session(timeout=2) as session:
        session.mount("http://", http.HTTPAdapter(max_retries=retry))
        started = time.monotonic()
        with pytest.raises(http.RequestDeadline, match="Retry-After") as info:
            session.get(f"{server.url}/status?code=503&retry_after=30")
        assert time.monotonic() - started < 1.0
    assert "would pass the deadline" in str(info.value)


@pytest.mark.usefixtures("no_polling")
def test_a_retry_backoff_is_stopped_at_once(server: HTTPServer) -> None:
    # The second retry waits 20 s (backoff_factor 10): the stop ends that wait.
    retry = Retry(total=3, status_forcelist=[503], backoff_factor=10)
    with http.Session(timeout=LONG) as session:
        session.mount("http://", http.HTTPAdapter(max_retries=retry))
        stop = StopEvent()
        thread, outcome = start_call(lambda: session.get(f"{server.url}/status", stop=stop))
        wait_until(lambda: sum(r.path == "/status" for r in server.requests) >= 2)
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
    assert retry.total == 3  # the adapter's own Retry object is not changed


def test_an_enclosing_scope_bounds_and_stops_requests(server: HTTPServer) -> None:
    with scope(timeout=SHORT), pytest.raises(http.ReadDeadline, match="enclosing") as info:
        http.get(f"{server.url}/silent", timeout=LONG)
    assert info.value.timeout == SHORT
    stop = StopEvent()

    def in_scope() -> object:
        with scope(stop=stop):
            return http.get(f"{server.url}/silent", timeout=LONG)

    thread, outcome = start_call(in_scope)
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_a_streamed_body_keeps_its_deadline_after_the_call(server: HTTPServer) -> None:
    with http.Session() as session:
        started = time.monotonic()
        response = session.get(f"{server.url}/drip?interval=0.02", stream=True, timeout=0.5)
        assert response.status_code == 200
        with pytest.raises(http.ReadDeadline, match="body"):
            for _ in response.raw.stream(1):
                pass
        elapsed = time.monotonic() - started
    assert 0.5 * 0.95 <= elapsed < 0.5 + OVERSHOOT


def test_stall_timeout_limits_each_wait_beside_the_total(server: HTTPServer) -> None:
    with http.Session(timeout=LONG) as session:
        started = time.monotonic()
        with pytest.raises(http.ReadDeadline, match=r"no progress for 0\.1 s") as info:
            session.get(f"{server.url}/drip?interval=5", stall_timeout=0.1)
        assert time.monotonic() - started < 0.1 + OVERSHOOT
        assert info.value.timeout == 0.1
        with pytest.raises(http.ReadDeadline, match=f"after {SHORT:g} s"):
            session.get(f"{server.url}/drip?interval=0.02", stall_timeout=5, timeout=SHORT)


def test_a_plain_event_as_stop_is_polled(server: HTTPServer) -> None:
    previous = stoppable.set_poll_interval(0.01)
    try:
        stop = threading.Event()
        thread, outcome = start_call(
            lambda: http.get(f"{server.url}/silent", timeout=LONG, stop=stop)
        )
        wait_until_blocked(thread)
        stop.set()
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
    finally:
        stoppable.set_poll_interval(previous)


@pytest.mark.usefixtures("no_polling")
def test_a_session_stop_ends_all_its_requests(server: HTTPServer) -> None:
    stop = StopEvent()
    with http.Session(stop=stop, timeout=LONG) as session:
        calls = [
            start_call(lambda p=path: session.get(f"{server.url}{p}"))  # type: ignore[misc]
            for path in ("/silent", "/drip", "/stall-headers")
        ]
        for thread, _ in calls:
            wait_until_blocked(thread)
        stop.set("closing")
        for _, outcome in calls:
            assert outcome.done.wait(WAKE_BOUND)
            assert isinstance(outcome.error, Stopped)
            assert outcome.error.reason == "closing"


def test_the_adapter_bounds_a_plain_requests_session(server: HTTPServer) -> None:
    with requests.Session() as plain:
        plain.mount("http://", http.HTTPAdapter())
        assert plain.get(f"{server.url}/ok", timeout=LONG).text == "ok"
        started = time.monotonic()
        with pytest.raises(http.ReadDeadline):
            plain.get(f"{server.url}/drip?interval=0.02", timeout=SHORT)
        assert time.monotonic() - started < SHORT + OVERSHOOT


# --- TLS settings cannot race ---------------------------------------------------------------


def test_concurrent_requests_with_different_verify_cannot_race(tls_server: HTTPServer) -> None:
    url = f"{tls_server.url}/ok"
    outcomes: dict[str, list[object]] = {"ca": [], "default": [], "off": []}
    settings: dict[str, object] = {"ca": tls().ca_path, "default": True, "off": False}

    def worker(name: str) -> None:
        with http.Session(timeout=LONG) as session:
            for _ in range(15):
                try:
                    outcomes[name].append(session.get(url, verify=settings[name]).text)
                except requests.exceptions.SSLError as exc:
                    outcomes[name].append(type(exc))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        threads = [
            threading.Thread(target=worker, args=(name,)) for name in settings for _ in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LONG)
    assert outcomes["ca"] == ["ok"] * 30
    assert outcomes["off"] == ["ok"] * 30
    assert outcomes["default"] == [requests.exceptions.SSLError] * 30


# --- proxies and credentials ---------------------------------------------------------------


def chain_text(error: BaseException) -> str:
    """Everything the error and the errors it wraps say."""
    seen, parts, todo = set(), [], [error]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        parts.append(f"{item!s} {item!r}")
        todo.extend(e for e in (item.__cause__, item.__context__) if e is not None)
    return "\n".join(parts)


def test_credentials_never_appear_in_errors(server: HTTPServer) -> None:
    url = f"http://user:secret@127.0.0.1:{server.port}/silent?token=hunter2"
    with pytest.raises(http.ReadDeadline) as info:
        http.get(url, timeout=SHORT)
    assert "secret" not in chain_text(info.value)
    assert "hunter2" not in str(info.value)
    assert "***@127.0.0.1" in str(info.value)
    # A proxy that never accepts, then one that never answers (the test server).
    with FullBacklog() as full:
        for proxy_port, error in (
            (full.port, http.ConnectDeadline),
            (server.port, http.ReadDeadline),
        ):
            proxies = {"http": f"http://user:secret@127.0.0.1:{proxy_port}"}
            with pytest.raises(error) as proxied:
                http.get("http://target.test/silent", timeout=SHORT, proxies=proxies)
            assert "secret" not in chain_text(proxied.value)


def test_http_proxies_forward_and_tunnel(server: HTTPServer, tls_server: HTTPServer) -> None:
    with HTTPServer(proxy=True) as proxy:
        proxies = {
            "http": f"http://user:pw@{proxy.host}:{proxy.port}",
            "https": f"http://{proxy.host}:{proxy.port}",
        }
        with http.Session(timeout=LONG) as session:
            response = session.get(f"{server.url}/ok", proxies=proxies)
            assert response.text == f"proxied {server.url}/ok"
            assert "proxy-authorization" in proxy.requests[-1].headers
            tunneled = session.get(f"{tls_server.url}/ok", proxies=proxies, verify=tls().ca_path)
            assert tunneled.text == "ok"
            assert proxy.requests[-1].method == "CONNECT"
        with pytest.raises(requests.exceptions.InvalidSchema):
            http.get(f"{server.url}/ok", timeout=LONG, proxies={"http": "socks5://127.0.0.1:1"})


def test_timeout_errors_pickle() -> None:
    error = http.ReadDeadline("GET http://h/ timed out", timeout=2.0, phase="reading")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is http.ReadDeadline
    assert (str(copy), copy.timeout) == (str(error), 2.0)


# --- the example -------------------------------------------------------------------------


def test_the_crawler_example_runs_to_completion() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "crawler.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "over budget" in result.stdout
    assert "200" in result.stdout


def test_ctrl_c_stops_every_crawler_worker_at_once() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "crawler.py"), "--budget", "60", "--workers", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the crawler says when every worker is blocked
            if "all workers busy" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=LONG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=LONG)
    assert proc.returncode == 0, err
    stopped = [line for line in out.splitlines() if "stopped" in line and " ms after" in line]
    assert stopped, out
    for line in stopped:
        assert float(line.split(" ms after")[0].split()[-1]) < 1000, line


# --- drop-in: what urllib3 does with the same arguments --------------------------------


def outcome(call: Callable[[], Any]) -> object:
    """A request's status, or the class of urllib3 error it raised (a comparable result)."""
    try:
        response = call()
    except urllib3.exceptions.HTTPError as exc:
        return type(exc).__mro__[
            [c.__module__ for c in type(exc).__mro__].index("urllib3.exceptions")
        ]
    return response.status


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        (False, 302),
        (0, urllib3.exceptions.MaxRetryError),
        (1, urllib3.exceptions.MaxRetryError),
        (3, 200),
        (Retry(1, redirect=False), 302),
        (None, 200),
    ],
)
def test_a_managers_retries_reach_its_pools_as_in_urllib3(
    server: HTTPServer, retries: object, expected: object
) -> None:
    url = f"{server.url}/hops?n=2"
    kwargs: dict[str, Any] = {} if retries is None else {"retries": retries}
    ours = http.PoolManager(timeout=LONG, **kwargs)
    theirs = urllib3.PoolManager(timeout=LONG, **kwargs)
    try:
        assert outcome(lambda: theirs.request("GET", url)) == expected
        assert outcome(lambda: ours.request("GET", url)) == expected
    finally:
        ours.clear()
        theirs.clear()


def test_pools_from_a_manager_keep_its_timeout_and_stop(server: HTTPServer) -> None:
    stop = StopEvent()
    manager = http.PoolManager(timeout=SHORT, stop=stop)
    pool = manager.connection_from_url(server.url)
    assert isinstance(pool, http.HTTPConnectionPool)
    assert pool.request("GET", "/ok").data == b"ok"  # the manager's timeout applies
    started = time.monotonic()
    with pytest.raises(http.ReadDeadline):
        pool.request("GET", "/silent", retries=False)
    assert time.monotonic() - started < SHORT + OVERSHOOT
    stop.set("done")
    with pytest.raises(Stopped):
        manager.connection_from_host("127.0.0.1", server.port).request("GET", "/ok")
    manager.clear()


def test_a_connection_taken_from_a_pool_works_outside_its_requests(
    server: HTTPServer, tls_server: HTTPServer
) -> None:
    stop = StopEvent()
    pool = http.HTTPConnectionPool("127.0.0.1", server.port, timeout=SHORT, stop=stop)
    conn = pool._get_conn()
    conn.request("GET", "/ok")
    assert conn.getresponse().data == b"ok"
    conn.request("GET", "/silent")
    started = time.monotonic()
    with pytest.raises(http.ReadDeadline):  # the pool's timeout, for this call
        conn.getresponse()
    assert time.monotonic() - started < SHORT + OVERSHOOT
    conn.close()
    fresh = pool._new_conn()
    fresh.connect()
    fresh.request("GET", "/ok")
    assert fresh.getresponse().data == b"ok"
    stop.set("enough")
    with pytest.raises(Stopped, match="enough"):  # the pool's stop
        fresh.request("GET", "/ok")
    fresh.close()
    tls_pool = http.HTTPSConnectionPool(
        "127.0.0.1", tls_server.port, timeout=LONG, ca_certs=tls().ca_path
    )
    secure = tls_pool._new_conn()
    secure.connect()
    assert secure.is_verified
    secure.request("GET", "/ok")
    assert secure.getresponse().data == b"ok"
    secure.close()


def test_a_connection_made_directly_uses_its_own_timeout(server: HTTPServer) -> None:
    conn = http.HTTPConnection("127.0.0.1", server.port, timeout=LONG)
    conn.request("GET", "/ok")
    assert conn.getresponse().data == b"ok"
    conn.close()
    unbounded = http.HTTPConnection("127.0.0.1", server.port)
    with pytest.raises(TypeError, match="timeout is required"):
        unbounded.connect()


def test_urllib3s_classes_can_be_replaced_by_subclasses_of_ours(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Proxy(http.ProxyManager):
        pass

    class Manager(http.PoolManager):
        pass

    monkeypatch.setattr(urllib3, "ProxyManager", Proxy)
    monkeypatch.setattr(urllib3, "PoolManager", Manager)
    monkeypatch.setattr(urllib3.poolmanager, "ProxyManager", Proxy)
    monkeypatch.setattr(urllib3.poolmanager, "PoolManager", Manager)
    with HTTPServer(proxy=True) as proxy:
        manager = urllib3.ProxyManager(proxy.url, timeout=LONG)
        assert isinstance(manager, http.ProxyManager)
        response = manager.request("GET", f"{server.url}/ok")
        assert response.data == f"proxied {server.url}/ok".encode()
        manager.clear()
    plain = urllib3.PoolManager(timeout=LONG)
    assert plain.request("GET", f"{server.url}/ok").data == b"ok"
    plain.clear()


def test_a_replaced_create_connection_is_honoured_as_urllib3_does(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3.util.connection as connection

    original = connection.create_connection
    calls: list[tuple[Any, Any]] = []

    def pinned(address: tuple[str, int], timeout: Any = None, **kwargs: Any) -> socket.socket:
        calls.append((address, timeout))  # a resolver of its own: pinned.test is loopback
        return original(("127.0.0.1", address[1]), timeout, **kwargs)

    monkeypatch.setattr(connection, "create_connection", pinned)
    url = f"http://pinned.test:{server.port}"
    assert http.get(f"{url}/ok", timeout=LONG).text == "ok"
    assert calls[0][0] == ("pinned.test", server.port)
    assert 0 < calls[0][1] <= LONG  # the time left
    started = time.monotonic()
    with pytest.raises(http.ReadDeadline):  # the socket it made is bounded as usual
        http.get(f"{url}/silent", timeout=SHORT)
    assert time.monotonic() - started < SHORT + OVERSHOOT


def test_a_urllib3_timeout_with_only_a_total_is_one_total(server: HTTPServer) -> None:
    manager = http.PoolManager(timeout=urllib3.Timeout(total=LONG))  # type: ignore[arg-type]
    assert manager.timeout == LONG
    started = time.monotonic()
    with pytest.raises(http.ReadDeadline):
        manager.request("GET", f"{server.url}/silent", timeout=urllib3.Timeout(total=SHORT))
    assert time.monotonic() - started < SHORT + OVERSHOOT
    manager.clear()

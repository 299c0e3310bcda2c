"""stoppable.guard around real third-party clients that know nothing of stoppable.

Each test runs an unmodified client (http.client, urllib.request, smtplib, ftplib,
imaplib, requests, redis-py, PyMySQL, botocore, paramiko) against a loopback peer
that misbehaves (silent, dripping, a TLS handshake that never completes, a peer that
never reads) or against a real Redis server, with no timeout of the client's own, and
checks the guard's error rules:

- the deadline ends the call, on time, with ``DeadlineExceeded`` (also a
  ``socket.timeout``), whatever the client made of it on the way (``smtplib``'s
  ``SMTPServerDisconnected``, ``urllib``'s ``URLError``, botocore's and requests'
  wrappers): the guard's exit raises it chained from what came out of the block;
- a stop ends the call at once with ``Stopped`` and its reason;
- a client's retries (botocore, redis-py, with a sleep captured at import time) do not
  stretch the deadline;
- a connection interrupted mid-exchange is not reused half-read: the client's next
  call works;
- a socket's own, earlier timeout still raises what it raises without a guard.

Ready signals come from the peers (a request arrived, Redis lists the client as
blocked) or from the client thread's stack (inside the client's read, so past its
connect), never from sleeps. After each interrupted call, no socket may be left for the
garbage collector to close.
"""

from __future__ import annotations

import ftplib
import gc
import http.client
import imaplib
import smtplib
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import botocore.config
import botocore.session
import paramiko
import pymysql
import pytest
import redis
import redis.backoff
import redis.retry
import requests

import stoppable
from stoppable import DeadlineExceeded, StopEvent, Stopped

from .http_servers import ROUTES, HTTPServer, Request, _Reader, body_bytes, respond
from .net_servers import FullBacklog, LoopbackServer, serving, silent, tls
from .redis_server import RedisServer
from .support import LONG, SHORT, WAKE_BOUND, start_call, wait_until

# --- the two checks every test makes ---------------------------------------------------


def deadline_ends(block: Callable[[], object], timeout: float = SHORT) -> DeadlineExceeded:
    """Run ``block()`` inside ``guard(timeout=timeout)``: it must end by the deadline.

    Not early, and well within ``WAKE_BOUND`` after it; the error is ``DeadlineExceeded``
    and a ``socket.timeout`` too. Returns it, for checks of its cause.
    """
    started = time.monotonic()
    error: DeadlineExceeded | None = None
    try:  # not pytest.raises: its record would keep the interrupted frames alive
        with stoppable.guard(timeout=timeout):
            block()
    except DeadlineExceeded as exc:
        error = exc
    elapsed = time.monotonic() - started
    assert error is not None, f"the block returned after {elapsed:.3f} s"
    assert elapsed >= timeout - 0.001, f"ended {elapsed:.3f} s into a {timeout} s guard"
    assert elapsed < timeout + WAKE_BOUND, f"ended {elapsed:.3f} s into a {timeout} s guard"
    assert isinstance(error, socket.timeout)
    assert_nothing_left_to_the_collector(error)
    return error


def stop_ends(
    ready: Callable[[threading.Thread], object],
    block: Callable[[], object],
    reason: str = "shutdown",
) -> Stopped:
    """Run ``block()`` inside ``guard(stop=stop)`` in a thread; once ``ready(thread)``
    returns (the peer saw the call, or the thread is in the client's wait), set the
    stop: the call must end at once by ``Stopped``."""
    stop = StopEvent()

    def guarded() -> object:
        with stoppable.guard(stop=stop):
            return block()

    thread, outcome = start_call(guarded, name="client")
    ready(thread)
    assert not outcome.done.is_set(), f"ended before the stop: {outcome.error!r}"
    set_at = time.perf_counter()
    stop.set(reason)
    assert outcome.done.wait(WAKE_BOUND), "the stop did not end the call"
    thread.join(LONG)
    assert isinstance(outcome.error, Stopped), repr(outcome.error)
    assert outcome.error.reason == reason
    assert outcome.ended_at is not None
    assert outcome.ended_at - set_at < WAKE_BOUND
    assert stop._callback_count() == 0, "the guard left a callback on its stop"
    error, outcome.error = outcome.error, None
    assert_nothing_left_to_the_collector(error)
    return error


def assert_nothing_left_to_the_collector(error: BaseException) -> None:
    """Drop ``error``'s tracebacks: no socket may be left open for the collector to close.

    A socket that only the frames of an interrupted call still hold (the standard
    library closes its half-made ones on ``OSError`` only) would be closed by the
    garbage collector, with a ``ResourceWarning``: an fd leaked until then.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        seen: set[int] = set()
        link: BaseException | None = error
        while link is not None and id(link) not in seen:
            seen.add(id(link))
            link.__traceback__ = None
            link = link.__cause__ or link.__context__
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, f"the interrupted call left sockets to the garbage collector: {leaked}"


def in_call(*names: str) -> Callable[[threading.Thread], None]:
    """A ready signal: wait until ``thread`` is inside a function called one of ``names``
    (anywhere on its stack: a client's read, past its connect)."""

    def inside(thread: threading.Thread) -> bool:
        collecting = gc.isenabled()
        gc.disable()  # as support.wait_until_blocked: no collection in _current_frames
        try:
            frame = sys._current_frames().get(thread.ident or -1)
        finally:
            if collecting:
                gc.enable()
        while frame is not None:
            if frame.f_code.co_name in names:
                return True
            frame = frame.f_back
        return False

    return lambda thread: wait_until(lambda: inside(thread), what=f"{thread.name} in {names}")


# --- peers -------------------------------------------------------------------------------


def greet_then_silent(greeting: bytes) -> Callable[[socket.socket, LoopbackServer], None]:
    """Send ``greeting`` (an SMTP/FTP banner), then answer nothing: report what comes."""

    def handler(conn: socket.socket, server: LoopbackServer) -> None:
        conn.sendall(greeting)
        while data := conn.recv(4096):
            server.report(data)

    return handler


def read_one_byte_then_stall(conn: socket.socket, server: LoopbackServer) -> None:
    """Report the first byte of the upload (the client is sending), then never read again."""
    server.report(conn.recv(1))
    server.quit.wait(LONG)


def _answer_503(conn: socket.socket, server: HTTPServer, request: Request, reader: _Reader) -> bool:
    respond(conn, 503, b"<Error><Code>SlowDown</Code></Error>")
    return True


@pytest.fixture
def silent_server() -> Iterator[LoopbackServer]:
    """Accepts, then never sends a byte: also a TLS server that never completes a handshake."""
    with serving(silent) as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    with HTTPServer() as server:
        yield server


DRIP = "/drip?interval=0.05&count=100000"  # headers, then a byte every 50 ms for hours


# --- http.client -------------------------------------------------------------------------


def test_http_client_silent_server_ends_at_the_deadline(http_server: HTTPServer) -> None:
    conn = http.client.HTTPConnection(*http_server.address)  # no timeout: blocks forever

    def call() -> object:
        conn.request("GET", "/silent")
        return conn.getresponse()

    deadline_ends(call)
    conn.close()


def test_http_client_dripping_body_ends_at_the_deadline(http_server: HTTPServer) -> None:
    # Each byte comes well within any per-read timeout: only a total deadline ends it.
    conn = http.client.HTTPConnection(*http_server.address)

    def call() -> object:
        conn.request("GET", DRIP)
        return conn.getresponse().read()

    deadline_ends(call, timeout=0.5)
    conn.close()


def test_http_client_dripping_body_stopped(http_server: HTTPServer) -> None:
    conn = http.client.HTTPConnection(*http_server.address)

    def call() -> object:
        conn.request("GET", DRIP)
        return conn.getresponse().read()

    stop_ends(lambda _: http_server.wait_results(1), call)
    conn.close()


def test_http_client_tls_handshake_that_never_completes(silent_server: LoopbackServer) -> None:
    conn = http.client.HTTPSConnection(*silent_server.address, context=tls().client)
    deadline_ends(lambda: conn.request("GET", "/"))
    conn.close()


def test_http_client_tls_handshake_stopped(silent_server: LoopbackServer) -> None:
    conn = http.client.HTTPSConnection(*silent_server.address, context=tls().client)
    stop_ends(in_call("_create"), lambda: conn.request("GET", "/"))
    conn.close()


@pytest.mark.parametrize("end", ["deadline", "stop"])
def test_http_client_upload_to_a_peer_that_never_reads(end: str) -> None:
    body = bytes(64 << 20)  # far more than the loopback buffers take
    with serving(read_one_byte_then_stall) as server:
        conn = http.client.HTTPConnection(*server.address)

        def call() -> object:
            conn.request("POST", "/upload", body=body)
            return conn.getresponse()

        if end == "deadline":
            deadline_ends(call)
        else:
            stop_ends(lambda _: server.wait_results(1), call)
        conn.close()


def test_http_client_keepalive_connection_made_before_the_guard(http_server: HTTPServer) -> None:
    conn = http.client.HTTPConnection(*http_server.address)
    conn.request("GET", "/ok")
    assert conn.getresponse().read() == b"ok"  # connected, outside any guard

    def call() -> object:
        conn.request("GET", "/silent")  # on the same socket, made before the guard
        return conn.getresponse()

    deadline_ends(call)
    assert len(http_server.connections) == 1
    conn.close()


def test_a_sockets_own_earlier_timeout_still_raises_its_own_error(http_server: HTTPServer) -> None:
    conn = http.client.HTTPConnection(*http_server.address, timeout=SHORT)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info, stoppable.guard(timeout=LONG):
        conn.request("GET", "/silent")
        conn.getresponse()
    assert time.monotonic() - started < SHORT + WAKE_BOUND
    assert not isinstance(info.value, DeadlineExceeded), "the guard's deadline had not passed"
    conn.close()


# --- urllib.request ----------------------------------------------------------------------


def test_urllib_dripping_body_ends_at_the_deadline(http_server: HTTPServer) -> None:
    def call() -> object:
        with urllib.request.urlopen(http_server.url + DRIP) as response:  # noqa: STP100 - the guard bounds it
            return response.read()

    deadline_ends(call, timeout=0.5)


def test_urllib_connect_that_hangs_rewritten_as_urlerror() -> None:
    # urllib turns the connect's timeout into URLError: the guard's exit restores it.
    with FullBacklog() as full:
        url = f"http://{full.host}:{full.port}/"
        error = deadline_ends(lambda: urllib.request.urlopen(url))  # noqa: STP100 - the guard bounds it
    assert isinstance(error.__cause__, urllib.error.URLError)


def test_urllib_silent_server_stopped(http_server: HTTPServer) -> None:
    stop_ends(
        lambda _: http_server.wait_requests(1),
        lambda: urllib.request.urlopen(http_server.url + "/silent"),  # noqa: STP100 - the guard bounds it
    )


# --- smtplib, ftplib, imaplib -------------------------------------------------------------


def test_smtplib_server_that_never_greets(silent_server: LoopbackServer) -> None:
    # smtplib rewrites the timeout as SMTPServerDisconnected: the guard's exit restores it.
    smtp = smtplib.SMTP()  # noqa: STP103 - the guard bounds it
    error = deadline_ends(lambda: smtp.connect(*silent_server.address))
    assert isinstance(error.__cause__, smtplib.SMTPServerDisconnected)
    smtp.close()


def test_smtplib_server_that_never_greets_stopped(silent_server: LoopbackServer) -> None:
    # Stopped is not an OSError: smtplib does not close the socket itself, as after a
    # Ctrl-C. The caller holds the client and closes it.
    smtp = smtplib.SMTP()  # noqa: STP103 - the guard bounds it
    stop_ends(in_call("getreply"), lambda: smtp.connect(*silent_server.address))
    smtp.close()


@pytest.mark.parametrize("end", ["deadline", "stop"])
def test_smtplib_connection_made_before_the_guard(end: str) -> None:
    with serving(greet_then_silent(b"220 test ESMTP\r\n")) as server:
        smtp = smtplib.SMTP(*server.address)  # greeted, outside any guard
        if end == "deadline":
            error = deadline_ends(smtp.noop)
            assert isinstance(error.__cause__, smtplib.SMTPServerDisconnected)
        else:
            stop_ends(lambda _: server.wait_results(1), smtp.noop)
        smtp.close()


def test_ftplib_server_that_never_greets(silent_server: LoopbackServer) -> None:
    ftp = ftplib.FTP()  # noqa: STP103 - the guard bounds it
    deadline_ends(lambda: ftp.connect(*silent_server.address))
    ftp.close()


def test_ftplib_command_stopped() -> None:
    with serving(greet_then_silent(b"220 test FTP\r\n")) as server:
        ftp = ftplib.FTP()  # noqa: STP103 - the guard bounds it
        ftp.connect(*server.address)  # greeted, outside any guard
        stop_ends(lambda _: server.wait_results(1), ftp.pwd)
        ftp.close()


def test_imaplib_server_that_never_greets(silent_server: LoopbackServer) -> None:
    deadline_ends(lambda: imaplib.IMAP4(*silent_server.address))


# --- requests, used directly ---------------------------------------------------------------


def test_requests_dripping_body_ends_at_the_deadline(http_server: HTTPServer) -> None:
    # requests turns the read's timeout into its ConnectionError: the guard restores it.
    error = deadline_ends(lambda: requests.get(http_server.url + DRIP), timeout=0.5)  # noqa: STP100 - the guard bounds it
    assert isinstance(error.__cause__, requests.RequestException)


def test_requests_tls_handshake_that_never_completes(silent_server: LoopbackServer) -> None:
    url = f"https://127.0.0.1:{silent_server.port}/"
    ca = tls().ca_path
    deadline_ends(lambda: requests.get(url, verify=ca))  # noqa: STP100 - the guard bounds it
    stop_ends(
        in_call("_create"),
        lambda: requests.get(url, verify=ca),  # noqa: STP100 - the guard bounds it
    )


def test_requests_session_connection_cut_mid_body_is_not_reused(http_server: HTTPServer) -> None:
    with requests.Session() as session:
        assert session.get(http_server.url + "/ok").text == "ok"  # noqa: STP100 - loopback, answers at once
        deadline_ends(lambda: session.get(http_server.url + DRIP), timeout=0.5)  # noqa: STP100 - the guard bounds it
        # Outside the guard again: a new connection, the whole body, nothing of the drip.
        response = session.get(http_server.url + "/bytes?n=100000")  # noqa: STP100 - loopback, answers at once
        assert response.content == body_bytes(100000)
    assert len(http_server.connections) == 2


# --- redis-py, against a real Redis ------------------------------------------------------


def _client(server: RedisServer, name: str, **kwargs: Any) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, client_name=name, **kwargs)


def _blocked(admin: redis.Redis, name: str) -> bool:
    """Whether Redis lists the client called ``name`` as blocked (in BLPOP)."""
    return any(c.get("name") == name and "b" in c.get("flags", "") for c in admin.client_list())


def _gone(admin: redis.Redis, name: str) -> bool:
    """Whether Redis has closed every connection of the client called ``name``."""
    return not any(c.get("name") == name for c in admin.client_list())


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A second client, for what a test checks or feeds from outside."""
    client = _client(redis_server, "admin", socket_timeout=LONG)
    yield client
    client.close()


def test_redis_blpop_stopped_mid_wait_then_the_client_recovers(
    redis_server: RedisServer, admin: redis.Redis
) -> None:
    name, key = redis_server.key("stopped"), redis_server.key("jobs")
    client = _client(redis_server, name, socket_timeout=None)  # BLPOP 0: waits forever
    assert client.ping()  # the pooled connection is made outside the guard
    stop_ends(
        lambda _: wait_until(lambda: _blocked(admin, name), what="BLPOP to block"),
        lambda: client.blpop([key], timeout=0),
    )
    # The interrupted connection was closed, not handed back to the pool half-read...
    wait_until(lambda: _gone(admin, name), what="the interrupted connection to close")
    admin.rpush(key, "job-1")
    # ...so the same client's next commands work, and the job was not swallowed by it.
    assert client.lpop(key) == b"job-1"
    assert client.ping()
    client.close()


@pytest.mark.parametrize("socket_timeout", [None, LONG])
def test_redis_blpop_ends_at_the_deadline_then_the_client_recovers(
    redis_server: RedisServer, admin: redis.Redis, socket_timeout: float | None
) -> None:
    # redis-py retries a timed-out command (10 times by default, sleeping between them
    # with a `sleep` it imported at import time): none of that outlasts the deadline.
    name, key = redis_server.key("deadline"), redis_server.key("jobs")
    client = _client(redis_server, name, socket_timeout=socket_timeout)
    assert client.ping()
    deadline_ends(lambda: client.blpop([key], timeout=0))
    wait_until(lambda: _gone(admin, name), what="the interrupted connection to close")
    admin.rpush(key, "job-2")
    assert client.blpop([key], timeout=1) == (key.encode(), b"job-2")
    client.close()


def test_redis_retry_backoff_does_not_outlast_the_deadline(
    redis_server: RedisServer,
) -> None:
    # redis-py#1527's shape: a short socket timeout, and retries that sleep between
    # attempts. The client's own timeout fires first (0.2 s), then its retry sleeps 30 s
    # in `redis.retry.sleep`, bound at import: the guard's deadline ends that sleep.
    retry = redis.retry.Retry(redis.backoff.ConstantBackoff(LONG), 3)
    client = _client(redis_server, redis_server.key("retry"), socket_timeout=SHORT, retry=retry)
    key = redis_server.key("jobs")
    error = deadline_ends(lambda: client.blpop([key], timeout=0), timeout=1.0)
    assert isinstance(error.__cause__ or error.__context__, (redis.TimeoutError, TimeoutError))
    assert client.ping()
    client.close()


# --- PyMySQL ----------------------------------------------------------------------------------


def test_pymysql_connect_to_a_silent_server(silent_server: LoopbackServer) -> None:
    # PyMySQL#338: connect() waits forever for the server's handshake packet. PyMySQL
    # rewrites the timeout as OperationalError: the guard's exit restores it.
    host, port = silent_server.address
    error = deadline_ends(lambda: pymysql.connect(host=host, port=port, user="u"))
    assert isinstance(error.__cause__, pymysql.err.OperationalError)


def test_pymysql_connect_stopped(silent_server: LoopbackServer) -> None:
    host, port = silent_server.address
    stop_ends(
        in_call("_get_server_information"),
        lambda: pymysql.connect(host=host, port=port, user="u"),
    )


# --- botocore, at a loopback endpoint -----------------------------------------------------


def _s3(endpoint: str, **config: Any) -> Any:
    """An S3 client of botocore's own defaults (60 s read timeout, retries) but ``config``."""
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(**config),
    )


@pytest.fixture
def silent_endpoint() -> Iterator[HTTPServer]:
    with HTTPServer(routes={"/": ROUTES["/silent"]}) as server:
        yield server


def test_botocore_silent_endpoint_ends_at_the_deadline(silent_endpoint: HTTPServer) -> None:
    # botocore's own limit here: a 60 s read timeout, retried 4 times.
    # The first read ends at the deadline (botocore makes a ReadTimeoutError of it and
    # retries); its backoff sleep then raises the guard's error at once.
    s3 = _s3(silent_endpoint.url)
    deadline_ends(s3.list_buckets, timeout=0.5)
    assert len(silent_endpoint.requests) == 1, "botocore retried past the deadline"
    s3.close()


def test_botocore_silent_endpoint_stopped(silent_endpoint: HTTPServer) -> None:
    s3 = _s3(silent_endpoint.url)
    stop_ends(lambda _: silent_endpoint.wait_requests(1), s3.list_buckets)
    s3.close()


def test_botocore_retries_do_not_outlast_the_deadline() -> None:
    # Every answer is a retryable 503; standard mode backs off up to 20 s per attempt
    # over 10 attempts. The guard's deadline ends the backoff sleep and the next connect.
    with HTTPServer(routes={"/": _answer_503}) as server:
        s3 = _s3(server.url, retries={"mode": "standard", "max_attempts": 10})
        deadline_ends(s3.list_buckets, timeout=0.5)
        assert len(server.requests) >= 1
        s3.close()


# --- paramiko ---------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["deadline", "stop"])
def test_paramiko_server_that_never_sends_its_banner(
    silent_server: LoopbackServer, end: str
) -> None:
    # paramiko#515: the banner is read by the transport's own thread, and the caller
    # waits for it on an Event (15 s banner timeout, then auth): the guard ends that wait.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    host, port = silent_server.address

    def call() -> object:
        client.connect(host, port, username="u", password="p", look_for_keys=False)
        return None

    if end == "deadline":
        deadline_ends(call)
    else:
        stop_ends(in_call("start_client"), call)
    transport = client.get_transport()
    client.close()  # ends the transport's thread, which the guard does not cover
    assert transport is not None
    transport.join(LONG)
    assert not transport.is_alive(), "paramiko's transport thread outlived client.close()"

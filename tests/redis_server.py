"""A real Redis server for the tests: Debian's ``redis-server``, started per session.

``redis_server`` (a session fixture, exposed to every test file by ``conftest.py``)
starts ``redis-server`` on a free loopback port with no persistence (``--save ''
--appendonly no``, its working directory a temporary one), waits until it answers
``PING``, and stops it (SIGTERM, then SIGKILL) at the end of the session. Tests share it:
each uses its own keys (``RedisServer.key``) rather than flushing.

``make test`` installs the binary when it is missing (``apt-get install -y
redis-server``, as root). Without it, the tests that need it fail with that advice:
a skipped test would hide that the client tests never ran.

None of this uses ``stoppable``: the server must not depend on the code under test.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LONG = 30.0  # how long starting or stopping the server may take


def free_port() -> int:
    """A loopback TCP port nobody listens on (now: ``start`` retries if it is taken)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: `make test` installs it as root "
                "(apt-get install -y redis-server)"
            )
        self.binary = binary
        self.directory = directory
        self.port = 0
        self._popen: subprocess.Popen[bytes] | None = None
        self._names = itertools.count()

    @property
    def host(self) -> str:
        """The address it listens on."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:port/0``, for ``redis.Redis.from_url``."""
        return f"redis://{self.host}:{self.port}/0"

    def key(self, name: str) -> str:
        """A key no other test uses: ``name`` plus a per-session counter."""
        return f"{name}:{next(self._names)}"

    def _options(self) -> list[str]:
        options = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "save": "",  # no snapshots, no append-only file: nothing written
            "appendonly": "no",
            "dir": str(self.directory),
            "daemonize": "no",
        }
        return [part for name, value in options.items() for part in (f"--{name}", value)]

    def start(self) -> RedisServer:
        """Start the server on a free port; it answers PING when this returns."""
        for _ in range(5):  # the free port may be taken between probe and bind
            self.port = free_port()
            log = (self.directory / f"redis-{self.port}.log").open("wb")
            with log:
                self._popen = subprocess.Popen(
                    [self.binary, *self._options()],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + LONG
            while self._popen.poll() is None and time.monotonic() < deadline:
                if _answers_ping(self.port):
                    return self
                time.sleep(0.01)  # polling a starting process: nothing to wait on
            self.stop()
        log_text = (self.directory / f"redis-{self.port}.log").read_text(errors="replace")
        raise RuntimeError(f"redis-server did not start; its log:\n{log_text}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        if self._popen is None:
            return
        popen, self._popen = self._popen, None
        popen.terminate()
        try:
            popen.wait(LONG)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(LONG)

    def alive(self) -> bool:
        """Whether the process runs and answers PING."""
        return self._popen is not None and self._popen.poll() is None and _answers_ping(self.port)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running Redis server shared by the session's tests (see the module docstring)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()

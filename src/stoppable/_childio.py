"""The pipes of a ``process`` call: input written and output read in one ``poll``.

``_Pipes`` moves ``communicate``'s data without a thread per pipe: the input is
written as the pipe takes it, every captured stream read as it fills, in the same
``poll`` as the stops and the child's exit. Also here: the input's encoding checks
(before any I/O) and the output's decoding (text mode, as ``subprocess`` does).
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import IO, Any, Final

from ._child import _ms
from ._wait import NOT_YET, NotYet

# Reading what an ended child left in its pipes stops when nothing more is ready at
# once (a grandchild may hold a pipe open) or after this long (one may keep writing).
_DRAIN_FOR = 0.1
_CHUNK = 65536
_POLLOUT: Final = select.POLLOUT
_POLLIN: Final = select.POLLIN


class _Pipes:
    """The child's pipes during ``communicate``: the input still to write, the output so far."""

    def __init__(self, popen: subprocess.Popen[Any], data: bytes | None) -> None:
        self.out: list[bytes] | None = None if popen.stdout is None else []
        self.err: list[bytes] | None = None if popen.stderr is None else []
        # How each captured stream is decoded at the end (text mode), read up front:
        # the streams are closed by then.
        self.decode: dict[str, tuple[str, str] | None] = {}
        self.readers: dict[int, tuple[IO[Any], list[bytes]]] = {}
        for name, stream, chunks in (
            ("out", popen.stdout, self.out),
            ("err", popen.stderr, self.err),
        ):
            if stream is None:
                continue
            self.decode[name] = (
                (stream.encoding, stream.errors or "strict")
                if isinstance(stream, io.TextIOWrapper)
                else None
            )
            if chunks is not None and not stream.closed:
                self.readers[stream.fileno()] = (stream, chunks)
        self.stdin: IO[Any] | None = None
        self.stdin_fd = -1
        self.flushing = False
        self.input = memoryview(data) if data else None
        self.offset = 0
        self.poller = select.poll()
        if popen.stdin is not None and not popen.stdin.closed:
            self.stdin = popen.stdin
            self.stdin_fd = popen.stdin.fileno()
            self.flushing = True  # anything the caller wrote to it first goes out first
            os.set_blocking(self.stdin_fd, False)
        for fd in self.readers:
            self.poller.register(fd, _POLLIN)

    def pending(self) -> bool:
        """Whether there is input left to write or output left to read."""
        return bool(self.readers) or self.stdin is not None

    def step(self, stop_fds: Iterable[int]) -> Callable[[float], bool | NotYet]:
        """A blocking step for ``wait_loop``: move data until every pipe is done."""
        for fd in stop_fds:
            self.poller.register(fd, _POLLIN)
        self.write()  # what fits now; the rest when the pipe has room
        if self.stdin is not None:
            self.poller.register(self.stdin_fd, _POLLOUT)

        def attempt(seconds: float) -> bool | NotYet:
            if not self.pending():
                return True
            for fd, _ in self.poller.poll(_ms(seconds)):
                if fd in self.readers:
                    self.read(fd)
                elif fd == self.stdin_fd and self.stdin is not None:
                    self.write()
            return NOT_YET if self.pending() else True

        return attempt

    def read(self, fd: int) -> None:
        stream, chunks = self.readers[fd]
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            chunks.append(data)
            return
        self.poller.unregister(fd)
        del self.readers[fd]
        stream.close()

    def write(self) -> None:
        stdin = self.stdin
        if stdin is None:
            return
        try:
            if self.flushing:
                stdin.flush()
                self.flushing = False
            data = self.input
            while data is not None and self.offset < len(data):
                self.offset += os.write(self.stdin_fd, data[self.offset : self.offset + _CHUNK])
        except BlockingIOError:
            return  # the pipe is full: go on when poll says it has room
        except BrokenPipeError:
            pass  # the child stopped reading: the rest is dropped, as subprocess does
        self.close_stdin()

    def close_stdin(self) -> None:
        stdin, self.stdin = self.stdin, None
        if stdin is None:
            return
        with contextlib.suppress(KeyError):
            self.poller.unregister(self.stdin_fd)
        # OSError: unflushed data the child will never read; the fd is closed all the same.
        with contextlib.suppress(OSError):
            stdin.close()

    def drain(self) -> None:
        """Read what an ended child left in the pipes, without waiting for more."""
        until = time.monotonic() + _DRAIN_FOR
        poller = select.poll()
        for fd in self.readers:
            poller.register(fd, _POLLIN)
        while self.readers and time.monotonic() < until:
            ready = poller.poll(0)
            if not ready:
                break  # a grandchild holds the pipe open but writes nothing
            for fd, _ in ready:
                if fd in self.readers:
                    self.read(fd)
                    if fd not in self.readers:
                        poller.unregister(fd)

    def close(self) -> None:
        """Close every pipe this call still has open."""
        self.close_stdin()
        for fd in list(self.readers):
            stream, _ = self.readers.pop(fd)
            stream.close()

    def raw(self) -> tuple[bytes | None, bytes | None]:
        """The output so far, as bytes (``None`` for a stream not captured)."""
        return (
            None if self.out is None else b"".join(self.out),
            None if self.err is None else b"".join(self.err),
        )

    def results(self) -> tuple[Any, Any]:
        """The complete output, decoded (with universal newlines) in text mode."""
        out, err = self.raw()
        return _decode(out, self.decode.get("out")), _decode(err, self.decode.get("err"))


def _decode(data: bytes | None, how: tuple[str, str] | None) -> Any:
    if data is None or how is None:
        return data
    # As subprocess does in text mode: decode, then universal newlines.
    return data.decode(*how).replace("\r\n", "\n").replace("\r", "\n")


def _encode_input(popen: subprocess.Popen[Any], data: Any) -> bytes | None:
    """The input as bytes, or a clear error before any I/O."""
    if data is None:
        return None
    if popen.stdin is None:
        raise ValueError("input was given, but the child's stdin is not a pipe (stdin=PIPE)")
    if isinstance(popen.stdin, io.TextIOWrapper):
        if not isinstance(data, str):
            raise TypeError(f"input must be str in text mode, got {type(data).__name__}")
        return data.encode(popen.stdin.encoding, popen.stdin.errors or "strict")
    return _bytes_input(data)


def _bytes_input(data: object) -> bytes:
    """Binary-mode input as bytes: only a bytes-like object, as ``subprocess`` takes.

    ``bytes(5)`` would be five NUL bytes and ``bytes([65, 66])`` b"AB": neither is
    what was meant, so anything without the buffer protocol is refused.
    """
    if isinstance(data, str):
        raise TypeError("input must be bytes (str needs text=True), got str")
    try:
        with memoryview(data) as view:  # type: ignore[arg-type]
            return view.tobytes()
    except TypeError:
        raise TypeError(
            f"input must be a bytes-like object (bytes, bytearray, memoryview), "
            f"got {type(data).__name__}"
        ) from None


def _close_all(popen: subprocess.Popen[Any]) -> None:
    for stream in (popen.stdin, popen.stdout, popen.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()

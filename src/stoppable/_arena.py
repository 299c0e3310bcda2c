"""The arena: a block of shared memory holding shared stops, and its process table.

Layout (all little-endian): a header (magic, a random token naming the arena, the
serial counter and allocation hint, the process table's high-water mark), the
process table (the processes using the arena, each by pid and nonce, which name its
wake-up socket), then the slots (state, references, serial, the reason's bytes).

Every write but an allocation is made under the arena's lock: a POSIX record lock
on its file (held per process, dropped by the kernel if the holder dies), taken
after a thread lock (threads of one process share a record lock). Only the arena's
maker allocates, and no other process writes a free slot, so allocating needs only
the thread lock. ``_shared`` is the process side: which events use which slots.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pragma: no cover
    import mmap

__all__ = ["REASON_BYTES"]

_MAGIC: Final = b"STOPARN1"
_TOKEN_BYTES: Final = 16
# Header: magic, token, serial counter, allocation hint, process table high-water
# mark; then the process table.
_HEAD_FMT: Final = "<8s16sQII"
_COUNTERS_AT: Final = 24
_HIGH_AT: Final = 36
_PROCS: Final = 1024  # processes listed per arena, each (pid, nonce)
_PROC_FMT: Final = "<IIQ"  # pid, in-use flag, nonce
_PROC_SIZE: Final = 16
_PROC_OFFSET: Final = 64
_HEADER_SIZE: Final = _PROC_OFFSET + _PROCS * _PROC_SIZE
_SLOTS: Final = 4096
_SLOT_SIZE: Final = 256
_SLOT_FMT: Final = "<IIQI4x"  # state, refs, serial, reason length
_SLOT_HEAD: Final = 24
REASON_BYTES: Final = _SLOT_SIZE - _SLOT_HEAD
"""The largest pickled reason that crosses processes as itself (else as its ``str``)."""
_ARENA_SIZE: Final = _HEADER_SIZE + _SLOTS * _SLOT_SIZE

_FREE, _LIVE, _SET = 0, 1, 2


class _Arena:
    """A block of shared memory holding slots, and the lock that guards it."""

    def __init__(self, fd: int, token: bytes | None = None) -> None:
        import mmap
        import struct

        self.fd = fd
        self.mm: mmap.mmap = mmap.mmap(fd, _ARENA_SIZE)
        self.head = struct.Struct(_HEAD_FMT)
        self.counters = struct.Struct("<QI")  # serial, hint: written by the maker alone
        self.high = struct.Struct("<I")  # the process table's high-water mark
        self.proc = struct.Struct(_PROC_FMT)
        self.slot = struct.Struct(_SLOT_FMT)
        if token is None:  # a new arena: this process made it
            token = os.urandom(_TOKEN_BYTES)
            self.head.pack_into(self.mm, 0, _MAGIC, token, 0, 0, 0)
        else:
            magic, found, _, _, _ = self.head.unpack_from(self.mm, 0)
            if magic != _MAGIC or found != token:
                self.mm.close()
                raise RuntimeError("the descriptor is not the expected StopEvent arena")
        self.token = token
        self.tlock = threading.Lock()
        self.handle: Any = None  # how it travels in a pickle (set by _shared)

    @contextlib.contextmanager
    def locked(self) -> Any:
        import fcntl

        # Threads of one process share a record lock, so they queue on tlock first.
        with self.tlock:
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def _at(self, slot: int) -> int:
        return _HEADER_SIZE + slot * _SLOT_SIZE

    def alloc(self) -> tuple[int, int] | None:
        """A free slot, live and held once by the caller: ``(slot, serial)``; None if full.

        Only the arena's maker allocates in it, and no other process writes a free
        slot (every other write checks the slot's serial first, under the lock): the
        threads of this process are all it must exclude, which spares two system calls
        on a hot path (one per pool task).
        """
        with self.tlock:
            serial, hint = self.counters.unpack_from(self.mm, _COUNTERS_AT)
            for i in range(_SLOTS):
                slot = (hint + i) % _SLOTS
                if self.slot.unpack_from(self.mm, self._at(slot))[0] == _FREE:
                    serial += 1
                    self.slot.pack_into(self.mm, self._at(slot), _LIVE, 1, serial, 0)
                    # Only these two fields: other processes write the high-water mark.
                    self.counters.pack_into(self.mm, _COUNTERS_AT, serial, (slot + 1) % _SLOTS)
                    return slot, serial
        return None

    def incref(self, slot: int, serial: int) -> bool:
        """Hold the slot once more; False if it no longer holds that event."""
        with self.locked():
            state, refs, found, length = self.slot.unpack_from(self.mm, self._at(slot))
            if state == _FREE or found != serial:
                return False
            self.slot.pack_into(self.mm, self._at(slot), state, refs + 1, serial, length)
            return True

    def decref(self, slot: int, serial: int) -> None:
        self.decref_many([(slot, serial)])

    def decref_many(self, slots: list[tuple[int, int]]) -> None:
        """Let go of each ``(slot, serial)`` once, in one locked section."""
        with self.locked():
            for slot, serial in slots:
                at = self._at(slot)
                state, refs, found, length = self.slot.unpack_from(self.mm, at)
                if state == _FREE or found != serial:
                    continue
                if refs <= 1:
                    self.slot.pack_into(self.mm, at, _FREE, 0, 0, 0)
                else:
                    self.slot.pack_into(self.mm, at, state, refs - 1, serial, length)

    def is_set(self, slot: int, serial: int) -> bool:
        # One aligned read of the state word; the reason is read under the lock.
        state, _, found, _ = self.slot.unpack_from(self.mm, self._at(slot))
        return bool(state == _SET and found == serial)

    def publish(
        self, slot: int, serial: int, data: bytes
    ) -> tuple[bytes | None, list[tuple[int, int, int]]]:
        """Set the slot with ``data`` unless set already.

        Returns the winning reason's bytes (``None`` if the slot no longer holds that
        event) and, when this call set it, the processes to wake.
        """
        at = self._at(slot)
        with self.locked():
            state, refs, found, length = self.slot.unpack_from(self.mm, at)
            if state == _FREE or found != serial:
                return None, []
            if state == _SET:
                return bytes(self.mm[at + _SLOT_HEAD : at + _SLOT_HEAD + length]), []
            # The reason first, then the flag: a reader that sees the flag sees it.
            self.mm[at + _SLOT_HEAD : at + _SLOT_HEAD + len(data)] = data
            self.slot.pack_into(self.mm, at, _SET, refs, serial, len(data))
            # Read in the same locked section: a process listed later scans on listing.
            return data, self._entries()

    def reason(self, slot: int) -> bytes:
        at = self._at(slot)
        with self.locked():
            length = self.slot.unpack_from(self.mm, at)[3]
            return bytes(self.mm[at + _SLOT_HEAD : at + _SLOT_HEAD + length])

    # -- the process table ----------------------------------------------------------

    def _entries(self) -> list[tuple[int, int, int]]:
        high = self.head.unpack_from(self.mm, 0)[4]
        table = self.mm[_PROC_OFFSET : _PROC_OFFSET + high * _PROC_SIZE]
        return [
            (i, pid, nonce)
            for i, (pid, used, nonce) in enumerate(self.proc.iter_unpack(table))
            if used
        ]

    def enlist(self, pid: int, nonce: int, sock: Any) -> None:
        """List this process's wake-up socket; makes room by dropping dead listeners."""
        with self.locked():
            for attempt in range(2):
                for i in range(_PROCS):
                    at = _PROC_OFFSET + i * _PROC_SIZE
                    if not self.proc.unpack_from(self.mm, at)[1]:
                        self.proc.pack_into(self.mm, at, pid, 1, nonce)
                        high = self.high.unpack_from(self.mm, _HIGH_AT)[0]
                        self.high.pack_into(self.mm, _HIGH_AT, max(high, i + 1))
                        return
                if attempt == 0:
                    self._wake_locked(sock, skip=None)  # clears the dead ones
        raise RuntimeError(f"more than {_PROCS} processes share one StopEvent arena")

    def delist(self, pid: int, nonce: int) -> None:
        with self.locked():
            for i, found_pid, found_nonce in self._entries():
                if (found_pid, found_nonce) == (pid, nonce):
                    self.proc.pack_into(self.mm, _PROC_OFFSET + i * _PROC_SIZE, 0, 0, 0)

    def wake(
        self, sock: Any, entries: list[tuple[int, int, int]], skip: tuple[int, int] | None
    ) -> None:
        """Wake the listed processes but ``skip`` (each rescans its events)."""
        gone = _send_wakeups(sock, entries, skip)
        if gone:
            with self.locked():
                for i, pid, nonce in gone:  # unless the place was taken again meanwhile
                    at = _PROC_OFFSET + i * _PROC_SIZE
                    if self.proc.unpack_from(self.mm, at) == (pid, 1, nonce):
                        self.proc.pack_into(self.mm, at, 0, 0, 0)

    def _wake_locked(self, sock: Any, skip: tuple[int, int] | None) -> None:
        for i, _, _ in _send_wakeups(sock, self._entries(), skip):
            self.proc.pack_into(self.mm, _PROC_OFFSET + i * _PROC_SIZE, 0, 0, 0)

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)


def _send_wakeups(
    sock: Any, entries: list[tuple[int, int, int]], skip: tuple[int, int] | None
) -> list[tuple[int, int, int]]:
    """Send each listed process an empty datagram; the entries nobody listens on."""
    gone = []
    for entry in entries:
        _, pid, nonce = entry
        if (pid, nonce) == skip:
            continue
        try:
            sock.sendto(b"", _address(pid, nonce))
        except BlockingIOError:
            pass  # its queue is full: it has wake-ups pending already
        except OSError:  # nobody there: that process has ended
            gone.append(entry)
    return gone


def _address(pid: int, nonce: int) -> bytes:
    return f"\0stoppable-stop-{pid}-{nonce:x}".encode()

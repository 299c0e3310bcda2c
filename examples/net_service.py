"""A small TCP service whose accept loop and handlers all stop on one ``set()``, mid-reply never.

Run it with ``python examples/net_service.py``. The service answers requests of the
form ``<n>\\n`` with ``n`` bytes. Clients (plain sockets, as any client would be) keep
it busy with requests of up to a megabyte; one more client connects and stays idle.
After half a second the main thread calls ``stop.set()``:

- the accept loop, blocked in ``net.accept`` with ``timeout=UNTIL_STOPPED`` (however
  long the service stays idle, only the stop ends it), ends at once;
- a handler waiting for its next request (``net.recv`` with the stop) ends at once; a
  client that stays idle longer than ``IDLE_TIMEOUT`` is dropped before that;
- a handler in the middle of a reply finishes it first: the reply is sent with a
  timeout but without the stop, so no client ever gets half a reply.

Each handler then closes its connection gracefully (it half-closes, and reads what
the client still sends until the client closes, so no reset can destroy a reply in
flight). The service prints how long after the ``set()`` each thread stopped, and
checks, on the clients' side, that every reply received was complete.
"""

from __future__ import annotations

import socket
import threading
import time

from stoppable import UNTIL_STOPPED, DeadlineExceeded, StopEvent, Stopped, net

MINUTE = 60.0
IDLE_TIMEOUT = 60.0  # a client silent for this long is dropped
REPLY_TIMEOUT = 10.0  # a reply in progress is finished within this, stop or not


class Service:
    def __init__(self) -> None:
        self.stop = StopEvent()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.stopped_at: dict[str, float] = {}
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _record(self, name: str) -> None:
        with self._lock:
            self.stopped_at[name] = time.perf_counter()

    def start(self) -> None:
        thread = threading.Thread(target=self.accept_loop, name="accept loop")
        self.threads.append(thread)
        thread.start()

    def accept_loop(self) -> None:
        number = 0
        try:
            while True:
                conn, _ = net.accept(self.listener, timeout=UNTIL_STOPPED, stop=self.stop)
                number += 1
                handler = threading.Thread(
                    target=self.handle, args=(conn, f"handler #{number}"), name=f"h{number}"
                )
                with self._lock:
                    self.threads.append(handler)
                handler.start()
        except Stopped:
            self._record("accept loop")
        finally:
            self.listener.close()

    def handle(self, conn: socket.socket, name: str) -> None:
        pending = b""
        try:
            while True:
                while b"\n" not in pending:  # waiting for a request: the stop ends this
                    data = net.recv(conn, 4096, timeout=IDLE_TIMEOUT, stop=self.stop)
                    if not data:
                        return
                    pending += data
                line, pending = pending.split(b"\n", 1)
                # A request was read: its reply goes out whole, stop or not.
                net.sendall(conn, b"r" * int(line), timeout=REPLY_TIMEOUT)
        except DeadlineExceeded:
            self._record(f"{name} (idle, dropped)")
        except Stopped:
            self._record(name)
            self._close_gracefully(conn)
        finally:
            conn.close()

    @staticmethod
    def _close_gracefully(conn: socket.socket) -> None:
        # Half-close, then read until the client closes: closing with unread data
        # would send a reset, which can destroy a reply still in flight.
        conn.shutdown(socket.SHUT_WR)
        try:
            while net.recv(conn, 65536, timeout=2.0):
                pass
        except (OSError, TimeoutError):
            pass


def client(address: tuple[str, int], results: dict[str, int], name: str) -> None:
    """A plain client: sends requests and checks each reply arrives whole."""
    with socket.create_connection(address, timeout=MINUTE) as sock:
        size = 1
        while True:
            size = size * 7 % 1_000_003 + 1  # varied sizes, up to about a megabyte
            try:
                sock.sendall(b"%d\n" % size)
            except OSError:
                return  # the service closed while we sent: that request was not taken
            got = 0
            while got < size:
                chunk = sock.recv(min(65536, size - got))
                if not chunk:
                    if got:
                        results["cut short"] += 1
                    return
                got += len(chunk)
            results[name] += 1
            results["complete"] += 1


def main() -> int:
    service = Service()
    service.start()
    results = {"complete": 0, "cut short": 0}
    clients = []
    for index in range(4):
        results[f"client {index}"] = 0
        thread = threading.Thread(target=client, args=(service.address, results, f"client {index}"))
        clients.append(thread)
        thread.start()
    idle = socket.create_connection(service.address, timeout=MINUTE)  # never sends anything
    time.sleep(0.5)  # let the clients work

    set_at = time.perf_counter()
    service.stop.set("shutdown")
    for thread in clients:
        thread.join(MINUTE)
    idle.close()
    with service._lock:
        threads = list(service.threads)
    for thread in threads:
        thread.join(MINUTE)

    for name, stopped in sorted(service.stopped_at.items(), key=lambda item: item[1]):
        print(f"{name:<12} stopped {(stopped - set_at) * 1000:7.2f} ms after set()")
    print(f"{len(service.stopped_at)} threads stopped, of {len(threads)} started")
    served = ", ".join(f"{results[f'client {i}']}" for i in range(4))
    if results["cut short"]:
        print(f"{results['cut short']} replies cut short: BUG")
        return 1
    print(f"every reply complete: {results['complete']} replies ({served} per client)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

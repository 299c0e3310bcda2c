"""Every private part of the standard library that the library relies on, checked here.

Waking a blocked wait at once, without polling, needs a few internals that no public
API offers (``Condition``'s waiter queue, a ``Queue``'s organisation hooks, the
condition behind an ``Event`` or a ``Semaphore``, a ``Future``'s state). Each is
listed here with what is relied on, and checked when this package is imported, by
exercising it on a fresh object, not only by looking for the name. Where a check
fails (a future Python changed the internal), the flag is ``False`` and the
family takes its fallback: the same operation through the public API, in polled
slices (``stoppable.set_poll_interval``). Correct, only slower to notice a stop.

One submodule per concern, each listed in a table of its own below; this package
re-exports every name, and the library reads them here (``_compat.NAME``) only:

- ``_probe``: ``_check``, which runs a probe (every flag is one probe's verdict);
- ``_waits``: ``threading`` and ``queue`` objects, ``concurrent.futures``;
- ``_processes``: ``multiprocessing`` pools, the fork hook, exit, ``subprocess``;
- ``_sockets``: ``socket``, ``_socket`` and ``selectors``;
- ``_urllib3``: the hooks of urllib3 that ``stoppable.http`` overrides;
- ``_http``: the other parts of urllib3 that ``stoppable.http`` reads or sets.

A flag is read here by the library and by its own submodule's functions: a test that
forces a fallback sets it in both.

``_waits``:

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
``Condition._waiters``,                ``_wait.wait_condition``     ``Condition.wait`` in
``_release_save``,                     (queues, sync, futures,      slices
``_acquire_restore``, ``_is_owned``    DNS, HTTP pool)
``Queue._qsize/_get/_put``,            ``queues``                   ``Queue.get``/``put``
``not_empty``, ``not_full``,                                        in slices
``mutex``, ``unfinished_tasks``
``Queue.is_shutdown`` (3.13)           ``queues``                   none needed before
                                                                    3.13 (no shutdown)
``Semaphore._cond``, ``_value``        ``sync.acquire``             ``acquire`` in slices
``Event._cond``                        ``sync.wait``, ``futures``   ``Event.wait`` in
                                       (``AsyncResult._event``)     slices
``Future._condition``, ``_state``,     ``futures``                  ``Future.result``/
``_done_callbacks``                                                 ``wait`` in slices
``concurrent.futures._base``           ``futures`` (``_futwait``,   ``Future.done()`` (as
``CANCELLED``,                         ``_tasks``)                  for
``CANCELLED_AND_NOTIFIED``,                                         ``FUTURE_INTERNALS``)
``FINISHED``
``concurrent.futures._base.``          ``futures.wait``             a namedtuple of our
``DoneAndNotDoneFutures`` (read as     (``_futwait``)               own, the same fields
the type ``wait()`` returns)
``ThreadPoolExecutor._threads``        ``ThreadPoolExecutor``'s     wait for the tasks'
                                       ``shutdown``                 futures, not threads
                                       (``_threadpool``)
=====================================  ===========================  =====================

The queue's fast paths (``queues.get``/``put`` with an item or room at hand) touch
the queue's hooks inline for speed, and only when ``QUEUE_INTERNALS`` is true (they hold
``mutex`` itself, which the check confirms is the lock of the three conditions); every
other use goes through the functions here.

``_processes``:

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
``ApplyResult._event`` (a              ``futures`` (``_futwait``:   ``wait`` in slices
``threading.Event``)                   a pool's ``AsyncResult``)
``Popen._waitpid_lock``                ``process``                  ``Popen.poll`` only
``popen_fork.Popen._launch``           ``_shared`` (the fork hook:  the ``Process.start``
``(process_obj)``                      events of a forked           frame a few frames up
                                       ``Process``)
``subprocess.Popen._execute_child``    ``_shared`` (a fork that     the forking code's
                                       execs: no watcher)           module is subprocess
``threading._register_atexit``         ``_procpool`` (shut down     ``atexit`` (after the
                                       pools at exit)               threads are joined)
``Pool.imap``'s generator over an      ``_poolimap`` (chunksize     chunks of our own,
``IMapIterator`` (``gi_frame``)        > 1)                         one pool task each
``IMapIterator._cond``, ``_items``,    ``_poolimap``                ``next(timeout)`` in
``_index``, ``_length``                                             slices
=====================================  ===========================  =====================

``_sockets``:

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
``_socket.socket`` on a borrowed fd    ``_netio`` (a non-blocking   ``socket.socket`` on
                                       shadow of a socket)          the fd
``socket.accept`` calling              ``_guard._sockets``          the guard leaves
``self._accept()``;                    (``accept`` in a guard)      ``accept`` alone (as
``_socket.socket._accept``                                          the standard library)
``socket._sendfile_use_send``          ``_guard._sockets``          the same loop, public
                                       (``sendfile`` in a guard)    calls (``send``)
``BaseSelector._fd_to_key``            ``_guard._select``           ``get_map()``
``_PollLikeSelector._selector``,       ``_guard._select``           the selector's own
``_EVENT_READ``; fds without a key                                  ``select`` in slices
left out of ``select()``
``socket._accept()``                   ``net.accept`` (``_netops``) ``socket.socket.
                                                                    accept``, its socket
                                                                    detached
``socket.SocketIO`` calling its        ``net.Socket.makefile``      a raw file of our
owner's ``_decref_socketios()``;       (``_netsocket``)             own, and our own
``socket._io_refs`` deferring                                       count of each
``close()``                                                         socket's files
=====================================  ===========================  =====================

``_urllib3``:

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
urllib3 hooks overridden:              ``http`` (the package)       none: the import
``HTTPResponse._error_catcher``,                                    fails, naming the
``Retry._sleep_backoff``,                                           missing hook
``HTTPConnection._new_conn``,
``HTTPConnectionPool._get_conn``,
``_put_conn``, ``PoolManager._new_pool``
``urllib3.connection._match_hostname`` ``http._tls``                ``urllib3.util.ssl_
                                                                    match_hostname``
``urllib3.util.timeout.``              ``http._budget``,            none needed: read as
``_DEFAULT_TIMEOUT``                   ``http._pool``               the public default of
                                                                    ``urlopen(timeout=)``
=====================================  ===========================  =====================

urllib3's parts are checked by ``check_urllib3()``, which the HTTP family calls when
it is imported (urllib3 is not loaded before). An overridden hook that urllib3 no
longer calls would silently leave requests unbounded, so there the only correct
fallback is to refuse to load.

``_http`` (checked by ``check_http()``, which the HTTP family calls next; the flags are
false until then):

=====================================  ===========================  =====================
internal                               used by                      fallback
=====================================  ===========================  =====================
``Timeout._connect``, ``_read``        ``http._budget`` (is a       the ``Timeout`` is
                                       ``Timeout`` a total only?)   refused, as one with
                                                                    limits of its own
``HTTPConnectionPool.pool`` (its       ``http._pool`` (a            urllib3's own
queue of free connections)             ``pool_block`` wait)         ``_get_conn`` in slices
``HTTPConnection._response_options``   ``http._connection`` (the    urllib3 preloads the
                                       body read in its phase)      body (the error names
                                                                    the headers phase)
``HTTPConnection._dns_host``           ``http._connection``         ``host`` (trailing dot
                                                                    dropped)
``util.ssl_._is_key_file_encrypted``   ``http._tls``                the same test here
``HTTPConnection._tunnel_host``,       ``http._connection`` (HTTPS  tunnelling refused
``_tunnel_scheme``, ``_tunnel()``,     through an HTTP proxy)       clearly (``ProxySche-
``_has_connected_to_proxy``                                         meUnsupported``)
=====================================  ===========================  =====================

The tests check each flag is true on every supported Python, and force each
fallback to prove it correct.

``sys._getframe`` (the guard's ``called_from_stoppable``, the fork hook) is not
listed: it is documented, in every CPython, and the frames it gives are public.
"""

from __future__ import annotations

from ._http import (
    HTTP_PROBES,
    URLLIB3_DNS_HOST,
    URLLIB3_KEY_FILE_CHECK,
    URLLIB3_POOL_QUEUE,
    URLLIB3_RESPONSE_OPTIONS,
    URLLIB3_TIMEOUT_PARTS,
    URLLIB3_TUNNEL,
    check_http,
    set_urllib3_connected_to_proxy,
    set_urllib3_response_options,
    urllib3_dns_host,
    urllib3_key_file_encrypted,
    urllib3_open_tunnel,
    urllib3_pool_queue,
    urllib3_response_options,
    urllib3_timeout_limits,
    urllib3_tunnel,
)
from ._processes import (
    FORK_LAUNCH,
    IMAP_CHUNKS,
    IMAP_INTERNALS,
    POOL_RESULT_EVENT,
    SUBPROCESS_EXECUTE_CHILD,
    THREAD_SHUTDOWN_HOOK,
    at_thread_shutdown,
    forked_process,
    forked_to_exec,
    imap_chunks,
    imap_condition,
    imap_ready,
    pool_result_event,
    popen_waitpid_lock,
)
from ._sockets import (
    BARE_SOCKET,
    SELECTOR_MAP,
    SELECTOR_POLL,
    SENDFILE_USE_SEND,
    SOCKET_ACCEPT,
    SOCKET_ACCEPT_HOOK,
    SOCKET_FILE,
    bare_accept,
    bare_socket,
    close_socket,
    selector_poller,
    selector_watches,
    sendfile_by_send,
    socket_accept,
    socket_file,
    socket_file_closed,
)
from ._urllib3 import (
    URLLIB3_HOOKS,
    check_urllib3,
    urllib3_default_timeout,
    urllib3_match_hostname,
)
from ._waits import (
    CONDITION_PROTOCOL,
    DONE_AND_NOT_DONE,
    EVENT_COND,
    EXECUTOR_THREADS,
    FUTURE_DONE_STATES,
    FUTURE_INTERNALS,
    QUEUE_INTERNALS,
    QUEUE_SHUTDOWN,
    SEMAPHORE_INTERNALS,
    condition_acquire_restore,
    condition_is_owned,
    condition_release_save,
    condition_save_restore,
    condition_waiters,
    event_cond,
    executor_threads,
    queue_is_shutdown,
    semaphore_cond,
    semaphore_take,
    semaphore_value,
)

__all__ = [
    "BARE_SOCKET",
    "CONDITION_PROTOCOL",
    "DONE_AND_NOT_DONE",
    "EVENT_COND",
    "EXECUTOR_THREADS",
    "FORK_LAUNCH",
    "FUTURE_DONE_STATES",
    "FUTURE_INTERNALS",
    "IMAP_CHUNKS",
    "IMAP_INTERNALS",
    "POOL_RESULT_EVENT",
    "QUEUE_INTERNALS",
    "QUEUE_SHUTDOWN",
    "SELECTOR_MAP",
    "SELECTOR_POLL",
    "SEMAPHORE_INTERNALS",
    "SENDFILE_USE_SEND",
    "SOCKET_ACCEPT",
    "SOCKET_ACCEPT_HOOK",
    "SOCKET_FILE",
    "SUBPROCESS_EXECUTE_CHILD",
    "THREAD_SHUTDOWN_HOOK",
    "URLLIB3_HOOKS",
    "at_thread_shutdown",
    "bare_accept",
    "bare_socket",
    "check_urllib3",
    "close_socket",
    "condition_acquire_restore",
    "condition_is_owned",
    "condition_release_save",
    "condition_save_restore",
    "condition_waiters",
    "event_cond",
    "executor_threads",
    "forked_process",
    "forked_to_exec",
    "imap_chunks",
    "imap_condition",
    "imap_ready",
    "pool_result_event",
    "popen_waitpid_lock",
    "queue_is_shutdown",
    "selector_poller",
    "selector_watches",
    "semaphore_cond",
    "semaphore_take",
    "semaphore_value",
    "sendfile_by_send",
    "socket_accept",
    "socket_file",
    "socket_file_closed",
    "urllib3_default_timeout",
    "urllib3_match_hostname",
]
__all__ += [  # _http's, kept apart to merge easily
    "HTTP_PROBES",
    "URLLIB3_DNS_HOST",
    "URLLIB3_KEY_FILE_CHECK",
    "URLLIB3_POOL_QUEUE",
    "URLLIB3_RESPONSE_OPTIONS",
    "URLLIB3_TIMEOUT_PARTS",
    "URLLIB3_TUNNEL",
    "check_http",
    "set_urllib3_connected_to_proxy",
    "set_urllib3_response_options",
    "urllib3_dns_host",
    "urllib3_key_file_encrypted",
    "urllib3_open_tunnel",
    "urllib3_pool_queue",
    "urllib3_response_options",
    "urllib3_timeout_limits",
    "urllib3_tunnel",
]

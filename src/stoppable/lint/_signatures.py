"""What the checker knows about blocking calls: one table, no imports of the libraries.

Every entry is keyed by a canonical qualified name: a function (``requests.get``), a
constructor (``http.client.HTTPConnection``) or a method on a type
(``queue.Queue`` + ``get``). Positions count the arguments after ``self``. The table is
data, not code, so adding a library means adding rows here and case files in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

#: How a call relates to time.
#:
#: ``call``: it blocks and takes a timeout (STP100 when missing, STP101 when unbounded).
#: ``none``: it blocks and has no timeout parameter at all (STP102).
#: ``client``: a constructor whose timeout covers every later request (STP103, STP101).
#: ``setter``: it sets the timeout of an object (``settimeout``): STP101 when unbounded.
#: ``wrap``: not blocking itself, but the strict rule maps it to a stoppable wrapper.
Kind = Literal["call", "none", "client", "setter", "wrap"]

#: The state that decides whether a call on an instance is bounded after all.
#:
#: ``socket``: a socket is bounded once given a timeout (``settimeout``, ``setblocking``,
#: ``create_connection(..., timeout)``, ``socket.setdefaulttimeout``); only sockets whose
#: creation the checker saw are judged.
#: ``poll``: a ``multiprocessing`` connection is bounded once ``poll()`` was called on it.
#: ``ctor``: the constructor may set a default timeout (``threading.Barrier``); only
#: instances whose creation the checker saw without a timeout are judged.
#: ``bounded_queue``: ``put`` blocks only on a queue created with a ``maxsize``.
State = Literal["socket", "poll", "ctor", "bounded_queue"]

#: What a call does to the state of its receiver or module.
Effect = Literal["bound", "default_timeout", "blocking_flag"]


@dataclass(frozen=True, slots=True)
class Spec:
    """One blocking call: where its timeout goes and what to suggest instead."""

    kind: Kind
    param: str = "timeout"
    position: int | None = None
    block: str | None = None
    block_position: int | None = None
    missing_ok: bool = False
    negative_unbounded: bool = False
    socket_default: bool = False
    state: State | None = None
    effect: Effect | None = None
    via: tuple[str, ...] = ()
    fix: str = ""
    wrapper: str | None = None
    unit: str = "seconds"
    #: A literal 0 at this position (or as ``zero_param``) makes the call non-blocking.
    zero_at: int | None = None
    zero_param: str = ""


def _call(position: int | None = None, **kw: object) -> Spec:
    return Spec("call", position=position, **kw)  # type: ignore[arg-type]


def _none(fix: str, **kw: object) -> Spec:
    return Spec("none", param="", fix=fix, **kw)  # type: ignore[arg-type]


def _client(position: int | None = None, **kw: object) -> Spec:
    return Spec("client", position=position, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Module-level functions and constructors.

FUNCTIONS: dict[str, Spec] = {}
#: Constructors, keyed by the type they create.
CONSTRUCTORS: dict[str, Spec] = {}
#: Methods, keyed by type then method name.
METHODS: dict[str, dict[str, Spec]] = {}
#: What calling a function or method returns: a type name, a tuple of them (for
#: unpacking), ``"=module"`` (the module named by the first argument),
#: ``"=module:NAME"`` (that module), ``"=self"`` (a copy of the receiver) or ``"=arg0"``
#: (an object in the same state as the first argument, e.g. ``wrap_socket``).
RETURNS: dict[str, str | tuple[str | None, ...]] = {}
#: A type's parent among the known types (its methods are inherited).
PARENTS: dict[str, str] = {}
#: Other spellings of a canonical name (private modules, re-exports).
ALIASES: dict[str, str] = {}
#: What iterating over an instance of a type yields.
ITERATES: dict[str, str] = {}
#: Where a queue type's constructor takes ``maxsize`` (a bounded queue's put blocks).
MAXSIZE: dict[str, int] = {}
#: Where a type's constructor takes a default timeout for its methods (``state="ctor"``).
CTOR_TIMEOUT: dict[str, int] = {}
#: Functions whose result is a socket that already has a timeout (or whose missing
#: timeout is reported on that call, so it is not reported again on every read).
BOUNDED_RESULTS = frozenset({"socket.create_connection"})

_HTTP_VERBS = ("get", "options", "head", "post", "put", "patch", "delete")

# requests: module functions and Session. requests never applies a default timeout.
for _verb in (*_HTTP_VERBS, "request"):
    FUNCTIONS[f"requests.{_verb}"] = _call(wrapper=f"stoppable.http.{_verb}")
    ALIASES[f"requests.api.{_verb}"] = f"requests.{_verb}"
RETURNS["requests.session"] = "requests.Session"
ALIASES["requests.sessions.Session"] = "requests.Session"
ALIASES["requests.sessions.session"] = "requests.session"
CONSTRUCTORS["requests.Session"] = Spec("wrap", wrapper="stoppable.http.Session")
METHODS["requests.Session"] = {
    # A subclass that overrides request() or send() usually adds the default timeout
    # there, and every verb goes through both.
    **{
        verb: _call(via=("request", "send"), wrapper="stoppable.http.Session")
        for verb in _HTTP_VERBS
    },
    "request": _call(8, via=("request", "send"), wrapper="stoppable.http.Session"),
    "send": _call(via=("send",), wrapper="stoppable.http.Session"),
}

# urllib3: the pool's timeout covers its requests; an explicit None on a request does not.
_POOL_REQUEST = _call(missing_ok=True, wrapper="stoppable.http.PoolManager")
FUNCTIONS["urllib3.request"] = _call(missing_ok=True, wrapper="stoppable.http.request")
CONSTRUCTORS["urllib3.PoolManager"] = _client(
    socket_default=True, wrapper="stoppable.http.PoolManager"
)
CONSTRUCTORS["urllib3.ProxyManager"] = _client(socket_default=True)
CONSTRUCTORS["urllib3.HTTPConnectionPool"] = _client(2, socket_default=True)
CONSTRUCTORS["urllib3.HTTPSConnectionPool"] = _client(2, socket_default=True)
FUNCTIONS["urllib3.connection_from_url"] = _client(socket_default=True)
FUNCTIONS["urllib3.proxy_from_url"] = _client(socket_default=True)
RETURNS["urllib3.connection_from_url"] = "urllib3.HTTPConnectionPool"
RETURNS["urllib3.proxy_from_url"] = "urllib3.ProxyManager"
PARENTS["urllib3.ProxyManager"] = "urllib3.PoolManager"
PARENTS["urllib3.HTTPSConnectionPool"] = "urllib3.HTTPConnectionPool"
_POOL_METHODS = ("request", "urlopen", "request_encode_url", "request_encode_body")
METHODS["urllib3.PoolManager"] = dict.fromkeys(_POOL_METHODS, _POOL_REQUEST)
METHODS["urllib3.HTTPConnectionPool"] = {
    **dict.fromkeys(_POOL_METHODS, _POOL_REQUEST),
    "urlopen": _call(7, missing_ok=True),
}
for _private, _public in (
    ("urllib3.poolmanager.PoolManager", "urllib3.PoolManager"),
    ("urllib3.poolmanager.ProxyManager", "urllib3.ProxyManager"),
    ("urllib3.poolmanager.proxy_from_url", "urllib3.proxy_from_url"),
    ("urllib3.connectionpool.HTTPConnectionPool", "urllib3.HTTPConnectionPool"),
    ("urllib3.connectionpool.HTTPSConnectionPool", "urllib3.HTTPSConnectionPool"),
    ("urllib3.connectionpool.connection_from_url", "urllib3.connection_from_url"),
    ("urllib3.util.Timeout", "urllib3.Timeout"),
    ("urllib3.util.timeout.Timeout", "urllib3.Timeout"),
    ("urllib3._request_methods.RequestMethods", "urllib3.PoolManager"),
):
    ALIASES[_private] = _public

# httpx: a 5 s default everywhere, so only an explicit None is a finding.
for _verb in (*_HTTP_VERBS, "request", "stream"):
    FUNCTIONS[f"httpx.{_verb}"] = _call(missing_ok=True)
CONSTRUCTORS["httpx.Client"] = _client(missing_ok=True)
METHODS["httpx.Client"] = {
    verb: _call(missing_ok=True) for verb in (*_HTTP_VERBS, "request", "stream", "build_request")
}
PARENTS["httpx.AsyncClient"] = "httpx.Client"
ALIASES["httpx._client.Client"] = "httpx.Client"
ALIASES["httpx._client.AsyncClient"] = "httpx.AsyncClient"
ALIASES["httpx._config.Timeout"] = "httpx.Timeout"

# urllib.request: the socket default timeout applies when none is given.
FUNCTIONS["urllib.request.urlopen"] = _call(2, socket_default=True, wrapper="stoppable.http.get")
FUNCTIONS["urllib.request.urlretrieve"] = _none(
    "use urllib.request.urlopen(url, timeout=...) and write the body yourself, "
    "or stoppable.http.get(url, timeout=..., stop=...)",
    socket_default=True,
)
RETURNS["urllib.request.build_opener"] = "urllib.request.OpenerDirector"
METHODS["urllib.request.OpenerDirector"] = {"open": _call(2, socket_default=True)}

# http.client and the other socket-based clients: the constructor's timeout is the one.
CONSTRUCTORS["http.client.HTTPConnection"] = _client(2, socket_default=True)
# Position 4 on Python <= 3.11 (key_file, cert_file came first); keyword-only later.
CONSTRUCTORS["http.client.HTTPSConnection"] = _client(4, socket_default=True)
PARENTS["http.client.HTTPSConnection"] = "http.client.HTTPConnection"
CONSTRUCTORS["smtplib.SMTP"] = _client(3, socket_default=True)
CONSTRUCTORS["smtplib.SMTP_SSL"] = _client(5, socket_default=True)
CONSTRUCTORS["smtplib.LMTP"] = _client(4, socket_default=True)
CONSTRUCTORS["ftplib.FTP"] = _client(4, socket_default=True)
CONSTRUCTORS["ftplib.FTP_TLS"] = _client(7, socket_default=True)
CONSTRUCTORS["poplib.POP3"] = _client(2, socket_default=True)
CONSTRUCTORS["poplib.POP3_SSL"] = _client(4, socket_default=True)
CONSTRUCTORS["imaplib.IMAP4"] = _client(2, socket_default=True)
CONSTRUCTORS["imaplib.IMAP4_SSL"] = _client(5, socket_default=True)

# socket: a socket is bounded by its own timeout, set once.
FUNCTIONS["socket.create_connection"] = _call(
    1, socket_default=True, wrapper="stoppable.net.connect"
)
FUNCTIONS["socket.setdefaulttimeout"] = Spec(
    "setter",
    param="timeout",
    position=0,
    effect="default_timeout",
    fix="every new socket then blocks forever: pass a finite number of seconds",
)
RETURNS["socket.create_connection"] = "socket.socket"
RETURNS["socket.create_server"] = "socket.socket"
RETURNS["socket.socket.getsockname"] = "socket.address"
RETURNS["socket.fromfd"] = "socket.socket"
RETURNS["socket.socketpair"] = ("socket.socket", "socket.socket")
CONSTRUCTORS["socket.socket"] = Spec("wrap", wrapper="stoppable.net.Socket")
ALIASES["socket.SocketType"] = "socket.socket"
PARENTS["ssl.SSLSocket"] = "socket.socket"
_SOCKET_WRAPPED = {
    "connect": "stoppable.net.connect",
    "recv": "stoppable.net.recv",
    "recv_into": "stoppable.net.recv_into",
    "recvfrom": "stoppable.net.recvfrom",
    "recvfrom_into": None,
    "recvmsg": None,
    "recvmsg_into": None,
    "send": "stoppable.net.send",
    "sendall": "stoppable.net.sendall",
    "sendto": "stoppable.net.sendto",
    "sendmsg": None,
    "sendfile": None,
    "accept": "stoppable.net.accept",
}
METHODS["socket.socket"] = {
    name: _none(
        "call {recv}.settimeout(<seconds>) first"
        + (f", or use {wrapper}(sock, ..., timeout=..., stop=...)" if wrapper else ""),
        state="socket",
        socket_default=True,
        wrapper=wrapper,
    )
    for name, wrapper in _SOCKET_WRAPPED.items()
}
METHODS["socket.socket"]["settimeout"] = Spec(
    "setter",
    param="value",
    position=0,
    effect="bound",
    fix="the socket then blocks forever: pass a finite number of seconds",
)
METHODS["socket.socket"]["setblocking"] = Spec(
    "setter",
    param="flag",
    position=0,
    effect="blocking_flag",
    fix="the socket then blocks forever: call {recv}.settimeout(<seconds>) instead",
)
RETURNS["socket.socket.accept"] = ("socket.socket", None)
RETURNS["socket.socket.dup"] = "=self"
RETURNS["ssl.SSLContext.wrap_socket"] = "=arg0"
RETURNS["ssl.create_default_context"] = "ssl.SSLContext"
RETURNS["ssl.wrap_socket"] = "=arg0"

# select and selectors.
FUNCTIONS["select.select"] = _call(3, wrapper="stoppable.net")
RETURNS["select.select"] = ("select.ready", "select.ready", "select.ready")
RETURNS["select.poll"] = "select.poll"
RETURNS["select.epoll"] = "select.epoll"
RETURNS["select.devpoll"] = "select.devpoll"
RETURNS["select.kqueue"] = "select.kqueue"
_MS_POLL = _call(0, negative_unbounded=True, unit="milliseconds", wrapper="stoppable.net")
METHODS["select.poll"] = {"poll": _MS_POLL}
METHODS["select.devpoll"] = {"poll": _MS_POLL}
METHODS["select.epoll"] = {"poll": _call(0, negative_unbounded=True, wrapper="stoppable.net")}
METHODS["select.kqueue"] = {
    "control": _call(2, zero_at=1, zero_param="max_events", wrapper="stoppable.net")
}
METHODS["selectors.BaseSelector"] = {"select": _call(0, wrapper="stoppable.net")}
for _sel in ("Default", "Select", "Poll", "Epoll", "Devpoll", "Kqueue"):
    PARENTS[f"selectors.{_sel}Selector"] = "selectors.BaseSelector"

# queue.
_QUEUE_GET = _call(1, block="block", block_position=0, wrapper="stoppable.queues.get")
_QUEUE_PUT = _call(
    2, block="block", block_position=1, state="bounded_queue", wrapper="stoppable.queues.put"
)
_QUEUE_JOIN = _none(
    "there is no bounded Queue.join(); wait for the workers instead, e.g. "
    "stoppable.sync.join(worker, timeout=..., stop=...)"
)
METHODS["queue.Queue"] = {"get": _QUEUE_GET, "put": _QUEUE_PUT, "join": _QUEUE_JOIN}
METHODS["queue.SimpleQueue"] = {"get": _QUEUE_GET}
PARENTS["queue.LifoQueue"] = "queue.Queue"
PARENTS["queue.PriorityQueue"] = "queue.Queue"
for _q in ("queue.Queue", "queue.LifoQueue", "queue.PriorityQueue"):
    MAXSIZE[_q] = 0

# threading (and the multiprocessing primitives with the same methods).
_WAIT = _call(0, wrapper="stoppable.sync.wait")
METHODS["threading.Thread"] = {"join": _call(0, wrapper="stoppable.sync.join")}
CONSTRUCTORS["threading.Thread"] = Spec("wrap", wrapper="stoppable.sync.Thread")
PARENTS["threading.Timer"] = "threading.Thread"
METHODS["threading.Event"] = {"wait": _WAIT}
METHODS["threading.Condition"] = {
    "wait": _WAIT,
    "wait_for": _call(1, wrapper="stoppable.sync.wait"),
    "acquire": _call(
        1,
        block="blocking",
        block_position=0,
        negative_unbounded=True,
        wrapper="stoppable.sync.acquire",
    ),
}
METHODS["threading.Lock"] = {
    "acquire": _call(
        1,
        block="blocking",
        block_position=0,
        negative_unbounded=True,
        wrapper="stoppable.sync.acquire",
    )
}
PARENTS["threading.RLock"] = "threading.Lock"
METHODS["threading.Semaphore"] = {
    "acquire": _call(1, block="blocking", block_position=0, wrapper="stoppable.sync.acquire")
}
PARENTS["threading.BoundedSemaphore"] = "threading.Semaphore"
METHODS["threading.Barrier"] = {"wait": _call(0, state="ctor", wrapper="stoppable.sync.wait")}
CTOR_TIMEOUT["threading.Barrier"] = 2
for _private, _public in (
    ("_thread.allocate_lock", "threading.Lock"),
    ("_thread.LockType", "threading.Lock"),
    ("_thread.lock", "threading.Lock"),
    ("_thread.RLock", "threading.RLock"),
    ("threading._RLock", "threading.RLock"),
    ("threading._CRLock", "threading.RLock"),
    ("threading._PyRLock", "threading.RLock"),
):
    ALIASES[_private] = _public

# subprocess.
for _fn in ("run", "call", "check_call", "check_output"):
    FUNCTIONS[f"subprocess.{_fn}"] = _call(wrapper="stoppable.process.run")
for _fn in ("getoutput", "getstatusoutput"):
    FUNCTIONS[f"subprocess.{_fn}"] = _none(
        "use subprocess.run(..., timeout=...) or stoppable.process.run(..., timeout=..., stop=...)"
    )
CONSTRUCTORS["subprocess.Popen"] = Spec("wrap")
METHODS["subprocess.Popen"] = {
    "wait": _call(0, wrapper="stoppable.process.wait"),
    "communicate": _call(1, wrapper="stoppable.process.communicate"),
}

# concurrent.futures.
FUNCTIONS["concurrent.futures.wait"] = _call(1, wrapper="stoppable.futures.wait")
FUNCTIONS["concurrent.futures.as_completed"] = _call(1, wrapper="stoppable.futures.as_completed")
METHODS["concurrent.futures.Future"] = {
    "result": _call(0, wrapper="stoppable.futures.result"),
    "exception": _call(0, wrapper="stoppable.futures.exception"),
}
METHODS["concurrent.futures.Executor"] = {"map": _call()}
RETURNS["concurrent.futures.Executor.submit"] = "concurrent.futures.Future"
# A future that as_completed() yields is done: its result() returns at once.
RETURNS["concurrent.futures.as_completed"] = "concurrent.futures.AsCompleted"
ITERATES["concurrent.futures.AsCompleted"] = "concurrent.futures.DoneFuture"
RETURNS["asyncio.run_coroutine_threadsafe"] = "concurrent.futures.Future"
PARENTS["concurrent.futures.ThreadPoolExecutor"] = "concurrent.futures.Executor"
PARENTS["concurrent.futures.ProcessPoolExecutor"] = "concurrent.futures.Executor"
for _private, _public in (
    ("concurrent.futures._base.Future", "concurrent.futures.Future"),
    ("concurrent.futures._base.Executor", "concurrent.futures.Executor"),
    ("concurrent.futures._base.wait", "concurrent.futures.wait"),
    ("concurrent.futures._base.as_completed", "concurrent.futures.as_completed"),
    ("concurrent.futures.thread.ThreadPoolExecutor", "concurrent.futures.ThreadPoolExecutor"),
    ("concurrent.futures.process.ProcessPoolExecutor", "concurrent.futures.ProcessPoolExecutor"),
    ("asyncio.tasks.run_coroutine_threadsafe", "asyncio.run_coroutine_threadsafe"),
):
    ALIASES[_private] = _public

# multiprocessing.
_POOL_FIX = (
    "use stoppable.futures.{wrapper}({recv}, ..., timeout=..., stop=...), or "
    "{recv}.{async_name}(...) and wait on the result with a timeout"
)
METHODS["multiprocessing.pool.Pool"] = {
    name: _none(
        _POOL_FIX.replace("{async_name}", f"{name}_async").replace("{wrapper}", f"pool_{name}")
    )
    for name in ("map", "starmap", "apply")
}
METHODS["multiprocessing.pool.Pool"] |= {
    "join": _none(
        "wait on the AsyncResults with timeouts, then {recv}.terminate() or close(); "
        "Pool.join() itself cannot be bounded"
    ),
}
for _fn in ("apply_async", "map_async", "starmap_async"):
    RETURNS[f"multiprocessing.pool.Pool.{_fn}"] = "multiprocessing.pool.AsyncResult"
METHODS["multiprocessing.pool.AsyncResult"] = {
    "get": _call(0, wrapper="stoppable.futures.result"),
    "wait": _call(0, wrapper="stoppable.futures.result"),
}
PARENTS["multiprocessing.pool.ThreadPool"] = "multiprocessing.pool.Pool"
METHODS["multiprocessing.Process"] = {"join": _call(0)}
METHODS["multiprocessing.Queue"] = {
    "get": _QUEUE_GET,
    "put": _QUEUE_PUT,
}
MAXSIZE["multiprocessing.Queue"] = 0
MAXSIZE["multiprocessing.JoinableQueue"] = 0
METHODS["multiprocessing.JoinableQueue"] = {"join": _QUEUE_JOIN}
PARENTS["multiprocessing.JoinableQueue"] = "multiprocessing.Queue"
METHODS["multiprocessing.SimpleQueue"] = {
    "get": _none(
        "multiprocessing.SimpleQueue.get() has no timeout; use a multiprocessing.Queue "
        "and get(timeout=...), or stoppable.queues.get(q, timeout=..., stop=...)"
    )
}
_MP_ACQUIRE = _call(1, block="block", block_position=0, wrapper="stoppable.sync.acquire")
METHODS["multiprocessing.Lock"] = {"acquire": _MP_ACQUIRE}
PARENTS["multiprocessing.RLock"] = "multiprocessing.Lock"
PARENTS["multiprocessing.Semaphore"] = "multiprocessing.Lock"
PARENTS["multiprocessing.BoundedSemaphore"] = "multiprocessing.Lock"
PARENTS["multiprocessing.Event"] = "threading.Event"
PARENTS["multiprocessing.Condition"] = "threading.Condition"
PARENTS["multiprocessing.Barrier"] = "threading.Barrier"
RETURNS["multiprocessing.Pipe"] = (
    "multiprocessing.connection.Connection",
    "multiprocessing.connection.Connection",
)
_CONN_FIX = "call {recv}.poll(<seconds>) first and receive only when it returns True"
METHODS["multiprocessing.connection.Connection"] = {
    "recv": _none(_CONN_FIX, state="poll"),
    "recv_bytes": _none(_CONN_FIX, state="poll"),
    "recv_bytes_into": _none(_CONN_FIX, state="poll"),
    "poll": _call(0, missing_ok=True, effect="bound"),
}
METHODS["multiprocessing.connection.Listener"] = {
    "accept": _none(
        "Listener.accept() cannot be bounded; listen on a socket with a timeout "
        "(stoppable.net.accept) instead"
    )
}
FUNCTIONS["multiprocessing.connection.wait"] = _call(1)
RETURNS["multiprocessing.get_context"] = "=module:multiprocessing"
RETURNS["multiprocessing.Manager"] = "multiprocessing.managers.SyncManager"
for _name, _type in (
    ("Queue", "queue.Queue"),
    ("JoinableQueue", "queue.Queue"),
    ("Event", "threading.Event"),
    ("Lock", "threading.Lock"),
    ("RLock", "threading.RLock"),
    ("Semaphore", "threading.Semaphore"),
    ("BoundedSemaphore", "threading.BoundedSemaphore"),
    ("Condition", "threading.Condition"),
    ("Barrier", "threading.Barrier"),
    ("Pool", "multiprocessing.pool.Pool"),
):
    RETURNS[f"multiprocessing.managers.SyncManager.{_name}"] = _type
for _private, _public in (
    ("multiprocessing.Pool", "multiprocessing.pool.Pool"),
    ("multiprocessing.dummy.Pool", "multiprocessing.pool.ThreadPool"),
    ("multiprocessing.pool.ApplyResult", "multiprocessing.pool.AsyncResult"),
    ("multiprocessing.pool.MapResult", "multiprocessing.pool.AsyncResult"),
    ("multiprocessing.context.Process", "multiprocessing.Process"),
    ("multiprocessing.process.BaseProcess", "multiprocessing.Process"),
    ("multiprocessing.dummy.Process", "threading.Thread"),
    ("multiprocessing.dummy.Queue", "queue.Queue"),
    ("multiprocessing.dummy.Event", "threading.Event"),
    ("multiprocessing.dummy.Lock", "threading.Lock"),
    ("multiprocessing.queues.Queue", "multiprocessing.Queue"),
    ("multiprocessing.queues.JoinableQueue", "multiprocessing.JoinableQueue"),
    ("multiprocessing.queues.SimpleQueue", "multiprocessing.SimpleQueue"),
    ("multiprocessing.synchronize.Lock", "multiprocessing.Lock"),
    ("multiprocessing.synchronize.RLock", "multiprocessing.RLock"),
    ("multiprocessing.synchronize.Semaphore", "multiprocessing.Semaphore"),
    ("multiprocessing.synchronize.BoundedSemaphore", "multiprocessing.BoundedSemaphore"),
    ("multiprocessing.synchronize.Event", "multiprocessing.Event"),
    ("multiprocessing.synchronize.Condition", "multiprocessing.Condition"),
    ("multiprocessing.synchronize.Barrier", "multiprocessing.Barrier"),
    ("multiprocessing.connection.PipeConnection", "multiprocessing.connection.Connection"),
    ("multiprocessing.context.BaseContext", "multiprocessing"),
):
    ALIASES[_private] = _public
RETURNS["importlib.import_module"] = "=module"
PARENTS["socketserver.StreamRequestHandler"] = "socketserver.BaseRequestHandler"
METHODS["socketserver.BaseRequestHandler"] = {}

#: Types whose instances are only created, never judged by their constructor: every
#: type named in the tables above.
KNOWN_TYPES: frozenset[str] = frozenset(
    {*CONSTRUCTORS, *METHODS, *PARENTS, *PARENTS.values(), *MAXSIZE}
    | {value for value in RETURNS.values() if isinstance(value, str) and "=" not in value}
    | {
        item
        for value in RETURNS.values()
        if isinstance(value, tuple)
        for item in value
        if item is not None
    }
    | {*CTOR_TIMEOUT}
    | {*ITERATES, *ITERATES.values()}
)

#: The last part of every qualified name the tables know, and of every module in them:
#: the names a same-package re-export can give a meaning to.
LEAF_NAMES: frozenset[str] = frozenset(
    part
    for name in (*FUNCTIONS, *KNOWN_TYPES, *RETURNS, *ALIASES)
    for part in (name.rpartition(".")[2], name.partition(".")[0])
)

#: Methods that change the state other rules read; resolved before the calls they bound.
MUTATORS = frozenset({"settimeout", "setblocking", "poll"})

#: Method names worth a look on a receiver whose type is unknown (strict mode only), with
#: the keywords that still fit the blocking signature, the most positional arguments the
#: blocking form takes, and the wrapper to suggest. ``dict.get(key)`` and
#: ``str.join(items)`` always take a positional argument, so they never match.
UNKNOWN_RECEIVER: dict[str, tuple[frozenset[str], int, str]] = {
    "get": (frozenset({"block", "timeout"}), 0, "stoppable.queues.get"),
    "join": (frozenset({"timeout"}), 0, "stoppable.sync.join"),
    "wait": (frozenset({"timeout"}), 0, "stoppable.sync.wait"),
    "result": (frozenset({"timeout"}), 0, "stoppable.futures.result"),
    "acquire": (frozenset({"blocking", "block", "timeout"}), 0, "stoppable.sync.acquire"),
    "accept": (frozenset(), 0, "stoppable.net.accept"),
    "communicate": (frozenset({"input", "timeout"}), 0, "stoppable.process.communicate"),
}

#: Constructors of timeout objects whose arguments decide whether the timeout is bounded.
TIMEOUT_TYPES = frozenset({"urllib3.Timeout", "httpx.Timeout"})


#: Clients whose every request takes its own timeout (urllib3's pools): made without
#: one, they are reported only once a request without one goes through them, or when
#: they are returned for others to use.
PER_REQUEST_CLIENTS = frozenset(
    {
        "urllib3.PoolManager",
        "urllib3.ProxyManager",
        "urllib3.HTTPConnectionPool",
        "urllib3.HTTPSConnectionPool",
        "urllib3.connection_from_url",
        "urllib3.proxy_from_url",
    }
)

#: Methods after which a wait on the same object returns at once.
FINISHERS: dict[str, tuple[str, ...]] = {"subprocess.Popen": ("kill",)}

#: socketserver handlers whose ``self.request`` is the connected socket.
REQUEST_HANDLERS = frozenset(
    {"socketserver.BaseRequestHandler", "socketserver.StreamRequestHandler"}
)


def is_socket(type_name: str) -> bool:
    """Whether ``type_name`` is ``socket.socket`` or a known subclass."""
    return "socket.socket" in lineage(type_name)


def canonical(name: str) -> str:
    """The canonical spelling of a qualified name (aliases resolved, prefix first)."""
    found = ALIASES.get(name)
    if found is not None:
        return found
    head, _, tail = name.rpartition(".")
    if head and head in ALIASES:
        return f"{ALIASES[head]}.{tail}"
    return name


def lineage(type_name: str) -> Iterable[str]:
    """A known type and its known parents, nearest first."""
    seen = 0
    current: str | None = type_name
    while current is not None and seen < 16:
        yield current
        current = PARENTS.get(current)
        seen += 1


def method_spec(type_name: str, method: str) -> tuple[str, Spec] | None:
    """The spec of ``method`` on ``type_name`` or a parent, with the owning type."""
    for owner in lineage(type_name):
        specs = METHODS.get(owner)
        if specs is not None:
            spec = specs.get(method)
            if spec is not None:
                return owner, spec
    return None


def method_returns(type_name: str, method: str) -> str | tuple[str | None, ...] | None:
    """What ``method`` on ``type_name`` (or a parent) returns, if known."""
    for owner in lineage(type_name):
        found = RETURNS.get(f"{owner}.{method}")
        if found is not None:
            return found
    return None


def constructor_spec(type_name: str) -> Spec | None:
    """The constructor spec of a type or of its nearest known parent."""
    for owner in lineage(type_name):
        spec = CONSTRUCTORS.get(owner)
        if spec is not None:
            return spec
    return None


def maxsize_position(type_name: str) -> int | None:
    """Where a queue type takes ``maxsize``, or None for types that are not queues."""
    for owner in lineage(type_name):
        if owner in MAXSIZE:
            return MAXSIZE[owner]
    return None


def ctor_timeout_position(type_name: str) -> int | None:
    """Where a type's constructor takes a default timeout, or None if it takes none."""
    for owner in lineage(type_name):
        if owner in CTOR_TIMEOUT:
            return CTOR_TIMEOUT[owner]
    return None


def with_wrappers(specs: Mapping[str, Spec], wrappers: Mapping[str, str]) -> dict[str, Spec]:
    """``specs`` with the strict rule's wrapper replaced where ``wrappers`` names one."""
    out = dict(specs)
    for name, spec in specs.items():
        if name in wrappers:
            out[name] = replace(spec, wrapper=wrappers[name] or None)
    return out


def all_entries() -> list[tuple[str, Spec]]:
    """Every function, constructor and method in the table, sorted, for docs and --list."""
    rows: list[tuple[str, Spec]] = []
    rows.extend(FUNCTIONS.items())
    rows.extend(CONSTRUCTORS.items())
    for type_name, methods in METHODS.items():
        rows.extend((f"{type_name}.{name}", spec) for name, spec in methods.items())
    return sorted(rows)

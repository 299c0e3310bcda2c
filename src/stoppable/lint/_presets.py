"""Opt-in tables for third-party blocking APIs (``presets = ["celery", ...]``).

Each preset adds calls to the checker's tables the way ``blocking-calls`` does, for a
library that is not part of the default set because its blocking calls are known only
by convention: a client made without the timeout that bounds every later request, or a
result object whose ``get()`` waits. The types a preset names are resolved whether or
not it is on (so ``--list-calls`` and annotations know them); only the judgement is
opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stoppable.lint import _signatures as sig
from stoppable.lint._rules import GUARD
from stoppable.lint._signatures import Spec

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """The calls one preset judges."""

    summary: str
    functions: dict[str, Spec] = field(default_factory=dict)
    constructors: dict[str, Spec] = field(default_factory=dict)
    methods: dict[str, dict[str, Spec]] = field(default_factory=dict)

    def types(self) -> set[str]:
        """Every type the preset names."""
        return {*self.constructors, *self.methods}


# Third-party calls take no stop: the strict rule suggests the guard around them.
def _call(position: int | None = None, **kw: object) -> Spec:
    return Spec("call", position=position, wrapper=GUARD, **kw)  # type: ignore[arg-type]


def _client(param: str, position: int | None = None) -> Spec:
    return Spec("client", param=param, position=position, wrapper=GUARD)


_CHANNEL_FIX = (
    "call {recv}.settimeout(<seconds>) first, or run it inside "
    "stoppable.guard(timeout=..., stop=...)"
)
_CHANNEL_SETTER = Spec(
    "setter",
    param="timeout",
    position=0,
    effect="bound",
    fix="the channel then blocks forever: pass a finite number of seconds",
)

PRESETS: dict[str, Preset] = {
    "celery": Preset(
        "AsyncResult.get()/wait() and GroupResult.get()/join() without a timeout",
        methods={
            "celery.result.AsyncResult": {"get": _call(0), "wait": _call(0)},
            "celery.result.ResultSet": {"get": _call(0), "join": _call(0)},
        },
    ),
    "billiard": Preset(
        "billiard pools and their results, judged like multiprocessing's",
        methods={
            "billiard.pool.Pool": dict(sig.METHODS["multiprocessing.pool.Pool"]),
            "billiard.pool.ApplyResult": dict(sig.METHODS["multiprocessing.pool.AsyncResult"]),
        },
    ),
    "paramiko": Preset(
        "Transport.accept(), SSHClient.connect() and channel reads without a timeout",
        methods={
            "paramiko.Transport": {"accept": _call(0)},
            "paramiko.SSHClient": {"connect": _call(6)},
            "paramiko.Channel": {
                name: Spec(
                    "none",
                    param="",
                    state="socket",
                    fix=_CHANNEL_FIX,
                    wrapper=GUARD,
                )
                for name in ("recv", "recv_stderr", "send", "sendall", "recv_exit_status")
            }
            | {"settimeout": _CHANNEL_SETTER},
        },
    ),
    "kafka": Preset(
        "kafka-python futures' get() and the producer's flush() without a timeout",
        methods={
            "kafka.producer.future.FutureRecordMetadata": {"get": _call(0)},
            "kafka.KafkaProducer": {"flush": _call(0)},
        },
    ),
    "redis": Preset(
        "redis-py clients and pools made without socket_timeout",
        constructors={
            "redis.Redis": _client("socket_timeout", 4),
            "redis.ConnectionPool": _client("socket_timeout"),
        },
    ),
    "pymysql": Preset(
        "PyMySQL connections made without read_timeout",
        functions={"pymysql.connect": _client("read_timeout")},
        constructors={"pymysql.connections.Connection": _client("read_timeout")},
    ),
    "pika": Preset(
        "pika connection parameters without blocked_connection_timeout",
        constructors={"pika.ConnectionParameters": _client("blocked_connection_timeout")},
    ),
    "boto3": Preset(
        "botocore Config without read_timeout (60 s per attempt by default, times retries)",
        constructors={"botocore.config.Config": _client("read_timeout")},
    ),
}

# How the types are reached, whether or not the preset is on.
for _name, _target in (
    ("celery.result.GroupResult", "celery.result.ResultSet"),
    ("billiard.pool.ThreadPool", "billiard.pool.Pool"),
    ("redis.StrictRedis", "redis.Redis"),
    ("redis.client.Redis", "redis.Redis"),
    ("redis.client.StrictRedis", "redis.Redis"),
    ("redis.connection.ConnectionPool", "redis.ConnectionPool"),
    ("pymysql.Connect", "pymysql.connect"),
    ("pymysql.Connection", "pymysql.connections.Connection"),
    ("billiard.Pool", "billiard.pool.Pool"),
    ("kafka.producer.KafkaProducer", "kafka.KafkaProducer"),
    ("paramiko.client.SSHClient", "paramiko.SSHClient"),
    ("paramiko.transport.Transport", "paramiko.Transport"),
    ("paramiko.channel.Channel", "paramiko.Channel"),
    ("boto3.session.Config", "botocore.config.Config"),
):
    sig.ALIASES.setdefault(_name, _target)
sig.PARENTS.setdefault("celery.result.GroupResult", "celery.result.ResultSet")
for _fn in ("apply_async", "map_async", "starmap_async"):
    sig.RETURNS.setdefault(f"billiard.pool.Pool.{_fn}", "billiard.pool.ApplyResult")
sig.RETURNS.setdefault("celery.app.task.Task.delay", "celery.result.AsyncResult")
sig.RETURNS.setdefault("celery.app.task.Task.apply_async", "celery.result.AsyncResult")
sig.RETURNS.setdefault("celery.Celery.AsyncResult", "celery.result.AsyncResult")
sig.RETURNS.setdefault("celery.Celery.send_task", "celery.result.AsyncResult")
sig.RETURNS.setdefault("kafka.KafkaProducer.send", "kafka.producer.future.FutureRecordMetadata")
sig.RETURNS.setdefault("paramiko.Transport.open_session", "paramiko.Channel")
sig.RETURNS.setdefault("paramiko.Transport.accept", "paramiko.Channel")
sig.RETURNS.setdefault("paramiko.SSHClient.get_transport", "paramiko.Transport")
sig.RETURNS.setdefault("paramiko.SSHClient.invoke_shell", "paramiko.Channel")
sig.RETURNS.setdefault("redis.from_url", "redis.Redis")

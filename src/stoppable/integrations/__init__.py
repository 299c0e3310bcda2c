"""Task queues whose tasks stop cooperatively: a time limit, a revoke or a worker shutdown.

Each integration runs every task inside ``stoppable.guard`` with the task's time limit
and a stop, so a blocked task ends at once, even inside a system call, instead of being
killed by an asynchronous exception (which cannot interrupt a system call and can fire
inside a ``with lock:`` block) or not at all.

- ``stoppable.integrations.dramatiq``: ``install(broker)`` (extra ``stoppable[dramatiq]``).
- ``stoppable.integrations.celery``: ``install(app)`` (extra ``stoppable[celery]``).

Nothing is imported here: each module imports its task queue, which is an optional
dependency.
"""

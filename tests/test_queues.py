"""stoppable.queues: gets and puts that end by their deadline or a stop, losing nothing."""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stoppable import DeadlineExceeded, StopEvent, Stopped, checkpoint, queues, sync

from .support import LONG, SHORT, WAKE_BOUND, start_call, wait_until, wait_until_blocked


class TaggedQueue(queue.Queue[int]):
    """A user's subclass that reorganises the queue: waits must still work."""

    def _put(self, item: int) -> None:
        super()._put(item * 10)


QUEUE_KINDS: list[Callable[[], Any]] = [
    queue.Queue,
    queue.LifoQueue,
    queue.PriorityQueue,
    TaggedQueue,
]


@pytest.fixture
def mp_queue() -> Iterator[multiprocessing.queues.Queue[int]]:
    q: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
    yield q
    q.close()
    q.join_thread()


# --- get and put ----------------------------------------------------------------


@pytest.mark.parametrize("make", QUEUE_KINDS)
def test_put_then_get_follows_the_queue_order(make: Callable[[], queue.Queue[int]]) -> None:
    q = make()
    plain = make()
    for item in (3, 1, 2):
        queues.put(q, item, timeout=1)
        plain.put(item)
    got = [queues.get(q, timeout=1) for _ in range(3)]
    assert got == [plain.get() for _ in range(3)]
    assert q.unfinished_tasks == 3


def test_simple_queue_and_multiprocessing_queues(
    mp_queue: multiprocessing.queues.Queue[int],
) -> None:
    joinable: multiprocessing.queues.JoinableQueue[int] = multiprocessing.JoinableQueue()
    q: Any
    for q in (queue.SimpleQueue(), mp_queue, joinable):
        queues.put(q, 1, timeout=1)
        queues.put(q, 2, timeout=1)
        assert queues.get(q, timeout=LONG) == 1
        assert queues.get(q, timeout=LONG) == 2
    joinable.close()
    joinable.join_thread()


def test_get_from_another_process() -> None:
    context = multiprocessing.get_context("spawn")
    q: multiprocessing.queues.Queue[int] = context.Queue()
    child = context.Process(target=q.put, args=(42,))
    child.start()
    try:
        assert queues.get(q, timeout=LONG) == 42
    finally:
        child.join(LONG)
        q.close()
        q.join_thread()


def test_unsupported_queue_is_refused() -> None:
    with pytest.raises(TypeError, match=r"q must be a queue\.Queue"):
        queues.get([1, 2], timeout=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"q must be a queue\.Queue"):
        queues.put([], 1, timeout=1)  # type: ignore[arg-type]


# --- timeouts -------------------------------------------------------------------


@pytest.mark.parametrize("make", [*QUEUE_KINDS, queue.SimpleQueue, multiprocessing.Queue])
def test_get_times_out_as_queue_empty(make: Callable[[], Any]) -> None:
    q: Any = make()
    started = time.monotonic()
    with pytest.raises(queue.Empty) as info:
        queues.get(q, timeout=SHORT)
    elapsed = time.monotonic() - started
    assert isinstance(info.value, DeadlineExceeded)
    assert isinstance(info.value, queues.QueueEmptyDeadline)
    assert info.value.timeout == SHORT
    assert "queue get timed out after 0.2 s" in str(info.value)
    assert SHORT <= elapsed < SHORT + WAKE_BOUND


@pytest.mark.parametrize("make", [queue.Queue, multiprocessing.Queue])
def test_put_on_a_full_queue_times_out_as_queue_full(make: Callable[[int], Any]) -> None:
    q = make(1)
    queues.put(q, 1, timeout=1)
    with pytest.raises(queue.Full) as info:
        queues.put(q, 2, timeout=SHORT)
    assert isinstance(info.value, queues.QueueFullDeadline)
    assert queues.get(q, timeout=LONG) == 1
    with pytest.raises(queue.Empty):
        queues.get(q, timeout=0)  # 2 was never enqueued


def test_timeout_zero_takes_what_is_there_without_waiting() -> None:
    q: queue.Queue[int] = queue.Queue()
    with pytest.raises(queues.QueueEmptyDeadline):
        queues.get(q, timeout=0)
    q.put(7)
    assert queues.get(q, timeout=0) == 7


def test_a_get_woken_by_a_put_returns_the_item(no_polling: None) -> None:
    q: queue.Queue[int] = queue.Queue()
    stop = StopEvent()
    thread, outcome = start_call(lambda: queues.get(q, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    q.put(5)
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.result == 5
    assert stop._callback_count() == 0


def test_a_put_woken_by_a_get_enqueues(no_polling: None) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    q.put(1, timeout=LONG)
    thread, outcome = start_call(lambda: queues.put(q, 2, timeout=LONG, stop=StopEvent()))
    wait_until_blocked(thread)
    assert q.get(timeout=LONG) == 1
    assert outcome.done.wait(WAKE_BOUND)
    assert outcome.error is None
    assert q.get_nowait() == 2


# --- stops ----------------------------------------------------------------------


@pytest.mark.parametrize("make", QUEUE_KINDS)
def test_stop_wakes_a_blocked_get_without_polling(
    make: Callable[[], queue.Queue[int]], no_polling: None
) -> None:
    q = make()
    stop = StopEvent()
    thread, outcome = start_call(lambda: queues.get(q, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set("enough")
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert outcome.error.reason == "enough"
    assert stop._callback_count() == 0


def test_stop_wakes_a_blocked_put_without_polling(no_polling: None) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    q.put(1, timeout=LONG)
    stop = StopEvent()
    thread, outcome = start_call(lambda: queues.put(q, 2, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)
    assert list(q.queue) == [1]
    assert q.unfinished_tasks == 1


@pytest.mark.parametrize("make", [queue.SimpleQueue, multiprocessing.Queue])
@pytest.mark.parametrize("stop_kind", [StopEvent, threading.Event])
def test_sliced_queues_notice_a_stop_within_a_slice(
    make: Callable[[], Any], stop_kind: Callable[[], Any], fast_polling: None
) -> None:
    q = make()
    stop = stop_kind()
    thread, outcome = start_call(lambda: queues.get(q, timeout=LONG, stop=stop))
    wait_until_blocked(thread)
    stop.set()
    assert outcome.done.wait(WAKE_BOUND)
    assert isinstance(outcome.error, Stopped)


def test_a_stopped_get_leaves_the_items() -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    stop = StopEvent()
    stop.set()
    with pytest.raises(Stopped):
        queues.get(q, timeout=LONG, stop=stop)
    assert list(q.queue) == [1]


def test_one_stop_wakes_many_waiters_on_one_queue(no_polling: None) -> None:
    q: queue.Queue[int] = queue.Queue()
    stop = StopEvent()
    calls = [start_call(lambda: queues.get(q, timeout=LONG, stop=stop)) for _ in range(50)]
    for thread, _ in calls:
        wait_until_blocked(thread)
    stop.set()
    for _, outcome in calls:
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
    assert stop._callback_count() == 0


def test_waiters_without_the_stop_keep_waiting_and_get_the_items(no_polling: None) -> None:
    # A stop wakes every waiter on the condition; the ones it does not concern must
    # go back to waiting, and none of them may lose a wake-up meant for them.
    q: queue.Queue[int] = queue.Queue()
    stop = StopEvent()
    stopped = [start_call(lambda: queues.get(q, timeout=LONG, stop=stop)) for _ in range(5)]
    others = [start_call(lambda: queues.get(q, timeout=LONG)) for _ in range(5)]
    for thread, _ in stopped + others:
        wait_until_blocked(thread)
    stop.set()
    for _, outcome in stopped:
        assert outcome.done.wait(WAKE_BOUND)
    assert not any(outcome.done.is_set() for _, outcome in others)
    for item in range(5):
        q.put(item)
    for _, outcome in others:
        assert outcome.done.wait(WAKE_BOUND)
    assert sorted(outcome.result for _, outcome in others) == [0, 1, 2, 3, 4]


# --- take: a work item goes back if the worker is stopped ------------------------


def test_take_marks_the_item_done_when_the_block_ends() -> None:
    q: queue.Queue[str] = queue.Queue()
    q.put("job")
    with queues.take(q, timeout=1) as item:
        assert item == "job"
        assert q.unfinished_tasks == 1
    assert q.unfinished_tasks == 0
    q.join()  # noqa: STP102 - returns at once: nothing is unfinished


def test_take_puts_the_item_back_when_stopped_in_the_block() -> None:
    q: queue.Queue[str] = queue.Queue()
    q.put("job")
    stop = StopEvent()
    with pytest.raises(Stopped), queues.take(q, timeout=1, stop=stop) as item:
        stop.set()
        checkpoint(stop)
        pytest.fail("not reached")
    assert item == "job"
    assert list(q.queue) == ["job"]
    assert q.unfinished_tasks == 1  # still one unfinished task, not two


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_take_puts_the_item_back_on_any_request_to_stop(interruption: type[BaseException]) -> None:
    q: queue.SimpleQueue[str] = queue.SimpleQueue()
    q.put("job")
    with pytest.raises(interruption), queues.take(q, timeout=1):
        raise interruption
    assert q.get_nowait() == "job"


def test_take_counts_an_ordinary_failure_as_done_and_reraises() -> None:
    q: queue.Queue[str] = queue.Queue()
    q.put("poison")
    with pytest.raises(ValueError, match="bad item"), queues.take(q, timeout=1):
        raise ValueError("bad item")
    assert q.empty()
    assert q.unfinished_tasks == 0


def test_take_puts_back_into_a_full_bounded_queue_without_blocking() -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    q.put(1, timeout=LONG)
    stop = StopEvent()
    with pytest.raises(Stopped), queues.take(q, timeout=1, stop=stop):
        q.put(2, timeout=LONG)  # another producer refills the queue meanwhile
        stop.set()
        checkpoint(stop)
    assert sorted(q.queue) == [1, 2]


def test_take_gets_nothing_until_entered_and_refuses_bad_queues() -> None:
    q: queue.Queue[int] = queue.Queue()
    q.put(1)
    taker = queues.take(q, timeout=1)
    assert q.qsize() == 1
    with taker:
        pass
    with pytest.raises(RuntimeError), taker:
        pass
    with pytest.raises(TypeError, match="take"):
        queues.take(multiprocessing.Queue(), timeout=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [queue.Queue, queue.SimpleQueue])
def test_twenty_thousand_items_eight_consumers_stopped_at_random(make: Callable[[], Any]) -> None:
    # The motivating data-loss case: consumers stopped at random moments, some while
    # waiting, some in the middle of an item. Every item must be handled exactly
    # once or still be in the queue.
    total = 20_000
    q = make()
    handled: list[int] = []

    def consume(*, stop: StopEvent) -> None:
        while True:
            with queues.take(q, timeout=LONG, stop=stop) as item:
                time.sleep(0)  # work: let the other threads (and the stops) in
                checkpoint(stop)  # a stop here, mid-item, must put it back
                handled.append(item)

    consumers = [sync.Thread(target=consume) for _ in range(8)]
    for consumer in consumers:
        consumer.start()

    def produce(*, stop: StopEvent) -> None:
        for item in range(total):
            queues.put(q, item, timeout=LONG)

    producer = sync.Thread(target=produce)
    producer.start()
    # Stop the consumers one by one as the work passes random points.
    rng = random.Random(20_000)
    for consumer, point in zip(consumers, sorted(rng.sample(range(500, 15_000), 8)), strict=True):
        wait_until(lambda point=point: len(handled) >= point)  # type: ignore[misc]
        consumer.stop.set("random")
    sync.join(producer, timeout=LONG)
    for consumer in consumers:
        sync.join(consumer, timeout=LONG)
        assert consumer.stopped is not None
    left = []
    while True:
        try:
            left.append(q.get_nowait())
        except queue.Empty:
            break
    counts = Counter(handled + left)
    assert sorted(counts) == list(range(total))
    assert set(counts.values()) == {1}
    assert handled, "the consumers handled nothing: the test proves nothing"
    assert left, "every item was handled before the last stop: the test proves nothing"


# --- idle cost ------------------------------------------------------------------


def test_three_hundred_idle_waiters_use_next_to_no_cpu() -> None:
    stop = StopEvent()
    q: queue.Queue[int] = queue.Queue()
    event = threading.Event()
    semaphore = threading.Semaphore(0)
    waits: list[Callable[[], object]] = [
        lambda: queues.get(q, timeout=LONG, stop=stop),
        lambda: sync.wait(event, timeout=LONG, stop=stop),
        lambda: sync.acquire(semaphore, timeout=LONG, stop=stop),
    ]
    calls = [start_call(waits[i % 3]) for i in range(300)]
    for thread, _ in calls:
        wait_until_blocked(thread)
    cpu_before, wall_before = time.process_time(), time.monotonic()
    time.sleep(1.0)  # measuring idle cost over a second, not ordering anything
    cpu = time.process_time() - cpu_before
    wall = time.monotonic() - wall_before
    stop.set()
    for _, outcome in calls:
        assert outcome.done.wait(WAKE_BOUND)
        assert isinstance(outcome.error, Stopped)
    # 300 waiters polling every 50 ms would cost ~10-30 % of a core here; these cost
    # nothing but the test's own bookkeeping.
    assert cpu / wall < 0.05, f"idle waiters used {cpu / wall:.1%} of a core"

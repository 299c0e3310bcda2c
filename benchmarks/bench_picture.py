"""The README's picture: stop latency and idle CPU, stoppable beside the hand-written loop.

The hand-written loop is what users write without the library: a stop ``Event``
checked between ``Queue.get(timeout=slice)`` calls. Its slice trades one cost for the
other (a short slice stops sooner and burns more CPU while idle); a woken wait has
neither. Measured in this run, then drawn to ``docs/stop-latency.png`` (needs
matplotlib, a bench extra).
"""

from __future__ import annotations

import queue
import statistics
import threading
from pathlib import Path

from benchmarks._harness import Table, us
from benchmarks.bench_core import LONG, hand_written, idle_cpu, stop_latency
from stoppable import StopEvent, StopLike, queues

PICTURE = Path(__file__).resolve().parent.parent / "docs" / "stop-latency.png"
SLICES = (0.01, 0.05, 0.1)
WAITERS = 1000


def _measure() -> list[tuple[str, float, float]]:
    """``(label, stop latency p50 in seconds, idle share of a core)`` per approach."""

    def ours(stop: StopLike) -> None:
        queues.get(queue.Queue(), timeout=LONG, stop=stop)

    stop = StopEvent()
    rows = [
        (
            "stoppable.queues.get",
            statistics.median(stop_latency(ours, StopEvent, 100)),
            idle_cpu(WAITERS, lambda: ours(stop), stop.set),
        )
    ]
    for slice_seconds in SLICES:
        block = hand_written(slice_seconds)
        flag = threading.Event()
        rows.append(
            (
                f"hand-written loop,\n{slice_seconds * 1000:g} ms slice",
                statistics.median(stop_latency(block, threading.Event, 20, jitter=slice_seconds)),
                idle_cpu(WAITERS, lambda block=block, flag=flag: block(flag), flag.set),  # type: ignore[misc]
            )
        )
    return rows


def _draw(rows: list[tuple[str, float, float]]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [label for label, _, _ in rows]
    colours = ["#2a7d4f"] + ["#b0b0b0"] * (len(rows) - 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    bars = left.barh(labels, [latency * 1000 for _, latency, _ in rows], color=colours)
    left.bar_label(bars, labels=[f" {latency * 1000:.2g} ms" for _, latency, _ in rows])
    left.set_xscale("log")
    left.set_xlim(right=max(latency for _, latency, _ in rows) * 1000 * 8)
    left.set_xlabel("stop latency, p50 (ms, log scale)")
    left.invert_yaxis()
    bars = right.barh(labels, [cpu * 100 for _, _, cpu in rows], color=colours)
    right.bar_label(bars, labels=[f" {cpu:.2%}" for _, _, cpu in rows])
    right.set_xlim(right=max(cpu for _, _, cpu in rows) * 100 * 1.3)
    right.set_xlabel(f"CPU while {WAITERS} threads wait idle (% of one core)")
    right.invert_yaxis()
    right.set_yticklabels([])
    figure.suptitle("A blocked Queue.get that must stop: stoppable vs the hand-written loop")
    figure.tight_layout()
    figure.savefig(PICTURE, dpi=110)
    plt.close(figure)
    return True


def run() -> list[Table]:
    """Measure, draw the picture, and return the figures as a table."""
    rows = _measure()
    table = Table(
        "Stop latency and idle CPU: stoppable vs the hand-written polling loop",
        ["approach", "stop latency p50", f"idle CPU, {WAITERS} waiters"],
    )
    for label, latency, cpu in rows:
        table.add(label.replace("\n", " "), us(latency), f"{cpu:.2%}")
    drawn = _draw(rows)
    table.notes.append(
        f"Drawn to docs/{PICTURE.name}." if drawn else "matplotlib is missing: no picture drawn."
    )
    return [table]

"""Shared pieces for the benchmark modules: tables and statistics.

Every benchmark module is named ``bench_<family>.py`` and exposes ``run() -> list[Table]``.
Speed figures are ratios against the plain library measured in the same run, so they stay
meaningful on a loaded or slower machine.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Table:
    """One markdown table of results."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        """Append a row; cells are formatted with ``str``."""
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)} columns")
        self.rows.append([str(cell) for cell in cells])

    def markdown(self) -> str:
        """Render the table, its title and its notes as markdown."""
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows)
        lines.extend(f"\n{note}" for note in self.notes)
        return "\n".join(lines)


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def us(seconds: float) -> str:
    """Format seconds as microseconds."""
    return f"{seconds * 1e6:.0f} us"


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1e3:.1f} ms"


def p50_p99(samples: list[float]) -> str:
    """``p50 / p99`` of latency samples, in microseconds."""
    return f"{us(statistics.median(samples))} / {us(percentile(samples, 0.99))}"


def verdict(met: bool) -> str:
    """Mark a target as met or missed."""
    return "met" if met else "MISSED"

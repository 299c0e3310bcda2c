"""The examples run, and do what their docstrings say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_stops_every_worker_and_keeps_the_item() -> None:
    result = run_example("demo.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    noticed = [line for line in lines if line.endswith(" ms")]
    assert len(noticed) == 8
    for line in noticed:
        assert float(line.split()[-2]) < 1000, line  # every worker noticed within a second
    assert "went back on the queue: ['invoice-42']" in result.stdout

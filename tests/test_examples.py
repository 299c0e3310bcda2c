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


def test_pipeline_stops_on_sigterm_and_accounts_for_every_item() -> None:
    import json
    import signal
    import time

    items = 40
    child = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "pipeline.py"), "--items", str(items), "--work", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("started")
        for _ in range(3):  # some items went all the way through: the pipeline runs
            assert child.stdout.readline().startswith("done")
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == 0, err
    assert took < 10, took  # nothing waited out its timeout
    summary = json.loads(out.splitlines()[-1])
    assert summary["reason"] == "SIGTERM"
    done, stopped, left = summary["done"], summary["stopped"], summary["not_started"]
    accounted = done + [int(i) for i in stopped] + left
    assert sorted(accounted) == list(range(items))  # each item exactly once
    assert len(done) >= 3
    assert left
    assert summary["workers"]
    for pid in summary["workers"]:  # no worker outlived the pipeline (no orphan)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert b"multiprocessing" not in cmdline
        assert b"pipeline" not in cmdline

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


def test_net_service_keeps_accepting_after_idling_past_every_timeout_it_uses() -> None:
    import importlib.util
    import socket
    import time

    from .support import LONG, SHORT, WAKE_BOUND, wait_until

    spec = importlib.util.spec_from_file_location("net_service", EXAMPLES / "net_service.py")
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    # Every timeout the service uses, made short: an accept loop bounded by any of them
    # would have died by the time the second client connects.
    example.IDLE_TIMEOUT = example.MINUTE = SHORT  # type: ignore[attr-defined]
    service = example.Service()
    service.start()
    try:
        with socket.create_connection(service.address, timeout=LONG) as idle:
            # Idle past the idle timeout: that client is dropped (end of file)...
            assert idle.recv(1) == b""
        time.sleep(3 * SHORT)  # ...and the whole service idles past it too
        with socket.create_connection(service.address, timeout=LONG) as client:
            client.sendall(b"5\n")
            assert client.recv(5) == b"rrrrr"  # still accepting, still serving
    finally:
        set_at = time.monotonic()
        service.stop.set("shutdown")
        with service._lock:
            threads = list(service.threads)
        for thread in threads:
            thread.join(LONG)
    assert time.monotonic() - set_at < WAKE_BOUND
    wait_until(lambda: "accept loop" in service.stopped_at)
    assert any("idle, dropped" in name for name in service.stopped_at)

"""``make compat``: requests' and urllib3's own test suites, on their classes and on ours.

Downloads the pinned sdists (their tests ship in them), builds a venv in ``.compat/``
with their test dependencies and this checkout of stoppable, and runs each suite
twice: unmodified, then with ``compat/substitute.py`` replacing the client classes by
``stoppable.http``'s (test bodies untouched). Prints the tests whose outcome differs,
grouped by cause, with the documented refusals counted apart, and the wall time of
each run. Slow (minutes): not part of ``make test`` or CI.

    python compat/run.py [--suite requests|urllib3] [--reuse]

``--reuse`` skips the runs whose results are already in ``.compat/results``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import venv
import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".compat"
VENV = WORK / "venv"
PYTHON = VENV / "bin" / "python"
SUITES = {"requests": ("2.34.2", "tests"), "urllib3": ("2.8.0", "test")}
SUITE_TIMEOUT = 3600.0  # seconds for one run of one suite (a hung suite still ends)
TEST_TIMEOUT = 120  # pytest-timeout, per test

# What stoppable.http refuses on purpose (README, "Compatibility"): a difference whose
# error says one of these is a documented refusal, counted apart.
REFUSALS: list[tuple[str, str]] = [
    (
        r"no \(connect, read\) pair",
        "timeout is one total for the whole request: a (connect, read) tuple or a "
        "urllib3.Timeout with connect/read limits is refused (http.InvalidTimeout)",
    ),
    (
        r"SOCKS|supports only http:// proxies|does not support HTTPS proxies|TLS within TLS",
        "SOCKS and HTTPS proxies are not supported (HTTP proxies are, with CONNECT)",
    ),
    (
        r"urllib3\.contrib\.pyopenssl|needs an ssl\.SSLContext",
        "urllib3.contrib.pyopenssl injection is refused: its sockets wait on their own",
    ),
    (
        r"would weaken the given ssl_context",
        "settings never weaken a given ssl_context (cert_reqs below its verify_mode)",
    ),
    (
        r"while resolving '",
        "name lookups are bounded by the deadline: a lookup slower than the timeout is a "
        "ConnectTimeout (urllib3 waits for the resolver without a limit, then raises "
        "NameResolutionError); with urllib3's 1 ms test timeout, a name looked up in a "
        "helper thread can run out ('localhost' is looked up inline where the system "
        "answers it from /etc/hosts alone)",
    ),
    (
        r"timed out after 0\.\d+ s while (connecting|TLS handshake|opening a tunnel|sending)",
        "the timeout is a total: under a second (urllib3's tests use 1 ms and 0.1 s), it "
        "can run out before the request is sent (building the TLS context, connecting, "
        "the handshake), where urllib3 gives each phase its own limit",
    ),
    (
        r"http2_probe",
        "HTTP/2 (urllib3.http2, experimental) is not supported: stoppable's connections "
        "speak HTTP/1.1 and take no part in urllib3's HTTP/2 probe",
    ),
    (
        r"expect_settimeout_calls",
        "no per-operation timeout is set on the socket: the one total deadline is "
        "enforced by stoppable's own waits",
    ),
    (
        r"timeout is required",
        "nothing waits without a timeout (a connection with neither its own nor a pool's)",
    ),
]


def sh(*args: object, timeout: float = 1800.0, **kwargs: object) -> None:
    subprocess.run([str(a) for a in args], check=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


def prepare() -> None:
    """The venv, the sdists (downloaded once) and their extracted test trees."""
    stamp = WORK / "venv.ok"
    requirements = ROOT / "compat" / "requirements.txt"
    if not stamp.exists() or stamp.read_text() != requirements.read_text():
        print("compat: building .compat/venv ...", flush=True)
        venv.create(VENV, with_pip=True, clear=True)
        sh(PYTHON, "-m", "pip", "install", "--quiet", "-r", requirements)
        stamp.write_text(requirements.read_text())
    sdists = WORK / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    for name, (version, _) in SUITES.items():
        archive = sdists / f"{name}-{version}.tar.gz"
        if not archive.exists():
            sh(
                PYTHON,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"{name}=={version}",
                "-d",
                sdists,
            )
        tree = WORK / "src" / f"{name}-{version}"
        if not tree.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(WORK / "src", filter="data")
    # The libraries under test are the sdists' own code; stoppable is this checkout.
    sh(
        PYTHON,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        *(sdists / f"{n}-{v}.tar.gz" for n, (v, _) in SUITES.items()),
    )
    sh(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ROOT)


def run(name: str, substituted: bool) -> tuple[Path, float]:
    """One run of one suite; its junit XML and wall time (seconds)."""
    version, tests = SUITES[name]
    results = WORK / "results"
    results.mkdir(parents=True, exist_ok=True)
    mode = "substituted" if substituted else "unmodified"
    xml = results / f"{name}-{mode}.xml"
    timing = results / f"{name}-{mode}.json"
    env = dict(os.environ)
    args = [
        PYTHON,
        "-m",
        "pytest",
        tests,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--timeout={TEST_TIMEOUT}",
        f"--junitxml={xml}",
    ]
    if substituted:
        env["STOPPABLE_COMPAT"] = name
        env["PYTHONPATH"] = str(ROOT / "compat")
        args[3:3] = ["-p", "substitute"]
    print(f"compat: {name} {version}, {mode} ...", flush=True)
    started = time.monotonic()
    log = results / f"{name}-{mode}.log"
    with log.open("w") as out:
        subprocess.run(
            [str(a) for a in args],
            cwd=WORK / "src" / f"{name}-{version}",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=SUITE_TIMEOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    timing.write_text(json.dumps({"seconds": seconds}))
    return xml, seconds


def durations(xml: Path) -> dict[str, float]:
    """Each test's time (seconds: set-up, call and teardown)."""
    found: dict[str, float] = defaultdict(float)
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        found[f"{case.get('classname')}::{case.get('name')}"] += float(case.get("time") or 0)
    return found


def outcomes(xml: Path) -> dict[str, tuple[str, str]]:
    """Each test's outcome (passed, failed, skipped) and, if it failed, why."""
    found: dict[str, tuple[str, str]] = {}
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        outcome, whys = "passed", []
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"  # the call's failure first, then a teardown's error
                whys.append(f"{child.get('message') or ''}\n{child.text or ''}".strip())
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        if test in found:  # a teardown's error is reported as a case of its own
            before, why = found[test]
            whys.insert(0, why)
            if before == "failed":
                outcome = "failed"
        found[test] = (outcome, "\n".join(w for w in whys if w))
    return found


def cause(why: str) -> tuple[str, bool]:
    """The cause of a failure: a documented refusal's reason, or its error, normalized."""
    for pattern, reason in REFUSALS:  # a refusal in the call explains its teardown too
        if re.search(pattern, why):
            return reason, True
    first = why.strip().splitlines()[0] if why.strip() else "(no message)"
    first = re.sub(r"0x[0-9a-f]+", "0x…", first)
    first = re.sub(r"port=\d+|:\d{4,5}\b", ":PORT", first)
    first = re.sub(r"\d+\.\d+ s\b", "N s", first)
    return first[:160], False


def report(name: str, reuse: bool) -> dict[str, object]:
    version, _ = SUITES[name]
    timings = {}
    results = {}
    times = {}
    for substituted in (False, True):
        mode = "substituted" if substituted else "unmodified"
        xml = WORK / "results" / f"{name}-{mode}.xml"
        timing = WORK / "results" / f"{name}-{mode}.json"
        if reuse and xml.exists() and timing.exists():
            seconds = json.loads(timing.read_text())["seconds"]
        else:
            xml, seconds = run(name, substituted)
        timings[mode] = seconds
        results[mode] = outcomes(xml)
        times[mode] = durations(xml)
    plain, ours = results["unmodified"], results["substituted"]
    passed = {m: sum(o == "passed" for o, _ in r.values()) for m, r in results.items()}
    refused: Counter[str] = Counter()
    other: dict[str, list[str]] = defaultdict(list)
    for test, (outcome, _) in sorted(plain.items()):
        if outcome != "passed":
            continue
        mine, why = ours.get(test, ("missing", "not run with stoppable's classes"))
        if mine == "passed":
            continue
        if mine == "skipped":
            why = f"skipped: {why}"
        text, documented = cause(why)
        if documented:
            refused[text] += 1
        else:
            other[text].append(test)
    gained = [
        t for t, (o, _) in ours.items() if o == "passed" and plain.get(t, ("",))[0] != "passed"
    ]
    ratio = timings["substituted"] / timings["unmodified"]
    print()
    print(
        f"{name} {version}: {passed['unmodified']} passed unmodified "
        f"({timings['unmodified']:.0f} s), {passed['substituted']} passed substituted "
        f"({timings['substituted']:.0f} s, {ratio:.2f}x the time)"
    )
    common = [t for t, (o, _) in plain.items() if o == "passed" and ours.get(t, ("",))[0] == o]
    common_times = {m: sum(times[m][t] for t in common) for m in times}
    print(
        f"  the {len(common)} tests passing both ways: {common_times['unmodified']:.0f} s "
        f"unmodified, {common_times['substituted']:.0f} s substituted "
        f"({common_times['substituted'] / max(common_times['unmodified'], 1e-9):.2f}x)"
    )
    differences = sum(refused.values()) + sum(len(v) for v in other.values())
    print(
        f"  {differences} passed unmodified only: {sum(refused.values())} documented "
        f"refusals, {differences - sum(refused.values())} other"
    )
    for reason, count in refused.most_common():
        print(f"    {count:4d}  refusal: {reason}")
    for text, tests in sorted(other.items(), key=lambda item: -len(item[1])):
        print(f"    {len(tests):4d}  {text}")
        for test in tests[:8]:
            print(f"            {test}")
        if len(tests) > 8:
            print(f"            ... and {len(tests) - 8} more")
    if gained:
        print(f"  {len(gained)} passed substituted only (flaky upstream tests?):")
        for test in gained[:8]:
            print(f"            {test}")
    return {
        "suite": f"{name} {version}",
        "passed": passed,
        "seconds": timings,
        "common_seconds": common_times,
        "refusals": dict(refused),
        "other": {k: v for k, v in other.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), action="append")
    parser.add_argument("--reuse", action="store_true", help="reuse results of earlier runs")
    options = parser.parse_args()
    prepare()
    summary = [report(name, options.reuse) for name in options.suite or sorted(SUITES)]
    (WORK / "results" / "summary.json").write_text(json.dumps(summary, indent=2))
    total = {m: sum(s["seconds"][m] for s in summary) for m in ("unmodified", "substituted")}  # type: ignore[index]
    print(
        f"\ntotal wall time: {total['unmodified']:.0f} s unmodified, "
        f"{total['substituted']:.0f} s substituted "
        f"({total['substituted'] / total['unmodified']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

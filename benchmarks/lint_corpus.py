"""A corpus of real projects for stoppable.lint, and a seeded sample of its findings.

``python -m benchmarks.lint_corpus fetch`` downloads the pinned sdists below from PyPI
(checked against their sha256) and unpacks them into ``.lint-corpus/`` (ignored by git).
``python -m benchmarks.lint_corpus sample`` runs the rule over the corpus and prints a
seeded random sample of its findings with their source context, for reading by hand;
``python -m benchmarks.lint_corpus score`` reads the verdicts recorded in
``docs/lint-sample.tsv`` and prints precision; ``probe`` runs the grep-based search for
misses (lines that look blocking and were not reported) and prints a seeded sample of
them to read (verdicts in ``docs/lint-probe.tsv``). ``make lint-corpus`` does ``fetch``.

The projects are chosen for the kind of code that blocks: network clients, task queues,
a package installer. Nothing in the rule knows them: no per-project or per-file case.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / ".lint-corpus"
VERDICTS = ROOT / "docs" / "lint-sample.tsv"
SEED = 20261129
SAMPLE_SIZE = 120
DOWNLOAD_TIMEOUT = 120.0

#: name, version, sha256 of the sdist, its URL on files.pythonhosted.org.
PINS: tuple[tuple[str, str, str, str], ...] = (
    ("requests", "2.32.3", "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760",
     "63/70/2bf7780ad2d390a8d301ad0b550f1581eadbd9a20f896afe06353c2a2913"),
    ("urllib3", "2.2.3", "e7d814a81dad81e6caf2ec9fdedb284ecc9c73076b62654547cc64ccdcae26e9",
     "ed/63/22ba4ebfe7430b76388e7cd448d5478814d3032121827c12a2cc287e2260"),
    ("redis", "5.0.8", "0c5b10d387568dfe0698c6fad6615750c24170e548ca2deac10c649d463e9870",
     "48/10/defc227d65ea9c2ff5244645870859865cba34da7373477c8376629746ec"),
    ("kombu", "5.4.2", "eef572dd2fd9fc614b37580e3caeafdd5af46c1eff31e7fba89138cdb406f2cf",
     "38/4d/b93fcb353d279839cc35d0012bee805ed0cf61c07587916bfc35dbfddaf1"),
    ("celery", "5.4.0", "504a19140e8d3029d5acad88330c541d4c3f64c789d85f94756762d8bca7e706",
     "8a/9c/cf0bce2cc1c8971bf56629d8f180e4ca35612c7e79e6e432e785261a8be4"),
    ("dramatiq", "1.17.1", "2675d2f57e0d82db3a7d2a60f1f9c536365349db78c7f8d80a63e4c54697647a",
     "c6/7a/6792ddc64a77d22bfd97261b751a7a76cf2f9d62edc59aafb679ac48b77d"),
    ("pip", "24.2", "5b5e490b5e9cb275c879595064adce9ebd31b854e3e803740b72f9ccf34a45b8",
     "4d/87/fb90046e096a03aeab235e139436b3fe804cdd447ed2093b0d70eba3f7f8"),
    ("paramiko", "3.5.0", "ad11e540da4f55cedda52931f1a3f812a8238a7af7f62a60de538cd80bb28124",
     "1b/0f/c00296e36ff7485935b83d466c4f2cf5934b84b0ad14e81796e1d9d3609b"),
    ("botocore", "1.35.36", "354ec1b766f0029b5d6ff0c45d1a0f9e5007b7d2f3ec89bcdd755b208c5bc797",
     "8d/4f/11d2d314f0bdbe7ff975737d125e1a5357115afe28fcc64f13e68b05ba61"),
    ("pika", "1.3.2", "b2a327ddddf8570b4965b3576ac77091b850262d34ce8c1d8cb4e4146aa4145f",
     "db/db/d4102f356af18f316c67f2cead8ece307f731dd63140e2c71f170ddacf9b"),
)  # fmt: skip


def fetch() -> int:
    """Download and unpack every pinned sdist not already unpacked."""
    CORPUS.mkdir(exist_ok=True)
    (CORPUS / ".gitignore").write_text("*\n")
    for name, version, sha256, path in PINS:
        target = CORPUS / f"{name}-{version}"
        if target.is_dir():
            continue
        url = f"https://files.pythonhosted.org/packages/{path}/{name}-{version}.tar.gz"
        print(f"fetching {name}=={version}", flush=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            data = response.read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            print(f"{name}-{version}: sha256 {digest} != pinned {sha256}", file=sys.stderr)
            return 1
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            members = [m for m in archive.getmembers() if m.isfile() or m.isdir()]
            archive.extractall(CORPUS, members=members)
    return 0


def projects() -> list[Path]:
    """The unpacked projects, in the order of ``PINS``."""
    return [CORPUS / f"{name}-{version}" for name, version, _, _ in PINS]


def findings() -> list[dict[str, object]]:
    """Every finding of the default rule over the corpus (one process per project)."""
    out: list[dict[str, object]] = []
    for project in projects():
        result = subprocess.run(
            [sys.executable, "-m", "stoppable.lint", "--isolated", "--format", "json", "-j", "1",
             str(project)],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        for item in json.loads(result.stdout or "[]"):
            item["path"] = os.path.relpath(item["path"], CORPUS)
            out.append(item)
    return out


def key(item: dict[str, object]) -> str:
    """A finding's identity in the verdict file: path, line and code."""
    return f"{item['path']}:{item['line']}:{item['code']}"


def rank(item: dict[str, object]) -> str:
    """A finding's place in a seeded random order: the sha256 of the seed and its key."""
    return hashlib.sha256(f"{SEED}:{key(item)}".encode()).hexdigest()


def sample(count: int = SAMPLE_SIZE) -> list[dict[str, object]]:
    """The first ``count`` findings in the seeded random order.

    Ranking by a keyed hash (rather than drawing with ``random.sample``) keeps the
    sample stable as the rule changes: a finding the rule stops reporting leaves the
    sample and the next in the order takes its place; the others stay, with the
    verdicts already read for them.
    """
    return sorted(sorted(findings(), key=rank)[:count], key=key)


def context(path: str, line: int, before: int = 12, after: int = 6) -> str:
    """The source around ``line`` (1-based), numbered."""
    lines = (CORPUS / path).read_text(encoding="utf-8", errors="replace").splitlines()
    first = max(0, line - 1 - before)
    shown = lines[first : line + after]
    return "\n".join(
        f"{'>' if first + i + 1 == line else ' '}{first + i + 1:5d} {text}"
        for i, text in enumerate(shown)
    )


def show_sample() -> int:
    """Print the sample with context, for reading by hand."""
    for item in sample():
        print(f"=== {key(item)} {item['message']}")
        print(context(str(item["path"]), int(str(item["line"]))))
    return 0


def score() -> int:
    """Precision from the recorded verdicts of the current sample, overall and by code."""
    with VERDICTS.open(encoding="utf-8") as handle:
        rows = {row["finding"]: row for row in csv.DictReader(handle, delimiter="\t")}
    drawn = [key(item) for item in sample()]
    unread = [finding for finding in drawn if finding not in rows]
    if unread:
        print(f"{len(unread)} sampled findings have no verdict yet:", file=sys.stderr)
        for finding in unread:
            print(f"  {finding}", file=sys.stderr)
    by_code: dict[str, list[int]] = {}
    for finding in drawn:
        if finding not in rows:
            continue
        real = rows[finding]["verdict"] == "real"
        totals = by_code.setdefault(finding.rsplit(":", 1)[1], [0, 0])
        totals[0] += real
        totals[1] += 1
    real_count = sum(t[0] for t in by_code.values())
    total = sum(t[1] for t in by_code.values())
    print(f"precision: {real_count}/{total} = {real_count / max(total, 1):.1%}")
    for code, (hits, n) in sorted(by_code.items()):
        print(f"  {code}: {hits}/{n} = {hits / n:.0%}")
    return 1 if unread else 0


#: The grep-based probe for misses: calls that block unless bounded, by their spelling.
PROBE = re.compile(
    r"\.(join|wait|get|acquire|result|recv|recv_into|accept|communicate|"
    r"urlopen|connect|sendall|select|poll)\(\s*\)"
)


PROBE_VERDICTS = ROOT / "docs" / "lint-probe.tsv"
PROBE_SAMPLE = 40


def probe_hits() -> list[tuple[str, int, str]]:
    """Lines whose spelling looks blocking (no argument) that the rule did not report."""
    reported = {(str(item["path"]), int(str(item["line"]))) for item in findings()}
    hits = []
    for project in projects():
        for folder, dirs, names in os.walk(project):
            dirs.sort()
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                full = Path(folder) / name
                rel = os.path.relpath(full, CORPUS)
                text = full.read_text(encoding="utf-8", errors="replace")
                for number, line in enumerate(text.splitlines(), start=1):
                    if PROBE.search(line) and (rel, number) not in reported:
                        hits.append((rel, number, line.strip()))
    return hits


def probe() -> int:
    """Print the probe's hits, then a seeded sample of them with context to read."""
    hits = probe_hits()
    print(f"{len(hits)} lines look blocking and were not reported; a sample to read:")
    ranked = sorted(
        hits, key=lambda h: hashlib.sha256(f"{SEED}:{h[0]}:{h[1]}".encode()).hexdigest()
    )
    for rel, number, _ in sorted(ranked[:PROBE_SAMPLE]):
        print(f"=== {rel}:{number}")
        print(context(rel, number, before=6, after=2))
    return 0


def main(argv: list[str]) -> int:
    """``fetch``, ``sample``, ``score`` or ``probe``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lint_corpus")
    parser.add_argument("command", choices=("fetch", "sample", "score", "probe"))
    args = parser.parse_args(argv)
    commands = {"fetch": fetch, "sample": show_sample, "score": score, "probe": probe}
    return commands[args.command]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

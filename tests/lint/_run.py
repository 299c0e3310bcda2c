"""Running the command line in-process, for the tests."""

from __future__ import annotations

import io

from stoppable.lint import main

BAD = "import queue\nq = queue.Queue()\nq.get()\n"


def run(*argv: str) -> tuple[int, str]:
    """The exit status and standard output of ``stoppable-lint argv...``."""
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()

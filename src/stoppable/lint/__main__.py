"""``python -m stoppable.lint PATH...``."""

from __future__ import annotations

import sys

from stoppable.lint._cli import main

if __name__ == "__main__":
    sys.exit(main())

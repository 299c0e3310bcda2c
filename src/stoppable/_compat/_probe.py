"""How every internal is checked: ``_check`` runs a probe that exercises it on a fresh object.

Each flag of ``_compat`` is one probe's verdict, made when its submodule is imported.
"""

from __future__ import annotations

from collections.abc import Callable


def _check(probe: Callable[[], object]) -> bool:
    """Whether ``probe`` runs without an error: an internal that is there and works."""
    try:
        probe()
    except Exception:
        return False
    return True

"""The layers of docs/architecture.md, checked: each module imports only its layer and below.

Read from the source with ``ast`` (nothing is imported), so a new module that breaks
the layering fails here, however it imports: ``from . import x``, ``from .x import y``,
``from .. import x``, ``import stoppable.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "stoppable"

# The layers, lowest first. A module's layer is found by its first name below
# ``stoppable``; a module may import its own layer and the ones before it.
LAYERS: list[tuple[str, frozenset[str]]] = [
    (
        "core",
        frozenset(
            {"_errors", "_stop", "_shared", "_arena", "_limits", "_wait", "_compat", "_args"}
        ),
    ),
    ("socket layer", frozenset({"_netio", "_resolve"})),
    ("guard", frozenset({"_guard"})),
    (
        "families",
        frozenset(
            {
                "queues",
                "sync",
                "net",
                "_netops",
                "_netconnect",
                "_netsocket",
                "http",
                "process",
                "_child",
                "_childio",
                "signals",
                "futures",
                "_futwait",
                "_tasks",
                "_threadpool",
                "_procpool",
                "_procworker",
                "_poolimap",
            }
        ),
    ),
    ("bridges", frozenset({"aio", "integrations"})),
]
LINT = "lint"  # uses nothing of the runtime, and nothing of it uses lint
# ``stoppable`` itself (``from .. import guard``) re-exports every layer: only the
# bridges, above them all, may import from it.
FACE = "__init__"


def _layer_of(name: str) -> int:
    if name == FACE:
        return len(LAYERS) - 1
    for index, (_, members) in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"stoppable.{name} is in no layer of docs/architecture.md")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package's face re-exports every layer
        found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


def _imports(module: str, path: Path) -> set[str]:
    """The first names below ``stoppable`` that ``path`` imports."""
    package = module.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                target = [*base, *node.module.split(".")]
                names.add(target[0] if target else node.module)
            elif base:
                names.add(base[0])
            else:  # from . import a, b: modules of the package, or names of its face
                names.update(
                    alias.name
                    if (SOURCE / alias.name).exists() or (SOURCE / f"{alias.name}.py").exists()
                    else FACE
                    for alias in node.names
                )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stoppable."):
            names.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("stoppable."):
                    names.add(alias.name.split(".")[1])
    return names


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda value: str(value))
def test_each_module_imports_only_its_layer_and_below(module: str, path: Path) -> None:
    top = module.split(".")[0]
    imported = _imports(module, path) - {top}
    if top == LINT:
        assert not imported, f"stoppable.{module} (lint) imports the runtime: {imported}"
        return
    assert LINT not in imported, f"stoppable.{module} imports the lint rule"
    own = _layer_of(top)
    for name in imported:
        assert _layer_of(name) <= own, (
            f"stoppable.{module} ({LAYERS[own][0]}) imports stoppable.{name} "
            f"({LAYERS[_layer_of(name)][0]}), a layer above it"
        )


def test_every_layer_names_modules_that_exist() -> None:
    tops = {module.split(".")[0] for module, _ in _modules()}
    for layer, members in LAYERS:
        assert members <= tops, f"{layer}: no such module {members - tops}"


# Public names defined in a family's rooms, which must stay the family's own: shown,
# named and pickled as ``stoppable.<family>.<name>`` (0.1 defined them there).
FAMILY_ROOMS = {
    "net": ("_netops", "_netconnect", "_netsocket"),
    "futures": ("_futwait", "_tasks", "_threadpool"),
    "process": ("_child", "_childio"),
}


@pytest.mark.parametrize("family", sorted(FAMILY_ROOMS))
def test_a_familys_public_names_are_its_own_not_its_rooms(family: str) -> None:
    import importlib
    import pickle

    module = importlib.import_module(f"stoppable.{family}")
    rooms = {f"stoppable.{room}" for room in FAMILY_ROOMS[family]}
    assert dir(module) == sorted(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        assert getattr(value, "__module__", None) not in rooms, f"{family}.{name}"
        if isinstance(value, type) and issubclass(value, BaseException):
            assert pickle.loads(pickle.dumps(value)) is value  # found by the name it gives

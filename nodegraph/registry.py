"""The catalogue of node types: imports every module of the ``nodes`` package once and looks types up."""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from nodegraph import spec as _spec
from nodegraph import types as port_types
from nodegraph.spec import NodeSpec

_loaded = False
LOAD_ERRORS: dict[str, str] = {}  # module -> error, for node modules that failed to import


def load_all() -> dict[str, NodeSpec]:
    """Import every module under ``nodes/``, then any in ``NODEGRAPH_PLUGINS`` (comma-separated module names,
    for a user's own nodes), so their ``@node`` declarations register; idempotent."""
    global _loaded
    if not _loaded:
        import nodes

        modules = [f"nodes.{info.name}" for info in pkgutil.iter_modules(nodes.__path__)]
        modules += [m.strip() for m in os.environ.get("NODEGRAPH_PLUGINS", "").split(",") if m.strip()]
        for name in modules:
            _import(name)
        _loaded = True
    return _spec.REGISTRY


def _import(module: str) -> None:
    """Import one node module; a broken module is reported, and every other node stays usable."""
    try:
        importlib.import_module(module)
    except Exception as exc:
        LOAD_ERRORS[module] = f"{type(exc).__name__}: {exc}"
        print(f"nodegraph: could not load node module {module}: {LOAD_ERRORS[module]}", file=sys.stderr)


def get(type_name: str) -> NodeSpec | None:
    """The spec for a type name or one of its aliases (e.g. the tutorials' older names)."""
    registry = load_all()
    return registry.get(type_name) or registry.get(_spec.ALIASES.get(type_name, ""))


def by_category() -> dict[str, list[NodeSpec]]:
    groups: dict[str, list[NodeSpec]] = {}
    for spec in sorted(load_all().values(), key=lambda s: (s.category, s.name)):
        groups.setdefault(spec.category, []).append(spec)
    return groups


def catalogue_json() -> dict:
    """Everything the editor needs to build its palette and widgets."""
    return {"format": "nodegraph/1", "types": port_types.catalogue(),
            "nodes": [s.to_json() for group in by_category().values() for s in group]}

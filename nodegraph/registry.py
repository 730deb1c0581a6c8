"""The catalogue of node types: imports every module of the ``nodes`` package once and looks types up."""
from __future__ import annotations

import importlib
import os
import pkgutil

from nodegraph import spec as _spec
from nodegraph import types as port_types
from nodegraph.spec import NodeSpec

_loaded = False


def load_all() -> dict[str, NodeSpec]:
    """Import every module under ``nodes/``, then any in ``NODEGRAPH_PLUGINS`` (comma-separated module names,
    for a user's own nodes), so their ``@node`` declarations register; idempotent."""
    global _loaded
    if not _loaded:
        import nodes

        for info in pkgutil.iter_modules(nodes.__path__):
            importlib.import_module(f"nodes.{info.name}")
        for name in filter(None, os.environ.get("NODEGRAPH_PLUGINS", "").split(",")):
            importlib.import_module(name.strip())
        _loaded = True
    return _spec.REGISTRY


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

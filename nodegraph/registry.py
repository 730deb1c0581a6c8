"""The catalogue of node types, as an object: which specs a session can build graphs from.

A :class:`Registry` is filled from modules: the node library lists its own modules (``nodegraph.nodes.MODULES``),
plugins come from the ``nodegraph.nodes`` entry-point group of installed distributions and from
``NODEGRAPH_PLUGINS`` (comma-separated module names). A module contributes every function in it that ``@node``
declared. A module that fails to import is recorded in ``load_errors`` and the rest stay usable. Tests and
embedders build their own: ``Registry.of(my_module)`` or ``default_registry().with_modules(toy_nodes)``.
"""
from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from types import ModuleType
from typing import Iterator

from nodegraph import types as port_types
from nodegraph.spec import NodeSpec

LIBRARY = "nodegraph.nodes"
ENTRY_POINT_GROUP = "nodegraph.nodes"


class Registry:
    """Node specs by type name (and alias), plus the modules that could not be loaded."""

    def __init__(self) -> None:
        self._specs: dict[str, NodeSpec] = {}
        self._aliases: dict[str, str] = {}
        self.load_errors: dict[str, str] = {}  # module -> error

    # ------------------------------------------------------------------ building
    @classmethod
    def of(cls, *modules: ModuleType) -> "Registry":
        """A registry holding just the nodes of ``modules``."""
        registry = cls()
        for module in modules:
            registry.add_module(module)
        return registry

    def with_modules(self, *modules: ModuleType) -> "Registry":
        """A copy of this registry with the nodes of ``modules`` added (this one is left as it is)."""
        copy = Registry()
        copy._specs, copy._aliases, copy.load_errors = dict(self._specs), dict(self._aliases), dict(self.load_errors)
        for module in modules:
            copy.add_module(module)
        return copy

    def add(self, spec: NodeSpec) -> None:
        """Register one spec; a second declaration of a name from another module is refused."""
        known = self._specs.get(spec.name)
        if known is not None and known.fn is not spec.fn:
            raise TypeError(f"node {spec.name} is declared twice ({known.fn.__module__} and {spec.fn.__module__})")
        self._specs[spec.name] = spec
        for alias in spec.aliases:
            self._aliases[alias] = spec.name

    def add_module(self, module: ModuleType) -> int:
        """Register every node the module declares (not those it imports); returns how many."""
        specs = [fn.spec for fn in vars(module).values()
                 if isinstance(getattr(fn, "spec", None), NodeSpec) and getattr(fn, "__module__", None) == module.__name__]
        for spec in specs:
            self.add(spec)
        return len(specs)

    def load_module(self, name: str) -> None:
        """Import a module by name and register its nodes; a broken module is reported, not raised."""
        try:
            self.add_module(importlib.import_module(name))
        except Exception as exc:
            self._report(name, exc)

    def load_library(self, package: str = LIBRARY) -> None:
        """The node library: the modules its package lists in ``MODULES``."""
        try:
            library = importlib.import_module(package)
        except Exception as exc:
            self._report(package, exc)
            return
        for module in library.MODULES:
            self.load_module(f"{package}.{module}")

    def load_plugins(self) -> None:
        """Installed plugins (entry points in the ``nodegraph.nodes`` group) and ``NODEGRAPH_PLUGINS`` modules."""
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry.load()
            except Exception as exc:
                self._report(entry.value, exc)
                continue
            if isinstance(loaded, ModuleType):
                self.add_module(loaded)
            elif isinstance(getattr(loaded, "spec", None), NodeSpec):
                self.add(loaded.spec)
            else:
                self._report(entry.value, TypeError("an entry point must name a module or a @node function"))
        for name in plugin_modules():
            self.load_module(name)

    def _report(self, module: str, exc: Exception) -> None:
        self.load_errors[module] = f"{type(exc).__name__}: {exc}"
        print(f"nodegraph: could not load node module {module}: {self.load_errors[module]}", file=sys.stderr)

    # ------------------------------------------------------------------ reading
    def get(self, type_name: str) -> NodeSpec | None:
        """The spec for a type name or one of its aliases (e.g. the tutorials' older names)."""
        return self._specs.get(type_name) or self._specs.get(self._aliases.get(type_name, ""))

    def __contains__(self, type_name: object) -> bool:
        return isinstance(type_name, str) and self.get(type_name) is not None

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def by_category(self) -> dict[str, list[NodeSpec]]:
        groups: dict[str, list[NodeSpec]] = {}
        for spec in sorted(self._specs.values(), key=lambda s: (s.category, s.name)):
            groups.setdefault(spec.category, []).append(spec)
        return groups

    def catalogue_json(self) -> dict:
        """Everything the editor needs to build its palette and widgets."""
        return {"format": "nodegraph/1", "types": port_types.catalogue(),
                "nodes": [s.to_json() for group in self.by_category().values() for s in group]}


def plugin_modules() -> list[str]:
    return [m.strip() for m in os.environ.get("NODEGRAPH_PLUGINS", "").split(",") if m.strip()]


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The node library plus installed and ``NODEGRAPH_PLUGINS`` plugins, built once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        registry = Registry()
        registry.load_library()
        registry.load_plugins()
        _DEFAULT = registry
    return _DEFAULT



"""The node library's shape: one module per palette category, named after it, and nothing that imports the
library under a top-level name (installed, only ``nodegraph.nodes`` exists)."""
from __future__ import annotations

import ast
from pathlib import Path

from nodegraph.nodes import MODULES
from nodegraph.registry import Registry

NODES = Path(__file__).resolve().parent.parent / "nodes"


def test_every_category_is_one_module_named_after_it():
    registry = Registry()
    registry.load_library()
    assert not registry.load_errors
    misplaced = [f"{spec.name}: category {spec.category!r} in {spec.fn.__module__}" for spec in registry
                 if spec.fn.__module__ != f"nodegraph.nodes.{spec.category}"]
    assert not misplaced, misplaced
    assert {spec.category for spec in registry} == set(MODULES)


def test_modules_lists_every_node_module_and_helpers_declare_no_nodes():
    files = {p.stem for p in NODES.glob("*.py") if p.stem != "__init__"}
    listed = set(MODULES)
    assert listed == {f for f in files if not f.startswith("_")}
    for helper in sorted(f for f in files if f.startswith("_")):
        tree = ast.parse((NODES / f"{helper}.py").read_text())
        decorated = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                     and any(isinstance(d, ast.Call) and getattr(d.func, "id", None) == "node" for d in n.decorator_list)]
        assert not decorated, f"{helper}.py declares nodes {decorated}; nodes go in the module of their category"


def test_the_library_imports_itself_relatively():
    absolute = []
    for path in sorted(NODES.glob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                [n.module or ""] if isinstance(n, ast.ImportFrom) and not n.level else []
            absolute += [f"{path.name}:{n.lineno} {name}" for name in names if name.split(".")[0] == "nodes"]
    assert not absolute, f"use relative imports (from ._common import x) or nodegraph.nodes.X: {absolute}"

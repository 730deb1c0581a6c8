"""The engine's layers: every module imports only modules of the layers below it, so the import graph of
``nodegraph/`` has no cycle, and the node library builds only on the bottom of the engine.

Imports are read with ``ast`` (module level and inside functions alike; ``if TYPE_CHECKING:`` blocks, which
never run, are left out), so a lazy import that hides a cycle is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "nodegraph"
LIBRARY = ROOT / "nodes"

# The CPU rasterizer (nodegraph/raster/) builds on PyTorch3D and numba only; the node library may use it.
RASTER_LAYERS: list[set[str]] = [
    {"raster.threads", "raster.buffers"},
    {"raster.kernels_meshes", "raster.kernels_shading"},
    {"raster.kernels_points", "raster.meshes"},
    {"raster.points", "raster.backend"},
    {"raster.rasterizers", "raster.shading"},
    {"raster.warm", "raster"},
]
# Lowest first. A module may import modules of strictly lower layers only.
LAYERS: list[set[str]] = RASTER_LAYERS + [
    {"errors", "values", "types", "ratelimit", "paths", "memory"},   # values and errors
    {"spec", "graph"},                                                # specs and the graph document
    {"registry"},                                                     # the registry
    {"groups", "grouping"},                                           # groups: flattened, edited
    {"validate", "plan", "layout"},                                   # checks and the plan ...
    {"prepare"},                                                      # ... as one prepared result
    {"state", "previews", "events", "progress"},                      # what a run carries ...
    {"context"},                                                      # ... as a node sees it
    {"training"},                                                     # the loop a trainer drives
    {"executor"},                                                     # the executor
    {"history"},                                                      # runs remembered (reads its events)
    {"export.context", "export.arguments"},                           # export: what a node's form sees ...
    {"export.writer"},                                                # ... the walk that writes a script
    {"export"},                                                       # ... and its entry point
    {"session"},                                                      # the faces: session, ...
    {"sweep"},                                                        # ... sweeps of sessions on Ray, ...
    {"server.protocol", "server.auth", "server.library", "server.element"},
    {"server.worker"},
    {"server.workspace"},
    {"server.runs_api"},
    {"server.app"},
    {"server"},
    {"server.__main__", "cli"},                                       # ... CLI, server
    {"__main__", ""},                                                 # `python -m nodegraph`, the package
]
_BASE = len(RASTER_LAYERS)
# node modules build on values, errors, specs (and memory checks), and the CPU rasterizer
LIBRARY_MAY_IMPORT = set().union(*RASTER_LAYERS) | LAYERS[_BASE] | LAYERS[_BASE + 1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, package: str) -> set[str]:
    """Absolute names of the modules a module imports: ``from a import b`` is ``a.b`` when that is a module
    (the caller filters), else ``a``; see :func:`import_graph`."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if is_package else package.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _names_only_submodules(path: Path, full: str, package: str, known: set[str]) -> bool:
    """True when every ``from <package> import ...`` in the file imports submodules of it only."""
    prefix = full.split(".")[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module == f"{prefix}.{package}":
            if any(f"{package}.{a.name}" not in known for a in node.names):
                return False
        if isinstance(node, ast.Import) and any(a.name == f"{prefix}.{package}" for a in node.names):
            return False
    return True


def import_graph(root: Path, prefix: str, known: set[str]) -> nx.DiGraph:
    """Edges module -> module it imports, among ``known`` modules (names relative to ``prefix``)."""
    graph = nx.DiGraph()
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        graph.add_node(name)
        full = f"{prefix}.{name}" if name else prefix
        for target in imports_of(path, full):
            # Importing a submodule always runs its packages' __init__ first: that is how Python works, not a
            # dependency of ours, so a package counts only when the module uses the package itself
            # (`from nodegraph.server import serve`), not when it names a submodule of it.
            if target.startswith(prefix + "."):
                short = target[len(prefix) + 1:]
                is_package = any(k.startswith(short + ".") for k in known)
                if short in known and short != name and not (is_package and
                                                             _names_only_submodules(path, full, short, known)):
                    graph.add_edge(name, short)
    return graph


ENGINE_MODULES = {module_name(p, ENGINE) for p in ENGINE.rglob("*.py")}
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def test_every_engine_module_has_a_layer():
    assert ENGINE_MODULES - set(LAYER_OF) == set(), "add the new module to LAYERS (and to the README's list)"


def test_the_engine_import_graph_is_acyclic():
    graph = import_graph(ENGINE, "nodegraph", ENGINE_MODULES)
    cycles = list(nx.simple_cycles(graph))
    assert cycles == []


@pytest.mark.parametrize("module", sorted(ENGINE_MODULES))
def test_a_module_imports_only_lower_layers(module):
    graph = import_graph(ENGINE, "nodegraph", ENGINE_MODULES)
    upward = [t for t in graph.successors(module) if LAYER_OF.get(t, -1) >= LAYER_OF[module]]
    assert upward == [], f"{module} (layer {LAYER_OF[module]}) imports {upward}"


def test_the_node_library_builds_on_the_bottom_of_the_engine_and_has_no_cycle():
    library_modules = {module_name(p, LIBRARY) for p in LIBRARY.rglob("*.py")}
    engine_uses: dict[str, set[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        name = module_name(path, LIBRARY)
        targets = imports_of(path, f"nodegraph.nodes.{name}" if name else "nodegraph.nodes")
        assert not any(t == "nodes" or t.startswith("nodes.") for t in targets), \
            f"{path.name} imports the library as a top-level 'nodes'; use relative imports"
        engine_uses[name] = {t[len("nodegraph."):] for t in targets if t.startswith("nodegraph.")
                             and t[len("nodegraph."):] in ENGINE_MODULES}
    assert {m: sorted(u - LIBRARY_MAY_IMPORT) for m, u in engine_uses.items() if u - LIBRARY_MAY_IMPORT} == {}
    inner = import_graph(LIBRARY, "nodegraph.nodes", library_modules)
    assert list(nx.simple_cycles(inner)) == []


def test_the_checker_sees_a_cycle(tmp_path):
    """The checker itself: two modules importing each other, one lazily, are a cycle."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    graph = import_graph(pkg, "pkg", {"a", "b", "c", ""})
    assert list(nx.simple_cycles(graph)) in ([["a", "b"]], [["b", "a"]])
    assert not graph.has_edge("c", "a")

"""nodegraph: build, run and watch PyTorch3D pipelines as graphs of typed nodes.

    import nodegraph
    g = nodegraph.load("graphs/render_textured_cow.json")
    out = g.run(device="cpu")          # {node_id: {output_name: value}}
    g.set_param("light", "location", [0, 0, 3]); g.run(device="cpu")   # only the light and what follows rerun
"""
import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path


def _checkout_node_library() -> None:
    """Installed, the node library is the subpackage ``nodegraph/nodes`` (pyproject.toml maps the repository's
    ``nodes/`` there). In a checkout it sits beside this package: register it under the same name."""
    here = _Path(__file__).resolve().parent
    beside = here.parent / "nodes" / "__init__.py"
    if (here / "nodes").is_dir() or not beside.is_file() or "nodegraph.nodes" in _sys.modules:
        return
    spec = _importlib_util.spec_from_file_location("nodegraph.nodes", beside,
                                                   submodule_search_locations=[str(beside.parent)])
    module = _importlib_util.module_from_spec(spec)
    _sys.modules["nodegraph.nodes"] = module
    spec.loader.exec_module(module)


_checkout_node_library()

from nodegraph.errors import Cancelled, GraphError, NodeError, Problem
from nodegraph.graph import Graph, load, loads

__all__ = ["Graph", "GraphError", "NodeError", "Problem", "Cancelled", "load", "loads", "nodes", "catalogue"]
__version__ = "0.1.0"


def catalogue() -> dict:
    """Every node type's spec as JSON (what ``python -m nodegraph nodes --json`` prints)."""
    from nodegraph.registry import catalogue_json

    return catalogue_json()

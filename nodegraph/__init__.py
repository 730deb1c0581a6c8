"""nodegraph: build, run and watch PyTorch3D pipelines as graphs of typed nodes.

    import nodegraph
    g = nodegraph.load("graphs/render_textured_cow.json")
    out = g.run(device="cpu")          # {node_id: {output_name: value}}
    g.set_param("light", "location", [0, 0, 3]); g.run(device="cpu")   # only the light and what follows rerun
"""
from nodegraph.errors import Cancelled, GraphError, NodeError, Problem
from nodegraph.graph import Graph, load, loads

__all__ = ["Graph", "GraphError", "NodeError", "Problem", "Cancelled", "load", "loads", "nodes", "catalogue"]
__version__ = "0.1.0"


def catalogue() -> dict:
    """Every node type's spec as JSON (what ``python -m nodegraph nodes --json`` prints)."""
    from nodegraph.registry import catalogue_json

    return catalogue_json()

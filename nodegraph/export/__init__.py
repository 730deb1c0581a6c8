"""Export a graph as one standalone PyTorch3D script: ``export(graph) -> str``.

The script imports torch, pytorch3d, numpy, PIL (what the pipeline needs), never nodegraph; it has one
commented block per node in the executor's order, an explicit loop per trainer, and an ``argparse`` argument
per param. Nodes say how they are written with ``@node(..., export=...)`` (docs/export.md); a graph using a
node without an export form is refused with an :class:`ExportError` naming the node.
"""
from __future__ import annotations

from typing import Any

from nodegraph.errors import Problem
from nodegraph import graph as graph_doc
from nodegraph.graph import Graph
from nodegraph.prepare import prepare
from nodegraph.registry import Registry

from nodegraph.export.context import ExportContext, ExportError, Helper, Loss, identifier, no_form
from nodegraph.export.writer import write_script

__all__ = ["ExportContext", "ExportError", "Helper", "Loss", "export", "identifier", "missing_forms"]


def missing_forms(graph: Graph, registry: Registry | None = None) -> list[Problem]:
    """One problem per node of ``graph`` whose type has no export form."""
    prepared = prepare(graph, registry)
    return [Problem(n, None, f"{s.name} has no export form") for n, s in prepared.specs.items() if s.export is None]


def export(graph: Graph, registry: Registry | None = None, overrides: dict[str, Any] | None = None) -> str:
    """The graph as a script (text). ``overrides`` (``{"node.param": value}``) change a copy of the graph first,
    so the script's defaults are those values. Raises GraphError for an invalid graph, ExportError for one
    that has a node without an export form (every such node named)."""
    if overrides:
        graph = graph_doc.from_json(graph.to_json(), base_dir=graph.base_dir, path=graph.path)
        graph.set_params(overrides)
    prepared = prepare(graph, registry).raise_problems()
    missing = [no_form(n, s.name) for n, s in prepared.specs.items() if s.export is None]
    if missing:
        raise ExportError(missing)
    return write_script(prepared)

"""Automatic left-to-right placement for nodes that have no position yet (graphs written by hand or code)."""
from __future__ import annotations

import networkx as nx

from nodegraph.graph import Graph
from nodegraph.registry import Registry, default_registry

COLUMN_WIDTH = 340
ROW_GAP = 40
PORT_ROW = 22  # the editor draws one row per port and per param
IMAGE_ROWS = 8  # nodes that output images show a preview below their ports


def node_height(graph: Graph, node_id: str, registry: Registry) -> int:
    """Roughly how tall the editor draws a node, so columns do not overlap."""
    spec = registry.get(graph.nodes[node_id].type)
    if spec is None:
        return 120
    rows = len(spec.inputs) + len(spec.outputs) + len(spec.params)
    if spec.preview or any(o.type == "Images" for o in spec.outputs):
        rows += IMAGE_ROWS
    return 40 + rows * PORT_ROW


def auto_layout(graph: Graph, only_missing: bool = True, registry: Registry | None = None) -> int:
    """Place nodes in columns by their depth in the graph (and inside each group definition, where positions
    are relative to the group); returns how many nodes were placed."""
    registry = registry or default_registry()
    placed = sum(auto_layout(Graph(nodes=d.nodes, links=d.links), only_missing, registry)
                 for d in graph.definitions.values())
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from((l.src, l.dst) for l in graph.links if l.src in graph.nodes and l.dst in graph.nodes)
    if not nx.is_directed_acyclic_graph(dag):
        return placed
    depth: dict[str, int] = {}
    for node_id in nx.topological_sort(dag):
        depth[node_id] = max((depth[p] + 1 for p in dag.predecessors(node_id)), default=0)
    next_y: dict[int, int] = {}
    for node_id in graph.nodes:  # file order keeps related nodes near each other within a column
        column = depth[node_id]
        y = next_y.get(column, 40)
        next_y[column] = y + node_height(graph, node_id, registry) + ROW_GAP
        node = graph.nodes[node_id]
        if only_missing and "pos" in node.ui:
            continue
        node.ui["pos"] = [40 + column * COLUMN_WIDTH, y]
        placed += 1
    return placed

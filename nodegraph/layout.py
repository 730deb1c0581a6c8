"""Automatic left-to-right placement for nodes that have no position yet (graphs written by hand or code)."""
from __future__ import annotations

import networkx as nx

from nodegraph.graph import Graph

COLUMN_WIDTH = 300
ROW_HEIGHT = 220


def auto_layout(graph: Graph, only_missing: bool = True) -> int:
    """Place nodes in columns by their depth in the graph; returns how many nodes were placed."""
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from((l.src, l.dst) for l in graph.links if l.src in graph.nodes and l.dst in graph.nodes)
    if not nx.is_directed_acyclic_graph(dag):
        return 0
    depth: dict[str, int] = {}
    for node_id in nx.topological_sort(dag):
        depth[node_id] = max((depth[p] + 1 for p in dag.predecessors(node_id)), default=0)
    rows: dict[int, int] = {}
    placed = 0
    for node_id in graph.nodes:  # file order keeps related nodes near each other within a column
        column = depth[node_id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        node = graph.nodes[node_id]
        if only_missing and "pos" in node.ui:
            continue
        node.ui["pos"] = [40 + column * COLUMN_WIDTH, 40 + row * ROW_HEIGHT]
        placed += 1
    return placed

"""The checks a graph must pass before anything runs, each problem naming node and field.

These are the pieces :func:`nodegraph.prepare.prepare` combines; nothing else calls them directly.
"""
from __future__ import annotations

import networkx as nx

from nodegraph import paths
from nodegraph import types as port_types
from nodegraph.errors import Problem
from nodegraph.graph import Graph, Link
from nodegraph.registry import Registry
from nodegraph.spec import File, NodeSpec


def resolved_params(graph: Graph, node_id: str, spec: NodeSpec) -> tuple[dict, list[Problem]]:
    """The node's params with defaults filled in and values normalised, plus problems with them."""
    node = graph.nodes[node_id]
    problems: list[Problem] = []
    values: dict = {}
    for name in sorted(set(node.params) - {p.name for p in spec.params}):
        problems.append(Problem(node_id, name, f"unknown param of {spec.name}; it has "
                                               f"{[p.name for p in spec.params]}"))
    for param in spec.params:
        raw = node.params.get(param.name, param.default)
        value, problem = param.validate(raw)
        if problem:
            problems.append(Problem(node_id, param.name, problem))
            continue
        if isinstance(param, File) and value is not None:
            try:
                if param.must_exist:
                    paths.resolve_asset(graph.base_dir, value)
            except ValueError as exc:
                problems.append(Problem(node_id, param.name, str(exc)))
                continue
        values[param.name] = value
    if spec.checks and not problems:
        problems += [Problem(node_id, f, m) for f, m in spec.checks(values)]
    return values, problems


def structural_problems(graph: Graph, specs: dict[str, NodeSpec | None]) -> list[Problem]:
    """Unknown types, bad links, missing inputs and cycles: what makes a graph unrunnable as drawn."""
    problems: list[Problem] = []
    for node in graph.nodes.values():
        if specs[node.id] is None:
            problems.append(Problem(node.id, "type", f"unknown node type {node.type!r}"))
    seen_inputs: dict[tuple[str, str], int] = {}
    for link in graph.links:
        problems += link_problems(graph, specs, link)
        seen_inputs[(link.dst, link.dst_port)] = seen_inputs.get((link.dst, link.dst_port), 0) + 1
    for node in graph.nodes.values():
        spec = specs[node.id]
        if spec is None:
            continue
        for port in spec.inputs:
            count = seen_inputs.get((node.id, port.name), 0)
            if count == 0 and not port.optional:
                problems.append(Problem(node.id, port.name, f"required input ({port.type}) is not connected"))
            if count > 1 and not port.multiple:
                problems.append(Problem(node.id, port.name, f"takes one link, has {count}"))
    dag = nx.DiGraph([(l.src, l.dst) for l in graph.links if l.src in graph.nodes and l.dst in graph.nodes])
    try:
        cycle = nx.find_cycle(dag)
        problems.append(Problem(cycle[0][0], None, "links form a cycle: " +
                                " -> ".join([e[0] for e in cycle] + [cycle[0][0]])))
    except nx.NetworkXNoCycle:
        pass
    return problems


def link_problems(graph: Graph, specs: dict[str, NodeSpec | None], link: Link) -> list[Problem]:
    """Why this link is illegal: a missing node or port, mismatched types, a node feeding itself."""
    if link.src not in graph.nodes or link.dst not in graph.nodes:
        missing = link.src if link.src not in graph.nodes else link.dst
        return [Problem(missing, None, f"link {link.src}.{link.src_port} -> {link.dst}.{link.dst_port} names "
                                       f"a node that does not exist")]
    src_spec, dst_spec = specs[link.src], specs[link.dst]
    if src_spec is None or dst_spec is None:
        return []  # reported as an unknown type
    out_port, in_port = src_spec.output(link.src_port), dst_spec.input(link.dst_port)
    problems = []
    if out_port is None:
        problems.append(Problem(link.src, link.src_port, f"{src_spec.name} has no output {link.src_port!r}; "
                                                         f"it has {[o.name for o in src_spec.outputs]}"))
    if in_port is None:
        problems.append(Problem(link.dst, link.dst_port, f"{dst_spec.name} has no input {link.dst_port!r}; "
                                                         f"it has {[i.name for i in dst_spec.inputs]}"))
    if out_port and in_port and not port_types.compatible(out_port.type, in_port.type):
        problems.append(Problem(link.dst, link.dst_port, f"expects {in_port.type} but {link.src}.{link.src_port}"
                                                         f" gives {out_port.type}"))
    if link.src == link.dst:
        problems.append(Problem(link.dst, link.dst_port, "a node cannot feed itself"))
    return problems


def look_up(graph: Graph, registry: Registry) -> dict[str, NodeSpec | None]:
    """Each node's spec (None for an unknown type): the one registry look-up per node of a run."""
    return {node_id: registry.get(node.type) for node_id, node in graph.nodes.items()}

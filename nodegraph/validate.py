"""Check a graph before anything runs, and report every problem at once, each naming node and field."""
from __future__ import annotations

import networkx as nx

from nodegraph import paths, registry
from nodegraph import types as port_types
from nodegraph.errors import Problem
from nodegraph.graph import Graph
from nodegraph.spec import File


def resolved_params(graph: Graph, node_id: str) -> tuple[dict, list[Problem]]:
    """The node's params with defaults filled in and values normalised, plus problems with them."""
    node = graph.nodes[node_id]
    spec = registry.get(node.type)
    problems: list[Problem] = []
    values: dict = {}
    if spec is None:
        return values, problems
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


def structural_problems(graph: Graph) -> list[Problem]:
    """Unknown types, bad links, missing inputs and cycles: what makes a graph unrunnable as drawn."""
    problems: list[Problem] = []
    for node in graph.nodes.values():
        if registry.get(node.type) is None:
            problems.append(Problem(node.id, "type", f"unknown node type {node.type!r}"))
    seen_inputs: dict[tuple[str, str], int] = {}
    for link in graph.links:
        problems += _link_problems(graph, link)
        seen_inputs[(link.dst, link.dst_port)] = seen_inputs.get((link.dst, link.dst_port), 0) + 1
    for node in graph.nodes.values():
        spec = registry.get(node.type)
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


def link_problem(graph: Graph, link) -> Problem | None:
    """Why this link would be illegal (used while dragging in the editor too), or None."""
    found = _link_problems(graph, link)
    return found[0] if found else None


def _link_problems(graph: Graph, link) -> list[Problem]:
    src, dst = graph.nodes.get(link.src), graph.nodes.get(link.dst)
    if src is None or dst is None:
        missing = link.src if src is None else link.dst
        return [Problem(missing, None, f"link {link.src}.{link.src_port} -> {link.dst}.{link.dst_port} names "
                                       f"a node that does not exist")]
    src_spec, dst_spec = registry.get(src.type), registry.get(dst.type)
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


def validate(graph: Graph) -> list[Problem]:
    """Every problem in the graph: structure, params, files, and training wiring."""
    problems = structural_problems(graph)
    for node_id in graph.nodes:
        problems += resolved_params(graph, node_id)[1]
    if not problems:
        from nodegraph.plan import plan_problems

        problems += plan_problems(graph)
    return problems

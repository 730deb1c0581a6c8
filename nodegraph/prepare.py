"""``prepare(graph)``: validation and planning in one pass, the one result the executor consumes.

Everything about a graph that does not depend on running it is worked out here once: each node's spec (one
registry look-up per node), its params with defaults filled in and normalised, the links into each node in
order, every problem at once (structure, params, files, training wiring), and, for a valid graph, the
:class:`~nodegraph.plan.Plan`. The editor, the CLI and the executor all read the same result.

Groups and node modes are resolved first (:func:`nodegraph.groups.flatten`): everything after works on the flat
graph, whose node ids inside groups are paths (``view1/raster``), so problems name those paths.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from nodegraph.errors import GraphError, Problem
from nodegraph.graph import Graph, Link, from_json
from nodegraph.groups import Flat, flatten
from nodegraph.plan import Plan
from nodegraph.registry import Registry, default_registry
from nodegraph.spec import NodeSpec
from nodegraph.validate import look_up, resolved_params, structural_problems


@dataclass
class Prepared:
    """A graph checked and planned. ``plan`` is None when the graph has problems. ``graph`` is the flat graph
    that runs (the document itself when it has no groups or modes); ``flat`` says what flattening did."""

    graph: Graph
    specs: dict[str, NodeSpec]
    params: dict[str, dict]
    problems: list[Problem]
    plan: Plan | None = None
    inputs: dict[str, list[tuple[int, Link]]] = field(default_factory=dict)  # node -> [(link index, link)]
    flat: Flat | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_problems(self) -> "Prepared":
        """This result, or a GraphError carrying every problem."""
        if self.problems:
            raise GraphError(self.problems)
        return self


def prepare(graph: Graph, registry: Registry | None = None, targets: list[str] | None = None) -> Prepared:
    """Check ``graph`` against ``registry`` (the default one when None) and plan it; see the module docstring.

    ``targets`` (run up to these nodes) must name nodes of the graph.
    """
    registry = registry or default_registry()
    flat = flatten(graph, registry)
    graph = flat.graph
    found = look_up(graph, registry)
    problems = flat.problems + flat.outer(structural_problems(graph, found))
    params: dict[str, dict] = {}
    for node_id, spec in found.items():
        if spec is not None:
            params[node_id], node_problems = resolved_params(graph, node_id, spec)
            problems += node_problems
    for target in flat.expand_targets(targets or []):
        if target in flat.muted or target in flat.bypassed:
            problems.append(Problem(target, None, "cannot run up to a node that is muted or bypassed"))
        elif target not in graph.nodes:
            problems.append(Problem(target, None, "cannot run up to a node that does not exist"))
    specs = {n: s for n, s in found.items() if s is not None}
    prepared = Prepared(graph, specs, params, problems, flat=flat)
    if problems:
        problems += _wiring_problems(graph, specs, params)
        return prepared
    plan = Plan(graph, specs, params)
    problems += plan.problems()
    if not problems:
        prepared.plan = plan
        for index, link in enumerate(graph.links):
            prepared.inputs.setdefault(link.dst, []).append((index, link))
    return prepared


def _wiring_problems(graph: Graph, specs: dict[str, NodeSpec], params: dict[str, dict]) -> list[Problem]:
    """Training wiring of a graph that has other problems: checked on the part that is well formed (nodes of
    known types, links between existing ports), so these are reported together with the rest."""
    links = [l for l in graph.links if l.src in specs and l.dst in specs and l.src != l.dst
             and specs[l.src].output(l.src_port) is not None and specs[l.dst].input(l.dst_port) is not None]
    part = Graph(name=graph.name, base_dir=graph.base_dir)
    part.nodes = {n: graph.nodes[n] for n in specs}
    part.links = links
    plan = Plan(part, specs, {n: params.get(n, {}) for n in specs})
    try:
        return plan.problems()
    except nx.NetworkXUnfeasible:  # a cycle, already reported
        return []


def problems_of(doc: Any, registry: Registry | None = None, base_dir: Any = None, path: Any = None) -> list[Problem]:
    """Every problem of a graph document at once: what reading it found and what validating the part that
    could be read finds (a document that is not a graph at all has only the first)."""
    try:
        graph = doc if isinstance(doc, Graph) else from_json(doc, base_dir=base_dir, path=path)
    except GraphError as exc:
        return exc.problems + (prepare(exc.partial, registry).problems if exc.partial is not None else [])
    return prepare(graph, registry).problems

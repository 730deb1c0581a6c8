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

from nodegraph.errors import GraphError, Problem
from nodegraph.graph import Graph, Link
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
        return prepared
    plan = Plan(graph, specs, params)
    problems += plan.problems()
    if not problems:
        prepared.plan = plan
        for index, link in enumerate(graph.links):
            prepared.inputs.setdefault(link.dst, []).append((index, link))
    return prepared

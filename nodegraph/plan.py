"""What the executor needs to know about a graph's shape before it runs it.

Training is a node (``Optimize``), not a cycle. For every trainer node this works out:
- ``trains``: the learnable nodes it updates (its learnable ancestors, or the ones its ``train`` param names);
- ``interior``: its ancestors, the sub-graph its loop evaluates;
- ``taps``: preview nodes fed by what it trains, evaluated every few iterations under ``no_grad``;
- ordering edges ``trainer -> consumer`` for every node that reads a trained value from outside the loop, so
  that node runs after training and sees the trained values.
A node is *dynamic* when it is learnable or stochastic or depends on one: inside a loop it runs every
iteration; everything else in the loop is computed once and reused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from nodegraph import registry
from nodegraph.errors import Problem
from nodegraph.graph import Graph


@dataclass
class Plan:
    graph: Graph
    dag: nx.DiGraph = field(init=False)

    def __post_init__(self) -> None:
        self.dag = nx.DiGraph()
        self.dag.add_nodes_from(self.graph.nodes)
        self.dag.add_edges_from((l.src, l.dst) for l in self.graph.links)

    def spec(self, node_id: str):
        return registry.get(self.graph.nodes[node_id].type)

    @cached_property
    def learnables(self) -> set[str]:
        return {n for n in self.dag if self.spec(n).learnable}

    @cached_property
    def trainers(self) -> list[str]:
        return [n for n in nx.topological_sort(self.dag) if self.spec(n).trainer]

    @cached_property
    def dynamic(self) -> set[str]:
        seeds = {n for n in self.dag if self.spec(n).learnable or self.spec(n).stochastic}
        out = set(seeds)
        for n in seeds:
            out |= nx.descendants(self.dag, n)
        return out - set(self.trainers)

    def interior(self, trainer: str) -> set[str]:
        return nx.ancestors(self.dag, trainer)

    def trains(self, trainer: str) -> list[str]:
        """Learnable ancestors of ``trainer``, narrowed by its ``train`` param when that names node ids."""
        candidates = [n for n in nx.topological_sort(self.dag) if n in self.learnables and
                      n in self.interior(trainer)]
        wanted = self.graph.nodes[trainer].params.get("train") or []
        if wanted:
            names = {w.split(".")[0] for w in wanted}
            candidates = [n for n in candidates if n in names]
        return candidates

    def trained_tensors(self, trainer: str, node_id: str) -> set[str] | None:
        """Which tensors of a learnable node the trainer updates (None: all of them)."""
        wanted = self.graph.nodes[trainer].params.get("train") or []
        names = {w.partition(".")[2] for w in wanted if w.partition(".")[0] == node_id}
        if not names or "" in names:
            return None
        return names

    def previous_stages(self, trainer: str) -> list[str]:
        """Trainers that must finish before this one (linked through ``after``), nearest last."""
        return [n for n in nx.topological_sort(self.dag) if n in self.trainers and n in self.interior(trainer)]

    def taps(self, trainer: str) -> list[str]:
        trained = set(self.trains(trainer))
        inside = self.interior(trainer)
        return [n for n in nx.topological_sort(self.dag)
                if self.spec(n).preview and n not in inside and nx.ancestors(self.dag, n) & trained]

    @cached_property
    def ordering_edges(self) -> list[tuple[str, str]]:
        edges = []
        inside_any = set().union(*(self.interior(t) for t in self.trainers)) if self.trainers else set()
        for trainer in self.trainers:
            for learnable in self.trains(trainer):
                for consumer in nx.descendants(self.dag, learnable) | {learnable}:
                    if consumer not in inside_any and consumer != trainer and consumer not in self.trainers:
                        edges.append((trainer, consumer))
        return edges

    @cached_property
    def ordered(self) -> nx.DiGraph:
        """The links plus the ordering edges: what the executor walks in topological order."""
        full = self.dag.copy()
        full.add_edges_from(self.ordering_edges)
        return full

    def order(self, targets: list[str] | None = None) -> list[str]:
        nodes = set(self.ordered)
        if targets:
            nodes = set(targets)
            for t in targets:
                nodes |= nx.ancestors(self.ordered, t)
        return [n for n in nx.lexicographical_topological_sort(self.ordered) if n in nodes]

    def loop_only(self, node_id: str) -> bool:
        """Dynamic nodes inside a loop are evaluated by the loop (and pulled again by outside readers)."""
        return node_id in self.dynamic and any(node_id in self.interior(t) for t in self.trainers)


def plan_problems(graph: Graph) -> list[Problem]:
    """Training wiring that cannot work: a trainer with nothing to train, two unordered trainers of one node."""
    plan = Plan(graph)
    problems: list[Problem] = []
    for trainer in plan.trainers:
        wanted = graph.nodes[trainer].params.get("train") or []
        for w in wanted:
            node_id = w.split(".")[0]
            if node_id not in plan.learnables or node_id not in plan.interior(trainer):
                problems.append(Problem(trainer, "train", f"{node_id!r} is not a learnable node upstream of "
                                                          f"this loss"))
        if not plan.trains(trainer):
            problems.append(Problem(trainer, "loss", "the loss depends on no learnable node, so there is nothing "
                                                     "to train; connect a learnable node upstream of the loss"))
    for learnable in plan.learnables:
        owners = [t for t in plan.trainers if learnable in plan.trains(t)]
        for a, b in zip(owners, owners[1:]):
            if a not in plan.interior(b):
                problems.append(Problem(b, "after", f"both {a} and {b} train {learnable}: connect {a}.done to "
                                                    f"{b}.after so the stages run in order"))
    if not problems and not nx.is_directed_acyclic_graph(plan.ordered):
        problems.append(Problem(None, None, "a node reads a trained value and also feeds the training loss"))
    return problems

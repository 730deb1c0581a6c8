"""What the executor needs to know about a graph's shape before it runs it.

Training is a node (a trainer, e.g. ``Optimize``), not a cycle. For every trainer node this works out:
- ``trains``: the learnable nodes it updates (its learnable ancestors, or the ones its contract's ``train``
  param names);
- ``interior``: its ancestors, the sub-graph its loop evaluates;
- ``taps``: preview nodes fed by what it trains, evaluated every few iterations under ``no_grad``;
- ordering edges ``trainer -> consumer`` for every node that reads a trained value from outside the loop, so
  that node runs after training and sees the trained values.
A node is *dynamic* when it is learnable or stochastic or depends on one: inside a loop it runs every
iteration; everything else in the loop is computed once and reused.
"""
from __future__ import annotations

from functools import cached_property

import networkx as nx

from nodegraph.errors import Problem
from nodegraph.graph import Graph
from nodegraph.spec import NodeSpec


class Plan:
    """The shape of one valid graph: built once per run from its specs and resolved params."""

    def __init__(self, graph: Graph, specs: dict[str, NodeSpec], params: dict[str, dict]) -> None:
        self.graph, self.specs, self.params = graph, specs, params
        self.dag = nx.DiGraph()
        self.dag.add_nodes_from(graph.nodes)
        self.dag.add_edges_from((l.src, l.dst) for l in graph.links)
        self._interior: dict[str, set[str]] = {}

    @cached_property
    def topological(self) -> list[str]:
        return list(nx.topological_sort(self.dag))

    @cached_property
    def learnables(self) -> set[str]:
        return {n for n in self.dag if self.specs[n].learnable}

    @cached_property
    def trainers(self) -> list[str]:
        return [n for n in self.topological if self.specs[n].trainer is not None]

    @cached_property
    def dynamic(self) -> set[str]:
        seeds = {n for n in self.dag if self.specs[n].learnable or self.specs[n].stochastic}
        out = set(seeds)
        for n in seeds:
            out |= nx.descendants(self.dag, n)
        return out - set(self.trainers)

    def interior(self, trainer: str) -> set[str]:
        if trainer not in self._interior:
            self._interior[trainer] = nx.ancestors(self.dag, trainer)
        return self._interior[trainer]

    def _wanted(self, trainer: str) -> list[str]:
        """What the trainer's ``train`` param names (empty: everything learnable upstream)."""
        return self.params[trainer].get(self.specs[trainer].trainer.train) or []

    def trains(self, trainer: str) -> list[str]:
        """Learnable ancestors of ``trainer``, narrowed by its ``train`` param when that names node ids."""
        inside = self.interior(trainer)
        candidates = [n for n in self.topological if n in self.learnables and n in inside]
        wanted = self._wanted(trainer)
        if wanted:
            names = {w.split(".")[0] for w in wanted}
            candidates = [n for n in candidates if n in names]
        return candidates

    def trained_tensors(self, trainer: str, node_id: str) -> set[str] | None:
        """Which tensors of a learnable node the trainer updates (None: all of them)."""
        names = {w.partition(".")[2] for w in self._wanted(trainer) if w.partition(".")[0] == node_id}
        if not names or "" in names:
            return None
        return names

    def previous_stages(self, trainer: str) -> list[str]:
        """Trainers that must finish before this one (linked through ``after``), nearest last."""
        inside = self.interior(trainer)
        return [n for n in self.trainers if n in inside]

    def taps(self, trainer: str) -> list[str]:
        trained = set(self.trains(trainer))
        inside = self.interior(trainer)
        return [n for n in self.topological
                if self.specs[n].preview and n not in inside and nx.ancestors(self.dag, n) & trained]

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

    @cached_property
    def in_some_loop(self) -> set[str]:
        return set().union(*(self.interior(t) for t in self.trainers)) if self.trainers else set()

    def loop_only(self, node_id: str) -> bool:
        """Dynamic nodes inside a loop are evaluated by the loop (and pulled again by outside readers)."""
        return node_id in self.dynamic and node_id in self.in_some_loop

    def problems(self) -> list[Problem]:
        """Training wiring that cannot work: a trainer with nothing to train, two unordered trainers of one node."""
        problems: list[Problem] = []
        for trainer in self.trainers:
            contract = self.specs[trainer].trainer
            for w in self._wanted(trainer):
                node_id = w.split(".")[0]
                if node_id not in self.learnables or node_id not in self.interior(trainer):
                    problems.append(Problem(trainer, contract.train, f"{node_id!r} is not a learnable node "
                                                                     f"upstream of this loss"))
            if not self.trains(trainer):
                problems.append(Problem(trainer, contract.loss, "the loss depends on no learnable node, so there "
                                                                "is nothing to train; connect a learnable node "
                                                                "upstream of the loss"))
        for learnable in sorted(self.learnables):
            owners = [t for t in self.trainers if learnable in self.trains(t)]
            for a, b in zip(owners, owners[1:]):
                if a not in self.interior(b):
                    problems.append(Problem(b, self.specs[b].trainer.after, f"both {a} and {b} train {learnable}: "
                                                                            f"connect {a}.done to {b}.after so the "
                                                                            f"stages run in order"))
        if not problems and not nx.is_directed_acyclic_graph(self.ordered):
            problems.append(Problem(None, None, "a node reads a trained value and also feeds the training loss"))
        return problems

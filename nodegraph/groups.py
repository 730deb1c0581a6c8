"""What groups and node modes mean when a graph runs: the document is flattened to plain nodes first.

A group instance (a node of type ``group:<name>``) is replaced by a copy of its definition's nodes, each with
the path id ``<instance id>/<inner id>`` (nested groups give longer paths, ``outer/inner/node``). Links into an
instance's exposed input go to every inner port it maps to; links from an exposed output come from the inner
port it names; an instance's params are written over the inner params they map to. Because every instance is
expanded from the one definition, editing the definition changes every instance, and because the flat graph
has ordinary nodes, validation, caching keys, training and previews need nothing special: a problem or a
preview names the path id, and editing one instance's param changes only that instance's inner nodes' keys.

Modes act on the flat graph afterwards:

- **bypass**: the node does not run; each of its outputs passes on what arrives at its first input of the same
  type (in the spec's order). An output that something reads but that has no such connected input is a
  problem, so a bypass never silently drops a value.
- **mute**: the node does not run, and neither does anything that then lacks a required input (transitively).
  A reader that loses only an optional input, or some of the links of a multiple input, still runs without
  them: an ``Optimize`` with one of its losses muted trains on the others. A muted group instance mutes every
  node inside it; a group instance cannot be bypassed (bypass the nodes inside it instead).

Graphs without groups and modes are returned as they are, so flattening costs nothing for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodegraph.errors import Problem
from nodegraph.graph import Definition, Graph, Link, NodeDoc
from nodegraph.registry import Registry
from nodegraph.spec import NodeSpec

SEP = "/"
MAX_NESTING = 32  # groups inside groups deeper than this are refused (a definition cycle is caught first)


@dataclass
class Flat:
    """A document flattened: the graph the engine runs, and what flattening decided."""

    graph: Graph
    problems: list[Problem] = field(default_factory=list)
    instances: dict[str, list[str]] = field(default_factory=dict)  # instance path -> its flat node ids
    bypassed: list[str] = field(default_factory=list)
    muted: list[str] = field(default_factory=list)  # muted nodes and the nodes skipped because of them
    exposed_inputs: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # inner port -> instance port

    def outer(self, problems: list[Problem]) -> list[Problem]:
        """Problems with an unconnected inner input that a group exposes moved to the instance's port (the
        port to connect), once each."""
        out: list[Problem] = []
        for p in problems:
            where = self.exposed_inputs.get((p.node, p.field)) if "not connected" in p.message else None
            moved = Problem(where[0], where[1], p.message.replace("required input", "required group input"))\
                if where else p
            if moved not in out:
                out.append(moved)
        return out

    def expand_targets(self, targets: list[str]) -> list[str]:
        """Run-up-to targets in flat ids: an instance stands for every node inside it."""
        out: list[str] = []
        for t in targets:
            out += self.instances.get(t, [t])
        return out


def flatten(graph: Graph, registry: Registry) -> Flat:
    """The flat graph of ``graph`` (see the module docstring), with every problem found on the way."""
    has_groups = any(n.group is not None for n in graph.nodes.values())
    has_modes = any(n.mode for n in graph.nodes.values())
    if not has_groups and not has_modes:
        return Flat(graph)
    flat = Flat(Graph(name=graph.name, description=graph.description, seed=graph.seed, ui=graph.ui,
                      base_dir=graph.base_dir, path=graph.path, definitions=graph.definitions,
                      format=graph.format))
    if has_groups:
        _Expander(graph.definitions, flat).scope(graph.nodes, graph.links, "", ())
    else:
        flat.graph.nodes = dict(graph.nodes)
        flat.graph.links = list(graph.links)
    if not flat.problems:
        _apply_modes(flat, registry)
    return flat


class _Expander:
    """Expands one scope (the graph, or a definition under a prefix) into the flat graph."""

    def __init__(self, definitions: dict[str, Definition], flat: Flat) -> None:
        self.definitions, self.flat = definitions, flat

    def scope(self, nodes: dict[str, NodeDoc], links: list[Link], prefix: str,
              chain: tuple[str, ...]) -> tuple[dict, dict]:
        """Add ``nodes`` and ``links`` under ``prefix``; return how their instances' exposed ports resolve:
        ``(ins, outs)`` with ``ins[(id, port)] = [(flat id, port), ...]`` and ``outs[(id, port)] = (flat id,
        port)``, for instances only (a plain node's port is itself)."""
        ins: dict[tuple[str, str], list[tuple[str, str]]] = {}
        outs: dict[tuple[str, str], tuple[str, str] | None] = {}
        instances: set[str] = set()
        for node in nodes.values():
            path = prefix + node.id
            if node.group is None:
                self._add(NodeDoc(path, node.type, dict(node.params), node.ui, node.mode))
                continue
            instances.add(node.id)
            self._instance(node, path, chain, ins, outs)
        for link in links:
            if link.src in instances:
                src = outs.get((link.src, link.src_port), False)
                if src is False:
                    self._problem(prefix + link.src, link.src_port, f"group {nodes[link.src].group!r} has no "
                                  f"output {link.src_port!r}; it has {self._names(nodes[link.src], 'outputs')}")
                    continue
                if src is None:
                    continue  # the inner problem is reported already
            else:
                src = (prefix + link.src, link.src_port)
            if link.dst in instances:
                dsts = ins.get((link.dst, link.dst_port))
                if dsts is None:
                    self._problem(prefix + link.dst, link.dst_port, f"group {nodes[link.dst].group!r} has no "
                                  f"input {link.dst_port!r}; it has {self._names(nodes[link.dst], 'inputs')}")
                    continue
            else:
                dsts = [(prefix + link.dst, link.dst_port)]
            for dst in dsts:
                self.flat.graph.links.append(Link(src[0], src[1], dst[0], dst[1]))
        return ins, outs

    def _instance(self, node: NodeDoc, path: str, chain: tuple[str, ...], ins: dict, outs: dict) -> None:
        name = node.group
        definition = self.definitions.get(name)
        if definition is None:
            self._problem(path, "type", f"unknown group {name!r}; the graph defines "
                                        f"{sorted(self.definitions)}")
            return
        if name in chain:
            self._problem(path, "type", "group definitions form a cycle: " + " -> ".join(chain + (name,)))
            return
        if len(chain) >= MAX_NESTING:
            self._problem(path, "type", f"groups are nested more than {MAX_NESTING} deep")
            return
        if node.mode == "bypass":
            self._problem(path, "mode", "a group cannot be bypassed; bypass nodes inside it, or mute it")
        inner = {i: NodeDoc(n.id, n.type, dict(n.params), n.ui, "mute" if node.mode == "mute" else n.mode)
                 for i, n in definition.nodes.items()}
        exposed = {e.name: e for e in definition.params}
        for pname, value in node.params.items():
            if pname not in exposed:
                self._problem(path, pname, f"unknown param of group {name!r}; it exposes {sorted(exposed)}")
                continue
            for inner_id, inner_param in exposed[pname].targets:
                if inner_id in inner:
                    inner[inner_id].params[inner_param] = value
        for e in definition.params:
            for inner_id, _ in e.targets:
                if inner_id not in inner:
                    self._problem(path, e.name, f"group {name!r} maps param {e.name!r} to {inner_id!r}, which "
                                                f"is not one of its nodes")
        first = len(self.flat.graph.nodes)
        inner_ins, inner_outs = self.scope(inner, definition.links, path + SEP, chain + (name,))
        self.flat.instances[path] = list(self.flat.graph.nodes)[first:]
        for e in definition.inputs:
            resolved = []
            for inner_id, port in e.targets:
                if inner_id not in inner:
                    self._problem(path, e.name, f"group {name!r} maps input {e.name!r} to {inner_id!r}, which is "
                                                f"not one of its nodes")
                elif inner[inner_id].group is not None:
                    resolved += inner_ins.get((inner_id, port), [])
                else:
                    resolved.append((path + SEP + inner_id, port))
            ins[(node.id, e.name)] = resolved
            for target in resolved:  # outer instances come later and win: they own the port to connect
                self.flat.exposed_inputs[target] = (path, e.name)
        for e in definition.outputs:
            inner_id, port = e.targets[0]
            if inner_id not in inner:
                self._problem(path, e.name, f"group {name!r} maps output {e.name!r} to {inner_id!r}, which is "
                                            f"not one of its nodes")
                outs[(node.id, e.name)] = None
            elif inner[inner_id].group is not None:
                outs[(node.id, e.name)] = inner_outs.get((inner_id, port))
            else:
                outs[(node.id, e.name)] = (path + SEP + inner_id, port)

    def _names(self, node: NodeDoc, which: str) -> list[str]:
        definition = self.definitions.get(node.group)
        return [e.name for e in getattr(definition, which)] if definition else []

    def _add(self, node: NodeDoc) -> None:
        if node.id in self.flat.graph.nodes:
            self._problem(node.id, "id", "two nodes have this id once groups are expanded; rename one (ids "
                                         "with '/' are group paths)")
            return
        self.flat.graph.nodes[node.id] = node

    def _problem(self, node: str | None, field_name: str | None, message: str) -> None:
        self.flat.problems.append(Problem(node, field_name, message))


# ------------------------------------------------------------------------------------------ modes


def _apply_modes(flat: Flat, registry: Registry) -> None:
    """Take bypassed and muted nodes out of the flat graph, rewiring around bypassed ones."""
    graph = flat.graph
    modes = {n.id: n.mode for n in graph.nodes.values() if n.mode}
    if not modes:
        return
    specs: dict[str, NodeSpec | None] = {n: registry.get(graph.nodes[n].type) for n in modes}
    into: dict[str, list[Link]] = {}
    for link in graph.links:
        into.setdefault(link.dst, []).append(link)
    links = _bypass(flat, modes, specs, into)
    removed = set(flat.bypassed)
    muted = {n for n, m in modes.items() if m == "mute"}
    links = [l for l in links if l.src not in removed and l.dst not in removed]
    muted = _spread_mute(graph, registry, muted, links)
    flat.muted = [n for n in graph.nodes if n in muted]
    removed |= muted
    graph.nodes = {i: n for i, n in graph.nodes.items() if i not in removed}
    graph.links = [l for l in links if l.src not in removed and l.dst not in removed]


def _bypass(flat: Flat, modes: dict[str, str], specs: dict, into: dict[str, list[Link]]) -> list[Link]:
    """The links with every read of a bypassed node's output redirected to what feeds its matching input."""
    passes: dict[tuple[str, str], tuple[str, str] | Problem] = {}  # (node, output) -> what it passes on
    for node_id, mode in modes.items():
        spec = specs[node_id]
        if mode != "bypass" or spec is None:
            continue  # an unknown type is reported by validation
        flat.bypassed.append(node_id)
        for out in spec.outputs:
            match = next((i for i in spec.inputs if i.type == out.type), None)
            if match is None:
                passes[(node_id, out.name)] = Problem(node_id, "mode", f"cannot be bypassed: no input of type "
                                                      f"{out.type} to pass on as {out.name!r}")
                continue
            feeding = [l for l in into.get(node_id, []) if l.dst_port == match.name]
            if not feeding:
                passes[(node_id, out.name)] = Problem(node_id, "mode", f"cannot be bypassed: input "
                                                      f"{match.name!r} (passed on as {out.name!r}) is not connected")
                continue
            passes[(node_id, out.name)] = (feeding[0].src, feeding[0].src_port)

    read = {(l.src, l.src_port) for l in flat.graph.links}
    failing: set[str] = set()
    for end, got in passes.items():
        if isinstance(got, Problem) and end in read:
            flat.problems.append(got)
            failing.add(end[0])
    flat.bypassed[:] = [n for n in flat.bypassed if n not in failing]  # kept, so nothing else looks unlinked

    def source(end: tuple[str, str], seen: frozenset = frozenset()) -> tuple[str, str]:
        if end[0] in failing or end not in passes or end in seen:
            return end
        return source(passes[end], seen | {end})

    links: list[Link] = []
    for link in flat.graph.links:
        if link.src not in flat.bypassed:
            links.append(link)
            continue
        if (link.src, link.src_port) not in passes:
            flat.problems.append(Problem(link.src, link.src_port, f"{specs[link.src].name} has no output "
                                                                  f"{link.src_port!r}"))
            continue
        got = source((link.src, link.src_port))
        links.append(Link(got[0], got[1], link.dst, link.dst_port))
    return links


def _spread_mute(graph: Graph, registry: Registry, muted: set[str], links: list[Link]) -> set[str]:
    """Muted nodes plus every node left without a required input by them, transitively."""
    out = set(muted)
    readers: dict[str, list[Link]] = {}
    into: dict[str, list[Link]] = {}
    for link in links:
        readers.setdefault(link.src, []).append(link)
        into.setdefault(link.dst, []).append(link)
    todo = list(muted)
    while todo:
        node_id = todo.pop()
        for link in readers.get(node_id, []):
            reader = link.dst
            if reader in out:
                continue
            spec = registry.get(graph.nodes[reader].type)
            port = spec.input(link.dst_port) if spec else None
            if port is None or port.optional:
                continue
            alive = [l for l in into.get(reader, []) if l.dst_port == port.name and l.src not in out]
            if not alive:
                out.add(reader)
                todo.append(reader)
    return out


def instance_spec(graph: Graph, name: str, registry: Registry) -> dict[str, Any]:
    """The catalogue entry (as ``NodeSpec.to_json``) of group ``name``: its exposed ports with the types of the
    inner ports they map to, and its exposed params as the inner params they map to, defaulting to the values
    the definition gives them. The editor draws instances and the palette from it."""
    definition = graph.definitions[name]

    def inner_spec(inner_id: str) -> dict | None:
        node = definition.nodes.get(inner_id)
        if node is None:
            return None
        if node.group is not None:
            return instance_spec(graph, node.group, registry) if node.group in graph.definitions else None
        spec = registry.get(node.type)
        return spec.to_json() if spec else None

    def port(e, which: str) -> dict:
        inner_id, inner_port = e.targets[0]
        spec = inner_spec(inner_id) or {}
        found = next((p for p in spec.get(which, []) if p["name"] == inner_port), None)
        out = dict(found or {"type": "Any", "doc": "", "optional": True, "multiple": False})
        out["name"] = e.name
        out["doc"] = f"{inner_id}.{inner_port}" + (f": {found['doc']}" if found and found.get("doc") else "")
        return out

    params = []
    for e in definition.params:
        p = port(e, "params")
        inner_id, inner_param = e.targets[0]
        given = definition.nodes[inner_id].params if inner_id in definition.nodes else {}
        if inner_param in given:
            p["default"] = given[inner_param]
        params.append(p)
    return {"name": f"group:{name}", "category": "groups", "doc": definition.description or f"group {name}",
            "aliases": [], "group": name,
            "inputs": [port(e, "inputs") for e in definition.inputs], "params": params,
            "outputs": [port(e, "outputs") for e in definition.outputs],
            "flags": {"stochastic": False, "learnable": False, "preview": False, "trainer": False,
                      "sink": not definition.outputs}}

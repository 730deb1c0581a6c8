"""Editing a document with groups: turn a selection of nodes into a group (a definition plus one instance in
their place) and turn an instance back into plain nodes. The editor does the same in ``frontend/src/groups.js``.

Grouping keeps behaviour: every link that crosses the selection's boundary becomes an exposed port of the
group (one input per outside output it reads, feeding every inner port that read it; one output per inner
output read from outside), and the instance is wired where the nodes were, so the graph computes the same
values, now under path ids. These act on a graph's own nodes; the editor also groups inside an entered group,
re-pointing what that group exposes through the new one.
"""
from __future__ import annotations

from typing import Iterable

from nodegraph.graph import GROUP_PREFIX, Definition, Exposed, Graph, Link, NodeDoc


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def _moved(node: NodeDoc, dx: float, dy: float) -> NodeDoc:
    """A copy of ``node`` shifted by (dx, dy) on the canvas (inner positions are relative to the group)."""
    ui = dict(node.ui)
    if isinstance(ui.get("pos"), list) and len(ui["pos"]) == 2:
        ui["pos"] = [ui["pos"][0] + dx, ui["pos"][1] + dy]
    return NodeDoc(node.id, node.type, dict(node.params), ui, node.mode)


def group_nodes(graph: Graph, node_ids: Iterable[str], name: str, instance_id: str | None = None,
                params: Iterable[str] = ()) -> str:
    """Replace ``node_ids`` by an instance of a new definition ``name``; return the instance's id.

    ``params`` (``"node.param"``) are exposed as params of the group under the param's name. Raises ValueError
    for an unknown node, an empty selection or a name already defined.
    """
    chosen = list(dict.fromkeys(node_ids))
    if not chosen:
        raise ValueError("select at least one node to group")
    missing = [n for n in chosen if n not in graph.nodes]
    if missing:
        raise ValueError(f"no such node(s): {missing}")
    if not name or "/" in name or name in graph.definitions:
        raise ValueError(f"{name!r} is not a free group name (non-empty, no '/', not defined yet)")
    inside = set(chosen)
    xs = [graph.nodes[n].ui.get("pos", [0, 0]) for n in chosen]
    pos = [min(p[0] for p in xs), min(p[1] for p in xs)]
    definition = Definition(nodes={n: _moved(graph.nodes[n], -pos[0], -pos[1]) for n in chosen})
    kept: list[Link] = []
    in_names: set[str] = set()
    out_names: set[str] = set()
    inputs: dict[tuple[str, str], Exposed] = {}
    outputs: dict[tuple[str, str], Exposed] = {}
    instance_id = instance_id or graph._fresh_id(name)
    crossing: list[Link] = []
    for link in graph.links:
        src_in, dst_in = link.src in inside, link.dst in inside
        if src_in and dst_in:
            definition.links.append(link)
        elif dst_in:
            exposed = inputs.get((link.src, link.src_port))
            if exposed is None:
                exposed = inputs[(link.src, link.src_port)] = Exposed(_unique(link.dst_port, in_names), [])
                crossing.append(Link(link.src, link.src_port, instance_id, exposed.name))
            exposed.targets.append((link.dst, link.dst_port))
        elif src_in:
            exposed = outputs.get((link.src, link.src_port))
            if exposed is None:
                exposed = outputs[(link.src, link.src_port)] = Exposed(_unique(link.src_port, out_names),
                                                                       [(link.src, link.src_port)])
            crossing.append(Link(instance_id, exposed.name, link.dst, link.dst_port))
        else:
            kept.append(link)
    definition.inputs, definition.outputs = list(inputs.values()), list(outputs.values())
    param_names: set[str] = set()
    for item in params:
        node_id, _, param = item.partition(".")
        if node_id not in inside or not param:
            raise ValueError(f"cannot expose {item!r}: not a param of a grouped node")
        definition.params.append(Exposed(_unique(param, param_names), [(node_id, param)]))
    for n in chosen:
        del graph.nodes[n]
    graph.definitions[name] = definition
    graph.nodes[instance_id] = NodeDoc(instance_id, GROUP_PREFIX + name, {}, {"pos": pos})
    graph.links = kept + crossing
    return instance_id


def ungroup(graph: Graph, instance_id: str) -> list[str]:
    """Replace an instance by copies of its definition's nodes (ids kept where free, else
    ``<instance>_<inner>``), its params written into them; return the new ids. The definition stays, for other
    instances and the palette."""
    instance = graph.nodes.get(instance_id)
    if instance is None or instance.group not in graph.definitions:
        raise ValueError(f"{instance_id!r} is not an instance of a group this graph defines")
    definition = graph.definitions[instance.group]
    del graph.nodes[instance_id]
    taken = set(graph.nodes)
    ids = {i: (i if i not in taken else _unique(f"{instance_id}_{i}", taken)) for i in definition.nodes}
    taken |= set(ids.values())
    base = instance.ui.get("pos", [0, 0])
    for inner_id, node in definition.nodes.items():
        copy = _moved(node, base[0], base[1])
        copy.id, copy.mode = ids[inner_id], instance.mode or node.mode
        graph.nodes[copy.id] = copy
    for e in definition.params:
        if e.name in instance.params:
            for inner_id, param in e.targets:
                graph.nodes[ids[inner_id]].params[param] = instance.params[e.name]
    ins = {e.name: e.targets for e in definition.inputs}
    outs = {e.name: e.targets[0] for e in definition.outputs}
    links = [Link(ids[l.src], l.src_port, ids[l.dst], l.dst_port) for l in definition.links]
    for link in graph.links:
        if link.dst == instance_id:
            links += [Link(link.src, link.src_port, ids[n], p) for n, p in ins.get(link.dst_port, [])]
        elif link.src == instance_id and link.src_port in outs:
            n, p = outs[link.src_port]
            links.append(Link(ids[n], p, link.dst, link.dst_port))
        elif instance_id not in (link.src, link.dst):
            links.append(link)
    graph.links = links
    return list(ids.values())


def needed_definitions(graph: Graph, name: str) -> dict[str, Definition]:
    """Definition ``name`` and every definition it uses, nested ones included: what a copy of the group
    carries into another graph (the library's groups)."""
    out: dict[str, Definition] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in out or current not in graph.definitions:
            continue
        out[current] = graph.definitions[current]
        todo += [n.group for n in out[current].nodes.values() if n.group is not None]
    return out

"""The graph document: nodes, links, params, group definitions, read from and written to ``nodegraph/N`` JSON.

A :class:`Graph` is the user's document and knows nothing about running: a
:class:`~nodegraph.session.Session` pairs it with the long-lived executor that does. JSON is written sorted and
indented, so a saved graph diffs cleanly and load -> save is identity. ``nodegraph/2`` adds group definitions
(``definitions``) and node modes (``mode``: bypass or mute); a file in ``nodegraph/1`` (or with no format, the
oldest files) loads, and is written back in the format it came in until it uses something only version 2 has.
What groups and modes mean when a graph runs is :mod:`nodegraph.groups`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nodegraph.errors import GraphError, Problem
from nodegraph.paths import write_atomic

FORMAT = "nodegraph/2"
OLD_FORMATS = ("nodegraph/1", None)  # None: a file without a "format" key
MAX_DEPTH = 64  # JSON nesting a graph may have; deeper documents are refused before anything walks them
TOP_LEVEL_KEYS = {"format", "name", "description", "seed", "nodes", "links", "ui", "definitions"}
NODE_KEYS = {"id", "type", "params", "ui", "mode"}
DEFINITION_KEYS = {"description", "nodes", "links", "inputs", "outputs", "params", "ui"}
MODES = ("bypass", "mute")
GROUP_PREFIX = "group:"  # a node of type "group:<name>" is an instance of definition <name>


@dataclass
class NodeDoc:
    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    ui: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None  # "bypass" or "mute"; None runs normally

    @property
    def group(self) -> str | None:
        """The definition this node instances, or None for a plain node."""
        return self.type[len(GROUP_PREFIX):] if self.type.startswith(GROUP_PREFIX) else None

    def to_json(self) -> dict:
        out = {"id": self.id, "type": self.type, "params": self.params}
        if self.ui:
            out["ui"] = self.ui
        if self.mode:
            out["mode"] = self.mode
        return out


@dataclass(frozen=True)
class Link:
    src: str
    src_port: str
    dst: str
    dst_port: str

    def to_json(self) -> dict:
        return {"from": [self.src, self.src_port], "to": [self.dst, self.dst_port]}


@dataclass
class Exposed:
    """One port or param of a group: its name on the instance and the inner ``[node, port or param]`` it maps to
    (an input or param may feed several inner ones; an output comes from exactly one)."""

    name: str
    targets: list[tuple[str, str]]

    def to_json(self, key: str) -> dict:
        value = list(self.targets[0]) if key == "from" else [list(t) for t in self.targets]
        return {"name": self.name, key: value}


@dataclass
class Definition:
    """A group definition: a sub-graph (nodes and links with their own ids) and what its instances expose."""

    nodes: dict[str, NodeDoc] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    inputs: list[Exposed] = field(default_factory=list)
    outputs: list[Exposed] = field(default_factory=list)
    params: list[Exposed] = field(default_factory=list)
    description: str = ""
    ui: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "description": self.description, "nodes": [n.to_json() for n in self.nodes.values()],
            "links": [l.to_json() for l in self.links], "inputs": [e.to_json("to") for e in self.inputs],
            "outputs": [e.to_json("from") for e in self.outputs], "params": [e.to_json("to") for e in self.params],
        }
        if self.ui:
            out["ui"] = self.ui
        return out


@dataclass
class Graph:
    """A graph document: nodes with their params, links between ports, a name, a seed and editor layout."""

    nodes: dict[str, NodeDoc] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    name: str = "untitled"
    description: str = ""
    seed: int = 0
    ui: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)  # asset paths are relative to this
    path: Path | None = None
    definitions: dict[str, Definition] = field(default_factory=dict)
    format: str | None = FORMAT  # as read; written back unless the graph needs a newer one

    @property
    def written_format(self) -> str | None:
        """The format a save writes: the one read, or version 2 once the graph uses groups or modes."""
        uses_v2 = bool(self.definitions) or any(n.mode for n in self.nodes.values())
        return FORMAT if uses_v2 else self.format

    # ------------------------------------------------------------------ editing
    def add_node(self, type_name: str, node_id: str | None = None, **params: Any) -> str:
        node_id = node_id or self._fresh_id(type_name)
        if node_id in self.nodes:
            raise ValueError(f"node id {node_id!r} is taken")
        self.nodes[node_id] = NodeDoc(node_id, type_name, dict(params))
        return node_id

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> Link:
        link = Link(src, src_port, dst, dst_port)
        self.links.append(link)
        return link

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        if node_id not in self.nodes:
            raise GraphError([Problem(node_id, None, "no such node")])
        self.nodes[node_id].params[name] = value

    def set_params(self, overrides: dict[str, Any]) -> None:
        """Apply ``{"node.param": value}`` overrides, as the CLI's ``--set``."""
        problems = []
        for key, value in overrides.items():
            node_id, _, name = key.partition(".")
            if node_id not in self.nodes or not name:
                inside = node_id.split("/")[0] if "/" in node_id else None
                why = (f"{node_id!r} is inside the group instance {inside!r}: set one of its exposed params "
                       f"({inside}.<param>) or edit the definition" if inside in self.nodes else "no such node")
                problems.append(Problem(node_id or key, name or None, f"cannot set {key!r}: {why}"))
                continue
            self.nodes[node_id].params[name] = value
        if problems:
            raise GraphError(problems)

    def _fresh_id(self, type_name: str) -> str:
        stem = "".join(c for c in type_name.lower() if c.isalnum() or c == "_") or "node"
        i = 1
        while f"{stem}{i}" in self.nodes:
            i += 1
        return f"{stem}{i}"

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "format": self.written_format, "name": self.name, "description": self.description, "seed": self.seed,
            "nodes": [n.to_json() for n in self.nodes.values()],
            "links": [l.to_json() for l in self.links],
        }
        if out["format"] is None:
            del out["format"]
        if self.ui:
            out["ui"] = self.ui
        if self.definitions:
            out["definitions"] = {name: d.to_json() for name, d in self.definitions.items()}
        return out

    def dumps(self) -> str:
        return dumps(self.to_json())

    def save(self, path: str | Path | None = None) -> Path:
        """Write the graph atomically: a crash mid-write never leaves a half-written file."""
        return write_atomic(Path(path or self.path or "graph.json"), self.dumps())


def dumps(doc: Any) -> str:
    """Sorted, indented JSON with short lists of numbers or strings kept on one line, so diffs stay readable."""
    return _dump(doc, 0) + "\n"


def _dump(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dump(value[k], depth + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        flat = json.dumps(value)
        if not value or (all(not isinstance(v, (dict, list)) for v in value) and len(flat) <= 100):
            return flat
        return "[\n" + ",\n".join(inner + _dump(v, depth + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value)


def from_json(doc: Any, base_dir: Path | None = None, path: Path | None = None) -> Graph:
    """Build a Graph from parsed JSON; raises GraphError listing every structural problem."""
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise GraphError([Problem(None, None, "a graph file must hold a JSON object")])
    if _too_deep(doc, MAX_DEPTH):
        raise GraphError([Problem(None, None, f"the document is nested more than {MAX_DEPTH} levels deep")])
    fmt = doc.get("format")
    if fmt != FORMAT and fmt not in OLD_FORMATS:
        problems.append(Problem(None, "format", f"unknown format {fmt!r}; expected {FORMAT!r} (or an older "
                                                f"'nodegraph/1')"))
    for key in sorted(set(doc) - TOP_LEVEL_KEYS):
        problems.append(Problem(None, key, "unknown top-level key"))
    ui = doc.get("ui") or {}
    if not isinstance(ui, dict):
        problems.append(Problem(None, "ui", f"must be an object, got {type(ui).__name__}"))
        ui = {}
    graph = Graph(name=str(doc.get("name", "untitled")), description=str(doc.get("description", "")),
                  ui=ui, base_dir=base_dir or Path.cwd(), path=path, format=fmt if isinstance(fmt, str) else None)
    seed = doc.get("seed", 0)
    if isinstance(seed, int) and not isinstance(seed, bool):
        graph.seed = seed
    else:
        problems.append(Problem(None, "seed", f"must be a whole number, got {seed!r}"))
    graph.nodes = _read_nodes(doc.get("nodes", []), "", problems)
    graph.links = _read_links(doc.get("links", []), "", problems)
    definitions = doc.get("definitions", {})
    if not isinstance(definitions, dict):
        problems.append(Problem(None, "definitions", "must be an object of group name -> definition"))
        definitions = {}
    for name, raw in definitions.items():
        definition = _read_definition(name, raw, problems)
        if definition is not None:
            graph.definitions[name] = definition
    if problems:
        raise GraphError(problems, partial=graph)
    return graph


def _read_nodes(raw_nodes: Any, where: str, problems: list[Problem]) -> dict[str, NodeDoc]:
    """The nodes of a graph or of a definition (``where`` prefixes the field a problem names)."""
    nodes: dict[str, NodeDoc] = {}
    for i, raw in enumerate(_as_list(raw_nodes, where + "nodes", problems)):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("type"), str):
            problems.append(Problem(None, f"{where}nodes[{i}]", "a node needs a string 'id' and 'type'"))
            continue
        node_id = where + raw["id"]
        for key in sorted(set(raw) - NODE_KEYS):
            problems.append(Problem(node_id, key, "unknown node key"))
        if raw["id"] in nodes:
            problems.append(Problem(node_id, "id", "duplicate node id"))
            continue
        params = raw.get("params", {})
        if not isinstance(params, dict):
            problems.append(Problem(node_id, "params", "must be an object"))
            params = {}
        node_ui = raw.get("ui") or {}
        if not isinstance(node_ui, dict):
            problems.append(Problem(node_id, "ui", f"must be an object, got {type(node_ui).__name__}"))
            node_ui = {}
        mode = raw.get("mode")
        if mode is not None and mode not in MODES:
            problems.append(Problem(node_id, "mode", f"must be one of {list(MODES)}, got {mode!r}"))
            mode = None
        nodes[raw["id"]] = NodeDoc(raw["id"], raw["type"], dict(params), dict(node_ui), mode)
    return nodes


def _read_links(raw_links: Any, where: str, problems: list[Problem]) -> list[Link]:
    links = []
    for i, raw in enumerate(_as_list(raw_links, where + "links", problems)):
        ends = [raw.get(end) if isinstance(raw, dict) else None for end in ("from", "to")]
        if not all(_is_end(e) for e in ends):
            shown = json.dumps(raw)[:200]
            problems.append(Problem(None, f"{where}links[{i}]", f"a link is {{'from': [node, output], 'to': "
                                                                f"[node, input]}} with four strings, got {shown}"))
            continue
        (src, src_port), (dst, dst_port) = ends
        links.append(Link(src, src_port, dst, dst_port))
    return links


def _is_end(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(x, str) for x in value)


def _read_exposed(raw_list: Any, key: str, where: str, problems: list[Problem]) -> list[Exposed]:
    """A definition's ``inputs``/``params`` (``{"name", "to": [[node, port], ...]}``) or ``outputs``
    (``{"name", "from": [node, port]}``)."""
    out: list[Exposed] = []
    names: set[str] = set()
    for i, raw in enumerate(_as_list(raw_list, where, problems)):
        target = raw.get(key) if isinstance(raw, dict) else None
        targets = [target] if key == "from" else target
        if not (isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"]
                and isinstance(targets, list) and targets and all(_is_end(t) for t in targets)):
            shape = "[node, port]" if key == "from" else "[[node, port], ...]"
            problems.append(Problem(None, f"{where}[{i}]", f"must be {{'name': ..., '{key}': {shape}}}, got "
                                                            f"{json.dumps(raw)[:200]}"))
            continue
        if raw["name"] in names:
            problems.append(Problem(None, f"{where}[{i}]", f"{raw['name']!r} is exposed twice"))
            continue
        names.add(raw["name"])
        out.append(Exposed(raw["name"], [(t[0], t[1]) for t in targets]))
    return out


def _read_definition(name: Any, raw: Any, problems: list[Problem]) -> Definition | None:
    where = f"definitions.{name}"
    if not isinstance(name, str) or not name or "/" in name:
        problems.append(Problem(None, where, "a group name is a non-empty string without '/'"))
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(None, where, "must be an object"))
        return None
    for key in sorted(set(raw) - DEFINITION_KEYS):
        problems.append(Problem(None, f"{where}.{key}", "unknown definition key"))
    def_ui = raw.get("ui") or {}
    return Definition(
        nodes=_read_nodes(raw.get("nodes", []), f"{where}.", problems),
        links=_read_links(raw.get("links", []), f"{where}.", problems),
        inputs=_read_exposed(raw.get("inputs", []), "to", f"{where}.inputs", problems),
        outputs=_read_exposed(raw.get("outputs", []), "from", f"{where}.outputs", problems),
        params=_read_exposed(raw.get("params", []), "to", f"{where}.params", problems),
        description=str(raw.get("description", "")), ui=def_ui if isinstance(def_ui, dict) else {})


def _too_deep(doc: Any, limit: int) -> bool:
    """Whether ``doc`` nests lists/objects more than ``limit`` levels (walked without recursion)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _as_list(value: Any, name: str, problems: list[Problem]) -> Iterable:
    if isinstance(value, list):
        return value
    problems.append(Problem(None, name, "must be a list"))
    return []


def loads(text: str, base_dir: Path | None = None, path: Path | None = None) -> Graph:
    where = str(path) if path else "graph"
    try:
        doc = json.loads(text)
    except RecursionError:
        raise GraphError([Problem(None, None, f"{where} is nested too deeply to read")]) from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python converts
        raise GraphError([Problem(None, None, f"{where} is not valid JSON: {exc}")]) from None
    return from_json(doc, base_dir, path)


def load(path: str | Path) -> Graph:
    """Read a graph file. Asset paths inside it resolve relative to the file's folder."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise GraphError([Problem(None, None, f"cannot read {path}: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise GraphError([Problem(None, None, f"{path} is not UTF-8 text (byte {exc.start})")]) from None
    return loads(text, base_dir=path.resolve().parent, path=path)

"""The graphs library (where the editor opens and saves graphs), the examples, and the file picker's listing.

Every path that comes from a browser is resolved with :mod:`nodegraph.paths`, so ``..``, absolute paths and
symlinks that lead out of an allowed folder are refused with one clear message.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from nodegraph import paths
from nodegraph.errors import GraphError, Problem
from nodegraph.graph import Graph, from_json
from nodegraph.grouping import needed_definitions

MAX_LISTED_FILES = 2000
GROUPS_FOLDER = "groups"  # <library>/groups/<name>.json: one group (and the groups it uses) per file
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")


class PathRefused(ValueError):
    """A browser asked for a file outside the allowed folders (or with a bad name)."""


def _summary(path: Path, root: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
        return {"path": path.relative_to(root).as_posix(), "name": str(doc.get("name", path.stem)),
                "description": str(doc.get("description", "")), "nodes": len(doc.get("nodes", []))}
    except (OSError, ValueError, AttributeError, TypeError):
        return {"path": path.relative_to(root).as_posix(), "name": path.stem, "description": "(unreadable)",
                "nodes": 0, "broken": True}


class Library:
    """Graph files under ``library_dir`` (read and write) and ``examples_dir`` (read only)."""

    def __init__(self, library_dir: Path, examples_dir: Path = paths.GRAPHS_DIR) -> None:
        self.library_dir = Path(library_dir).resolve()
        self.examples_dir = Path(examples_dir).resolve()
        self.library_dir.mkdir(parents=True, exist_ok=True)

    def root(self, which: str) -> Path:
        if which == "library":
            return self.library_dir
        if which == "examples":
            return self.examples_dir
        raise PathRefused(f"unknown collection {which!r}; use 'library' or 'examples'")

    def list(self, which: str) -> list[dict]:
        """Every graph in a collection (top level only: asset paths are relative to the graph's folder)."""
        root = self.root(which)
        if not root.is_dir():
            return []
        found = [p for p in sorted(root.glob("*.json")) if p.is_file() and not p.name.startswith(".")]
        return [_summary(p, root) for p in found if paths.is_inside(p.resolve(), root)]

    def resolve(self, which: str, value: str) -> Path:
        try:
            return paths.resolve_inside(value, [self.root(which)])
        except ValueError as exc:
            raise PathRefused(str(exc)) from None

    def read(self, which: str, value: str) -> tuple[dict, Path]:
        """The parsed JSON of a graph in a collection and its real path."""
        path = self.resolve(which, value)
        if path.suffix != ".json" or not path.is_file():
            raise PathRefused(f"no graph {value!r} in the {which}")
        try:
            return json.loads(path.read_text()), path
        except ValueError as exc:
            raise GraphError([Problem(None, None, f"{value} is not valid JSON: {exc}")]) from None

    def save_path(self, name: str) -> Path:
        """Where a graph called ``name`` is saved: ``<library>/<name>.json``; names are plain file names."""
        stem = name[:-5] if name.endswith(".json") else name
        if not NAME_RE.fullmatch(stem) or ".." in stem:  # fullmatch: "$" alone lets a trailing newline in
            raise PathRefused(f"{name!r} is not a usable graph name: use letters, digits, spaces, '-', '_' "
                              "or '.', no folders")
        return self.resolve("library", stem + ".json")

    def save(self, name: str, doc: dict) -> Path:
        """Validate the document's structure, then write it atomically (a failure never leaves half a file)."""
        graph: Graph = from_json(doc)
        return graph.save(self.save_path(name))


    def save_group(self, name: str, doc: dict) -> Path:
        """Write group ``name`` of ``doc`` (with the definitions it uses) to ``<library>/groups/<name>.json``,
        a graph file with definitions and no nodes, so other graphs can use the group."""
        graph: Graph = from_json(doc)
        if name not in graph.definitions:
            raise ValueError(f"the graph defines no group {name!r}")
        if not NAME_RE.fullmatch(name) or ".." in name:
            raise PathRefused(f"{name!r} is not a usable group name for a file: use letters, digits, spaces, "
                              "'-', '_' or '.'")
        folder = self.library_dir / GROUPS_FOLDER
        folder.mkdir(exist_ok=True)
        path = paths.resolve_inside(f"{GROUPS_FOLDER}/{name}.json", [self.library_dir])
        definitions = needed_definitions(graph, name)
        out = Graph(name=name, description=definitions[name].description, definitions=definitions)
        return out.save(path)

    def groups(self) -> list[dict]:
        """The library's groups: ``{name, description, path, definitions}`` per readable file."""
        folder = self.library_dir / GROUPS_FOLDER
        found = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if not paths.is_inside(path.resolve(), self.library_dir):
                continue
            try:
                graph = from_json(json.loads(path.read_text()))
            except (OSError, ValueError, GraphError):
                continue  # a broken file is not offered
            if path.stem in graph.definitions:
                doc = graph.to_json()
                found.append({"name": path.stem, "description": graph.definitions[path.stem].description,
                              "path": path.relative_to(self.library_dir).as_posix(),
                              "definitions": doc["definitions"]})
        return found


def _picker_value(path: Path, root: Path, graph_dir: Path) -> str:
    """What the file picker writes into a param: a name that resolves back to ``path`` (nodegraph.paths)."""
    if root == graph_dir:
        return path.relative_to(graph_dir).as_posix()
    if root == paths.BUNDLED_ASSETS.resolve():
        return path.relative_to(paths.GRAPHS_DIR.resolve()).as_posix()  # "assets/...", as the examples write it
    return str(path)


def list_files(base_dir: Path, extensions: list[str] | None = None) -> list[dict]:
    """Files the picker may offer: under the graph's folder and the allowed data folders, never outside them.

    Each entry has ``value`` (what goes in the param: relative to the graph's folder when inside it) and
    ``root``. Symlinks whose target leaves the allowed folders are skipped.
    """
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in (extensions or []))
    roots = paths.allowed_roots(base_dir)
    out: list[dict] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if len(out) >= MAX_LISTED_FILES:
                break
            if path.name.startswith(".") or any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            if exts and not path.name.lower().endswith(exts):
                continue
            real = path.resolve()
            if not real.is_file() or real in seen or not any(paths.is_inside(real, r) for r in roots):
                continue
            seen.add(real)
            out.append({"value": _picker_value(path, root, roots[0]), "root": str(root), "size": real.stat().st_size})
    return sorted(out, key=lambda f: (f["root"] != str(roots[0]), f["value"]))

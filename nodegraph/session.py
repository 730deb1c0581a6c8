"""A session: one graph document paired with the long-lived executor that runs it.

The document (:class:`~nodegraph.graph.Graph`) knows nothing about running and the executor knows nothing
about files on disk or editing; a session holds both, so a second run reuses what the first computed (cache
and learned state), and edits in between re-run only what they touch. It is what ``nodegraph.load()``
returns and what the CLI uses; the editor's worker process keeps an executor the same way::

    s = nodegraph.load("graphs/render_textured_cow.json")
    out = s.run(device="cpu", overrides={"raster.image_size": 128})
    s.set_param("light", "location", [0.0, 0.0, 3.0]); s.run(device="cpu")   # only the light's branch
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph import graph as graph_doc
from nodegraph import history
from nodegraph.errors import GraphError, Problem
from nodegraph.events import EventBus
from nodegraph.executor import Executor
from nodegraph.graph import Graph, Link, NodeDoc
from nodegraph.prepare import Prepared, prepare
from nodegraph.registry import Registry, default_registry


class Session:
    """A graph and the executor that runs it; editing methods act on the graph, ``run`` on the executor."""

    def __init__(self, graph: Graph | None = None, registry: Registry | None = None,
                 bus: EventBus | None = None) -> None:
        self.graph = graph if graph is not None else Graph()
        self.registry = registry or default_registry()
        self.executor = Executor(self.registry, bus)
        self.last_run_id: str | None = None  # the history record of the latest run

    # ------------------------------------------------------------------ the document
    @property
    def nodes(self) -> dict[str, NodeDoc]:
        return self.graph.nodes

    @property
    def links(self) -> list[Link]:
        return self.graph.links

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def description(self) -> str:
        return self.graph.description

    @property
    def seed(self) -> int:
        return self.graph.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self.graph.seed = value

    def add_node(self, type_name: str, node_id: str | None = None, **params: Any) -> str:
        return self.graph.add_node(type_name, node_id, **params)

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> Link:
        return self.graph.connect(src, src_port, dst, dst_port)

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        self.graph.set_param(node_id, name, value)

    def set_params(self, overrides: dict[str, Any]) -> None:
        """Apply ``{"node.param": value}`` overrides, as the CLI's ``--set``."""
        self.graph.set_params(overrides)

    def to_json(self) -> dict:
        return self.graph.to_json()

    def dumps(self) -> str:
        return self.graph.dumps()

    def save(self, path: str | Path | None = None) -> Path:
        return self.graph.save(path)

    # ------------------------------------------------------------------ running
    def validate(self) -> list[Problem]:
        """Every problem in the graph at once (types, links, params, files, cycles); empty when runnable."""
        return self.prepare().problems

    def prepare(self, targets: list[str] | None = None) -> Prepared:
        """The graph checked and planned, as :meth:`run` would; ``executor.run(prepared)`` runs it as it is."""
        return prepare(self.graph, self.registry, targets)

    def run(self, device: str | None = None, overrides: dict[str, Any] | None = None,
            targets: list[str] | None = None, out_dir: str | Path | None = None, record: bool = True) -> dict:
        """Run the graph; return ``{node_id: {output_name: value}}``. Unchanged nodes come from the cache.

        ``overrides`` (``{"node.param": value}``) are applied to the graph first and stay applied. The run is
        recorded in the run history (:mod:`nodegraph.history`) unless ``record=False``; ``self.last_run_id``
        names its record.
        """
        if overrides:
            self.set_params(overrides)
        if not record:
            return self.executor.run(self.graph, device=device, targets=targets, out_dir=out_dir)
        with history.RunRecorder(self.executor, self.graph, source="python", overrides=overrides) as recorder:
            self.last_run_id = recorder.run_id
            return recorder.record(lambda: self.executor.run(self.graph, device=device, targets=targets,
                                                             out_dir=out_dir))

    def export(self, overrides: dict[str, Any] | None = None) -> str:
        """The graph as one standalone PyTorch3D script (see :mod:`nodegraph.export`); ``overrides``
        (``{"node.param": value}``) become the script's defaults without changing this session's graph."""
        from nodegraph.export import export

        return export(self.graph, self.registry, overrides)

    def cancel(self) -> None:
        """Stop a run in progress (from another thread) at the next node or iteration boundary."""
        self.executor.cancel()


def new(registry: Registry | None = None, **graph_fields: Any) -> Session:
    """A session on a new, empty graph: ``new(name="mine", base_dir=folder, seed=1)``."""
    return Session(Graph(**graph_fields), registry)


def load(path: str | Path, registry: Registry | None = None) -> Session:
    """Read a graph file into a session. Asset paths inside it resolve relative to the file's folder.

    A file with problems raises a GraphError carrying all of them: what reading it found and what validating
    the rest of it finds."""
    try:
        return Session(graph_doc.load(path), registry)
    except GraphError as exc:
        raise _with_validation(exc, registry) from None


def loads(text: str, base_dir: Path | None = None, registry: Registry | None = None) -> Session:
    """A session on a graph given as JSON text (asset paths resolve against ``base_dir``); problems as in
    :func:`load`."""
    try:
        return Session(graph_doc.loads(text, base_dir=base_dir), registry)
    except GraphError as exc:
        raise _with_validation(exc, registry) from None


def _with_validation(exc: GraphError, registry: Registry | None) -> GraphError:
    if exc.partial is None:
        return exc
    return GraphError(exc.problems + prepare(exc.partial, registry).problems)

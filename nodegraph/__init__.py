"""nodegraph: build, run and watch PyTorch3D pipelines as graphs of typed nodes.

    import nodegraph
    s = nodegraph.load("graphs/render_textured_cow.json")     # a Session: the graph and its executor
    out = s.run(device="cpu")          # {node_id: {output_name: value}}
    s.set_param("light", "location", [0, 0, 3]); s.run(device="cpu")   # only the light and what follows rerun

The engine is layered (each module imports only those below it; ``tests/test_layers.py`` checks):
values and errors, specs and the graph document, the registry, validation and plan (``prepare``), context,
state, previews and events, the executor, then the faces: session, CLI, server.
"""
from __future__ import annotations

import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path
from typing import Any

from nodegraph.errors import Cancelled, GraphError, NodeError, Problem

__all__ = ["Session", "GraphError", "NodeError", "Problem", "Cancelled", "load", "loads", "new", "catalogue"]
__version__ = "0.1.0"


def _checkout_node_library() -> None:
    """Installed, the node library is the subpackage ``nodegraph/nodes`` (pyproject.toml maps the repository's
    ``nodes/`` there). In a checkout it sits beside this package: register it under the same name."""
    here = _Path(__file__).resolve().parent
    beside = here.parent / "nodes" / "__init__.py"
    if (here / "nodes").is_dir() or not beside.is_file() or "nodegraph.nodes" in _sys.modules:
        return
    spec = _importlib_util.spec_from_file_location("nodegraph.nodes", beside,
                                                   submodule_search_locations=[str(beside.parent)])
    module = _importlib_util.module_from_spec(spec)
    _sys.modules["nodegraph.nodes"] = module
    globals()["nodes"] = module
    spec.loader.exec_module(module)


_checkout_node_library()

_SESSION_API = {"Session", "load", "loads", "new"}


def __getattr__(name: str) -> Any:
    """The session API loads torch; importing ``nodegraph`` alone (the CLI's --help) does not."""
    if name in _SESSION_API:
        from nodegraph import session

        return getattr(session, name)
    raise AttributeError(f"module 'nodegraph' has no attribute {name!r}")


def catalogue() -> dict:
    """Every node type's spec as JSON (what ``python -m nodegraph nodes --json`` prints)."""
    from nodegraph.registry import default_registry

    return default_registry().catalogue_json()

"""Errors that name the node and the field, so a user knows where to look."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph: which node (or None for the whole graph), which field, what."""

    node: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = ".".join(_shown(p) for p in (self.node, self.field) if p is not None)
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict:
        return {"node": self.node, "field": self.field, "message": self.message}


def _shown(name: str) -> str:
    """A node id or field as a message shows it: as is when printable, quoted otherwise (a newline in an id
    must not start a forged line of its own, an empty key must still show where)."""
    return name if name and name.isprintable() and name.strip() == name else repr(name)


class GraphError(Exception):
    """A graph that cannot be loaded or run; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem], partial: object = None):
        self.problems = list(problems)
        # the graph as far as it could be read (a nodegraph.graph.Graph), so validation can still report the
        # rest of what is wrong together with these problems (nodegraph.prepare.problems_of)
        self.partial = partial
        super().__init__("\n".join(str(p) for p in self.problems))


class NodeError(Exception):
    """Raised by a node (``ctx.fail``) or by the executor around a node: names the node and the field."""

    def __init__(self, node: str | None, field: str | None, message: str):
        self.problem = Problem(node, field, message)
        super().__init__(str(self.problem))

    @property
    def node(self) -> str | None:
        return self.problem.node


class Cancelled(Exception):
    """The run was stopped by the user; what was computed so far stays usable."""

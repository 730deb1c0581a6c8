"""The exported script's command line: one ``argparse`` argument per param of the graph, plus the run's own.

Each param ``p`` of node ``n`` becomes ``--n-p`` (dest ``n_p``), its default the graph's value (an input file's
default is its absolute path, so the script runs from any folder), its help the param's doc. The form reads it
as ``args.n_p``. A param the form fixed at export time accepts only its value; a skipped one has no argument.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nodegraph import paths
from nodegraph.prepare import Prepared
from nodegraph.spec import Bool, Choice, File, Float, Floats, Int, Param, Texts


class Arguments:
    """Collects which params the forms read, fixed or skipped, and writes the parser."""

    def __init__(self, prepared: Prepared, names) -> None:
        self.prepared = prepared
        self.names = names
        self._fixed: set[tuple[str, str]] = set()
        self._skipped: set[tuple[str, str]] = set()
        self._dests: dict[tuple[str, str], str] = {}
        self._taken: set[str] = {"device", "seed", "out", "preview_every", "history"}  # the run's own arguments

    def dest(self, node_id: str, param: str) -> str:
        """``<node variable>_<param>``, unique: node ``a`` param ``b_c`` and node ``a_b`` param ``c`` would
        share ``a_b_c``, so the second gets ``a_b_c_2``."""
        key = (node_id, param)
        if key not in self._dests:
            base = dest = self.names.node(node_id) + "_" + re.sub(r"\W", "_", param, flags=re.ASCII)
            k = 2
            while dest in self._taken:
                dest, k = f"{base}_{k}", k + 1
            self._taken.add(dest)
            self._dests[key] = dest
        return self._dests[key]

    def expression(self, node_id: str, param: str) -> str:
        return f"args.{self.dest(node_id, param)}"

    def fix(self, node_id: str, param: str) -> None:
        self._fixed.add((node_id, param))

    def skip(self, node_id: str, param: str) -> None:
        self._skipped.add((node_id, param))

    def default(self, node_id: str, param: Param) -> Any:
        value = self.prepared.params[node_id][param.name]
        if isinstance(param, File) and param.must_exist and value:
            return str(paths.resolve_asset(Path(self.prepared.graph.base_dir), value))
        return value

    def lines(self, node_ids: list[str]) -> list[str]:
        """``parser.add_argument(...)`` lines for every param of ``node_ids``, in that order."""
        out: list[str] = []
        for node_id in node_ids:
            spec = self.prepared.specs[node_id]
            for param in spec.params:
                if (node_id, param.name) in self._skipped:
                    continue
                out.append(self._argument(node_id, param))
        return out

    def _argument(self, node_id: str, param: Param) -> str:
        dest = self.dest(node_id, param.name)
        flag = "--" + dest.replace("_", "-")
        default = self.default(node_id, param)
        doc = (param.doc or param.name).replace("%", "%%")
        kw = [f"dest={dest!r}"]
        if isinstance(param, Bool):
            kw.append("action=argparse.BooleanOptionalAction")
        elif isinstance(param, Floats):
            kw += ["type=float", f"nargs={param.length if param.length else '+'!r}"]
        elif isinstance(param, Texts):
            kw += ["type=str", "nargs='*'"]
        elif isinstance(param, Int):
            kw.append("type=int")
        elif isinstance(param, Float):
            kw.append("type=float")
        else:
            kw.append("type=str")
        if (node_id, param.name) in self._fixed:
            kw.append(f"choices=[{default!r}]")
            doc += " (this script was written for this value)"
        elif isinstance(param, Choice):
            kw.append(f"choices={list(param.choices)!r}")
        kw += [f"default={default!r}", f"help={doc!r}"]
        return f"parser.add_argument({flag!r}, {', '.join(kw)})"

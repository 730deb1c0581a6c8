"""Write a prepared graph as one standalone PyTorch3D script, the way the executor would run it.

The walk follows the executor (``nodegraph.executor``, ``nodegraph.training``) step by step, so the script
reproduces the run:
- nodes run in the plan's order; a stochastic node outside training seeds torch from the graph seed and its id;
- a trainer becomes a loop: its static upstream nodes were written before it (computed once), its dynamic ones
  (learnable, stochastic and what depends on them) are written inside the loop in the order the training loop
  pulls them (which fixes the random stream), the learnable tensors are created once before the first loop;
- preview taps become image dumps every ``--preview-every`` iterations, under ``no_grad`` and a forked RNG;
- a node outside the loop that reads a value the loop computed is written again after the loop (it then sees
  the trained tensors), as the executor re-evaluates it.
Each node's code comes from its export form (:mod:`nodegraph.export.context`).
"""
from __future__ import annotations

import ast
import inspect
import io
import sys
import textwrap
import tokenize
from dataclasses import dataclass, field

import networkx as nx

from nodegraph.errors import Problem
from nodegraph.executor import _node_seed
from nodegraph.prepare import Prepared

from nodegraph.export.arguments import Arguments
from nodegraph.export.context import (ExportContext, ExportError, Helper, Loss, helper_of, identifier,
                                      no_form, render_template)

NODE_SEED = Helper("_node_seed", textwrap.dedent(inspect.getsource(_node_seed)), ("import hashlib",))
INDENT = "    "


STDLIB = set(sys.stdlib_module_names)


def import_block(lines: set[str]) -> list[str]:
    """The imports as isort writes them: standard library, then the rest; ``import x`` before ``from x``;
    one ``from`` line per module, names sorted constants, classes, then functions; wrapped in parentheses."""
    plain: dict[bool, set[str]] = {True: set(), False: set()}
    froms: dict[bool, dict[str, set[str]]] = {True: {}, False: {}}
    for line in lines:
        if line.startswith("import "):
            module = line.split()[1]
            plain[module.split(".")[0] in STDLIB].add(line)
        else:
            _, module, _, names = line.split(" ", 3)
            group = froms[module.split(".")[0] in STDLIB].setdefault(module, set())
            group.update(n.strip() for n in names.split(","))

    def by_type(name: str) -> tuple:
        name = name.split(" as ")[0]
        kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
        return kind, name

    out: list[str] = []
    for stdlib in (True, False):
        section = sorted(plain[stdlib], key=lambda l: l.split()[1].lower())
        for module in sorted(froms[stdlib], key=str.lower):
            names = sorted(froms[stdlib][module], key=by_type)
            line = f"from {module} import {', '.join(names)}"
            if len(line) > 88:
                line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
            section.append(line)
        if section and out:
            out.append("")
        out += section
    return out


def wrap(line: str, width: int = 110) -> list[str]:
    """A long line broken after commas inside brackets (continuation lines indented by 4); a line that is
    not a whole statement on its own is left as it is."""
    if len(line) <= width:
        return [line]
    cuts, depth = [], 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line + "\n").readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif tok.type == tokenize.OP and tok.string == "," and depth == 1:
                cuts.append(tok.end[1])
    except (tokenize.TokenError, SyntaxError):
        return [line]
    if depth != 0 or not cuts:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    out, start, last = [], 0, None
    for cut in cuts + [len(line)]:
        room = width - (len(indent) if out else 0)
        if cut - start > room and last is not None and last > start:
            out.append(line[start:last].rstrip())
            start = last
        last = cut
    out.append(line[start:].rstrip())
    return [out[0]] + [indent + piece.lstrip() for piece in out[1:]]


class Names:
    """Variable names: one per node, from its id (a path inside a group, ``view1/raster``, becomes
    ``view1_raster``; the block's comment names the path), unique in the script. A node's output variables
    (``<node>_<output>`` of a node with several outputs) count as taken too, so ``view1/raster`` next to a node
    ``view1`` with an output ``raster`` gets ``view1_raster_2``."""

    def __init__(self, node_ids: list[str], reserved: set[str] = frozenset(),
                 outputs: dict[str, list[str]] | None = None) -> None:
        outputs = outputs or {}
        self._node: dict[str, str] = {}
        taken: set[str] = set()
        base_of = {}
        for node_id in node_ids:
            base = identifier(node_id)
            base_of[node_id] = f"{base}_node" if base in reserved else base
        # the further variables every node would have under its first-choice name
        further = {f"{base_of[n]}_{identifier(o)}": n for n in node_ids for o in outputs.get(n, [])
                   if len(outputs.get(n, [])) > 1}
        for node_id in node_ids:
            base = name = base_of[node_id]
            k = 2
            while name in taken or (further.get(name, node_id) != node_id):
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            taken.update(f"{name}_{identifier(o)}" for o in outputs.get(node_id, []) if len(outputs[node_id]) > 1)
            self._node[node_id] = name

    def node(self, node_id: str) -> str:
        return self._node[node_id]


def bound_names(writer: "ScriptWriter") -> set[str]:
    """The names the script's imports and helpers define (node variables must not take them)."""
    names = set(writer.helpers)
    for line in writer.imports:
        if line.startswith("import "):
            names.add(line.split()[-1].split(".")[0])
        else:
            names.update(n.strip().split()[-1] for n in line.split(" import ", 1)[1].split(","))
    return names


def write_script(prepared: Prepared) -> str:
    """The script; written again with other variable names when a node id takes the name of a helper or an
    import (a node called ``grid`` next to the ``grid`` helper)."""
    reserved: set[str] = set()
    for _ in range(3):
        writer = ScriptWriter(prepared, reserved)
        text = writer.write()
        bound = bound_names(writer)
        clash = bound & set(writer.names._node.values())
        # a node's further variables (``absolute_cameras`` of node ``absolute``) must not take a helper's name
        clash |= {var for var in writer.names._node.values()
                  for name in bound & assigned_names(text) if name.startswith(var + "_")}
        if not clash:
            return text
        reserved |= bound | clash
    return text


def assigned_names(text: str) -> set[str]:
    """The names the script assigns outside its functions and classes."""
    names: set[str] = set()

    def visit(body: list) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(stmt) if not hasattr(stmt, "body") else [stmt]:
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
            for block in ("body", "orelse", "finalbody"):
                visit(getattr(stmt, block, []) or [])
            if hasattr(stmt, "body"):  # the header of a compound statement (for targets, with ... as)
                for part in (getattr(stmt, "target", None), *[i.optional_vars for i in getattr(stmt, "items", [])]):
                    for node in ast.walk(part) if part is not None else []:
                        if isinstance(node, ast.Name):
                            names.add(node.id)

    try:
        visit(ast.parse(text).body)
    except SyntaxError:
        pass
    return names


@dataclass
class TrainerParts:
    """What a trainer's export form writes its loop from (``x.loop``)."""

    body: list[str]  # the dynamic nodes, once per iteration (unindented)
    loss: Loss  # the sum of the connected losses
    groups: list[tuple[str, list[str]]]  # (learnable node id, its trained tensors/modules' parameter expressions)
    init: list[str]  # learnable tensors created before the loop
    frozen: list[str]  # learned tensors this stage does not update
    taps: list[str]  # preview taps (unindented), run every --preview-every iterations under no_grad
    history: str  # the variable of {term: [float per iteration]}
    terms: list[str] = field(default_factory=list)
    lazy: bool = False  # some learnables are created in the first iteration: build the optimizer after it

    def indented(self, lines: list[str], depth: int) -> list[str]:
        return [INDENT * depth + line if line else line for line in lines]


class ScriptWriter:
    """One export: walks the plan and collects imports, helpers, arguments and code."""

    def __init__(self, prepared: Prepared, reserved: set[str] = frozenset()) -> None:
        self.prepared = prepared
        self.plan = prepared.plan
        self.names = Names(self.plan.topological, reserved,
                           {n: [o.name for o in prepared.specs[n].outputs] for n in self.plan.topological})
        self.arguments = Arguments(prepared, self.names)
        self.imports: set[str] = {"import argparse", "import torch"}
        self.helpers: dict[str, Helper] = {}
        self.outputs: dict[str, dict] = {}
        self.learned_vars: dict[str, list[tuple[str, str, str]]] = {}  # node -> [(name, var, kind)]
        self._initialised: set[tuple[str, str]] = set()
        self.histories: list[tuple[str, str]] = []  # (trainer id, history variable)
        self._fresh: set[str] = set()
        self._emitted: set[str] = set()
        self._adding: set[str] = set()  # helpers whose needs are being added (mutual references)

    # ------------------------------------------------------------------ what forms call back
    def add_helper(self, helper: Helper) -> str:
        if helper.name not in self.helpers and helper.name not in self._adding:
            self._adding.add(helper.name)
            for need in helper.needs:
                self.add_helper(helper_of(need))
            self.imports.update(helper.imports)
            self.helpers[helper.name] = helper
        return helper.name

    def learned(self, x: ExportContext, name: str, var: str, kind: str, init_line: str) -> None:
        known = self.learned_vars.setdefault(x.node_id, [])
        if (name, var, kind) not in known:
            known.append((name, var, kind))
        if (x.node_id, name) not in self._initialised:
            self._initialised.add((x.node_id, name))
            x.init_lines.append(init_line)
            x.init_vars.append((var, kind))

    # ------------------------------------------------------------------ nodes
    def links_into(self, node_id: str):
        return [link for _, link in self.prepared.inputs.get(node_id, [])]

    def _inputs(self, node_id: str) -> dict:
        spec = self.prepared.specs[node_id]
        links = self.links_into(node_id)
        values = {}
        for port in spec.inputs:
            got = [self.outputs[l.src][l.src_port] for l in links if l.dst_port == port.name]
            values[port.name] = got if port.multiple else (got[0] if got else None)
        return values

    def node(self, node_id: str, mode: str = "top", iteration: str | None = None,
             extra: dict | None = None) -> tuple[list[str], list[str]]:
        """(init lines, block lines) of one node; records its outputs' expressions."""
        spec = self.prepared.specs[node_id]
        if spec.export is None:
            raise ExportError([no_form(node_id, spec.name)])
        x = ExportContext(self, node_id, self._inputs(node_id), mode, iteration)
        for key, value in (extra or {}).items():
            setattr(x, key, value)
        if spec.stochastic and mode == "top":
            x.line(f"torch.manual_seed({self.add_helper(NODE_SEED)}(args.seed, {node_id!r}))")
        result = render_template(spec.export, x) if isinstance(spec.export, str) else spec.export(x)
        names = [o.name for o in spec.outputs]
        if result is None:
            result = {n: x.out(n) for n in names}
        elif not isinstance(result, dict):
            result = {names[0]: result}
        missing = [n for n in names if n not in result]
        if missing:
            raise ExportError([Problem(node_id, None, f"its export form gave no expression for {missing}")])
        outputs = {}
        for name in names:
            value = result[name]
            if isinstance(value, str) and not value.isidentifier() and value != "None":
                var = x.out(name)
                x.line(f"{var} = {value}")
                value = var
            outputs[name] = value
        self.outputs[node_id] = outputs
        head = f"# {node_id}: {spec.name}" + (" (every iteration)" if mode == "loop" else "")
        self._last_init = list(x.init_vars)
        return x.init_lines, [head, *x.lines]

    def top(self, node_id: str, out: list[str]) -> None:
        """Write a node at the top level (after refreshing what it reads from a finished loop)."""
        for link in self.links_into(node_id):
            if self.plan.loop_only(link.src) and link.src not in self._fresh:
                self._fresh.add(link.src)
                self.top(link.src, out)
        init, block = self.node(node_id)
        out += ["", *init, *block] if init else ["", *block]
        self._emitted.add(node_id)

    # ------------------------------------------------------------------ trainers
    def _pull_order(self, starts: list[str], done: list[str]) -> list[str]:
        """The dynamic nodes the training loop computes for ``starts``, in the order it computes them
        (``TrainingLoop._pull``: inputs in declaration order, links in file order, depth first)."""
        order = list(done)

        def pull(n: str) -> None:
            if n in order or n not in self.plan.dynamic:
                return
            spec = self.prepared.specs[n]
            links = self.links_into(n)
            for port in spec.inputs:
                for link in links:
                    if link.dst_port == port.name:
                        pull(link.src)
            order.append(n)

        for start in starts:
            pull(start)
        return order[len(done):]

    def trainer(self, trainer: str, out: list[str]) -> None:
        spec = self.prepared.specs[trainer]
        contract = spec.trainer
        loss_links = [l for l in self.links_into(trainer) if l.dst_port == contract.loss]
        memo = self._pull_order([l.src for l in loss_links], [])
        existed = {var for learned in self.learned_vars.values() for _, var, _ in learned}
        # A learnable this stage trains starts from its initial value unless an earlier stage trained it
        # (training.start_state): it is created again here.
        earlier = {n for s in self.plan.previous_stages(trainer) for n in self.plan.trains(s)}
        for node_id in self.plan.trains(trainer):
            if node_id not in earlier:
                self._initialised = {k for k in self._initialised if k[0] != node_id}
        body, init, lazy = [], [], []
        in_loop = False  # some learnable is made in the first iteration: the optimizer comes after it
        drew = False  # whether a stochastic node drew from the random stream earlier in the iteration
        for n in memo:
            node_init, block = self.node(n, "loop", "i")
            created = self._last_init
            reads_loop = any(l.src in memo for l in self.links_into(n))
            if node_init and (reads_loop or (drew and any(kind == "module" for _, kind in created))):
                # Created where the executor creates it, in the first iteration: its start depends on values
                # computed in the loop, or it draws from the random stream after other nodes did.
                block, more = self._created_in_loop(block, node_init, created)
                lazy += more
                in_loop = True
            else:
                init += node_init
            drew = drew or self.prepared.specs[n].stochastic
            body += ["", *block]
        total = ExportContext.combine([self.outputs[l.src][l.src_port] for l in loss_links])
        terms = total.terms
        # Preview taps: what only they read is computed in the tap, after this iteration's step.
        taps = self.plan.taps(trainer)
        tap_lines: list[str] = []
        if taps:
            for n in sorted(set().union(*(self._ancestors(t) for t in taps)), key=self.plan.topological.index):
                if n not in self.plan.dynamic and n not in self._emitted and not self.prepared.specs[n].trainer:
                    self.top(n, out)
            for n in self._pull_order(taps, memo):
                node_init, block = self.node(n, "tap", "i + 1")
                if node_init:  # a learnable only the previews read: made on first use, made again when trained
                    block, more = self._created_in_loop(block, node_init, self._last_init)
                    lazy += more
                    self._initialised = {k for k in self._initialised if k[0] != n}
                tap_lines += block
            if all(line.lstrip().startswith("#") for line in tap_lines):
                tap_lines = []  # previews with nothing to write in a script
        trains = self.plan.trains(trainer)
        trained: dict[str, list[str]] = {}
        frozen = []
        for node_id, learned in self.learned_vars.items():
            if node_id not in trains:
                continue
            names = self.plan.trained_tensors(trainer, node_id)
            for name, var, kind in learned:
                if names is None or name in names:
                    trained.setdefault(node_id, []).append(var if kind == "tensor" else f"*{var}.parameters()")
                elif var in existed:
                    frozen.append(var)
        # the executor's order: nodes as the trainer lists them; per node tensors first, then modules
        groups = [(n, sorted(trained[n], key=lambda p: p.startswith("*")))
                  for n in sorted(trained, key=trains.index)]
        history = f"{self.names.node(trainer)}_history"
        self.histories.append((trainer, history))
        parts = TrainerParts(body[1:], total, groups, init + lazy, frozen, tap_lines, history, list(terms),
                             lazy=in_loop)
        self._fresh.clear()
        init_lines, block = self.node(trainer, extra={"loop": parts})
        out += ["", *init_lines, *block]
        self._emitted.add(trainer)
        self._fresh.clear()

    @staticmethod
    def _created_in_loop(block: list[str], init: list[str], created: list[tuple[str, str]]):
        """The block with its learnables created on first use (``if var is None``), and the ``var = None``
        lines that go before the loop."""
        guarded = []
        for (var, _), line in zip(created, init):
            guarded += [f"if {var} is None:  # made on first use, as the executor makes it", f"    {line}"]
        return [block[0], *guarded, *block[1:]], [f"{var} = None" for var, _ in created]

    def _ancestors(self, node_id: str) -> set[str]:
        return nx.ancestors(self.plan.dag, node_id)

    # ------------------------------------------------------------------ the script
    def code(self) -> list[str]:
        out: list[str] = []
        for node_id in self.plan.order():
            if node_id in self._emitted or self.plan.loop_only(node_id):
                continue
            if self.prepared.specs[node_id].trainer is not None:
                self.trainer(node_id, out)
            else:
                self.top(node_id, out)
        return out

    def write(self) -> str:
        graph = self.prepared.graph
        code = self.code()
        if self.histories:
            self.imports.add("import json")
            code += ["", "# the loss history of every training loop, for plots and comparisons",
                     "if args.history:",
                     "    with open(args.history, \"w\") as f:",
                     "        json.dump({" + ", ".join(f"{t!r}: {v}" for t, v in self.histories) + "}, f)"]
        header = [f'"""{graph.name or "graph"}: a standalone PyTorch3D script exported by `nodegraph export`.', ""]
        if graph.description:
            header += textwrap.wrap(graph.description.replace('"""', "'''").replace("\\", "\\\\"), 100) + [""]
        header += ["Every param of the graph is a command-line argument (see --help); --out is where files go.",
                   '"""']
        parser = ["parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],",
                  "                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)",
                  "parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',",
                  "                    help='where tensors live: cpu, cuda, cuda:1, ...')",
                  f"parser.add_argument('--seed', type=int, default={graph.seed!r},",
                  "                    help='the graph seed: seeds every random node outside training')",
                  f"parser.add_argument('--out', default={('out/' + (graph.name or 'graph'))!r}, "
                  "help='folder for the files the graph saves')",
                  "parser.add_argument('--preview-every', type=int, default=0,",
                  "                    help='inside training: save preview images every this many iterations "
                  "(0: never)')"]
        parser.append("parser.add_argument('--history', default=None, help='write the loss history "
                      "(JSON: {trainer: {term: [loss per iteration]}}) to this file')")
        parser += self.arguments.lines(self.plan.topological)
        parser += ["args = parser.parse_args()", "device = torch.device(args.device)"]
        imports = import_block(self.imports)
        helpers = []
        constants = [h for h in self.helpers.values() if not h.source.startswith(("def ", "class ", "@"))]
        if constants:  # NAME = value lines: one blank line after the imports, as isort wants
            helpers.append("")
            helpers += [line for h in constants for line in h.source.rstrip().splitlines()]
        for helper in self.helpers.values():
            if helper not in constants:
                helpers += ["", "", *helper.source.rstrip().splitlines()]
        body = [piece for line in [*parser, *code] for piece in wrap(line)]
        lines = [*header, *imports, *helpers, "", "", *body]
        return "\n".join(lines).rstrip() + "\n"

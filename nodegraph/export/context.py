"""What a node's export form sees: :class:`ExportContext`, and the small values it trades in.

A node declares how it is written as plain PyTorch3D code with ``@node(..., export=...)``: either a template
string (see :func:`render_template`) or a function ``form(x: ExportContext)`` that adds imports, helpers and
lines through ``x`` and returns ``{output_name: expression}`` (a single expression for a one-output node,
nothing for a sink). docs/export.md is the guide for authors; this module is the contract.
"""
from __future__ import annotations

import ast
import inspect
import sys
import keyword
import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from nodegraph.errors import GraphError, Problem

if TYPE_CHECKING:
    from nodegraph.export.writer import ScriptWriter

# Names the script itself uses at module level: node variables never take them.
RESERVED = {"args", "device", "parser", "torch", "np", "os", "json", "math", "argparse", "nn", "tqdm", "Image",
            "Path", "history", "loss", "losses", "optimizer", "bar", "i", "p", "hashlib", "main", "F", "l", "O",
            "I"}


class ExportError(GraphError):
    """The graph cannot be exported; every problem names the node (e.g. a node type without an export form)."""


def no_form(node_id: str, type_name: str) -> Problem:
    """The problem of a node whose type has no export form."""
    return Problem(node_id, None, f"{type_name} has no export form, so this graph cannot be exported (declare one "
                                  "with @node(..., export=...); see docs/export.md)")


def identifier(text: str) -> str:
    """``text`` made into a Python identifier (node ids become variable names): other characters become ``_``."""
    name = re.sub(r"\W", "_", text, flags=re.ASCII).strip("_") or "node"
    if name[0].isdigit() or keyword.iskeyword(name) or name in RESERVED:
        name = f"n_{name}"
    return name


@dataclass
class Loss:
    """A ``Loss`` value in the script: the expression of its weighted total and its named, unweighted terms
    (term name -> variable), as ``LossValue`` carries them in the executor."""

    total: str
    terms: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.total


@dataclass
class Helper:
    """A function the script defines once, before the code, because a node needs it and PyTorch3D lacks it."""

    name: str
    source: str
    imports: tuple[str, ...] = ()
    needs: tuple[Callable | "Helper", ...] = ()


def helper_of(fn: Callable | Helper, imports: tuple[str, ...] = (), needs: tuple = ()) -> Helper:
    """A :class:`Helper` from a real function: its source is copied (so the script computes what the node does),
    the modules and names it reads from its module become imports, and the functions of the node library it
    calls become helpers too (``needs`` and ``imports`` add more)."""
    if isinstance(fn, Helper):
        return fn
    source = textwrap.dedent(inspect.getsource(fn))
    source = _inline_library_modules(fn, source)
    found_imports, found_needs, renames = _references(fn, source)
    for alias, real in renames.items():  # `from x import Volumes as _Volumes` in the module: the real name here
        source = re.sub(rf"\b{re.escape(alias)}\b", real, source)
    return Helper(fn.__name__, source, tuple(imports) + found_imports, tuple(needs) + found_needs)


def _namespace(fn: Any) -> dict:
    return getattr(fn, "__globals__", None) or vars(sys.modules[fn.__module__])  # a class has no __globals__


def _is_library(value: Any) -> bool:
    name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "") or ""
    return name.startswith(("nodegraph.", "nodes."))


def _inline_library_modules(fn: Any, source: str) -> str:
    """``_smpl.SMPL_JOINT_NAMES`` -> ``SMPL_JOINT_NAMES``: a library module's names become the script's own."""
    namespace = _namespace(fn)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = namespace.get(node.value.id)
            if inspect.ismodule(module) and _is_library(module):
                source = re.sub(rf"\b{re.escape(node.value.id)}\.{re.escape(node.attr)}\b", node.attr, source)
    return source


def constant(name: str, value: Any) -> Helper:
    """A module-level constant of the library, written once as ``NAME = <value>``."""
    return Helper(name, f"{name} = {value!r}\n")


def _references(fn: Callable, source: str) -> tuple[tuple[str, ...], tuple[Callable, ...], dict[str, str]]:
    """What the copied ``source`` of ``fn`` needs from ``fn``'s module: import lines and library functions."""
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    # names the function imports itself (``from pytorch3d.renderer import PerspectiveCameras`` inside it) are
    # its own, even where the module has a node of the same name
    used -= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in n.names}
    namespace = dict(_namespace(fn))
    for module in list(namespace.values()):  # names a library module lends (inlined above)
        if inspect.ismodule(module) and _is_library(module):
            for key, val in vars(module).items():
                namespace.setdefault(key, val)
    imports, needs, renames = [], [], {}
    for name in sorted(used - {fn.__name__}):
        value = namespace.get(name)
        if isinstance(value, (int, float, str, tuple, list, set, frozenset, dict)) and not isinstance(value, bool) \
                and name.lstrip("_")[:1].isupper():
            needs.append(constant(name, value))
            continue
        if value is None:
            continue
        if inspect.ismodule(value):
            parent, _, leaf = value.__name__.rpartition(".")
            imports.append(f"from {parent} import {leaf}" if parent and leaf == name else
                           f"import {value.__name__}" if value.__name__ == name else
                           f"import {value.__name__} as {name}")
        elif (inspect.isfunction(value) or inspect.isclass(value)) and _is_library(value):
            needs.append(value)
        elif hasattr(value, "__module__") and not value.__module__.startswith(("nodegraph", "nodes")):
            real = getattr(value, "__name__", name)
            if real != name:
                renames[name] = real
            module = _public_module(value, real)
            if module == "typing" and real in ("Callable", "Iterable", "Iterator", "Sequence", "Mapping"):
                module = "collections.abc"  # where current Python (and ruff) want them from
            imports.append(f"from {module} import {real}")
    return tuple(imports), tuple(needs), renames


def _public_module(value: Any, name: str) -> str:
    """The shortest package path that exposes ``name`` (``pytorch3d.structures``, not ``...structures.meshes``)."""
    parts = value.__module__.split(".")
    for k in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:k]))
        if module is not None and getattr(module, name, None) is value:
            return ".".join(parts[:k])
    return value.__module__


class ExportContext:
    """Handed to a node's export form once per place the node is written (top level, a loop body, a tap).

    Attributes:
        node_id: the node's id; ``var`` the identifier made from it.
        inputs: input name -> the expression of the connected value (a list for a multiple input; None when an
            optional input is not connected). A ``Loss`` input is a :class:`Loss`.
        params: param name -> the expression that reads it at run time (``args.<node>_<param>``).
        values: param name -> the graph's value (to decide at export time; see :meth:`fixed`).
        device: the expression of the run's device (``"device"``).
        mode: ``"top"`` (once), ``"loop"`` (every iteration of a training loop) or ``"tap"`` (a preview tap
            inside a loop, under ``no_grad``); ``iteration`` is the iteration expression inside a loop.
    """

    def __init__(self, writer: "ScriptWriter", node_id: str, inputs: dict[str, Any], mode: str = "top",
                 iteration: str | None = None) -> None:
        self._w = writer
        self.node_id = node_id
        self.var = writer.names.node(node_id)
        self.spec = writer.prepared.specs[node_id]
        self.inputs = inputs
        self.params = {p.name: writer.arguments.expression(node_id, p.name) for p in self.spec.params}
        self.values = dict(writer.prepared.params[node_id])
        self.device = "device"
        self.mode = mode
        self.iteration = iteration
        self.lines: list[str] = []
        self.init_lines: list[str] = []
        self.init_vars: list[str] = []

    # ------------------------------------------------------------------ code
    def imports(self, *lines: str) -> None:
        """Import lines the node's code needs (``"from pytorch3d.renderer import MeshRenderer"``), once each."""
        self._w.imports.update(lines)

    def helper(self, fn: Callable | Helper, imports: tuple[str, ...] = (), needs: tuple = ()) -> str:
        """Define ``fn`` (its source copied) once in the script, with its imports and the helpers it calls;
        returns its name."""
        return self._w.add_helper(helper_of(fn, imports, needs))

    def line(self, *code: str) -> None:
        """Lines of this node's block, in order (several lines in one string are fine)."""
        for chunk in code:
            self.lines.extend(chunk.splitlines() or [""])

    def template(self, text: str) -> dict:
        """Write a template (the same placeholders as a template form) and return its outputs."""
        return render_template(text, self)

    def out(self, name: str | None = None) -> str:
        """The variable for output ``name`` (the only output when None): ``<node>`` or ``<node>_<output>``."""
        names = [o.name for o in self.spec.outputs]
        name = name or names[0]
        return self.var if len(names) == 1 else self.name(name)

    def name(self, suffix: str) -> str:
        """A further variable of this node: ``<node>_<suffix>``."""
        return f"{self.var}_{identifier(suffix)}"

    def path(self, name: str) -> str:
        """The expression of an input file param (an absolute path by default; the user may pass another)."""
        return self.params[name]

    def output_path(self, filename: str) -> str:
        """The expression of a file written into ``--out`` (``filename`` is an expression), folders created."""
        return f"{self._w.add_helper(OUTPUT_PATH)}(args.out, {filename})"

    def fixed(self, name: str) -> Any:
        """The graph's value of param ``name``, for code chosen at export time; the argument then accepts only
        that value (argparse refuses another), since the code was written for it."""
        self._w.arguments.fix(self.node_id, name)
        return self.values[name]

    def skip(self, name: str) -> None:
        """Param ``name`` has no meaning in a script (e.g. the editor's preview rate): it gets no argument."""
        self._w.arguments.skip(self.node_id, name)

    def fail(self, message: str, field: str | None = None) -> None:
        """Refuse to export this node (a case the form does not handle), naming the node and field."""
        raise ExportError([Problem(self.node_id, field, f"cannot be exported: {message}")])

    # ------------------------------------------------------------------ losses and learned state
    def term(self, value: str, weight: str) -> Loss:
        """A loss node's output: assigns the unweighted term to ``<node>`` and returns the weighted Loss."""
        self.line(f"{self.var} = {value}")
        return Loss(f"{weight} * {self.var}", {self.node_id: self.var})

    @staticmethod
    def combine(losses: list[Loss], weight: str | None = None) -> Loss:
        """Several losses as one (``LossValue.combine``: totals added in link order, terms kept), weighted."""
        terms: dict[str, str] = {}
        for loss in losses:
            terms.update(loss.terms)
        total = " + ".join(loss.total for loss in losses)
        return Loss(f"{weight} * ({total})" if weight else total, terms)

    def param(self, name: str, init: str, suffix: str | None = None) -> str:
        """A learnable tensor: ``<node>_<name> = nn.Parameter(<init>)`` written once, before the first loop that
        evaluates the node; returns the variable (``<node>_<suffix>`` when given: an output has the name).
        ``init`` may read params and inputs computed before it."""
        var = self.name(suffix or name)
        self._w.learned(self, name, var, "tensor", f"{var} = torch.nn.Parameter({init})")
        return var

    def module(self, name: str, factory: str) -> str:
        """A learnable torch module: ``<node>_<name> = <factory>.to(device)`` written once; returns the variable."""
        var = self.name(name)
        self._w.learned(self, name, var, "module", f"{var} = {factory}.to(device)")
        return var

    @property
    def seed(self) -> str:
        """The expression of the graph's seed (``--seed``)."""
        return "args.seed"


OUTPUT_PATH = Helper("output_path", '''def output_path(out_dir: str, filename: str) -> str:
    """Where a file named in the graph goes: inside the output folder, its folders created."""
    path = os.path.join(out_dir, filename)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return path
''', ("import os",))


class _Fields(dict):
    """Template fields: a missing name is an error naming it (not a silent empty string)."""

    def __init__(self, node_id: str, values: dict) -> None:
        super().__init__(values)
        self.node_id = node_id

    def __missing__(self, key: str) -> str:
        raise ExportError([Problem(self.node_id, None, f"its export template names {{{key}}}, which is no input, "
                                                       "param or output of the node")])


def render_template(template: str, x: ExportContext) -> dict:
    """A template form: lines with ``{input}``, ``{param}``, ``{out}`` (the only output), ``{out_<name>}``,
    ``{var}`` and ``{device}`` placeholders. Lines that start with ``import`` or ``from`` are the imports; a
    line ending in ``,`` or ``(`` continues on the next. An optional input that is not connected reads ``None``."""
    fields = {**{k: str(v) if not isinstance(v, list) else "[" + ", ".join(map(str, v)) + "]"
                 for k, v in x.inputs.items()}, **x.params, "device": x.device, "var": x.var}
    outputs = [o.name for o in x.spec.outputs]
    if outputs:
        fields["out"] = x.out()
        fields.update({f"out_{o}": x.out(o) for o in outputs})
    text = textwrap.dedent(template).strip("\n")
    joined: list[str] = []
    for raw in text.splitlines():  # a line ending in "," or "(" goes on (the script wraps long lines itself)
        if joined and joined[-1].rstrip().endswith((",", "(")):
            joined[-1] = joined[-1].rstrip() + ("" if joined[-1].rstrip().endswith("(") else " ") + raw.strip()
        else:
            joined.append(raw)
    code = []
    for raw in joined:
        if raw.startswith(("import ", "from ")):
            x.imports(raw.strip())
        else:
            code.append(raw.format_map(_Fields(x.node_id, fields)))
    x.line(*code)
    return {o: x.out(o) for o in outputs}

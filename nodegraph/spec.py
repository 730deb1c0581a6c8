"""Node declarations: the one place a node is described.

A node is a plain function decorated with :func:`node`. The decorator records its ports, params, category
and flags in a :class:`NodeSpec`; the palette, the param widgets, validation, the JSON catalogue and the
executor all read that spec, so a node never needs code anywhere else::

    @node(
        category="cameras",
        params=[Float("fov", 60.0, min=1.0, max=179.0, unit="deg")],
        inputs=[Input("R", "Tensor"), Input("T", "Tensor")],
        outputs=[Output("cameras", "Cameras")],
    )
    def FoVPerspectiveCameras(ctx, R, T, fov):
        \"\"\"A perspective camera given by its field of view.\"\"\"
        return pytorch3d.renderer.FoVPerspectiveCameras(R=R, T=T, fov=fov, device=ctx.device)

The function receives a :class:`~nodegraph.context.RunContext` first, then every input and param by name.
It returns the value of its single output, or a dict (or tuple, in declaration order) for several.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from nodegraph import types as port_types

# --------------------------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class Input:
    """An input port. ``multiple`` inputs accept several links and receive a list, in link order."""

    name: str
    type: str
    doc: str = ""
    optional: bool = False
    multiple: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "doc": self.doc, "optional": self.optional,
                "multiple": self.multiple}


@dataclass(frozen=True)
class Output:
    """An output port."""

    name: str
    type: str
    doc: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "doc": self.doc}


# -------------------------------------------------------------------------------------------- params


@dataclass(frozen=True)
class Param:
    """A parameter with a default. Subclasses check and normalise values and tell the editor which widget."""

    name: str
    default: Any = None
    doc: str = ""
    optional: bool = False  # None is an accepted value (meaning "not set")
    widget: str = "text"

    def check(self, value: Any) -> str | None:
        """Return a message when ``value`` is not acceptable, else None."""
        return None

    def coerce(self, value: Any) -> Any:
        """Normalise an accepted value (e.g. int -> float). Called only after :meth:`check` passed."""
        return value

    def validate(self, value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (None, None) if self.optional else (None, "is required")
        problem = self.check(value)
        return (None, problem) if problem else (self.coerce(value), None)

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": type(self).__name__.lower(), "default": self.default,
               "doc": self.doc, "optional": self.optional, "widget": self.widget}
        out.update(self._extra_json())
        return out

    def _extra_json(self) -> dict:
        return {}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


FLOAT32_MAX = 3.4028234663852886e38  # tensors are single precision: a larger float param overflows to inf
INT64_LIMIT = 2 ** 63


def _bounds_problem(value: float, lo: float | None, hi: float | None, single: bool = False) -> str | None:
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond float range (10**400)
        finite = False
    if not finite:
        shown = f"an integer of {value.bit_length()} bits" if isinstance(value, int) else value
        return f"must be finite, got {shown}"
    if single and abs(value) > FLOAT32_MAX:
        return f"must be within +-{FLOAT32_MAX:.3g} (tensors are single precision), got {value:.3g}"
    if not single and isinstance(value, int) and abs(value) >= INT64_LIMIT:
        return f"must fit in 64 bits, got an integer of {value.bit_length()} bits"
    if lo is not None and value < lo:
        return f"must be >= {lo}, got {value}"
    if hi is not None and value > hi:
        return f"must be <= {hi}, got {value}"
    return None


@dataclass(frozen=True)
class Float(Param):
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""
    widget: str = "number"
    log: bool = False  # spans decades (a learning rate): the editor's slider moves in powers of ten

    def __post_init__(self) -> None:
        if self.log and not (self.min is not None and self.min > 0 and self.max is not None and self.max > self.min):
            raise ValueError(f"Float {self.name!r}: log=True needs bounds 0 < min < max")

    def check(self, value):
        if not _is_number(value):
            return f"must be a number, got {value!r}"
        return _bounds_problem(value, self.min, self.max, single=True)

    def coerce(self, value):
        return float(value)

    def _extra_json(self):
        return {"min": self.min, "max": self.max, "step": self.step, "unit": self.unit, "log": self.log}


@dataclass(frozen=True)
class Int(Param):
    min: int | None = None
    max: int | None = None
    unit: str = ""
    widget: str = "number"

    def check(self, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be a whole number, got {value!r}"
        return _bounds_problem(value, self.min, self.max)

    def coerce(self, value):
        return int(value)

    def _extra_json(self):
        return {"min": self.min, "max": self.max, "step": 1, "unit": self.unit}


@dataclass(frozen=True)
class Bool(Param):
    widget: str = "checkbox"

    def check(self, value):
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple = ()
    widget: str = "select"

    def check(self, value):
        return None if value in self.choices else f"must be one of {list(self.choices)}, got {value!r}"

    def _extra_json(self):
        return {"choices": list(self.choices)}


@dataclass(frozen=True)
class Text(Param):
    multiline: bool = False

    def check(self, value):
        return None if isinstance(value, str) else f"must be text, got {value!r}"

    def _extra_json(self):
        return {"multiline": self.multiline}


@dataclass(frozen=True)
class Floats(Param):
    """A list of numbers: a fixed-length vector (``length``) or a free list (``min_length``..``max_length``)."""

    length: int | None = None
    min_length: int = 0
    max_length: int | None = None
    min: float | None = None
    max: float | None = None
    widget: str = "floats"

    def check(self, value):
        if not isinstance(value, (list, tuple)) or not all(_is_number(v) for v in value):
            return f"must be a list of numbers, got {value!r}"
        if self.length is not None and len(value) != self.length:
            return f"must have {self.length} numbers, got {len(value)}"
        if len(value) < self.min_length:
            return f"must have at least {self.min_length} numbers, got {len(value)}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must have at most {self.max_length} numbers, got {len(value)}"
        for v in value:
            problem = _bounds_problem(v, self.min, self.max, single=True)
            if problem:
                return problem
        return None

    def coerce(self, value):
        return [float(v) for v in value]

    def _extra_json(self):
        return {"length": self.length, "min_length": self.min_length, "max_length": self.max_length,
                "min": self.min, "max": self.max}


def Vec3(name: str, default: Sequence[float] = (0.0, 0.0, 0.0), doc: str = "", **kw) -> Floats:
    """Three numbers (a position, a direction, a scale)."""
    return Floats(name, list(default), doc, length=3, widget="vec3", **kw)


def Color(name: str, default: Sequence[float] = (1.0, 1.0, 1.0), doc: str = "", **kw) -> Floats:
    """An RGB colour, each channel in [0, 1]."""
    return Floats(name, list(default), doc, length=3, min=0.0, max=1.0, widget="color", **kw)


@dataclass(frozen=True)
class Texts(Param):
    """A list of strings (node ids, names)."""

    widget: str = "texts"

    def check(self, value):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return f"must be a list of text, got {value!r}"
        return None

    def coerce(self, value):
        return list(value)


@dataclass(frozen=True)
class File(Param):
    """A path relative to the graph file (or inside an allowed data folder). ``extensions`` filters the picker
    and is checked; ``must_exist`` is False for outputs the node writes."""

    extensions: tuple = ()
    must_exist: bool = True
    widget: str = "file"

    def check(self, value):
        if not isinstance(value, str) or not value:
            return f"must be a file path, got {value!r}"
        if self.extensions and not value.lower().endswith(tuple(e.lower() for e in self.extensions)):
            return f"must end with one of {list(self.extensions)}, got {value!r}"
        return None

    def _extra_json(self):
        return {"extensions": list(self.extensions), "must_exist": self.must_exist}


# ---------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Trainer:
    """The contract of a trainer node (one that runs its upstream sub-graph in a loop, like ``Optimize``).

    It names the node's own ports and param that the engine gives meaning to, so nothing depends on naming
    conventions: ``loss`` is the multiple ``Loss`` input whose upstream sub-graph the loop evaluates (the node
    function receives it as ``loss(iteration) -> LossValue``), ``done`` the ``Trained`` output a later stage's
    ``after`` input waits for, and ``train`` the ``Texts`` param that narrows what this stage updates (node
    ids, or ``node.tensor``; empty: every learnable node upstream). Checked when the node is declared.
    """

    loss: str = "loss"
    done: str = "done"
    train: str = "train"
    after: str = "after"


CrossCheck = Callable[[dict], "list[tuple[str, str]]"]


@dataclass
class NodeSpec:
    """Everything the system knows about a node type."""

    name: str
    category: str
    fn: Callable
    doc: str
    inputs: list[Input] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    stochastic: bool = False
    learnable: bool = False
    preview: bool = False  # a sink that shows a value; evaluated as a tap inside training loops
    trainer: Trainer | None = None  # runs its upstream sub-graph in a loop (Optimize); see nodegraph.training
    aliases: tuple = ()
    checks: CrossCheck | None = None  # cross-param checks: params -> [(field, message)]
    # How ``nodegraph.export`` writes the node as plain PyTorch3D code: a template string or a function of an
    # ExportContext (see docs/export.md). None: export refuses graphs that use the node.
    export: str | Callable | None = None

    def input(self, name: str) -> Input | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> Output | None:
        return next((p for p in self.outputs if p.name == name), None)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def is_sink(self) -> bool:
        return not self.outputs

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def to_json(self) -> dict:
        return {
            "name": self.name, "category": self.category, "doc": self.doc, "aliases": list(self.aliases),
            "inputs": [p.to_json() for p in self.inputs], "params": [p.to_json() for p in self.params],
            "outputs": [p.to_json() for p in self.outputs],
            "flags": {"stochastic": self.stochastic, "learnable": self.learnable, "preview": self.preview,
                      "trainer": self.trainer is not None, "sink": self.is_sink},
        }

    def normalise_result(self, result: Any) -> dict:
        """Turn what the node function returned into ``{output_name: value}``."""
        names = [o.name for o in self.outputs]
        if not names:
            return {}
        if len(names) == 1 and not (isinstance(result, dict) and set(result) == set(names)):
            return {names[0]: result}
        if isinstance(result, dict):
            missing = [n for n in names if n not in result]
            if missing:
                raise TypeError(f"node {self.name} did not return outputs {missing}")
            return {n: result[n] for n in names}
        if isinstance(result, tuple) and len(result) == len(names):
            return dict(zip(names, result))
        raise TypeError(f"node {self.name} must return a dict with {names}")


def node(*, category: str, inputs: Sequence[Input] = (), params: Sequence[Param] = (),
         outputs: Sequence[Output] = (), name: str | None = None, stochastic: bool = False,
         learnable: bool = False, preview: bool = False, trainer: Trainer | None = None,
         aliases: Sequence[str] = (), checks: CrossCheck | None = None,
         export: str | Callable | None = None) -> Callable[[Callable], Callable]:
    """Declare a node type; see the module docstring.

    The declaration is checked now and attached to the function as ``fn.spec``; nothing is registered
    globally: a :class:`~nodegraph.registry.Registry` collects the specs of the modules it is given.
    """

    def declare(fn: Callable) -> Callable:
        spec = NodeSpec(
            name=name or fn.__name__, category=category, fn=fn, doc=inspect.cleandoc(fn.__doc__ or ""),
            inputs=list(inputs), params=list(params), outputs=list(outputs), stochastic=stochastic,
            learnable=learnable, preview=preview, trainer=trainer, aliases=tuple(aliases), checks=checks,
            export=export)
        _check_declaration(spec)
        fn.spec = spec
        return fn

    return declare


def _check_declaration(spec: NodeSpec) -> None:
    """Catch declaration mistakes at import time, where the author sees them."""
    if not spec.doc:
        raise TypeError(f"node {spec.name}: give the function a docstring; it is the node's help text")
    names = [p.name for p in spec.inputs] + [p.name for p in spec.params]
    if len(set(names)) != len(names):
        raise TypeError(f"node {spec.name}: input and param names must be unique: {names}")
    for port in [*spec.inputs, *spec.outputs]:
        if port.type not in port_types.PORT_TYPES:
            raise TypeError(f"node {spec.name}: port {port.name} has unknown type {port.type!r}")
    for p in spec.params:
        if p.default is not None:
            _, problem = p.validate(p.default)
            if problem:
                raise TypeError(f"node {spec.name}: default of {p.name} {problem}")
    accepted = set(inspect.signature(spec.fn).parameters)
    missing = [n for n in names if n not in accepted]
    if missing and not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(spec.fn).parameters.values()):
        raise TypeError(f"node {spec.name}: function does not accept {missing}")
    if spec.trainer is not None:
        _check_trainer(spec, spec.trainer)


def _check_trainer(spec: NodeSpec, contract: Trainer) -> None:
    """A trainer's contract must name real ports of the right types (see :class:`Trainer`)."""
    loss, after = spec.input(contract.loss), spec.input(contract.after)
    done, train = spec.output(contract.done), spec.param(contract.train)
    if loss is None or loss.type != "Loss" or not loss.multiple:
        raise TypeError(f"trainer {spec.name}: its loss input {contract.loss!r} must be a multiple Loss input")
    if done is None or done.type != "Trained":
        raise TypeError(f"trainer {spec.name}: its done output {contract.done!r} must be a Trained output")
    if after is None or after.type != "Trained" or not after.optional:
        raise TypeError(f"trainer {spec.name}: its after input {contract.after!r} must be an optional Trained "
                        "input")
    if train is None or not isinstance(train, Texts):
        raise TypeError(f"trainer {spec.name}: its train param {contract.train!r} must be a Texts param")

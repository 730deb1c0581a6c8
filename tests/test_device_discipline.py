"""Device discipline, checked without a GPU.

Graphs run on CUDA when there is one, but CI machines have none, so a tensor made on the CPU by mistake only
fails on someone's GPU. The static test below reads every module ``nodes/*.py`` and ``nodegraph/*.py`` with
``ast`` (no import, nothing run; well under a second) and refuses the patterns that break there:

- a tensor factory (``torch.zeros``, ``tensor``, ``as_tensor``, ``arange``, ``linspace``, ``full``, ``rand``,
  ``randperm``, ``Generator`` ...) without ``device=``. Write ``device=ctx.device`` (or the device of the tensor
  it meets); where the host is meant (indices turned into Python ints, a seeded CPU generator, preview
  payloads), write ``device="cpu"`` so the intent is in the code. ``*_like`` and ``x.new_*`` follow their
  argument and are fine;
- a PyTorch3D callable that builds on the CPU by default (``look_at_view_transform``, cameras, lights,
  materials, Phong/flat/Gouraud shaders, ``ico_sphere``, ``load_objs_as_meshes``, ``IO().load_mesh``,
  ``Translate`` ...) called without a device, by keyword or position;
- ``torch.from_numpy`` (always CPU): use ``torch.as_tensor(array, device=...)``;
- legacy constructors (``torch.FloatTensor(...)`` ...), which ignore the device;
- ``torch.load`` without ``map_location`` (a file saved on a GPU loads onto a GPU, or fails without one);
- ``torch.cuda.manual_seed*``: ``torch.manual_seed`` seeds the CPU and every GPU, which is what runs need;
- ``.numpy()`` at the end of a chain of calls without ``.cpu()`` in it (``x.detach().numpy()``). A ``.numpy()``
  on a plain name is not checked: where that name's tensor lives is not visible to a static reader.

Deliberate exceptions go in ``ALLOWED`` with their reason. Problems in modules another change is fixing are in
``PENDING`` (clearly marked); once fixed they may simply be deleted from it.

The other tests here cover CUDA-only paths of the executor that a CPU can still drive: device names with and
without an index, and out-of-memory errors inside a training loop.
"""
from __future__ import annotations

import ast
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import nodegraph
from toy_nodes import REGISTRY
from nodegraph.errors import GraphError, NodeError
from nodegraph.session import Session

ROOT = Path(__file__).resolve().parent.parent
SCANNED = sorted([*ROOT.glob("nodes/*.py"), *ROOT.glob("nodegraph/*.py")])

# torch functions that make a new tensor (or generator) on the CPU unless given device=. (torch.normal is left
# out: with tensor arguments it follows them.)
FACTORIES = {
    "tensor", "as_tensor", "asarray", "zeros", "ones", "empty", "full", "eye", "arange", "linspace", "logspace",
    "rand", "randn", "randint", "randperm", "Generator", "empty_strided", "tril_indices", "triu_indices",
}
LEGACY = {"Tensor", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
          "ByteTensor", "BoolTensor"}

# PyTorch3D callables that build their tensors on the CPU unless told a device: name -> position of `device`
# among the positional arguments (None: keyword only). Checked against PyTorch3D's signatures below.
P3D_DEVICE = {
    "look_at_view_transform": 7, "look_at_rotation": 3, "camera_position_from_spherical_angles": 4,
    "FoVPerspectiveCameras": 8, "FoVOrthographicCameras": 10, "PerspectiveCameras": 5, "OrthographicCameras": 5,
    "PointLights": 4, "DirectionalLights": 4, "AmbientLights": None, "Materials": 4,
    "SoftPhongShader": 0, "HardPhongShader": 0, "HardFlatShader": 0, "SoftGouraudShader": 0, "HardGouraudShader": 0,
    "ico_sphere": 1, "torus": 4, "load_objs_as_meshes": 1, "load_obj": 5,
    "Translate": 4, "Scale": 4, "Rotate": 2, "RotateAxisAngle": 4, "Transform3d": 1,
}
P3D_METHODS = {"load_mesh": 2, "load_pointcloud": 1}  # IO().load_mesh(path, include_textures, device)

# (file, top-level function or Class.method): why a call in it may do what the scan refuses.
ALLOWED: dict[tuple[str, str], str] = {}

# The same, for problems in files another change owns and is fixing. Marked so they are not mistaken for
# deliberate exceptions; an entry that no longer matches anything is simply unused (not an error).
PENDING: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    function: str
    call: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}: {self.call}  -- {self.problem}"


class _Scanner(ast.NodeVisitor):
    def __init__(self, rel: str, tree: ast.Module) -> None:
        self.rel = rel
        self.findings: list[Finding] = []
        self.scope: list[tuple[str, str]] = []  # (def | class, name), outermost first
        self.torch_names = {"torch"}  # names bound to the torch module (import torch as th)
        self.direct: dict[str, str] = {}  # from torch import zeros as z -> {"z": "zeros"}
        self.p3d: dict[str, str] = {}  # names imported from pytorch3d (functions, classes or modules)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "torch":
                        self.torch_names.add(a.asname or "torch")
                    elif a.name.split(".")[0] == "pytorch3d":
                        self.p3d[a.asname or "pytorch3d"] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module == "torch":
                for a in node.names:
                    self.direct[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pytorch3d":
                for a in node.names:
                    self.p3d[a.asname or a.name] = a.name

    # ------------------------------------------------------------------ scopes
    def _scoped(self, node, kind: str) -> None:
        self.scope.append((kind, node.name))
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node) -> None:
        self._scoped(node, "def")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        self._scoped(node, "class")

    @property
    def function(self) -> str:
        """The top-level function, or Class.method, the code sits in (nested helpers count as their parent)."""
        if not self.scope:
            return "<module>"
        if self.scope[0][0] == "class" and len(self.scope) > 1:
            return f"{self.scope[0][1]}.{self.scope[1][1]}"
        return self.scope[0][1]

    # ------------------------------------------------------------------ calls
    def _torch_attr(self, func: ast.expr) -> str | None:
        """'zeros' for torch.zeros / th.zeros / a name imported from torch; 'cuda.manual_seed' for those."""
        if isinstance(func, ast.Name) and func.id in self.direct:
            return self.direct[func.id]
        parts = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Name) and func.id in self.torch_names and parts:
            return ".".join(reversed(parts))
        return None

    def _p3d_device_position(self, func: ast.expr) -> tuple[str, int | None] | None:
        """(name, position of `device`) when ``func`` is a PyTorch3D callable that defaults to the CPU."""
        if isinstance(func, ast.Name) and self.p3d.get(func.id) in P3D_DEVICE:
            return self.p3d[func.id], P3D_DEVICE[self.p3d[func.id]]
        if not isinstance(func, ast.Attribute):
            return None
        if func.attr in P3D_METHODS and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) \
                and self.p3d.get(func.value.func.id) == "IO":
            return f"IO().{func.attr}", P3D_METHODS[func.attr]
        root = func.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if func.attr in P3D_DEVICE and isinstance(root, ast.Name) and root.id in self.p3d:
            return func.attr, P3D_DEVICE[func.attr]
        return None

    def _add(self, node: ast.Call, problem: str) -> None:
        text = ast.unparse(node)
        self.findings.append(Finding(self.rel, node.lineno, self.function,
                                     text if len(text) <= 100 else text[:97] + "...", problem))

    def visit_Call(self, node: ast.Call) -> None:
        name = self._torch_attr(node.func)
        keywords = {k.arg for k in node.keywords}
        splat = None in keywords  # **kwargs may carry the device
        if name in FACTORIES and "device" not in keywords and not splat:
            self._add(node, "no device=: it lands on the CPU and fails against CUDA tensors; pass device=... "
                            "(device='cpu' where the host is meant)")
        elif name == "from_numpy":
            self._add(node, "torch.from_numpy is always on the CPU; use torch.as_tensor(array, device=...)")
        elif name in LEGACY:
            self._add(node, f"torch.{name}(...) ignores the device; use torch.tensor(..., device=...)")
        elif name == "load" and "map_location" not in keywords and len(node.args) < 2 and not splat:
            self._add(node, "torch.load without map_location loads onto the device the file was saved from")
        elif name in ("cuda.manual_seed", "cuda.manual_seed_all"):
            self._add(node, "seed with torch.manual_seed: it seeds the CPU and every GPU alike")
        elif (p3d := self._p3d_device_position(node.func)) is not None:
            p3d_name, position = p3d
            starred = any(isinstance(a, ast.Starred) for a in node.args)
            positional = position is not None and len(node.args) > position and not starred
            if "device" not in keywords and not splat and not positional:
                self._add(node, f"PyTorch3D's {p3d_name} builds on the CPU without a device; pass device=...")
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "numpy" and not node.args:
            if _is_chain(node.func.value) and not _chain_has_cpu(node.func.value):
                self._add(node, ".numpy() of a tensor that may be on a GPU; add .cpu() (or .detach().cpu())")
        self.generic_visit(node)


def _is_chain(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)


def _chain_has_cpu(expr: ast.expr) -> bool:
    """Whether a receiver chain a.b().c()[i].d() calls .cpu() or .to('cpu') somewhere."""
    while True:
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute):
                if func.attr == "cpu":
                    return True
                if func.attr == "to" and any(isinstance(a, ast.Constant) and a.value == "cpu"
                                             for a in [*expr.args, *(k.value for k in expr.keywords)]):
                    return True
                expr = func.value
                continue
            return False
        if isinstance(expr, (ast.Attribute, ast.Subscript)):
            expr = expr.value
            continue
        if isinstance(expr, ast.BinOp):  # (x.cpu() * 255).numpy()
            return _chain_has_cpu(expr.left) or _chain_has_cpu(expr.right)
        return False


def scan(path: Path, root: Path = ROOT) -> list[Finding]:
    tree = ast.parse(path.read_text(), filename=str(path))
    scanner = _Scanner(path.relative_to(root).as_posix(), tree)
    scanner.visit(tree)
    return scanner.findings


def test_tensors_are_made_on_the_run_device():
    started = time.perf_counter()
    findings = [f for path in SCANNED for f in scan(path)]
    seconds = time.perf_counter() - started
    bad = [f for f in findings if (f.file, f.function) not in ALLOWED and (f.file, f.function) not in PENDING]
    assert not bad, ("tensors made off the run's device (fails only on a GPU); fix them or add a reasoned "
                     "entry to ALLOWED in tests/test_device_discipline.py:\n  " + "\n  ".join(map(str, bad)))
    used = {(f.file, f.function) for f in findings}
    stale = [key for key in ALLOWED if key not in used]
    assert not stale, f"ALLOWED entries that no longer match anything (delete them): {stale}"
    assert seconds < 3.0, f"the scan took {seconds:.2f} s (about 0.3 s for 40 modules; keep it cheap)"


def test_the_scan_catches_what_it_is_meant_to(tmp_path):
    """The checker itself: each refused pattern is found (with file, line and call), each accepted one is not."""
    code = '''
import numpy as np
import torch
import torch as th
from torch import zeros as z
import pytorch3d.renderer as r
from pytorch3d.io import IO
from pytorch3d.renderer import look_at_view_transform
from pytorch3d.transforms import Translate
from pytorch3d.utils import ico_sphere


def bad(ctx, x, a):
    u = torch.zeros(3)  # BAD
    v = th.linspace(0, 1, 5)  # BAD
    w = z(2)  # BAD
    g = torch.Generator()  # BAD
    m = torch.from_numpy(a)  # BAD
    f = torch.FloatTensor([1.0])  # BAD
    s = torch.load("f.pt")  # BAD
    torch.cuda.manual_seed(0)  # BAD
    n = x.detach().numpy()  # BAD
    R, T = look_at_view_transform(2.7, 0, 180)  # BAD
    lights = r.PointLights(location=((0, 0, 3),))  # BAD
    mesh = IO().load_mesh("m.ply", True)  # BAD
    move = Translate(*x)  # BAD
    return torch.tensor([1.0], dtype=torch.float32)  # BAD


class Field:
    def make(self):
        def inner():
            return torch.rand(3, generator=torch.Generator(device="cpu"))  # BAD
        return inner()


def good(ctx, x, a, **kw):
    u = torch.zeros(3, device=ctx.device)
    v = torch.full_like(x, 1.0) + x.new_zeros(3)
    r = torch.rand(3, generator=torch.Generator(device="cpu"), device="cpu")
    s = torch.load("f.pt", map_location="cpu")
    torch.manual_seed(0)
    n = x.detach().cpu().numpy() + (x * 2).cpu().numpy() + x.to("cpu").numpy() + a.numpy()
    t = torch.ones(3, **kw)
    R, T = look_at_view_transform(2.7, 0, 180, device=ctx.device)
    lights = r.PointLights(device=ctx.device) + ico_sphere(2, ctx.device) + IO().load_mesh("m.ply", True, "cpu")
    move = Translate(*x, device=ctx.device)
    return torch.as_tensor(a, device=x.device)
'''
    path = tmp_path / "nodes" / "sample.py"
    path.parent.mkdir()
    path.write_text(code)
    found = scan(path, root=tmp_path)
    expected = [i + 1 for i, line in enumerate(code.splitlines()) if line.endswith("# BAD")]
    assert sorted(f.line for f in found) == expected, "\n".join(map(str, found))
    assert {f.function for f in found} == {"bad", "Field.make"}
    first = min(found, key=lambda f: f.line)
    assert str(first).startswith("nodes/sample.py:14 in bad: torch.zeros(3)  -- no device=")


def test_the_pytorch3d_device_positions_match_pytorch3d():
    import inspect

    import pytorch3d.io
    import pytorch3d.renderer
    import pytorch3d.transforms
    import pytorch3d.utils

    modules = (pytorch3d.renderer, pytorch3d.utils, pytorch3d.io, pytorch3d.transforms)
    for name, position in P3D_DEVICE.items():
        fn = next(getattr(m, name) for m in modules if hasattr(m, name))
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        device = next(p for p in params if p.name == "device")
        if position is None:
            assert device.kind is device.KEYWORD_ONLY, name
        else:
            assert params.index(device) == position, name
    for name, position in P3D_METHODS.items():
        params = [p for p in inspect.signature(getattr(pytorch3d.io.IO, name)).parameters if p != "self"]
        assert params.index("device") == position, name


# ------------------------------------------------------------------------------------------ device names


def _fake_cuda(monkeypatch, count: int = 2, current: int = 0) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)


def test_a_cuda_device_always_carries_its_index(monkeypatch):
    """Tensors report cuda:0; a run on "cuda" must be the same device, or run() then run(device="cuda:0")
    clears the cache and everything trained, and tensor.device == ctx.device is false inside nodes."""
    from nodegraph.executor import resolve_device

    _fake_cuda(monkeypatch, count=2, current=1)
    assert resolve_device(None) == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(GraphError) as exc:
        resolve_device("cuda:2")
    problem = exc.value.problems[0]
    assert problem.field == "device" and "cuda:2" in problem.message and "2 CUDA device(s)" in problem.message


def test_no_cuda_is_reported_before_anything_runs(monkeypatch):
    from nodegraph.executor import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(GraphError, match="no CUDA device"):
        resolve_device("cuda")


# ------------------------------------------------------------------------------------------ out of memory

KEPT: list = []  # weak references to tensors a failing node made


class _OOMOnBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)\ndetails")


@pytest.fixture
def oom_nodes():
    from nodegraph.spec import Bool, Input, Output, node
    from nodegraph.values import LossValue

    @node(category="toy", inputs=[Input("a", "Tensor"), Input("b", "Tensor")],
          params=[Bool("in_forward", False)], outputs=[Output("loss", "Loss")])
    def ToyOOMLoss(ctx, a, b, in_forward):
        """A loss that runs out of GPU memory: in its own call, or in backward()."""
        big = (a - b) * 1.0
        KEPT.append(weakref.ref(big))
        if in_forward:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)\ndetails")
        return LossValue.term(ctx.node_id, _OOMOnBackward.apply(big).pow(2).mean())

    registry = REGISTRY.with_modules()
    registry.add(ToyOOMLoss.spec)
    yield registry
    KEPT.clear()


def _oom_graph(registry, in_forward: bool) -> Session:
    g = nodegraph.new(registry=registry, name="oom")
    g.add_node("ToyConst", "target", value=[1.0, 2.0, 3.0])
    g.add_node("ToyLearnable", "w")
    g.add_node("ToyOOMLoss", "loss", in_forward=in_forward)
    g.add_node("Optimize", "opt", iterations=5)
    for src, sp, dst, dp in [("target", "out", "w", "like"), ("w", "out", "loss", "a"),
                             ("target", "out", "loss", "b"), ("loss", "loss", "opt", "loss")]:
        g.connect(src, sp, dst, dp)
    return g


@pytest.mark.parametrize("in_forward", [False, True], ids=["in-backward", "in-a-node"])
def test_out_of_gpu_memory_in_training_is_reported_and_released(oom_nodes, monkeypatch, in_forward):
    """CUDA OOM in backward() (the trainer's own code) used to surface as a bare OutOfMemoryError with no cache
    release; in a node call the release ran while the exception still held the node's tensors. Now both name
    the node, say "out of GPU memory", and empty the cache once the failed call's tensors are gone."""
    released = []

    def empty_cache():
        released.append((sys.exc_info()[0], [ref() is None for ref in KEPT]))

    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    g = _oom_graph(oom_nodes, in_forward)
    with pytest.raises(NodeError) as exc:
        g.run(device="cpu")
    problem = exc.value.problem
    assert problem.node == ("loss" if in_forward else "opt")
    assert problem.message == "out of GPU memory: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)"
    assert len(released) == 1
    handling, freed = released[0]
    assert handling is None, "empty_cache ran inside the except block, while the failed call was still alive"
    assert freed and all(freed), "the failed iteration's tensors were still referenced when the cache was emptied"

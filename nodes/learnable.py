"""Learnable nodes: tensors that an ``Optimize`` node updates, kept for the life of the loaded graph.

Each node creates its tensors with ``ctx.param(name, init)`` from its params (the initial value) and its
inputs; every iteration and every later run sees the same tensors, and whatever reads the node outside a
training loop sees the trained values. ``SaveTensor`` and ``SaveMesh`` (in :mod:`nodegraph.nodes.save`)
write them to disk.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch3d.renderer import FoVPerspectiveCameras, TexturesVertex, look_at_rotation
from pytorch3d.structures import Meshes

from nodegraph.spec import Bool, Choice, Color, Float, Floats, Input, Int, Output, Vec3, node

_SEED = Int("seed", 0, "seeds the random initial value, so a run is repeatable", min=0)


def _generator(seed: int) -> torch.Generator:
    """A CPU generator: random initial values are drawn on the host and then moved to the run's device, so a
    seed gives the same start on a CPU and on a GPU (a CUDA generator would draw a different stream)."""
    return torch.Generator(device="cpu").manual_seed(seed)


# ------------------------------------------------------------------------------------------ export forms


def _cpu_normal(shape: str, seed: str) -> str:
    """Export: seeded normal noise drawn on the host (as ``_generator`` draws it), as an expression."""
    return f"torch.randn({shape}, generator=torch.Generator(device='cpu').manual_seed({seed}), device='cpu')"


def _offset_verts_export(x) -> dict:
    mesh, p = x.inputs["mesh"], x.params
    verts = f"{mesh}.verts_packed()"
    offsets = x.param("offsets", f"({_cpu_normal(f'{verts}.shape', p['seed'])} * {p['init_std']})"
                                 f".to(device={verts}.device, dtype={verts}.dtype)")
    return {"mesh": f"{mesh}.offset_verts({offsets})", "offsets": offsets}


def _vertex_colors_export(x) -> dict:
    x.imports("from pytorch3d.renderer import TexturesVertex", "from pytorch3d.structures import Meshes")
    mesh, verts = x.inputs["mesh"], f"{x.inputs['mesh']}.verts_packed()"
    colors = x.param("colors", f"torch.tensor({x.params['color']}, dtype={verts}.dtype, device={verts}.device)"
                               f".expand({verts}.shape[0], 3).clone()")
    return {"mesh": f"Meshes(verts={mesh}.verts_list(), faces={mesh}.faces_list(), textures=TexturesVertex("
                    f"verts_features=list({colors}.split({mesh}.num_verts_per_mesh().tolist(), 0))))",
            "colors": colors}


def _tensor_export(x):
    p = x.params
    size = f"[int(s) for s in {p['shape']}]"
    init = x.fixed("init")
    if init == "constant":
        value = f"torch.full({size}, {p['value']}, device=device)"
    elif init == "normal":
        value = f"({p['value']} + {p['scale']} * {_cpu_normal(size, p['seed'])}).to(device)"
    else:
        value = (f"({p['value']} + {p['scale']} * (2 * torch.rand({size}, generator=torch.Generator(device='cpu')"
                 f".manual_seed({p['seed']}), device='cpu') - 1)).to(device)")
    return x.param("tensor", value)


# ------------------------------------------------------------------------------------------ meshes


@node(
    category="learnable",
    learnable=True,
    inputs=[Input("mesh", "Meshes", "the mesh to deform (e.g. an IcoSphere)")],
    params=[
        Float("init_std", 0.0, "standard deviation of random initial offsets (0: start at the input mesh)",
              min=0.0),
        _SEED,
    ],
    outputs=[
        Output("mesh", "Meshes", "the input mesh with every vertex moved by its learned offset"),
        Output("offsets", "Tensor", "the learned per-vertex offsets (V, 3), packed over the batch"),
    ],
    aliases=("offset_verts",),
    export=_offset_verts_export,
)
def OffsetVerts(ctx, mesh, init_std, seed):
    """Learnable per-vertex offsets of a mesh: ``mesh.offset_verts(offsets)``.

    The offsets start at zero (or small random values) and are what training updates when deforming a
    source shape (an ico-sphere) into a target. Save the result with ``SaveMesh``.
    """
    verts = mesh.verts_packed()

    def init() -> torch.Tensor:
        noise = torch.randn(verts.shape, generator=_generator(seed), device="cpu") * init_std  # see _generator
        return noise.to(device=verts.device, dtype=verts.dtype)

    offsets = ctx.param("offsets", init)
    if offsets.shape != verts.shape:
        ctx.fail("mesh", f"has {verts.shape[0]} vertices but the learned offsets have {offsets.shape[0]}")
    return {"mesh": mesh.offset_verts(offsets), "offsets": offsets}


@node(
    category="learnable",
    learnable=True,
    inputs=[Input("mesh", "Meshes", "the mesh to colour")],
    params=[Color("color", (0.5, 0.5, 0.5), "the initial colour of every vertex")],
    outputs=[
        Output("mesh", "Meshes", "the mesh with learned per-vertex colours (TexturesVertex)"),
        Output("colors", "Tensor", "the learned colours (V, 3), packed over the batch"),
    ],
    export=_vertex_colors_export,
)
def LearnableVertexColors(ctx, mesh, color):
    """Learnable per-vertex RGB colours, applied as ``TexturesVertex``.

    Starts every vertex at ``color``; training against rendered RGB targets fits a texture to the mesh.
    Values are not clamped (as in the PyTorch3D tutorial); renders and saved meshes clamp to [0, 1].
    """
    verts = mesh.verts_packed()
    colors = ctx.param("colors", lambda: torch.tensor(color, dtype=verts.dtype, device=verts.device)
                       .expand(verts.shape[0], 3).clone())
    if colors.shape[0] != verts.shape[0]:
        ctx.fail("mesh", f"has {verts.shape[0]} vertices but the learned colours have {colors.shape[0]}")
    per_mesh = list(colors.split(mesh.num_verts_per_mesh().tolist(), 0))
    return {"mesh": Meshes(verts=mesh.verts_list(), faces=mesh.faces_list(),
                           textures=TexturesVertex(verts_features=per_mesh)),
            "colors": colors}


# ------------------------------------------------------------------------------------------ cameras


def _camera_position_export(x) -> dict:
    """The tutorial's camera model: R = look_at_rotation(position), T = -R^T position."""
    x.imports("from pytorch3d.renderer import FoVPerspectiveCameras, look_at_rotation")
    p = x.params
    pos = x.param("position", f"torch.tensor({p['position']}, dtype=torch.float32, device=device)")
    R, T, cams = x.out("R"), x.out("T"), x.out("cameras")
    x.line(f"{R} = look_at_rotation({pos}[None, :], device={pos}.device)",
           f"{T} = -torch.bmm({R}.transpose(1, 2), {pos}[None, :, None])[:, :, 0]",
           f"{cams} = FoVPerspectiveCameras(R={R}, T={T}, fov={p['fov']}, znear={p['znear']}, zfar={p['zfar']}, "
           f"aspect_ratio={p['aspect_ratio']}, device={pos}.device)")
    return {"cameras": cams, "position": pos, "R": R, "T": T}


def _camera_checks(p: dict) -> list[tuple[str, str]]:
    problems = []
    if float(np.linalg.norm(p["position"])) < 1e-6:
        problems.append(("position", "must not be the origin: the camera looks at the origin"))
    if p["znear"] >= p["zfar"]:
        problems.append(("zfar", f"must be greater than znear ({p['znear']}), got {p['zfar']}"))
    return problems


@node(
    category="learnable",
    learnable=True,
    params=[
        Vec3("position", (3.0, 6.9, 2.5), "the initial camera position (world units)"),
        Float("fov", 60.0, "vertical field of view", min=1.0, max=179.0, unit="deg"),
        Float("znear", 1.0, "near clipping plane", min=1e-6),
        Float("zfar", 100.0, "far clipping plane", min=1e-6),
        Float("aspect_ratio", 1.0, "width / height of a pixel grid", min=1e-6),
    ],
    outputs=[
        Output("cameras", "Cameras", "a FoVPerspectiveCameras at the learned position, looking at the origin"),
        Output("position", "Tensor", "the learned camera position (3,)"),
        Output("R", "Tensor", "the rotation (1, 3, 3)"),
        Output("T", "Tensor", "the translation (1, 3)"),
    ],
    checks=_camera_checks,
    export=lambda x: _camera_position_export(x),
)
def LearnableCameraPosition(ctx, position, fov, znear, zfar, aspect_ratio):
    """A camera whose position is learned; it always looks at the origin with +Y up.

    As in PyTorch3D's camera-position tutorial: ``R = look_at_rotation(position)`` and
    ``T = -R^T position``, so gradients of a rendered image reach the position. Save it with ``SaveTensor``.
    """
    pos = ctx.param("position", lambda: torch.tensor(position, dtype=torch.float32, device=ctx.device))
    R = look_at_rotation(pos[None, :], device=pos.device)
    T = -torch.bmm(R.transpose(1, 2), pos[None, :, None])[:, :, 0]
    cameras = FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=znear, zfar=zfar, aspect_ratio=aspect_ratio,
                                    device=pos.device)
    return {"cameras": cameras, "position": pos, "R": R, "T": T}


@node(
    category="learnable",
    learnable=True,
    params=[
        Int("count", 20, "how many cameras", min=1, max=100_000),
        Float("init_std", 1.0, "standard deviation of the random initial log-rotations and translations", min=0.0),
        Bool("fix_first", True, "camera 0 stays the identity (R = I, T = 0): it fixes the gauge, as the "
                                "bundle-adjustment tutorial's camera_mask does"),
        _SEED,
    ],
    outputs=[
        Output("cameras", "Cameras", "PerspectiveCameras (SfM cameras) with the learned R and T"),
        Output("log_R", "Tensor", "the learned axis-angle log-rotations (count, 3), camera 0 masked"),
        Output("R", "Tensor", "(count, 3, 3) = so3_exp_map(log_R)"),
        Output("T", "Tensor", "(count, 3) the learned translations, camera 0 masked"),
    ],
    export=lambda x: _absolute_cameras_export(x),
)
def LearnableAbsoluteCameras(ctx, count, init_std, fix_first, seed):
    """A learnable set of absolute cameras: log-rotations and translations, ``R = so3_exp_map(log_R)``.

    As in PyTorch3D's bundle-adjustment tutorial: both start as seeded normal values (first the log-rotations,
    then the translations, from one generator) and with ``fix_first`` the first camera is multiplied by a
    mask, so it stays the identity and its gradient is zero.
    """
    start = absolute_cameras_start(count, init_std, fix_first, seed)
    log_R = ctx.param("log_R", lambda: start[0].to(ctx.device))
    T = ctx.param("T", lambda: start[1].to(ctx.device))
    if log_R.shape[0] != count:
        ctx.fail("count", f"is {count} but the learned cameras are {log_R.shape[0]}")
    return learned_absolute_cameras(log_R, T, fix_first)


def absolute_cameras_start(count: int, init_std: float, fix_first: bool, seed: int) -> list[torch.Tensor]:
    """[log-rotations, translations] to start from, (count, 3) each: seeded normal values on the host (first
    the log-rotations, then the translations, from one generator), camera 0 zero with ``fix_first``.
    Exported scripts call this too."""
    generator = _generator(seed)
    start = [torch.randn((count, 3), generator=generator, device="cpu") * init_std for _ in range(2)]
    if fix_first:
        for t in start:
            t[0] = 0.0
    return start


def learned_absolute_cameras(log_R: torch.Tensor, T: torch.Tensor, fix_first: bool) -> dict:
    """The outputs of LearnableAbsoluteCameras from its learned tensors (camera 0 masked with ``fix_first``).
    Exported scripts call this too."""
    from pytorch3d.renderer import PerspectiveCameras
    from pytorch3d.transforms import so3_exp_map

    mask = torch.ones((log_R.shape[0], 1), device=log_R.device)
    if fix_first:
        mask[0] = 0.0
    R = so3_exp_map(log_R * mask)
    cameras = PerspectiveCameras(R=R, T=T * mask, device=log_R.device)
    return {"cameras": cameras, "log_R": log_R * mask, "R": R, "T": T * mask}


def _absolute_cameras_export(x) -> dict:
    p = x.params
    start = f"{x.helper(absolute_cameras_start)}({p['count']}, {p['init_std']}, {p['fix_first']}, {p['seed']})"
    log_R = x.param("log_R", f"{start}[0].to(device)", "learned_log_R")  # the outputs are masked
    T = x.param("T", f"{start}[1].to(device)", "learned_T")
    outputs = x.name("outputs")
    x.line(f"{outputs} = {x.helper(learned_absolute_cameras)}({log_R}, {T}, {p['fix_first']})")
    return {name: f"{outputs}[{name!r}]" for name in ("cameras", "log_R", "R", "T")}


# ------------------------------------------------------------------------------------------ tensors


def _tensor_checks(p: dict) -> list[tuple[str, str]]:
    if any(not float(s).is_integer() for s in p["shape"]):
        return [("shape", f"must be whole numbers, got {p['shape']}")]
    return []


@node(
    category="learnable",
    learnable=True,
    params=[
        Floats("shape", [3], "the tensor's shape, e.g. [1, 64, 64, 3]", min_length=1, max_length=8, min=1,
               max=1e9),
        Choice("init", "constant", "how the tensor starts: a constant, or normal / uniform random values",
               choices=("constant", "normal", "uniform")),
        Float("value", 0.0, "the constant, or the mean of the random values"),
        Float("scale", 1.0, "standard deviation (normal) or half-width (uniform) of random values", min=0.0),
        _SEED,
    ],
    outputs=[Output("tensor", "Tensor", "the learned tensor")],
    checks=_tensor_checks,
    export=_tensor_export,
)
def LearnableTensor(ctx, shape, init, value, scale, seed):
    """A free learnable tensor of any shape (a colour, a translation, a latent code, an image).

    Its initial value is a constant or seeded random values, so the same graph gives the same run.
    """
    size = [int(s) for s in shape]

    def make() -> torch.Tensor:
        if init == "constant":
            return torch.full(size, value, device=ctx.device)
        # drawn on the host from a seeded CPU generator (see _generator), then moved
        if init == "normal":
            t = value + scale * torch.randn(size, generator=_generator(seed), device="cpu")
        else:
            t = value + scale * (2 * torch.rand(size, generator=_generator(seed), device="cpu") - 1)
        return t.to(ctx.device)

    return ctx.param("tensor", make)

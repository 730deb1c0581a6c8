"""Cameras: where they are (``look_at_view_transform``, turntables), how they project (FoV cameras), and a random
pick of target views.

``RandomViews`` is stochastic: inside a training loop it draws a new batch every iteration (from the
``Optimize`` node's seeded generator, so a run is repeatable), as the fit-a-mesh-via-rendering tutorial does.
"""
from __future__ import annotations

import torch

from nodegraph.spec import Bool, Float, Input, Int, Output, Vec3, node

from ._common import draw_views

_RANGE = ("dist", "elev", "azim")


def _look_at_checks(p: dict) -> list[tuple[str, str]]:
    return [(f"{name}_end", "gives a range, so set views > 1 (or clear it)")
            for name in _RANGE if p.get(f"{name}_end") is not None and p["views"] < 2]


def _look_at_export(x) -> dict:
    """``look_at_view_transform`` as the tutorials call it; a batch of views gets its linspace ranges."""
    x.imports("from pytorch3d.renderer import look_at_view_transform")
    p = x.params
    R, T = x.out("R"), x.out("T")
    if x.fixed("views") == 1 and all(x.fixed(f"{n}_end") is None for n in _RANGE):
        angles = ", ".join(f"{n}={p[n]}" for n in _RANGE)
    else:
        def values(n: str) -> str:
            if x.fixed(f"{n}_end") is None:
                return f"torch.full(({p['views']},), {p[n]}, device=device)"
            return f"torch.linspace({p[n]}, {p[n + '_end']}, {p['views']}, device=device)"
        angles = ", ".join(f"{n}={values(n)}" for n in _RANGE)
    x.line(f"{R}, {T} = look_at_view_transform({angles}, degrees={p['degrees']}, at=(tuple({p['at']}),), "
           f"up=(tuple({p['up']}),), device=device)")
    return {"R": R, "T": T}


@node(
    category="cameras",
    export=_look_at_export,
    params=[
        Float("dist", 2.7, "distance from the `at` point", min=0.0),
        Float("elev", 0.0, "elevation angle", unit="deg"),
        Float("azim", 180.0, "azimuth angle", unit="deg"),
        Float("dist_end", None, "with views > 1: last distance of an evenly spaced range", optional=True, min=0.0),
        Float("elev_end", None, "with views > 1: last elevation of an evenly spaced range", optional=True,
              unit="deg"),
        Float("azim_end", None, "with views > 1: last azimuth of an evenly spaced range", optional=True,
              unit="deg"),
        Int("views", 1, "batch size: each *_end param makes torch.linspace(start, end, views)", min=1, max=4096),
        Bool("degrees", True, "angles in degrees (else radians)"),
        Vec3("at", (0.0, 0.0, 0.0), "the point the camera looks at"),
        Vec3("up", (0.0, 1.0, 0.0), "the up direction"),
    ],
    outputs=[Output("R", "Tensor", "(views, 3, 3) rotations"), Output("T", "Tensor", "(views, 3) translations")],
    checks=_look_at_checks,
)
def LookAtViewTransform(ctx, dist, elev, azim, dist_end, elev_end, azim_end, views, degrees, at, up):
    """Camera rotation R and translation T looking at ``at`` from (dist, elev, azim).

    For a batch of views, set ``views`` and any of ``dist_end``/``elev_end``/``azim_end``: that value then runs
    evenly from start to end (``torch.linspace(start, end, views)``); the others stay constant.
    """
    from pytorch3d.renderer import look_at_view_transform

    def values(start: float, end: float | None) -> torch.Tensor:
        if end is None:
            return torch.full((views,), start, device=ctx.device)
        return torch.linspace(start, end, views, device=ctx.device)

    R, T = look_at_view_transform(dist=values(dist, dist_end), elev=values(elev, elev_end),
                                  azim=values(azim, azim_end), degrees=degrees, at=(tuple(at),), up=(tuple(up),),
                                  device=ctx.device)
    return {"R": R, "T": T}


@node(
    category="cameras",
    export="""
        from pytorch3d.renderer import look_at_view_transform
        {var}_azim = {azim_start} + torch.arange({views}, dtype=torch.float32, device=device) * (360.0 / {views})
        {out_R}, {out_T} = look_at_view_transform(dist={dist}, elev={elev}, azim={var}_azim, device=device)
    """,
    params=[
        Int("views", 8, "number of views, evenly spaced over a full turn", min=1, max=4096),
        Float("dist", 2.7, "distance from the origin", min=0.0),
        Float("elev", 15.0, "elevation angle", unit="deg"),
        Float("azim_start", 0.0, "azimuth of the first view", unit="deg"),
    ],
    outputs=[Output("R", "Tensor", "(views, 3, 3)"), Output("T", "Tensor", "(views, 3)")],
)
def Turntable(ctx, views, dist, elev, azim_start):
    """``views`` cameras on a circle around the origin, 360/views degrees apart, all looking at the origin."""
    from pytorch3d.renderer import look_at_view_transform

    azim = azim_start + torch.arange(views, dtype=torch.float32, device=ctx.device) * (360.0 / views)
    R, T = look_at_view_transform(dist=dist, elev=elev, azim=azim, device=ctx.device)
    return {"R": R, "T": T}


def _rt(ctx, R, T):
    """Check R/T shapes; missing ones default to PyTorch3D's (identity rotation, zero translation)."""
    if R is None and T is None:
        return {}
    if R is not None and (R.dim() != 3 or tuple(R.shape[1:]) != (3, 3)):
        ctx.fail("R", f"must be (N, 3, 3) rotations, got shape {list(R.shape)}")
    if T is not None and (T.dim() != 2 or T.shape[1] != 3):
        ctx.fail("T", f"must be (N, 3) translations, got shape {list(T.shape)}")
    if R is not None and T is not None and R.shape[0] != T.shape[0] and 1 not in (R.shape[0], T.shape[0]):
        ctx.fail("T", f"batch {T.shape[0]} does not match R's batch {R.shape[0]}")
    out = {}
    if R is not None:
        out["R"] = R.to(ctx.device)
    if T is not None:
        out["T"] = T.to(ctx.device)
    return out


def _camera_export(cls: str, fields: str):
    """The export form of a FoV camera: ``cls(R=..., T=..., <fields>, device=device)``; R/T only when wired."""
    def form(x) -> str:
        x.imports(f"from pytorch3d.renderer import {cls}")
        rt = "".join(f"{k}={x.inputs[k]}, " for k in ("R", "T") if x.inputs[k] is not None)
        return f"{cls}({rt}{fields.format(**x.params)}, device=device)"
    return form


def _near_far_checks(p: dict) -> list[tuple[str, str]]:
    return [("zfar", f"must be greater than znear ({p['znear']})")] if p["zfar"] <= p["znear"] else []


@node(
    category="cameras",
    inputs=[Input("R", "Tensor", "(N, 3, 3) rotations; identity when not connected", optional=True),
            Input("T", "Tensor", "(N, 3) translations; zero when not connected", optional=True)],
    params=[
        Float("fov", 60.0, "field of view", min=0.01, max=179.0, unit="deg"),
        Float("znear", 1.0, "near clipping plane", min=0.0),
        Float("zfar", 100.0, "far clipping plane", min=0.0),
        Float("aspect_ratio", 1.0, "pixel aspect ratio", min=1e-6),
    ],
    outputs=[Output("cameras", "Cameras")],
    checks=_near_far_checks,
    export=_camera_export("FoVPerspectiveCameras", "fov={fov}, znear={znear}, zfar={zfar}, "
                                                   "aspect_ratio={aspect_ratio}"),
)
def FoVPerspectiveCameras(ctx, R, T, fov, znear, zfar, aspect_ratio):
    """A batch of OpenGL-style perspective cameras given by their vertical field of view."""
    from pytorch3d.renderer import FoVPerspectiveCameras as P3D

    return P3D(fov=fov, znear=znear, zfar=zfar, aspect_ratio=aspect_ratio, device=ctx.device, **_rt(ctx, R, T))


@node(
    category="cameras",
    inputs=[Input("R", "Tensor", "(N, 3, 3) rotations; identity when not connected", optional=True),
            Input("T", "Tensor", "(N, 3) translations; zero when not connected", optional=True)],
    params=[
        Float("znear", 1.0, "near clipping plane", min=0.0),
        Float("zfar", 100.0, "far clipping plane", min=0.0),
        Float("min_x", -1.0, "left edge of the view volume"),
        Float("max_x", 1.0, "right edge"),
        Float("min_y", -1.0, "bottom edge"),
        Float("max_y", 1.0, "top edge"),
        Vec3("scale_xyz", (1.0, 1.0, 1.0), "scale of the view volume per axis"),
    ],
    outputs=[Output("cameras", "Cameras")],
    checks=_near_far_checks,
    export=_camera_export("FoVOrthographicCameras", "znear={znear}, zfar={zfar}, min_x={min_x}, max_x={max_x}, "
                                                    "min_y={min_y}, max_y={max_y}, scale_xyz=(tuple({scale_xyz}),)"),
)
def FoVOrthographicCameras(ctx, R, T, znear, zfar, min_x, max_x, min_y, max_y, scale_xyz):
    """A batch of OpenGL-style orthographic cameras: parallel projection of a box-shaped view volume."""
    from pytorch3d.renderer import FoVOrthographicCameras as P3D

    return P3D(znear=znear, zfar=zfar, min_x=min_x, max_x=max_x, min_y=min_y, max_y=max_y,
               scale_xyz=(tuple(scale_xyz),), device=ctx.device, **_rt(ctx, R, T))


def _random_views_export(x) -> dict:
    """``randperm(n)[:count]`` on the CPU, as ``draw_views`` does, then the matching cameras and images."""
    index = x.out("index")
    cams = x.inputs["cameras"]
    x.line(f"{x.var}_pick = torch.randperm(len({cams}), device='cpu')[:{x.params['count']}]",
           f"{x.out('cameras')} = {cams}[{x.var}_pick.to({cams}.device)]")
    for port in ("images", "images2"):
        value = x.inputs[port]
        x.line(f"{x.out(port)} = " + ("None" if value is None else f"{value}[{x.var}_pick.to({value}.device)]"))
    x.line(f"{index} = {x.var}_pick.to(device)")
    return {"cameras": x.out("cameras"), "images": x.out("images"), "images2": x.out("images2"), "index": index}


@node(
    category="cameras",
    stochastic=True,
    export=_random_views_export,
    inputs=[
        Input("cameras", "Cameras", "all the target cameras (a batch of N)"),
        Input("images", "Images", "target images, one per camera (N, H, W, C)", optional=True),
        Input("images2", "Images", "more target images, one per camera (e.g. silhouettes)", optional=True),
    ],
    params=[Int("count", 2, "how many views to draw (without repeats)", min=1, max=4096)],
    outputs=[
        Output("cameras", "Cameras", "the drawn cameras (count)"),
        Output("images", "Images", "the matching target images"),
        Output("images2", "Images", "the matching images2"),
        Output("index", "Tensor", "which views were drawn"),
    ],
)
def RandomViews(ctx, cameras, images, images2, count):
    """Draw ``count`` random views out of a batch of target cameras, with their target images.

    Inside a training loop it draws again every iteration, so each step fits a different few views, as the
    PyTorch3D tutorials do (``np.random.permutation(num_views)[:num_views_per_iteration]``).
    """
    if count > len(cameras):
        ctx.fail("count", f"asks for {count} views but there are only {len(cameras)} cameras")
    picked = draw_views(ctx, cameras, count, images=images, images2=images2)
    picked["index"] = picked.pop("indices")
    return picked

"""Cameras: where they are (``look_at_view_transform``, turntables), how they project (FoV cameras, cameras given
by focal length and principal point, fisheye cameras, OpenCV calibrations), relative cameras over a camera graph,
and a random pick of target views.

``RandomViews`` is stochastic: inside a training loop it draws a new batch every iteration (from the
``Optimize`` node's seeded generator, so a run is repeatable), as the fit-a-mesh-via-rendering tutorial does.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from nodegraph.spec import Bool, File, Float, Floats, Input, Int, Output, Vec3, node

from ._common import draw_views
from ._files import check_archive

_RANGE = ("dist", "elev", "azim")


def _look_at_checks(p: dict) -> list[tuple[str, str]]:
    problems = [(f"{name}_end", "gives a range, so set views > 1 (or clear it)")
                for name in _RANGE if p.get(f"{name}_end") is not None and p["views"] < 2]
    if not any(p["up"]):
        problems.append(("up", "must not be [0, 0, 0]: it says which way is up"))
    return problems


def _degenerate_view(ctx, R: torch.Tensor, T: torch.Tensor, dists: torch.Tensor, at: list[float]) -> None:
    """Stop on a view no camera can use, naming the field at fault: the camera sitting on the ``at`` point (a
    distance too small to give a direction) or ``up`` along the viewing direction (no rotation)."""
    eye = torch.eye(3, device=R.device, dtype=R.dtype)
    orthonormal = torch.isfinite(R).all() and torch.allclose(R @ R.transpose(1, 2), eye.expand_as(R), atol=1e-3)
    if orthonormal and torch.isfinite(T).all():
        return
    if float(dists.abs().min()) < 1e-6:
        ctx.fail("dist", f"{float(dists.abs().min()):.3g} puts the camera on the `at` point: it has no viewing "
                         "direction; use a distance > 1e-6")
    if float(dists.abs().max()) > 1e18:  # its square overflows single precision: no direction either
        ctx.fail("dist", f"{float(dists.abs().max()):.3g} is too far for single-precision arithmetic; use a "
                         "distance below 1e18")
    if not torch.isfinite(T).all() or max(abs(v) for v in at) > 1e18:
        ctx.fail("at", "is too far from the origin for single-precision arithmetic; use values below 1e18")
    ctx.fail("up", "is parallel to the viewing direction (or too small), so the camera's rotation is undefined; "
                   "choose an up direction across the view")


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

    dists = values(dist, dist_end)
    R, T = look_at_view_transform(dist=dists, elev=values(elev, elev_end),
                                  azim=values(azim, azim_end), degrees=degrees, at=(tuple(at),), up=(tuple(up),),
                                  device=ctx.device)
    _degenerate_view(ctx, R, T, dists, at)
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


# ------------------------------------------------------------------------ cameras given by focal length


_RT_INPUTS = [Input("R", "Tensor", "(N, 3, 3) rotations; identity when not connected", optional=True),
              Input("T", "Tensor", "(N, 3) translations; zero when not connected", optional=True)]
_FOCAL_PARAMS = [
    Floats("focal_length", [1.0, 1.0], "(fx, fy): in NDC units when in_ndc, else in pixels", length=2,
           min=1e-9),
    Floats("principal_point", [0.0, 0.0], "(px, py): in NDC when in_ndc (0, 0 is the centre), else in pixels",
           length=2),
    Bool("in_ndc", True, "focal length and principal point are in NDC; off: in pixels (screen space), which "
                         "needs image_size"),
    Floats("image_size", None, "(height, width) in pixels; needed when in_ndc is off", length=2, min=1.0,
           optional=True),
]


def _focal_checks(p: dict) -> list[tuple[str, str]]:
    if not p["in_ndc"] and p["image_size"] is None:
        return [("image_size", "is needed when in_ndc is off (focal length and principal point in pixels)")]
    return []


def focal_cameras(cls, R, T, focal_length, principal_point, in_ndc, image_size, device):
    """``cls`` (PerspectiveCameras or OrthographicCameras) from focal length and principal point as (N, 2)
    tensors on ``device``, N the batch of R/T (1 when neither is given). Exported scripts call this too."""
    rt = {k: v.to(device) for k, v in (("R", R), ("T", T)) if v is not None}
    batch = max([1, *(len(v) for v in rt.values())])
    kwargs = {"focal_length": torch.tensor([focal_length], device=device).expand(batch, 2),
              "principal_point": torch.tensor([principal_point], device=device).expand(batch, 2),
              "in_ndc": in_ndc, "device": device, **rt}
    if image_size is not None:
        kwargs["image_size"] = torch.tensor([image_size], device=device).expand(batch, 2)
    return cls(**kwargs)


def _focal_export(cls: str):
    def form(x) -> str:
        x.imports(f"from pytorch3d.renderer import {cls}")
        p = x.params
        return (f"{x.helper(focal_cameras)}({cls}, {x.inputs['R']}, {x.inputs['T']}, {p['focal_length']}, "
                f"{p['principal_point']}, {p['in_ndc']}, {p['image_size']}, device)")
    return form


@node(category="cameras", inputs=_RT_INPUTS, params=_FOCAL_PARAMS, outputs=[Output("cameras", "Cameras")],
      checks=_focal_checks, aliases=("SfMPerspectiveCameras",), export=_focal_export("PerspectiveCameras"))
def PerspectiveCameras(ctx, R, T, focal_length, principal_point, in_ndc, image_size):
    """A batch of pinhole cameras given by focal length and principal point, in NDC or in pixels (the
    intrinsics calibrated real-world data comes with; ``PerspectiveCameras``, also called SfM cameras)."""
    from pytorch3d.renderer import PerspectiveCameras as P3D

    _rt(ctx, R, T)  # checks the shapes
    return focal_cameras(P3D, R, T, focal_length, principal_point, in_ndc, image_size, ctx.device)


@node(category="cameras", inputs=_RT_INPUTS, params=_FOCAL_PARAMS, outputs=[Output("cameras", "Cameras")],
      checks=_focal_checks, aliases=("SfMOrthographicCameras",), export=_focal_export("OrthographicCameras"))
def OrthographicCameras(ctx, R, T, focal_length, principal_point, in_ndc, image_size):
    """A batch of orthographic cameras given by a focal length (a scale) and principal point, in NDC or in
    pixels (``OrthographicCameras``)."""
    from pytorch3d.renderer import OrthographicCameras as P3D

    _rt(ctx, R, T)  # checks the shapes
    return focal_cameras(P3D, R, T, focal_length, principal_point, in_ndc, image_size, ctx.device)


def fisheye_cameras(R, T, focal_length, principal_point, radial_params, tangential_params, thin_prism_params,
                    use_radial, use_tangential, use_thin_prism, world_coordinates, image_size, device):
    """FishEyeCameras with every parameter a (N, k) float tensor on ``device``, N the batch of R/T (1 when
    neither is given). Exported scripts call this too."""
    from pytorch3d.renderer.fisheyecameras import FishEyeCameras

    rt = {k: v.to(device) for k, v in (("R", R), ("T", T)) if v is not None}
    batch = max([1, *(len(v) for v in rt.values())])

    def rows(values) -> torch.Tensor:
        return torch.tensor([list(values)], dtype=torch.float32, device=device).expand(batch, -1)

    kwargs = {}
    if image_size is not None:
        kwargs["image_size"] = rows(image_size)
    return FishEyeCameras(focal_length=rows([focal_length]), principal_point=rows(principal_point),
                          radial_params=rows(radial_params), tangential_params=rows(tangential_params),
                          thin_prism_params=rows(thin_prism_params), use_radial=use_radial,
                          use_tangential=use_tangential, use_thin_prism=use_thin_prism,
                          world_coordinates=world_coordinates, device=device, **rt, **kwargs)


def _fisheye_export(x) -> str:
    p = x.params
    names = ("focal_length", "principal_point", "radial_params", "tangential_params", "thin_prism_params",
             "use_radial", "use_tangential", "use_thin_prism", "world_coordinates", "image_size")
    return (f"{x.helper(fisheye_cameras)}({x.inputs['R']}, {x.inputs['T']}, "
            + ", ".join(p[n] for n in names) + ", device)")


@node(
    category="cameras",
    inputs=_RT_INPUTS,
    params=[
        Float("focal_length", 1.0, "focal length (one value: fisheye lenses have square pixels)", min=1e-9),
        Floats("principal_point", [0.0, 0.0], "(px, py) of the image centre", length=2),
        Floats("radial_params", [0.0] * 6, "radial distortion k1..k6 (theta polynomial)", length=6),
        Floats("tangential_params", [0.0, 0.0], "tangential distortion p1, p2", length=2),
        Floats("thin_prism_params", [0.0] * 4, "thin-prism distortion s1..s4", length=4),
        Bool("use_radial", True, "apply the radial distortion"),
        Bool("use_tangential", True, "apply the tangential distortion"),
        Bool("use_thin_prism", True, "apply the thin-prism distortion"),
        Bool("world_coordinates", False, "unproject to world coordinates (else to the camera's)"),
        Floats("image_size", None, "(height, width) in pixels; empty: square NDC", length=2, min=1.0,
               optional=True),
    ],
    outputs=[Output("cameras", "Cameras")],
    export=_fisheye_export,
)
def FishEyeCameras(ctx, R, T, focal_length, principal_point, radial_params, tangential_params, thin_prism_params,
                   use_radial, use_tangential, use_thin_prism, world_coordinates, image_size):
    """A batch of fisheye cameras: a pinhole projection bent by radial, tangential and thin-prism distortion
    (the model of Project Aria; ``pytorch3d.renderer.fisheyecameras.FishEyeCameras``).

    Projection is exact per vertex; a mesh rasterizer then joins the projected vertices with straight edges.
    """
    _rt(ctx, R, T)  # checks the shapes
    return fisheye_cameras(R, T, focal_length, principal_point, radial_params, tangential_params, thin_prism_params,
                           use_radial, use_tangential, use_thin_prism, world_coordinates, image_size, ctx.device)


OPENCV_KEYS = ("K", "R", "tvec", "image_size")


def _opencv_arrays(path: Path) -> dict:
    """K, R, tvec and image_size from a JSON object or an NPZ archive with those keys (one camera or a batch)."""
    if path.suffix.lower() == ".npz":
        with np.load(str(path), allow_pickle=False) as data:
            return {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
    loaded = json.loads(path.read_text())
    if not isinstance(loaded, dict):
        raise TypeError("the JSON must be an object with keys " + ", ".join(OPENCV_KEYS))
    return {k: np.asarray(v, dtype=np.float64) for k, v in loaded.items() if k in OPENCV_KEYS}


@node(
    category="cameras",
    params=[File("file", "assets/cow_opencv_calibration.json", "JSON or NPZ with `K` (3, 3), `R` (3, 3), `tvec` "
                 "(3,) and `image_size` (height, width), or a batch of each (N, ...)",
                 extensions=(".json", ".npz"))],
    outputs=[Output("cameras", "Cameras", "PerspectiveCameras in screen space, one per calibrated view"),
             Output("image_size", "Tensor", "(N, 2) the calibrated (height, width) of each view")],
    export=lambda x: _opencv_export(x),
)
def CamerasFromOpenCV(ctx, file):
    """Cameras from an OpenCV calibration: intrinsics K, rotation R and translation tvec of the x_cam = R x + t
    convention (``pytorch3d.utils.cameras_from_opencv_projection``). Render at the calibrated image size."""
    path = ctx.asset(file)
    if path.suffix.lower() == ".npz":
        check_archive(ctx, "file", path, repr(file))  # refused before numpy inflates it
    try:
        arrays = _opencv_arrays(path)
    except (OSError, ValueError, TypeError) as exc:
        ctx.fail("file", f"cannot read {file!r} as a calibration: {type(exc).__name__}: {exc}")
    missing = [k for k in OPENCV_KEYS if k not in arrays]
    if missing:
        ctx.fail("file", f"{file!r} lacks {', '.join(missing)} (needs {', '.join(OPENCV_KEYS)})")
    tensors = opencv_batch(arrays, ctx.device)
    for key, shape in OPENCV_SHAPES.items():
        value = tensors[key]
        if tuple(value.shape[1:]) != shape:
            ctx.fail("file", f"`{key}` in {file!r} must be {list(shape)} or [N, {', '.join(map(str, shape))}], "
                             f"got {list(value.shape)}")
    sizes = {v.shape[0] for v in tensors.values()}
    if len(sizes - {1}) > 1:
        ctx.fail("file", f"{file!r} mixes batch sizes {sorted(sizes)}")
    if (tensors["image_size"] < 1).any():
        ctx.fail("file", f"`image_size` in {file!r} must be positive (height, width)")
    cameras, image_size = opencv_cameras(tensors)
    return {"cameras": cameras, "image_size": image_size}


OPENCV_SHAPES = {"K": (3, 3), "R": (3, 3), "tvec": (3,), "image_size": (2,)}


def opencv_batch(arrays: dict, device) -> dict:
    """K, R, tvec and image_size as float32 tensors on ``device`` with a batch dimension (one camera's arrays
    get one). Exported scripts call this too."""
    tensors = {}
    for key, shape in OPENCV_SHAPES.items():
        value = torch.as_tensor(arrays[key], dtype=torch.float32, device=device)
        tensors[key] = value[None] if tuple(value.shape) == shape else value
    return tensors


def opencv_cameras(tensors: dict):
    """(screen-space PerspectiveCameras, (N, 2) image sizes) of a checked calibration batch (a batch of one is
    repeated to the others' size): ``cameras_from_opencv_projection``. Exported scripts call this too."""
    from pytorch3d.utils import cameras_from_opencv_projection

    n = max(v.shape[0] for v in tensors.values())
    tensors = {k: v.expand(n, *v.shape[1:]) for k, v in tensors.items()}
    cameras = cameras_from_opencv_projection(tensors["R"], tensors["tvec"], tensors["K"], tensors["image_size"])
    return cameras, tensors["image_size"]


def _opencv_export(x) -> dict:
    x.imports("from pathlib import Path")
    cameras, size = x.out("cameras"), x.out("image_size")
    x.line(f"{cameras}, {size} = {x.helper(opencv_cameras)}({x.helper(opencv_batch)}("
           f"{x.helper(_opencv_arrays)}(Path({x.path('file')})), device))")
    return {"cameras": cameras, "image_size": size}


# ------------------------------------------------------------------------ camera graphs (bundle adjustment)


@node(
    category="cameras",
    inputs=[Input("cameras", "Cameras", "N absolute cameras"),
            Input("edges", "Tensor", "(E, 2) pairs (i, j) of camera indices")],
    outputs=[Output("cameras", "Cameras", "E PerspectiveCameras: camera j's pose relative to camera i")],
    export=lambda x: f"{x.helper(relative_cameras)}({x.inputs['cameras']}, {x.inputs['edges']})",
)
def RelativeCameras(ctx, cameras, edges):
    """The relative camera of each edge (i, j) of a camera graph: ``inverse(world_to_view_i) o world_to_view_j``
    as R and T (the bundle-adjustment tutorial's ``get_relative_camera``)."""
    if edges.dim() != 2 or edges.shape[1] != 2 or edges.is_floating_point():
        ctx.fail("edges", f"must be integer (E, 2) camera index pairs, got {edges.dtype} {list(edges.shape)}")
    if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= len(cameras)):
        bad = int(edges.min()) if int(edges.min()) < 0 else int(edges.max())  # the index at fault, not the largest
        ctx.fail("edges", f"refer to camera {bad} but there are {len(cameras)} cameras")
    return relative_cameras(cameras, edges)


def relative_cameras(cameras, edges: torch.Tensor):
    """PerspectiveCameras of camera j relative to camera i for each edge (i, j): R and T of
    ``inverse(world_to_view_i) o world_to_view_j``. Exported scripts call this too."""
    from pytorch3d.renderer import PerspectiveCameras

    edges = edges.to(cameras.device)
    first = cameras[edges[:, 0]].get_world_to_view_transform()
    second = cameras[edges[:, 1]].get_world_to_view_transform()
    matrix = first.inverse().compose(second).get_matrix()
    return PerspectiveCameras(R=matrix[:, :3, :3], T=matrix[:, 3, :3], device=cameras.device)

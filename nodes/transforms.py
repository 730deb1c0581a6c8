"""Transforms and coordinates (the book's chapters 1-2): build Transform3d objects, apply them, project points.

Rotations are given the way a reader writes them: ``p' = R p`` for column vectors (axis-angle, quaternion
w-x-y-z, Euler angles or a 3x3 matrix). PyTorch3D's ``Transform3d`` works on row vectors and stores the
transpose; these nodes take care of that, so "rotate 90 degrees about z" sends (1, 0, 0) to (0, 1, 0).
"""
from __future__ import annotations

import math

import torch

from nodegraph.spec import Bool, Choice, Floats, Input, Int, Output, Text, Vec3, node

_ROTATION_LENGTHS = {"axis_angle": 3, "quaternion": 4, "euler": 3, "matrix": 9}


def _rotate_checks(p: dict) -> list[tuple[str, str]]:
    want = _ROTATION_LENGTHS[p["representation"]]
    problems = []
    if len(p["values"]) != want:
        problems.append(("values", f"{p['representation']} needs {want} numbers, got {len(p['values'])}"))
    conv = p["convention"].upper()
    if p["representation"] == "euler" and (len(conv) != 3 or set(conv) - set("XYZ") or conv[1] in (conv[0],
                                                                                                    conv[2])):
        problems.append(("convention", f"must be three axes from X, Y, Z with no two neighbours equal (e.g. XYZ, "
                                       f"ZYX, ZXZ), got {p['convention']!r}"))
    return problems


def rotation_matrix(representation: str, values: list[float], convention: str = "XYZ",
                    degrees: bool = True, device: torch.device | str = "cpu") -> torch.Tensor:
    """A (1, 3, 3) column-vector rotation matrix on ``device`` from axis-angle, quaternion (wxyz), Euler angles or
    9 numbers."""
    from pytorch3d import transforms as t

    v = torch.tensor(values, dtype=torch.float32, device=device)
    if representation in ("axis_angle", "euler") and degrees:
        v = v * (math.pi / 180.0)
    if representation == "axis_angle":
        return t.axis_angle_to_matrix(v[None])
    if representation == "quaternion":
        return t.quaternion_to_matrix(torch.nn.functional.normalize(v, dim=0)[None])
    if representation == "euler":
        return t.euler_angles_to_matrix(v[None], convention.upper())
    return v.reshape(1, 3, 3)


def _rotate_export(x) -> str:
    """``Rotate`` takes row-vector matrices: the transpose of the column-vector R the node is given."""
    x.imports("from pytorch3d.transforms import Rotate")
    p = x.params
    R = x.inputs["R"]
    if R is None:
        R = x.name("R")
        x.line(f"{R} = {x.helper(rotation_matrix)}({p['representation']}, {p['values']}, {p['convention']}, "
               f"{p['degrees']}, device)")
    return f"Rotate({R}.transpose(1, 2).to(device), device=device)"


def _project_export(x) -> dict:
    cams, p = x.inputs["cameras"], x.params
    xyz = x.name("xyz")
    x.line(f"{xyz} = {x.inputs['points']}.points_padded()" if x.inputs["points"] is not None else
           f"{xyz} = {x.inputs['mesh']}.verts_padded()")
    return {"view": f"{cams}.get_world_to_view_transform().transform_points({xyz})",
            "ndc": f"{cams}.transform_points_ndc({xyz})",
            "screen": f"{cams}.transform_points_screen({xyz}, image_size=(({p['image_size']}, {p['image_size']}),))"}


def _exp_map_export(x) -> str:
    x.imports("from pytorch3d.transforms import so3_exp_map")
    log_rot = x.inputs["log_rot"]
    if log_rot is None:
        log_rot = f"torch.tensor([{x.params['value']}], dtype=torch.float32, device=device)"
    return f"so3_exp_map({log_rot})"


def _transform_points_export(x) -> str:
    points, t, normals = x.inputs["points"], x.name("t"), x.name("normals")
    x.line(f"{t} = {x.inputs['transform']}.to({points}.device)",
           f"{normals} = {points}.normals_padded()",
           f"if {normals} is not None:",
           f"    {normals} = torch.nn.functional.normalize({t}.transform_normals({normals}), dim=-1)")
    return f"{points}.update_padded({t}.transform_points({points}.points_padded()), {normals})"


@node(
    category="transforms",
    export="from pytorch3d.transforms import Translate\n{out} = Translate(*{xyz}, device=device)",
    params=[Vec3("xyz", (0.0, 0.0, 0.0), "offset along x, y, z")],
    outputs=[Output("transform", "Transform")],
)
def Translate(ctx, xyz):
    """Move points by a fixed offset."""
    from pytorch3d.transforms import Translate as P3D

    return P3D(*xyz, device=ctx.device)


@node(
    category="transforms",
    export="from pytorch3d.transforms import Scale\n{out} = Scale(*{xyz}, device=device)",
    params=[Vec3("xyz", (1.0, 1.0, 1.0), "scale factor along x, y, z")],
    outputs=[Output("transform", "Transform")],
)
def Scale(ctx, xyz):
    """Scale points about the origin, per axis."""
    from pytorch3d.transforms import Scale as P3D

    return P3D(*xyz, device=ctx.device)


@node(
    category="transforms",
    inputs=[Input("R", "Tensor", "(N, 3, 3) rotation matrices (p' = R p); overrides the params", optional=True)],
    params=[
        Choice("representation", "axis_angle", "how `values` describe the rotation",
               choices=tuple(_ROTATION_LENGTHS)),
        Floats("values", [0.0, 0.0, 90.0], "axis_angle: axis * angle (3); quaternion: w, x, y, z (4); euler: 3 "
                                           "angles; matrix: 9 numbers, row by row", min_length=3, max_length=9),
        Text("convention", "XYZ", "Euler axes order (e.g. XYZ, ZYX)"),
        Bool("degrees", True, "angles in degrees (axis_angle, euler)"),
    ],
    outputs=[Output("transform", "Transform")],
    checks=_rotate_checks,
    export=_rotate_export,
)
def Rotate(ctx, R, representation, values, convention, degrees):
    """Rotate points about the origin, by axis-angle, quaternion, Euler angles, a matrix, or an R input."""
    from pytorch3d.transforms import Rotate as P3D

    if R is None:
        R = rotation_matrix(representation, values, convention, degrees, ctx.device)
    elif R.dim() != 3 or tuple(R.shape[1:]) != (3, 3):
        ctx.fail("R", f"must be (N, 3, 3) rotation matrices, got {list(R.shape)}")
    try:
        return P3D(R.transpose(1, 2).to(ctx.device), device=ctx.device)
    except ValueError as exc:
        ctx.fail("values" if representation == "matrix" else "R", f"is not a rotation: {exc}")


@node(
    category="transforms",
    inputs=[Input("transforms", "Transform", "applied in link order: the first link acts first", multiple=True)],
    outputs=[Output("transform", "Transform")],
    export=lambda x: x.inputs['transforms'][0] if len(x.inputs['transforms']) == 1 else f"{x.inputs['transforms'][0]}.compose({', '.join(x.inputs['transforms'][1:])})",
)
def ComposeTransforms(ctx, transforms):
    """Chain transforms into one: the first connected acts first, then the next, and so on."""
    if not transforms:
        ctx.fail("transforms", "connect at least one transform")
    return transforms[0].compose(*transforms[1:]) if len(transforms) > 1 else transforms[0]


def _check_batch(ctx, field: str, transform, batch: int) -> None:
    n = transform.get_matrix().shape[0]
    if n not in (1, batch):
        ctx.fail(field, f"transform batch {n} does not match the {batch} item(s) it is applied to")


@node(
    category="transforms",
    inputs=[Input("mesh", "Meshes"), Input("transform", "Transform", "one for all meshes, or one per mesh")],
    outputs=[Output("mesh", "Meshes")],
    export="{out} = {mesh}.update_padded({transform}.to({mesh}.device).transform_points({mesh}.verts_padded()))",
)
def TransformMeshes(ctx, mesh, transform):
    """Apply a transform to every vertex of every mesh (textures and faces unchanged)."""
    _check_batch(ctx, "transform", transform, len(mesh))
    return mesh.update_padded(transform.to(mesh.device).transform_points(mesh.verts_padded()))


@node(
    category="transforms",
    inputs=[Input("points", "Pointclouds"), Input("transform", "Transform", "one for all clouds, or one per cloud")],
    outputs=[Output("points", "Pointclouds")],
    export=_transform_points_export,
)
def TransformPoints(ctx, points, transform):
    """Apply a transform to every point of every cloud (normals transformed and kept unit length; features kept)."""
    _check_batch(ctx, "transform", transform, len(points))
    t = transform.to(points.device)
    normals = points.normals_padded()
    if normals is not None:
        normals = torch.nn.functional.normalize(t.transform_normals(normals), dim=-1)
    return points.update_padded(t.transform_points(points.points_padded()), normals)


@node(
    category="transforms",
    inputs=[Input("log_rot", "Tensor", "(N, 3) axis * angle vectors (radians); overrides `value`", optional=True)],
    params=[Vec3("value", (0.0, 0.0, 0.0), "axis * angle in radians, when no input is connected")],
    outputs=[Output("R", "Tensor", "(N, 3, 3) rotation matrices")],
    export=lambda x: _exp_map_export(x),
)
def So3ExpMap(ctx, log_rot, value):
    """The exponential map of SO(3): axis-angle vectors -> rotation matrices (``so3_exp_map``)."""
    from pytorch3d.transforms import so3_exp_map

    if log_rot is None:
        log_rot = torch.tensor([value], dtype=torch.float32, device=ctx.device)
    elif log_rot.dim() != 2 or log_rot.shape[1] != 3:
        ctx.fail("log_rot", f"must be (N, 3), got {list(log_rot.shape)}")
    return so3_exp_map(log_rot)


@node(
    category="transforms",
    inputs=[Input("R", "Tensor", "(N, 3, 3) rotation matrices")],
    outputs=[Output("log_rot", "Tensor", "(N, 3) axis * angle vectors (radians)")],
    export="from pytorch3d.transforms import so3_log_map\n{out} = so3_log_map({R})",
)
def So3LogMap(ctx, R):
    """The logarithm map of SO(3): rotation matrices -> axis-angle vectors (``so3_log_map``)."""
    from pytorch3d.transforms import so3_log_map

    if R.dim() != 3 or tuple(R.shape[1:]) != (3, 3):
        ctx.fail("R", f"must be (N, 3, 3), got {list(R.shape)}")
    try:
        return so3_log_map(R)
    except ValueError as exc:
        ctx.fail("R", str(exc))


@node(
    category="transforms",
    inputs=[
        Input("cameras", "Cameras"),
        Input("points", "Pointclouds", "points to project (or connect a mesh)", optional=True),
        Input("mesh", "Meshes", "project the mesh's vertices instead", optional=True),
    ],
    params=[Int("image_size", 256, "image size for screen coordinates", min=1, max=4096, unit="px")],
    outputs=[
        Output("view", "Tensor", "(B, N, 3) camera (view) coordinates"),
        Output("ndc", "Tensor", "(B, N, 3) normalised device coordinates: x, y in [-1, 1] inside the image"),
        Output("screen", "Tensor", "(B, N, 3) pixel coordinates (x right, y down) and depth"),
    ],
    export=_project_export,
)
def ProjectPoints(ctx, cameras, points, mesh, image_size):
    """World points seen by a camera, in view, NDC and screen coordinates (PyTorch3D's conventions)."""
    if (points is None) == (mesh is None):
        ctx.fail("points", "connect either points or a mesh (exactly one)")
    xyz = points.points_padded() if points is not None else mesh.verts_padded()
    view = cameras.get_world_to_view_transform().transform_points(xyz)
    ndc = cameras.transform_points_ndc(xyz)
    screen = cameras.transform_points_screen(xyz, image_size=((image_size, image_size),))
    return {"view": view, "ndc": ndc, "screen": screen}

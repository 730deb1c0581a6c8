"""Preview nodes: show a value in the editor (images in the node, meshes, point clouds and rays in a 3D view).

Each is a sink with ``preview=True``: outside training it shows its input once; inside a training loop it is a
tap, evaluated every few iterations under ``torch.no_grad()`` within the loop's preview budget.
"""
from __future__ import annotations

import torch
from pytorch3d.renderer import RayBundle
from pytorch3d.structures import Pointclouds

from nodegraph.spec import Input, Int, node

from ._common import check_images
from ._rays import MAX_PTS_PER_RAY


def _preview_image_export(x) -> None:
    """With --preview-every: the images as a PNG in previews/ (one per tap iteration inside training)."""
    from .save import save_png

    tag = f"_{{{x.iteration}:05d}}" if x.mode == "tap" else ""
    path = x.output_path(f'f"previews/{x.node_id}{tag}.png"' if tag else repr(f"previews/{x.node_id}.png"))
    call = f"{x.helper(save_png)}({x.inputs['images']}, {path})"
    x.line(call if x.mode == "tap" else f"if args.preview_every:\n    {call}")


def _editor_only(x) -> None:
    """A 3D preview is drawn by the editor: nothing to write in a script."""
    x.line("# (shown in the editor's 3D view; nothing to do here)")
    for param in x.spec.params:
        x.skip(param.name)


@node(
    category="preview",
    preview=True,
    inputs=[Input("images", "Images")],
    export=_preview_image_export,
)
def PreviewImage(ctx, images):
    """Show images in the editor (a batch as a grid). Inside a training loop it is a tap, shown every few steps."""
    check_images(ctx, "images", images)
    ctx.preview_image(images)


@node(category="preview", preview=True, inputs=[Input("mesh", "Meshes")], export=_editor_only)
def PreviewMesh(ctx, mesh):
    """Show the first mesh of a batch in a 3D view. Inside a training loop it is a tap, shown every few steps."""
    ctx.preview_mesh(mesh)


@node(category="preview", preview=True, inputs=[Input("points", "Pointclouds")], export=_editor_only)
def PreviewPoints(ctx, points):
    """Show the first point cloud of a batch in a 3D view. Inside a training loop it is a tap."""
    ctx.preview_points(points)


def ray_points_cloud(bundle: RayBundle, max_rays: int, max_points_per_ray: int) -> Pointclouds:
    """A point cloud of (a subset of) a bundle's ray points, coloured from blue (near) to orange (far)."""
    origins = bundle.origins.detach().reshape(-1, 3)
    directions = bundle.directions.detach().reshape(-1, 3)
    lengths = bundle.lengths.detach().reshape(origins.shape[0], -1)
    n_rays, n_pts = lengths.shape
    ray_idx = torch.linspace(0, n_rays - 1, min(n_rays, max_rays), device=origins.device).round().long()
    pt_idx = torch.linspace(0, n_pts - 1, min(n_pts, max_points_per_ray), device=origins.device).round().long()
    lens = lengths[ray_idx][:, pt_idx]
    pts = origins[ray_idx, None] + lens[..., None] * directions[ray_idx, None]
    t = torch.linspace(0.0, 1.0, len(pt_idx), device=pts.device)[None, :, None].expand(len(ray_idx), -1, 1)
    near, far = pts.new_tensor([0.2, 0.4, 1.0]), pts.new_tensor([1.0, 0.55, 0.1])
    colors = near + t * (far - near)
    return Pointclouds(points=[pts.reshape(-1, 3).float()], features=[colors.reshape(-1, 3)])


@node(
    category="preview",
    preview=True,
    inputs=[Input("ray_bundle", "RayBundle")],
    export=_editor_only,
    params=[
        Int("max_rays", 400, "draw at most this many rays, evenly picked", min=1, max=100_000),
        Int("max_points_per_ray", 32, "draw at most this many points of each ray", min=1, max=MAX_PTS_PER_RAY),
    ],
)
def PreviewRayBundle(ctx, ray_bundle, max_rays, max_points_per_ray):
    """Show the sampled rays as points in the 3D view, coloured blue (near) to orange (far).

    A thinned-out view of the whole batch: every camera's rays, ``max_rays`` in all. Inside a training loop it
    is a tap, shown every few steps.
    """
    ctx.preview_points(ray_points_cloud(ray_bundle, max_rays, max_points_per_ray))
